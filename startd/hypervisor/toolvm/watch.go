package toolvm

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

// Observation is what one poll of the tool found about a VM.
type Observation int

// Observations.
const (
	Running  Observation = iota // the tool lists the VM as running (or blocked)
	Paused                      // listed, paused
	Vanished                    // no longer listed: the guest powered off (or someone ended it)
	Crashed                     // listed as crashed
)

func (o Observation) String() string {
	switch o {
	case Running:
		return "running"
	case Paused:
		return "paused"
	case Vanished:
		return "vanished"
	case Crashed:
		return "crashed"
	}
	return fmt.Sprintf("observation(%d)", int(o))
}

// Defaults for WatchConfig's zero values.
const (
	DefaultInterval  = 60 * time.Second // HTCondor's VM_STATUS_INTERVAL
	DefaultMaxErrors = 5                // HTCondor's VM_STATUS_MAX_ERROR
	pollTimeout      = 5 * time.Minute  // HTCondor's VM_GAHP_REQ_TIMEOUT
)

// WatchConfig configures a Watcher.
type WatchConfig struct {
	// Interval is how often the tool is asked (VM_STATUS_INTERVAL).
	Interval time.Duration
	// MaxErrors failed polls in a row end the watch with an error
	// (VM_STATUS_MAX_ERROR).
	MaxErrors int
	// Poll asks the tool about the VM.
	Poll func(ctx context.Context) (Observation, error)
	// Ended is called, once, when a poll finds the VM vanished or crashed
	// while nobody was stopping it. It returns how the VM ended (a
	// vanished VM normally powered off) and does whatever the driver
	// must do then (destroy a crashed domain, commit a snapshot). An
	// error ends the watch with that error.
	Ended func(ctx context.Context, o Observation) (hypervisor.Exit, error)
	// Logger receives the watcher's records.
	Logger *slog.Logger
}

// Watcher watches one VM: it owns one goroutine, from Start until the VM
// has ended (a poll saw it go, or Settle was called) or Detach. Its
// methods are safe for concurrent use.
type Watcher struct {
	cfg WatchConfig
	log *slog.Logger

	mu       sync.Mutex
	stopping string // non-empty: the VM is being ended on purpose, with this reason
	detached bool
	held     int // Hold calls not yet released: polls are skipped
	exit     hypervisor.Exit
	err      error
	ended    bool

	// base bounds the tool commands the goroutine runs; it ends when the
	// watch does, so that Detach and Settle never wait out a slow tool.
	base       context.Context
	cancelBase context.CancelFunc
	started    bool

	hurry     chan time.Duration
	detachReq chan struct{}
	detachOne sync.Once
	done      chan struct{} // closed when exit and err are final
	monDone   chan struct{} // closed when the goroutine has returned
}

// NewWatcher returns a Watcher; Start starts it.
func NewWatcher(cfg WatchConfig) *Watcher {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxErrors <= 0 {
		cfg.MaxErrors = DefaultMaxErrors
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	base, cancel := context.WithCancel(context.Background())
	return &Watcher{
		cfg: cfg, log: cfg.Logger, base: base, cancelBase: cancel,
		hurry:     make(chan time.Duration, 1),
		detachReq: make(chan struct{}),
		done:      make(chan struct{}),
		monDone:   make(chan struct{}),
	}
}

// Start starts the watching goroutine.
func (w *Watcher) Start() {
	w.mu.Lock()
	w.started = true
	w.mu.Unlock()
	go w.run()
}

// Done is closed once the VM has ended and Wait's answer is final.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Detached reports whether Detach was called.
func (w *Watcher) Detached() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.detached
}

// Stopping marks the VM as being ended on purpose: if it goes now, it
// ended with reason, not by a guest power-off. "" clears the mark (a
// checkpoint that failed and left the VM running).
func (w *Watcher) Stopping(reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopping = reason
}

// IsStopping reports whether Stopping was set.
func (w *Watcher) IsStopping() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopping != ""
}

// Hold suspends the watch until release is called: the driver is taking
// the VM away and back (a VMware suspend and resume for a checkpoint that
// lets the VM continue), and a poll in between must not see it vanished.
func (w *Watcher) Hold() (release func()) {
	w.mu.Lock()
	w.held++
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			w.held--
			w.mu.Unlock()
		})
	}
}

// Hurry makes the watcher poll every d from now on (while a stop waits for
// a guest to power off), and once at once.
func (w *Watcher) Hurry(d time.Duration) {
	select {
	case w.hurry <- d:
	default:
	}
}

// Settle ends the watch: the driver has ended the VM itself (killed,
// checkpointed) and exit says how. It is a no-op once the VM has ended.
// It returns once the watching goroutine has.
func (w *Watcher) Settle(exit hypervisor.Exit) {
	w.finish(exit, nil)
	w.mu.Lock()
	started := w.started
	w.mu.Unlock()
	if started {
		<-w.monDone
	}
}

func (w *Watcher) finish(exit hypervisor.Exit, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return
	}
	w.ended, w.exit, w.err = true, exit, err
	close(w.done)
	w.cancelBase()
}

// Wait blocks until the VM has ended and tells how, or until ctx ends. It
// returns an error wrapping hypervisor.ErrDetached after Detach, and the
// watch's error after MaxErrors failed polls.
func (w *Watcher) Wait(ctx context.Context) (hypervisor.Exit, error) {
	select {
	case <-w.done:
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.exit, w.err
	case <-w.monDone:
		select {
		case <-w.done:
			return w.Wait(ctx)
		default:
		}
		return hypervisor.Exit{}, hypervisor.ErrDetached
	case <-ctx.Done():
		return hypervisor.Exit{}, ctx.Err()
	}
}

// Exit returns how the VM ended; ok is false while it has not.
func (w *Watcher) Exit() (exit hypervisor.Exit, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.exit, w.ended
}

// Detach ends the watch without ending the VM and waits for the goroutine.
func (w *Watcher) Detach() {
	w.detachOne.Do(func() {
		close(w.detachReq)
		w.cancelBase()
	})
	w.mu.Lock()
	started := w.started
	w.mu.Unlock()
	if started {
		<-w.monDone
	}
}

func (w *Watcher) run() {
	defer close(w.monDone)
	t := time.NewTimer(w.cfg.Interval)
	defer t.Stop()
	interval := w.cfg.Interval
	failures := 0
	for {
		select {
		case <-w.done:
			return
		case <-w.detachReq:
			w.mu.Lock()
			w.detached = true
			w.mu.Unlock()
			return
		case d := <-w.hurry:
			interval = min(interval, d)
		case <-t.C:
		}
		t.Reset(interval)
		w.mu.Lock()
		held := w.held > 0
		w.mu.Unlock()
		if held {
			continue
		}
		ctx, cancel := context.WithTimeout(w.base, pollTimeout)
		obs, err := w.cfg.Poll(ctx)
		cancel()
		w.mu.Lock()
		held = w.held > 0
		w.mu.Unlock()
		if held {
			continue // the answer may predate the Hold
		}
		if err != nil {
			if w.base.Err() != nil {
				continue // the watch ended meanwhile
			}
			failures++
			w.log.Warn("status check failed", "err", err, "failures", failures)
			if failures >= w.cfg.MaxErrors {
				w.finish(hypervisor.Exit{}, fmt.Errorf("%d status checks in a row failed, the last: %w", failures, err))
				return
			}
			continue
		}
		failures = 0
		w.log.Debug("status check", "status", obs.String())
		if obs != Vanished && obs != Crashed {
			continue
		}
		w.mu.Lock()
		reason := w.stopping
		w.mu.Unlock()
		if reason != "" {
			w.finish(hypervisor.Exit{Reason: reason}, nil)
			return
		}
		ctx, cancel = context.WithTimeout(w.base, pollTimeout)
		exit, err := w.cfg.Ended(ctx, obs)
		cancel()
		w.finish(exit, err)
		return
	}
}
