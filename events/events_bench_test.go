package events_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/vmpool/vmpool/events"
)

// Benchmarks of the event hot paths: every event is encoded once when
// appended, once per publish, and decoded by every consumer and replay.
// Each reports the unit a pool feels (events/s).

// benchEvents are typical events: a submit of a small cluster with its
// attributes, and a VM report.
func benchEvents() []events.Event {
	sub := events.New(events.ClusterSubmitted, events.ClusterSubmittedPayload{
		SubmitID: "0123456789abcdef01234567", Owner: "alice", SubmitHost: "submit.example.org", File: "/home/alice/hello.sub",
		Iwd: "/home/alice", NumProcs: 1, Attrs: []events.Attr{
			{Name: "JobUniverse", Expr: "13"}, {Name: "Cmd", Expr: `"hello_vm_job"`}, {Name: "JobVMType", Expr: `"kvm"`},
			{Name: "JobVMMemory", Expr: "16"}, {Name: "VMPARAM_vm_Disk", Expr: `"hello.img:hda:w:raw"`}, {Name: "RequestDisk", Expr: "16384"},
			{Name: "Requirements", Expr: `(TARGET.Arch == "X86_64") && (TARGET.HasVM =?= true) && (TARGET.VM_Type == MY.JobVMType) && (TARGET.VM_AvailNum > 0) && (TARGET.Disk >= RequestDisk) && (TARGET.TotalMemory >= MY.JobVMMemory) && (TARGET.VM_Memory >= MY.JobVMMemory) && (TARGET.HasFileTransfer)`},
		}}).ForCluster("schedd", 42)
	vm := events.New(events.VMStarted, events.VMEventPayload{ClaimID: "negotiator#4242", Slot: "slot1@startd7", Host: "<10.0.0.7:9618>"}).
		ForJob("schedd", events.JobID{Cluster: 42, Proc: 0})
	out := []events.Event{sub, vm}
	for i := range out {
		out[i].Source, out[i].Seq, out[i].Time = "schedd", uint64(i+1), 1_700_000_000_000_000_000
	}
	return out
}

func BenchmarkEncode(b *testing.B) {
	evs := benchEvents()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := events.Encode(evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecode(b *testing.B) {
	var wire [][]byte
	for _, e := range benchEvents() {
		w, err := events.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		wire = append(wire, w)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := events.Decode(wire[i%len(wire)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppend is one daemon's synced appends: a batch is what the
// daemon loop commits for the commands that arrived together.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			l, err := events.OpenLog(b.TempDir(), "schedd", events.LogOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			proto := benchEvents()[1]
			evs := make([]events.Event, batch)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				for j := range evs {
					evs[j] = proto
					evs[j].Seq, evs[j].Cluster = 0, i+1
				}
				if _, err := l.Append(evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkStoreAppendParallel is many simulated startds appending to
// their logs in one shared Store at once: Pebble group-commits them.
func BenchmarkStoreAppendParallel(b *testing.B) {
	s, err := events.OpenStore(b.TempDir(), events.LogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var next atomic.Int64
	proto := benchEvents()[1]
	b.SetParallelism(64) // many startds per CPU
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		l, err := s.Log(fmt.Sprintf("sim%d", next.Add(1)))
		if err != nil {
			b.Error(err)
			return
		}
		defer l.Close()
		for pb.Next() {
			e := proto
			e.Seq = 0
			if _, err := l.Append([]events.Event{e}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkScan is replay's first half: reading and decoding a log.
func BenchmarkScan(b *testing.B) {
	const n = 100000
	l, err := events.OpenLog(b.TempDir(), "schedd", events.LogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	proto := benchEvents()
	batch := make([]events.Event, 0, 1000)
	for i := 0; i < n; i++ {
		e := proto[i%len(proto)]
		e.Seq = 0
		batch = append(batch, e)
		if len(batch) == cap(batch) {
			if _, err := l.Append(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		count := 0
		if err := l.Scan(1, func(uint64, events.Event) error { count++; return nil }); err != nil {
			b.Fatal(err)
		}
		if count != n {
			b.Fatalf("scanned %d of %d", count, n)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}
