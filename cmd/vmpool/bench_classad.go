package main

import (
	"fmt"
	"runtime"
	"time"

	"github.com/vmpool/vmpool/classad"
)

// The classad scenario: the ClassAd figures behind matchmaking, on the ads
// a vm universe pool has (the default Requirements condor_submit writes
// for a kvm job against a vm-capable slot), without a pool around them.

const benchVMRequirements = `(TARGET.Arch == "X86_64") && (TARGET.HasVM =?= true) && (TARGET.VM_Type == MY.JobVMType) && (TARGET.VM_AvailNum > 0) && (TARGET.Disk >= RequestDisk) && (TARGET.TotalMemory >= MY.JobVMMemory) && (TARGET.VM_Memory >= MY.JobVMMemory) && (TARGET.HasFileTransfer)`

const benchJobAd = `[ ClusterId = 42; ProcId = 0; Owner = "alice"; QDate = 1700000000; JobUniverse = 13; JobStatus = 1;
  Iwd = "/home/alice/vms"; Cmd = "debian-12"; JobVMType = "kvm"; JobVMMemory = 2048; JobVM_VCPUS = 2;
  VMPARAM_vm_Disk = "debian.qcow2:vda:w"; RequestMemory = MY.JobVMMemory; RequestDisk = 20480000;
  ShouldTransferFiles = "YES"; WhenToTransferOutput = "ON_EXIT"; TransferInput = "debian.qcow2"; Rank = 0.0;
  JobLeaseDuration = 2400; MyType = "Job"; TargetType = "Machine"; Requirements = ` + benchVMRequirements + ` ]`

const benchMachineAd = `[ Name = "slot1@exec01.example"; Machine = "exec01.example"; MyType = "Machine"; TargetType = "Job";
  Arch = "X86_64"; OpSys = "LINUX"; Memory = 15872; TotalMemory = 15872; Cpus = 8; Disk = 412345678;
  State = "Unclaimed"; Activity = "Idle"; Start = true; Rank = 0; HasVM = true; VM_Type = "kvm";
  VM_Memory = 12288; VM_AvailNum = 4; VM_Networking = true; VM_Networking_Types = "nat,bridge";
  HasFileTransfer = true; Requirements = START && (TARGET.JobUniverse == 13) ]`

func (b *bench) classadScenario() error {
	job, err := classad.ParseAd(benchJobAd)
	if err != nil {
		return err
	}
	machine, err := classad.ParseAd(benchMachineAd)
	if err != nil {
		return err
	}
	req := classad.MustParseExpr(benchVMRequirements)
	if !req.Eval(job, machine).IsTrue() {
		return fmt.Errorf("bench: the default Requirements do not match the bench slot")
	}
	defer b.profile("classad")()
	n := b.n(5_000_000, 100_000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	for range n {
		req.Eval(job, machine)
	}
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	b.record("classad", "classad_eval_requirements_ns", "default vm Requirements against one slot ad", float64(took.Nanoseconds())/float64(n), "ns")
	b.record("classad", "", "  allocations per evaluation", float64(after.Mallocs-before.Mallocs)/float64(n), "allocs")

	// 100,000 jobs in 10 autoclusters against 10,000 slots: one
	// evaluation per (autocluster, slot) pair.
	nJobs, nSlots := b.n(100_000, 1000), b.n(10_000, 100)
	var jobs, slots []*classad.Ad
	for i := range 10 {
		shape := job.Copy()
		shape.SetInt("JobVMMemory", int64(1024*(i+1)))
		for j := i; j < nJobs; j += 10 {
			p := classad.NewAd()
			p.SetParent(shape)
			p.SetInt("ProcId", int64(j))
			jobs = append(jobs, p)
		}
	}
	for i := range nSlots {
		m := machine.Copy()
		m.SetString("Name", fmt.Sprintf("slot1@exec%05d.example", i))
		m.SetInt("VM_Memory", int64(1024*(i%12)))
		slots = append(slots, m)
	}
	start = time.Now()
	ac := classad.NewAutocluster(classad.SignificantAttrs(slots...))
	ids := make([]int, len(jobs))
	for i, j := range jobs {
		ids[i] = ac.ID(j)
	}
	matches := make([]int, ac.Len())
	for id := range matches {
		rep := ac.Representative(id)
		for _, m := range slots {
			if classad.Match(rep, m) {
				matches[id]++
			}
		}
	}
	took = time.Since(start)
	b.record("classad", "classad_match_100k_on_10k_s", fmt.Sprintf("match %d jobs (%d autoclusters) against %d slot ads", len(jobs), ac.Len(), len(slots)), took.Seconds(), "s")
	return nil
}
