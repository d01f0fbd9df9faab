package schedd

import (
	"fmt"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// Job policy: HTCondor's periodic_hold, periodic_release and
// periodic_remove, which the schedd evaluates against every job in the
// queue every PERIODIC_EXPR_INTERVAL. time() and CurrentTime read the
// command's clock, so a replayed decision is the same decision.

// Hold and remove codes of the job policy.
const (
	holdJobPolicy = 3 // JobPolicy: PeriodicHold became true
)

// DecidePolicy evaluates the policy expressions of every job at now and
// returns the holds, releases and removals they call for.
func DecidePolicy(q *Queue, now time.Time) []events.Event {
	opts := &classad.EvalOptions{Now: func() time.Time { return now }}
	var out []events.Event
	for _, j := range q.Sorted() {
		if j.Status == Removed || j.Status == Completed {
			continue
		}
		ad := j.Ad(q.Name)
		eval := func(attr string) (bool, string) {
			e, ok := ad.Lookup(attr)
			if !ok {
				return false, ""
			}
			return e.EvalWith(ad, nil, opts).IsTrue(), e.String()
		}
		reason := func(attr, expr, fallback string) string {
			if e, ok := ad.Lookup(attr); ok {
				if s, ok := e.EvalWith(ad, nil, opts).StringValue(); ok && s != "" {
					return s
				}
			}
			return fmt.Sprintf("The job attribute %s expression '%s' evaluated to TRUE", fallback, expr)
		}
		if yes, expr := eval("PeriodicRemove"); yes {
			out = append(out, events.New(events.JobRemoved, events.JobActionPayload{
				By: "policy", Reason: reason("PeriodicRemoveReason", expr, "PeriodicRemove"), Claimed: j.Claim != nil}).ForJob(q.Name, j.ID))
			continue
		}
		switch j.Status {
		case Held:
			if yes, expr := eval("PeriodicRelease"); yes {
				out = append(out, events.New(events.JobReleased, events.JobActionPayload{
					By: "policy", Reason: reason("PeriodicReleaseReason", expr, "PeriodicRelease")}).ForJob(q.Name, j.ID))
			}
		default:
			if yes, expr := eval("PeriodicHold"); yes {
				sub := 0
				if e, ok := ad.Lookup("PeriodicHoldSubCode"); ok {
					if n, ok := e.EvalWith(ad, nil, opts).IntValue(); ok {
						sub = int(n)
					}
				}
				out = append(out, events.New(events.JobHeld, events.JobHeldPayload{Code: holdJobPolicy, SubCode: sub,
					Reason: reason("PeriodicHoldReason", expr, "PeriodicHold"), By: "policy"}).ForJob(q.Name, j.ID))
			}
		}
	}
	return out
}
