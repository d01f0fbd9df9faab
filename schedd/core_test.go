package schedd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/schedd/userlog"
)

// coreHarness drives the schedd's pure core the way the shell does: a
// command is decided against the queue, its events are stamped and
// applied. Every event goes into an in-memory log so that the script's
// end can replay it from zero and compare.
type coreHarness struct {
	q      *Queue
	log    []events.Event
	seq    uint64
	now    int64
	inputs map[string]uint64 // foreign source -> seq
	// Every event whose user log entries broke the rule that a removed
	// job's 009 is written by the event with which it leaves the queue.
	ulogErrs []string
}

func newHarness() *coreHarness {
	return &coreHarness{q: NewQueue("schedd"), now: 1_700_000_000, inputs: map[string]uint64{}}
}

func (h *coreHarness) commit(evs []events.Event) string {
	h.now++
	var b strings.Builder
	for _, e := range evs {
		h.seq++
		e.V, e.Source, e.Seq, e.Time = events.Version, "schedd", h.seq, h.now*1e9
		_, before := h.q.Jobs[e.Job()]
		Apply(h.q, e)
		h.checkAbort(e, before)
		h.log = append(h.log, e)
		fmt.Fprintf(&b, "%s %s", e.Type, e.Job())
		if len(e.Payload) > 0 && e.Type != events.ClusterSubmitted {
			fmt.Fprintf(&b, " %s", e.Payload)
		}
		b.WriteString("\n")
	}
	if len(evs) == 0 {
		b.WriteString("no events\n")
	}
	return b.String()
}

// checkJSON holds AppendJSON to MarshalJSON and AdText to String for every
// job of q, queued or in the history, with one cache shared by all of them
// as a query shares it.
func checkJSON(t *testing.T, q *Queue) {
	t.Helper()
	cache := JSONCache{}
	var texts claimTexts
	split, whole := 0, 0 // claim ads with and without a StaticAt, of procs without own attributes
	jobs := append(q.Sorted(), q.History...)
	for _, j := range jobs {
		want, err := j.Ad(q.Name).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if got := j.AppendJSON([]byte("x"), q.Name, cache); string(got) != "x"+string(want) {
			t.Errorf("job %s: AppendJSON gives\n%s\nMarshalJSON gives\n%s", j.ID, got[1:], want)
		}
		// AdText, the claim request's ad, is String's text; also through
		// the shell's cache, twice: the second from the cluster's
		// printed attributes.
		text := j.Ad(q.Name).String()
		if got := j.AdText(q.Name); got != text {
			t.Errorf("job %s, AdText gives\n%s\nString gives\n%s", j.ID, got, text)
		}
		for i := range 2 {
			got, at := texts.adText(j, q.Name)
			if got != text {
				t.Errorf("job %s, cached AdText #%d gives\n%s\nString gives\n%s", j.ID, i+1, got, text)
			}
			checkStaticAt(t, j, got, at)
			if at > 0 {
				split++
			} else if j.OwnLazy == nil {
				whole++
			}
		}
	}
	if split == 0 && whole > 0 {
		t.Errorf("no claim ad of a proc without attributes of its own names where its cluster's begin")
	}
}

// checkStaticAt holds a claim request's StaticAt to what a startd does
// with it: the ad parsed in two parts, the proc's and the cluster's
// chained below it, is the ad parsed whole.
func checkStaticAt(t *testing.T, j *Job, text string, at int) {
	t.Helper()
	if at == 0 {
		return
	}
	whole, err := classad.ParseAd(text)
	if err != nil {
		t.Fatalf("job %s: %v", j.ID, err)
	}
	if at < 2 || at >= len(text) || text[at-2:at] != "; " {
		t.Fatalf("job %s: StaticAt %d does not follow a \"; \" in\n%s", j.ID, at, text)
	}
	own, err1 := classad.ParseAd(text[:at-2] + " ]")
	shared, err2 := classad.ParseAd("[ " + text[at:])
	if err1 != nil || err2 != nil {
		t.Fatalf("job %s: the parts at %d do not parse: %v, %v\n%s", j.ID, at, err1, err2, text)
	}
	own.SetParent(shared)
	if flat := own.Flatten(); !flat.Equal(whole) || flat.String() != whole.String() {
		t.Errorf("job %s: parsed in two parts at %d\n%s\nwhole\n%s", j.ID, at, flat, whole)
	}
}

// checkAbort holds the user log to the queue: an event writes a 009 for a
// job if and only if the job leaves the queue removed with that event, so
// that condor_history finds a job as soon as condor_wait returns for it.
func (h *coreHarness) checkAbort(e events.Event, wasQueued bool) {
	if e.Proc < 0 {
		return
	}
	var aborts int
	for _, u := range (&Schedd{}).userlogEvents(e) {
		if u.Code == userlog.JobAborted {
			aborts++
		}
	}
	_, queued := h.q.Jobs[e.Job()]
	left := wasQueued && !queued
	removed := false
	if left && len(h.q.History) > 0 {
		removed = h.q.History[len(h.q.History)-1].Status == Removed
	}
	if want := map[bool]int{true: 1}[left && removed]; aborts != want {
		h.ulogErrs = append(h.ulogErrs, fmt.Sprintf("%s %s: %d user log 009s, want %d (left the queue: %v, removed: %v)",
			e.Type, e.Job(), aborts, want, left, removed))
	}
}

func arg(d *datadriven.TestData, key, def string) string {
	for _, a := range d.CmdArgs {
		if a.Key == key {
			if len(a.Vals) == 0 {
				return "true"
			}
			return strings.Join(a.Vals, ",")
		}
	}
	return def
}

func argInt(d *datadriven.TestData, key string, def int) int {
	s := arg(d, key, "")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		d.Fatalf(nil, "%s=%q: %v", key, s, err)
	}
	return n
}

func jobArg(d *datadriven.TestData) events.JobID {
	id, ok := events.ParseJobID(arg(d, "job", ""))
	if !ok {
		d.Fatalf(nil, "job=C.P required")
	}
	return id
}

func (h *coreHarness) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "submit":
		p := events.ClusterSubmittedPayload{
			SubmitID: arg(d, "id", fmt.Sprintf("sub%d", h.now)),
			Owner:    arg(d, "owner", "alice"),
			Iwd:      arg(d, "iwd", "/home/alice"),
			UserLog:  arg(d, "log", ""),
			NumProcs: argInt(d, "procs", 1),
			Hold:     arg(d, "hold", "") == "true",
		}
		for _, line := range strings.Split(d.Input, "\n") {
			if name, expr, ok := strings.Cut(line, "="); ok {
				p.Attrs = append(p.Attrs, events.Attr{Name: strings.TrimSpace(name), Expr: strings.TrimSpace(expr)})
			}
		}
		if in := arg(d, "input", ""); in != "" {
			sum := strings.Repeat("ab", 32)
			p.Inputs = []events.FileRef{{Name: in, Bucket: arg(d, "bucket", events.UserBucket(p.Owner)), Object: events.ObjectName(sum), Size: 10, SHA256: sum}}
		}
		// As the schedd does: prepared without the queue, then decided.
		ps, err := PrepareSubmit(SubmitCmd{Payload: p, Cluster: argInt(d, "reserved", 0), MaxJobs: argInt(d, "max", 0)})
		var cluster int
		var evs []events.Event
		if err == nil {
			cluster, evs, err = DecidePreparedSubmit(h.q, ps)
		}
		if err != nil {
			return fmt.Sprintf("error [%s]: %v\n", events.ErrorCodeOf(err), err)
		}
		return fmt.Sprintf("cluster %d\n", cluster) + h.commit(evs)
	case "reserve":
		id, evs, err := DecideReserve(h.q, arg(d, "id", ""))
		if err != nil {
			return fmt.Sprintf("error [%s]: %v\n", events.ErrorCodeOf(err), err)
		}
		return fmt.Sprintf("cluster %d\n", id) + h.commit(evs)
	case "act":
		c := ActionCmd{Kind: arg(d, "kind", ""), By: arg(d, "by", "alice"), Super: arg(d, "super", "") == "true",
			Reason: arg(d, "reason", ""), Fast: arg(d, "fast", "") == "true",
			Select: Selector{Cluster: argInt(d, "cluster", 0), Proc: argInt(d, "proc", -1), Owner: arg(d, "owner", ""),
				Constraint: strings.TrimSpace(d.Input), All: arg(d, "all", "") == "true"}, Now: time.Unix(h.now, 0)}
		evs, res, err := DecideAction(h.q, c)
		if err != nil {
			return fmt.Sprintf("error [%s]: %v\n", events.ErrorCodeOf(err), err)
		}
		var b strings.Builder
		for _, r := range res {
			if r.Code == "" {
				fmt.Fprintf(&b, "%s ok\n", r.Job)
			} else {
				fmt.Fprintf(&b, "%s [%s] %s\n", r.Job, r.Code, r.Error)
			}
		}
		return b.String() + h.commit(evs)
	case "foreign":
		src := arg(d, "source", "startd1")
		h.inputs[src]++
		e := events.Event{V: 1, Source: src, Seq: h.inputs[src], Type: arg(d, "type", ""), Schedd: "schedd", Time: h.now * 1e9}
		id := jobArg(d)
		e.Cluster, e.Proc = id.Cluster, id.Proc
		var payload any
		switch e.Type {
		case events.Matched:
			payload = events.MatchedPayload{MatchID: arg(d, "claim", ""), Startd: arg(d, "startd", "startd1"), Slot: arg(d, "slot", "slot1@startd1"), Machine: "host"}
		case events.ClaimAccepted:
			payload = events.ClaimAcceptedPayload{Req: events.ClaimRequest{ClaimID: arg(d, "claim", ""), Schedd: "schedd", Job: id,
				Slot: arg(d, "slot", "slot1@startd1"), JobAd: "[ Owner = \"alice\" ]", Owner: "alice"}, MemoryMiB: 16}
		default:
			p := events.VMEventPayload{ClaimID: arg(d, "claim", ""), Slot: arg(d, "slot", "slot1@startd1"), Host: "<slot1@startd1>",
				PoweredOff: arg(d, "powered_off", "") == "true", Hold: arg(d, "hold", "") == "true",
				Code: argInt(d, "code", 0), SubCode: argInt(d, "subcode", 0), Reason: arg(d, "reason", ""), RunNanos: 5e9,
				UserCPUNanos: int64(argInt(d, "user_cpu_ms", 0)) * 1e6, SysCPUNanos: int64(argInt(d, "sys_cpu_ms", 0)) * 1e6,
				BytesIn: int64(argInt(d, "bytes_in", 0)), BytesOut: int64(argInt(d, "bytes_out", 0)),
				Resumed: arg(d, "resumed_from", "") != "", ResumedFrom: argInt(d, "resumed_from", 0), ResumeNote: arg(d, "note", "")}
			if o := arg(d, "output", ""); o != "" {
				sum := strings.Repeat("cd", 32)
				p.Outputs = []events.FileRef{{Name: o, Bucket: "vmpool_files_alice", Object: events.ObjectName(sum), Size: 10, SHA256: sum}}
			}
			if arg(d, "checkpoint", "") == "true" {
				p.Checkpoint = &events.Checkpoint{Files: []events.FileRef{{Name: "memory.state", Size: int64(argInt(d, "checkpoint_bytes", 0))}}, Slot: p.Slot,
					Taken: int64(argInt(d, "taken", 0)) * 1e9}
			}
			payload = p
		}
		b, _ := json.Marshal(payload)
		e.Payload = b
		return h.commit(DecideForeign(h.q, e))
	case "claim-reply":
		return h.commit(DecideClaimReply(h.q, jobArg(d), arg(d, "claim", ""), events.ClaimReply{Accepted: arg(d, "accepted", "") == "true", Reason: arg(d, "reason", "")}))
	case "policy":
		h.now += int64(argInt(d, "advance", 0))
		return h.commit(DecidePolicy(h.q, time.Unix(h.now, 0)))
	case "trim":
		return h.commit(DecideHistoryTrim(h.q, argInt(d, "max", 0), argInt(d, "written", len(h.q.History))))
	case "kept":
		return dumpKept(h.q)
	case "claim-lost":
		return h.commit(DecideClaimLost(h.q, jobArg(d), arg(d, "claim", ""), arg(d, "reason", "")))
	case "claim-gone":
		return h.commit(DecideClaimGone(h.q, jobArg(d), arg(d, "claim", "")))
	case "outputs":
		r := OutputsResult{Job: jobArg(d), ClaimID: arg(d, "claim", ""), BytesRecv: int64(argInt(d, "bytes", 10)), Now: time.Unix(h.now, 0)}
		if e := arg(d, "err", ""); e != "" {
			r.Err = fmt.Errorf("%s", e)
		}
		return h.commit(DecideOutputs(h.q, r))
	case "dump":
		return dumpQueue(h.q)
	case "ad":
		j := h.q.Jobs[jobArg(d)]
		for _, hj := range h.q.History {
			if j == nil && hj.ID == jobArg(d) {
				j = hj // condor_history's ad
			}
		}
		if j == nil {
			return "no such job\n"
		}
		ad := j.Ad(h.q.Name)
		var b strings.Builder
		for _, name := range strings.Fields(d.Input) {
			fmt.Fprintf(&b, "%s = %s\n", name, ad.Eval(name))
		}
		return b.String()
	}
	d.Fatalf(t, "unknown command %s", d.Cmd)
	return ""
}

// dumpQueue prints the queue deterministically.
func dumpQueue(q *Queue) string {
	var b strings.Builder
	fmt.Fprintf(&b, "last cluster %d\n", q.LastCluster)
	for _, j := range q.Sorted() {
		b.WriteString(dumpJob(j))
	}
	for _, j := range q.History {
		b.WriteString("history " + dumpJob(j))
	}
	var claims []string
	for id, j := range q.Claims {
		claims = append(claims, id+"->"+j.String())
	}
	sort.Strings(claims)
	fmt.Fprintf(&b, "claims %v\n", claims)
	return b.String()
}

// dumpKept prints what the queue keeps for its clusters besides their
// jobs: submit ids, user logs (cluster and proc) and their owners.
func dumpKept(q *Queue) string {
	var subs, logs, procLogs, owners []string
	for id, c := range q.Submits {
		subs = append(subs, fmt.Sprintf("%s->%d", id, c))
	}
	for c, l := range q.UserLogs {
		logs = append(logs, fmt.Sprintf("%d->%s", c, l))
	}
	for id, l := range q.ProcLogs {
		procLogs = append(procLogs, id.String()+"->"+l)
	}
	for c, o := range q.LogOwners {
		owners = append(owners, fmt.Sprintf("%d->%s", c, o))
	}
	for _, l := range [][]string{subs, logs, procLogs, owners} {
		sort.Strings(l)
	}
	return fmt.Sprintf("submits %v\nuser logs %v\nproc logs %v\nlog owners %v\n", subs, logs, procLogs, owners)
}

func dumpJob(j *Job) string {
	s := fmt.Sprintf("%s %s owner=%s starts=%d", j.ID, StatusLetter(j.Status), j.Owner(), j.NumJobStarts)
	if j.Claim != nil {
		s += fmt.Sprintf(" claim=%s:%s", j.Claim.ID, j.Claim.State)
		if j.Claim.StopMode != "" {
			s += ":" + j.Claim.StopMode
		}
	}
	if j.Status == Held {
		s += fmt.Sprintf(" hold=%d/%d %q", j.HoldCode, j.HoldSub, j.HoldReason)
	}
	if j.RemoteHost != "" {
		s += " host=" + j.RemoteHost
	}
	if len(j.Checkpoints) > 0 {
		var seqs []string
		for _, cp := range j.Checkpoints {
			seqs = append(seqs, strconv.Itoa(cp.Seq))
		}
		s += " checkpoints=" + strings.Join(seqs, ",")
	}
	if len(j.Outputs) > 0 {
		s += fmt.Sprintf(" outputs=%d", len(j.Outputs))
	}
	return s + "\n"
}

func TestCoreScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/core", func(t *testing.T, path string) {
		h := newHarness()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return h.run(t, d)
		})
		for _, msg := range h.ulogErrs {
			t.Error(msg)
		}
		checkJSON(t, h.q)
		// Replay from zero must give the identical queue.
		r := NewQueue("schedd")
		for _, e := range h.log {
			// Through the codec, as the log stores them.
			b, err := events.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			e2, err := events.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			Apply(r, e2)
		}
		if got, want := dumpQueue(r), dumpQueue(h.q); got != want {
			t.Fatalf("replay differs from the live queue:\nreplay:\n%s\nlive:\n%s", got, want)
		}
		// A snapshot taken after any event, restored and followed by the
		// rest of the log, is the queue replay from zero gives, byte for
		// byte in the snapshot's canonical encoding.
		want, err := MarshalSnapshot(h.q, uint64(len(h.log)))
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k <= len(h.log); k++ {
			q := NewQueue("schedd")
			for _, e := range h.log[:k] {
				Apply(q, e)
			}
			data, err := MarshalSnapshot(q, uint64(k))
			if err != nil {
				t.Fatal(err)
			}
			checkSnapshotJobLines(t, data)
			back, idx, err := UnmarshalSnapshot(data)
			if err != nil || idx != uint64(k) {
				t.Fatalf("snapshot after event %d: %v (index %d)", k, err, idx)
			}
			for _, e := range h.log[k:] {
				Apply(back, e)
			}
			got, err := MarshalSnapshot(back, uint64(len(h.log)))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("snapshot after event %d plus the tail differs from replay from zero:\n%s\n%s", k, got, want)
			}
			if dumpQueue(back) != dumpQueue(h.q) {
				t.Fatalf("snapshot after event %d plus the tail: queue differs:\n%s\n%s", k, dumpQueue(back), dumpQueue(h.q))
			}
		}
	})
}

// TestQueryChunkEncode: a chunk encoded by hand is what json.Marshal
// makes of it.
func TestQueryChunkEncode(t *testing.T) {
	for _, c := range []QueryChunk{
		{},
		{Ads: []json.RawMessage{json.RawMessage(`{"A":1}`), json.RawMessage(`{"B":"x\u003cy"}`)}},
		{Ads: []json.RawMessage{json.RawMessage(`{"A":1}`)}, Totals: &Totals{Jobs: 1, Idle: 1}, Schedd: "s", LogSeq: 7},
		{Totals: &Totals{}, Schedd: "s"},
		{Snapshot: []byte("snap")},
	} {
		got, err := c.encode()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(c)
		if string(got) != string(want) {
			t.Errorf("encode %+v:\n got %s\nwant %s", c, got, want)
		}
	}
}

// A submit the schedd did not prepare is refused, not queued.
func TestUnpreparedSubmitRefused(t *testing.T) {
	q := NewQueue("s")
	_, evs, err := DecidePreparedSubmit(q, PreparedSubmit{})
	if !errors.Is(err, ErrBadRequest) || len(evs) != 0 {
		t.Fatalf("unprepared submit: %d events, err %v; want none and bad-request", len(evs), err)
	}
}

// A cluster ad a snapshot holds as text is parsed when first read; text
// that does not parse gives an ad that matches nothing, not a panic.
func TestSnapshotAdParsedWhenRead(t *testing.T) {
	c := &Cluster{ID: 1}
	c.Lazy = snapshotAd(`[ JobVMType = "kvm"; RequestMemory = 16 ]`, nil)
	own := snapshotAd(`[ Proc = 3 ]`, c)
	if v := own.Get().Eval("JobVMType"); v.String() != `"kvm"` {
		t.Fatalf("a job's own ad reads JobVMType %s through its cluster's, want \"kvm\"", v)
	}
	bad := snapshotAd(`[ JobVMType = `, nil)
	if v := bad.Get().Eval("Requirements"); !v.IsError() {
		t.Fatalf("an ad whose text does not parse has Requirements %s, want error", v)
	}
}

// A snapshot is a header line and a line per cluster and job; one that
// lost lines, or has a line that does not decode, is refused with the
// line named (the schedd then replays its log from zero).
func TestDamagedSnapshotRefused(t *testing.T) {
	q := NewQueue("schedd")
	for c := 1; c <= 3; c++ {
		p := events.ClusterSubmittedPayload{SubmitID: fmt.Sprint("s", c), Owner: "alice", Iwd: "/home/alice", NumProcs: 2,
			Attrs: []events.Attr{{Name: "JobVMType", Expr: `"kvm"`}}}
		Apply(q, events.Event{V: 1, Source: "schedd", Seq: uint64(c), Type: events.ClusterSubmitted, Schedd: "schedd", Cluster: c, Proc: -1,
			Payload: events.New(events.ClusterSubmitted, p).Payload})
	}
	data, err := MarshalSnapshot(q, 3)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 1+3+6 {
		t.Fatalf("snapshot of 3 clusters of 2 jobs has %d lines, want 10", len(lines))
	}
	if back, _, err := UnmarshalSnapshot(data); err != nil || len(back.Jobs) != 6 {
		t.Fatalf("snapshot read back: %v", err)
	}
	short := strings.Join(lines[:9], "\n") + "\n"
	if _, _, err := UnmarshalSnapshot([]byte(short)); err == nil || !strings.Contains(err.Error(), "8 lines after the header") {
		t.Fatalf("a snapshot missing its last line: %v", err)
	}
	bad := append([]string(nil), lines...)
	bad[6] = `{"id":`
	if _, _, err := UnmarshalSnapshot([]byte(strings.Join(bad, "\n"))); err == nil || !strings.Contains(err.Error(), "line 7") {
		t.Fatalf("a snapshot with a broken line 7: %v", err)
	}
}

// A snapshot large enough to be encoded and decoded on several CPUs reads
// back to the queue it was written from, line for line.
func TestLargeSnapshotRoundTrip(t *testing.T) {
	q := NewQueue("schedd")
	for c := 1; c <= 3000; c++ {
		p := events.ClusterSubmittedPayload{SubmitID: fmt.Sprint("s", c), Owner: "alice", Iwd: "/home/alice", NumProcs: 1 + c%3,
			Attrs: []events.Attr{{Name: "JobVMType", Expr: `"kvm"`}, {Name: "N", Expr: fmt.Sprint(c)}}}
		Apply(q, events.Event{V: 1, Source: "schedd", Seq: uint64(c), Type: events.ClusterSubmitted, Schedd: "schedd", Cluster: c, Proc: -1,
			Payload: events.New(events.ClusterSubmitted, p).Payload})
	}
	data, err := MarshalSnapshot(q, 3000)
	if err != nil {
		t.Fatal(err)
	}
	back, idx, err := UnmarshalSnapshot(data)
	if err != nil || idx != 3000 {
		t.Fatalf("read back: index %d, %v", idx, err)
	}
	again, err := MarshalSnapshot(back, 3000)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Fatal("the snapshot read back and written again differs from the one written")
	}
	if dumpQueue(back) != dumpQueue(q) {
		t.Fatal("the queue read back differs from the one written")
	}
}

// A snapshot is due every QUEUE_SNAPSHOT_EVENTS records, and no sooner
// than one record per queued job.
func TestSnapshotDue(t *testing.T) {
	for _, c := range []struct {
		records     uint64
		every, jobs int
		want        bool
	}{
		{9999, 10000, 10, false},
		{10000, 10000, 10, true},
		{10000, 10000, 100000, false},
		{99999, 10000, 100000, false},
		{100000, 10000, 100000, true},
		{5, 5, 0, true},
		{1000000, -1, 0, false},
	} {
		if got := snapshotDue(c.records, c.every, c.jobs); got != c.want {
			t.Errorf("snapshotDue(%d records, every %d, %d jobs) = %v", c.records, c.every, c.jobs, got)
		}
	}
}
