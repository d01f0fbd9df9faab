package events_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
)

// TestOpenBusOnANewCluster opens the pool's stream and buckets (three
// copies) from three clients at once, one per server of a cluster that
// has just started, as the three vmpool nats of a cluster do. The
// cluster leaves requests unanswered: those sent before it has a
// JetStream meta leader, and all but one of the same stream's creation
// asked for at once. Each such request used to cost the whole of its
// caller's deadline (a vmpool nats waited 20 s, then tried again: 40 to
// 105 s before a new cluster's pool was ready); OpenBus now asks again
// after a short while and is done in seconds.
func TestOpenBusOnANewCluster(t *testing.T) {
	urls := strings.Split(cluster(t, 3), ",")
	// Well below the 20 s each unanswered request used to cost; far
	// above what opening takes on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, url := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, js, err := events.Connect(ctx, url, events.ConnectOptions{Name: "open"})
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			start := time.Now()
			bus, err := events.OpenBus(ctx, nc, js, events.BusConfig{Replicas: 3, Users: []string{"alice"}})
			if err != nil {
				t.Errorf("client %d: open the bus: %v", i, err)
				return
			}
			t.Logf("client %d: the stream and buckets were open after %s", i, time.Since(start).Round(time.Millisecond))
			st, err := bus.JS.Stream(ctx, events.StreamName)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			if r := st.CachedInfo().Config.Replicas; r != 3 {
				t.Errorf("client %d: stream %s has %d copies, want 3", i, events.StreamName, r)
			}
			if _, err := bus.JS.KeyValue(ctx, events.LeaderBucket); err != nil {
				t.Errorf("client %d: %v", i, err)
			}
			if _, err := bus.JS.ObjectStore(ctx, events.UserBucket("alice")); err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
}
