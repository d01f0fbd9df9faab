package startd

import (
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
	eventstest.PublishAhead(t, bus, events.RoleStartd, "s1", events.New(events.VMStarted, nil).ForJob("schedd", events.JobID{Cluster: 9}))
	d, err := New(Config{Name: "s1", Dir: t.TempDir(), Bus: bus, Driver: sim.New(sim.Config{}), VMMemory: 1024, NumSlots: 1,
		Host: "host", UpdateInterval: time.Hour, AliveInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	eventstest.StopsBehindBus(t, "startd", d.Run, d.Ready())
}
