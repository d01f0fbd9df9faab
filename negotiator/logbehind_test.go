package negotiator

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
)

// TestLogBehindBusStopsTheNegotiator: the bus holds a newer event of this
// negotiator than its log has (a home restored from an old backup). Its
// outbox refuses to publish (ErrLogBehindBus), and the negotiator stops
// with that error instead of matching on with matches no schedd hears of.
func TestLogBehindBusStopsTheNegotiator(t *testing.T) {
	_, bus := eventstest.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	newer := events.New(events.Matched, nil).ForJob("schedd", events.JobID{Cluster: 9})
	newer.V, newer.Source, newer.Seq, newer.Time = events.Version, "negotiator", 9, time.Now().UnixNano()
	if err := eventstest.Publish(ctx, bus.JS, events.RoleNegotiator, newer); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Dir: t.TempDir(), Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, events.ErrLogBehindBus) {
			t.Fatalf("negotiator ended with %v, want ErrLogBehindBus", err)
		}
		// Before it served: it recorded nothing that would reuse a
		// sequence number the bus has.
		select {
		case <-n.Ready():
			t.Fatal("the negotiator served before its log was found behind the bus")
		default:
		}
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatal("the negotiator ran on for 10 s with its outbox stopped (the bus is ahead of its log)")
	}
}
