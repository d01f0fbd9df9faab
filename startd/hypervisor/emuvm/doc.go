// Package emuvm keeps the guests of vmpool's hypervisor emulators, the
// `xl` emulator (package xen/xlemu) and the `vmrun` emulator (package
// vmware/vmrunemu). Real Xen and VMware keep their VMs in a daemon; an
// emulator is a command that runs once per invocation, so each of its
// guests is a QEMU process started through the kvm driver (package qemu)
// and detached, plus a record in the emulator's state directory. Every
// later command (`xl list`, `vmrun stop`, ...) finds the guest from its
// record, reattaches over QMP, does its work and lets go again.
//
// A Host is one emulated machine: a state directory holding
//
//	host.lock           flock: creating and removing guests, allocating ids
//	next-id             the next guest (domain) id
//	guests/KEY/         the guest's QEMU runtime dir (qemu.log, serial.log, ...)
//	guests/KEY.json     the guest's record: id, QEMU handle, the emulator's metadata
//	guests/KEY.lock     flock: one command talks to a guest's QEMU at a time
//
// QEMU's monitor serves one client at a time, so every operation on a
// guest holds its lock; operations that wait for a guest (a soft stop)
// poll its state and do not hold the lock between polls.
//
// A guest that powered off is noticed by the next command that looks at it
// (QEMU runs with -no-shutdown and keeps the powered-off state until a
// client quits it): State then reaps it and removes its record, as Xen's
// on_poweroff = "destroy" and VMware's power-off do. A QEMU that vanished
// without a power-off (it crashed or was killed behind the emulator's
// back) is reported Gone and keeps its record until it is destroyed.
//
// The package also packs a checkpoint directory into one file and back
// (Pack, Unpack), which the emulators use for `xl save` files and VMware's
// .vmss. It imports the hypervisor interface and the qemu driver, never
// the startd.
package emuvm
