// Package linux builds vmpool's Linux guest from Debian's packaged kernel
// (linux-image-cloud-amd64 or linux-image-amd64) and a static busybox
// (busybox-static), both installed with apt-get: nothing is downloaded and
// nothing binary is committed; the initramfs and the disk are made by this
// package at the moment they are needed.
//
// The guest's root file system is an initramfs (a newc cpio written here)
// holding busybox, the kernel modules it needs (virtio, IDE/AHCI, Xen front
// ends; found through the kernel's modules.dep) and a shell script that
// busybox init runs. The script finds the guest's data area, brings the
// network up (DHCP, which QEMU's user-mode NAT answers, or a static
// address for a bridge), connects to a host server if it was given one,
// writes what it saw (its CPUs and memory, its MAC and address, the
// host's reply) to the data area and powers off with /sbin/poweroff, as a
// vm universe job must (or, built with Guest.Halt, stops with /sbin/halt,
// which never powers off: the test of the kvm driver's halt detection).
//
// The guest comes in two forms:
//
//   - WriteDisk: one bootable raw disk, the vm universe's usual job. Its
//     boot sector and loader (vmimage.LinuxLoader) load the kernel and the
//     initramfs through the BIOS by the Linux boot protocol; a data
//     partition holds the report. The kvm driver boots it as it boots any
//     disk; no kernel option or submit command is involved.
//   - WriteFiles: a kernel, an initramfs and a small data disk, for the
//     xen driver's xen_kernel = path, xen_initrd = path, xen_root (and for
//     QEMU's -kernel, -initrd, -append).
//
// ReadReport decodes the report from either kind of disk after the job.
// The package imports only vmimage; tests and examples use it.
package linux
