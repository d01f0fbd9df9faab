package schedd

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vmpool/vmpool/events"
)

// This file holds read-only helpers for tools that show a job's life
// (vmpool replay --job, vmpool watch): they fold events through the same
// Apply the schedd uses and describe what each event recorded. They never
// touch a live queue.

// Step is one of a schedd's events about a job, with where the job stood
// after it.
type Step struct {
	Event  events.Event
	What   string // Describe(Event)
	Phase  string // Phase of the job after the event
	Status int    // JobStatus after the event
}

// Timeline folds evs (a schedd's own events in log order; events about
// other jobs and other sources are skipped) through Apply on a scratch
// queue and returns a step for each event about job id or its cluster.
// The first step is the cluster's submit when evs hold it.
func Timeline(name string, id events.JobID, evs []events.Event) []Step {
	q := NewQueue(name)
	var j *Job
	var steps []Step
	for _, e := range evs {
		if e.Source != name || e.Cluster != id.Cluster || (e.Proc >= 0 && e.Proc != id.Proc) {
			continue
		}
		Apply(q, e)
		if j == nil {
			j = q.Jobs[id]
		}
		if j == nil {
			continue // a cluster event before the submit (ClusterReserved)
		}
		steps = append(steps, Step{Event: e, What: Describe(e), Phase: Phase(j), Status: j.Status})
	}
	return steps
}

// Phase names where a job stands, a little finer than JobStatus: an idle
// job may be waiting for a match, matched or claimed; a running one may be
// running, stopping or transferring its output back.
func Phase(j *Job) string {
	c := j.Claim
	switch j.Status {
	case Idle:
		if c == nil {
			return "idle"
		}
		switch c.State {
		case ClaimMatched:
			return "matched"
		case ClaimClaimed:
			return "claimed"
		case ClaimStopping:
			return "stopping"
		}
		return "idle"
	case Running:
		if c != nil {
			switch c.State {
			case ClaimExited:
				return "transferring output"
			case ClaimStopping:
				if c.StopMode == events.ModeVacate {
					return "vacating"
				}
				return "stopping"
			}
		}
		return "running"
	case Held:
		return "held"
	case Removed:
		return "removed"
	case Completed:
		return "completed"
	}
	return strings.ToLower(StatusLetter(j.Status))
}

// payloadSummary holds the payload fields Describe shows, whatever the
// event's type: decoding by JSON name keeps it working as payload structs
// grow.
type payloadSummary struct {
	Owner       string          `json:"owner"`
	NumProcs    int             `json:"num_procs"`
	Hold        bool            `json:"hold"`
	Negotiator  string          `json:"negotiator"`
	Slot        string          `json:"slot"`
	Reason      string          `json:"reason"`
	Code        int             `json:"code"`
	SubCode     int             `json:"subcode"`
	By          string          `json:"by"`
	Resumed     bool            `json:"resumed"`
	ResumedFrom int             `json:"resumed_from"`
	ResumeNote  string          `json:"resume_note"`
	Checkpoint  json.RawMessage `json:"checkpoint"`
	ExitCode    int             `json:"exit_code"`
	PoweredOff  bool            `json:"powered_off"`
	Failed      bool            `json:"failed"`
	Fast        bool            `json:"fast"`
	Outputs     []struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	} `json:"outputs"`
}

// checkpointBytes is the size of the files of a checkpoint in a payload
// (0 when there is none).
func checkpointBytes(raw json.RawMessage) int64 {
	var cp struct {
		Files []struct {
			Size int64 `json:"size"`
		} `json:"files"`
	}
	if !hasJSON(raw) || json.Unmarshal(raw, &cp) != nil {
		return 0
	}
	var n int64
	for _, f := range cp.Files {
		n += f.Size
	}
	return n
}

// Describe says in a few words what one of a schedd's events records,
// e.g. "started on slot1@startd1" or "held: via condor_hold (by user
// alice) (code 1/0)". Unknown types are described by their name.
func Describe(e events.Event) string {
	var p payloadSummary
	if len(e.Payload) > 0 {
		_ = json.Unmarshal(e.Payload, &p) // a malformed payload still gets its type named
	}
	because := func(s string) string {
		if p.Reason == "" {
			return s
		}
		return s + ": " + p.Reason
	}
	switch e.Type {
	case events.ClusterReserved:
		return "cluster id reserved"
	case events.ClusterSubmitted:
		s := fmt.Sprintf("submitted by %s (%d job(s))", p.Owner, p.NumProcs)
		if p.Hold {
			s += " on hold"
		}
		return s
	case events.JobMatched:
		if p.Negotiator != "" {
			return fmt.Sprintf("matched to %s by %s", p.Slot, p.Negotiator)
		}
		return "matched to " + p.Slot
	case events.MatchRejected:
		return because("match to " + p.Slot + " declined")
	case events.JobClaimed:
		return "claimed " + p.Slot
	case events.ClaimFailed:
		return because("claim of " + p.Slot + " failed")
	case events.JobStarted:
		s := "started on " + p.Slot
		switch {
		case p.Resumed && p.ResumedFrom > 0:
			s = fmt.Sprintf("resumed from checkpoint %d on %s", p.ResumedFrom, p.Slot)
		case p.Resumed:
			s = "resumed from a checkpoint on " + p.Slot
		}
		if p.ResumeNote != "" {
			// Why it did not resume from the newest checkpoint, or at all.
			s += " (" + p.ResumeNote + ")"
		}
		return s
	case events.JobCheckpointed:
		return fmt.Sprintf("checkpointed (%d bytes)", checkpointBytes(p.Checkpoint))
	case events.JobEvicted:
		if p.Failed {
			return because("the VM could not run on " + p.Slot + "; the job is idle again")
		}
		s := "evicted"
		if hasJSON(p.Checkpoint) {
			s += fmt.Sprintf(" with a checkpoint (%d bytes)", checkpointBytes(p.Checkpoint))
		} else {
			s += " without a checkpoint"
		}
		if p.Code != 0 {
			s += fmt.Sprintf(" (code %d/%d)", p.Code, p.SubCode)
		}
		return because(s)
	case events.JobExited:
		s := "guest powered off"
		if p.Reason == "guest-halted" { // the qemu driver's ReasonGuestHalted
			s = "guest halted without powering off (taken as a power-off)"
		}
		if p.Slot != "" {
			s += " on " + p.Slot
		}
		return s
	case events.JobCompleted:
		s := fmt.Sprintf("completed (exit code %d)", p.ExitCode)
		if len(p.Outputs) > 0 {
			names := make([]string, len(p.Outputs))
			for i, o := range p.Outputs {
				names[i] = fmt.Sprintf("%s (%d bytes)", o.Name, o.Size)
			}
			s += "; returned " + strings.Join(names, ", ")
		}
		return s
	case events.JobHeld:
		return because("held") + fmt.Sprintf(" (code %d/%d)", p.Code, p.SubCode)
	case events.JobReleased:
		return because("released")
	case events.JobRemoved:
		return because("removed")
	case events.JobVacating:
		s := "vacate requested"
		if p.Fast {
			s = "vacate -fast requested (no checkpoint)"
		}
		if p.By != "" {
			s += " by " + p.By
		}
		return s
	case events.ClaimReleased:
		return because("claim on " + p.Slot + " released")
	case events.ClaimLost:
		return because("claim on " + p.Slot + " lost (the job lease ran out)")
	case events.JobLeftQueue:
		return "left the queue"
	}
	s := e.Type
	if p.Slot != "" {
		s += " on " + p.Slot
	}
	return because(s)
}

func hasJSON(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s != "" && s != "null"
}
