package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/vmimage"
)

func mustAd(t *testing.T, src string) *classad.Ad {
	t.Helper()
	ad, err := classad.ParseAd(src)
	if err != nil {
		t.Fatalf("ad %s: %v", src, err)
	}
	return ad
}

const defaultVMRequirements = `(TARGET.Arch == "X86_64")&& (TARGET.HasVM =?= true) && (TARGET.VM_Type == MY.JobVMType) && (TARGET.VM_AvailNum > 0) && (TARGET.TotalMemory >= MY.JobVMMemory) && (TARGET.VM_Memory >= MY.JobVMMemory) && (TARGET.HasFileTransfer)`

// TestAnalyzeKnownMachines runs the analysis of an idle job against
// machine ads whose values are known, and checks the counts per clause,
// the verdict and the suggested fix.
func TestAnalyzeKnownMachines(t *testing.T) {
	machine := func(name, extra string) string {
		return `[Name = "` + name + `"; Arch = "X86_64"; HasVM = true; VM_Type = "kvm"; VM_AvailNum = 1; TotalMemory = 8192; VM_Memory = 2048; HasFileTransfer = true; State = "Unclaimed"; Start = true; Requirements = START; ` + extra + `]`
	}
	job := func(mem, vmType, extra string) string {
		return `[ClusterId = 1; ProcId = 0; JobStatus = 1; JobVMType = "` + vmType + `"; JobVMMemory = ` + mem + `; Requirements = ` + defaultVMRequirements + `; ` + extra + `]`
	}
	cases := []struct {
		name     string
		job      string
		machines []string
		want     []string
		wantNot  []string // must not appear
	}{{
		name:     "too much memory",
		job:      job("4096", "kvm", ""),
		machines: []string{machine("slot1@a", ""), machine("slot1@b", "VM_Memory = 1024;")},
		want: []string{
			"[5]           0  TARGET.VM_Memory >= MY.JobVMMemory",
			"[0]           2  TARGET.Arch == \"X86_64\"",
			"[5] no machine offers VM_Memory >= 4096; the largest VM_Memory is 2048 (slot1@a): lower vm_memory to at most 2048, or give an execute machine more VM_MEMORY",
			"     2 are rejected by your job's requirements",
			"     0 are able to run your job",
		},
	}, {
		name:     "unknown vm type",
		job:      job("64", "xen", ""),
		machines: []string{machine("slot1@a", ""), machine("slot1@b", "")},
		want: []string{
			"[2]           0  TARGET.VM_Type == MY.JobVMType",
			`[2] no machine has VM_Type == "xen"; machines have VM_Type = "kvm" (2): set vm_type to a type the pool offers, or run a startd with VM_TYPE = xen`,
		},
	}, {
		name:     "no hypervisor",
		job:      job("64", "kvm", ""),
		machines: []string{`[Name = "slot1@a"; Arch = "X86_64"; HasVM = false; VMOfflineReason = "qemu-system-x86_64 not found"; Requirements = START; Start = true]`},
		want: []string{
			"[1]           0  TARGET.HasVM =?= true",
			"[1] no machine has HasVM true; machines have HasVM = false (1): no execute machine can run VMs now (slot1@a: qemu-system-x86_64 not found)",
			"[3] no machine has VM_AvailNum > 0: no execute machine can run VMs now (slot1@a: qemu-system-x86_64 not found)",
		},
		wantNot: []string{"VM_MAX_NUMBER"},
	}, {
		name: "a machine whose VMs failed",
		job:  job("64", "kvm", ""),
		machines: []string{`[Name = "slot1@a"; Arch = "X86_64"; HasVM = false; VM_AvailNum = 0; VM_Type = "kvm"; VM_Memory = 2048; TotalMemory = 8192; HasFileTransfer = true;
			VMOfflineReason = "a VM failed to start"; Requirements = START; Start = true]`},
		want: []string{
			"[1] no machine has HasVM true; machines have HasVM = false (1): no execute machine can run VMs now (slot1@a: a VM failed to start)",
			"[3] no machine has VM_AvailNum > 0: no execute machine can run VMs now (slot1@a: a VM failed to start)",
		},
		wantNot: []string{"VM_MAX_NUMBER"},
	}, {
		name:     "the machines' START says no",
		job:      job("64", "kvm", `Owner = "alice";`),
		machines: []string{machine("slot1@a", `Start = (TARGET.Owner == "bob") && (TARGET.JobVMMemory < 1000);`), machine("slot1@b", "")},
		want: []string{
			"[5]           2  TARGET.VM_Memory >= MY.JobVMMemory",
			`    slot1@a: START = (TARGET.Owner == "bob") && (TARGET.JobVMMemory < 1000); TARGET.Owner == "bob" is false`,
			"     0 are rejected by your job's requirements",
			"     1 reject your job because of their own requirements",
			"     1 are able to run your job",
		},
	}, {
		name:     "each clause met somewhere, all of them nowhere",
		job:      job("4096", "kvm", ""),
		machines: []string{machine("slot1@a", `VM_Memory = 8192; VM_Type = "xen";`), machine("slot1@b", "")},
		want: []string{
			"every condition is met by some machine, but no machine meets them all: slot1@a fails [2]; slot1@b fails [5]",
		},
	}, {
		// A drained machine is not claimed (condor_status counts it under
		// Drain): the summary says it is drained, and how to undo that.
		name:     "drained machines",
		job:      job("64", "kvm", ""),
		machines: []string{machine("slot1@a", `State = "Drained";`), machine("slot1@b", `State = "Drained";`), machine("slot1@c", `State = "Claimed";`)},
		want: []string{
			"     1 match but are already claimed",
			"     2 match but are drained (condor_drain): vmpool drain -cancel NAME lets them take jobs again",
			"     0 are able to run your job",
		},
	}, {
		name:     "no machines",
		job:      job("64", "kvm", ""),
		want:     []string{"There are no machines in the pool"},
		machines: nil,
	}, {
		name:     "held",
		job:      `[ClusterId = 3; ProcId = 1; JobStatus = 5; HoldReason = "via condor_hold (by user alice)"; HoldReasonCode = 1; HoldReasonSubCode = 0]`,
		machines: []string{machine("slot1@a", "")},
		want:     []string{"Job 3.1 is held.", "Hold reason: via condor_hold (by user alice) (code 1/0)"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ms []*classad.Ad
			for _, m := range tc.machines {
				ms = append(ms, mustAd(t, m))
			}
			var b strings.Builder
			analyzeJob(&b, mustAd(t, tc.job), ms)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("analysis lacks %q:\n%s", w, b.String())
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(b.String(), w) {
					t.Errorf("analysis says %q:\n%s", w, b.String())
				}
			}
		})
	}
}

// TestAnalyzeRealPools asks a real pool why a job does not run: once
// because the job wants more VM memory than any machine has, once because
// the machines' START turns it down.
func TestAnalyzeRealPools(t *testing.T) {
	t.Run("vm_memory", func(t *testing.T) {
		tp := newTestPool(t, 2, "VM_MEMORY=512").serving()
		if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
			t.Fatal(err)
		}
		tp.mustRun("submit", tp.write("big.sub", strings.Replace(helloSub, "vm_memory = 16", "vm_memory = 4096", 1)))
		out := tp.mustRun("q", "-better-analyze", "1.0")
		for _, want := range []string{
			"The Requirements expression for job 1.0 is",
			"JobVMMemory = 4096",
			"TARGET.VM_Memory >= MY.JobVMMemory",
			"no machine offers VM_Memory >= 4096; the largest VM_Memory is 512 (slot1@startd1): lower vm_memory to at most 512",
			"1.0:  Run analysis summary.  Of 2 machines,",
			"     2 are rejected by your job's requirements",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("q -better-analyze lacks %q:\n%s", want, out)
			}
		}
		// -analyze without a job analyzes the user's jobs.
		if out2 := tp.mustRun("q", "-analyze"); !strings.Contains(out2, "the largest VM_Memory is 512") {
			t.Errorf("q -analyze:\n%s", out2)
		}
		if _, errOut, code := tp.vmpool("q", "-analyze", "9.0"); code != 1 || !strings.Contains(errOut, "no job 9.0 in the queue") {
			t.Errorf("q -analyze of a missing job: exit %d %q", code, errOut)
		}
	})
	t.Run("START", func(t *testing.T) {
		tp := newTestPool(t, 1, `START=TARGET.Owner == "nobody-here"`).serving()
		if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
			t.Fatal(err)
		}
		tp.mustRun("submit", tp.write("hello.sub", helloSub))
		out := tp.mustRun("q", "-better-analyze", "1")
		for _, want := range []string{
			"     0 are rejected by your job's requirements",
			"     1 reject your job because of their own requirements",
			`slot1@startd1: START = TARGET.Owner == "nobody-here"; TARGET.Owner == "nobody-here" is false`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("q -better-analyze lacks %q:\n%s", want, out)
			}
		}
	})
}
