package events

import "encoding/json"

// The pool's protocol: the event types daemons publish, and the payloads
// and requests that cross from one daemon to another. Each daemon's core
// interprets them; they live here because schedd, negotiator and startd may
// not import one another.

// Schedd events (subjects vmpool.ev.schedd.<schedd>...). The schedd's queue
// is the fold of these; the negotiator and watchers consume them.
const (
	ClusterReserved  = "ClusterReserved"  // a cluster id handed out ahead of a submit ($(Cluster) in the file)
	ClusterSubmitted = "ClusterSubmitted" // a cluster of jobs queued (one event for all its procs)
	JobMatched       = "JobMatched"       // the schedd took a negotiator's match and will claim the slot
	MatchRejected    = "MatchRejected"    // the schedd declined a match (the job was no longer idle)
	JobClaimed       = "JobClaimed"       // the startd accepted the claim
	ClaimFailed      = "ClaimFailed"      // the startd refused or never answered; the job is idle again
	JobStarted       = "JobStarted"       // the VM runs (or resumed from a checkpoint)
	JobCheckpointed  = "JobCheckpointed"  // a periodic checkpoint reached the spool
	JobEvicted       = "JobEvicted"       // the VM left its machine unfinished; the job is idle again
	JobExited        = "JobExited"        // the guest powered off; its disks wait in the object store
	JobCompleted     = "JobCompleted"     // the disks are back in the submit directory; the job left the queue
	JobHeld          = "JobHeld"
	JobReleased      = "JobReleased"
	JobRemoved       = "JobRemoved"
	JobVacating      = "JobVacating"    // vacate-job asked the startd to evict the VM
	ClaimLost        = "ClaimLost"      // the claim's lease expired: its startd stopped answering
	ClaimReleased    = "ClaimReleased"  // the claim of a held/removed/vacated job is gone from the startd
	JobLeftQueue     = "JobLeftQueue"   // a removed job's VM is gone; the job moved to history
	HistoryTrimmed   = "HistoryTrimmed" // the oldest jobs of the history were forgotten (MAX_HISTORY_JOBS)
)

// Negotiator events.
const (
	Matched = "Matched" // a job of Schedd matched a slot
)

// Startd events (subjects vmpool.ev.startd.<startd>.job.<schedd>...).
const (
	ClaimAccepted  = "ClaimAccepted"
	VMStarted      = "VMStarted"
	VMCheckpointed = "VMCheckpointed" // a periodic checkpoint was saved and shipped
	VMEvicted      = "VMEvicted"      // vacated; with or without a checkpoint
	VMExited       = "VMExited"       // the guest powered off; outputs shipped
	VMFailed       = "VMFailed"       // the VM could not run (bad image, hypervisor error)
	VMStopped      = "VMStopped"      // killed on request (hold, rm); nothing kept
	SlotState      = "SlotState"      // the slot changed state (for replay of the startd)
)

// Attr is one job attribute as ClassAd source text.
type Attr struct {
	Name string `json:"n"`
	Expr string `json:"e"`
}

// ProcSpec is what one proc of a cluster adds to the cluster's attributes.
type ProcSpec struct {
	Attrs   []Attr    `json:"attrs,omitempty"`
	Inputs  []FileRef `json:"inputs,omitempty"`
	Iwd     string    `json:"iwd,omitempty"`      // when it differs from the cluster's
	UserLog string    `json:"user_log,omitempty"` // when it differs from the cluster's
	// Hold: this proc alone was submitted on hold (a `hold = true` before
	// its queue statement but not the cluster's others).
	Hold bool `json:"hold,omitempty"`
}

// ClusterSubmittedPayload is a whole submit: the cluster's common ad and
// each proc's differences. Procs are numbered from 0 in order.
type ClusterSubmittedPayload struct {
	SubmitID   string     `json:"submit_id"` // the client's idempotency key
	Owner      string     `json:"owner"`
	SubmitHost string     `json:"submit_host,omitempty"`
	File       string     `json:"file,omitempty"` // submit file as the user named it
	Iwd        string     `json:"iwd"`
	UserLog    string     `json:"user_log,omitempty"`
	Attrs      []Attr     `json:"attrs"`
	Inputs     []FileRef  `json:"inputs,omitempty"`
	Procs      []ProcSpec `json:"procs"`
	// NumProcs is len(Procs) when every proc is identical to the cluster,
	// in which case Procs may be empty (queue 100000 costs one line).
	NumProcs int  `json:"num_procs"`
	Hold     bool `json:"hold,omitempty"` // hold = true: submitted on hold (code 15)
}

// Held says whether proc i was submitted on hold: the whole cluster was,
// or that proc alone.
func (p *ClusterSubmittedPayload) Held(i int) bool {
	return p.Hold || (i < len(p.Procs) && p.Procs[i].Hold)
}

// ClusterReservedPayload hands out a cluster id.
type ClusterReservedPayload struct {
	SubmitID string `json:"submit_id"`
}

// MatchedPayload is the negotiator's decision that a job may run on a slot.
type MatchedPayload struct {
	MatchID string `json:"match_id"` // unique; becomes the claim id
	Startd  string `json:"startd"`
	Slot    string `json:"slot"`    // slot name, e.g. slot1@startd1
	Machine string `json:"machine"` // host name
	SlotAd  string `json:"slot_ad,omitempty"`
	Claims  int64  `json:"claims"` // the slot's claim count when matched
	// AdRevision is the collector revision of the slot ad matched: a slot
	// whose claim failed is not matched again until a newer ad comes.
	AdRevision uint64 `json:"ad_rev,omitempty"`
	// Preempting: the slot is claimed, and its RANK prefers this job to
	// the one it runs, which the startd vacates for it.
	Preempting bool `json:"preempting,omitempty"`
}

// JobMatchedPayload records that the schedd will claim Slot for the job.
type JobMatchedPayload struct {
	ClaimID    string `json:"claim_id"`
	Negotiator string `json:"negotiator"`
	Startd     string `json:"startd"`
	Slot       string `json:"slot"`
	Machine    string `json:"machine"`
}

// MatchRejectedPayload records a match the schedd did not take.
type MatchRejectedPayload struct {
	MatchID string `json:"match_id"`
	Slot    string `json:"slot"`
	Reason  string `json:"reason"`
}

// ClaimPayload names a claim in claim-related events.
type ClaimPayload struct {
	ClaimID string `json:"claim_id"`
	Slot    string `json:"slot,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Removed, on a ClaimReleased or ClaimLost, says the job was removed
	// while it held the claim: it leaves the queue with this event, and
	// RemoveReason is the removal's reason for the user log's 009.
	Removed      bool   `json:"removed,omitempty"`
	RemoveReason string `json:"remove_reason,omitempty"`
	// On a ClaimReleased, the CPU and bytes of the run the claim ends (a
	// VM stopped for a hold or a removal; on a ClaimLost, a VM its startd
	// stopped on its own), as in JobEvictedPayload: added
	// to the job's RemoteUserCpu/RemoteSysCpu and BytesSent/BytesRecvd.
	// 0 in events recorded before they were.
	UserCPUNanos int64 `json:"user_cpu_ns,omitempty"`
	SysCPUNanos  int64 `json:"sys_cpu_ns,omitempty"`
	BytesSent    int64 `json:"bytes_sent,omitempty"`
	BytesRecv    int64 `json:"bytes_recv,omitempty"`
}

// JobStartedPayload records that the job's VM runs.
type JobStartedPayload struct {
	ClaimID     string `json:"claim_id"`
	Slot        string `json:"slot"`
	Host        string `json:"host"` // the startd's address as the user log shows it
	Resumed     bool   `json:"resumed,omitempty"`
	ResumedFrom int    `json:"resumed_from,omitempty"` // checkpoint Seq
	ResumeNote  string `json:"resume_note,omitempty"`  // unusable checkpoints, and the fall-back taken
}

// JobCompletedPayload records the end of a job whose guest powered off.
type JobCompletedPayload struct {
	ClaimID   string    `json:"claim_id"`
	ExitCode  int       `json:"exit_code"`
	Outputs   []FileRef `json:"outputs,omitempty"`
	BytesSent int64     `json:"bytes_sent,omitempty"` // input bytes to the startd
	BytesRecv int64     `json:"bytes_recv,omitempty"` // output bytes back
	RunNanos  int64     `json:"run_ns,omitempty"`
	// The CPU the last run used on its machine (the 005's Run Remote
	// Usage) and all runs together (its Total Remote Usage).
	UserCPUNanos      int64 `json:"user_cpu_ns,omitempty"`
	SysCPUNanos       int64 `json:"sys_cpu_ns,omitempty"`
	TotalUserCPUNanos int64 `json:"total_user_cpu_ns,omitempty"`
	TotalSysCPUNanos  int64 `json:"total_sys_cpu_ns,omitempty"`
	// BytesSent and BytesRecv of every run together, this one's and the
	// evicted ones' (the 005's Total Bytes Received and Sent By Job).
	// Absent from events recorded before they were: there the totals
	// are taken to be the last run's, as those logs printed them.
	TotalBytesSent int64 `json:"total_bytes_sent,omitempty"`
	TotalBytesRecv int64 `json:"total_bytes_recv,omitempty"`
}

// Checkpoint is a VM checkpoint in the spool (the object store).
type Checkpoint struct {
	Files []FileRef `json:"files"`
	Taken int64     `json:"taken"` // unix nanos
	Slot  string    `json:"slot"`
	Seq   int       `json:"seq"` // nth checkpoint of the job
}

// JobEvictedPayload records a VM that left its machine unfinished.
type JobEvictedPayload struct {
	ClaimID    string      `json:"claim_id"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	Code       int         `json:"code,omitempty"` // vacate reason code (e.g. 1020 VMError)
	SubCode    int         `json:"subcode,omitempty"`
	// The CPU the run used on its machine (the hypervisor's process):
	// the 004's Run Remote Usage, added to RemoteUserCpu/RemoteSysCpu.
	UserCPUNanos int64 `json:"user_cpu_ns,omitempty"`
	SysCPUNanos  int64 `json:"sys_cpu_ns,omitempty"`
	// The bytes the run moved, as its startd counted them (its
	// VMEvicted's BytesIn and BytesOut), named as in JobCompletedPayload:
	// BytesSent to its machine (input disks, the checkpoint it resumed
	// from), BytesRecv back (the checkpoint it was vacated with). The
	// 004's Run Bytes Received and Sent By Job; added to the job's
	// BytesSent and BytesRecvd. 0 in events recorded before they were.
	BytesSent int64 `json:"bytes_sent,omitempty"`
	BytesRecv int64 `json:"bytes_recv,omitempty"`
	// Failed: the VM could not run on its machine for the machine's
	// reason (its startd's VMFailed without a hold), on the named slot.
	// The user log says so with a 007 (shadow exception), as HTCondor's
	// shadow does when a starter fails, not a 004.
	Failed bool   `json:"failed,omitempty"`
	Slot   string `json:"slot,omitempty"`
}

// JobCheckpointedPayload records a periodic checkpoint.
type JobCheckpointedPayload struct {
	ClaimID    string     `json:"claim_id"`
	Checkpoint Checkpoint `json:"checkpoint"`
}

// JobHeldPayload records a hold.
type JobHeldPayload struct {
	Code    int    `json:"code"`
	SubCode int    `json:"subcode"`
	Reason  string `json:"reason"`
	By      string `json:"by,omitempty"`
}

// JobActionPayload records a user's rm/release/vacate.
type JobActionPayload struct {
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Fast, on a JobVacating: vacate-job -fast (no checkpoint, no grace).
	Fast bool `json:"fast,omitempty"`
	// Claimed, on a JobRemoved, says the job held a claim: it leaves the
	// queue, and its user log's 009 is written, when that claim ends (the
	// ClaimReleased or ClaimLost that carries Removed). A removal recorded
	// before this field existed wrote its 009 at once.
	Claimed bool `json:"claimed,omitempty"`
}

// HistoryTrimmedPayload records that the schedd forgot the Jobs oldest
// jobs of its history (the first Jobs of the jobs that left its queue, in
// the order they left), and what only they needed (their user logs,
// their submits' idempotency keys). The schedd decides it when its
// history holds more than MAX_HISTORY_JOBS; replay drops the same jobs.
type HistoryTrimmedPayload struct {
	Jobs int `json:"jobs"`
}

// ClaimRequest is the schedd's request to a startd to claim a slot and run
// a job on it (HTCondor's request_claim and activate_claim in one).
type ClaimRequest struct {
	ClaimID string `json:"claim_id"`
	Schedd  string `json:"schedd"`
	Job     JobID  `json:"job"`
	Slot    string `json:"slot"`
	JobAd   string `json:"job_ad"` // the flattened job ad, new ClassAd syntax
	// StaticAt, when not 0, is where in JobAd the attributes the job
	// shares with the other procs of its cluster begin, after its own and
	// the queue's ones and their "; ": a startd may parse that part once
	// for all the cluster's claims. JobAd is whole either way.
	StaticAt int       `json:"static_at,omitempty"`
	Inputs   []FileRef `json:"inputs"`
	// Checkpoints to resume from, newest first: the startd takes the
	// first it can fetch whole and resume, and boots the original disks
	// if none works.
	Checkpoints []Checkpoint `json:"checkpoints,omitempty"`
	Owner       string       `json:"owner"`
}

// ClaimAcceptedPayload is the startd's record of a claim (ClaimAccepted):
// everything needed to run it again after a restart.
type ClaimAcceptedPayload struct {
	Req       ClaimRequest `json:"req"`
	MemoryMiB int          `json:"memory_mib"`
	// Rank is the machine's RANK of the job when the claim was accepted.
	Rank float64 `json:"rank,omitempty"`
	// Preempts is the claim this one replaces (the slot's RANK prefers
	// the new job): it is vacated, and this claim starts after it.
	Preempts string `json:"preempts,omitempty"`
	// LeaseSeconds is the job's JobLeaseDuration (HTCondor's default,
	// 2400, when it has none), read when the job ad was parsed for the
	// claim, so that the startd's keepalives need not parse it again (0:
	// not recorded, by a startd older than the field).
	LeaseSeconds int64 `json:"lease_s,omitempty"`
}

// AliveRequest is a startd's keepalive for the claims it runs for one
// schedd (HTCondor's ALIVE_INTERVAL messages, in the other direction).
type AliveRequest struct {
	Startd string   `json:"startd"`
	Claims []string `json:"claims"`
}

// AliveReply tells the startd which of its claims the schedd no longer
// holds: their VMs must stop, so that no job runs twice.
type AliveReply struct {
	Unknown []string `json:"unknown,omitempty"`
}

// ClaimReply answers a ClaimRequest.
type ClaimReply struct {
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason,omitempty"`
}

// DeactivateRequest asks a startd to end a claim: Vacate evicts gracefully
// (checkpointing when the job asked for it), Kill stops the VM at once.
type DeactivateRequest struct {
	ClaimID string `json:"claim_id"`
	Mode    string `json:"mode"` // "vacate" or "kill"
	Reason  string `json:"reason,omitempty"`
	// Fast, with Mode "vacate": evict at once, without a checkpoint or
	// the guest's grace (condor_vacate_job -fast); the job still goes
	// back to the queue.
	Fast bool `json:"fast,omitempty"`
}

// DeactivateReply answers a DeactivateRequest. Known is false when the
// startd has no such claim (it already ended).
type DeactivateReply struct {
	Known bool `json:"known"`
}

// Deactivate modes.
const (
	ModeVacate = "vacate"
	ModeKill   = "kill"
)

// VMEventPayload is the body of the startd's VM* events about a claim.
type VMEventPayload struct {
	ClaimID    string      `json:"claim_id"`
	Slot       string      `json:"slot"`
	Host       string      `json:"host,omitempty"`
	Resumed    bool        `json:"resumed,omitempty"`
	PoweredOff bool        `json:"powered_off,omitempty"`
	Outputs    []FileRef   `json:"outputs,omitempty"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	// ResumedFrom is the Seq of the checkpoint a VMStarted resumed from;
	// ResumeNote says which checkpoints were unusable and why.
	ResumedFrom int    `json:"resumed_from,omitempty"`
	ResumeNote  string `json:"resume_note,omitempty"`
	// Handle, on a VMStarted, is the hypervisor's handle of the VM (the
	// startd's hypervisor.Handle, as JSON), by which a restarted startd
	// finds it again. Startds before it recorded the handle in an event
	// of its own, VMLaunched, just before the VMStarted.
	Handle json.RawMessage `json:"handle,omitempty"`
	// Hold, for VMFailed: the job itself is at fault (bad image): hold it
	// with Code/SubCode; otherwise requeue it.
	Hold     bool  `json:"hold,omitempty"`
	Code     int   `json:"code,omitempty"`
	SubCode  int   `json:"subcode,omitempty"`
	BytesIn  int64 `json:"bytes_in,omitempty"`  // VMStarted, VMExited, VMEvicted: the run's input disks and the checkpoint it resumed from
	BytesOut int64 `json:"bytes_out,omitempty"` // VMExited: the disks it sent back; VMEvicted: its checkpoint
	// RunNanos, on a VMExited, is the run's wall time, its inputs'
	// transfer included; on a VMStarted, the part of it before the VM
	// started (the transfer and the boot). A startd restarted while the
	// VM runs counts the run from its VMStarted (time less run_ns) and
	// reports its BytesIn: the starter that measured both is gone.
	// VMStarteds of startds before them carry neither.
	RunNanos int64 `json:"run_ns,omitempty"`
	// UserCPUNanos and SysCPUNanos, on a VMExited or VMEvicted, are the
	// CPU the VM's hypervisor process used (0: the driver cannot tell).
	UserCPUNanos int64 `json:"user_cpu_ns,omitempty"`
	SysCPUNanos  int64 `json:"sys_cpu_ns,omitempty"`
}
