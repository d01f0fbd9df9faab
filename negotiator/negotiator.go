package negotiator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// Config configures a Negotiator.
type Config struct {
	Name   string // default "negotiator"
	Dir    string
	Bus    *events.Bus
	Logger *slog.Logger
	Clock  func() time.Time
	// Interval is the longest time between cycles (NEGOTIATOR_INTERVAL);
	// cycles also run whenever a job becomes idle or a slot free.
	Interval time.Duration
	// MatchTimeout is how long an unsettled match reserves its slot
	// (MATCH_TIMEOUT, default 120s).
	MatchTimeout time.Duration
	// AdLifetime: a slot ad not refreshed for this long is ignored
	// (CLASSAD_LIFETIME; default 60s).
	AdLifetime time.Duration
	// LeaseInterval is how often the leader lease is renewed or, standing
	// by, tried (default 2s; the lease itself lasts the bucket's TTL).
	LeaseInterval time.Duration
	// Failpoints arms crash points for fault-injection tests (nil: none).
	Failpoints *events.Failpoints
	// MinFreeBytes is the free disk the event log keeps (LOG_MIN_FREE_MB).
	MinFreeBytes int64
	// Metrics is where the negotiator registers its Prometheus collectors
	// (see Metrics); nil: no metrics.
	Metrics prometheus.Registerer
}

// Negotiator is the I/O shell around the matchmaking core.
type Negotiator struct {
	cfg    Config
	logger *slog.Logger
	log    *events.Log
	loop   *events.Loop
	st     *State

	metrics *Metrics

	mu    sync.Mutex
	slots map[string]Slot // collector key -> slot
	// candidates is how many slots the last cycle could match (for the
	// next one's allocation).
	candidates int
	kick       chan struct{}
	ready      chan struct{}
	active     atomic.Bool // holds the leader lease
}

// New builds a negotiator; Run starts it.
func New(cfg Config) (*Negotiator, error) {
	if cfg.Name == "" {
		cfg.Name = "negotiator"
	}
	if err := events.CheckName("negotiator", cfg.Name); err != nil {
		return nil, err
	}
	if cfg.Dir == "" || cfg.Bus == nil {
		return nil, errors.New("negotiator: Dir and Bus are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 60 * time.Second
	}
	if cfg.MatchTimeout <= 0 {
		cfg.MatchTimeout = 120 * time.Second
	}
	if cfg.AdLifetime <= 0 {
		cfg.AdLifetime = 60 * time.Second
	}
	if cfg.LeaseInterval <= 0 {
		cfg.LeaseInterval = 2 * time.Second
	}
	n := &Negotiator{cfg: cfg, logger: cfg.Logger.With("daemon", "negotiator"), slots: map[string]Slot{},
		kick: make(chan struct{}, 1), ready: make(chan struct{})}
	var err error
	if n.metrics, err = newMetrics(cfg.Metrics, n); err != nil {
		return nil, fmt.Errorf("negotiator %s metrics: %w", cfg.Name, err)
	}
	return n, nil
}

// Ready is closed once the negotiator runs.
func (n *Negotiator) Ready() <-chan struct{} { return n.ready }

// Replay rebuilds a negotiator's state from its log.
func Replay(l *events.Log, name string, matchTimeout time.Duration, until uint64) (*State, error) {
	defer events.RaiseGC()()
	st := NewState(name, matchTimeout.Nanoseconds())
	err := l.Scan(1, func(idx uint64, e events.Event) error {
		if until > 0 && idx > until {
			return events.ErrStop
		}
		Apply(st, e)
		return nil
	})
	return st, err
}

// Run negotiates until ctx is done.
func (n *Negotiator) Run(ctx context.Context) error {
	l, err := events.OpenLog(filepath.Join(n.cfg.Dir, "log"), n.cfg.Name, events.LogOptions{Logger: n.logger})
	if err != nil {
		return err
	}
	defer l.Close()
	n.log = l
	if n.st, err = Replay(l, n.cfg.Name, n.cfg.MatchTimeout, 0); err != nil {
		return fmt.Errorf("rebuild negotiator %s: %w", n.cfg.Name, err)
	}
	n.loop = events.NewLoop(events.LoopConfig{Log: l, Apply: func(e events.Event) { Apply(n.st, e) }, Clock: n.cfg.Clock, Failpoints: n.cfg.Failpoints,
		MinFree: n.cfg.MinFreeBytes})
	outbox, err := events.NewOutbox(events.OutboxConfig{Log: l, JS: n.cfg.Bus.JS, Role: events.RoleNegotiator, Logger: n.logger, Failpoints: n.cfg.Failpoints})
	if err != nil {
		return err
	}
	// A log behind the bus stops the negotiator before it records anything.
	if err := outbox.CheckBus(ctx); err != nil {
		return err
	}
	n.metrics.attach(outbox)
	defer n.metrics.detach()
	jobs := len(n.st.Jobs)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.loop.Run(gctx) })
	// An outbox that stops on its own (the bus is ahead of the log) stops
	// the negotiator: its matches would reach no schedd.
	ob := outbox.Start()
	g.Go(func() error { return ob.Watch(gctx) })
	g.Go(func() error {
		return events.Consume(gctx, n.cfg.Bus.JS, events.ConsumerConfig{
			Durable:    events.DaemonConsumer(events.RoleNegotiator, n.cfg.Name),
			Filters:    []events.SubjectFilter{events.AllOfRole(events.RoleSchedd)},
			Logger:     n.logger,
			Handle:     n.handleSchedd,
			Failpoints: n.cfg.Failpoints,
		})
	})
	g.Go(func() error { return n.watchSlots(gctx) })
	became := make(chan struct{}, 1)
	g.Go(func() error { return n.lead(gctx, n.cfg.LeaseInterval, became) })
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-became:
				n.trigger()
			}
		}
	})
	g.Go(func() error { return n.cycles(gctx) })
	n.logger.Info("negotiator running", "jobs", jobs, "interval", n.cfg.Interval)
	close(n.ready)
	err = g.Wait()
	if oerr := ob.Stop(); err == nil {
		err = oerr
	}
	return err
}

func (n *Negotiator) trigger() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// handleSchedd keeps schedd events as input records and triggers a cycle
// when one of them may have given a job or a slot back to matching.
func (n *Negotiator) handleSchedd(ctx context.Context, evs []events.Event) error {
	open := false
	_, err := n.loop.Do(ctx, func(tx *events.Tx) error {
		for _, e := range evs {
			if e.Schedd == "" || !n.log.Consume(e.Source, e.Seq) {
				continue
			}
			if !relevant(e.Type) {
				continue // marked applied; nothing in it concerns matching
			}
			tx.Emit(e)
			open = open || opens(e.Type)
		}
		return nil
	})
	if err == nil && open {
		n.trigger()
	}
	return err
}

// opens lists the schedd event types after which a cycle may find a match
// it could not before: a job idle again, a slot or match given back. The
// others (JobMatched, JobStarted, JobHeld) only take jobs and slots from
// matching; a cycle after them would look at every slot to find nothing,
// which at 100,000 slots cost a CPU while a pool filled up.
func opens(typ string) bool {
	switch typ {
	case events.JobMatched, events.JobStarted, events.JobHeld:
		return false
	}
	return true
}

// relevant lists the schedd event types that change what may be matched.
func relevant(typ string) bool {
	switch typ {
	case events.ClusterSubmitted, events.JobMatched, events.MatchRejected, events.ClaimFailed,
		events.JobStarted, events.JobEvicted, events.JobHeld, events.JobReleased,
		events.ClaimReleased, events.ClaimLost, events.JobCompleted, events.JobRemoved:
		return true
	}
	return false
}

// watchSlots follows the machine ads in the collector.
func (n *Negotiator) watchSlots(ctx context.Context) error {
	for {
		w, err := n.cfg.Bus.Collector.Watch(ctx, "slot.>", jetstream.IgnoreDeletes())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			n.logger.Warn("watch collector; will retry", "err", err)
			select {
			case <-time.After(time.Second):
				continue
			case <-ctx.Done():
				return nil
			}
		}
		n.follow(ctx, w)
		_ = w.Stop()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// follow applies the watcher's updates to the slots until ctx ends, the
// watcher closes, or it has been silent for half an ad's lifetime: every
// startd refreshes its ads well within that, so a silent watcher has lost
// its consumer (a NATS server of a cluster went away) and is replaced, or
// the negotiator would match stale ads and, once they aged out, none.
// Sooner than that, a watcher silent for half a check's interval is
// replaced if the collector bucket's last sequence is below the last one
// it saw: every server of a cluster restarted, losing the bucket's
// contents (kept in memory), which begin again from sequence 1 (or
// vmpool nats created the bucket anew). The watcher goes on from the old
// last sequence, which the bucket reaches again only after as many puts,
// and saw nothing meanwhile: after a whole cluster's restart no job was
// matched for 30 s.
func (n *Negotiator) follow(ctx context.Context, w jetstream.KeyWatcher) {
	silence := n.cfg.AdLifetime / 2
	every := max(silence/4, 10*time.Millisecond)
	check := time.NewTicker(every)
	defer check.Stop()
	last := time.Now()
	var seen uint64 // the last sequence of the bucket the watcher gave
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			if quiet := time.Since(last); quiet > every/2 && seen > 0 && quiet <= silence {
				if at, ok := n.collectorLastSeq(ctx); ok && at < seen {
					n.logger.Warn("the collector bucket began again (its NATS servers restarted?); watching it again", "seq", at)
					return
				}
			}
			if time.Since(last) > silence {
				n.mu.Lock()
				known := len(n.slots)
				n.mu.Unlock()
				if known > 0 {
					n.logger.Warn("collector watch silent; watching again", "silent", time.Since(last).Round(time.Second))
				}
				return
			}
		case ent, ok := <-w.Updates():
			if !ok {
				return
			}
			last = time.Now()
			if ent == nil {
				n.trigger() // initial values done
				continue
			}
			seen = max(seen, ent.Revision())
			if ent.Operation() != jetstream.KeyValuePut {
				n.mu.Lock()
				delete(n.slots, ent.Key())
				n.mu.Unlock()
				continue
			}
			// Decoded outside the lock: a cycle reading the slots does
			// not hold up the watch (whose subscription NATS cuts off
			// when it falls too far behind).
			s, ok, err := slotFromJSON(ent.Value())
			if err != nil {
				n.logger.Warn("unreadable machine ad", "key", ent.Key(), "err", err)
				continue
			}
			if !ok {
				continue
			}
			s.Revision = ent.Revision()
			n.mu.Lock()
			old, had := n.slots[ent.Key()]
			n.slots[ent.Key()] = s
			n.mu.Unlock()
			if freed(old, had, s) || n.refusedBefore(old, had, s) {
				n.trigger()
			}
		}
	}
}

// collectorLastSeq is the collector bucket's last sequence; ok is false
// when the bus does not say (within a few seconds).
func (n *Negotiator) collectorLastSeq(ctx context.Context) (seq uint64, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := n.cfg.Bus.Collector.Status(ctx)
	if err != nil {
		return 0, false
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || bs.StreamInfo() == nil {
		return 0, false
	}
	return bs.StreamInfo().State.LastSeq, true
}

// slotFromJSON reads a slot from its machine ad in the collector. It
// first reads only what SlotFromAd needs, and the whole ad only for a slot
// a cycle may match (Slot.Candidate): most ads a busy pool puts say that
// a slot is claimed, and reading all of each was 2% of a full-size match
// benchmark's CPU. A slot that is not a candidate keeps no ad (Ad is nil):
// nothing matches against it, its fields say all a cycle reads of it, and
// 100,000 claimed slots' partial ads were a tenth of the live heap every
// garbage collection scanned. A slot is only ever replaced whole, from its
// next ad.
func slotFromJSON(data []byte) (Slot, bool, error) {
	ad, err := classad.UnmarshalJSONOnly(data, slotAttr)
	if err != nil {
		return Slot{}, false, err
	}
	s, ok := SlotFromAd(ad)
	if !ok || !s.Candidate() {
		s.Ad = nil
		return s, ok, nil
	}
	var whole classad.Ad
	if err := whole.UnmarshalJSON(data); err != nil {
		return Slot{}, false, err
	}
	s, ok = SlotFromAd(&whole)
	return s, ok, nil
}

// slotAttrs are the attributes SlotFromAd reads.
var slotAttrs = []string{"Name", "StartdName", "State", "VmpoolClaims", "LastHeardFrom", "Machine", "CurrentRank",
	"VmpoolClaimMemory", "VmpoolPreempting", "Rank"}

func slotAttr(name string) bool {
	for _, a := range slotAttrs {
		// Lengths first: most names differ in it, and an ad's names
		// match only when equal but for ASCII case.
		if len(a) == len(name) && strings.EqualFold(a, name) {
			return true
		}
	}
	return false
}

// refusedBefore reports whether s is the first ad of an unclaimed slot
// since a claim of it failed: it makes the slot matchable again.
func (n *Negotiator) refusedBefore(old Slot, had bool, s Slot) bool {
	if s.State != "Unclaimed" || n.loop == nil {
		return false
	}
	var first bool
	n.loop.View(func() {
		rev, ok := n.st.Refused[s.Name]
		first = ok && s.Revision > rev && (!had || old.Revision <= rev)
	})
	return first
}

// freed reports whether an ad update may have made a slot matchable: it
// is unclaimed now and was not, or its claim count moved on.
func freed(old Slot, had bool, cur Slot) bool {
	if cur.State != "Unclaimed" {
		return false
	}
	if !had {
		return true
	}
	return old.State != "Unclaimed" || old.Claims != cur.Claims
}

// liveSlots are the slot ads a cycle may match (Slot.Candidate) heard
// from within AdLifetime (the bucket's TTL removes dead ones, but a
// watcher is not told when), in no particular order: DecideCycle sorts
// what it uses.
func (n *Negotiator) liveSlots(now time.Time) []Slot {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Slot, 0, n.candidates)
	for _, s := range n.slots {
		if !s.Candidate() || now.Unix()-s.Heard > int64(n.cfg.AdLifetime/time.Second) {
			continue
		}
		out = append(out, s)
	}
	n.candidates = len(out)
	return out
}

func (n *Negotiator) cycles(ctx context.Context) error {
	t := time.NewTicker(n.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.kick:
		case <-t.C:
		}
		if !n.active.Load() {
			continue // a standby keeps its state current but does not match
		}
		start := time.Now()
		evs, err := n.loop.DoEvents(ctx, func(now time.Time) ([]events.Event, error) {
			if !n.st.HasIdle() {
				return nil, nil // nothing to match: no need to look at the slots
			}
			slots := n.liveSlots(now)
			if len(slots) == 0 {
				return nil, nil // nowhere to match: no need to order the jobs
			}
			return DecideCycle(n.st, slots, now), nil
		})
		if errors.Is(err, events.ErrDiskFull) {
			// Nothing matched is recorded, so nothing is lost: the next
			// cycle tries again once space is freed.
			n.logger.Warn("negotiation cycle skipped", "err", err)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		n.metrics.cycled(time.Since(start), len(evs))
		for _, e := range evs {
			var p events.MatchedPayload
			_ = e.Decode(&p)
			n.logger.Info("matched", "job", e.Schedd+"/"+e.Job().String(), "slot", p.Slot)
		}
	}
}
