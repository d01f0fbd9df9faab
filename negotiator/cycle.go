package negotiator

import (
	"fmt"
	"sort"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// Slot is a machine ad the negotiator may match, as read from the
// collector.
type Slot struct {
	Name   string // Name attribute, e.g. slot1@startd1
	Startd string // StartdName attribute: where claims go
	Ad     *classad.Ad
	// Revision is the ad's revision in the collector (0: unknown).
	Revision uint64
	// Read from the ad once, for every cycle: State, VmpoolClaims,
	// LastHeardFrom and Machine.
	State   string
	Claims  int64
	Heard   int64
	Machine string
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
	return s, true
}

// available reports whether a slot may take a new match: unclaimed, not
// reserved by a match whose claim its ad does not show yet, and not
// refused a claim since this ad was published.
func (st *State) available(s Slot, reserved map[string]*Match) bool {
	if s.State != "Unclaimed" {
		return false
	}
	if rev, ok := st.Refused[s.Name]; ok && s.Revision <= rev {
		return false
	}
	if m := reserved[s.Name]; m != nil && s.Claims <= m.Claims {
		return false
	}
	return true
}

// DecideCycle is one negotiation cycle: it matches idle jobs to available
// slots and returns a Matched event per match. Jobs go in queue order
// (QDate, cluster, proc), taking turns by owner so that one user's big
// cluster does not starve the others; each takes the slot its Rank likes
// best among those that match both ways (ties: the slot listed first).
// Jobs of a cluster without per-proc attributes share one evaluation per
// slot (an autocluster). time() in the expressions reads now, the cycle's
// clock, so replay repeats the decision.
func DecideCycle(st *State, slots []Slot, now time.Time) []events.Event {
	opts := &classad.EvalOptions{Now: func() time.Time { return now }}
	reserved := map[string]*Match{}
	busyJobs := map[JobKey]bool{}
	for _, m := range st.Matches {
		if cur := reserved[m.Slot]; cur == nil || m.At > cur.At {
			reserved[m.Slot] = m
		}
		if !m.Taken {
			busyJobs[m.Job] = true
		}
	}
	var free []Slot
	for _, s := range slots {
		if st.available(s, reserved) {
			free = append(free, s)
		}
	}
	if len(free) == 0 {
		return nil
	}
	sort.Slice(free, func(a, b int) bool { return free[a].Name < free[b].Name })
	jobs := st.idleJobs(busyJobs)
	if len(jobs) == 0 {
		return nil
	}
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
	made := st.Made
	for _, j := range jobs {
		if left == 0 {
			break
		}
		best := -1
		if j.Own == nil {
			k := acKey{j.Cluster.Schedd, j.Cluster.ID}
			ac := clusters[k]
			if ac == nil {
				ac = rankSlots(j.Cluster.Ad, free, opts)
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
			continue
		}
		taken[best] = true
		left--
		made++
		s := free[best]
		out = append(out, events.New(events.Matched, events.MatchedPayload{
			MatchID:    fmt.Sprintf("%s#%d", st.Name, made),
			Startd:     s.Startd,
			Slot:       s.Name,
			Machine:    s.Machine,
			Claims:     s.Claims,
			AdRevision: s.Revision,
		}).ForJob(j.Key.Schedd, j.Key.ID))
	}
	return out
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

// idleJobs lists the matchable jobs in negotiation order.
func (st *State) idleJobs(busy map[JobKey]bool) []*Job {
	byOwner := map[string][]*Job{}
	for k, j := range st.Jobs {
		if j.Idle() && !busy[k] {
			byOwner[j.Cluster.Owner] = append(byOwner[j.Cluster.Owner], j)
		}
	}
	owners := make([]string, 0, len(byOwner))
	for o, js := range byOwner {
		owners = append(owners, o)
		sort.Slice(js, func(a, b int) bool { return before(js[a], js[b]) })
	}
	sort.Strings(owners)
	var out []*Job
	for i := 0; ; i++ {
		added := false
		for _, o := range owners {
			if js := byOwner[o]; i < len(js) {
				out = append(out, js[i])
				added = true
			}
		}
		if !added {
			return out
		}
	}
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
