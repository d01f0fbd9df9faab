// Package qemu is the vm_type "kvm" driver: it runs each VM as a
// qemu-system-x86_64 process and drives it over QMP (package qmp), with KVM
// when /dev/kvm is usable and TCG otherwise.
//
// A VM's life: Start builds the command line from a hypervisor.Spec, starts
// QEMU paused in its own process group with its QMP socket already
// listening, connects and lets the guest run. The VM's monitor goroutine
// waits for the SHUTDOWN event (and asks query-status every
// StatusInterval, as HTCondor's VM_STATUS_INTERVAL does, so a lost event
// never hangs a job), quits QEMU after a guest power-off and reaps it. A
// guest whose every vCPU halted with interrupts off (/sbin/halt) is taken
// for powered off at the second status check that finds it so (halt.go).
// Stop presses the ACPI power button, then quits, then kills. Checkpoint
// migrates the paused VM to a file and copies its disks; a Spec with
// Resume starts QEMU with -incoming and feeds that file back.
//
// Everything a VM keeps is in its Spec.Dir: qemu.log (QEMU's stderr, whose
// tail errors quote), serial.log (COM1), qemu.pid, qmp.sock and
// qemu-vm.json (what Reattach and Checkpoint need to know).
//
// The package implements hypervisor.Driver, hypervisor.VM,
// hypervisor.Checkpointer and hypervisor.Detacher; it imports only the
// hypervisor package and knows nothing of claims, jobs or schedds.
package qemu
