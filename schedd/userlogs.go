package schedd

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/schedd/userlog"
)

// writeUserLogs follows the schedd's own log and writes each job event to
// the job's user log (the submit file's `log`), in HTCondor's format.
//
// Every event is written exactly once, by position rather than by
// content: before writing a batch the schedd durably records an intent
// (the batch's last log index and each file's size before it); after the
// writes are synced it records the new position and drops the intent. A
// restart that finds an intent cuts each file back to its recorded size
// and writes the batch again. The schedd is the only writer of these
// files.
func (s *Schedd) writeUserLogs(ctx context.Context) error {
	done, err := s.log.MetaUint(metaUserLogDone)
	if err != nil {
		return err
	}
	s.userLogDone.Store(done)
	if err := s.rollbackUserLogs(); err != nil {
		return err
	}
	// When done was last written, for a pass that wrote nothing.
	var doneAt time.Time
	for {
		// Passes are paced: a busy queue commits a thousand times a
		// second, and a pass for each (a scan, a position written, and
		// with user logs two syncs) slowed its submits by a tenth.
		select {
		case <-time.After(userLogPace):
		case <-ctx.Done():
			return nil
		}
		if err := s.log.Wait(ctx, done); err != nil {
			if ctx.Err() != nil || errors.Is(err, events.ErrLogClosed) {
				return nil
			}
			return err
		}
		last := s.log.LastIndex()
		var entries []logEntry
		owners := map[string]string{} // path -> the first user it is written as (for a rollback)
		var order []string
		err := s.log.Scan(done+1, func(idx uint64, e events.Event) error {
			if idx > last {
				return events.ErrStop
			}
			if e.Source != s.cfg.Name || !s.mayLog(e) {
				return nil
			}
			for _, ue := range s.userlogEvents(e) {
				var path, owner string
				s.View(func(q *Queue) {
					id := events.JobID{Cluster: ue.Cluster, Proc: ue.Proc}
					path, owner = q.UserLogOf(id), q.UserLogOwner(id)
				})
				if path == "" {
					continue
				}
				if _, ok := owners[path]; !ok {
					order = append(order, path)
					owners[path] = owner
				}
				entries = append(entries, logEntry{path: path, owner: owner, ev: ue})
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(order) > 0 {
			in := userLogIntent{Last: last, Sizes: map[string]int64{}, Owners: owners}
			for _, path := range order {
				in.Sizes[path] = fileSize(path)
			}
			b, _ := json.Marshal(in)
			if err := s.log.SetMeta(metaUserLogIntent, b, true); err != nil {
				return err
			}
			for _, r := range logRuns(entries) {
				// As the job's owner: a log = /etc/... must not be written
				// with root's rights (asuser.go).
				err := asUser(r.owner, func() error { return appendUserLog(r.path, r.evs) })
				if err != nil {
					s.logger.Warn("write user log", "path", r.path, "owner", r.owner, "err", err)
				}
			}
		}
		if len(order) > 0 {
			s.cfg.Failpoints.Hit("userlog-after-write")
		}
		// The new position and the dropped intent need no sync of their
		// own: lost in a crash, they leave the intent (synced before the
		// writes) and the old position, and the restart cuts the files
		// back and writes the batch again; the next intent's sync, or the
		// loop's next append, makes them durable. Three syncs per batch
		// were two more than the submits that made the batch.
		// A pass that wrote nothing moves the position at most once a
		// second: a restart from an older one scans events that go to no
		// user log again, and writes nothing for them again.
		done = last
		s.userLogDone.Store(done)
		if now := time.Now(); len(order) > 0 || now.Sub(doneAt) >= time.Second || now.Before(doneAt) {
			if err := s.log.SetMetaUint(metaUserLogDone, done, false); err != nil {
				return err
			}
			doneAt = now
		}
		if len(order) > 0 {
			if err := s.log.SetMeta(metaUserLogIntent, nil, false); err != nil {
				return err
			}
			s.cfg.Failpoints.Hit("userlog-after-done")
		}
	}
}

// logEntry is one user log event of a batch, the file it goes to and the
// user it is written as (its job's owner).
type logEntry struct {
	path, owner string
	ev          userlog.Event
}

// logRun is events written to one file as one user in one append.
type logRun struct {
	path, owner string
	evs         []userlog.Event
}

// logRuns groups a batch's entries into appends: a file's events in the
// order they came, as runs of one owner each. A log two users share (one
// path in both users' submit files) gets each user's events written as
// that user: they were all written as the first one's, so one user's
// events went into a file with the other's rights, or were refused and
// lost.
func logRuns(entries []logEntry) []logRun {
	var runs []logRun
	last := map[string]int{} // path -> its latest run in runs
	for _, e := range entries {
		if i, ok := last[e.path]; ok && runs[i].owner == e.owner {
			runs[i].evs = append(runs[i].evs, e.ev)
			continue
		}
		last[e.path] = len(runs)
		runs = append(runs, logRun{path: e.path, owner: e.owner, evs: []userlog.Event{e.ev}})
	}
	return runs
}

// userLogPace is the least time between two passes of the user log
// writer: the events of a busy queue go out in batches, a few
// milliseconds late.
const userLogPace = 5 * time.Millisecond

// mayLog reports whether an event can go to a user log: whether its job
// has one or, for a submit, any job of its cluster. The events of jobs
// without one (most of a busy pool's) are not decoded.
func (s *Schedd) mayLog(e events.Event) (may bool) {
	s.View(func(q *Queue) {
		if q.UserLogs[e.Cluster] != "" {
			may = true
			return
		}
		if e.Type != events.ClusterSubmitted {
			may = q.ProcLogs[events.JobID{Cluster: e.Cluster, Proc: e.Proc}] != ""
			return
		}
		c := q.Clusters[e.Cluster]
		if c == nil {
			may = true // gone from the queue: the payload tells
			return
		}
		for i := range c.NumProcs {
			if q.ProcLogs[events.JobID{Cluster: e.Cluster, Proc: i}] != "" {
				may = true
				return
			}
		}
	})
	return may
}

const (
	metaUserLogDone   = "userlog.done"
	metaUserLogIntent = "userlog.intent"
)

// userLogIntent is a batch of user log writes that may not have finished.
type userLogIntent struct {
	Last  uint64           `json:"last"`
	Sizes map[string]int64 `json:"sizes"` // path -> size before the batch (-1: did not exist)
	// Owners says whose each file is: it is cut back as that user.
	Owners map[string]string `json:"owners,omitempty"`
}

// rollbackUserLogs undoes a batch that a crash interrupted: its files go
// back to their sizes before it, and the batch is written again from the
// recorded position.
func (s *Schedd) rollbackUserLogs() error {
	b, ok, err := s.log.Meta(metaUserLogIntent)
	if err != nil || !ok || len(b) == 0 {
		return err
	}
	var in userLogIntent
	if err := json.Unmarshal(b, &in); err != nil {
		s.logger.Warn("unreadable user log intent; ignoring it", "err", err)
		return s.log.SetMeta(metaUserLogIntent, nil, true)
	}
	done, err := s.log.MetaUint(metaUserLogDone)
	if err != nil {
		return err
	}
	if done < in.Last {
		for path, size := range in.Sizes {
			cur := fileSize(path)
			owner, ok := in.Owners[path]
			if !ok {
				owner = NobodyUser // an intent from before owners were kept
			}
			switch {
			case size < 0 && cur >= 0:
				err = asUser(owner, func() error { return os.Truncate(path, 0) })
			case cur > size:
				err = asUser(owner, func() error { return os.Truncate(path, size) })
			}
			if err != nil {
				s.logger.Warn("roll back user log", "path", path, "err", err)
			}
		}
	}
	return s.log.SetMeta(metaUserLogIntent, nil, true)
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return st.Size()
}

func appendUserLog(path string, evs []userlog.Event) error {
	w, err := userlog.OpenWriter(path, userlog.FormatOptions{})
	if err != nil {
		return err
	}
	if err := w.Append(evs...); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// cpuUsage is a usage line's user and system CPU from nanoseconds.
func cpuUsage(user, sys int64) userlog.Usage {
	return userlog.Usage{User: time.Duration(user), Sys: time.Duration(sys)}
}

// userlogEvents maps one schedd event to the user log events it writes.
func (s *Schedd) userlogEvents(e events.Event) []userlog.Event {
	at := time.Unix(0, e.Time)
	base := userlog.Event{Cluster: e.Cluster, Proc: e.Proc, Time: at}
	switch e.Type {
	case events.ClusterSubmitted:
		var p events.ClusterSubmittedPayload
		if e.Decode(&p) != nil {
			return nil
		}
		out := make([]userlog.Event, p.NumProcs)
		for i := range out {
			ev := base
			ev.Code, ev.Proc, ev.Host = userlog.JobSubmitted, i, "<"+s.cfg.Address+">"
			out[i] = ev
		}
		return out
	case events.JobStarted:
		var p events.JobStartedPayload
		if e.Decode(&p) != nil {
			return nil
		}
		base.Code, base.Host, base.SlotName = userlog.JobExecuting, p.Host, p.Slot
		if p.ResumeNote != "" {
			// Say which checkpoints could not be used, and what the job
			// did instead, before it runs again.
			note := base
			note.Code, note.Host, note.SlotName, note.Text = userlog.Generic, "", "", p.ResumeNote
			return []userlog.Event{note, base}
		}
	case events.JobCheckpointed:
		var p events.JobCheckpointedPayload
		_ = e.Decode(&p)
		base.Code = userlog.JobCheckpointed
		// Run Bytes Sent By Job For Checkpoint: the checkpoint it shipped.
		for _, f := range p.Checkpoint.Files {
			base.BytesSent += f.Size
		}
	case events.JobEvicted:
		var p events.JobEvictedPayload
		if e.Decode(&p) != nil {
			return nil
		}
		if p.Failed {
			// The VM could not run on its machine (not the job's fault):
			// HTCondor's shadow logs a starter's failure as a 007, with
			// the starter's error, and the job waits for another match.
			text := p.Reason
			if !strings.HasPrefix(text, "Error from ") {
				text = "Error from " + p.Slot + ": " + text
			}
			base.Code, base.Text = userlog.ShadowException, text
			base.BytesSent, base.BytesReceived = p.BytesRecv, p.BytesSent
			return []userlog.Event{base}
		}
		base.Code, base.Checkpointed, base.Reason = userlog.JobEvicted, p.Checkpoint != nil, p.Reason
		base.EvictCode, base.EvictSubCode = p.Code, p.SubCode
		base.RunRemote = cpuUsage(p.UserCPUNanos, p.SysCPUNanos)
		// From the job's side, as for a 005: the run received its inputs
		// (and the checkpoint it resumed from) and sent its checkpoint.
		base.BytesSent, base.BytesReceived = p.BytesRecv, p.BytesSent
	case events.JobCompleted:
		var p events.JobCompletedPayload
		if e.Decode(&p) != nil {
			return nil
		}
		base.Code, base.ReturnValue = userlog.JobTerminated, p.ExitCode
		// From the job's side: it received its input disks and sent back
		// the modified ones; this run, and every run (evicted ones too).
		// A JobCompleted recorded before the totals were has none: its
		// totals are its run's, as the log then printed them (a newer
		// one's are never below its run's).
		base.BytesSent, base.BytesReceived = p.BytesRecv, p.BytesSent
		base.TotalBytesSent, base.TotalBytesReceived = max(p.TotalBytesRecv, p.BytesRecv), max(p.TotalBytesSent, p.BytesSent)
		// The VM's CPU on its machine: this run, and every run (evicted
		// ones too).
		base.RunRemote = cpuUsage(p.UserCPUNanos, p.SysCPUNanos)
		base.TotalRemote = cpuUsage(p.TotalUserCPUNanos, p.TotalSysCPUNanos)
	case events.JobHeld:
		var p events.JobHeldPayload
		if e.Decode(&p) != nil {
			return nil
		}
		base.Code, base.Reason, base.HoldCode, base.HoldSubCode = userlog.JobHeld, p.Reason, p.Code, p.SubCode
	case events.JobReleased:
		var p events.JobActionPayload
		_ = e.Decode(&p)
		base.Code, base.Reason = userlog.JobReleased, p.Reason
	case events.JobRemoved:
		var p events.JobActionPayload
		_ = e.Decode(&p)
		if p.Claimed {
			return nil // its 009 comes when the claim ends and the job leaves the queue
		}
		base.Code, base.Reason = userlog.JobAborted, p.Reason
	case events.ClaimReleased:
		var p events.ClaimPayload
		if e.Decode(&p) != nil || !p.Removed {
			return nil
		}
		base.Code, base.Reason = userlog.JobAborted, p.RemoveReason
	case events.ClaimLost:
		// HTCondor's words for a lease that ran out: the job disconnected,
		// and reconnecting failed; it goes back to the queue (or, removed,
		// leaves it).
		var p events.ClaimPayload
		_ = e.Decode(&p)
		disc := base
		disc.Code, disc.Reason, disc.SlotName = userlog.JobDisconnected, p.Reason, p.Slot
		lost := base
		lost.Code, lost.Reason, lost.SlotName = userlog.JobReconnectFailed, "Job lease expired: "+p.Reason, p.Slot
		if p.Removed {
			base.Code, base.Reason = userlog.JobAborted, p.RemoveReason
			return []userlog.Event{disc, lost, base}
		}
		return []userlog.Event{disc, lost}
	default:
		return nil
	}
	return []userlog.Event{base}
}

// logProbes tells whether a job's user log can be written (as its owner),
// checking a writable path at most every logProbeTTL: every claim of a
// cluster of thousands asks about the same file.
type logProbes struct {
	mu   sync.Mutex
	seen map[[2]string]time.Time // when each (path, owner) was last found writable
}

const logProbeTTL = 5 * time.Second

// writable opens path for appending as owner (creating it, as the writer
// would), or says why it cannot; "" (no user log) is always writable.
func (p *logProbes) writable(path, owner string, now time.Time) error {
	if path == "" {
		return nil
	}
	key := [2]string{path, owner}
	p.mu.Lock()
	if at, ok := p.seen[key]; ok && now.Sub(at) < logProbeTTL {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	err := asUser(owner, func() error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	})
	if err != nil {
		return err // not kept: a release after the fix must find it fixed
	}
	p.mu.Lock()
	if p.seen == nil {
		p.seen = map[[2]string]time.Time{}
	}
	if len(p.seen) > 10000 {
		clear(p.seen) // paths of jobs long gone
	}
	p.seen[key] = now
	p.mu.Unlock()
	return nil
}

// unwrapPath is an error without the path an *os.PathError repeats.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
