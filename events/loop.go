package events

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Loop is a daemon's shell around its pure core: one goroutine that takes
// commands, lets the core decide them against the current state, applies
// the resulting events, appends them to the Log in one synced batch and
// only then answers. Commands that arrive together are decided one after
// the other against the evolving state and committed in one batch (group
// commit), so concurrent submits cost one fsync, not one each.
//
// Readers use View, which excludes the loop while it decides and appends,
// so nothing outside sees state that is not yet durable.
type Loop struct {
	log      *Log
	apply    func(Event)
	after    func([]Event)
	clock    func() time.Time
	ops      chan *op
	stopped  chan struct{}
	maxGroup int
	fail     *Failpoints
	minFree  int64
	// The free space last read (freeSpace) and when.
	free   int64
	freeAt time.Time
	statfs func(dir string) (int64, bool) // freeBytes; tests change it
	mu     sync.RWMutex
}

// LoopConfig configures a Loop.
type LoopConfig struct {
	Log *Log
	// Apply folds one event into the daemon's state. It runs on the loop
	// goroutine with the write lock held.
	Apply func(Event)
	// After runs on the loop goroutine once a group is durable, without the
	// lock, with the events just committed (e.g. to kick off side effects
	// such as claiming a slot). It must not block for long.
	After func([]Event)
	// Clock gives the time handed to commands; default time.Now.
	Clock func() time.Time
	// MaxGroup bounds the commands committed together (default 1024).
	MaxGroup int
	// Failpoints, when set, are the crash points the loop honours.
	Failpoints *Failpoints
	// MinFree, when positive, is the free space (bytes) the log's
	// filesystem must keep. Below it the loop refuses every command with
	// ErrDiskFull and applies nothing, rather than let Pebble run out of
	// space mid-write (which it treats as fatal).
	MinFree int64
}

// ErrDiskFull refuses commands while the event log's disk is nearly full.
var ErrDiskFull = NewError("disk-full", "the daemon's disk is nearly full")

type op struct {
	fn   func(tx *Tx) error
	evs  []Event
	err  error
	done chan struct{}
}

// Tx is one command being decided on the loop goroutine.
type Tx struct {
	now  time.Time
	loop *Loop
	evs  []Event
}

// Now is the loop's clock reading for this command; decisions use it
// instead of reading a clock themselves.
func (tx *Tx) Now() time.Time { return tx.now }

// Emit records decided events: it stamps them and applies them to the
// state at once, so that what the command decides next sees them. They
// are committed with the command's group even if the command then returns
// an error, so a command emits only once it has decided.
func (tx *Tx) Emit(evs ...Event) {
	for i := range evs {
		tx.loop.log.Stamp(&evs[i])
		if evs[i].Time == 0 {
			evs[i].Time = tx.now.UnixNano()
		}
		tx.loop.apply(evs[i])
	}
	tx.evs = append(tx.evs, evs...)
}

// ErrLoopStopped is returned by Do when the loop is not running any more.
var ErrLoopStopped = errors.New("events: daemon loop stopped")

// loopQueue bounds the commands waiting for the loop in its channel; more
// wait to send, and a group takes them as well (a receive from a full
// channel lets a waiting sender in). Each loop's channel and group are
// scanned whole by every garbage collection: 1,024 slots each were 160 MB
// for 10,000 sim startds.
const loopQueue = 64

// NewLoop builds a loop; Run runs it.
func NewLoop(cfg LoopConfig) *Loop {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxGroup <= 0 {
		cfg.MaxGroup = 1024
	}
	if cfg.After == nil {
		cfg.After = func([]Event) {}
	}
	return &Loop{log: cfg.Log, apply: cfg.Apply, after: cfg.After, clock: cfg.Clock,
		ops: make(chan *op, min(cfg.MaxGroup, loopQueue)), stopped: make(chan struct{}), maxGroup: cfg.MaxGroup, fail: cfg.Failpoints, minFree: cfg.MinFree, statfs: freeBytes}
}

// Do runs fn on the loop goroutine with the state write-locked. fn is the
// decision: it emits the events that record it (Tx.Emit), or returns an
// error that rejects the command. Do returns once the emitted events are
// durable, with their sequence numbers stamped, and fn's error.
func (l *Loop) Do(ctx context.Context, fn func(tx *Tx) error) ([]Event, error) {
	o := &op{fn: fn, done: make(chan struct{})}
	select {
	case l.ops <- o:
	case <-l.stopped:
		return nil, ErrLoopStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-o.done:
		return o.evs, o.err
	case <-l.stopped:
		// The loop may have finished o just before stopping.
		select {
		case <-o.done:
			return o.evs, o.err
		default:
			return nil, ErrLoopStopped
		}
	}
}

// View runs fn with the state read-locked: it sees only durable state.
func (l *Loop) View(fn func()) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	fn()
}

// Run runs the loop until ctx is done or an append fails (the error, after
// which the daemon must stop: its memory is ahead of its log).
func (l *Loop) Run(ctx context.Context) error {
	defer close(l.stopped)
	group := make([]*op, 0, min(l.maxGroup, loopQueue))
	for {
		clear(group) // the last group's commands are done with
		group = group[:0]
		select {
		case o := <-l.ops:
			group = append(group, o)
		case <-ctx.Done():
			return nil
		}
	more:
		for len(group) < l.maxGroup {
			select {
			case o := <-l.ops:
				group = append(group, o)
			default:
				break more
			}
		}
		all, err := l.commit(group)
		if err != nil {
			for _, o := range group {
				o.evs, o.err = nil, err
				close(o.done)
			}
			return err
		}
		if len(all) > 0 {
			l.fail.Hit("loop-after-append")
			l.after(all)
		}
		for _, o := range group {
			close(o.done)
		}
	}
}

func (l *Loop) commit(group []*op) (all []Event, err error) {
	if l.minFree > 0 {
		if free := l.freeSpace(); free < l.minFree {
			for _, o := range group {
				o.err = fmt.Errorf("%s has %d MiB free, less than the %d MiB kept free (LOG_MIN_FREE_MB); free space and retry: %w",
					l.log.Dir(), free>>20, l.minFree>>20, ErrDiskFull)
			}
			return nil, nil
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range group {
		tx := &Tx{now: l.clock(), loop: l}
		o.err = l.decide(o, tx)
		o.evs = tx.evs
		all = append(all, tx.evs...)
	}
	if _, err := l.log.Append(all); err != nil {
		return nil, err
	}
	return all, nil
}

// decide runs a command's decision, turning a panic (a broken invariant in
// the core, never bad input) into an error for that command alone.
func (l *Loop) decide(o *op, tx *Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error deciding a command: %v", r)
		}
	}()
	return o.fn(tx)
}

// DoEvents is Do for a decision that returns its events at once.
func (l *Loop) DoEvents(ctx context.Context, fn func(now time.Time) ([]Event, error)) ([]Event, error) {
	return l.Do(ctx, func(tx *Tx) error {
		evs, err := fn(tx.Now())
		if err != nil {
			return err
		}
		tx.Emit(evs...)
		return nil
	})
}

// freeSpace is the free space of the log's disk: read again when the
// last reading is freeRecheck old, or left less than twice the reserve
// (then at every commit). A loop commits many times a second, and a
// statfs at each was 1.5% of a pool's CPU. Loops whose logs share a Store
// (thousands of sim startds) share a reading too: one statfs each per
// freeRecheck was 0.7% of a full-size match benchmark's CPU.
func (l *Loop) freeSpace() int64 {
	now := time.Now()
	low := !l.freeAt.IsZero() && l.free < 2*l.minFree
	if !l.freeAt.IsZero() && now.Sub(l.freeAt) < freeRecheck && !low {
		return l.free
	}
	d := l.log.disk
	if !low {
		if free, at, ok := d.recent(now); ok && free >= 2*l.minFree {
			l.free, l.freeAt = free, at
			return free
		}
	}
	free, ok := l.statfs(d.dir)
	if !ok {
		free = math.MaxInt64 // cannot tell: refuse nothing
	}
	l.free, l.freeAt = free, now
	d.set(free, now)
	return l.free
}

// diskReading is the last free-space reading of a directory, shared by
// the loops of the logs in it.
type diskReading struct {
	dir  string
	mu   sync.Mutex
	free int64
	at   time.Time
}

// recent returns the reading if it is less than freeRecheck old.
func (d *diskReading) recent(now time.Time) (free int64, at time.Time, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.at.IsZero() || now.Sub(d.at) >= freeRecheck || now.Before(d.at) {
		return 0, time.Time{}, false
	}
	return d.free, d.at, true
}

func (d *diskReading) set(free int64, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if at.After(d.at) {
		d.free, d.at = free, at
	}
}

// freeRecheck is how long a reading of ample free space holds.
const freeRecheck = 100 * time.Millisecond

// freeBytes is the space available to unprivileged writers under dir.
func freeBytes(dir string) (int64, bool) {
	var st syscall.Statfs_t
	for d := dir; ; d = filepath.Dir(d) {
		if err := syscall.Statfs(d, &st); err == nil {
			return int64(st.Bavail) * int64(st.Bsize), true
		}
		if d == filepath.Dir(d) {
			return 0, false
		}
	}
}
