package schedd

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
)

// TestClaimedOnlyWhenTheStartIsSlow runs a schedd on a real bus against a
// startd played by the test: it answers claims, publishes ClaimAccepted
// (which the schedd is not sent: it would record JobClaimed at once), and
// starts the VM of job 1.0 at once and that of job 1.1 never. The schedd
// records JobStarted for 1.0 with no JobClaimed before it, JobClaimed for
// 1.1 once the grace is over and not before, and sends each claim once
// although its periodic scan runs many times within the grace.
func TestClaimedOnlyWhenTheStartIsSlow(t *testing.T) {
	_, bus := eventstest.Bus(t)
	const grace = 700 * time.Millisecond
	s, err := New(Config{Dir: t.TempDir(), Bus: bus, ClaimedGrace: grace, RetryInterval: 50 * time.Millisecond,
		AdInterval: time.Hour, PolicyInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := runScheddReady(t, s)

	// The startd: answers every claim; publishes ClaimAccepted, and
	// VMStarted for proc 0 only.
	var mu sync.Mutex
	claims := map[string]int{}
	seq := uint64(0)
	publish := func(e events.Event) {
		mu.Lock()
		seq++
		e.V, e.Source, e.Seq, e.Time = events.Version, "sd1", seq, time.Now().UnixNano()
		mu.Unlock()
		if err := eventstest.Publish(ctx, bus.JS, events.RoleStartd, e); err != nil && ctx.Err() == nil {
			t.Error(err)
		}
	}
	srv := events.NewServer(bus.NC, nil, 4)
	if err := srv.Handle(ctx, events.CmdSubject(events.RoleStartd, "sd1", "claim"), func(_ context.Context, data []byte) (any, error) {
		var req events.ClaimRequest
		if err := json.Unmarshal(data, &req); err != nil {
			return nil, err
		}
		mu.Lock()
		claims[req.ClaimID]++
		mu.Unlock()
		publish(events.New(events.ClaimAccepted, events.ClaimAcceptedPayload{Req: req, MemoryMiB: 16}).ForJob(req.Schedd, req.Job))
		if req.Job.Proc == 0 {
			publish(events.New(events.VMStarted, events.VMEventPayload{ClaimID: req.ClaimID, Slot: req.Slot, Host: "<sd1>"}).ForJob(req.Schedd, req.Job))
		}
		return events.ClaimReply{Accepted: true}, nil
	}); err != nil {
		t.Fatal(err)
	}

	sub := events.ClusterSubmittedPayload{SubmitID: "t1", Owner: "alice", Iwd: "/tmp", NumProcs: 2,
		Attrs: []events.Attr{{Name: "JobUniverse", Expr: "13"}, {Name: "JobVMType", Expr: `"sim"`}, {Name: "JobVMMemory", Expr: "16"}}}
	if _, err := s.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
		ps, err := PrepareSubmit(SubmitCmd{Payload: sub})
		if err != nil {
			return nil, err
		}
		_, evs, err := DecidePreparedSubmit(s.q, ps)
		return evs, err
	}); err != nil {
		t.Fatal(err)
	}
	// The negotiator's matches.
	for proc := range 2 {
		id := events.JobID{Cluster: 1, Proc: proc}
		e := events.New(events.Matched, events.MatchedPayload{MatchID: "neg#" + id.String(), Startd: "sd1",
			Slot: "slot" + string(rune('1'+proc)) + "@sd1", Machine: "sd1"}).ForJob(s.cfg.Name, id)
		e.V, e.Source, e.Seq, e.Time = events.Version, "neg", uint64(proc+1), time.Now().UnixNano()
		if err := eventstest.Publish(ctx, bus.JS, events.RoleNegotiator, e); err != nil {
			t.Fatal(err)
		}
	}
	matched := time.Now()

	// state is the claim state of each proc and the schedd's own events
	// about it, in order.
	state := func() (st [2]ClaimState, evs [2][]string) {
		s.View(func(q *Queue) {
			for p := range 2 {
				if j := q.Jobs[events.JobID{Cluster: 1, Proc: p}]; j != nil && j.Claim != nil {
					st[p] = j.Claim.State
				}
			}
		})
		err := s.log.Scan(1, func(_ uint64, e events.Event) error {
			if e.Cluster == 1 && e.Source == s.log.Source() && e.Type != events.ClusterSubmitted {
				evs[e.Proc] = append(evs[e.Proc], e.Type)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return st, evs
	}
	waitFor := func(what string, ok func(st [2]ClaimState, evs [2][]string) bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			st, evs := state()
			if ok(st, evs) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: claim states %v, events %v", what, st, evs)
			}
		}
	}
	waitFor("proc 0 running", func(st [2]ClaimState, _ [2][]string) bool { return st[0] == ClaimRunning })
	if st, _ := state(); time.Since(matched) < grace && st[1] != ClaimMatched {
		t.Errorf("proc 1's claim is in state %d before the grace is over, want Matched", st[1])
	}
	waitFor("proc 1 claimed", func(st [2]ClaimState, _ [2][]string) bool { return st[1] == ClaimClaimed })
	if took := time.Since(matched); took < grace {
		t.Errorf("proc 1 claimed %v after its match, before the grace of %v", took, grace)
	}
	_, evs := state()
	want := [2][]string{{events.JobMatched, events.JobStarted}, {events.JobMatched, events.JobClaimed}}
	for p := range 2 {
		if len(evs[p]) != len(want[p]) || evs[p][0] != want[p][0] || evs[p][1] != want[p][1] {
			t.Errorf("proc %d: the schedd recorded %v, want %v", p, evs[p], want[p])
		}
	}
	time.Sleep(200 * time.Millisecond) // several more scans
	mu.Lock()
	defer mu.Unlock()
	if len(claims) != 2 {
		t.Errorf("claims sent: %v, want one per proc", claims)
	}
	for id, n := range claims {
		if n != 1 {
			t.Errorf("claim %s sent %d times, want once", id, n)
		}
	}
}

// runScheddReady runs s until the test ends (an error it stops with fails
// the test) and returns, with the context it runs in, once it serves.
func runScheddReady(t *testing.T, s *Schedd) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("schedd: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("schedd ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("schedd not ready")
	}
	return ctx
}
