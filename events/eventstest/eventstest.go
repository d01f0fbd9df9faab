// Package eventstest starts the real parts the pool's tests need: an
// embedded NATS server with JetStream on a free port, and the pool's bus on
// it. It is imported only by tests.
package eventstest

import (
	"context"
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
