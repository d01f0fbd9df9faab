package schedd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmpool/vmpool/events"
)

// The reconciler does the schedd's side effects: it drives every job whose
// claim needs something done towards where the queue says it should be.
// Work is scheduled when an event is committed and retried by a periodic
// scan, so a crash or a lost request only delays it: after a restart the
// first scan finds all unfinished work in the rebuilt queue.

type workKind int

const (
	workClaim      workKind = iota + 1 // send the claim request of a Matched claim
	workDeactivate                     // ask the startd to end a Stopping claim
	workFetch                          // bring an Exited claim's disks home
)

type workItem struct {
	kind workKind
	job  events.JobID
}

// schedule queues work without blocking.
func (s *Schedd) schedule(w workItem) { s.work.push(w) }

// workQueue holds the work waiting for a worker, in the order it came,
// each item once however often it is scheduled. It refuses nothing: a
// channel of 4,096 items overflowed when the negotiator placed thousands
// of jobs at once (the full-size match benchmark dropped up to 18,000
// items every 2 s), and what it dropped waited for the next periodic
// scan while the workers sat idle.
type workQueue struct {
	mu     sync.Mutex
	items  []workItem
	queued map[workItem]bool
	ready  chan struct{} // holds a token while items may be waiting
}

func newWorkQueue() *workQueue {
	return &workQueue{queued: map[workItem]bool{}, ready: make(chan struct{}, 1)}
}

func (q *workQueue) push(w workItem) {
	q.mu.Lock()
	if !q.queued[w] {
		q.queued[w] = true
		q.items = append(q.items, w)
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop takes the oldest item; ok is false when none waits.
func (q *workQueue) pop() (w workItem, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		q.items = nil // what a burst grew goes
		return workItem{}, false
	}
	w, q.items = q.items[0], q.items[1:]
	delete(q.queued, w)
	return w, true
}

func (s *Schedd) reconcile(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, 64)
	attempts := map[string]int{} // claim id + kind -> failed attempts (loop-local)
	var amu sync.Mutex
	fail := func(key string) int {
		amu.Lock()
		defer amu.Unlock()
		attempts[key]++
		return attempts[key]
	}
	done := func(key string) {
		amu.Lock()
		delete(attempts, key)
		amu.Unlock()
	}
	t := time.NewTicker(s.cfg.RetryInterval)
	defer t.Stop()
	s.scanWork(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.scanWork(ctx)
			continue
		case <-s.work.ready:
		}
		for {
			select {
			case <-t.C:
				// A long queue (a burst of matches) does not hold off the
				// scan: leases and retries keep their pace.
				s.scanWork(ctx)
			default:
			}
			w, ok := s.work.pop()
			if !ok {
				break
			}
			s.mu.Lock()
			if s.running[w] {
				s.mu.Unlock()
				continue
			}
			s.running[w] = true
			s.mu.Unlock()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					<-sem
					s.mu.Lock()
					delete(s.running, w)
					s.mu.Unlock()
				}()
				switch w.kind {
				case workClaim:
					s.doClaim(ctx, w.job, fail, done)
				case workDeactivate:
					s.doDeactivate(ctx, w.job, fail, done)
				case workFetch:
					s.doFetch(ctx, w.job, fail, done)
				}
			}()
		}
	}
}

func (s *Schedd) scanWork(ctx context.Context) {
	var items []workItem
	type lost struct {
		job    events.JobID
		claim  string
		reason string
	}
	var expired []lost
	now := s.cfg.Clock()
	s.mu.Lock()
	defer func() {
		s.mu.Unlock()
		for _, w := range items {
			s.schedule(w)
		}
		for _, l := range expired {
			s.logger.Warn("claim lease expired; the job goes back to the queue", "job", l.job.String(), "claim", l.claim, "reason", l.reason)
			_, err := s.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
				return DecideClaimLost(s.q, l.job, l.claim, l.reason), nil
			})
			if err != nil && ctx.Err() == nil {
				s.logger.Error("record lost claim", "job", l.job.String(), "err", err)
			}
		}
	}()
	s.scans++
	scan := s.scans
	s.View(func(q *Queue) {
		for claimID, id := range q.Claims {
			j := q.Jobs[id]
			if j == nil || j.Claim == nil {
				continue
			}
			switch j.Claim.State {
			case ClaimMatched:
				if !s.waitsAccepted(claimID) {
					items = append(items, workItem{workClaim, id})
				}
			case ClaimStopping:
				items = append(items, workItem{workDeactivate, id})
			case ClaimExited:
				items = append(items, workItem{workFetch, id})
			}
			if j.Claim.State == ClaimClaimed || j.Claim.State == ClaimRunning {
				// The lease: a claim whose startd has sent no keepalive for
				// JobLeaseDuration seconds is lost. A claim seen for the
				// first time (a fresh claim, or a restarted schedd) gets a
				// whole lease.
				a := s.alive[claimID]
				if a == nil {
					s.alive[claimID] = &aliveClaim{last: now, scan: scan}
					continue
				}
				a.scan = scan
				if !a.leaseRead {
					// Read once per claim: the job's ad is parsed for it.
					lease, ok := j.staticAd().EvalInt("JobLeaseDuration")
					if !ok {
						lease = defaultLease
					}
					a.lease, a.leaseRead = lease, true
				}
				if a.lease > 0 && now.Sub(a.last) > time.Duration(a.lease)*time.Second {
					expired = append(expired, lost{id, claimID, fmt.Sprintf("no keepalive from startd %s for %ds (JobLeaseDuration %d)", j.Claim.Startd, int(now.Sub(a.last).Seconds()), a.lease)})
				}
			}
		}
	})
	for id, a := range s.alive {
		if a.scan != scan {
			delete(s.alive, id) // no longer held
		}
	}
}

// aliveClaim is what the schedd knows of a held claim's lease: when its
// startd last sent a keepalive, and the job's JobLeaseDuration, read the
// first time scanWork finds the claim held.
type aliveClaim struct {
	last      time.Time
	lease     int64
	leaseRead bool
	scan      uint64 // the scanWork pass that last found the claim held
}

// defaultLease is HTCondor's JOB_DEFAULT_LEASE_DURATION, for jobs that
// carry no JobLeaseDuration.
const defaultLease = 2400

// claimAttempts is how many times an unanswered claim request is sent
// before the match is given up and the job goes back to Idle.
const claimAttempts = 3

func (s *Schedd) doClaim(ctx context.Context, id events.JobID, fail func(string) int, done func(string)) {
	var req events.ClaimRequest
	var startd, userLog, logOwner string
	ok := false
	s.View(func(q *Queue) {
		j := q.Jobs[id]
		if j == nil || j.Claim == nil || j.Claim.State != ClaimMatched {
			return
		}
		ok = true
		userLog, logOwner = q.UserLogOf(id), q.UserLogOwner(id)
		text, staticAt := s.claimTexts.adText(j, q.Name) // flat: its cluster's attributes too
		startd = j.Claim.Startd
		req = events.ClaimRequest{
			ClaimID:     j.Claim.ID,
			Schedd:      q.Name,
			Job:         id,
			Slot:        j.Claim.Slot,
			JobAd:       text,
			StaticAt:    staticAt,
			Inputs:      append(append([]events.FileRef(nil), j.Cluster.Inputs...), j.Inputs...),
			Checkpoints: append([]events.Checkpoint(nil), j.Checkpoints...),
			Owner:       j.Owner(),
		}
	})
	if !ok {
		return
	}
	if err := s.logProbes.writable(userLog, logOwner, time.Now()); err != nil {
		reason := fmt.Sprintf("Failed to initialize user log to %s: %v (the schedd writes it as %s: make it and its directory writable by that account, then release the job)", userLog, unwrapPath(err), writesAs(logOwner))
		s.logger.Warn("user log not writable: holding the job", "job", id.String(), "log", userLog, "err", err)
		if _, err := s.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
			return DecideUserLogUnwritable(s.q, id, req.ClaimID, reason), nil
		}); err != nil && ctx.Err() == nil {
			s.logger.Error("record hold for the user log", "job", id.String(), "err", err)
		}
		return
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.ClaimTimeout)
	defer cancel()
	var reply events.ClaimReply
	err := events.Call(cctx, s.cfg.Bus.NC, events.CmdSubject(events.RoleStartd, startd, "claim"), req, &reply)
	key := req.ClaimID + "/claim"
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		n := fail(key)
		s.logger.Warn("claim request", "job", id.String(), "slot", req.Slot, "attempt", n, "err", err)
		if n < claimAttempts {
			return // the periodic scan retries
		}
		reply = events.ClaimReply{Accepted: false, Reason: fmt.Sprintf("no answer from startd %s: %v", startd, err)}
	}
	done(key)
	if reply.Accepted {
		s.heardAccepted(id, req.ClaimID) // recorded after ClaimedGrace
		return
	}
	s.logger.Info("claim refused", "job", id.String(), "slot", req.Slot, "reason", reply.Reason)
	_, err = s.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
		return DecideClaimReply(s.q, id, req.ClaimID, reply), nil
	})
	if err != nil && ctx.Err() == nil {
		s.logger.Error("record claim reply", "job", id.String(), "err", err)
	}
}

// goneAttempts is how many deactivations a startd may leave unanswered
// (no daemon serves its subject) before its claim counts as gone.
const goneAttempts = 15

func (s *Schedd) doDeactivate(ctx context.Context, id events.JobID, fail func(string) int, done func(string)) {
	var req events.DeactivateRequest
	var startd string
	ok := false
	s.View(func(q *Queue) {
		j := q.Jobs[id]
		if j == nil || j.Claim == nil || j.Claim.State != ClaimStopping {
			return
		}
		ok = true
		startd = j.Claim.Startd
		req = events.DeactivateRequest{ClaimID: j.Claim.ID, Mode: j.Claim.StopMode, Fast: j.Claim.StopFast}
		switch j.Status {
		case Held:
			req.Reason = "job held"
		case Removed:
			req.Reason = "job removed"
		default:
			req.Reason = "job vacated"
		}
	})
	if !ok {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.ClaimTimeout)
	defer cancel()
	var reply events.DeactivateReply
	err := events.Call(cctx, s.cfg.Bus.NC, events.CmdSubject(events.RoleStartd, startd, "deactivate"), req, &reply)
	key := req.ClaimID + "/deactivate"
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		n := fail(key)
		if !errors.Is(err, events.ErrNoResponders) || n < goneAttempts {
			s.logger.Warn("deactivate claim", "job", id.String(), "startd", startd, "attempt", n, "err", err)
			return
		}
		reply.Known = false // the startd is gone, and its claims with it
	}
	done(key)
	if reply.Known {
		return // the startd reports the VM's end as an event
	}
	_, err = s.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
		return DecideClaimGone(s.q, id, req.ClaimID), nil
	})
	if err != nil && ctx.Err() == nil {
		s.logger.Error("record claim gone", "job", id.String(), "err", err)
	}
}

// fetchAttempts bounds retries of an output transfer before the job is
// held with code 12.
const fetchAttempts = 5

// errForeignOutput marks a returned file the schedd refuses outright (not
// one the job sent, or from another user's bucket): no retry can help.
var errForeignOutput = errors.New("refused")

// throughLink is where a returned disk for dst, a file of the submit
// directory iwd, is written. A symbolic link there that leads to a file
// inside the directory (disk.img -> images/v3.img, as submit allows it)
// is written through, as HTCondor's file transfer writes through it: the
// link stays and its target gets the disk (the link was replaced by the
// disk, its target left as submitted). A link that leads out of the
// directory, or nowhere, is replaced, never written through.
func throughLink(dst, iwd string) string {
	fi, err := os.Lstat(dst)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		return dst
	}
	target, err := filepath.EvalSymlinks(dst)
	if err != nil {
		return dst
	}
	realIwd, err := filepath.EvalSymlinks(iwd)
	if err != nil {
		return dst
	}
	if rel, err := filepath.Rel(realIwd, target); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return dst
	}
	return target
}

// unwritableOutput says what the job's owner can do about a returned disk
// that could not be written into the submit directory iwd (not writable,
// gone, on a full or read-only file system): the raw error named only the
// fetch's temporary file. Other errors are returned as they are.
func unwritableOutput(name, iwd string, err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err
	}
	switch errno {
	case syscall.EACCES, syscall.EPERM, syscall.EROFS:
		return fmt.Errorf("cannot write the returned disk %s into the submit directory %s (%v): make the directory writable by the job's owner and release the job, which then runs again from its submitted disks: %w", name, iwd, errno, err)
	case syscall.ENOENT, syscall.ENOTDIR:
		return fmt.Errorf("cannot write the returned disk %s into the submit directory %s, which no longer exists (%v): create it again and release the job, which then runs again from its submitted disks: %w", name, iwd, errno, err)
	case syscall.ENOSPC, syscall.EDQUOT:
		return fmt.Errorf("cannot write the returned disk %s into the submit directory %s (%v): free space there and release the job, which then runs again from its submitted disks: %w", name, iwd, errno, err)
	}
	return err
}

func (s *Schedd) doFetch(ctx context.Context, id events.JobID, fail func(string) int, done func(string)) {
	var outputs []events.FileRef
	var iwd, owner, claimID string
	allowed := map[string]bool{}
	ok := false
	s.View(func(q *Queue) {
		j := q.Jobs[id]
		if j == nil || j.Claim == nil || j.Claim.State != ClaimExited {
			return
		}
		ok = true
		outputs = j.Claim.Outputs
		iwd, owner, claimID = j.Iwd(), j.Owner(), j.Claim.ID
		for _, in := range j.Cluster.Inputs {
			allowed[in.Name] = true
		}
		for _, in := range j.Inputs {
			allowed[in.Name] = true
		}
	})
	if !ok {
		return
	}
	key := claimID + "/fetch"
	var total int64
	start := time.Now()
	err := func() error {
		for _, o := range outputs {
			// A returned disk may only replace a file the job sent: never a
			// path of the startd's choosing.
			if !allowed[o.Name] || filepath.Base(o.Name) != o.Name {
				return fmt.Errorf("startd returned %q, which the job did not send: %w", o.Name, errForeignOutput)
			}
			dst := filepath.Join(iwd, o.Name)
			if o.Bucket != events.UserBucket(owner) {
				return fmt.Errorf("startd returned %q from bucket %q, not the owner's: %w", o.Name, o.Bucket, errForeignOutput)
			}
			// As the job's owner: the kernel then checks the Iwd path
			// (a directory swapped for a symbolic link) and the file
			// with the owner's rights, not root's (asuser.go).
			pctx, reported := s.cfg.Bus.ReportTransfer(ctx, owner, events.TransferProgress{Schedd: s.cfg.Name, Job: id, Kind: events.TransferReturn, File: o.Name, Total: o.Size, By: s.cfg.Name})
			err := asUser(owner, func() error {
				return s.cfg.Bus.GetFile(pctx, o, throughLink(dst, iwd))
			})
			reported(err)
			if err != nil {
				return unwritableOutput(o.Name, iwd, err)
			}
			total += o.Size
		}
		return nil
	}()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		n := fail(key)
		s.logger.Warn("fetch returned disks", "job", id.String(), "attempt", n, "err", err)
		if n < fetchAttempts && !errors.Is(err, errForeignOutput) {
			return
		}
	}
	if err == nil && len(outputs) > 0 {
		took := time.Since(start)
		s.metrics.fetched(total, took)
		s.logger.Info("returned disks fetched", "job", id.String(), "files", len(outputs), "bytes", total, "took", took.Round(time.Millisecond))
	}
	done(key)
	_, derr := s.loop.DoEvents(ctx, func(now time.Time) ([]events.Event, error) {
		return DecideOutputs(s.q, OutputsResult{Job: id, ClaimID: claimID, Err: err, BytesRecv: total, Now: now}), nil
	})
	if derr != nil && ctx.Err() == nil {
		s.logger.Error("record returned disks", "job", id.String(), "err", derr)
	}
}
