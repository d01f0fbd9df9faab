package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerConfig configures Consume.
type ConsumerConfig struct {
	Stream  string          // default StreamName
	Durable string          // durable consumer name; it survives restarts
	Filters []SubjectFilter // at least one
	Logger  *slog.Logger
	// Handle applies a batch of events in stream order. It must return only
	// once everything derived from them, and the consumer windows marking
	// them applied, is durable: the messages are acknowledged after it
	// returns nil and redelivered when it returns an error.
	Handle func(ctx context.Context, evs []Event) error
	// MaxBatch bounds the events handed to one Handle call (default 256).
	MaxBatch int
	// Failpoints, when set, are the crash points the consumer honours.
	Failpoints *Failpoints
}

// Consume runs a durable pull consumer until ctx is done. Messages that do
// not decode as events are terminated (never redelivered) and logged.
// Whatever ends the consumer's message stream short of ctx (the server
// lost the consumer, as a NATS server restarted on an empty store does; a
// cluster moved it and the stream ended), Consume creates it again and
// goes on; the daemon's windows drop whatever it already applied. It
// returns an error only for a configuration that cannot work.
func Consume(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig) error {
	if len(cfg.Filters) == 0 {
		return fmt.Errorf("consume %s: no subject filter", cfg.Durable)
	}
	for {
		err := consumeOnce(ctx, js, cfg)
		if ctx.Err() != nil {
			return nil
		}
		if cfg.Logger != nil {
			if errors.Is(err, errConsumerGone) {
				cfg.Logger.Warn("consumer lost on the server; creating it again", "consumer", cfg.Durable)
			} else {
				cfg.Logger.Warn("consumer stopped; creating it again", "consumer", cfg.Durable, "err", err)
			}
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return nil
		}
	}
}

var errConsumerGone = errors.New("events: consumer gone")

func consumeOnce(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig) error {
	if cfg.Stream == "" {
		cfg.Stream = StreamName
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cc := jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 4 * cfg.MaxBatch,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if len(cfg.Filters) == 1 {
		cc.FilterSubject = string(cfg.Filters[0])
	} else {
		for _, f := range cfg.Filters {
			cc.FilterSubjects = append(cc.FilterSubjects, string(f))
		}
	}
	var cons jetstream.Consumer
	for {
		var err error
		cons, err = js.CreateOrUpdateConsumer(ctx, cfg.Stream, cc)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		cfg.Logger.Warn("create consumer; will retry", "consumer", cfg.Durable, "err", err)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil
		}
	}
	// Short pulls with frequent heartbeats: a consumer lost on the server
	// (a bus that lost its store) is noticed in seconds, not a minute.
	it, err := cons.Messages(jetstream.PullMaxMessages(2*cfg.MaxBatch), jetstream.PullExpiry(10*time.Second), jetstream.PullHeartbeat(3*time.Second),
		jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}
	msgs := make(chan jetstream.Msg, cfg.MaxBatch)
	done := make(chan struct{})
	var gone atomic.Bool
	var ended error // why the iterator ended; written before msgs is closed
	go func() {
		defer close(done)
		defer close(msgs)
		for {
			m, err := it.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					ended = err
					return
				}
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
					gone.Store(true)
					return
				}
				if errors.Is(err, jetstream.ErrNoHeartbeat) {
					// Check that the consumer still exists on the server.
					cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					_, ierr := cons.Info(cctx)
					cancel()
					if errors.Is(ierr, jetstream.ErrConsumerNotFound) {
						gone.Store(true)
						return
					}
				}
				cfg.Logger.Debug("consumer fetch", "consumer", cfg.Durable, "err", err)
				continue
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		it.Stop()
		// Unblock and wait for the reader. What it took and was not
		// handled goes back at once, not after AckWait: by then newer
		// events would have moved the window past it.
		for m := range msgs {
			_ = m.Nak()
		}
		<-done
	}()

	batch := make([]jetstream.Msg, 0, cfg.MaxBatch)
	evs := make([]Event, 0, cfg.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case m, ok := <-msgs:
			if !ok {
				if gone.Load() {
					return errConsumerGone
				}
				if ended != nil {
					return fmt.Errorf("consume %s: %w", cfg.Durable, ended)
				}
				return nil
			}
			batch = append(batch, m)
		case <-ctx.Done():
			return nil
		}
	gather:
		for len(batch) < cfg.MaxBatch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break gather
				}
				batch = append(batch, m)
			default:
				break gather
			}
		}
		evs = evs[:0]
		good := batch[:0:0]
		for _, m := range batch {
			e, err := Decode(m.Data())
			if err == nil {
				err = CheckSubject(m.Subject(), e)
			}
			if err != nil {
				cfg.Logger.Warn("dropping undecodable message", "consumer", cfg.Durable, "subject", m.Subject(), "err", err)
				_ = m.TermWithReason(err.Error())
				continue
			}
			evs = append(evs, e)
			good = append(good, m)
		}
		if len(evs) == 0 {
			continue
		}
		if err := cfg.Handle(ctx, evs); err != nil {
			for _, m := range good {
				_ = m.NakWithDelay(time.Second)
			}
			if ctx.Err() != nil {
				return nil
			}
			cfg.Logger.Warn("handle events; redelivery requested", "consumer", cfg.Durable, "err", err)
			continue
		}
		cfg.Failpoints.Hit("consumer-before-ack")
		for _, m := range good {
			_ = m.Ack()
		}
	}
}
