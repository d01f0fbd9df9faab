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
	job, err := classad.ParseAd(req.JobAd)
	return DecideClaimAd(st, req, job, err, slotAd, vmMemory, vmMax, now)
}

// DecideClaimAd is DecideClaim with req.JobAd already parsed (into job,
// or the error parseErr), so that the shell parses it outside the loop
// and once for the claim's whole life.
func DecideClaimAd(st *State, req events.ClaimRequest, job *classad.Ad, parseErr error, slotAd *classad.Ad, vmMemory, vmMax int, now time.Time) ([]events.Event, string) {
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
	}
	// A claimed slot may be claimed again by a job its RANK prefers to the
	// one it runs (HTCondor's RANK preemption): that VM is vacated
	// (checkpointed when its job asked) and the new claim starts after.
	var preempt *Claim
	if s.State != Unclaimed {
		cur := st.Claims[s.Claim]
		if s.State != Claimed || cur == nil || cur.Waiting || cur.StopMode != "" || s.Pending != "" {
			return nil, fmt.Sprintf("slot %s is %s", s.Name, s.State)
		}
		preempt = cur
	} else if vmMax > 0 && len(st.Claims) >= vmMax {
		return nil, fmt.Sprintf("startd %s already runs VM_MAX_NUMBER=%d VMs", st.Name, vmMax)
	}
	if parseErr != nil || job == nil {
		return nil, fmt.Sprintf("job ad does not parse: %v", parseErr)
	}
	mem64, ok := job.EvalInt("JobVMMemory")
	if !ok || mem64 <= 0 {
		return nil, "job has no JobVMMemory"
	}
	mem := int(mem64)
	free := vmMemory - st.UsedMemory()
	ad := slotAd
	if preempt != nil {
		// The slot as it will be once the preempted VM is gone.
		free += preempt.MemoryMiB
		ad = vacatedAd(slotAd, preempt.MemoryMiB)
	}
	if mem > free {
		return nil, fmt.Sprintf("job needs vm_memory %d MiB; slot %s has %d MiB of VM_MEMORY free", mem, s.Name, free)
	}
	if v := ad.EvalWith("Start", job, opts); !v.IsTrue() {
		return nil, fmt.Sprintf("slot %s: START is %s for this job", s.Name, v)
	}
	if !classad.MatchWith(job, ad, opts) {
		return nil, fmt.Sprintf("job and slot %s do not match (their Requirements)", s.Name)
	}
	rank := classad.RankWith(ad, job, opts)
	lease := jobLeaseOf(job)
	if preempt == nil {
		ev := events.New(events.ClaimAccepted, ClaimAcceptedPayload{Req: req, MemoryMiB: mem, Rank: rank, LeaseSeconds: lease}).ForJob(req.Schedd, req.Job)
		return []events.Event{ev}, ""
	}
	if rank <= preempt.Rank {
		return nil, fmt.Sprintf("slot %s is Claimed (its RANK prefers the job it runs: %g for this one, %g for that)", s.Name, rank, preempt.Rank)
	}
	return []events.Event{
		events.New(events.ClaimAccepted, ClaimAcceptedPayload{Req: req, MemoryMiB: mem, Rank: rank, Preempts: preempt.Req.ClaimID, LeaseSeconds: lease}).ForJob(req.Schedd, req.Job),
		events.New(StopRequested, StopRequestedPayload{ClaimID: preempt.Req.ClaimID, Mode: events.ModeVacate,
			Reason: fmt.Sprintf("preempted by job %s/%s, which the machine's RANK prefers (%g > %g)", req.Schedd, req.Job, rank, preempt.Rank)}).ForJob(preempt.Req.Schedd, preempt.Req.Job),
	}, ""
}

// vacatedAd is a claimed slot's ad as it will be once its VM, which holds
// memMiB of VM_MEMORY, is gone: what a preempting job is matched against.
func vacatedAd(slotAd *classad.Ad, memMiB int) *classad.Ad {
	ad := classad.NewAd()
	ad.SetParent(slotAd)
	if v, ok := slotAd.EvalInt("VM_Memory"); ok {
		ad.SetInt("VM_Memory", v+int64(memMiB))
	}
	if v, ok := slotAd.EvalInt("VM_AvailNum"); ok {
		ad.SetInt("VM_AvailNum", v+1)
	}
	ad.SetString("State", Unclaimed)
	ad.SetString("Activity", ActIdle)
	return ad
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
	if c.Waiting {
		// A preempting claim whose VM never started ends at once.
		typ := events.VMEvicted
		if mode == events.ModeKill {
			typ = events.VMStopped
		}
		return []events.Event{VMEvent(c, typ, events.VMEventPayload{Reason: "stopped before the VM started"})}, true
	}
	fast := req.Fast && mode == events.ModeVacate
	if c.StopMode == events.ModeKill || c.StopMode == mode && (c.StopFast || !fast) {
		return nil, true // already asked
	}
	return []events.Event{events.New(StopRequested, StopRequestedPayload{ClaimID: req.ClaimID, Mode: mode, Reason: req.Reason, Fast: fast}).ForJob(c.Req.Schedd, c.Req.Job)}, true
}

// DecidePolicy evaluates the machine's policy for the claims it runs, as
// HTCondor's startd does at every update, with the slot's ad (f and now
// give its measured facts and CurrentTime) as MY and the job as TARGET:
// PREEMPT for each running VM, true vacating it (checkpointing it when the
// job asked for that); KILL for each VM being vacated, true killing it at
// once. An expression that does not parse was refused by New; one that
// evaluates to anything but true leaves the claim alone.
func DecidePolicy(cfg *Config, st *State, f Facts, now time.Time) []events.Event {
	if cfg.preemptExpr == nil && cfg.killExpr == nil {
		return nil
	}
	opts := &classad.EvalOptions{Now: func() time.Time { return now }}
	f.LastHeardFrom = now.Unix()
	var evs []events.Event
	for _, c := range st.SortedClaims() {
		s := st.Slot(c.Slot)
		if s == nil || !c.Started || c.Waiting || s.Claim != c.Req.ClaimID {
			continue
		}
		var e *classad.Expr
		mode, reason := "", ""
		switch c.StopMode {
		case "":
			e, mode, reason = cfg.preemptExpr, events.ModeVacate, "PREEMPT is true"
		case events.ModeVacate:
			e, mode, reason = cfg.killExpr, events.ModeKill, "KILL is true"
		}
		if e == nil {
			continue
		}
		job, err := classad.ParseAd(c.Req.JobAd)
		if err != nil {
			continue
		}
		if !e.EvalWith(MachineAd(cfg, st, s, f), job, opts).IsTrue() {
			continue
		}
		stop, _ := DecideStop(st, events.DeactivateRequest{ClaimID: c.Req.ClaimID, Mode: mode, Reason: reason})
		evs = append(evs, stop...)
	}
	return evs
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
