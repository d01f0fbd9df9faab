package startd_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/startd"
	"github.com/vmpool/vmpool/startd/hypervisor"
)

// Benchmarks of the startd's hot paths: deciding a claim (parse the job
// ad, check memory, START and both Requirements), folding a claim's life
// into the state, and rendering slot ads for the collector.

// benchJobAd is a job ad as the schedd sends it in a claim: flattened,
// with the attributes condor_submit gives a vm job.
const benchJobAd = `[ MyType = "Job"; TargetType = "Machine"; ClusterId = 42; ProcId = 7; Owner = "alice"; User = "alice@schedd";
	QDate = 1700000000; TotalSubmitProcs = 100000; GlobalJobId = "schedd#42.7#1700000000"; Iwd = "/home/alice"; SubmitFile = "/home/alice/hello.sub";
	JobStatus = 1; EnteredCurrentStatus = 1700000000; NumJobStarts = 0; JobRunCount = 0; NumRestarts = 0; NumCkpts = 0; NumHolds = 0;
	RemoteWallClockTime = 0; CompletionDate = 0; BytesSent = 0; BytesRecvd = 0; JobUniverse = 13; Cmd = "hello_vm_job"; JobVMType = "sim";
	JobVMMemory = 16; ExecutableSize = 16384; JobVM_VCPUS = 1; JobVMCheckpoint = false; JobVMNetworking = false; JobVMVNCConsole = false;
	VMPARAM_vm_Disk = "/shared/hello.img:hda:r:raw"; VMPARAM_No_Output_VM = false; ShouldTransferFiles = "NO"; WhenToTransferOutput = "ON_EXIT";
	TransferExecutable = false; RequestCpus = 1; RequestMemory = 16; RequestDisk = 16384; DiskUsage = 16384; JobNotification = 0; JobPrio = 0;
	JobLeaseDuration = 2400; Rank = 0.0; LeaveJobInQueue = false; OnExitHold = false; OnExitRemove = true; PeriodicHold = false;
	PeriodicRelease = false; PeriodicRemove = false; SimRunSeconds = 86400;
	Requirements = (TARGET.Arch == "X86_64") && (TARGET.HasVM =?= true) && (TARGET.VM_Type == MY.JobVMType) && (TARGET.VM_AvailNum > 0) && (TARGET.Disk >= RequestDisk) && (TARGET.TotalMemory >= MY.JobVMMemory) && (TARGET.VM_Memory >= MY.JobVMMemory) && (TARGET.HasFileTransfer) ]`

func benchConfig() *startd.Config {
	return &startd.Config{Name: "sim1", VMType: "sim", VMMemory: 4096, VMMaxNumber: 10, NumSlots: 10, Start: "true", Rank: "0", DefaultNetworkingType: "nat"}
}

func benchFacts() startd.Facts {
	return startd.Facts{Host: "host", Arch: "X86_64", OpSys: "LINUX", TotalMemory: 24000, Cpus: 2, DiskKiB: 100 << 20,
		LastHeardFrom: 1700000000, StartTime: 1700000000,
		Fingerprint: hypervisor.Fingerprint{Type: "sim", Detected: true, Healthy: true, Version: "vmpool-sim 1", Networking: []string{"nat"}, Attrs: map[string]string{"accel": "sim"}}}
}

func claim(i int) events.ClaimRequest {
	return events.ClaimRequest{ClaimID: fmt.Sprintf("negotiator#%d", i), Schedd: "schedd", Job: events.JobID{Cluster: 42, Proc: i},
		Slot: "slot1@sim1", JobAd: benchJobAd, Owner: "alice"}
}

// BenchmarkDecideClaim decides claim requests for a free slot.
func BenchmarkDecideClaim(b *testing.B) {
	cfg := benchConfig()
	st := startd.NewState(cfg.Name, cfg.NumSlots)
	slot := st.Slot("slot1@sim1")
	if slot == nil {
		b.Fatal("no slot1@sim1")
	}
	ad := startd.MachineAd(cfg, st, slot, benchFacts())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		evs, reason := startd.DecideClaim(st, claim(i), ad, cfg.VMMemory, cfg.VMMaxNumber, time.Unix(1e9, 0))
		if len(evs) != 1 {
			b.Fatalf("claim refused: %s", reason)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
}

// BenchmarkApplyClaimLife folds a claim's life (accepted, started with
// its handle, exited) into the state.
func BenchmarkApplyClaimLife(b *testing.B) {
	const claims = 1000
	var evs []events.Event
	seq := uint64(0)
	add := func(e events.Event) {
		seq++
		e.Source, e.Seq, e.Time = "sim1", seq, int64(seq)*1e9
		evs = append(evs, e)
	}
	handle, _ := json.Marshal(hypervisor.Handle{Type: "sim", Name: "vmpool-x", Dir: "/x"})
	for i := 0; i < claims; i++ {
		req := claim(i)
		job := req.Job
		add(events.New(events.ClaimAccepted, startd.ClaimAcceptedPayload{Req: req, MemoryMiB: 16}).ForJob("schedd", job))
		add(events.New(events.VMStarted, events.VMEventPayload{ClaimID: req.ClaimID, Slot: req.Slot, Host: "host", Handle: handle}).ForJob("schedd", job))
		add(events.New(events.VMExited, events.VMEventPayload{ClaimID: req.ClaimID, Slot: req.Slot, PoweredOff: true}).ForJob("schedd", job))
	}
	b.ReportAllocs()
	for b.Loop() {
		st := startd.NewState("sim1", 10)
		for _, e := range evs {
			startd.Apply(st, e)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSlotAd renders and encodes one slot's machine ad, as the
// startd does for every slot whenever anything changes.
func BenchmarkSlotAd(b *testing.B) {
	cfg := benchConfig()
	st := startd.NewState(cfg.Name, cfg.NumSlots)
	f := benchFacts()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ad := startd.MachineAd(cfg, st, st.Slots[i%len(st.Slots)], f)
		if _, err := ad.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ads/s")
}
