package negotiator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
)

// TestWatchFollowsACollectorCreatedAnew: every server of a cluster
// restarted loses the collector's contents (kept in memory), whose
// sequences begin again from 1, as they do when the bucket is created
// anew (here). The negotiator's watch went on from the old last sequence
// and saw none of the new ads until it had been silent for half an ad's
// lifetime (30 s by default), matching nothing meanwhile. It now notices
// at its next check, a quarter of that.
func TestWatchFollowsACollectorCreatedAnew(t *testing.T) {
	_, bus := eventstest.Bus(t)
	n, err := New(Config{Dir: t.TempDir(), Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.watchSlots(ctx) }()
	defer func() { cancel(); <-done }()
	put := func(startd string, ads int) {
		t.Helper()
		for i := 1; i <= ads; i++ {
			slot := fmt.Sprintf("slot%d", i)
			ad := fmt.Sprintf(`{"Name": "%s@%s", "StartdName": "%s", "State": "Unclaimed"}`, slot, startd, startd)
			if _, err := bus.PutAd(ctx, events.SlotKey(startd, slot), []byte(ad)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// seen waits until the negotiator knows startd's slot1, within limit.
	seen := func(startd string, limit time.Duration) {
		t.Helper()
		start := time.Now()
		for {
			n.mu.Lock()
			_, ok := n.slots[events.SlotKey(startd, "slot1")]
			n.mu.Unlock()
			if ok {
				t.Logf("%s's ad seen after %s", startd, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > limit {
				t.Fatalf("the negotiator did not see %s's ad within %s", startd, limit)
			}
			time.Sleep(50 * time.Millisecond) // the watch applies ads with no event to wait on
		}
	}
	put("a", 8)
	seen("a", 10*time.Second)
	// The bucket is created anew, as after a whole cluster's restart.
	if err := bus.JS.DeleteKeyValue(ctx, events.CollectorBucket); err != nil {
		t.Fatal(err)
	}
	put("b", 1)
	// Before, 30 s (half the default ad lifetime of 60 s); now one or
	// two checks of 7.5 s.
	seen("b", 20*time.Second)
}
