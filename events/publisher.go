package events

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publisher publishes the events of many outboxes on one connection, so
// that what they have waiting together goes to JetStream as one atomic
// batch. An outbox alone batches only its own backlog; thousands of
// simulated startds in one process each have one or two events at a time,
// and the stream stored each with an fsync of its own (the match
// benchmark's bound). The publisher keeps a few single publishes in
// flight, like an outbox; while they are, what arrives waits, and when
// batchMin or more are waiting they go as one batch. A batch the stream
// refuses goes one by one, as an outbox's does.
//
// Each outbox still waits for its own events in order, so an outbox
// using a publisher keeps its contract (durable first, published second,
// acknowledged in order).
type Publisher struct {
	js       jetstream.JetStream
	logger   *slog.Logger
	inFlight int
	reqs     chan *pubReq
	stop     chan struct{}
	done     chan struct{}
	atomic   atomic.Bool
	batches  atomic.Int64
	checked  bool // the stream's AllowAtomicPublish was read
}

// ErrPublisherClosed fails a publish handed to a closed Publisher.
var ErrPublisherClosed = errors.New("events: publisher closed")

// publisherInFlight bounds a publisher's single publishes awaiting their
// acknowledgement: few, so that a backlog (and a batch) forms as soon as
// the stream falls behind.
const publisherInFlight = 16

// NewPublisher starts a publisher on js; Close stops it.
func NewPublisher(js jetstream.JetStream, logger *slog.Logger) *Publisher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{js: js, logger: logger, inFlight: publisherInFlight, reqs: make(chan *pubReq, batchMax),
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// Batches is how many atomic batches the stream took from the publisher.
func (p *Publisher) Batches() int64 { return p.batches.Load() }

// Close stops the publisher; publishes not yet acknowledged fail with
// ErrPublisherClosed (their outboxes publish them again when they run
// next). Close the publisher after the outboxes that use it.
func (p *Publisher) Close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// pubReq is one event handed to the publisher, and the future its outbox
// waits on (as on jetstream's PubAckFuture).
type pubReq struct {
	msg *nats.Msg
	ok  chan *jetstream.PubAck
	err chan error
}

func (r *pubReq) Ok() <-chan *jetstream.PubAck { return r.ok }
func (r *pubReq) Err() <-chan error            { return r.err }

// ackFuture is what an outbox waits on for one publish.
type ackFuture interface {
	Ok() <-chan *jetstream.PubAck
	Err() <-chan error
}

// publish hands msg to the publisher, waiting while the publisher holds
// as many as it takes (or until ctx is done).
func (p *Publisher) publish(ctx context.Context, msg *nats.Msg) (ackFuture, error) {
	r := &pubReq{msg: msg, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	select {
	case <-p.stop:
		return nil, ErrPublisherClosed
	default:
	}
	// (One handed over while Close runs may get no answer; its outbox
	// stops waiting when its context ends.)
	select {
	case p.reqs <- r:
		return r, nil
	case <-p.stop:
		return nil, ErrPublisherClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type single struct {
	r *pubReq
	f jetstream.PubAckFuture
}

func (p *Publisher) run() {
	defer close(p.done)
	var inflight []single
	var waiting []*pubReq
	// settle forwards the oldest single's outcome to its outbox.
	settle := func(ack *jetstream.PubAck, err error) {
		if err != nil {
			inflight[0].r.err <- err
		} else {
			inflight[0].r.ok <- ack
		}
		inflight = inflight[1:]
	}
	defer func() {
		for _, s := range inflight {
			s.r.err <- ErrPublisherClosed
		}
		for _, r := range waiting {
			r.err <- ErrPublisherClosed
		}
		for {
			select {
			case r := <-p.reqs:
				r.err <- ErrPublisherClosed
			default:
				return
			}
		}
	}()
	for {
		var okc <-chan *jetstream.PubAck
		var errc <-chan error
		if len(inflight) > 0 {
			okc, errc = inflight[0].f.Ok(), inflight[0].f.Err()
		}
		reqs := p.reqs
		if len(inflight) >= p.inFlight {
			reqs = nil // the stream is behind: let a backlog form
		}
		select {
		case <-p.stop:
			return
		case ack := <-okc:
			settle(ack, nil)
			continue
		case err := <-errc:
			settle(nil, err)
			continue
		case r := <-reqs:
			waiting = append(waiting, r)
		}
	gather:
		for len(waiting) < batchMax {
			select {
			case r := <-p.reqs:
				waiting = append(waiting, r)
			default:
				break gather
			}
		}
		if len(waiting) >= batchMin && p.canBatch() {
			// The singles in flight first, so that each outbox's events
			// reach the stream in order.
			for len(inflight) > 0 {
				select {
				case ack := <-inflight[0].f.Ok():
					settle(ack, nil)
				case err := <-inflight[0].f.Err():
					settle(nil, err)
				case <-p.stop:
					return
				}
			}
			if p.sendBatch(waiting) {
				waiting = waiting[:0]
				continue
			}
		}
		for _, r := range waiting {
			f, err := p.js.PublishMsgAsync(r.msg)
			if err != nil {
				r.err <- err
				continue
			}
			inflight = append(inflight, single{r, f})
		}
		waiting = waiting[:0]
	}
}

// canBatch reads once whether the stream takes atomic batches.
func (p *Publisher) canBatch() bool {
	if !p.checked {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := p.js.Stream(ctx, StreamName)
		cancel()
		if err != nil {
			return false // asked again next time
		}
		p.checked = true
		p.atomic.Store(st.CachedInfo().Config.AllowAtomicPublish)
	}
	return p.atomic.Load()
}

// sendBatch publishes rs as one atomic batch and, when the stream took
// it, acknowledges each request.
func (p *Publisher) sendBatch(rs []*pubReq) bool {
	msgs := make([]*nats.Msg, len(rs))
	for i, r := range rs {
		msgs[i] = r.msg
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	ack, ok := publishAtomic(ctx, p.js, msgs, &p.atomic, p.logger, "publisher")
	cancel()
	if !ok {
		return false
	}
	p.batches.Add(1)
	for _, r := range rs {
		r.ok <- ack
	}
	return true
}
