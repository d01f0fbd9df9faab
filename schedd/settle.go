package schedd

import (
	"context"
	"time"

	"github.com/vmpool/vmpool/events"
)

// A startd accepts a claim and starts its VM moments later: two events on
// the schedd's side (JobClaimed, JobStarted) for what is, when the VM
// starts quickly, one step of the job's life. So the schedd waits
// Config.ClaimedGrace after the startd's answer says it accepted before it
// records JobClaimed, and records nothing for it when the VM's start came
// first: JobStarted moves a Matched claim straight to Running. A VM slower
// to start (inputs to fetch) shows its claim as claimed after the grace.
// Until then the claim stays Matched in the queue and the periodic scan
// does not send it again; an answer that was lost, or a crash in between,
// only means the claim is sent again, which the startd answers as
// accepted (claims are idempotent). The default grace is long because a
// busy pool's VMStarted reaches the schedd long after the answer: placing
// 20,000 sim jobs at once, a grace of 1 s caught almost none of them; of
// 100,000 on 10,000 startds, 10 s caught 79% and 30 s all of them (58.7 s
// for the whole placement against 67.8 s). A claim whose startd dies
// before the VM starts is noticed that much later, against a lease of
// 2,400 s by default.
const defaultClaimedGrace = 30 * time.Second

// acceptance is a claim a startd accepted whose JobClaimed waits.
type acceptance struct {
	job   events.JobID
	claim string
	due   time.Time
}

// heardAccepted notes that claimID of job was accepted; settleClaims
// records it when its grace is over.
func (s *Schedd) heardAccepted(job events.JobID, claimID string) {
	s.amu.Lock()
	defer s.amu.Unlock()
	if s.accepted[claimID] {
		return
	}
	s.accepted[claimID] = true
	s.acceptQ = append(s.acceptQ, acceptance{job: job, claim: claimID, due: time.Now().Add(s.cfg.ClaimedGrace)})
	if len(s.acceptQ) == 1 {
		select {
		case s.acceptKick <- struct{}{}:
		default:
		}
	}
}

// waitsAccepted reports whether claimID was accepted and its JobClaimed
// waits for its grace.
func (s *Schedd) waitsAccepted(claimID string) bool {
	s.amu.Lock()
	defer s.amu.Unlock()
	return s.accepted[claimID]
}

// settleClaims records the acceptances whose grace is over, those due
// together in one commit (DecideClaimReply: nothing for a claim that moved
// on meanwhile).
func (s *Schedd) settleClaims(ctx context.Context) error {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		s.amu.Lock()
		var due []acceptance
		now := time.Now()
		n := 0
		for n < len(s.acceptQ) && !s.acceptQ[n].due.After(now) {
			n++
		}
		due = append(due, s.acceptQ[:n]...)
		s.acceptQ = s.acceptQ[n:]
		wait := time.Hour
		if len(s.acceptQ) > 0 {
			wait = s.acceptQ[0].due.Sub(now)
		}
		s.amu.Unlock()
		if len(due) > 0 {
			_, err := s.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
				var evs []events.Event
				for _, a := range due {
					evs = append(evs, DecideClaimReply(s.q, a.job, a.claim, events.ClaimReply{Accepted: true})...)
				}
				return evs, nil
			})
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				// Left Matched: the periodic scan claims the slot again,
				// and the startd answers it as accepted.
				s.logger.Error("record accepted claims", "claims", len(due), "err", err)
			}
			s.amu.Lock()
			for _, a := range due {
				delete(s.accepted, a.claim)
			}
			s.amu.Unlock()
			continue
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-s.acceptKick:
		case <-t.C:
		}
	}
}
