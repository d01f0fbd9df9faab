package schedd

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
)

// TestLogBehindBusStopsTheSchedd: the bus holds a newer event of this
// schedd than its log has (a home restored from an old backup, a log that
// lost its tail). Its outbox refuses to publish (ErrLogBehindBus), and the
// schedd stops with that error. It used to serve on with its outbox
// stopped: a job submitted then was queued, and no negotiator ever heard
// of it, with nothing said anywhere.
func TestLogBehindBusStopsTheSchedd(t *testing.T) {
	_, bus := eventstest.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	newer := events.New(events.ClusterSubmitted, nil).ForCluster("schedd", 9)
	newer.V, newer.Source, newer.Seq, newer.Time = events.Version, "schedd", 9, time.Now().UnixNano()
	if err := eventstest.Publish(ctx, bus.JS, events.RoleSchedd, newer); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Dir: t.TempDir(), Bus: bus, AdInterval: time.Hour, PolicyInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, events.ErrLogBehindBus) {
			t.Fatalf("schedd ended with %v, want ErrLogBehindBus", err)
		}
		// Before it served: it recorded nothing that would reuse a
		// sequence number the bus has.
		select {
		case <-s.Ready():
			t.Fatal("the schedd served before its log was found behind the bus")
		default:
		}
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatal("the schedd served on for 10 s with its outbox stopped (the bus is ahead of its log)")
	}
}
