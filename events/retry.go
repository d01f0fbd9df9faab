package events

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultFileRetry is how long Bus.GetFile and Bus.PutFile keep retrying
// a transfer that failed for a passing reason (a NATS server of a cluster
// lost, its streams electing leaders, a reconnect) before they give up.
const DefaultFileRetry = 2 * time.Minute

// Permanent reports whether a file transfer that failed with err cannot
// succeed by being tried again: the object or bucket is gone, the content
// does not match its checksum, the reference is malformed, permission is
// denied, the local file system refused, the connection is closed for
// good. Anything else (time-outs, no responders, a reconnect, a stream
// without a leader) is taken as passing.
func Permanent(err error) bool {
	var pathErr *fs.PathError
	var linkErr *os.LinkError
	switch {
	case err == nil:
		return false
	case errors.Is(err, jetstream.ErrObjectNotFound),
		errors.Is(err, jetstream.ErrBucketNotFound),
		errors.Is(err, jetstream.ErrStreamNotFound),
		errors.Is(err, ErrChecksum),
		errors.Is(err, ErrMalformed),
		errors.Is(err, nats.ErrPermissionViolation),
		errors.Is(err, nats.ErrAuthorization),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, context.Canceled),
		errors.As(err, &pathErr),
		errors.As(err, &linkErr):
		return true
	}
	return false
}

// retryFile runs op until it succeeds, fails permanently, ctx ends or
// b's retry budget is spent, backing off from 250ms to 5s between tries.
// A try runs only while the connection to the bus is up: a try in flight
// when it drops is abandoned (NATS would otherwise hold its requests until
// ctx ends), and the next waits for the reconnect. The error returned is
// op's last, saying how often it was tried.
func (b *Bus) retryFile(ctx context.Context, what string, op func(context.Context) error) error {
	budget := b.FileRetry
	if budget == 0 {
		budget = DefaultFileRetry
	}
	deadline := time.Now().Add(budget)
	wait := 250 * time.Millisecond
	var err error
	for try := 1; ; try++ {
		if try > 1 {
			if werr := b.waitConnected(ctx, deadline); werr != nil {
				return fmt.Errorf("%w (after %d tries; %v)", err, try-1, werr)
			}
		}
		actx, stop := b.whileConnected(ctx)
		err = op(actx)
		lost := err != nil && ctx.Err() == nil && actx.Err() != nil
		stop()
		if lost {
			err = fmt.Errorf("%w: the connection to the bus was lost", err)
		}
		if err == nil || (!lost && Permanent(err)) || ctx.Err() != nil || budget < 0 {
			if err != nil && try > 1 {
				return fmt.Errorf("%w (after %d tries)", err, try)
			}
			return err
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%w (gave up after %d tries in %s)", err, try, budget)
		}
		b.logger().Warn("file transfer failed; retrying", "file", what, "try", try, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (after %d tries)", err, try)
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// connPoll is how often a transfer checks that its connection is up.
const connPoll = 100 * time.Millisecond

// whileConnected returns a context that ends with ctx or when the
// connection to the bus drops, and the function that releases it.
func (b *Bus) whileConnected(ctx context.Context) (context.Context, func()) {
	actx, cancel := context.WithCancel(ctx)
	if b.NC == nil {
		return actx, cancel
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(connPoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-actx.Done():
				return
			case <-t.C:
				if !b.NC.IsConnected() {
					cancel()
					return
				}
			}
		}
	}()
	return actx, func() {
		close(done)
		<-exited
		cancel()
	}
}

// waitConnected returns once the connection to the bus is up, or an error
// when ctx ends, the deadline passes or the connection is closed for good.
func (b *Bus) waitConnected(ctx context.Context, deadline time.Time) error {
	if b.NC == nil {
		return nil
	}
	t := time.NewTicker(connPoll)
	defer t.Stop()
	for !b.NC.IsConnected() {
		if b.NC.IsClosed() {
			return nats.ErrConnectionClosed
		}
		if time.Now().After(deadline) {
			return errors.New("the bus did not come back in time")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (b *Bus) logger() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}
