package schedd

import (
	"testing"

	"github.com/vmpool/vmpool/events"
)

// TestDescribeClaimLost: replay --job tells a lost claim in words, as it
// does every other event (it printed "ClaimLost on SLOT: REASON").
func TestDescribeClaimLost(t *testing.T) {
	e := events.New(events.ClaimLost, events.ClaimPayload{ClaimID: "n#1", Slot: "slot1@s1", Reason: "no keepalive from startd s1 for 21s (JobLeaseDuration 20)"})
	want := "claim on slot1@s1 lost (the job lease ran out): no keepalive from startd s1 for 21s (JobLeaseDuration 20)"
	if got := Describe(e); got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
}

// A guest that halted instead of powering off is said to have.
func TestDescribeHaltedGuest(t *testing.T) {
	e := events.New(events.JobExited, events.VMEventPayload{ClaimID: "n#1", Slot: "slot1@s1", PoweredOff: true, Reason: "guest-halted"})
	want := "guest halted without powering off (taken as a power-off) on slot1@s1"
	if got := Describe(e); got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	e = events.New(events.JobExited, events.VMEventPayload{ClaimID: "n#1", Slot: "slot1@s1", PoweredOff: true, Reason: "guest-shutdown"})
	if got := Describe(e); got != "guest powered off on slot1@s1" {
		t.Errorf("Describe = %q", got)
	}
}

// A vacate asked with -fast is said to be one.
func TestDescribeVacateFast(t *testing.T) {
	for p, want := range map[events.JobActionPayload]string{
		{By: "alice"}:             "vacate requested by alice",
		{By: "alice", Fast: true}: "vacate -fast requested (no checkpoint) by alice",
		{}:                        "vacate requested",
	} {
		if got := Describe(events.New(events.JobVacating, p)); got != want {
			t.Errorf("Describe(%+v) = %q, want %q", p, got, want)
		}
	}
}

// A start says which checkpoint it resumed from, and why it did not use a
// newer one or any (the starter's note): "why did my job start over?".
func TestDescribeResume(t *testing.T) {
	for p, want := range map[events.JobStartedPayload]string{
		{Slot: "slot1@s1"}: "started on slot1@s1",
		{Slot: "slot1@s1", Resumed: true, ResumedFrom: 3}: "resumed from checkpoint 3 on slot1@s1",
		{Slot: "slot1@s1", Resumed: true, ResumedFrom: 2, ResumeNote: "checkpoint 3 unusable (sha256 mismatch); resumed from checkpoint 2"}: "resumed from checkpoint 2 on slot1@s1 (checkpoint 3 unusable (sha256 mismatch); resumed from checkpoint 2)",
		{Slot: "slot1@s1", ResumeNote: "checkpoint 1 unusable (gone); restarted from the original disks"}:                                   "started on slot1@s1 (checkpoint 1 unusable (gone); restarted from the original disks)",
	} {
		if got := Describe(events.New(events.JobStarted, p)); got != want {
			t.Errorf("Describe(%+v) = %q, want %q", p, got, want)
		}
	}
}
