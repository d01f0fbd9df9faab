package startd

import (
	"fmt"
	"strings"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// DecideClaim decides a schedd's claim request against the state and the
// slot's machine ad. It returns the events recording an acceptance, or a
// refusal reason (and no events). A claim id already accepted is accepted
// again without events, so a schedd's retry is harmless; one whose VM has
// ended is refused, so that a late retry never runs the job again.
func DecideClaim(st *State, req events.ClaimRequest, slotAd *classad.Ad, vmMemory, vmMax int, now time.Time) ([]events.Event, string) {
	opts := &classad.EvalOptions{Now: func() time.Time { return now }}
	if _, ok := st.Claims[req.ClaimID]; ok {
		return nil, ""
	}
	if _, ok := st.Ended[req.ClaimID]; ok {
		return nil, fmt.Sprintf("claim %s already ran on startd %s", req.ClaimID, st.Name)
	}
	s := st.Slot(req.Slot)
	switch {
	case req.ClaimID == "" || req.Schedd == "" || req.Job.Cluster <= 0:
		return nil, "malformed claim request"
	case s == nil:
		return nil, fmt.Sprintf("no slot %q on startd %s", req.Slot, st.Name)
	case st.Draining:
		return nil, fmt.Sprintf("startd %s is draining", st.Name)
	case s.State != Unclaimed:
		return nil, fmt.Sprintf("slot %s is %s", s.Name, s.State)
	case vmMax > 0 && len(st.Claims) >= vmMax:
		return nil, fmt.Sprintf("startd %s already runs VM_MAX_NUMBER=%d VMs", st.Name, vmMax)
	}
	job, err := classad.ParseAd(req.JobAd)
	if err != nil {
		return nil, fmt.Sprintf("job ad does not parse: %v", err)
	}
	mem64, ok := job.EvalInt("JobVMMemory")
	if !ok || mem64 <= 0 {
		return nil, "job has no JobVMMemory"
	}
	mem := int(mem64)
	if free := vmMemory - st.UsedMemory(); mem > free {
		return nil, fmt.Sprintf("job needs vm_memory %d MiB; slot %s has %d MiB of VM_MEMORY free", mem, s.Name, free)
	}
	if v := slotAd.EvalWith("Start", job, opts); !v.IsTrue() {
		return nil, fmt.Sprintf("slot %s: START is %s for this job", s.Name, v)
	}
	if !classad.MatchWith(job, slotAd, opts) {
		return nil, fmt.Sprintf("job and slot %s do not match (their Requirements)", s.Name)
	}
	ev := events.New(events.ClaimAccepted, ClaimAcceptedPayload{Req: req, MemoryMiB: mem}).ForJob(req.Schedd, req.Job)
	return []events.Event{ev}, ""
}

// DecideStop records a schedd's deactivate request. known is false when
// the startd has no such claim (it already ended).
func DecideStop(st *State, req events.DeactivateRequest) (evs []events.Event, known bool) {
	c := st.Claims[req.ClaimID]
	if c == nil {
		return nil, false
	}
	mode := req.Mode
	if mode != events.ModeKill {
		mode = events.ModeVacate
	}
	if c.StopMode == events.ModeKill || c.StopMode == mode {
		return nil, true // already asked
	}
	return []events.Event{events.New(StopRequested, StopRequestedPayload{ClaimID: req.ClaimID, Mode: mode, Reason: req.Reason}).ForJob(c.Req.Schedd, c.Req.Job)}, true
}

// DecideDrain starts (on) or cancels a drain: no new claims; with on, every
// running VM is vacated (checkpointed when its job asked for it).
func DecideDrain(st *State, on bool, reason string) []events.Event {
	if st.Draining == on {
		return nil
	}
	evs := []events.Event{events.New(DrainChanged, DrainChangedPayload{On: on, Reason: reason}).ForMachine(st.Name)}
	if on {
		for _, c := range st.SortedClaims() {
			if c.StopMode == "" {
				evs = append(evs, events.New(StopRequested, StopRequestedPayload{ClaimID: c.Req.ClaimID, Mode: events.ModeVacate, Reason: "draining: " + reason}).ForJob(c.Req.Schedd, c.Req.Job))
			}
		}
	}
	return evs
}

// VMEvent builds one of the startd's VM events about claim c.
func VMEvent(c *Claim, typ string, p events.VMEventPayload) events.Event {
	p.ClaimID = c.Req.ClaimID
	p.Slot = c.Slot
	return events.New(typ, p).ForJob(c.Req.Schedd, c.Req.Job)
}

// slotHost is the address the user log shows for a slot: <slot@startd>.
func slotHost(slot string) string {
	return "<" + strings.TrimSpace(slot) + ">"
}
