// Package xlemu is an emulator of Xen's `xl` command line for hosts
// without Xen: it accepts the commands, options and domain configuration
// files the xen driver (and a person) gives the real `xl`, rejects bad ones
// with the kind of message `xl` and libxl print, and runs each domain's
// guest under QEMU (through package emuvm, which uses the kvm driver).
// vmpool acts as it when invoked as `xl` or as `vmpool emulate xl`.
//
// Emulated commands: create (-p, -n, key=value overrides), list [-l is
// not emulated], destroy, shutdown (-w, -F, -a), reboot is not, pause,
// unpause, save (-c, -p), restore (-p, config file override), info, domid,
// domname and help. Domains are named by name or domain id; Domain-0 is
// the host.
//
// What the emulator is not: there is no hypervisor, no dom0, no xenstore
// and no PV drivers. PV, PVH and HVM domains all become QEMU "pc" machines
// booting their first disk with SeaBIOS: a bootloader (pygrub, for
// xen_kernel = included) is checked but not run, the disk's own boot code
// is; `kernel = ...` direct boot is QEMU's -kernel/-initrd, with root and
// extra as the kernel command line (a normal Linux kernel boots; the guest
// sees xvdX as vdX and its console on ttyS0). xvdX disks are
// virtio-blk, hdX IDE, sdX AHCI. Every vif gets QEMU's user-mode NAT
// whatever its bridge or script says. `xl shutdown` presses the ACPI power
// button (real PV guests get a xenstore request). Memory is not reserved:
// free_memory is the host's. A save file is the emulator's own (a header
// with xl's magic line, then a tar of QEMU's migration stream and disk
// copies), readable only by this emulator.
package xlemu
