package schedd

import (
	"errors"
	"strings"
	"testing"

	"github.com/vmpool/vmpool/events"
)

// TestCheckAttrsRefusesEveryTime: a submit's good expression is taken
// again and again, a bad one refused every time, however often both come
// (checkAttrs skips the parse of a text that parsed before).
func TestCheckAttrsRefusesEveryTime(t *testing.T) {
	good := events.Attr{Name: "Requirements", Expr: `TARGET.Memory >= 512 && TARGET.VM_Type == "kvm" /* check test */`}
	bad := events.Attr{Name: "Rank", Expr: `(TARGET.Memory >= /* check test */`}
	for i := range 3 {
		if err := checkAttrs("", []events.Attr{good}); err != nil {
			t.Fatalf("round %d: %s refused: %v", i, good.Expr, err)
		}
		err := checkAttrs("", []events.Attr{good, bad})
		if !errors.Is(err, ErrBadSubmit) || !strings.Contains(err.Error(), "attribute Rank") || !strings.Contains(err.Error(), "column") {
			t.Fatalf("round %d: %s: got %v, want a bad-submit naming Rank and where", i, bad.Expr, err)
		}
	}
}

// TestSubmitOfTooManyJobsRefused: a submit request written by hand (not
// by vmpool submit, which stops at 1,000,000) with num_procs 1,000,000,000
// and no proc specs is refused before the schedd builds any job; it had
// the schedd build a billion jobs (10 GB and counting) and stop serving.
func TestSubmitOfTooManyJobsRefused(t *testing.T) {
	p := events.ClusterSubmittedPayload{SubmitID: "s1", Owner: "bob", Iwd: "/home/bob", NumProcs: 1_000_000_000,
		Attrs: []events.Attr{{Name: "Cmd", Expr: `"x"`}}}
	_, err := PrepareSubmit(SubmitCmd{Payload: p})
	if !errors.Is(err, ErrBadSubmit) || !strings.Contains(err.Error(), "1000000000 jobs in one cluster: at most 1000000") {
		t.Fatalf("got %v, want a bad-submit naming the bound", err)
	}
	p.NumProcs = 1_000_000
	if _, err := PrepareSubmit(SubmitCmd{Payload: p}); err != nil {
		t.Fatalf("%d jobs refused: %v", p.NumProcs, err)
	}
}

// TestMayDeriveCoversEveryAnswer: DecideForeign skips decoding a startd
// event when mayDerive says no event can come of it; that must hold for
// every claim state the job may be in, every startd event type, and every
// payload (a checkpoint, a hold), or a report would be lost.
func TestMayDeriveCoversEveryAnswer(t *testing.T) {
	types := []string{events.ClaimAccepted, events.VMStarted, events.VMCheckpointed, events.VMEvicted,
		events.VMExited, events.VMFailed, events.VMStopped, events.SlotState}
	payloads := []events.VMEventPayload{
		{ClaimID: "c1", Slot: "slot1@s"},
		{ClaimID: "c1", Slot: "slot1@s", Checkpoint: &events.Checkpoint{Slot: "slot1@s"}},
		{ClaimID: "c1", Slot: "slot1@s", Hold: true, Code: 6},
	}
	derived := 0
	for st := ClaimMatched; st <= ClaimStopping; st++ {
		for _, mode := range []string{events.ModeVacate, events.ModeKill} {
			for _, status := range []int{Idle, Running, Held, Removed} {
				j := &Job{ID: events.JobID{Cluster: 1}, Status: status, Claim: &Claim{ID: "c1", State: st, StopMode: mode}}
				for _, typ := range types {
					for _, p := range payloads {
						evs := startdEventFor("schedd", j, typ, p)
						derived += len(evs)
						if len(evs) > 0 && !mayDerive(j, typ) {
							t.Errorf("claim state %d, %s: mayDerive says no, but it records %s", st, typ, evs[0].Type)
						}
					}
				}
			}
		}
	}
	if derived == 0 {
		t.Fatal("no state and type derived anything: the test checks nothing")
	}
	if mayDerive(nil, events.VMExited) || mayDerive(&Job{}, events.VMExited) {
		t.Error("mayDerive says yes for a job that is gone or holds no claim")
	}
}

// TestSubmitCannotForgeOwnedAttributes: a submit request written by hand
// may not give an attribute the schedd owns, nor an Owner other than the
// submitter's (the negotiator read a proc's Owner = "alice" from bob as
// it came, and matched the job as alice's).
func TestSubmitCannotForgeOwnedAttributes(t *testing.T) {
	base := func() events.ClusterSubmittedPayload {
		return events.ClusterSubmittedPayload{SubmitID: "s1", Owner: "bob", Iwd: "/home/bob", NumProcs: 2,
			Attrs: []events.Attr{{Name: "Owner", Expr: `"bob"`}, {Name: "Cmd", Expr: `"x"`}},
			Procs: []events.ProcSpec{{}, {}}}
	}
	if _, err := PrepareSubmit(SubmitCmd{Payload: base()}); err != nil {
		t.Fatalf("bob's own submit: %v", err)
	}
	for name, edit := range map[string]func(p *events.ClusterSubmittedPayload){
		"cluster Owner": func(p *events.ClusterSubmittedPayload) { p.Attrs[0].Expr = `"alice"` },
		"proc Owner": func(p *events.ClusterSubmittedPayload) {
			p.Procs[1].Attrs = []events.Attr{{Name: "owner", Expr: `"alice"`}}
		},
		"proc ClusterId": func(p *events.ClusterSubmittedPayload) {
			p.Procs[0].Attrs = []events.Attr{{Name: "ClusterId", Expr: "7"}}
		},
		"cluster QDate": func(p *events.ClusterSubmittedPayload) {
			p.Attrs = append(p.Attrs, events.Attr{Name: "QDate", Expr: "0"})
		},
		"Owner not text": func(p *events.ClusterSubmittedPayload) { p.Attrs[0].Expr = `Cmd` },
	} {
		p := base()
		edit(&p)
		if _, err := PrepareSubmit(SubmitCmd{Payload: p}); !errors.Is(err, ErrBadSubmit) {
			t.Errorf("%s: %v, want a bad submit", name, err)
		}
	}
}
