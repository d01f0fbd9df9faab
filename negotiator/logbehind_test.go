package negotiator

import (
	"testing"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
)

// TestLogBehindBusStopsTheNegotiator: the bus holds a newer event of this
// negotiator than its log has (a home restored from an old backup). Its
// outbox refuses to publish (ErrLogBehindBus), and the negotiator stops
// with that error instead of matching on with matches no schedd hears of.
func TestLogBehindBusStopsTheNegotiator(t *testing.T) {
	_, bus := eventstest.Bus(t)
	eventstest.PublishAhead(t, bus, events.RoleNegotiator, "negotiator", events.New(events.Matched, nil).ForJob("schedd", events.JobID{Cluster: 9}))
	n, err := New(Config{Dir: t.TempDir(), Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	eventstest.StopsBehindBus(t, "negotiator", n.Run, n.Ready())
}
