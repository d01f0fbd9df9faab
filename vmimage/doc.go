// Package vmimage builds the disk images vmpool's tests and examples boot:
// tiny guests hand-assembled here as 16-bit real-mode boot sectors (no
// assembler, no committed binaries), each with a data sector at LBA 1 that
// the guest updates through BIOS int 13h and that ReadData decodes.
//
// The guests are:
//
//   - Counter, the "hello" job: count the boot, power off.
//   - Forever: count the boot, then idle until stopped from outside.
//   - StampCounter: stamp the first boot, count N BIOS ticks to disk, power
//     off; for checkpoint and resume.
//   - Timed: wait N BIOS ticks, count the run, power off.
//
// All power off through ACPI (a write of SLP_EN|S5 to PM1a control at
// port 0x604, where SeaBIOS places it on QEMU's pc and q35 machines) and
// print progress lines on COM1.
//
// LinuxLoader assembles, in the same way, a boot sector and a loader that
// boot a Linux kernel and its initramfs from a disk by the Linux boot
// protocol; package vmimage/linux lays out such a disk for vmpool's Linux
// guest.
//
// Raw images are written by this package; qcow2 images and overlays are
// made by running qemu-img. vmimage imports nothing of vmpool's; the
// hypervisor drivers' tests, the conformance suite in
// startd/hypervisor/hvtest and the examples use it.
package vmimage
