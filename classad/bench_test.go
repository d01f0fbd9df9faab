package classad

import (
	"fmt"
	"testing"
)

// vmRequirements is the default Requirements condor_submit writes for a
// kvm job (REFERENCE §2).
const vmRequirements = `(TARGET.Arch == "X86_64") && (TARGET.HasVM =?= true) && (TARGET.VM_Type == MY.JobVMType) && (TARGET.VM_AvailNum > 0) && (TARGET.Disk >= RequestDisk) && (TARGET.TotalMemory >= MY.JobVMMemory) && (TARGET.VM_Memory >= MY.JobVMMemory) && (TARGET.HasFileTransfer)`

// jobAdText is a realistic 40-attribute vm-universe job ad in new syntax.
const jobAdText = `[
  ClusterId = 42; ProcId = 0; Owner = "alice"; User = "alice@pool.example";
  QDate = 1700000000; JobUniverse = 13; JobStatus = 1; JobPrio = 0;
  Iwd = "/home/alice/vms"; UserLog = "/home/alice/vms/job.log";
  GlobalJobId = "schedd.example#42.0#1700000000"; Cmd = "debian-12";
  TransferExecutable = false; JobVMType = "kvm"; JobVMMemory = 2048;
  JobVM_VCPUS = 2; JobVMNetworking = true; JobVMNetworkingType = "nat";
  JobVMCheckpoint = false; JobVMHardwareVT = false; JobVMVNCConsole = false;
  VMPARAM_vm_Disk = "debian.qcow2:vda:w"; VMPARAM_No_Output_VM = false;
  ExecutableSize = 2097152; RequestMemory = MY.JobVMMemory; RequestCpus = 1;
  RequestDisk = 20480000; ShouldTransferFiles = "YES"; WhenToTransferOutput = "ON_EXIT";
  TransferInput = "debian.qcow2"; LeaveJobInQueue = false; Rank = 0.0;
  NumJobStarts = 0; JobRunCount = 0; ExitBySignal = false; ExitCode = undefined;
  JobLeaseDuration = 2400; MyType = "Job"; TargetType = "Machine";
  Requirements = ` + vmRequirements + `
]`

// machineAdText is a realistic vm-capable slot.
const machineAdText = `[
  Name = "slot1@exec01.example"; Machine = "exec01.example"; MyType = "Machine"; TargetType = "Job";
  Arch = "X86_64"; OpSys = "LINUX"; Memory = 15872; TotalMemory = 15872; Cpus = 8;
  Disk = 412345678; TotalDisk = 412345678; State = "Unclaimed"; Activity = "Idle";
  EnteredCurrentActivity = 1700000100; Start = true; Rank = 0;
  HasVM = true; VM_Type = "kvm"; VM_Memory = 12288; VM_AvailNum = 4;
  VM_Networking = true; VM_Networking_Types = "nat,bridge"; VM_GAHP_VERSION = "0.2.0";
  HasFileTransfer = true; FileSystemDomain = "example"; MyAddress = "<10.0.0.5:9618>";
  LastHeardFrom = 1700000200;
  Requirements = START && (TARGET.JobUniverse == 13)
]`

func benchAds(b testing.TB) (job, machine *Ad) {
	job, err := ParseAd(jobAdText)
	if err != nil {
		b.Fatal(err)
	}
	machine, err = ParseAd(machineAdText)
	if err != nil {
		b.Fatal(err)
	}
	return job, machine
}

func BenchmarkEvalRequirements(b *testing.B) {
	job, machine := benchAds(b)
	req := MustParseExpr(vmRequirements)
	if v := req.Eval(job, machine); !v.IsTrue() {
		b.Fatalf("requirements = %v, want true", v)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req.Eval(job, machine)
	}
}

func BenchmarkMatch(b *testing.B) {
	job, machine := benchAds(b)
	if !Match(job, machine) {
		b.Fatal("no match")
	}
	b.ReportAllocs()
	for b.Loop() {
		Match(job, machine)
	}
}

func BenchmarkParseRequirements(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(vmRequirements)))
	for b.Loop() {
		if _, err := ParseExpr(vmRequirements); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseJobAd(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(jobAdText)))
	for b.Loop() {
		if _, err := ParseAd(jobAdText); err != nil {
			b.Fatal(err)
		}
	}
}

// matchPool builds nJobs jobs in nShapes autoclusters (they differ in
// memory and disk requests and carry unique ids) and nMachines machines
// of a few kinds.
func matchPool(b testing.TB, nJobs, nShapes, nMachines int) (jobs, machines []*Ad) {
	cluster, machine := benchAds(b)
	for i := 0; i < nShapes; i++ {
		shape := cluster.Copy()
		shape.SetInt("JobVMMemory", int64(1024*(i+1)))
		shape.SetInt("RequestDisk", int64(1000000*(i+1)))
		for j := i; j < nJobs; j += nShapes {
			job := NewAd()
			job.SetParent(shape)
			job.SetInt("ProcId", int64(j))
			job.SetInt("QDate", int64(1700000000+j))
			job.SetString("GlobalJobId", fmt.Sprintf("schedd#42.%d#%d", j, 1700000000+j))
			jobs = append(jobs, job)
		}
	}
	for i := 0; i < nMachines; i++ {
		m := machine.Copy()
		m.SetString("Name", fmt.Sprintf("slot1@exec%05d.example", i))
		m.SetInt("VM_Memory", int64(1024*(i%12)))
		m.SetInt("Disk", int64(1000000*(i%9)))
		machines = append(machines, m)
	}
	return jobs, machines
}

// BenchmarkMatchAutoclustered matches 100,000 jobs in 10 autoclusters
// against 10,000 machines: group the jobs, then evaluate one
// representative per group against every machine.
func BenchmarkMatchAutoclustered(b *testing.B) {
	jobs, machines := matchPool(b, 100_000, 10, 10_000)
	b.ReportAllocs()
	var pairs int
	for b.Loop() {
		ac := NewAutocluster(SignificantAttrs(machines...))
		ids := make([]int, len(jobs))
		for i, j := range jobs {
			ids[i] = ac.ID(j)
		}
		matches := make([]int, ac.Len())
		for id := range matches {
			rep := ac.Representative(id)
			for _, m := range machines {
				if Match(rep, m) {
					matches[id]++
				}
			}
		}
		pairs = 0
		for _, id := range ids {
			pairs += matches[id]
		}
	}
	b.ReportMetric(float64(len(jobs))*float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64(pairs), "matched-pairs")
}

// BenchmarkMatchNaive matches 100 jobs against 10,000 machines without
// autoclustering, for comparison (jobs/s is comparable with
// BenchmarkMatchAutoclustered).
func BenchmarkMatchNaive(b *testing.B) {
	jobs, machines := matchPool(b, 100, 10, 10_000)
	b.ReportAllocs()
	for b.Loop() {
		for _, j := range jobs {
			for _, m := range machines {
				Match(j, m)
			}
		}
	}
	b.ReportMetric(float64(len(jobs))*float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

func BenchmarkPrintJobAd(b *testing.B) {
	job, _ := benchAds(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = job.String()
	}
}

// BenchmarkUnmarshalJSONJobAd reads the job ad as JSON, as the negotiator
// reads every slot ad the collector hands it.
func BenchmarkUnmarshalJSONJobAd(b *testing.B) {
	ad, err := ParseAd(jobAdText)
	if err != nil {
		b.Fatal(err)
	}
	data, err := ad.MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var got Ad
		if err := got.UnmarshalJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseProcAd parses the attributes a schedd writes for each
// proc of a cluster, as a startd parses a claim's job ad apart from the
// cluster's shared part: mostly literals, two of them (ProcId,
// GlobalJobId) new in every ad.
func BenchmarkParseProcAd(b *testing.B) {
	b.ReportAllocs()
	texts := make([]string, 4096)
	for i := range texts {
		texts[i] = fmt.Sprintf(`[ MyType = "Job"; TargetType = "Machine"; ClusterId = 1; ProcId = %d; Owner = "alice"; User = "alice@schedd"; `+
			`QDate = 1764878400; TotalSubmitProcs = 100000; GlobalJobId = "schedd#1.%d#1764878400"; Iwd = "/home/alice/vms"; `+
			`SubmitFile = "/home/alice/vms/sim.sub"; JobStatus = 1; EnteredCurrentStatus = 1764878400; NumJobStarts = 0; JobRunCount = 0; `+
			`NumRestarts = 0; NumCkpts = 0; NumHolds = 0; RemoteWallClockTime = 0; CompletionDate = 0; VmpoolClaimState = "Matched"; `+
			`TransferringOutput = false; BytesSent = 0; BytesRecvd = 0 ]`, 100000+i, 100000+i)
	}
	i := 0
	for b.Loop() {
		if _, err := ParseAd(texts[i%len(texts)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
