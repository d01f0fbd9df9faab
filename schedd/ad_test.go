package schedd

import (
	"encoding/json"
	"testing"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// AppendJSON writes what MarshalJSON writes of the job's ad, also where
// submitted attributes are shadowed: a proc's own attribute over its
// cluster's, and the queue's dynamic attributes over both, whatever the
// case of the submitted name.
func TestAppendJSONShadowsAsTheAdDoes(t *testing.T) {
	q := NewQueue("schedd")
	p := events.ClusterSubmittedPayload{SubmitID: "s1", Owner: "alice", Iwd: "/home/alice", NumProcs: 3,
		Attrs: []events.Attr{
			{Name: "Cmd", Expr: `"vm <&> \u2028"`},
			{Name: "owner", Expr: `"mallory"`},
			{Name: "JOBSTATUS", Expr: "7"},
			{Name: "HoldReason", Expr: `"submitted"`},
			{Name: "Requirements", Expr: `TARGET.Memory >= 16 && (Arch == "X86_64")`},
			{Name: "Disks", Expr: `{ "a", [ x = 1 ] }`},
		},
		Procs: []events.ProcSpec{
			{},
			{Attrs: []events.Attr{{Name: "cmd", Expr: `"own"`}, {Name: "Extra", Expr: "1.5"}}},
			{Attrs: []events.Attr{{Name: "RemoteHost", Expr: `"submitted-host"`}}},
		},
	}
	e := events.New(events.ClusterSubmitted, p)
	e.Cluster, e.Proc, e.Source, e.Seq, e.Time = 1, -1, "schedd", 1, 1_700_000_000e9
	Apply(q, e)
	if len(q.Jobs) != 3 {
		t.Fatalf("%d jobs queued, want 3", len(q.Jobs))
	}
	// Hold proc 0, so that the queue's HoldReason shadows the submitted one.
	h := events.New(events.JobHeld, events.JobHeldPayload{Code: 1, Reason: "held by test"}).ForJob("schedd", events.JobID{Cluster: 1, Proc: 0})
	h.Source, h.Seq, h.Time = "schedd", 2, 1_700_000_001e9
	Apply(q, h)
	checkJSON(t, q)
	var ad map[string]any
	if err := json.Unmarshal(q.Jobs[events.JobID{Cluster: 1, Proc: 0}].AppendJSON(nil, "schedd", JSONCache{}), &ad); err != nil {
		t.Fatalf("AppendJSON is not JSON: %v", err)
	}
	if ad["Owner"] != "alice" || ad["owner"] != nil || ad["HoldReason"] != "held by test" || ad["JobStatus"] != float64(Held) {
		t.Fatalf("shadowing broken: %v", ad)
	}
}

// DecodeQueryChunk decodes what json.Unmarshal decodes: the chunks encode
// writes, and other layouts it must leave to encoding/json.
func TestDecodeQueryChunkIsUnmarshal(t *testing.T) {
	ads := []json.RawMessage{json.RawMessage(`{"A":1,"S":"x]}"}`), json.RawMessage(`{"B":[1,{"c":"\""}]}`)}
	var cases []string
	for _, c := range []QueryChunk{
		{Ads: ads},
		{Ads: ads[:1], Totals: &Totals{Jobs: 2, Idle: 1}, Schedd: "s", LogSeq: 9},
		{Totals: &Totals{}},
		{Snapshot: []byte("abc"), Schedd: "s"},
	} {
		b, err := c.encode()
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, string(b))
	}
	cases = append(cases, `{"ads":[]}`, `{"ads":[ {"a":1}]}`, `{"ads":[{"a":1} ]}`, `{"ads":[{"a":1}],}`,
		`{"ads":[{"a":1}]} `, `{"ads":[{"a":1},]}`, `{"ads":[{"a":1}`, `{"ads":[{"a":1}],"ads":[{"b":2}]}`,
		`{"ads":[{"a":1}],"totals":{"jobs":1}}`, `{"ads":[{"a":}]}`, `{"ads":[1],"schedd":7}`)
	for _, c := range cases {
		got, gerr := DecodeQueryChunk([]byte(c))
		var want QueryChunk
		werr := json.Unmarshal([]byte(c), &want)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%s: DecodeQueryChunk error %v, json.Unmarshal error %v", c, gerr, werr)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if gerr == nil && string(gb) != string(wb) {
			t.Fatalf("%s:\nDecodeQueryChunk %s\njson.Unmarshal   %s", c, gb, wb)
		}
	}
}

// TestLazyAdsParseOnceForAll: a submit's ads are parsed when first read,
// not when applied; readers racing for a fresh cluster's ad and a proc's
// own ad all get one ad each, the proc's chained to its cluster's, with
// the submitted attributes (an attribute that does not parse is an error
// literal, as Apply made it before).
func TestLazyAdsParseOnceForAll(t *testing.T) {
	q := NewQueue("schedd")
	p := events.ClusterSubmittedPayload{SubmitID: "s1", Owner: "alice", Iwd: "/home/alice", NumProcs: 2,
		Attrs: []events.Attr{{Name: "JobVMMemory", Expr: "16"}, {Name: "Broken", Expr: "1 +"}},
		Procs: []events.ProcSpec{{}, {Attrs: []events.Attr{{Name: "JobVMMemory", Expr: "32"}}}},
	}
	e := events.New(events.ClusterSubmitted, p)
	e.Cluster, e.Proc, e.Source, e.Seq, e.Time = 1, -1, "schedd", 1, 1_700_000_000e9
	Apply(q, e)
	c := q.Clusters[1]
	own := q.Jobs[events.JobID{Cluster: 1, Proc: 1}]
	if c.Lazy.Built() || own.OwnLazy.Built() {
		t.Fatal("Apply parsed the submitted ads; they are parsed when first read")
	}
	const readers = 8
	got := make(chan [2]*classad.Ad, readers)
	start := make(chan struct{})
	for range readers {
		go func() {
			<-start
			got <- [2]*classad.Ad{own.Own(), c.Ad()}
		}()
	}
	close(start)
	first := <-got
	for range readers - 1 {
		if g := <-got; g != first {
			t.Fatalf("readers got different ads: %p %p, %p %p", g[0], g[1], first[0], first[1])
		}
	}
	if first[0] != own.Own() || first[1] != c.Ad() {
		t.Fatal("a later read got another ad")
	}
	if v, _ := first[0].EvalInt("JobVMMemory"); v != 32 {
		t.Errorf("proc 1 JobVMMemory = %d, want 32", v)
	}
	if v, _ := q.Jobs[events.JobID{Cluster: 1, Proc: 0}].Ad("schedd").EvalInt("JobVMMemory"); v != 16 {
		t.Errorf("proc 0 JobVMMemory = %d, want 16", v)
	}
	if v := first[0].Eval("Broken"); !v.IsError() {
		t.Errorf("proc 1 sees Broken = %v through its cluster, want error", v)
	}
	if q.Jobs[events.JobID{Cluster: 1, Proc: 0}].Own() != nil {
		t.Error("proc 0 has an own ad")
	}
}

// A held job that is removed keeps its HoldReason, HoldReasonCode and
// HoldReasonSubCode in its history ad, as HTCondor's does (only a release
// moves the reason to LastHoldReason); one that was released first keeps
// none.
func TestRemovedHeldJobKeepsHoldReason(t *testing.T) {
	q := NewQueue("schedd")
	p := events.ClusterSubmittedPayload{SubmitID: "s1", Owner: "alice", Iwd: "/home/alice", NumProcs: 2,
		Attrs: []events.Attr{{Name: "Cmd", Expr: `"vm"`}}, Procs: []events.ProcSpec{{}, {}}}
	e := events.New(events.ClusterSubmitted, p)
	e.Cluster, e.Proc, e.Source, e.Seq, e.Time = 1, -1, "schedd", 1, 1_700_000_000e9
	Apply(q, e)
	seq := uint64(1)
	apply := func(typ string, proc int, payload any) {
		seq++
		ev := events.New(typ, payload).ForJob("schedd", events.JobID{Cluster: 1, Proc: proc})
		ev.Source, ev.Seq, ev.Time = "schedd", seq, int64(1_700_000_000+seq)*1e9
		Apply(q, ev)
	}
	for proc := range 2 {
		apply(events.JobHeld, proc, events.JobHeldPayload{Code: 1, SubCode: 7, Reason: "testing holds"})
	}
	apply(events.JobReleased, 1, events.JobActionPayload{Reason: "via condor_release (by user alice)"})
	for proc := range 2 {
		apply(events.JobRemoved, proc, events.JobActionPayload{Reason: "via condor_rm (by user alice)"})
	}
	if len(q.History) != 2 {
		t.Fatalf("%d jobs in the history, want 2", len(q.History))
	}
	for _, j := range q.History {
		ad := j.Ad("schedd")
		reason, _ := ad.EvalString("HoldReason")
		code, _ := ad.EvalInt("HoldReasonCode")
		sub, _ := ad.EvalInt("HoldReasonSubCode")
		status, _ := ad.EvalInt("JobStatus")
		if status != int64(Removed) {
			t.Errorf("%v: JobStatus %d", j.ID, status)
		}
		switch j.ID.Proc {
		case 0:
			if reason != "testing holds" || code != 1 || sub != 7 {
				t.Errorf("removed while held: HoldReason %q, HoldReasonCode %d, HoldReasonSubCode %d", reason, code, sub)
			}
		case 1:
			if _, ok := ad.Lookup("HoldReason"); ok {
				t.Errorf("released, then removed: HoldReason %q", reason)
			}
			if last, _ := ad.EvalString("LastHoldReason"); last != "testing holds" {
				t.Errorf("LastHoldReason %q", last)
			}
		}
	}
}
