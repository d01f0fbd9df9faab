// Package negotiator matches idle jobs to slots. It consumes every schedd's
// events (keeping them in its own log as input records, so that a replay
// shows exactly what it saw), watches the slots' machine ads in the
// collector, and records each match it makes as a Matched event that the
// job's schedd consumes.
//
// It is a pure core (State, Apply, DecideCycle) in an I/O shell
// (Negotiator); matchmaking is the classad package's Match and Rank on the
// real Requirements and Rank expressions. It imports events and classad,
// never schedd or startd.
package negotiator

import (
	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// JobKey names a job pool-wide.
type JobKey struct {
	Schedd string
	ID     events.JobID
}

type clusterKey struct {
	schedd string
	id     int
}

// State is the negotiator's projection: the jobs it may match (mirroring
// each schedd's view of them) and the matches it made that are not yet
// settled.
type State struct {
	Name     string
	Jobs     map[JobKey]*Job
	clusters map[clusterKey]*Cluster
	Matches  map[string]*Match // unsettled matches by id
	// Refused holds, per slot whose claim failed, the revision of the ad
	// it was matched from: the slot is not matched again until a newer ad
	// shows what it really is (else a stale ad would be matched, refused
	// and matched again as fast as the bus goes).
	Refused map[string]uint64
	// RefusedAt is when each refusal was recorded (unix nanos, the log's
	// time). A refusal holds the slot back for MatchTimeout at most: a
	// collector created anew (a NATS server that lost it) numbers its
	// ads from 1 again, below the revision refused.
	RefusedAt map[string]int64
	Made      int64 // matches made since the log began
	Latest    int64 // time of the newest event applied (unix nanos)
	Applied   uint64
	// MatchTimeout (nanoseconds) after which an unsettled match no longer
	// reserves its slot (HTCondor's MATCH_TIMEOUT).
	MatchTimeout int64
	// oldestAt is at most the At of every match in Matches (0: no bound
	// known), so that expire scans them only when one may be due.
	oldestAt int64
}

// Cluster is a submit's common ad.
type Cluster struct {
	Schedd string
	ID     int
	Owner  string
	QDate  int64
	// lazy is the submitted attributes plus ClusterId, Owner, QDate and
	// JobStatus, parsed when a cycle first reads them (Ad): a burst of
	// submits, or a replay, then costs no parsing.
	lazy *classad.Lazy
	live int
}

// Ad is the cluster's ad (see lazy).
func (c *Cluster) Ad() *classad.Ad { return c.lazy.Get() }

// Job mirrors one schedd job as far as matching needs.
type Job struct {
	Key      JobKey
	Cluster  *Cluster
	Own      *classad.Ad // per-proc attributes over Cluster.Ad(), or nil
	Status   int
	HasClaim bool
	// The schedd's sequence of the event that last set Status, and
	// HasClaim. An older event arriving later (published again after a
	// bus lost it) does not undo a newer one: a JobMatched after the
	// ClaimFailed that followed it left the job claimed for ever.
	statusSeq, claimSeq uint64
}

// newer reports whether an event of sequence seq is newer than the one
// that last set the field *last, and if so makes it the last.
func newer(last *uint64, seq uint64) bool {
	if seq < *last {
		return false
	}
	*last = seq
	return true
}

// Idle reports whether the job waits for a match.
func (j *Job) Idle() bool { return j.Status == 1 && !j.HasClaim }

// Match is a match the negotiator made and the schedd has not settled.
type Match struct {
	ID     string
	Job    JobKey
	Slot   string // slot name
	Claims int64  // the slot's VmpoolClaims when matched
	At     int64  // unix nanos
	// AdRevision is the collector revision of the slot ad matched.
	AdRevision uint64
	// Taken is set when the schedd took the match (JobMatched): the job is
	// then the schedd's business, but the slot stays reserved until its ad
	// shows the claim.
	Taken bool
}

// NewState returns an empty state.
func NewState(name string, matchTimeoutNanos int64) *State {
	return &State{Name: name, Jobs: map[JobKey]*Job{}, clusters: map[clusterKey]*Cluster{},
		Matches: map[string]*Match{}, Refused: map[string]uint64{}, RefusedAt: map[string]int64{}, MatchTimeout: matchTimeoutNanos}
}

// MatchedPayload is the negotiator's own record of a match.
type MatchedPayload = events.MatchedPayload

// Apply folds an event into the state: the negotiator's own Matched
// events and the schedd events it keeps as input records. Pure and total.
func Apply(st *State, e events.Event) *State {
	st.Applied++
	st.Latest = max(st.Latest, e.Time)
	if e.Source == st.Name {
		if e.Type == events.Matched {
			var p events.MatchedPayload
			if e.Decode(&p) == nil {
				k := JobKey{e.Schedd, e.Job()}
				st.Matches[p.MatchID] = &Match{ID: p.MatchID, Job: k, Slot: p.Slot, Claims: p.Claims, At: e.Time, AdRevision: p.AdRevision}
				st.Made++
				if len(st.Matches) == 1 || e.Time < st.oldestAt {
					st.oldestAt = e.Time
				}
			}
		}
		st.expire()
		return st
	}
	applySchedd(st, e)
	return st
}

// expire forgets matches older than MatchTimeout, by the log's own time,
// so replay forgets them exactly when the live negotiator did.
func (st *State) expire() {
	if st.MatchTimeout <= 0 || len(st.Matches) == 0 || st.Latest-st.oldestAt <= st.MatchTimeout {
		return
	}
	oldest := int64(0)
	for id, m := range st.Matches {
		if st.Latest-m.At > st.MatchTimeout {
			delete(st.Matches, id)
		} else if oldest == 0 || m.At < oldest {
			oldest = m.At
		}
	}
	st.oldestAt = oldest
}

// HasIdle reports whether any job waits for a match (some may be matched
// already, not yet taken): a cycle without one has nothing to do.
func (st *State) HasIdle() bool {
	for _, j := range st.Jobs {
		if j.Idle() {
			return true
		}
	}
	return false
}

func applySchedd(st *State, e events.Event) {
	if e.Type == events.ClusterSubmitted {
		p, raw, err := e.DecodeSubmit()
		if err != nil {
			return
		}
		ck := clusterKey{e.Schedd, e.Cluster}
		c := &Cluster{Schedd: e.Schedd, ID: e.Cluster, Owner: p.Owner, QDate: e.Time / 1e9}
		attrs := p.Attrs
		c.lazy = classad.NewLazy(func() *classad.Ad {
			ad := adFrom(events.SubmittedAttrs(attrs, raw))
			ad.SetInt("ClusterId", int64(c.ID))
			ad.SetString("Owner", c.Owner)
			ad.SetInt("QDate", c.QDate)
			ad.SetInt("JobStatus", 1)
			return ad
		})
		st.clusters[ck] = c
		for i := 0; i < p.NumProcs; i++ {
			j := &Job{Key: JobKey{e.Schedd, events.JobID{Cluster: e.Cluster, Proc: i}}, Cluster: c, Status: 1}
			if p.Held(i) {
				j.Status = 5
			}
			if i < len(p.Procs) && len(p.Procs[i].Attrs) > 0 {
				j.Own = adFrom(p.Procs[i].Attrs)
				j.Own.SetParent(c.Ad())
			}
			st.Jobs[j.Key] = j
			c.live++
		}
		return
	}
	k := JobKey{e.Schedd, e.Job()}
	j := st.Jobs[k]
	switch e.Type {
	case events.MatchRejected:
		var p events.MatchRejectedPayload
		if e.Decode(&p) == nil {
			delete(st.Matches, p.MatchID)
		}
		return
	case events.ClaimFailed:
		var p events.ClaimPayload
		if e.Decode(&p) == nil {
			if m := st.Matches[p.ClaimID]; m != nil && m.AdRevision > 0 {
				st.Refused[m.Slot] = max(st.Refused[m.Slot], m.AdRevision)
				st.RefusedAt[m.Slot] = max(st.RefusedAt[m.Slot], e.Time)
			}
			delete(st.Matches, p.ClaimID)
		}
	case events.ClaimReleased:
		// The claim is over, whether or not it reached the startd (a job
		// held before its claim was sent): its slot is no longer
		// reserved, though its ad may never show the claim.
		var p events.ClaimPayload
		if e.Decode(&p) == nil {
			delete(st.Matches, p.ClaimID)
		}
	case events.JobMatched:
		var p events.JobMatchedPayload
		if e.Decode(&p) == nil {
			if m := st.Matches[p.ClaimID]; m != nil {
				m.Taken = true
			}
		}
		if j != nil && newer(&j.claimSeq, e.Seq) {
			j.HasClaim = true
		}
		return
	}
	if j == nil {
		return
	}
	switch e.Type {
	case events.ClaimFailed:
		if newer(&j.claimSeq, e.Seq) {
			j.HasClaim = false
		}
	case events.JobStarted:
		if newer(&j.statusSeq, e.Seq) {
			j.Status = 2
		}
	case events.JobHeld:
		if newer(&j.statusSeq, e.Seq) {
			j.Status = 5
		}
	case events.JobReleased:
		if newer(&j.statusSeq, e.Seq) {
			j.Status = 1
		}
	case events.JobEvicted, events.ClaimReleased, events.ClaimLost:
		if newer(&j.claimSeq, e.Seq) {
			j.HasClaim = false
		}
		if newer(&j.statusSeq, e.Seq) && j.Status == 2 {
			j.Status = 1
		}
	case events.JobCompleted, events.JobRemoved:
		delete(st.Jobs, k)
		j.Cluster.live--
		if j.Cluster.live <= 0 {
			delete(st.clusters, clusterKey{j.Cluster.Schedd, j.Cluster.ID})
		}
	}
}

func adFrom(attrs []events.Attr) *classad.Ad {
	ad := classad.NewAd()
	for _, a := range attrs {
		if err := ad.SetExpr(a.Name, a.Expr); err != nil {
			ad.SetValue(a.Name, classad.Error())
		}
	}
	return ad
}
