package schedd

import (
	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// countClaimRun adds to j's totals the CPU and bytes of the run a claim
// event (ClaimLost, ClaimReleased) of j's current claim reports.
func countClaimRun(j *Job, e events.Event) {
	var p events.ClaimPayload
	_ = e.Decode(&p)
	if j.Claim != nil && j.Claim.ID == p.ClaimID {
		j.RemoteUserCPU += p.UserCPUNanos
		j.RemoteSysCPU += p.SysCPUNanos
		j.BytesSent += p.BytesSent
		j.BytesRecv += p.BytesRecv
	}
}

// Apply folds one event into the queue and returns it. It is pure and
// total: no clock, no I/O; an event it cannot use (an input record, a
// stale claim) changes nothing. The live schedd, replay and tests all fold
// the log with this one function.
func Apply(q *Queue, e events.Event) *Queue {
	q.Applied++
	if e.Source != q.Name {
		return q // input records are not part of the queue
	}
	at := e.Time / 1e9
	if e.Type == events.ClusterReserved {
		var p events.ClusterReservedPayload
		if e.Decode(&p) == nil {
			q.Reserved[p.SubmitID] = e.Cluster
		}
		q.LastCluster = max(q.LastCluster, e.Cluster)
		return q
	}
	if e.Type == events.ClusterSubmitted {
		applySubmit(q, e, at)
		return q
	}
	if e.Type == events.HistoryTrimmed {
		var p events.HistoryTrimmedPayload
		if e.Decode(&p) == nil {
			trimHistory(q, p.Jobs)
		}
		return q
	}
	j := q.Jobs[e.Job()]
	if j == nil {
		return q
	}
	switch e.Type {
	case events.JobMatched:
		var p events.JobMatchedPayload
		if e.Decode(&p) != nil {
			return q
		}
		j.Claim = &Claim{ID: p.ClaimID, Negotiator: p.Negotiator, Startd: p.Startd, Slot: p.Slot, Machine: p.Machine, State: ClaimMatched}
		q.Claims[p.ClaimID] = j.ID
	case events.JobClaimed:
		if j.Claim != nil && j.Claim.State == ClaimMatched {
			j.Claim.State = ClaimClaimed
		}
	case events.ClaimFailed:
		dropClaim(q, j, at)
	case events.JobStarted:
		var p events.JobStartedPayload
		if e.Decode(&p) != nil || j.Claim == nil {
			return q
		}
		j.Claim.State = ClaimRunning
		setStatus(j, Running, at)
		j.RemoteHost = p.Slot
		if j.JobStartDate == 0 {
			j.JobStartDate = at
		}
		j.JobCurrentStartDate = at
		j.NumJobStarts++
		if p.Resumed {
			j.NumRestarts++
		}
		// Checkpoints newer than the one resumed from (all of them when
		// the VM booted afresh) proved unusable: drop them.
		kept := j.Checkpoints[:0]
		for _, cp := range j.Checkpoints {
			if p.Resumed && cp.Seq <= p.ResumedFrom {
				kept = append(kept, cp)
			}
		}
		j.Checkpoints = kept
	case events.JobCheckpointed:
		var p events.JobCheckpointedPayload
		if e.Decode(&p) != nil {
			return q
		}
		j.addCheckpoint(p.Checkpoint)
	case events.JobEvicted:
		var p events.JobEvictedPayload
		if e.Decode(&p) != nil {
			return q
		}
		if p.Checkpoint != nil {
			j.addCheckpoint(*p.Checkpoint)
		}
		j.RemoteUserCPU += p.UserCPUNanos
		j.RemoteSysCPU += p.SysCPUNanos
		// The run's transfers count as a completed run's do: BytesSent
		// and BytesRecvd sum every run, as HTCondor's do.
		j.BytesSent += p.BytesSent
		j.BytesRecv += p.BytesRecv
		j.LastVacateTime = at
		dropClaim(q, j, at)
		if j.Status == Running {
			setStatus(j, Idle, at)
		}
	case events.JobExited:
		var p events.VMEventPayload
		if e.Decode(&p) != nil || j.Claim == nil {
			return q
		}
		j.Claim.State = ClaimExited
		j.Claim.Outputs = p.Outputs
		j.Claim.Exit = &p
		j.RemoteWallClock += p.RunNanos
		j.RemoteUserCPU += p.UserCPUNanos
		j.RemoteSysCPU += p.SysCPUNanos
		j.Checkpoints = nil // the guest finished: no state to resume from
	case events.JobCompleted:
		var p events.JobCompletedPayload
		if e.Decode(&p) != nil {
			return q
		}
		j.ExitCode = p.ExitCode
		j.Outputs = p.Outputs
		j.BytesSent += p.BytesSent
		j.BytesRecv += p.BytesRecv
		j.CompletionDate = at
		j.Checkpoints = nil
		dropClaim(q, j, at)
		setStatus(j, Completed, at)
		leaveQueue(q, j)
	case events.JobHeld:
		var p events.JobHeldPayload
		if e.Decode(&p) != nil {
			return q
		}
		j.HoldCode, j.HoldSub, j.HoldReason = p.Code, p.SubCode, p.Reason
		j.NumHolds++
		setStatus(j, Held, at)
		stopClaim(j, events.ModeKill)
	case events.JobReleased:
		var p events.JobActionPayload
		_ = e.Decode(&p)
		j.LastHoldReason = j.HoldReason
		j.HoldCode, j.HoldSub, j.HoldReason = 0, 0, ""
		j.ReleaseReason = p.Reason
		setStatus(j, Idle, at)
	case events.JobRemoved:
		var p events.JobActionPayload
		_ = e.Decode(&p)
		j.RemoveReason = p.Reason
		setStatus(j, Removed, at)
		if j.Claim == nil {
			leaveQueue(q, j)
		} else {
			stopClaim(j, events.ModeKill)
		}
	case events.JobVacating:
		stopClaim(j, events.ModeVacate)
		var p events.JobActionPayload
		if e.Decode(&p) == nil && p.Fast && j.Claim != nil && j.Claim.StopMode == events.ModeVacate {
			j.Claim.StopFast = true
		}
	case events.ClaimLost:
		j.LastVacateTime = at
		// A VM the startd stopped on its own says what its run used.
		countClaimRun(j, e)
		dropClaim(q, j, at)
		if j.Status == Running {
			setStatus(j, Idle, at)
		}
		if j.Status == Removed {
			leaveQueue(q, j)
		}
	case events.ClaimReleased:
		// The run's CPU and bytes count as an evicted run's do.
		countClaimRun(j, e)
		dropClaim(q, j, at)
		if j.Status == Running {
			setStatus(j, Idle, at)
		}
		if j.Status == Removed {
			leaveQueue(q, j)
		}
	}
	return q
}

func applySubmit(q *Queue, e events.Event, at int64) {
	// The attributes are read (and parsed) when the ad is first read.
	p, raw, err := e.DecodeSubmit()
	if err != nil {
		return
	}
	c := &Cluster{ID: e.Cluster, Owner: p.Owner, SubmitHost: p.SubmitHost, File: p.File, Iwd: p.Iwd,
		UserLog: p.UserLog, QDate: at, Inputs: p.Inputs, NumProcs: p.NumProcs}
	attrs := p.Attrs
	c.Lazy = classad.NewLazy(func() *classad.Ad { return adFromAttrs(events.SubmittedAttrs(attrs, raw)) })
	q.Clusters[c.ID] = c
	if c.UserLog != "" {
		q.UserLogs[c.ID] = c.UserLog
	}
	q.LogOwners[c.ID] = p.Owner
	q.Submits[p.SubmitID] = c.ID
	delete(q.Reserved, p.SubmitID)
	q.LastCluster = max(q.LastCluster, c.ID)
	for i := 0; i < p.NumProcs; i++ {
		j := &Job{ID: events.JobID{Cluster: c.ID, Proc: i}, Cluster: c, Status: Idle, EnteredCurrentStatus: at}
		if i < len(p.Procs) {
			if len(p.Procs[i].Attrs) > 0 {
				attrs := p.Procs[i].Attrs
				j.OwnLazy = classad.NewLazy(func() *classad.Ad {
					own := adFromAttrs(attrs)
					own.SetParent(c.Ad())
					return own
				})
			}
			j.Inputs = p.Procs[i].Inputs
			j.OwnIwd = p.Procs[i].Iwd
			if l := p.Procs[i].UserLog; l != "" && l != c.UserLog {
				j.OwnLog = l
				q.ProcLogs[j.ID] = l
			}
		}
		if p.Held(i) {
			j.Status = Held
			j.HoldCode, j.HoldReason = 15, "submitted on hold at user's request"
			j.NumHolds = 1
		}
		q.Jobs[j.ID] = j
		c.InQueue++
	}
}

// adFromAttrs builds an ad from attribute source text. Decide checked that
// each parses; should one not (a log written by a buggy version), it
// becomes an error literal rather than stopping replay.
func adFromAttrs(attrs []events.Attr) *classad.Ad {
	ad := classad.NewAd()
	for _, a := range attrs {
		if err := ad.SetExpr(a.Name, a.Expr); err != nil {
			ad.SetValue(a.Name, classad.Error())
		}
	}
	return ad
}

func setStatus(j *Job, status int, at int64) {
	if j.Status != status {
		j.Status = status
		j.EnteredCurrentStatus = at
	}
}

// dropClaim forgets the job's claim at time at. A VM that ran on it and
// ended without its guest's exit (evicted, vacated, held, removed, its
// claim lost) adds its wall time to RemoteWallClock, as HTCondor's
// RemoteWallClockTime sums every run; an exit added the VM's own run time
// already (JobExited).
func dropClaim(q *Queue, j *Job, at int64) {
	if j.Claim == nil {
		return
	}
	if j.RemoteHost != "" && j.Claim.Exit == nil && j.JobCurrentStartDate > 0 && at > j.JobCurrentStartDate {
		j.RemoteWallClock += (at - j.JobCurrentStartDate) * 1e9
	}
	delete(q.Claims, j.Claim.ID)
	if j.RemoteHost != "" {
		j.LastRemoteHost = j.RemoteHost
	}
	j.RemoteHost = ""
	j.Claim = nil
}

// stopClaim marks the job's claim to be ended on its startd. A claim
// already stopping keeps the harder mode (kill beats vacate).
func stopClaim(j *Job, mode string) {
	c := j.Claim
	if c == nil || c.State == ClaimExited && mode == events.ModeVacate {
		return
	}
	if c.State == ClaimStopping && c.StopMode == events.ModeKill {
		return
	}
	c.State = ClaimStopping
	c.StopMode = mode
}

// trimHistory forgets the n oldest jobs of the history, and what only
// they still needed: their clusters' user logs and owners, their own
// user logs, and their submits' idempotency keys.
func trimHistory(q *Queue, n int) {
	n = min(n, len(q.History))
	if n <= 0 {
		return
	}
	gone := map[int]bool{}
	for _, j := range q.History[:n] {
		delete(q.ProcLogs, j.ID)
		gone[j.Cluster.ID] = true
	}
	// A new slice, so that the forgotten jobs (and their clusters' ads)
	// are not kept alive by the old one's array.
	q.History = append([]*Job(nil), q.History[n:]...)
	for _, j := range q.History {
		delete(gone, j.Cluster.ID)
	}
	for id := range gone {
		if _, queued := q.Clusters[id]; queued {
			delete(gone, id)
			continue
		}
		delete(q.UserLogs, id)
		delete(q.LogOwners, id)
	}
	if len(gone) == 0 {
		return
	}
	for sub, id := range q.Submits {
		if gone[id] {
			delete(q.Submits, sub)
		}
	}
}

func leaveQueue(q *Queue, j *Job) {
	if _, ok := q.Jobs[j.ID]; !ok {
		return
	}
	delete(q.Jobs, j.ID)
	q.History = append(q.History, j)
	j.Cluster.InQueue--
	if j.Cluster.InQueue <= 0 {
		delete(q.Clusters, j.Cluster.ID)
		// The history keeps a cluster's ad as the text a snapshot holds,
		// parsed again if read: parsed (as every claim parses it), it
		// took several times the memory, for every job the history
		// keeps.
		if c := j.Cluster; c.Lazy.Built() {
			c.Lazy = snapshotAd(c.Ad().OwnString(), nil)
		}
	}
	if j.OwnLazy != nil && j.OwnLazy.Built() {
		j.OwnLazy = snapshotAd(j.OwnLazy.Get().OwnString(), j.Cluster)
	}
}
