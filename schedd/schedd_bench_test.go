package schedd_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/schedd"
)

// Benchmarks of the schedd's core hot paths: Apply (every event, live and
// in replay), a big submit, and rendering job ads for queries.

const benchReq = `(TARGET.Arch == "X86_64") && (TARGET.HasVM =?= true) && (TARGET.VM_Type == MY.JobVMType) && (TARGET.VM_AvailNum > 0) && (TARGET.Disk >= RequestDisk) && (TARGET.TotalMemory >= MY.JobVMMemory) && (TARGET.VM_Memory >= MY.JobVMMemory) && (TARGET.HasFileTransfer)`

func submitted(cluster, procs int) events.Event {
	return stamp(events.New(events.ClusterSubmitted, events.ClusterSubmittedPayload{
		SubmitID: fmt.Sprintf("bench-%d", cluster), Owner: "alice", SubmitHost: "submit", File: "/home/alice/hello.sub",
		Iwd: "/home/alice", NumProcs: procs, Attrs: []events.Attr{
			{Name: "JobUniverse", Expr: "13"}, {Name: "Cmd", Expr: `"hello_vm_job"`}, {Name: "JobVMType", Expr: `"kvm"`},
			{Name: "JobVMMemory", Expr: "16"}, {Name: "VMPARAM_vm_Disk", Expr: `"hello.img:hda:w:raw"`},
			{Name: "RequestDisk", Expr: "16384"}, {Name: "Requirements", Expr: benchReq},
		}}).ForCluster("schedd", cluster), cluster)
}

func stamp(e events.Event, cluster int) events.Event {
	e.Source, e.Seq, e.Time = "schedd", uint64(cluster), int64(cluster)*1e9
	return e
}

// life is a single-job cluster's whole life in the schedd's log.
func life(cluster int) []events.Event {
	id := events.JobID{Cluster: cluster}
	claim := fmt.Sprintf("negotiator#%d", cluster)
	slot := "slot1@startd1"
	return []events.Event{
		submitted(cluster, 1),
		stamp(events.New(events.JobMatched, events.JobMatchedPayload{ClaimID: claim, Negotiator: "negotiator", Startd: "startd1", Slot: slot, Machine: "host"}).ForJob("schedd", id), cluster),
		stamp(events.New(events.JobClaimed, events.ClaimPayload{ClaimID: claim, Slot: slot}).ForJob("schedd", id), cluster),
		stamp(events.New(events.JobStarted, events.JobStartedPayload{ClaimID: claim, Slot: slot, Host: "host"}).ForJob("schedd", id), cluster),
		stamp(events.New(events.JobExited, events.VMEventPayload{ClaimID: claim, Slot: slot, PoweredOff: true, RunNanos: 1e9}).ForJob("schedd", id), cluster),
		stamp(events.New(events.JobCompleted, events.JobCompletedPayload{ClaimID: claim, RunNanos: 1e9}).ForJob("schedd", id), cluster),
	}
}

// BenchmarkApplyJobLife folds whole job lives (six events each) into a
// queue, as the live schedd and replay do.
func BenchmarkApplyJobLife(b *testing.B) {
	const lives = 1024
	var evs []events.Event
	for c := 1; c <= lives; c++ {
		evs = append(evs, life(c)...)
	}
	b.ReportAllocs()
	for b.Loop() {
		q := schedd.NewQueue("schedd")
		for _, e := range evs {
			schedd.Apply(q, e)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkApplySubmit100k is one submit of queue 100000: the event that
// makes the queue, and the memory each queued job costs.
func BenchmarkApplySubmit100k(b *testing.B) {
	const procs = 100000
	e := submitted(1, procs)
	var q *schedd.Queue
	var before, after runtime.MemStats
	for b.Loop() {
		q = schedd.NewQueue("schedd")
		schedd.Apply(q, e)
	}
	b.StopTimer()
	if len(q.Jobs) != procs {
		b.Fatalf("%d jobs queued, want %d", len(q.Jobs), procs)
	}
	q = nil
	runtime.GC()
	runtime.ReadMemStats(&before)
	q = schedd.NewQueue("schedd")
	schedd.Apply(q, e)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(q)
	b.ReportMetric(float64(b.N*procs)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/procs, "B/job")
}

// BenchmarkJobAdJSON renders queued jobs as condor_q -json does: the
// job's full ad, flattened, in JSON.
func BenchmarkJobAdJSON(b *testing.B) {
	q := schedd.NewQueue("schedd")
	schedd.Apply(q, submitted(1, 1000))
	jobs := q.Sorted()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j := jobs[i%len(jobs)]
		if _, err := json.Marshal(j.Ad(q.Name).Flatten()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkJobAppendJSON renders queued jobs as the schedd answers
// condor_q -json: AppendJSON, the submitted attributes rendered once per
// query (the bytes of BenchmarkJobAdJSON's path, without building ads).
func BenchmarkJobAppendJSON(b *testing.B) {
	q := schedd.NewQueue("schedd")
	schedd.Apply(q, submitted(1, 1000))
	jobs := q.Sorted()
	cache := schedd.JSONCache{}
	var buf []byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = jobs[i%len(jobs)].AppendJSON(buf[:0], q.Name, cache)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkTotals counts the queue by status as condor_q -totals does,
// at 100,000 queued jobs.
func BenchmarkTotals(b *testing.B) {
	q := schedd.NewQueue("schedd")
	schedd.Apply(q, submitted(1, 100000))
	b.ReportAllocs()
	for b.Loop() {
		var t schedd.Totals
		for _, j := range q.Sorted() {
			t.Add(j.Status)
		}
		if t.Idle != 100000 {
			b.Fatalf("totals %+v", t)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/query")
}

// BenchmarkSnapshotRestore decodes the snapshot of a queue of one cluster
// of 100,000 jobs and 20,000 single-job clusters, as a restart does.
func BenchmarkSnapshotRestore(b *testing.B) {
	q := schedd.NewQueue("schedd")
	schedd.Apply(q, submitted(1, 100000))
	for c := 2; c <= 20001; c++ {
		schedd.Apply(q, submitted(c, 1))
	}
	data, err := schedd.MarshalSnapshot(q, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := schedd.UnmarshalSnapshot(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(q.Jobs))/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkSnapshotWrite encodes that queue's snapshot, as the schedd
// does every QUEUE_SNAPSHOT_EVENTS records with its queue read-locked.
func BenchmarkSnapshotWrite(b *testing.B) {
	q := schedd.NewQueue("schedd")
	schedd.Apply(q, submitted(1, 100000))
	for c := 2; c <= 20001; c++ {
		schedd.Apply(q, submitted(c, 1))
	}
	for b.Loop() {
		if _, err := schedd.MarshalSnapshot(q, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(q.Jobs))/b.Elapsed().Seconds(), "jobs/s")
}
