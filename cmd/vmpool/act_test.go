package main

import (
	"testing"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/schedd"
)

// TestActResultLines: each job's result in condor_rm's, condor_hold's,
// condor_release's and condor_vacate_job's words (HTCondor's
// JobActionResults), on stdout when done and stderr when not.
func TestActResultLines(t *testing.T) {
	id := events.JobID{Cluster: 42, Proc: 0}
	res := func(code events.Code, msg string) schedd.ActionResult {
		return schedd.ActionResult{Job: id, Code: code, Error: msg}
	}
	for _, tc := range []struct {
		name string
		kind string
		fast bool
		r    schedd.ActionResult
		want string
		done bool
	}{
		{"removed", schedd.ActRemove, false, res("", ""), "Job 42.0 marked for removal", true},
		{"held", schedd.ActHold, false, res("", ""), "Job 42.0 held", true},
		{"released", schedd.ActRelease, false, res("", ""), "Job 42.0 released", true},
		{"vacated", schedd.ActVacate, false, res("", ""), "Job 42.0 vacated", true},
		{"fast-vacated", schedd.ActVacate, true, res("", ""), "Job 42.0 fast-vacated", true},
		{"already held", schedd.ActHold, false, res(schedd.ErrAlreadyDone.Code, "job 42.0 is already held"), "Job 42.0 already held", false},
		{"already removed", schedd.ActRemove, false, res(schedd.ErrAlreadyDone.Code, "job 42.0 is already being removed"), "Job 42.0 already marked for removal", false},
		{"not held", schedd.ActRelease, false, res(schedd.ErrNotHeld.Code, "job 42.0 is not held"), "Job 42.0 not held to be released", false},
		{"not running", schedd.ActVacate, false, res(schedd.ErrNotRunning.Code, "job 42.0 is not running"), "Job 42.0 not running to be vacated", false},
		{"not running fast", schedd.ActVacate, true, res(schedd.ErrNotRunning.Code, "job 42.0 is not running"), "Job 42.0 not running to be fast-vacated", false},
		{"permission", schedd.ActHold, false, res(schedd.ErrPermissionDenied.Code, "job 42.0 belongs to bob"), "Permission denied to hold job 42.0 (job 42.0 belongs to bob)", false},
		{"being removed", schedd.ActHold, false, res(schedd.ErrBeingRemoved.Code, "job 42.0 is being removed"), "Could not hold job 42.0: job 42.0 is being removed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, done := actResultLine(tc.kind, tc.fast, tc.r)
			if got != tc.want || done != tc.done {
				t.Errorf("got %q (done %v), want %q (done %v)", got, done, tc.want, tc.done)
			}
		})
	}
}
