package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Outbox publishes a daemon's own events from its Log to JetStream: durable
// first, published second. It keeps in Pebble (unsynced: losing it only
// causes a republish) the index up to which every own event was
// acknowledged, and on start republishes everything after it. Each message
// carries Nats-Msg-Id = source:seq so JetStream's duplicate window drops a
// republish; consumers drop anything their Window has seen, so a republish
// older than the duplicate window is harmless too.
type Outbox struct {
	log       *Log
	js        jetstream.JetStream
	role      string
	logger    *slog.Logger
	inFlight  int
	published atomic.Uint64
	acked     chan struct{}
	verify    time.Duration
	fail      *Failpoints
	// atomic: the stream takes atomic batches (AllowAtomicPublish), read
	// when the outbox verifies the bus; batches counts those it took.
	atomic  atomic.Bool
	batches atomic.Int64
	pub     *Publisher
	// st is the stream as last read (its configuration), verified the
	// number of verifications since (Run's goroutine only).
	st       jetstream.Stream
	verified int
	// checked is when CheckBus last found the bus in order (before Run).
	checked time.Time
	// inflight and waiting are publishFrom's queues, kept between its
	// calls (Run's goroutine only) so that each call does not grow new ones.
	inflight, waiting []pending
}

// streamInfoEvery is how many verifications use one reading of the
// stream's configuration.
const streamInfoEvery = 10

// OutboxConfig configures an Outbox.
type OutboxConfig struct {
	Log    *Log
	JS     jetstream.JetStream
	Role   string // RoleSchedd, RoleNegotiator or RoleStartd
	Logger *slog.Logger
	// InFlight bounds unacknowledged publishes (default 256); it must stay
	// well below WindowSize.
	InFlight int
	// VerifyInterval is how often the outbox checks that the bus still
	// holds its last acknowledged event (default 30s); see Run.
	VerifyInterval time.Duration
	// Failpoints, when set, are the crash points the outbox honours.
	Failpoints *Failpoints
	// Publisher, when set, publishes the events the outbox would publish
	// one by one, together with other outboxes' (see Publisher).
	Publisher *Publisher
}

const metaPublished = "outbox.published"

// NewOutbox builds an outbox; Run starts it.
func NewOutbox(cfg OutboxConfig) (*Outbox, error) {
	if cfg.InFlight <= 0 {
		cfg.InFlight = 256
	}
	if cfg.InFlight > WindowSize/2 {
		return nil, fmt.Errorf("outbox in-flight %d: must be at most %d", cfg.InFlight, WindowSize/2)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.VerifyInterval <= 0 {
		cfg.VerifyInterval = 30 * time.Second
	}
	o := &Outbox{log: cfg.Log, js: cfg.JS, role: cfg.Role, logger: cfg.Logger, inFlight: cfg.InFlight, acked: make(chan struct{}, 1),
		verify: cfg.VerifyInterval, fail: cfg.Failpoints, pub: cfg.Publisher}
	p, err := cfg.Log.MetaUint(metaPublished)
	if err != nil {
		return nil, fmt.Errorf("new outbox: %w", err)
	}
	o.published.Store(p)
	return o, nil
}

// Batches is how many atomic batches the stream took from this outbox.
func (o *Outbox) Batches() int64 { return o.batches.Load() }

// Published is the log index up to which every own event is acknowledged
// by JetStream. LastIndex - Published is the outbox lag.
func (o *Outbox) Published() uint64 { return o.published.Load() }

// ErrLogBehindBus means the bus holds events of this daemon newer than its
// own log: the log lost data (a restored disk, a torn store). Reusing those
// sequence numbers would make consumers drop new events as duplicates, so
// the daemon must not run; restore the log or start the daemon afresh
// under a new name.
var ErrLogBehindBus = errors.New("events: the bus holds newer events of this daemon than its log")

// Run publishes until ctx is done. Publish failures are retried with
// backoff for as long as it runs; only a broken log ends it with an error.
//
// An acknowledged publish is not trusted alone: JetStream may lose what
// it acknowledged (a server restarted on a wiped or damaged store). At start
// and every VerifyInterval the outbox asks the stream for this daemon's
// newest event; if the stream lacks events the outbox had published, it
// publishes them again from Pebble (consumers drop what they have seen).
func (o *Outbox) Run(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	lastVerify := o.checked
	for {
		if time.Since(lastVerify) >= o.verify {
			if err := o.verifyBus(ctx); err != nil {
				if errors.Is(err, ErrLogBehindBus) {
					return err
				}
				if ctx.Err() != nil {
					return nil
				}
				o.logger.Debug("verify bus", "source", o.log.Source(), "err", err)
			}
			lastVerify = time.Now()
		}
		pub := o.published.Load()
		wctx, cancel := context.WithTimeout(ctx, o.verify)
		err := o.log.Wait(wctx, pub)
		cancel()
		if err != nil {
			if errors.Is(err, ErrLogClosed) || ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, context.DeadlineExceeded) {
				continue // time to verify the bus again
			}
			return err
		}
		next, err := o.publishFrom(ctx, pub)
		if next > pub {
			o.fail.Hit("outbox-after-publish")
			o.log.forgetRecent(next)
			o.published.Store(next)
			if err := o.log.SetMetaUint(metaPublished, next, false); err != nil {
				return err
			}
			select {
			case o.acked <- struct{}{}:
			default:
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) {
				return err // a broken log: retrying cannot help
			}
			o.logger.Warn("publish events; will retry", "source", o.log.Source(), "seq", next, "err", err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
	}
}

// Running is an outbox running in the background (Start). It outlives
// the daemon's other goroutines, so that it can flush at shutdown.
type Running struct {
	o      *Outbox
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Start runs the outbox (Run) in the background until Stop or Cancel.
func (o *Outbox) Start() *Running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{o: o, cancel: cancel, done: make(chan struct{})}
	go func() { r.err = o.Run(ctx); close(r.done) }()
	return r
}

// Watch returns the outbox's error when it stops on its own (the bus is
// ahead of the log), or nil once ctx is done. A daemon runs it among its
// goroutines: an outbox that stops stops the daemon, whose events would
// otherwise reach no one.
func (r *Running) Watch(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return nil
	}
}

// Stop publishes what the log holds beyond the bus, for up to five
// seconds (an outbox that stopped on its own is not flushed: nothing
// would), ends the outbox and returns the error it stopped with, if any.
func (r *Running) Stop() error {
	select {
	case <-r.done:
	default:
		fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := r.o.Flush(fctx); err != nil {
			r.o.logger.Warn("outbox not flushed at shutdown; it republishes on restart", "err", err)
		}
		fcancel()
	}
	r.cancel()
	<-r.done
	return r.err
}

// Cancel ends the outbox without flushing it or waiting for it: a
// daemon that failed to start.
func (r *Running) Cancel() { r.cancel() }

// CheckBus compares the bus with the log once, before the daemon serves:
// a log behind the bus (ErrLogBehindBus) must stop the daemon before it
// records anything, or what it records would reuse sequence numbers the
// bus already has (and consumers would drop it as seen). Other failures
// (the bus unreachable) are left to Run, which retries them. Call it
// before Run.
func (o *Outbox) CheckBus(ctx context.Context) error {
	err := o.verifyBus(ctx)
	if errors.Is(err, ErrLogBehindBus) {
		return err
	}
	if err == nil {
		o.checked = time.Now() // Run need not look again at once
	}
	return nil
}

// verifyBus compares the stream's newest event of this daemon with what
// the outbox has published, and rewinds the outbox if the bus forgot.
func (o *Outbox) verifyBus(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The stream's configuration (batches allowed, MaxAge) is read again
	// every streamInfoEvery verifications, not every time: ten thousand
	// startds asked the server for the stream's whole state 333 times a
	// second. What the verification asks about the daemon's events goes
	// to the stream by name each time.
	if o.st == nil || o.verified%streamInfoEvery == 0 {
		st, err := o.js.Stream(ctx, StreamName)
		if err != nil {
			return fmt.Errorf("verify bus: %w", err)
		}
		o.st = st
		o.atomic.Store(st.CachedInfo().Config.AllowAtomicPublish)
	}
	o.verified++
	st := o.st
	var busSeq uint64
	m, err := st.GetLastMsgForSubject(ctx, string(AllOfSource(o.role, o.log.Source())))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return fmt.Errorf("verify bus: %w", err)
	default:
		e, err := Decode(m.Data)
		if err != nil {
			return fmt.Errorf("verify bus: %w", err)
		}
		busSeq = e.Seq
	}
	if busSeq > o.log.LastSeq() {
		return fmt.Errorf("%s: the bus holds its events up to seq %d, its log %s only up to seq %d "+
			"(another daemon of this name runs, or ran, with another home; or the log lost events: its home was restored "+
			"from an older backup, or its disk lost writes): give each daemon a name of its own (--name), or "+
			"restore the log from the same moment as the bus, or run the daemon under a new name with an empty home: %w",
			o.log.Source(), busSeq, o.log.Dir(), o.log.LastSeq(), ErrLogBehindBus)
	}
	pub := o.published.Load()
	acked, err := o.log.LastOwnAtOrBefore(pub)
	if err != nil {
		return err
	}
	if busSeq >= acked {
		return o.healGap(ctx, st)
	}
	// The stream's newest event of this daemon is older than the newest
	// acknowledged one. After a heal (below) that is expected: the events
	// published again follow the newer ones in the stream. Lost is only
	// what the stream lacks.
	if on, err := o.onBus(ctx, st, acked, true); err != nil {
		return err
	} else if on {
		return o.healGap(ctx, st)
	}
	idx, err := o.log.IndexOfSeq(busSeq)
	if err != nil {
		return err
	}
	o.logger.Warn("the bus lost acknowledged events; publishing them again from the log", "source", o.log.Source(),
		"bus_seq", busSeq, "acked_seq", acked)
	o.published.Store(idx)
	return o.log.SetMetaUint(metaPublished, idx, false)
}

// retentionMargin is how much younger than the stream's MaxAge an event
// must be for its absence to count as a loss (clocks of hosts differ, and
// the server ages messages by their publish time).
const retentionMargin = 10 * time.Minute

// healGap finds events the bus lost below its newest one: a server that
// came back with a wiped store after this daemon had published more than
// the bus kept, and published newer events before the outbox looked. The
// stream's first event of this daemon is then later than the oldest one
// the stream's retention still covers; the outbox publishes again from
// there (consumers drop what they have seen).
func (o *Outbox) healGap(ctx context.Context, st jetstream.Stream) error {
	m, err := st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(string(AllOfSource(o.role, o.log.Source()))))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("verify bus: %w", err)
	}
	first, err := Decode(m.Data)
	if err != nil {
		return fmt.Errorf("verify bus: %w", err)
	}
	var keep int64 // events older than this may have aged out
	if age := st.CachedInfo().Config.MaxAge; age > 0 {
		keep = time.Now().Add(-age + retentionMargin).UnixNano()
	}
	if first.Seq <= 1 || first.Time <= keep {
		return nil // nothing below it, or what is below it aged out
	}
	from, err := o.log.OldestOwnBetween(first.Seq, keep)
	if err != nil || from == 0 {
		return err
	}
	// Healed already: the events published again follow first in the
	// stream.
	var fromSeq uint64
	if err := o.log.Scan(from, func(_ uint64, e Event) error { fromSeq = e.Seq; return ErrStop }); err != nil {
		return fmt.Errorf("verify bus: %w", err)
	}
	if on, err := o.onBus(ctx, st, fromSeq, false); err != nil || on {
		return err
	}
	o.logger.Warn("the bus lost acknowledged events below its newest; publishing them again from the log", "source", o.log.Source(),
		"bus_first_seq", first.Seq)
	o.published.Store(from - 1)
	return o.log.SetMetaUint(metaPublished, from-1, false)
}

// onBus reports whether the stream holds own event seq: whether the
// stream's newest message on the event's subject is that event, or, when
// orLater, a later one of this daemon (which says nothing of seq when
// the subject had several events).
func (o *Outbox) onBus(ctx context.Context, st jetstream.Stream, seq uint64, orLater bool) (bool, error) {
	idx, ev, err := o.log.OwnEvent(seq)
	if err != nil || idx == 0 {
		return false, err
	}
	m, err := st.GetLastMsgForSubject(ctx, Subject(o.role, ev))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("verify bus: %w", err)
	}
	e, err := Decode(m.Data)
	if err != nil {
		return false, fmt.Errorf("verify bus: %w", err)
	}
	return e.Source == o.log.Source() && (e.Seq == seq || orLater && e.Seq > seq), nil
}

type pending struct {
	idx uint64
	e   Event
	msg *nats.Msg
	f   ackFuture
}

// EventMsg is the JetStream message an outbox publishes for event e of a
// daemon of role, e encoded as data: on the event's subject, with the
// Nats-Msg-Id that lets the stream drop it when it is published again.
func EventMsg(role string, e Event, data []byte) *nats.Msg {
	// The header's key is canonical already (Header.Set would make it so).
	return &nats.Msg{Subject: Subject(role, e), Data: data, Header: nats.Header{jetstream.MsgIDHeader: {MsgID(e)}}}
}

// Own events waiting to be published go to JetStream as one atomic batch
// (Nats-Batch-Id) when there are at least batchMin of them, in batches of
// at most batchMax. A stream that fsyncs every write (sync_interval:
// always) then fsyncs a batch about twice instead of once per event: on
// 2 vCPUs, 5,400 events/s one by one against 15,000 in batches of 50 and
// 40,000 in batches of 200. A batch costs a few milliseconds of its own
// (the server stages it in a store of its own), so a smaller backlog goes
// one by one, several in flight at once, as before. A batch the stream
// refuses stores nothing; its events are then published one by one.
const (
	batchMin = 32
	batchMax = 500
)

// publishFrom publishes the own events after index from, up to inFlight at
// a time (or in batches), and returns the index up to which all were
// acknowledged.
func (o *Outbox) publishFrom(ctx context.Context, from uint64) (uint64, error) {
	acked := from
	inflight, waiting := o.inflight[:0], o.waiting[:0]
	defer func() {
		// Keep small queues for the next call, without what they held.
		o.inflight, o.waiting = reuse(inflight), reuse(waiting)
	}()
	wait := func() error {
		for _, p := range inflight {
			select {
			case <-p.f.Ok():
				acked = p.idx
			case err := <-p.f.Err():
				return fmt.Errorf("publish %s: %w", p.e, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		inflight = inflight[:0]
		return nil
	}
	send := func() error {
		if len(waiting) == 0 {
			return nil
		}
		if o.atomic.Load() && len(waiting) >= batchMin {
			// What is in flight first, so acked moves in order.
			if err := wait(); err != nil {
				return err
			}
			if o.publishBatch(ctx, waiting) {
				acked = waiting[len(waiting)-1].idx
				waiting = waiting[:0]
				return nil
			}
		}
		for _, p := range waiting {
			var f ackFuture
			var err error
			if o.pub != nil {
				f, err = o.pub.publish(ctx, p.msg)
			} else {
				f, err = o.js.PublishMsgAsync(p.msg)
			}
			if err != nil {
				return fmt.Errorf("publish %s: %w", p.e, err)
			}
			p.f = f
			inflight = append(inflight, p)
			if len(inflight) >= o.inFlight {
				if err := wait(); err != nil {
					return err
				}
			}
		}
		waiting = waiting[:0]
		return nil
	}
	last := from
	visit := func(idx uint64, e Event, data []byte) error {
		last = idx
		if e.Source != o.log.Source() {
			if len(inflight) == 0 && len(waiting) == 0 {
				acked = idx // an input record: nothing to publish
			}
			return nil
		}
		if data == nil {
			var err error
			if data, err = Encode(e); err != nil {
				return err
			}
		}
		waiting = append(waiting, pending{idx: idx, e: e, msg: EventMsg(o.role, e, data)})
		if len(waiting) >= batchMax {
			return send()
		}
		return nil
	}
	// The newest records come from memory as Append wrote them; older ones
	// (a restart, a bus that was down) from Pebble.
	done, err := o.log.scanRecent(from, visit)
	if !done {
		err = o.log.Scan(from+1, func(idx uint64, e Event) error { return visit(idx, e, nil) })
	}
	if err == nil {
		err = send()
	}
	if err == nil {
		err = wait()
	}
	if err == nil && len(inflight) == 0 && len(waiting) == 0 && last > acked {
		acked = last
	}
	return acked, err
}

// reuse returns ps emptied for another call, or nil when it grew beyond a
// few pending events (a backlog's queue is not kept).
func reuse(ps []pending) []pending {
	if cap(ps) > 64 {
		return nil
	}
	ps = ps[:cap(ps)]
	clear(ps)
	return ps[:0]
}

// publishBatch publishes ps as one atomic batch and reports whether the
// stream took it. If not (a republish after a crash holds events the
// stream has, which fails a batch; the stream does not take batches; the
// bus is down), the stream stored none of it.
func (o *Outbox) publishBatch(ctx context.Context, ps []pending) bool {
	msgs := make([]*nats.Msg, len(ps))
	for i, p := range ps {
		msgs[i] = p.msg
	}
	if _, ok := publishAtomic(ctx, o.js, msgs, &o.atomic, o.logger, o.log.Source()); !ok {
		return false
	}
	o.batches.Add(1)
	return true
}

// publishAtomic publishes msgs as one atomic batch and returns the
// commit's acknowledgement, or false when the stream did not take the
// batch (and stored none of it). A stream that does not take batches
// clears allowed.
func publishAtomic(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg, allowed *atomic.Bool, logger *slog.Logger, who string) (*jetstream.PubAck, bool) {
	id := nats.NewInbox()[len("_INBOX."):] // unique, and short enough (64)
	nc := js.Conn()
	for i, msg := range msgs {
		// A copy: should the batch be refused, msg goes alone, without
		// the batch's headers.
		// Room for the batch's headers from the start; their keys are
		// canonical already.
		h := make(nats.Header, len(msg.Header)+3)
		maps.Copy(h, msg.Header)
		h[headerBatchID] = []string{id}
		h[headerBatchSeq] = []string{strconv.Itoa(i + 1)}
		m := &nats.Msg{Subject: msg.Subject, Data: msg.Data, Header: h}
		if i < len(msgs)-1 {
			if err := nc.PublishMsg(m); err != nil {
				return nil, false
			}
			continue
		}
		h[headerBatchCommit] = []string{"1"}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ack, err := js.PublishMsg(cctx, m)
		cancel()
		var apiErr *jetstream.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.ErrorCode == atomicPublishDisabled:
			allowed.Store(false)
			return nil, false
		case err != nil:
			logger.Debug("batch publish refused; publishing one by one", "source", who, "events", len(msgs), "err", err)
			return nil, false
		case ack.Sequence == 0:
			return nil, false
		}
		return ack, true
	}
	return nil, false
}

// The headers of JetStream's atomic batch publish, and the error code of a
// stream that does not take batches.
const (
	headerBatchID         = "Nats-Batch-Id"
	headerBatchSeq        = "Nats-Batch-Sequence"
	headerBatchCommit     = "Nats-Batch-Commit"
	atomicPublishDisabled = 10174
)

// Flush waits until every event appended before the call is acknowledged,
// or ctx is done. Shutdown calls it before closing the log.
func (o *Outbox) Flush(ctx context.Context) error {
	target := o.log.LastIndex()
	for o.published.Load() < target {
		select {
		case <-o.acked:
		case <-ctx.Done():
			return fmt.Errorf("flush outbox of %s at %d/%d: %w", o.log.Source(), o.published.Load(), target, ctx.Err())
		}
	}
	return nil
}
