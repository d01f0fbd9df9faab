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
		eval := func(attr string) (bool, string) { return evalPolicy(ad, attr, opts) }
		reason := func(attr, expr, fallback string) string { return policyReason(ad, attr, expr, fallback, opts) }
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
				out = append(out, events.New(events.JobHeld, events.JobHeldPayload{Code: holdJobPolicy, SubCode: policySubCode(ad, "PeriodicHoldSubCode", opts),
					Reason: reason("PeriodicHoldReason", expr, "PeriodicHold"), By: "policy"}).ForJob(q.Name, j.ID))
			}
		}
	}
	return out
}

// DecideHistoryTrim returns the event that forgets the oldest jobs of the
// history beyond max (MAX_HISTORY_JOBS; negative: no bound), as HTCondor
// rotates its history file away: none when the history is within it. It
// forgets at most the first written jobs of the history: those whose
// every user log event the schedd has written (the shell counts them), so
// that no event of a forgotten job misses its user log.
func DecideHistoryTrim(q *Queue, max, written int) []events.Event {
	if max < 0 {
		return nil
	}
	n := min(len(q.History)-max, written)
	if n <= 0 {
		return nil
	}
	return []events.Event{events.New(events.HistoryTrimmed, events.HistoryTrimmedPayload{Jobs: n})}
}

// DecideOnExitHold evaluates the job's OnExitHold (on_exit_hold) at now,
// once its guest has powered off and its disks are back, as HTCondor's
// shadow does when a job exits: true holds the job (code 3, JobPolicy,
// with OnExitHoldReason and OnExitHoldSubCode) instead of completing it.
func DecideOnExitHold(q *Queue, j *Job, now time.Time) (events.Event, bool) {
	opts := &classad.EvalOptions{Now: func() time.Time { return now }}
	ad := j.Ad(q.Name)
	// The job has exited: a guest that powers off exits normally, with 0.
	ad.SetInt("ExitCode", 0)
	ad.SetBool("ExitBySignal", false)
	yes, expr := evalPolicy(ad, "OnExitHold", opts)
	if !yes {
		return events.Event{}, false
	}
	return events.New(events.JobHeld, events.JobHeldPayload{Code: holdJobPolicy, SubCode: policySubCode(ad, "OnExitHoldSubCode", opts),
		Reason: policyReason(ad, "OnExitHoldReason", expr, "OnExitHold", opts), By: "policy"}).ForJob(q.Name, j.ID), true
}

// evalPolicy says whether the policy expression attr of ad is true, and
// its text.
func evalPolicy(ad *classad.Ad, attr string, opts *classad.EvalOptions) (bool, string) {
	e, ok := ad.Lookup(attr)
	if !ok {
		return false, ""
	}
	return e.EvalWith(ad, nil, opts).IsTrue(), e.String()
}

// policyReason is the job's own reason (attr), or HTCondor's words for
// the policy expression name whose text is expr.
func policyReason(ad *classad.Ad, attr, expr, name string, opts *classad.EvalOptions) string {
	if e, ok := ad.Lookup(attr); ok {
		if s, ok := e.EvalWith(ad, nil, opts).StringValue(); ok && s != "" {
			return s
		}
	}
	return fmt.Sprintf("The job attribute %s expression '%s' evaluated to TRUE", name, expr)
}

// policySubCode is the integer value of attr, else 0.
func policySubCode(ad *classad.Ad, attr string, opts *classad.EvalOptions) int {
	if e, ok := ad.Lookup(attr); ok {
		if n, ok := e.EvalWith(ad, nil, opts).IntValue(); ok {
			return int(n)
		}
	}
	return 0
}
