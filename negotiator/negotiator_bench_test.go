package negotiator_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/negotiator"
)

// Benchmarks of matchmaking: a negotiation cycle over many idle jobs and
// free slots (the heart of "100,000 jobs on 10,000 startds"), and Apply of
// the schedd events the negotiator keeps.

const benchReq = `(TARGET.Arch == "X86_64") && (TARGET.HasVM =?= true) && (TARGET.VM_Type == MY.JobVMType) && (TARGET.VM_AvailNum > 0) && (TARGET.Disk >= RequestDisk) && (TARGET.TotalMemory >= MY.JobVMMemory) && (TARGET.VM_Memory >= MY.JobVMMemory) && (TARGET.HasFileTransfer)`

func event(src, typ string, seq uint64, cluster, proc int, p any) events.Event {
	b, _ := json.Marshal(p)
	return events.Event{V: 1, Source: src, Seq: seq, Type: typ, Time: int64(seq) * 1e9, Schedd: "schedd", Cluster: cluster, Proc: proc, Payload: b}
}

// queued returns a state with jobs idle jobs in clusters of perCluster.
func queued(b *testing.B, jobs, perCluster int) *negotiator.State {
	st := negotiator.NewState("negotiator", int64(120*time.Second))
	for c := 1; c*perCluster <= jobs; c++ {
		negotiator.Apply(st, event("schedd", events.ClusterSubmitted, uint64(c), c, -1, events.ClusterSubmittedPayload{
			SubmitID: fmt.Sprint(c), Owner: fmt.Sprintf("user%d", c%4), Iwd: "/home", NumProcs: perCluster,
			Attrs: []events.Attr{{Name: "JobVMType", Expr: `"sim"`}, {Name: "JobVMMemory", Expr: "16"},
				{Name: "RequestDisk", Expr: "16384"}, {Name: "Requirements", Expr: benchReq}}}))
	}
	if len(st.Jobs) != jobs {
		b.Fatalf("%d jobs queued, want %d", len(st.Jobs), jobs)
	}
	return st
}

// freeSlots returns n unclaimed slot ads as sim startds advertise them.
func freeSlots(b *testing.B, n int) []negotiator.Slot {
	var out []negotiator.Slot
	for i := 0; i < n; i++ {
		startd := fmt.Sprintf("sim%d", i/10+1)
		name := fmt.Sprintf("slot%d@%s", i%10+1, startd)
		ad, err := classad.ParseAd(`[ MyType = "Machine"; Name = "` + name + `"; StartdName = "` + startd + `"; Machine = "host";
			Arch = "X86_64"; OpSys = "LINUX"; State = "Unclaimed"; Activity = "Idle"; HasVM = true; VM_Type = "sim";
			VM_Memory = 4096; VM_AvailNum = 10; TotalMemory = 24000; Memory = 2400; Disk = 1000000; TotalDisk = 10000000;
			HasFileTransfer = true; Start = true; Requirements = START; Rank = 0; VmpoolClaims = 0; LastHeardFrom = 1700000000 ]`)
		if err != nil {
			b.Fatal(err)
		}
		s, ok := negotiator.SlotFromAd(ad)
		if !ok {
			b.Fatalf("slot %s", name)
		}
		out = append(out, s)
	}
	return out
}

// BenchmarkDecideCycle is one negotiation cycle: idle jobs (in clusters
// of 10, the autoclusters) against free slots; every slot is matched.
// The state is not changed by a cycle, so each iteration is the same one.
func BenchmarkDecideCycle(b *testing.B) {
	for _, size := range []struct{ jobs, slots int }{{1000, 100}, {1000, 1000}, {10000, 1000}, {10000, 10000}} {
		b.Run(fmt.Sprintf("jobs=%d/slots=%d", size.jobs, size.slots), func(b *testing.B) {
			st := queued(b, size.jobs, 10)
			slots := freeSlots(b, size.slots)
			now := time.Unix(1700000000, 0)
			b.ReportAllocs()
			matched := 0
			for b.Loop() {
				matched = len(negotiator.DecideCycle(st, slots, now))
			}
			if want := min(size.jobs, size.slots); matched != want {
				b.Fatalf("%d matches, want %d", matched, want)
			}
			b.ReportMetric(float64(b.N*matched)/b.Elapsed().Seconds(), "matches/s")
		})
	}
}

// BenchmarkApply folds the schedd events of a job's life that matter to
// matching into the negotiator's state.
func BenchmarkApply(b *testing.B) {
	const jobs = 1000
	var evs []events.Event
	seq := uint64(0)
	next := func() uint64 { seq++; return seq }
	for c := 1; c <= jobs; c++ {
		claim := fmt.Sprintf("negotiator#%d", c)
		evs = append(evs,
			event("schedd", events.ClusterSubmitted, next(), c, -1, events.ClusterSubmittedPayload{SubmitID: fmt.Sprint(c), Owner: "alice", Iwd: "/home", NumProcs: 1,
				Attrs: []events.Attr{{Name: "JobVMType", Expr: `"sim"`}, {Name: "JobVMMemory", Expr: "16"}, {Name: "Requirements", Expr: benchReq}}}),
			event("negotiator", events.Matched, next(), c, 0, events.MatchedPayload{MatchID: claim, Startd: "sim1", Slot: "slot1@sim1", Machine: "host"}),
			event("schedd", events.JobMatched, next(), c, 0, events.JobMatchedPayload{ClaimID: claim, Negotiator: "negotiator", Startd: "sim1", Slot: "slot1@sim1"}),
			event("schedd", events.JobStarted, next(), c, 0, events.JobStartedPayload{ClaimID: claim, Slot: "slot1@sim1"}),
			event("schedd", events.JobCompleted, next(), c, 0, events.JobCompletedPayload{ClaimID: claim}),
		)
	}
	b.ReportAllocs()
	for b.Loop() {
		st := negotiator.NewState("negotiator", int64(120*time.Second))
		for _, e := range evs {
			negotiator.Apply(st, e)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}
