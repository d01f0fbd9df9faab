// Package startd runs one execute machine: it advertises a machine ad per
// slot in the collector, accepts or refuses claims from schedds, and drives
// VMs through hypervisor.Driver. It reports every VM transition (started,
// evicted with or without a checkpoint, exited, failed, stopped) as an
// event; it never edits a job queue, which is the schedd's.
//
// Like the other daemons it is a pure core (State, Apply, Decide*) in an
// I/O shell (Startd). It imports events, classad and startd/hypervisor,
// never schedd or negotiator.
package startd

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/startd/hypervisor"
)

// Startd-only event types (the shared ones are in events).
const (
	// VMLaunched recorded the hypervisor handle of a VM the moment it ran,
	// so that a restarted startd could find it again. The VMStarted
	// recorded next carries the handle now (one event and one sync fewer
	// per start); a log that holds VMLaunched still replays.
	VMLaunched = "VMLaunched"
	// StopRequested records a schedd's deactivate request (or the startd's
	// own: a drain, PREEMPT, a claim the schedd disowned).
	StopRequested = "StopRequested"
	// DrainChanged records condor_drain (On) and its cancellation.
	DrainChanged = "DrainChanged"
	// VMPoweredOff records that a claim's guest powered off: its disks in
	// the scratch directory are final and are being sent back. A startd
	// restarted before the VMExited that follows sends them back then,
	// instead of taking the VM for lost and the job for one to run again.
	// Its payload (events.VMEventPayload) keeps the exit's reason, CPU and
	// run time for that VMExited.
	VMPoweredOff = "VMPoweredOff"
)

// Slot states and activities, as condor_status shows them.
const (
	Unclaimed = "Unclaimed"
	Claimed   = "Claimed"
	Preempt   = "Preempting"
	Drained   = "Drained"

	ActIdle     = "Idle"
	ActBusy     = "Busy"
	ActVacating = "Vacating"
	ActKilling  = "Killing"
)

// State is the startd's projection of its log: its slots and their claims.
type State struct {
	Name   string
	Slots  []*Slot
	Claims map[string]*Claim // open claims by id
	// Ended are claims whose VM ended recently, by id: the startd goes on
	// renewing their leases with their schedds until each schedd has
	// recorded the end (the event may reach it late: a bus outage, a
	// consumer recreated), so that a job that finished is never taken
	// for lost and run again; and a claim id that ran is never accepted
	// a second time.
	Ended      map[string]EndedClaim
	endedOrder []string // the keys of Ended, oldest first
	Accepted   int64    // claims accepted since the log began
	Draining   bool     // condor_drain: no new claims; slots end Drained
	Applied    uint64
}

// Slot is one slot of the machine.
type Slot struct {
	ID       string // "slot1"
	Name     string // "slot1@startd1"
	State    string
	Activity string
	Since    int64 // EnteredCurrentActivity, unix seconds
	Claim    string
	// Pending is a claim accepted to preempt Claim (the machine's RANK
	// prefers its job): it starts once Claim's VM is gone.
	Pending string
}

// Claim is a schedd's claim on a slot and the VM it runs.
type Claim struct {
	Req       events.ClaimRequest
	Slot      string // slot name
	Accepted  int64
	MemoryMiB int
	Handle    *hypervisor.Handle // set once the VM runs
	Started   bool
	// RunStart (unix nanoseconds) is when the VM's run began, its inputs'
	// transfer included: its VMStarted's time less the run_ns it carries
	// (or an older startd's VMLaunched's time). BytesIn is what the run
	// brought in before the VM started (inputs, the checkpoint resumed
	// from), as that VMStarted says (0 from startds before it said).
	// A startd restarted while the VM runs reports the whole run's wall
	// time and bytes from them: the starter that measured them is gone.
	RunStart int64
	BytesIn  int64
	StopMode string // set by a deactivate request
	StopFast bool   // the vacate was asked with -fast
	// StopReason is why it was asked to stop (a drain, PREEMPT, a job
	// the machine's RANK prefers).
	StopReason string
	// Rank is the machine's RANK of the claim's job (CurrentRank).
	Rank float64
	// Waiting: a preempting claim whose slot's current VM has not ended.
	Waiting bool
	// LeaseSeconds is the job's JobLeaseDuration as its ClaimAccepted
	// recorded it (0: not recorded; the keepalive reads the job ad).
	LeaseSeconds int64
	// PoweredOff is the VMPoweredOff of a guest that powered off, whose
	// outputs are being sent back; nil before.
	PoweredOff *events.VMEventPayload
}

// EndedClaim is a claim whose VM ended.
type EndedClaim struct {
	Schedd string
	At     int64 // the end event's time, unix nanoseconds
}

// endedRetention is how long an ended claim is remembered: longer than any
// bus outage the pool rides out; the schedd has long recorded the end.
const endedRetention = time.Hour

// NewState returns the state of a startd with n slots.
func NewState(name string, n int) *State {
	st := &State{Name: name, Claims: map[string]*Claim{}, Ended: map[string]EndedClaim{}}
	for i := 1; i <= n; i++ {
		id := "slot" + itoa(i)
		st.Slots = append(st.Slots, &Slot{ID: id, Name: id + "@" + name, State: Unclaimed, Activity: ActIdle})
	}
	return st
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// Slot returns the slot named name (nil if none).
func (st *State) Slot(name string) *Slot {
	for _, s := range st.Slots {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// UsedMemory is the VM memory of the open claims.
func (st *State) UsedMemory() int {
	n := 0
	for _, c := range st.Claims {
		n += c.MemoryMiB
	}
	return n
}

// SortedClaims returns the open claims in acceptance order.
func (st *State) SortedClaims() []*Claim {
	out := make([]*Claim, 0, len(st.Claims))
	for _, c := range st.Claims {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Accepted != out[j].Accepted {
			return out[i].Accepted < out[j].Accepted
		}
		return out[i].Req.ClaimID < out[j].Req.ClaimID
	})
	return out
}

// ClaimAcceptedPayload is the startd's record of a claim: everything needed
// to run it again after a restart. It lives in events, whose decoder
// reads it without reflection (a claim's record carries its job's whole
// ad, and three readers decode it).
type ClaimAcceptedPayload = events.ClaimAcceptedPayload

// VMLaunchedPayload records a VM's handle.
type VMLaunchedPayload struct {
	ClaimID string            `json:"claim_id"`
	Handle  hypervisor.Handle `json:"handle"`
}

// DrainChangedPayload records a drain or its cancellation.
type DrainChangedPayload struct {
	On     bool   `json:"on"`
	Reason string `json:"reason,omitempty"`
}

// StopRequestedPayload records a deactivate request.
type StopRequestedPayload struct {
	ClaimID string `json:"claim_id"`
	Mode    string `json:"mode"`
	Reason  string `json:"reason,omitempty"`
	Fast    bool   `json:"fast,omitempty"` // a vacate at once, without a checkpoint (vacate-job -fast)
}

// modeFast is what a starter is sent on its stop channel for a vacate
// asked with -fast: evict the VM at once, without a checkpoint or the
// guest's grace.
const modeFast = "fast"

// Apply folds one event into the state. Pure and total.
func Apply(st *State, e events.Event) *State {
	st.Applied++
	if e.Source != st.Name {
		return st
	}
	at := e.Time / 1e9
	switch e.Type {
	case events.ClaimAccepted:
		var p ClaimAcceptedPayload
		if e.Decode(&p) != nil {
			return st
		}
		st.Accepted++
		c := &Claim{Req: p.Req, Slot: p.Req.Slot, Accepted: st.Accepted, MemoryMiB: p.MemoryMiB, Rank: p.Rank, LeaseSeconds: p.LeaseSeconds}
		st.Claims[p.Req.ClaimID] = c
		s := st.Slot(p.Req.Slot)
		if s == nil {
			// A slot this startd no longer has (NUM_SLOTS lowered since):
			// the claim's VM runs on to its end, which is reported as any
			// claim's; the slot is neither advertised nor claimed again.
			return st
		}
		if p.Preempts != "" && s.Claim == p.Preempts && st.Claims[p.Preempts] != nil {
			c.Waiting = true
			s.Pending = p.Req.ClaimID
			return st
		}
		s.State, s.Activity, s.Since, s.Claim = Claimed, ActIdle, at, p.Req.ClaimID
	case VMLaunched:
		var p VMLaunchedPayload
		if e.Decode(&p) != nil {
			return st
		}
		if c := st.Claims[p.ClaimID]; c != nil {
			h := p.Handle
			c.Handle = &h
			c.RunStart = e.Time
		}
	case events.VMStarted:
		var p events.VMEventPayload
		if e.Decode(&p) != nil {
			return st
		}
		if c := st.Claims[p.ClaimID]; c != nil {
			var h hypervisor.Handle
			if len(p.Handle) > 0 && json.Unmarshal(p.Handle, &h) == nil {
				c.Handle = &h
			}
			c.Started = true
			// A VMLaunched before it (an older startd's) dates the run
			// already: the VMStarted that follows it, possibly after a
			// restart, is later than the VM's start.
			if c.RunStart == 0 {
				c.RunStart = e.Time - p.RunNanos
			}
			c.BytesIn = p.BytesIn
			if s := st.Slot(c.Slot); s != nil && c.StopMode == "" {
				s.Activity, s.Since = ActBusy, at
			}
		}
	case VMPoweredOff:
		var p events.VMEventPayload
		if e.Decode(&p) != nil {
			return st
		}
		if c := st.Claims[p.ClaimID]; c != nil {
			c.PoweredOff = &p
		}
	case StopRequested:
		var p StopRequestedPayload
		if e.Decode(&p) != nil {
			return st
		}
		if c := st.Claims[p.ClaimID]; c != nil {
			switch {
			case c.StopReason == "":
				c.StopReason = p.Reason
			case p.Mode == events.ModeKill && c.StopMode == events.ModeVacate && p.Reason != "":
				// A vacate cut short: both reasons reach the user log.
				c.StopReason += "; then killed: " + p.Reason
			}
			if c.StopMode != events.ModeKill {
				c.StopMode = p.Mode
			}
			if p.Fast {
				c.StopFast = true
			}
			if s := st.Slot(c.Slot); s != nil && s.Claim == p.ClaimID {
				s.State = Preempt
				s.Activity = ActVacating
				if c.StopMode == events.ModeKill {
					s.Activity = ActKilling
				}
				s.Since = at
			}
		}
	case events.VMExited, events.VMEvicted, events.VMFailed, events.VMStopped:
		var p events.VMEventPayload
		if e.Decode(&p) != nil {
			return st
		}
		if c := st.Claims[p.ClaimID]; c != nil {
			delete(st.Claims, p.ClaimID)
			// Forget the oldest ended claims (they end in time order).
			for len(st.endedOrder) > 0 {
				oldest := st.endedOrder[0]
				if e.Time-st.Ended[oldest].At <= int64(endedRetention) {
					break
				}
				delete(st.Ended, oldest)
				st.endedOrder = st.endedOrder[1:]
			}
			st.Ended[p.ClaimID] = EndedClaim{Schedd: c.Req.Schedd, At: e.Time}
			st.endedOrder = append(st.endedOrder, p.ClaimID)
			s := st.Slot(c.Slot)
			switch {
			case s == nil:
			case s.Pending == p.ClaimID: // a preempting claim ended before it ran
				s.Pending = ""
			case s.Claim == p.ClaimID && s.Pending != "" && st.Claims[s.Pending] != nil:
				// The preempted VM is gone: the preempting claim takes the slot.
				next := st.Claims[s.Pending]
				next.Waiting = false
				s.State, s.Activity, s.Since, s.Claim, s.Pending = Claimed, ActIdle, at, s.Pending, ""
			case s.Claim == p.ClaimID:
				s.State, s.Activity, s.Since, s.Claim = st.idleState(), ActIdle, at, ""
			}
		}
	case DrainChanged:
		var p DrainChangedPayload
		if e.Decode(&p) != nil {
			return st
		}
		st.Draining = p.On
		for _, s := range st.Slots {
			if s.Claim == "" {
				s.State, s.Since = st.idleState(), at
			}
		}
	}
	return st
}

// idleState is the state of a slot without a claim.
func (st *State) idleState() string {
	if st.Draining {
		return Drained
	}
	return Unclaimed
}
