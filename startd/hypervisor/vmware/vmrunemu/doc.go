// Package vmrunemu is an emulator of VMware's `vmrun` command line for
// hosts without VMware: it accepts the commands and the .vmx and .vmdk
// files the vmware driver (and a person) gives the real `vmrun`, rejects
// bad ones with the kind of error vmrun prints ("Error: Cannot open VM:
// ...", "Error: Cannot open the disk '...' or one of the snapshot disks it
// depends on."), and runs each VM's guest under QEMU (through package
// emuvm, which uses the kvm driver). vmpool acts as it when invoked as
// `vmrun` or as `vmpool emulate vmrun`.
//
// Emulated commands: start (gui|nogui; a suspended VM resumes), stop
// (hard|soft), suspend (hard|soft), pause, unpause, list, snapshot,
// deleteSnapshot, revertToSnapshot, listSnapshots. Host-type and
// authentication options (-T ws, -h, -u, -p, ...) are accepted and
// ignored. VMs are known by their .vmx path.
//
// How the files are used: memsize, numvcpus, the present disk nodes
// (ideC:U become IDE disks hdX, scsiC:U and sataC:U AHCI disks sdX, nvme
// virtio; their .vmdk files are opened by QEMU, which reads monolithicFlat
// and monolithicSparse disks and their snapshot parents) and ethernet0
// (any connectionType becomes QEMU's user-mode NAT; a static address must
// be in VMware's 00:50:56:00:00:00-00:50:56:3F:FF:FF range, a generated
// one is written back as ethernet0.generatedAddress).
//
// What is not VMware's: QEMU refuses to save (migrate) a VM with a disk
// open through its vmdk driver, so the emulator opens a flat disk (one
// FLAT extent: monolithicFlat) as its raw extent; other layouts run but
// cannot be suspended. For the same reason a snapshot "delta" is not a
// sparse disk holding what changed, as VMware's are, but a whole (sparse)
// copy of the disk as a monolithicFlat disk named as VMware names deltas
// (disk-000001.vmdk); the .vmsd lists the snapshots and a .vmsn is only a
// copy of the .vmx (VMware's holds device state). Only powered-off VMs
// can be snapshotted, and only the newest snapshot deleted (its copy
// written back over the disk it was taken of) or reverted to. A suspended
// VM's .vmem is QEMU's migration stream and its .vmss the emulator's own
// pack of QEMU's checkpoint manifest and disk copies; only this emulator
// resumes them. There are no VMware Tools: `stop soft` presses the ACPI
// power button and waits (up to five minutes) for the guest to power off.
package vmrunemu
