// Package vmware is the vm_type "vmware" driver: it runs each VM with
// VMware's `vmrun` tool from the job's .vmx and .vmdk files (vmware_dir),
// as HTCondor's VMware support did, so it works unchanged on a host with
// VMware Workstation or Player. On machines without VMware, vmpool's
// `vmrun` emulator (package vmrunemu) stands in for the tool.
//
// A VM's life: Start edits the job's .vmx in the scratch dir as HTCondor
// does, overwriting values: memsize from vm_memory, numvcpus from
// vm_vcpus, displayName, ethernet0 from the job's networking (nat or
// bridged; a static address only in VMware's range), uuid.action = keep,
// disk.locking = FALSE, host devices (physical CD-ROM, floppy, serial and
// parallel ports) disconnected, and every disk not among the transferred
// files pointed at vmware_dir (a shared file system). With snapshot disks
// (vmware_snapshot_disk, the default, and always for disks used in place)
// it takes a snapshot (`vmrun snapshot`) so that the guest writes new
// delta disks and the originals stay as they were. Then `vmrun start
// <vmx> nogui`. Besides the job's files, a VM keeps vmware-vm.json (what
// Reattach and Checkpoint need) in its Dir.
//
// Completion: nothing tells the driver when a VM powers off, so each VM
// asks `vmrun list` every StatusInterval (VM_STATUS_INTERVAL); a VM no
// longer listed has powered off. Its snapshot is then consolidated into
// the job's own disks (`vmrun deleteSnapshot`), so that the modified
// transferred files (the .vmdk extents, the .vmx) go back to the
// submitter as a kvm job's disks do; a snapshot over shared disks is left
// alone, since other jobs read those disks. Stop runs `vmrun stop <vmx>
// soft` within its grace, then `vmrun stop <vmx> hard`.
//
// Checkpoint runs `vmrun suspend <vmx> hard` and copies into the
// checkpoint dir the .vmx, the .vmss and .vmem suspend files and the
// disks: only the snapshot deltas with snapshot disks (the originals come
// with the job's input files again), every disk file without. With
// Continue it resumes the VM (`vmrun start`). A Spec with Resume copies
// the checkpoint's files into the scratch dir and starts the VM, which
// VMware resumes from the .vmss.
//
// The package implements hypervisor.Driver, hypervisor.VM,
// hypervisor.Checkpointer and hypervisor.Detacher; it imports only the
// hypervisor, toolvm and vmformat packages and knows nothing of jobs.
package vmware
