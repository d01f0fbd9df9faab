package schedd

import (
	"fmt"
	"strings"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// The schedd's decisions. Each is pure: it reads the queue and the command
// (which carries any time it needs) and returns the events that record the
// decision, or an error that rejects the command. None of them mutates the
// queue; the loop applies the returned events.

// Errors users and tools meet. Their codes travel over the bus.
var (
	ErrJobNotFound      = events.NewError("job-not-found", "job not found")
	ErrPermissionDenied = events.NewError("permission-denied", "permission denied")
	ErrBadSubmit        = events.NewError("bad-submit", "submit rejected")
	ErrBadRequest       = events.NewError("bad-request", "bad request")
	ErrNotHeld          = events.NewError("not-held", "job not held")
	ErrAlreadyDone      = events.NewError("already-done", "job already removed")
	// ErrBeingRemoved refuses to hold a job that is being removed.
	ErrBeingRemoved = events.NewError("being-removed", "job being removed")
)

// SubmitCmd queues a cluster.
type SubmitCmd struct {
	Payload events.ClusterSubmittedPayload
	// Cluster is the id reserved for this submit (0: hand out the next).
	Cluster int
	// MaxJobs bounds the queue (0: unlimited).
	MaxJobs int
}

// PreparedSubmit is a submit checked as far as it can be without the
// queue, with its event encoded (PrepareSubmit). The schedd prepares
// submits outside its loop, so concurrent ones are parsed and encoded in
// parallel and the loop, which decides one command at a time, only looks
// them up in the queue.
type PreparedSubmit struct {
	cmd   SubmitCmd
	event events.Event
}

// MaxClusterProcs bounds the jobs of one cluster, as vmpool submit does
// (schedd/submit's default MaxProcs): a request written by hand must not
// make the schedd build a billion jobs (all of them alike when it names
// no proc specs).
const MaxClusterProcs = 1_000_000

// PrepareSubmit checks a submit's payload (names, expressions, input
// references) and encodes its ClusterSubmitted event; DecidePreparedSubmit
// then decides it.
func PrepareSubmit(c SubmitCmd) (PreparedSubmit, error) {
	p := c.Payload
	switch {
	case p.SubmitID == "":
		return PreparedSubmit{}, fmt.Errorf("submit without a submit id: %w", ErrBadRequest)
	case p.Owner == "" || strings.ContainsAny(p.Owner, " \t\n\"'"):
		return PreparedSubmit{}, fmt.Errorf("owner %q is not a user name: %w", p.Owner, ErrBadSubmit)
	case p.NumProcs <= 0:
		return PreparedSubmit{}, fmt.Errorf("submit queues no job (queue 0?): %w", ErrBadSubmit)
	case p.NumProcs > MaxClusterProcs:
		return PreparedSubmit{}, fmt.Errorf("submit of %d jobs in one cluster: at most %d are allowed; split the submission: %w", p.NumProcs, MaxClusterProcs, ErrBadSubmit)
	case len(p.Procs) != 0 && len(p.Procs) != p.NumProcs:
		return PreparedSubmit{}, fmt.Errorf("%d proc specs for %d procs: %w", len(p.Procs), p.NumProcs, ErrBadRequest)
	case p.Iwd == "" || !strings.HasPrefix(p.Iwd, "/"):
		return PreparedSubmit{}, fmt.Errorf("initial directory %q is not absolute: %w", p.Iwd, ErrBadSubmit)
	}
	if err := checkAttrs("", p.Attrs); err != nil {
		return PreparedSubmit{}, err
	}
	if err := checkOwnedAttrs("", p.Attrs, p.Owner); err != nil {
		return PreparedSubmit{}, err
	}
	for i, ps := range p.Procs {
		where := fmt.Sprintf("proc %d: ", i)
		if err := checkAttrs(where, ps.Attrs); err != nil {
			return PreparedSubmit{}, err
		}
		if err := checkOwnedAttrs(where, ps.Attrs, p.Owner); err != nil {
			return PreparedSubmit{}, err
		}
	}
	for _, in := range p.Inputs {
		if err := checkRef(in, p.Owner); err != nil {
			return PreparedSubmit{}, err
		}
	}
	for _, ps := range p.Procs {
		for _, in := range ps.Inputs {
			if err := checkRef(in, p.Owner); err != nil {
				return PreparedSubmit{}, err
			}
		}
	}
	return PreparedSubmit{cmd: c, event: events.New(events.ClusterSubmitted, p)}, nil
}

// DecidePreparedSubmit decides a prepared submit against the queue: a
// submit id seen before returns its cluster and no events; otherwise the
// queue's bound (MaxJobs) and the reserved cluster id, if any, are
// checked and the next cluster is handed out.
func DecidePreparedSubmit(q *Queue, ps PreparedSubmit) (cluster int, evs []events.Event, err error) {
	c, p := ps.cmd, ps.cmd.Payload
	if id, ok := q.Submits[p.SubmitID]; ok {
		return id, nil, nil
	}
	if ps.event.Type != events.ClusterSubmitted {
		return 0, nil, fmt.Errorf("submit not prepared (PrepareSubmit): %w", ErrBadRequest)
	}
	if c.MaxJobs > 0 && len(q.Jobs)+p.NumProcs > c.MaxJobs {
		return 0, nil, fmt.Errorf("queue holds %d jobs; %d more would pass MAX_JOBS_SUBMITTED %d: %w", len(q.Jobs), p.NumProcs, c.MaxJobs, ErrBadSubmit)
	}
	cluster = q.LastCluster + 1
	if c.Cluster != 0 {
		if q.Reserved[p.SubmitID] != c.Cluster {
			return 0, nil, fmt.Errorf("cluster %d was not reserved for this submit: %w", c.Cluster, ErrBadRequest)
		}
		cluster = c.Cluster
	}
	return cluster, []events.Event{ps.event.ForCluster(q.Name, cluster)}, nil
}

func checkAttrs(where string, attrs []events.Attr) error {
	for _, a := range attrs {
		if !validAttrName(a.Name) {
			return fmt.Errorf("%sattribute name %q: %w", where, a.Name, ErrBadSubmit)
		}
		// CheckExpr: clusters submitted from one submit file repeat nearly
		// every expression, and one that parsed before is not parsed
		// again (half of a single-job submit's time in the schedd).
		if err := classad.CheckExpr(a.Expr); err != nil {
			return fmt.Errorf("%sattribute %s: %w: %w", where, a.Name, err, ErrBadSubmit)
		}
	}
	return nil
}

// scheddOwned are attributes the schedd sets on every job, which a submit
// request may not give (vmpool submit refuses them as +Name too). The
// queue's own values shadow them in the schedd's ads, but a proc's were
// read by the negotiator as they came: a hand-written request from bob
// with a proc's Owner = "alice" was matched as alice's (against START
// expressions that name owners), though the startd then saw bob's.
var scheddOwned = []string{"ClusterId", "ProcId", "GlobalJobId", "QDate"}

// checkOwnedAttrs refuses attrs that give an attribute the schedd owns,
// or an Owner other than owner (vmpool submit writes the submitter's).
func checkOwnedAttrs(where string, attrs []events.Attr, owner string) error {
	for _, a := range attrs {
		for _, n := range scheddOwned {
			if strings.EqualFold(a.Name, n) {
				return fmt.Errorf("%sattribute %s is set by the schedd and cannot be given: %w", where, a.Name, ErrBadSubmit)
			}
		}
		if strings.EqualFold(a.Name, "Owner") {
			e, err := classad.ParseExpr(a.Expr)
			if err != nil {
				return fmt.Errorf("%sattribute Owner: %w: %w", where, err, ErrBadSubmit)
			}
			if v, ok := e.Eval(nil, nil).StringValue(); !ok || v != owner {
				return fmt.Errorf("%sattribute Owner = %s: the submitter is %q: %w", where, a.Expr, owner, ErrBadSubmit)
			}
		}
	}
	return nil
}

func validAttrName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkRef checks an input file reference: a plain name, well formed, and
// in the owner's own bucket (the daemons can read every bucket, so a job
// naming another user's object would get it).
func checkRef(r events.FileRef, owner string) error {
	if r.Name == "" || strings.ContainsAny(r.Name, "/\x00") || r.Name == "." || r.Name == ".." {
		return fmt.Errorf("input file name %q: must be a plain file name: %w", r.Name, ErrBadSubmit)
	}
	if r.Bucket != events.UserBucket(owner) {
		return fmt.Errorf("input file %s is in bucket %q, not %s's own: %w", r.Name, r.Bucket, owner, ErrPermissionDenied)
	}
	if len(r.SHA256) != 64 || r.Object != events.ObjectName(r.SHA256) || r.Size < 0 {
		return fmt.Errorf("input file %s: malformed reference: %w", r.Name, ErrBadRequest)
	}
	return nil
}

// DecideReserve hands out a cluster id for a submit that needs it before
// its file can be expanded ($(Cluster)). A retry gets the same id.
func DecideReserve(q *Queue, submitID string) (int, []events.Event, error) {
	if submitID == "" {
		return 0, nil, fmt.Errorf("reserve without a submit id: %w", ErrBadRequest)
	}
	if id, ok := q.Reserved[submitID]; ok {
		return id, nil, nil
	}
	if id, ok := q.Submits[submitID]; ok {
		return id, nil, nil
	}
	id := q.LastCluster + 1
	return id, []events.Event{events.New(events.ClusterReserved, events.ClusterReservedPayload{SubmitID: submitID}).ForCluster(q.Name, id)}, nil
}

// Action kinds (the user verbs).
const (
	ActRemove  = "rm"
	ActHold    = "hold"
	ActRelease = "release"
	ActVacate  = "vacate"
)

// Selector picks jobs the way condor_rm's arguments do.
type Selector struct {
	Cluster    int    `json:"cluster,omitempty"`    // 0: any
	Proc       int    `json:"proc"`                 // -1: every proc of Cluster
	Owner      string `json:"owner,omitempty"`      // every job of this user
	Constraint string `json:"constraint,omitempty"` // ClassAd expression
	All        bool   `json:"all,omitempty"`
}

// ActionCmd is a user's rm/hold/release/vacate.
type ActionCmd struct {
	Kind    string   `json:"kind"`
	Select  Selector `json:"select"`
	By      string   `json:"by"`
	Super   bool     `json:"-"` // set by the shell: By is a queue super user
	Reason  string   `json:"reason,omitempty"`
	SubCode int      `json:"subcode,omitempty"`
	// Fast: vacate -fast, at once and without a checkpoint.
	Fast bool `json:"fast,omitempty"`
	// Now is when the command was decided (time() in a constraint); the
	// shell sets it from the loop's clock.
	Now time.Time `json:"-"`
}

// ActionResult is what happened to one selected job.
type ActionResult struct {
	Job   events.JobID `json:"job"`
	Code  events.Code  `json:"code,omitempty"` // "" when done
	Error string       `json:"error,omitempty"`
}

// DecideAction applies a user action to the selected jobs. Jobs the user may
// not touch, or that are not in a state the action applies to, get a result
// with an error code; the others get events. Selecting nothing at all is an
// error.
func DecideAction(q *Queue, c ActionCmd) ([]events.Event, []ActionResult, error) {
	var constraint *classad.Expr
	if c.Select.Constraint != "" {
		var err error
		constraint, err = classad.ParseExpr(c.Select.Constraint)
		if err != nil {
			return nil, nil, fmt.Errorf("constraint: %w: %w", err, ErrBadRequest)
		}
	}
	switch c.Kind {
	case ActRemove, ActHold, ActRelease, ActVacate:
	default:
		return nil, nil, fmt.Errorf("unknown action %q: %w", c.Kind, ErrBadRequest)
	}
	if !c.Select.All && c.Select.Cluster == 0 && c.Select.Owner == "" && constraint == nil {
		return nil, nil, fmt.Errorf("no jobs selected (give a cluster, cluster.proc, user, -constraint or -all): %w", ErrBadRequest)
	}
	var evs []events.Event
	var results []ActionResult
	for _, j := range q.Sorted() {
		if !selected(q, j, c.Select, constraint, c.Now) {
			continue
		}
		if c.Select.All && !c.Super && j.Owner() != c.By {
			continue // -all means all of the user's own jobs
		}
		res := ActionResult{Job: j.ID}
		ev, err := decideOne(q, j, c)
		if err != nil {
			res.Code, res.Error = events.ErrorCodeOf(err), err.Error()
		} else {
			evs = append(evs, ev)
		}
		results = append(results, res)
	}
	if len(results) == 0 {
		return nil, nil, fmt.Errorf("%s: %w", describeSelector(c.Select), ErrJobNotFound)
	}
	return evs, results, nil
}

func selected(q *Queue, j *Job, s Selector, constraint *classad.Expr, now time.Time) bool {
	if s.Cluster != 0 && (j.ID.Cluster != s.Cluster || s.Proc >= 0 && j.ID.Proc != s.Proc) {
		return false
	}
	if s.Owner != "" && j.Owner() != s.Owner {
		return false
	}
	return j.Matches(q.Name, constraint, now)
}

func describeSelector(s Selector) string {
	switch {
	case s.Cluster != 0 && s.Proc >= 0:
		return fmt.Sprintf("job %d.%d", s.Cluster, s.Proc)
	case s.Cluster != 0:
		return fmt.Sprintf("cluster %d", s.Cluster)
	case s.Owner != "":
		return fmt.Sprintf("jobs of user %q", s.Owner)
	case s.Constraint != "":
		return fmt.Sprintf("jobs matching constraint (%s)", s.Constraint)
	}
	return "jobs"
}

func decideOne(q *Queue, j *Job, c ActionCmd) (events.Event, error) {
	if !c.Super && j.Owner() != c.By {
		return events.Event{}, fmt.Errorf("job %s belongs to %s, not %s: %w", j.ID, j.Owner(), c.By, ErrPermissionDenied)
	}
	who := c.By
	switch c.Kind {
	case ActRemove:
		if j.Status == Removed {
			return events.Event{}, ErrAlreadyDone.With("job %s is already being removed", j.ID)
		}
		reason := c.Reason
		if reason == "" {
			reason = "via condor_rm (by user " + who + ")"
		}
		return events.New(events.JobRemoved, events.JobActionPayload{By: who, Reason: reason, Claimed: j.Claim != nil}).ForJob(q.Name, j.ID), nil
	case ActHold:
		if j.Status == Held {
			return events.Event{}, ErrAlreadyDone.With("job %s is already held", j.ID)
		}
		if j.Status == Removed {
			return events.Event{}, ErrBeingRemoved.With("job %s is being removed", j.ID)
		}
		reason := c.Reason
		if reason == "" {
			reason = "via condor_hold (by user " + who + ")"
		}
		return events.New(events.JobHeld, events.JobHeldPayload{Code: 1, SubCode: c.SubCode, Reason: reason, By: who}).ForJob(q.Name, j.ID), nil
	case ActRelease:
		if j.Status != Held {
			return events.Event{}, ErrNotHeld.With("job %s is not held", j.ID)
		}
		reason := c.Reason
		if reason == "" {
			reason = "via condor_release (by user " + who + ")"
		}
		return events.New(events.JobReleased, events.JobActionPayload{By: who, Reason: reason}).ForJob(q.Name, j.ID), nil
	default: // ActVacate
		hurry := c.Fast && j.Claim != nil && j.Claim.State == ClaimStopping && j.Claim.StopMode == events.ModeVacate && !j.Claim.StopFast
		if !hurry && (j.Claim == nil || j.Claim.State == ClaimStopping || j.Claim.State == ClaimExited) {
			return events.Event{}, ErrNotRunning.With("job %s is not running", j.ID)
		}
		return events.New(events.JobVacating, events.JobActionPayload{By: who, Reason: c.Reason, Fast: c.Fast}).ForJob(q.Name, j.ID), nil
	}
}

// ErrNotRunning rejects vacating a job that runs nowhere.
var ErrNotRunning = events.NewError("not-running", "job not running")

// DecideForeign turns an event another daemon published about one of this
// schedd's jobs into the schedd's own events. Stale reports (a claim the
// job no longer holds) yield nothing.
// (A ClaimAccepted yields JobClaimed; the running schedd is not sent it,
// see startdTypes, and records JobClaimed from the startd's answer.)
func DecideForeign(q *Queue, e events.Event) []events.Event {
	j := q.Jobs[e.Job()]
	if e.Type == events.Matched {
		var p events.MatchedPayload
		if e.Decode(&p) != nil {
			return nil
		}
		if j == nil || j.Status != Idle || j.Claim != nil {
			reason := "job is no longer idle"
			if j == nil {
				reason = "job left the queue"
			}
			return []events.Event{events.New(events.MatchRejected, events.MatchRejectedPayload{MatchID: p.MatchID, Slot: p.Slot, Reason: reason}).ForJob(q.Name, e.Job())}
		}
		return []events.Event{events.New(events.JobMatched, events.JobMatchedPayload{
			ClaimID: p.MatchID, Negotiator: e.Source, Startd: p.Startd, Slot: p.Slot, Machine: p.Machine,
		}).ForJob(q.Name, j.ID)}
	}
	if !mayDerive(j, e.Type) {
		// Nothing would come of it whatever its claim: its payload
		// need not be decoded.
		return nil
	}
	var p events.VMEventPayload
	if e.Type == events.ClaimAccepted {
		// The startd's record of the claim names it in its request.
		var a events.ClaimAcceptedPayload
		if e.Decode(&a) != nil {
			return nil
		}
		p.ClaimID = a.Req.ClaimID
	} else if e.Decode(&p) != nil {
		return nil
	}
	if j == nil || j.Claim == nil || j.Claim.ID != p.ClaimID {
		return nil
	}
	return startdEventFor(q.Name, j, e.Type, p)
}

// startdEventFor is what a startd event of type typ, whose payload p names
// the claim job j holds, makes the schedd record.
func startdEventFor(schedd string, j *Job, typ string, p events.VMEventPayload) []events.Event {
	cl := j.Claim
	mk := func(typ string, payload any) events.Event { return events.New(typ, payload).ForJob(schedd, j.ID) }
	released := mk(events.ClaimReleased, claimEnded(j, events.ClaimPayload{ClaimID: cl.ID, Slot: cl.Slot, Reason: p.Reason,
		UserCPUNanos: p.UserCPUNanos, SysCPUNanos: p.SysCPUNanos, BytesSent: p.BytesIn, BytesRecv: p.BytesOut}))
	switch typ {
	case events.ClaimAccepted:
		if cl.State == ClaimMatched {
			return []events.Event{mk(events.JobClaimed, events.ClaimPayload{ClaimID: cl.ID, Slot: cl.Slot})}
		}
	case events.VMStarted:
		if cl.State == ClaimMatched || cl.State == ClaimClaimed {
			return []events.Event{mk(events.JobStarted, events.JobStartedPayload{ClaimID: cl.ID, Slot: p.Slot, Host: p.Host,
				Resumed: p.Resumed, ResumedFrom: p.ResumedFrom, ResumeNote: p.ResumeNote})}
		}
	case events.VMCheckpointed:
		if cl.State == ClaimRunning && p.Checkpoint != nil {
			return []events.Event{mk(events.JobCheckpointed, events.JobCheckpointedPayload{ClaimID: cl.ID, Checkpoint: *p.Checkpoint})}
		}
	case events.VMExited:
		if cl.State == ClaimStopping {
			return []events.Event{released}
		}
		if cl.State != ClaimExited {
			return []events.Event{mk(events.JobExited, p)}
		}
	case events.VMEvicted:
		if cl.State == ClaimStopping && cl.StopMode == events.ModeKill {
			return []events.Event{released}
		}
		return []events.Event{mk(events.JobEvicted, events.JobEvictedPayload{ClaimID: cl.ID, Checkpoint: p.Checkpoint, Reason: p.Reason, Code: p.Code, SubCode: p.SubCode,
			UserCPUNanos: p.UserCPUNanos, SysCPUNanos: p.SysCPUNanos, BytesSent: p.BytesIn, BytesRecv: p.BytesOut})}
	case events.VMFailed:
		if cl.State == ClaimStopping {
			return []events.Event{released}
		}
		if p.Hold {
			return []events.Event{
				mk(events.JobHeld, events.JobHeldPayload{Code: p.Code, SubCode: p.SubCode, Reason: p.Reason}),
				released,
			}
		}
		code := p.Code
		if code == 0 {
			code = 1020 // VMError: a hypervisor fault, not the job's
		}
		return []events.Event{mk(events.JobEvicted, events.JobEvictedPayload{ClaimID: cl.ID, Reason: p.Reason, Code: code, SubCode: p.SubCode,
			UserCPUNanos: p.UserCPUNanos, SysCPUNanos: p.SysCPUNanos, BytesSent: p.BytesIn, BytesRecv: p.BytesOut, Failed: true, Slot: cl.Slot})}
	case events.VMStopped:
		if cl.State == ClaimClaimed || cl.State == ClaimRunning {
			// The schedd did not ask for it: the startd ended the claim on
			// its own (this schedd had not answered its keepalives within
			// the job lease). The user log says so (022, 024), as for a
			// lease that runs out here.
			return []events.Event{mk(events.ClaimLost, claimEnded(j, events.ClaimPayload{ClaimID: cl.ID, Slot: cl.Slot, Reason: p.Reason,
				UserCPUNanos: p.UserCPUNanos, SysCPUNanos: p.SysCPUNanos, BytesSent: p.BytesIn, BytesRecv: p.BytesOut}))}
		}
		return []events.Event{released}
	}
	return nil
}

// mayDerive reports whether a startd event of type typ can yield an event
// for job j in the claim state it is in, whatever claim the event names:
// what DecideForeign's switch answers with nil in that state, it answers
// here before decoding. A type not listed may always yield one.
func mayDerive(j *Job, typ string) bool {
	if j == nil || j.Claim == nil {
		return false
	}
	switch st := j.Claim.State; typ {
	case events.ClaimAccepted:
		return st == ClaimMatched
	case events.VMStarted:
		return st == ClaimMatched || st == ClaimClaimed
	case events.VMCheckpointed:
		return st == ClaimRunning
	}
	return true
}

// DecideClaimReply records the startd's answer to a claim request.
func DecideClaimReply(q *Queue, id events.JobID, claimID string, r events.ClaimReply) []events.Event {
	j := q.Jobs[id]
	if j == nil || j.Claim == nil || j.Claim.ID != claimID || j.Claim.State != ClaimMatched {
		return nil
	}
	if r.Accepted {
		return []events.Event{events.New(events.JobClaimed, events.ClaimPayload{ClaimID: claimID, Slot: j.Claim.Slot}).ForJob(q.Name, id)}
	}
	return []events.Event{events.New(events.ClaimFailed, events.ClaimPayload{ClaimID: claimID, Slot: j.Claim.Slot, Reason: r.Reason}).ForJob(q.Name, id)}
}

// DecideUserLogUnwritable holds a matched job whose user log cannot be
// written before its claim is sent (HTCondor's shadow holds it with code
// 22, UnableToInitUserLog, when it cannot initialize the log): its VM
// does not start, and a release after the log is fixed runs it.
func DecideUserLogUnwritable(q *Queue, id events.JobID, claimID, reason string) []events.Event {
	j := q.Jobs[id]
	if j == nil || j.Claim == nil || j.Claim.ID != claimID || j.Claim.State != ClaimMatched {
		return nil
	}
	return []events.Event{events.New(events.JobHeld, events.JobHeldPayload{Code: 22, Reason: reason}).ForJob(q.Name, id)}
}

// DecideClaimLost records that a claim's lease expired: its startd has not
// answered for the job's JobLeaseDuration. The job goes back to the queue
// (to resume from its last checkpoint, if it has one).
func DecideClaimLost(q *Queue, id events.JobID, claimID, reason string) []events.Event {
	j := q.Jobs[id]
	if j == nil || j.Claim == nil || j.Claim.ID != claimID {
		return nil
	}
	switch j.Claim.State {
	case ClaimClaimed, ClaimRunning, ClaimStopping:
	default:
		return nil
	}
	return []events.Event{events.New(events.ClaimLost, claimEnded(j, events.ClaimPayload{ClaimID: claimID, Slot: j.Claim.Slot, Reason: reason})).ForJob(q.Name, id)}
}

// DecideClaimGone records that the startd no longer has a claim the schedd
// was ending (it answered a deactivate with "unknown claim").
func DecideClaimGone(q *Queue, id events.JobID, claimID string) []events.Event {
	j := q.Jobs[id]
	if j == nil || j.Claim == nil || j.Claim.ID != claimID {
		return nil
	}
	if j.Claim.State == ClaimExited {
		return nil // its outputs are in the object store; the fetch decides
	}
	return []events.Event{events.New(events.ClaimReleased, claimEnded(j, events.ClaimPayload{ClaimID: claimID, Slot: j.Claim.Slot, Reason: "the startd no longer has the claim"})).ForJob(q.Name, id)}
}

// claimEnded marks the end of a removed job's claim: with it the job
// leaves the queue, and the user log gets the job's 009.
func claimEnded(j *Job, p events.ClaimPayload) events.ClaimPayload {
	if j.Status == Removed {
		p.Removed, p.RemoveReason = true, j.RemoveReason
	}
	return p
}

// OutputsResult is the outcome of fetching a job's returned disks.
type OutputsResult struct {
	Job       events.JobID
	ClaimID   string
	Err       error // nil: every output is in the submit directory
	BytesRecv int64
	Now       time.Time // the decision's clock, for OnExitHold's time()
}

// DecideOutputs completes the job once its disks are back, or holds it
// (code 12, output transfer error) when they cannot be brought back, or
// (code 3) when its OnExitHold says so.
func DecideOutputs(q *Queue, r OutputsResult) []events.Event {
	j := q.Jobs[r.Job]
	if j == nil || j.Claim == nil || j.Claim.ID != r.ClaimID || j.Claim.State != ClaimExited {
		return nil
	}
	if r.Err != nil {
		return []events.Event{
			events.New(events.JobHeld, events.JobHeldPayload{Code: 12, Reason: "Error transferring output: " + r.Err.Error()}).ForJob(q.Name, j.ID),
		}
	}
	if held, ok := DecideOnExitHold(q, j, r.Now); ok {
		return []events.Event{held}
	}
	p := events.JobCompletedPayload{ClaimID: r.ClaimID, ExitCode: 0, Outputs: j.Claim.Outputs, BytesRecv: r.BytesRecv,
		TotalUserCPUNanos: j.RemoteUserCPU, TotalSysCPUNanos: j.RemoteSysCPU} // the exit's CPU is in the totals already
	if x := j.Claim.Exit; x != nil {
		p.BytesSent, p.RunNanos, p.UserCPUNanos, p.SysCPUNanos = x.BytesIn, x.RunNanos, x.UserCPUNanos, x.SysCPUNanos
	}
	// The job's bytes so far are its evicted runs'; this run's join them
	// when the JobCompleted is applied.
	p.TotalBytesSent, p.TotalBytesRecv = j.BytesSent+p.BytesSent, j.BytesRecv+p.BytesRecv
	return []events.Event{events.New(events.JobCompleted, p).ForJob(q.Name, j.ID)}
}
