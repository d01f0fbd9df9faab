package negotiator

import (
	"container/heap"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// Slot is a machine ad the negotiator may match, as read from the
// collector.
type Slot struct {
	Name   string      // Name attribute, e.g. slot1@startd1
	Startd string      // StartdName attribute: where claims go
	Ad     *classad.Ad // nil for a slot read from JSON that no cycle may match (see slotFromJSON)
	// Revision is the ad's revision in the collector (0: unknown).
	Revision uint64
	// Read from the ad once, for every cycle: State, VmpoolClaims,
	// LastHeardFrom and Machine.
	State   string
	Claims  int64
	Heard   int64
	Machine string
	// A claimed slot that a job its RANK prefers may preempt: the RANK of
	// the job it runs (CurrentRank), the VM memory that job holds, and
	// whether another job already waits to preempt it.
	HasRank     bool
	CurrentRank float64
	ClaimMemory int64
	Preempting  bool
	// RankConst: the slot has no RANK or a number literal, which no job
	// can raise, so it is never preempted for RANK.
	RankConst bool
}

// SlotFromAd reads what the negotiator needs from a machine ad.
func SlotFromAd(ad *classad.Ad) (Slot, bool) {
	name, ok1 := ad.EvalString("Name")
	startd, ok2 := ad.EvalString("StartdName")
	if !ok1 || !ok2 || name == "" || !events.ValidName(startd) {
		return Slot{}, false
	}
	s := Slot{Name: name, Startd: startd, Ad: ad}
	s.State, _ = ad.EvalString("State")
	s.Claims, _ = ad.EvalInt("VmpoolClaims")
	s.Heard, _ = ad.EvalInt("LastHeardFrom")
	s.Machine, _ = ad.EvalString("Machine")
	s.CurrentRank, s.HasRank = ad.Eval("CurrentRank").NumberValue()
	s.ClaimMemory, _ = ad.EvalInt("VmpoolClaimMemory")
	s.Preempting, _ = ad.EvalBool("VmpoolPreempting")
	e, ok := ad.Lookup("Rank")
	s.RankConst = !ok || constant(e)
	return s, true
}

// available reports whether a slot may take a new match: unclaimed, not
// reserved by a match whose claim its ad does not show yet, and not
// refused a claim since this ad was published.
func (st *State) available(s Slot, reserved map[string]*Match, now int64) bool {
	return s.State == "Unclaimed" && st.settled(s, reserved, now)
}

// settled reports whether no match of the slot is unsettled (reserved by a
// match whose claim its ad does not show yet) or refused (a claim it
// turned down since this ad was published).
func (st *State) settled(s Slot, reserved map[string]*Match, now int64) bool {
	if rev, ok := st.Refused[s.Name]; ok && s.Revision <= rev &&
		(st.MatchTimeout <= 0 || now-st.RefusedAt[s.Name] < st.MatchTimeout) {
		return false
	}
	if m := reserved[s.Name]; m != nil && s.Claims <= m.Claims {
		return false
	}
	return true
}

// DecideCycle is one negotiation cycle: it matches idle jobs to available
// slots and returns a Matched event per match. Jobs go in queue order
// (QDate, cluster, proc), taking turns by owner, the owner with the fewest
// jobs running first (idleJobs), so that one user's big cluster does not
// starve the others; each takes the slot its Rank likes
// best among those that match both ways (ties: the slot listed first).
// Jobs of a cluster without per-proc attributes share one evaluation per
// slot (an autocluster). time() in the expressions reads now, the cycle's
// clock, so replay repeats the decision.
func DecideCycle(st *State, slots []Slot, now time.Time) []events.Event {
	opts := &classad.EvalOptions{Now: func() time.Time { return now }}
	reserved := map[string]*Match{}
	busyJobs := map[JobKey]bool{}
	for _, m := range st.Matches {
		if st.MatchTimeout > 0 && now.UnixNano()-m.At > st.MatchTimeout {
			// Expired by the clock, though no event has come since to
			// expire it in the state (a quiet pool): the schedd never
			// took it, or its claim never showed. Match again.
			continue
		}
		if cur := reserved[m.Slot]; cur == nil || m.At > cur.At {
			reserved[m.Slot] = m
		}
		if !m.Taken {
			busyJobs[m.Job] = true
		}
	}
	var free, claimed []Slot
	for _, s := range slots {
		switch {
		case st.available(s, reserved, now.UnixNano()):
			free = append(free, s)
		case st.preemptible(s, reserved, now.UnixNano()):
			claimed = append(claimed, s)
		}
	}
	if len(free) == 0 && len(claimed) == 0 {
		return nil
	}
	sort.Slice(free, func(a, b int) bool { return free[a].Name < free[b].Name })
	sort.Slice(claimed, func(a, b int) bool { return claimed[a].Name < claimed[b].Name })
	jobs := st.idleJobs(busyJobs)
	if len(jobs) == 0 {
		return nil
	}
	made := st.Made
	out, left := st.matchFree(jobs, free, opts, &made)
	if len(left) > 0 && len(claimed) > 0 {
		out = append(out, st.matchPreempting(left, claimed, opts, &made)...)
	}
	return out
}

// matchFree matches jobs to the free slots; it returns the matches and
// the jobs left without one.
func (st *State) matchFree(jobs []*Job, free []Slot, opts *classad.EvalOptions, made *int64) ([]events.Event, []*Job) {
	var unmatched []*Job
	taken := make([]bool, len(free))
	left := len(free)
	type acKey struct {
		schedd string
		id     int
	}
	// An autocluster (a cluster without per-proc attributes: its jobs
	// share one ad) ranks the free slots it matches once; its jobs then
	// take them in that order, each the best one still free, which is
	// what each would choose alone, at a cost per job of only the slots
	// the others took.
	clusters := map[acKey]*autocluster{}
	var out []events.Event
	for i, j := range jobs {
		if left == 0 {
			unmatched = append(unmatched, jobs[i:]...)
			break
		}
		best := -1
		if j.Own == nil {
			k := acKey{j.Cluster.Schedd, j.Cluster.ID}
			ac := clusters[k]
			if ac == nil {
				ac = rankSlots(j.Cluster.Ad(), free, opts)
				clusters[k] = ac
			}
			for ac.next < len(ac.order) && taken[ac.order[ac.next]] {
				ac.next++
			}
			if ac.next < len(ac.order) {
				best = ac.order[ac.next]
			}
		} else {
			bestRank := 0.0
			for i, s := range free {
				if taken[i] || !classad.MatchWith(j.Own, s.Ad, opts) {
					continue
				}
				r := classad.RankWith(j.Own, s.Ad, opts)
				if best < 0 || r > bestRank {
					best, bestRank = i, r
				}
			}
		}
		if best < 0 {
			unmatched = append(unmatched, j)
			continue
		}
		taken[best] = true
		left--
		*made++
		out = append(out, st.matched(j, free[best], *made, false))
	}
	return out, unmatched
}

// matched is the event of a match of job j to slot s.
func (st *State) matched(j *Job, s Slot, n int64, preempting bool) events.Event {
	return events.New(events.Matched, events.MatchedPayload{
		MatchID:    fmt.Sprintf("%s#%d", st.Name, n),
		Startd:     s.Startd,
		Slot:       s.Name,
		Machine:    s.Machine,
		Claims:     s.Claims,
		AdRevision: s.Revision,
		Preempting: preempting,
	}).ForJob(j.Key.Schedd, j.Key.ID)
}

// preemptible reports whether a claimed slot may be matched to a job its
// RANK prefers to the one it runs (HTCondor's RANK preemption): it says
// what it runs (CurrentRank), no job waits to preempt it yet, its RANK
// is not a constant, and no match of it is unsettled or refused.
func (st *State) preemptible(s Slot, reserved map[string]*Match, now int64) bool {
	return s.mayPreempt() && st.settled(s, reserved, now)
}

// mayPreempt reports whether a slot's ad allows RANK preemption: claimed,
// running a job of a known rank, no preemption waiting, and a RANK that is
// not a constant.
func (s Slot) mayPreempt() bool {
	return s.State == "Claimed" && s.HasRank && !s.Preempting && !s.RankConst
}

// Candidate reports whether a cycle may match the slot at all, whatever
// the matches and refusals: unclaimed, or claimed and open to RANK
// preemption. The shell passes DecideCycle only these.
func (s Slot) Candidate() bool {
	return s.State == "Unclaimed" || s.mayPreempt()
}

// constant reports whether e is a number literal: a RANK no job can
// raise.
func constant(e *classad.Expr) bool {
	_, err := strconv.ParseFloat(strings.TrimSpace(e.String()), 64)
	return err == nil
}

// matchPreempting matches jobs that found no free slot to claimed slots
// whose RANK prefers them to the job they run, each slot once, the least
// preferred running job first. The startd vacates that job (saving it
// when it asked for checkpoints) and then runs the new one; it checks the
// match again against the job's own ad. A cluster's jobs are judged by the
// cluster's ad, once per cycle.
func (st *State) matchPreempting(jobs []*Job, claimed []Slot, opts *classad.EvalOptions, made *int64) []events.Event {
	type candidate struct {
		slot int
		rank float64
	}
	taken := make([]bool, len(claimed))
	byCluster := map[*Cluster][]candidate{}
	var out []events.Event
	for _, j := range jobs {
		cands, ok := byCluster[j.Cluster]
		if !ok {
			for i, s := range claimed {
				ad := vacated(s)
				if r := classad.RankWith(ad, j.Cluster.Ad(), opts); r > s.CurrentRank && classad.MatchWith(j.Cluster.Ad(), ad, opts) {
					cands = append(cands, candidate{i, s.CurrentRank})
				}
			}
			sort.SliceStable(cands, func(a, b int) bool { return cands[a].rank < cands[b].rank })
			byCluster[j.Cluster] = cands
		}
		for len(cands) > 0 && taken[cands[0].slot] {
			cands = cands[1:]
		}
		byCluster[j.Cluster] = cands
		if len(cands) == 0 {
			continue
		}
		taken[cands[0].slot] = true
		*made++
		out = append(out, st.matched(j, claimed[cands[0].slot], *made, true))
	}
	return out
}

// vacated is a claimed slot's ad as it will be once its VM is gone.
func vacated(s Slot) *classad.Ad {
	ad := classad.NewAd()
	ad.SetParent(s.Ad)
	if v, ok := s.Ad.EvalInt("VM_Memory"); ok {
		ad.SetInt("VM_Memory", v+s.ClaimMemory)
	}
	if v, ok := s.Ad.EvalInt("VM_AvailNum"); ok {
		ad.SetInt("VM_AvailNum", v+1)
	}
	ad.SetString("State", "Unclaimed")
	ad.SetString("Activity", "Idle")
	return ad
}

// autocluster is a cluster's free slots in its order of preference, and
// how far its jobs have taken them.
type autocluster struct {
	order []int // indexes into free: matching slots, best Rank first
	next  int
}

// rankSlots lists the free slots ad matches, best Rank first (ties: the
// slot listed first).
func rankSlots(ad *classad.Ad, free []Slot, opts *classad.EvalOptions) *autocluster {
	ac := &autocluster{}
	ranks := make(map[int]float64)
	for i, s := range free {
		if classad.MatchWith(ad, s.Ad, opts) {
			ac.order = append(ac.order, i)
			ranks[i] = classad.RankWith(ad, s.Ad, opts)
		}
	}
	sort.SliceStable(ac.order, func(a, b int) bool { return ranks[ac.order[a]] > ranks[ac.order[b]] })
	return ac
}

// idleJobs lists the matchable jobs in negotiation order: owners take
// turns, and each turn goes to the owner with the fewest jobs running,
// claimed or matched (those of this order counted as they are placed;
// ties by name), so that as slots free one at a time the users converge
// on equal shares of the pool, as HTCondor's fair share does for users of
// equal priority. Plain turns in name order gave every freed slot to the
// first name with idle jobs while the pool was full. Each owner's jobs
// come in queue order.
func (st *State) idleJobs(busy map[JobKey]bool) []*Job {
	byOwner := map[string][]*Job{}
	inUse := map[string]int{}
	total := 0
	for k, j := range st.Jobs {
		switch {
		case j.Idle() && !busy[k]:
			byOwner[j.Cluster.Owner] = append(byOwner[j.Cluster.Owner], j)
			total++
		case busy[k] || j.HasClaim || j.Status == jobRunning:
			inUse[j.Cluster.Owner]++
		}
	}
	turns := make(ownerTurns, 0, len(byOwner))
	for o, js := range byOwner {
		sort.Slice(js, func(a, b int) bool { return before(js[a], js[b]) })
		turns = append(turns, &ownerTurn{owner: o, jobs: js, used: inUse[o]})
	}
	heap.Init(&turns)
	out := make([]*Job, 0, total)
	for len(turns) > 0 {
		t := turns[0]
		out = append(out, t.jobs[t.next])
		t.next++
		t.used++
		if t.next == len(t.jobs) {
			heap.Pop(&turns)
		} else {
			heap.Fix(&turns, 0)
		}
	}
	return out
}

// jobRunning is JobStatus 2.
const jobRunning = 2

// ownerTurn is one owner's idle jobs in queue order, the next to place,
// and how many of the owner's jobs hold or are given slots.
type ownerTurn struct {
	owner string
	jobs  []*Job
	next  int
	used  int
}

// ownerTurns is a heap of owners, the one with the fewest slots in use
// (ties: the name) on top.
type ownerTurns []*ownerTurn

func (h ownerTurns) Len() int { return len(h) }
func (h ownerTurns) Less(a, b int) bool {
	if h[a].used != h[b].used {
		return h[a].used < h[b].used
	}
	return h[a].owner < h[b].owner
}
func (h ownerTurns) Swap(a, b int) { h[a], h[b] = h[b], h[a] }
func (h *ownerTurns) Push(x any)   { *h = append(*h, x.(*ownerTurn)) }
func (h *ownerTurns) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

func before(a, b *Job) bool {
	if a.Cluster.QDate != b.Cluster.QDate {
		return a.Cluster.QDate < b.Cluster.QDate
	}
	if a.Key.Schedd != b.Key.Schedd {
		return a.Key.Schedd < b.Key.Schedd
	}
	if a.Key.ID.Cluster != b.Key.ID.Cluster {
		return a.Key.ID.Cluster < b.Key.ID.Cluster
	}
	return a.Key.ID.Proc < b.Key.ID.Proc
}
