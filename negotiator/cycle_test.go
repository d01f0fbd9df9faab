package negotiator

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// defaultReq is condor_submit's default Requirements for a kvm job
// (REFERENCE §2).
const defaultReq = `(TARGET.Arch == "X86_64") && (TARGET.HasVM =?= true) && (TARGET.VM_Type == MY.JobVMType) && (TARGET.VM_AvailNum > 0) && (TARGET.Disk >= RequestDisk) && (TARGET.TotalMemory >= MY.JobVMMemory) && (TARGET.VM_Memory >= MY.JobVMMemory) && (TARGET.HasFileTransfer)`

type harness struct {
	t   *testing.T
	st  *State
	seq map[string]uint64
	now int64
	log []events.Event // everything applied, in order
}

func newHarness(t *testing.T) *harness {
	return &harness{t: t, st: NewState("neg", int64(120*time.Second)), seq: map[string]uint64{}, now: 1e18}
}

func (h *harness) apply(src, typ, schedd string, cluster, proc int, p any) {
	h.seq[src]++
	h.now += 1e9
	b, _ := json.Marshal(p)
	e := events.Event{V: 1, Source: src, Seq: h.seq[src], Type: typ, Time: h.now, Schedd: schedd, Cluster: cluster, Proc: proc, Payload: b}
	Apply(h.st, e)
	h.log = append(h.log, e)
}

// submit queues n jobs of owner with the given extra attributes.
func (h *harness) submit(cluster, n int, owner string, attrs ...string) {
	base := []events.Attr{{Name: "JobVMType", Expr: `"kvm"`}, {Name: "JobVMMemory", Expr: "16"}, {Name: "RequestDisk", Expr: "1024"},
		{Name: "Requirements", Expr: defaultReq}}
	for _, a := range attrs {
		k, v, _ := strings.Cut(a, "=")
		base = append(base, events.Attr{Name: strings.TrimSpace(k), Expr: strings.TrimSpace(v)})
	}
	h.apply("schedd", events.ClusterSubmitted, "schedd", cluster, -1, events.ClusterSubmittedPayload{Owner: owner, NumProcs: n, Attrs: base})
}

// cycle runs DecideCycle and applies its events as the negotiator would.
func (h *harness) cycle(slots []Slot) []string {
	evs := DecideCycle(h.st, slots, time.Unix(0, h.now))
	var out []string
	for _, e := range evs {
		h.seq["neg"]++
		h.now += 1e9
		e.Source, e.Seq, e.Time = "neg", h.seq["neg"], h.now
		Apply(h.st, e)
		h.log = append(h.log, e)
		var p events.MatchedPayload
		if err := e.Decode(&p); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s/%s->%s", e.Schedd, e.Job(), p.Slot))
	}
	sort.Strings(out)
	return out
}

func slot(t *testing.T, name string, attrs string) Slot {
	t.Helper()
	src := `[ Name = "` + name + `"; StartdName = "` + strings.SplitN(name, "@", 2)[1] + `"; Machine = "host"; Arch = "X86_64"; OpSys = "LINUX";
		State = "Unclaimed"; HasVM = true; VM_Type = "kvm"; VM_Memory = 1024; VM_AvailNum = 1; TotalMemory = 4096;
		Disk = 100000; HasFileTransfer = true; Start = true; Requirements = START; Rank = 0; VmpoolClaims = 0; ` + attrs + ` ]`
	ad, err := classad.ParseAd(src)
	if err != nil {
		t.Fatalf("slot ad: %v", err)
	}
	s, ok := SlotFromAd(ad)
	if !ok {
		t.Fatalf("slot ad %s unusable", name)
	}
	return s
}

func TestCycleMatchesRequirements(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 1, "alice")
	slots := []Slot{
		slot(t, "slot1@xen1", `VM_Type = "xen"`),
		slot(t, "slot1@small", `VM_Memory = 8`),
		slot(t, "slot1@nonvm", `HasVM = false`),
		slot(t, "slot1@busy", `State = "Claimed"`),
		slot(t, "slot1@full", `VM_AvailNum = 0`),
		slot(t, "slot1@good", ``),
	}
	got := h.cycle(slots)
	if fmt.Sprint(got) != "[schedd/1.0->slot1@good]" {
		t.Fatalf("matches %v", got)
	}
	// The job has a pending match: the next cycle does not match it again.
	if got := h.cycle(slots); len(got) != 0 {
		t.Fatalf("second cycle matched %v", got)
	}
}

func TestCycleStartAndRank(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 1, "bob", `Rank = TARGET.VM_Memory`)
	h.submit(2, 1, "carol")
	slots := []Slot{
		slot(t, "slot1@nobob", `Start = TARGET.Owner != "bob"`),
		slot(t, "slot1@m512", `VM_Memory = 512`),
		slot(t, "slot1@m2048", `VM_Memory = 2048`),
	}
	got := h.cycle(slots)
	// bob's job prefers the most VM memory among slots that accept bob.
	want := "[schedd/1.0->slot1@m2048 schedd/2.0->slot1@m512]"
	if fmt.Sprint(got) != want {
		t.Fatalf("matches %v, want %v", got, want)
	}
}

func TestCycleTakesTurnsByOwner(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 3, "alice")
	h.submit(2, 1, "bob")
	got := h.cycle([]Slot{slot(t, "slot1@a", ""), slot(t, "slot1@b", "")})
	if len(got) != 2 || !strings.Contains(fmt.Sprint(got), "schedd/2.0") {
		t.Fatalf("bob's job should get one of two slots despite alice's earlier cluster: %v", got)
	}
}

// TestCycleFairShare: in a full pool, a freed slot goes to the owner with
// the fewest jobs running or matched, not to the first name with idle
// jobs, so users converge on equal shares as slots free one at a time.
func TestCycleFairShare(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 6, "alice")
	h.submit(2, 6, "bob")
	// Alice's three jobs already run (matched, claimed and started).
	for p := 0; p < 3; p++ {
		claim := fmt.Sprintf("old#%d", p)
		h.apply("schedd", events.JobMatched, "schedd", 1, p, events.JobMatchedPayload{ClaimID: claim})
		h.apply("schedd", events.JobStarted, "schedd", 1, p, events.JobStartedPayload{ClaimID: claim})
	}
	// Slots free one at a time: bob gets each until he has as many.
	var got []string
	for i := range 4 {
		got = append(got, h.cycle([]Slot{slot(t, fmt.Sprintf("slot1@free%d", i), "")})...)
	}
	want := "[schedd/2.0->slot1@free0 schedd/2.1->slot1@free1 schedd/2.2->slot1@free2 schedd/1.3->slot1@free3]"
	if fmt.Sprint(got) != want {
		t.Fatalf("matches %v, want %v", got, want)
	}
}

func TestReservationAndSettlement(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 2, "alice")
	s := slot(t, "slot1@a", "")
	got := h.cycle([]Slot{s})
	if fmt.Sprint(got) != "[schedd/1.0->slot1@a]" {
		t.Fatalf("first match %v", got)
	}
	// The slot's ad still says Unclaimed with the old claim count: it stays
	// reserved for the match, so job 1.1 must wait.
	if got := h.cycle([]Slot{s}); len(got) != 0 {
		t.Fatalf("reserved slot matched again: %v", got)
	}
	// The schedd takes the match and the startd's ad shows the claim.
	h.apply("schedd", events.JobMatched, "schedd", 1, 0, events.JobMatchedPayload{ClaimID: "neg#1"})
	h.apply("schedd", events.JobStarted, "schedd", 1, 0, events.JobStartedPayload{ClaimID: "neg#1"})
	if got := h.cycle([]Slot{slot(t, "slot1@a", `State = "Claimed"; VmpoolClaims = 1`)}); len(got) != 0 {
		t.Fatalf("claimed slot matched: %v", got)
	}
	// The job ends; the slot is free again with a higher claim count.
	h.apply("schedd", events.JobCompleted, "schedd", 1, 0, events.JobCompletedPayload{ClaimID: "neg#1"})
	got = h.cycle([]Slot{slot(t, "slot1@a", `VmpoolClaims = 1`)})
	if fmt.Sprint(got) != "[schedd/1.1->slot1@a]" {
		t.Fatalf("after the claim ended: %v", got)
	}
	// A rejected match frees its job and slot at once.
	h.apply("schedd", events.MatchRejected, "schedd", 1, 1, events.MatchRejectedPayload{MatchID: "neg#2", Slot: "slot1@a"})
	if _, ok := h.st.Matches["neg#2"]; ok {
		t.Fatal("rejected match kept")
	}
	got = h.cycle([]Slot{slot(t, "slot1@a", `VmpoolClaims = 1`)})
	if fmt.Sprint(got) != "[schedd/1.1->slot1@a]" {
		t.Fatalf("after the rejection: %v", got)
	}
}

func TestMatchesExpire(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 2, "alice")
	s := slot(t, "slot1@a", "")
	h.cycle([]Slot{s})
	// 121 events one second apart push the log's clock past MATCH_TIMEOUT.
	for i := 0; i < 121; i++ {
		h.apply("schedd", "Noise", "schedd", 9, 0, nil)
	}
	h.now += 1e9
	Apply(h.st, events.Event{V: 1, Source: "neg", Seq: 99, Type: "Tick", Time: h.now})
	if len(h.st.Matches) != 0 {
		t.Fatalf("match not expired: %v", h.st.Matches)
	}
}

// TestMatchesExpireEachInTurn: of two matches made 100 s apart, each
// expires MATCH_TIMEOUT after it was made, the older first, whatever
// bound the state keeps to skip the scan.
func TestMatchesExpireEachInTurn(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 2, "alice")
	tick := func(n int) {
		for i := 0; i < n; i++ {
			h.now += 1e9
			h.seq["neg"]++
			Apply(h.st, events.Event{V: 1, Source: "neg", Seq: h.seq["neg"], Type: "Tick", Time: h.now})
		}
	}
	if got := h.cycle([]Slot{slot(t, "slot1@a", "")}); len(got) != 1 {
		t.Fatalf("first cycle: %v", got)
	}
	tick(100)
	if got := h.cycle([]Slot{slot(t, "slot1@b", "")}); len(got) != 1 {
		t.Fatalf("second cycle: %v", got)
	}
	slots := func() []string {
		var out []string
		for _, m := range h.st.Matches {
			out = append(out, m.Slot)
		}
		sort.Strings(out)
		return out
	}
	tick(19)
	if got := fmt.Sprint(slots()); got != "[slot1@a slot1@b]" {
		t.Fatalf("119 s after the first match: %s", got)
	}
	tick(2)
	if got := fmt.Sprint(slots()); got != "[slot1@b]" {
		t.Fatalf("121 s after the first match: %s", got)
	}
	tick(98)
	if got := fmt.Sprint(slots()); got != "[slot1@b]" {
		t.Fatalf("119 s after the second match: %s", got)
	}
	tick(2)
	if got := fmt.Sprint(slots()); got != "[]" {
		t.Fatalf("121 s after the second match: %s", got)
	}
}

func TestHeldAndEvictedJobs(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 1, "alice")
	h.apply("schedd", events.JobHeld, "schedd", 1, 0, events.JobHeldPayload{Code: 1})
	s := []Slot{slot(t, "slot1@a", "")}
	if got := h.cycle(s); len(got) != 0 {
		t.Fatalf("held job matched: %v", got)
	}
	h.apply("schedd", events.JobReleased, "schedd", 1, 0, events.JobActionPayload{})
	if got := h.cycle(s); len(got) != 1 {
		t.Fatalf("released job not matched: %v", got)
	}
	h.apply("schedd", events.JobMatched, "schedd", 1, 0, events.JobMatchedPayload{ClaimID: "neg#1"})
	h.apply("schedd", events.JobStarted, "schedd", 1, 0, events.JobStartedPayload{ClaimID: "neg#1"})
	h.apply("schedd", events.JobEvicted, "schedd", 1, 0, events.JobEvictedPayload{ClaimID: "neg#1"})
	got := h.cycle([]Slot{slot(t, "slot1@a", `VmpoolClaims = 1`)})
	if fmt.Sprint(got) != "[schedd/1.0->slot1@a]" {
		t.Fatalf("evicted job not matched again: %v", got)
	}
}

// TestReleasedClaimFreesItsSlot: a job held after the schedd took its
// match but before its claim reached the startd (its user log could not
// be written) has its claim released; its slot, whose ad never showed the
// claim, is free again at once rather than reserved for MATCH_TIMEOUT.
func TestReleasedClaimFreesItsSlot(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 1, "alice")
	s := []Slot{slot(t, "slot1@a", "")}
	if got := h.cycle(s); fmt.Sprint(got) != "[schedd/1.0->slot1@a]" {
		t.Fatalf("first match %v", got)
	}
	h.apply("schedd", events.JobMatched, "schedd", 1, 0, events.JobMatchedPayload{ClaimID: "neg#1"})
	h.apply("schedd", events.JobHeld, "schedd", 1, 0, events.JobHeldPayload{Code: 22})
	h.apply("schedd", events.ClaimReleased, "schedd", 1, 0, events.ClaimPayload{ClaimID: "neg#1", Slot: "slot1@a"})
	h.apply("schedd", events.JobReleased, "schedd", 1, 0, events.JobActionPayload{})
	if got := h.cycle(s); fmt.Sprint(got) != "[schedd/1.0->slot1@a]" {
		t.Fatalf("after the claim was released and the job released: %v; want it matched to the same slot again\n%s", got, dumpState(h.st))
	}
}

func dumpState(st *State) string {
	var lines []string
	for k, j := range st.Jobs {
		lines = append(lines, fmt.Sprintf("job %s/%s status=%d claim=%v", k.Schedd, k.ID, j.Status, j.HasClaim))
	}
	for id, m := range st.Matches {
		lines = append(lines, fmt.Sprintf("match %s %s/%s %s claims=%d taken=%v at=%d", id, m.Job.Schedd, m.Job.ID, m.Slot, m.Claims, m.Taken, m.At))
	}
	sort.Strings(lines)
	return fmt.Sprintf("made=%d latest=%d\n%s", st.Made, st.Latest, strings.Join(lines, "\n"))
}

func TestReplayEqualsLive(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 3, "alice")
	h.submit(2, 2, "bob")
	h.cycle([]Slot{slot(t, "slot1@a", ""), slot(t, "slot1@b", "")})
	h.apply("schedd", events.JobMatched, "schedd", 1, 0, events.JobMatchedPayload{ClaimID: "neg#1"})
	h.apply("schedd", events.MatchRejected, "schedd", 2, 0, events.MatchRejectedPayload{MatchID: "neg#2"})
	h.apply("schedd", events.JobHeld, "schedd", 1, 2, events.JobHeldPayload{Code: 1})
	h.cycle([]Slot{slot(t, "slot1@b", "")})

	// The same events through a real log on disk and the codec.
	l, err := events.OpenLog(t.TempDir(), "neg", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(h.log); err != nil {
		t.Fatal(err)
	}
	st, err := Replay(l, "neg", 120*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dumpState(st), dumpState(h.st); got != want {
		t.Fatalf("replay differs:\nreplay:\n%s\nlive:\n%s", got, want)
	}
}

// TestCycleRefusedSlotWaitsForANewerAd: a claim of a slot fails (its
// startd says it is claimed: the negotiator's ad was stale). The slot is
// not matched again on that ad, which would loop match, refusal, match as
// fast as the bus goes, but is on the next ad the collector publishes.
func TestCycleRefusedSlotWaitsForANewerAd(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 1, "alice")
	stale := slot(t, "slot1@a", ``)
	stale.Revision = 7
	if got := h.cycle([]Slot{stale}); fmt.Sprint(got) != "[schedd/1.0->slot1@a]" {
		t.Fatalf("first cycle matched %v", got)
	}
	h.apply("schedd", events.JobMatched, "schedd", 1, 0, events.JobMatchedPayload{ClaimID: "neg#1", Negotiator: "neg"})
	h.apply("schedd", events.ClaimFailed, "schedd", 1, 0, events.ClaimPayload{ClaimID: "neg#1", Slot: "slot1@a", Reason: "slot slot1@a is Claimed"})
	if got := h.cycle([]Slot{stale}); len(got) != 0 {
		t.Fatalf("matched the refused slot again on the same ad: %v", got)
	}
	fresh := slot(t, "slot1@a", ``)
	fresh.Revision = 8
	if got := h.cycle([]Slot{fresh}); fmt.Sprint(got) != "[schedd/1.0->slot1@a]" {
		t.Fatalf("a newer ad of the slot matched %v", got)
	}
	// Replay gives the same refusals.
	st := NewState("neg", int64(120*time.Second))
	for _, e := range h.log {
		Apply(st, e)
	}
	if fmt.Sprint(st.Refused) != fmt.Sprint(h.st.Refused) || st.Refused["slot1@a"] != 7 {
		t.Fatalf("replayed refusals %v, live %v", st.Refused, h.st.Refused)
	}
}

// TestUnsettledMatchExpiresInAQuietPool: a match the schedd never took
// (its Matched event was lost on the way) holds its job and slot for
// MatchTimeout by the cycle's clock, even when no event comes to expire it
// from the log; then the job is matched again.
func TestUnsettledMatchExpiresInAQuietPool(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 1, "alice")
	s := slot(t, "slot1@a", ``)
	if got := h.cycle([]Slot{s}); fmt.Sprint(got) != "[schedd/1.0->slot1@a]" {
		t.Fatalf("first cycle matched %v", got)
	}
	h.now += h.st.MatchTimeout - 1e9
	if got := h.cycle([]Slot{s}); len(got) != 0 {
		t.Fatalf("matched again within MatchTimeout: %v", got)
	}
	h.now += 2e9
	if got := h.cycle([]Slot{s}); fmt.Sprint(got) != "[schedd/1.0->slot1@a]" {
		t.Fatalf("after MatchTimeout without an event the cycle matched %v, want the job again", got)
	}
}

// TestCycleRefusalOfARenumberedCollector: the collector was created
// anew (its NATS server lost it) and numbers the slot's ads below the
// refused revision. The refusal holds the slot back for MatchTimeout, not
// until the new collector's revisions catch up with the old one's.
func TestCycleRefusalOfARenumberedCollector(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 1, "alice")
	old := slot(t, "slot1@a", ``)
	old.Revision = 500
	if got := h.cycle([]Slot{old}); fmt.Sprint(got) != "[schedd/1.0->slot1@a]" {
		t.Fatalf("first cycle matched %v", got)
	}
	h.apply("schedd", events.JobMatched, "schedd", 1, 0, events.JobMatchedPayload{ClaimID: "neg#1", Negotiator: "neg"})
	h.apply("schedd", events.ClaimFailed, "schedd", 1, 0, events.ClaimPayload{ClaimID: "neg#1", Slot: "slot1@a", Reason: "slot slot1@a is Claimed"})
	renumbered := slot(t, "slot1@a", ``)
	renumbered.Revision = 3
	if got := h.cycle([]Slot{renumbered}); len(got) != 0 {
		t.Fatalf("matched the refused slot again within MatchTimeout: %v", got)
	}
	h.now += h.st.MatchTimeout
	if got := h.cycle([]Slot{renumbered}); fmt.Sprint(got) != "[schedd/1.0->slot1@a]" {
		t.Fatalf("after MatchTimeout the slot matched %v, want the job", got)
	}
}

// TestOlderEventDoesNotUndoNewer: a schedd's events reach the negotiator
// out of order when a bus that lost some has them published again after
// newer ones. The older event does not undo what the newer one said: a
// JobMatched arriving after the ClaimFailed that ended that claim left
// the job claimed, never matched again.
func TestOlderEventDoesNotUndoNewer(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 2, "alice")
	at := func(seq uint64, typ string, proc int, p any) {
		b, _ := json.Marshal(p)
		h.now += 1e9
		Apply(h.st, events.Event{V: 1, Source: "schedd", Seq: seq, Type: typ, Time: h.now, Schedd: "schedd", Cluster: 1, Proc: proc, Payload: b})
	}
	// Proc 0: matched (10) then refused (11), delivered 11 first.
	at(11, events.ClaimFailed, 0, events.ClaimPayload{ClaimID: "neg#1", Slot: "slot1@a"})
	at(10, events.JobMatched, 0, events.JobMatchedPayload{ClaimID: "neg#1", Negotiator: "neg"})
	// Proc 1: held (20) then released (21), delivered 21 first.
	at(21, events.JobReleased, 1, nil)
	at(20, events.JobHeld, 1, nil)
	for proc := range 2 {
		if j := h.st.Jobs[JobKey{"schedd", events.JobID{Cluster: 1, Proc: proc}}]; !j.Idle() {
			t.Errorf("job 1.%d: status %d, claimed %v; want idle", proc, j.Status, j.HasClaim)
		}
	}
}

// TestCycleAutoclusterTakesBestFirst: the jobs of one cluster take the
// matching slots in the order of the cluster's Rank (ties: by slot name),
// as each would choose alone, and never one that does not match.
func TestCycleAutoclusterTakesBestFirst(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 12, "alice", `Rank = TARGET.VM_Memory`)
	var slots []Slot
	type cand struct {
		name string
		mem  int
	}
	var want []cand
	for i := 0; i < 30; i++ {
		mem := 64 + (i*37)%11*100 // repeats, so some ranks tie
		name := fmt.Sprintf("slot1@m%02d", i)
		extra := fmt.Sprintf("VM_Memory = %d", mem)
		if i%7 == 3 {
			extra += `; VM_Type = "xen"` // does not match
		} else {
			want = append(want, cand{name, mem})
		}
		slots = append(slots, slot(t, name, extra))
	}
	sort.SliceStable(want, func(a, b int) bool {
		if want[a].mem != want[b].mem {
			return want[a].mem > want[b].mem
		}
		return want[a].name < want[b].name
	})
	got := h.cycle(slots)
	if len(got) != 12 {
		t.Fatalf("matched %d jobs, want 12: %v", len(got), got)
	}
	taken := map[string]bool{}
	for _, m := range got {
		taken[strings.SplitN(m, "->", 2)[1]] = true
	}
	for i, c := range want[:12] {
		if !taken[c.name] {
			t.Errorf("best slot #%d %s (VM_Memory %d) not taken; took %v", i, c.name, c.mem, got)
		}
	}
}

// TestCyclePreemptsByMachineRank: with no free slot, a job goes to a
// claimed slot whose RANK prefers it to the job it runs (CurrentRank),
// the least preferred running job first; never when the RANK does not
// prefer it, nor a slot another job already waits to preempt, nor where
// the RANK is a constant.
func TestCyclePreemptsByMachineRank(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 1, "alice", `Urgency = 10`)
	h.submit(2, 1, "bob", `Urgency = 1`)
	busy := func(name string, current float64, extra string) Slot {
		return slot(t, name, fmt.Sprintf(`State = "Claimed"; Activity = "Busy"; Rank = TARGET.Urgency; CurrentRank = %g; VmpoolClaimMemory = 512; VM_Memory = 0; VM_AvailNum = 0; %s`, current, extra))
	}
	slots := []Slot{
		busy("slot1@high", 5, ""),
		busy("slot1@low", 2, ""),
		busy("slot1@waiting", 0, "VmpoolPreempting = true"),
		slot(t, "slot1@const", `State = "Claimed"; Rank = 100; CurrentRank = 0; VmpoolClaimMemory = 512; VM_Memory = 0; VM_AvailNum = 0`),
	}
	got := h.cycle(slots)
	// alice's job (Urgency 10) preempts the least preferred running job;
	// bob's (Urgency 1) beats no running job.
	if fmt.Sprint(got) != "[schedd/1.0->slot1@low]" {
		t.Fatalf("matches %v", got)
	}
	var p events.MatchedPayload
	if err := h.log[len(h.log)-1].Decode(&p); err != nil || !p.Preempting {
		t.Fatalf("the match is not marked preempting: %+v %v", p, err)
	}
	// A free slot is taken before anything is preempted.
	h2 := newHarness(t)
	h2.submit(1, 1, "alice", `Urgency = 10`)
	if got := h2.cycle(append(slots, slot(t, "slot1@free", ``))); fmt.Sprint(got) != "[schedd/1.0->slot1@free]" {
		t.Fatalf("with a free slot: %v", got)
	}
}

// The schedd events after which the negotiator runs no cycle (opens is
// false) never let a cycle match more: a cycle after each of them finds
// nothing, where one after an event that does open (here a rejected
// match) finds the match it made possible.
func TestEventsThatDoNotOpenLeaveNothingToMatch(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 3, "alice")
	h.submit(2, 2, "bob", `Rank = TARGET.VM_Memory`)
	slots := []Slot{slot(t, "slot1@a", ""), slot(t, "slot1@b", `VM_Memory = 2048`), slot(t, "slot1@c", "")}
	got := h.cycle(slots)
	if len(got) != 3 {
		t.Fatalf("first cycle: %v", got)
	}
	check := func(what string) {
		t.Helper()
		if got := h.cycle(slots); len(got) != 0 {
			t.Fatalf("after %s a cycle matched %v", what, got)
		}
	}
	ids := map[string]events.JobID{}
	for id, m := range h.st.Matches {
		ids[id] = m.Job.ID
	}
	for _, typ := range []string{events.JobMatched, events.JobStarted, events.JobHeld} {
		if opens(typ) {
			t.Fatalf("opens(%s)", typ)
		}
	}
	for id, job := range ids {
		h.apply("schedd", events.JobMatched, "schedd", job.Cluster, job.Proc, events.JobMatchedPayload{ClaimID: id})
		check("JobMatched " + id)
		h.apply("schedd", events.JobStarted, "schedd", job.Cluster, job.Proc, events.JobStartedPayload{ClaimID: id})
		check("JobStarted " + id)
	}
	var idle []events.JobID
	for k, j := range h.st.Jobs {
		if j.Idle() {
			idle = append(idle, k.ID)
		}
	}
	if len(idle) != 2 {
		t.Fatalf("%d jobs idle, want 2", len(idle))
	}
	h.apply("schedd", events.JobHeld, "schedd", idle[0].Cluster, idle[0].Proc, struct{}{})
	check("JobHeld")
	// A claim the startd refused gives its slot back: that one opens.
	var refused string
	for id := range ids {
		refused = id
		break
	}
	if !opens(events.ClaimFailed) {
		t.Fatal("a failed claim opens nothing?")
	}
	job := ids[refused]
	h.apply("schedd", events.ClaimFailed, "schedd", job.Cluster, job.Proc, events.ClaimPayload{ClaimID: refused})
	if got := h.cycle(slots); len(got) == 0 {
		t.Fatalf("after ClaimFailed of %s nothing matched", refused)
	}
}

// A submitted cluster's ad is parsed when a cycle first reads it, not when
// the submit is applied: a burst of submits (or a replay) parses nothing.
func TestClusterAdParsedWhenMatched(t *testing.T) {
	h := newHarness(t)
	h.submit(1, 2, "alice", `Rank = TARGET.VM_Memory`)
	c := h.st.clusters[clusterKey{"schedd", 1}]
	if c == nil || c.lazy.Built() {
		t.Fatalf("cluster ad parsed at submit (cluster %v)", c)
	}
	got := h.cycle([]Slot{slot(t, "slot1@a", ""), slot(t, "slot1@b", `VM_Memory = 2048`)})
	if len(got) != 2 || !c.lazy.Built() {
		t.Fatalf("matches %v, ad built %v", got, c.lazy.Built())
	}
	if v, ok := c.Ad().EvalString("Owner"); !ok || v != "alice" {
		t.Fatalf("Owner %q %v", v, ok)
	}
}

// TestSlotFromJSON: a slot read from the collector's JSON is the slot
// read from the whole ad, whatever its state; a slot a cycle may match
// carries its whole ad, one it may not only what SlotFromAd read.
func TestSlotFromJSON(t *testing.T) {
	every := `Name = "slot1@sim1"; StartdName = "sim1"; Machine = "host"; Arch = "X86_64"; HasVM = true; VM_Memory = 1024;
		LastHeardFrom = 1700000000; VmpoolClaims = 4; VmpoolClaimMemory = 512; Requirements = START; Start = true`
	for _, c := range []struct {
		name, attrs string
		candidate   bool
	}{
		{"unclaimed", `State = "Unclaimed"; Rank = 0`, true},
		{"claimed, constant rank", `State = "Claimed"; Rank = 0; CurrentRank = 0`, false},
		{"claimed, no rank", `State = "Claimed"`, false},
		{"claimed, rank preemptible", `State = "Claimed"; Rank = TARGET.Owner == "alice"; CurrentRank = 0`, true},
		{"claimed, preemption waiting", `State = "Claimed"; Rank = TARGET.Owner == "alice"; CurrentRank = 0; VmpoolPreempting = true`, false},
		{"lower-case names", `state = "Claimed"; rank = TARGET.Owner == "alice"; currentrank = 0`, true},
	} {
		ad, err := classad.ParseAd("[ " + every + "; " + c.attrs + " ]")
		if err != nil {
			t.Fatal(err)
		}
		data, err := ad.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want, ok := SlotFromAd(ad)
		if !ok {
			t.Fatalf("%s: unusable", c.name)
		}
		got, ok, err := slotFromJSON(data)
		if err != nil || !ok {
			t.Fatalf("%s: %v, %v", c.name, ok, err)
		}
		if got.Candidate() != c.candidate {
			t.Errorf("%s: candidate %v, want %v", c.name, got.Candidate(), c.candidate)
		}
		if c.candidate && !got.Ad.Equal(ad) {
			t.Errorf("%s: a candidate's ad %s, want the whole %s", c.name, got.Ad, ad)
		}
		if !c.candidate && got.Ad != nil {
			t.Errorf("%s: a slot no cycle matches keeps an ad: %s", c.name, got.Ad)
		}
		got.Ad, want.Ad = nil, nil
		if got != want {
			t.Errorf("%s: read from JSON %+v, from the whole ad %+v", c.name, got, want)
		}
	}
	if _, _, err := slotFromJSON([]byte(`{"Name": "slot1@sim1", "State": `)); err == nil {
		t.Error("a truncated ad: no error")
	}
}
