// Package xen is the vm_type "xen" driver: it runs each VM as a Xen domain
// through the `xl` tool, as a Xen execute machine of HTCondor does, so it
// works unchanged on a real Xen dom0. On machines without Xen, vmpool's
// `xl` emulator (package xlemu) stands in for the tool.
//
// A VM's life: Start writes the domain configuration xen_vm.config in the
// VM's scratch dir from the Spec (name, memory, vcpus; the kernel, ramdisk,
// root device and extra arguments of xen_kernel, xen_initrd, xen_root and
// xen_kernel_params, or the disk's own bootloader, XEN_BOOTLOADER, for
// xen_kernel = included, or an HVM domain for xen_kernel = vmx; disk = [...]
// from vm_disk; a vif when the job has networking) and runs `xl create`.
// The domain powers off with on_poweroff = "destroy" and crashes with
// on_crash = "preserve": a VM whose domain has left `xl list` powered off
// (the job is done); one listed crashed ('c') is destroyed and reported as
// a crash. Nothing tells the driver when a domain goes, so each VM asks
// `xl list` every StatusInterval (VM_STATUS_INTERVAL), as HTCondor does;
// five failed checks in a row (VM_STATUS_MAX_ERROR) end the watch with an
// error.
//
// Stop runs `xl shutdown -F` (the ACPI power button for HVM guests) and
// waits up to its grace, then `xl destroy`. Checkpoint pauses the domain,
// copies its writable disks, and runs `xl save` (with -c to keep it
// running); a Spec with Resume copies the disks back and runs `xl restore`
// with a configuration written for the new scratch dir. Besides
// xen_vm.config, a VM keeps xen-vm.json (what Reattach and Checkpoint need)
// in its Dir.
//
// The package implements hypervisor.Driver, hypervisor.VM,
// hypervisor.Checkpointer and hypervisor.Detacher; it imports only the
// hypervisor and toolvm packages and knows nothing of claims or jobs.
package xen
