// Package sim is the vm_type "sim" driver: a simulated virtual machine
// that runs no guest code and costs no process, so that thousands of
// startds and a hundred thousand VMs fit in one process for scale
// benchmarks (vmpool bench) and pool tests. It is never advertised unless
// configured (VM_TYPE = sim, or vmpool up --sim-startds N).
//
// The job says what its simulated VM does, through job attributes whose
// names start with "Sim" (the startd passes them in Spec.Params as ClassAd
// values, strings quoted):
//
//	SimRunSeconds      = 2            how long the guest runs (default 0: at once)
//	SimExit            = "poweroff"   then: "poweroff" completes the job, "crash"
//	                                  stops the VM without a power-off, "never"
//	                                  runs until stopped (and ignores ACPI)
//	SimCheckpointBytes = 1048576      size of a checkpoint's memory file (default 0)
//
// Memory and vcpus are the job's vm_memory and vm_vcpus; nothing is
// allocated. A VM is a timer in the startd's process, and costs no file
// while it runs: a simulated VM cannot outlive its process, so one whose
// process dies is gone (Reattach says so and the job goes back to the
// queue). Detach, which a startd calls when it stops gracefully and leaves
// its VMs running, writes the VM's record into its Spec.Dir (sim-vm.json,
// without fsync). The guest's clock is the wall clock, so a detached VM
// runs on: another Driver, in this process or the next, Reattaches from the
// Handle and finds the guest still running, or powered off at its
// deadline.
//
// Guest power-off, crash and kill end the VM and remove any record, so
// Reattach then returns hypervisor.ErrGone, as for a QEMU that has quit.
// The sim guest honours the ACPI power button (Stop with a grace) unless
// SimExit is "never".
//
// A checkpoint is a manifest (sim-checkpoint.json: the run time left, the
// exit, the disks' devices) and a memory file of SimCheckpointBytes bytes,
// written for real so that shipping checkpoints costs what it would. The
// sim guest never writes its disks, so a checkpoint holds no disk copies:
// a resumed VM's disks, transferred afresh, are what the checkpointed VM
// had.
//
// The package implements hypervisor.Driver, hypervisor.VM,
// hypervisor.Checkpointer and hypervisor.Detacher; it imports only the
// hypervisor package and knows nothing of claims, jobs or schedds.
package sim
