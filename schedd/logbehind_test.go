package schedd

import (
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
	eventstest.PublishAhead(t, bus, events.RoleSchedd, "schedd", events.New(events.ClusterSubmitted, nil).ForCluster("schedd", 9))
	s, err := New(Config{Dir: t.TempDir(), Bus: bus, AdInterval: time.Hour, PolicyInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	eventstest.StopsBehindBus(t, "schedd", s.Run, s.Ready())
}
