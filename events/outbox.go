package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	js        jetstream.Publisher
	role      string
	logger    *slog.Logger
	inFlight  int
	published atomic.Uint64
	acked     chan struct{}
}

// OutboxConfig configures an Outbox.
type OutboxConfig struct {
	Log    *Log
	JS     jetstream.Publisher
	Role   string // RoleSchedd, RoleNegotiator or RoleStartd
	Logger *slog.Logger
	// InFlight bounds unacknowledged publishes (default 256); it must stay
	// well below WindowSize.
	InFlight int
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
	o := &Outbox{log: cfg.Log, js: cfg.JS, role: cfg.Role, logger: cfg.Logger, inFlight: cfg.InFlight, acked: make(chan struct{}, 1)}
	p, err := cfg.Log.MetaUint(metaPublished)
	if err != nil {
		return nil, fmt.Errorf("new outbox: %w", err)
	}
	o.published.Store(p)
	return o, nil
}

// Published is the log index up to which every own event is acknowledged
// by JetStream. LastIndex - Published is the outbox lag.
func (o *Outbox) Published() uint64 { return o.published.Load() }

// Run publishes until ctx is done. Publish failures are retried with
// backoff for as long as it runs; only a broken log ends it with an error.
func (o *Outbox) Run(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	for {
		pub := o.published.Load()
		if err := o.log.Wait(ctx, pub); err != nil {
			if errors.Is(err, ErrLogClosed) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		next, err := o.publishFrom(ctx, pub)
		if next > pub {
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

type pending struct {
	idx uint64
	e   Event
	f   jetstream.PubAckFuture
}

// publishFrom publishes the own events after index from, up to inFlight at
// a time, and returns the index up to which all were acknowledged.
func (o *Outbox) publishFrom(ctx context.Context, from uint64) (uint64, error) {
	acked := from
	var batch []pending
	flush := func() error {
		for _, p := range batch {
			select {
			case <-p.f.Ok():
				acked = p.idx
			case err := <-p.f.Err():
				return fmt.Errorf("publish %s: %w", p.e, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		batch = batch[:0]
		return nil
	}
	last := from
	err := o.log.Scan(from+1, func(idx uint64, e Event) error {
		last = idx
		if e.Source != o.log.Source() {
			if len(batch) == 0 {
				acked = idx // an input record: nothing to publish
			}
			return nil
		}
		data, err := Encode(e)
		if err != nil {
			return err
		}
		msg := &nats.Msg{Subject: Subject(o.role, e), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, MsgID(e))
		f, err := o.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publish %s: %w", e, err)
		}
		batch = append(batch, pending{idx, e, f})
		if len(batch) >= o.inFlight {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err == nil && len(batch) == 0 && last > acked {
		acked = last
	}
	return acked, err
}

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
