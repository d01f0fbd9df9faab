package startd

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
	"github.com/vmpool/vmpool/startd/hypervisor/sim"
)

// TestLogBehindBusStopsTheStartd: the bus holds a newer event of this
// startd than its log has (a home restored from an old backup). Its outbox
// refuses to publish (ErrLogBehindBus), and the startd stops with that
// error instead of running VMs whose events no schedd would hear of.
func TestLogBehindBusStopsTheStartd(t *testing.T) {
	_, bus := eventstest.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	newer := events.New(events.VMStarted, nil).ForJob("schedd", events.JobID{Cluster: 9})
	newer.V, newer.Source, newer.Seq, newer.Time = events.Version, "s1", 9, time.Now().UnixNano()
	if err := eventstest.Publish(ctx, bus.JS, events.RoleStartd, newer); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Name: "s1", Dir: t.TempDir(), Bus: bus, Driver: sim.New(sim.Config{}), VMMemory: 1024, NumSlots: 1,
		Host: "host", UpdateInterval: time.Hour, AliveInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, events.ErrLogBehindBus) {
			t.Fatalf("startd ended with %v, want ErrLogBehindBus", err)
		}
		// Before it served: it recorded nothing that would reuse a
		// sequence number the bus has.
		select {
		case <-d.Ready():
			t.Fatal("the startd served before its log was found behind the bus")
		default:
		}
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatal("the startd ran on for 10 s with its outbox stopped (the bus is ahead of its log)")
	}
}
