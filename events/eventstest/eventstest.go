// Package eventstest starts the real parts the pool's tests need: an
// embedded NATS server with JetStream on a free port, and the pool's bus on
// it. It is imported only by tests.
package eventstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/events"
)

// Publish puts event e of a daemon of role on the bus as its outbox would
// (events.EventMsg), for tests that play a daemon.
func Publish(ctx context.Context, js jetstream.JetStream, role string, e events.Event) error {
	data, err := events.Encode(e)
	if err != nil {
		return err
	}
	_, err = js.PublishMsg(ctx, events.EventMsg(role, e, data))
	return err
}

// NATS starts an embedded NATS server with JetStream in t's temp dir and
// stops it when the test ends.
func NATS(t testing.TB) *events.NATSServer {
	t.Helper()
	s, err := events.StartNATS(events.NATSConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Connect connects to url and closes the connection when the test ends.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, js, err := events.Connect(ctx, url, events.ConnectOptions{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

// Bus starts a server and opens the pool's bus on it.
func Bus(t testing.TB) (*events.NATSServer, *events.Bus) {
	t.Helper()
	s := NATS(t)
	nc, js := Connect(t, s.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := events.OpenBus(ctx, nc, js, events.BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

// PublishAhead puts e on the bus as event 9 of daemon source (of role): a
// newer event than a fresh log of that daemon holds, as the bus has after
// a home is restored from an old backup.
func PublishAhead(t testing.TB, bus *events.Bus, role, source string, e events.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.V, e.Source, e.Seq, e.Time = events.Version, source, 9, time.Now().UnixNano()
	if err := Publish(ctx, bus.JS, role, e); err != nil {
		t.Fatal(err)
	}
}

// StopsBehindBus runs a daemon whose log is behind the bus (run is its
// Run, ready its Ready) and fails t unless it ends with
// events.ErrLogBehindBus within 10 s, before it served: serving, it could
// record an event that reuses a sequence number the bus has.
func StopsBehindBus(t testing.TB, daemon string, run func(context.Context) error, ready <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, events.ErrLogBehindBus) {
			t.Fatalf("%s ended with %v, want ErrLogBehindBus", daemon, err)
		}
		select {
		case <-ready:
			t.Fatalf("the %s served before its log was found behind the bus", daemon)
		default:
		}
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatalf("the %s served on for 10 s with its outbox stopped (the bus is ahead of its log)", daemon)
	}
}
