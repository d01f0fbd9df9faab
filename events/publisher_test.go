package events_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
)

// Sixty startds' outboxes, each with fewer events than make a batch of its
// own, publish through one Publisher: the stream gets every event once, each
// startd's in order, some of them in batches (how many depends on how fast
// the stream keeps up; TestPublisherBatchesWhatWaits holds the publisher to
// batching). One event is on the bus already (a crash after its publish),
// so a batch holding it is refused and its events go one by one.
func TestPublisherBatchesManyOutboxes(t *testing.T) {
	s, b := startBus(t, t.TempDir())
	defer s.Stop()
	defer b.NC.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store, err := events.OpenStore(t.TempDir(), events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const startds, each = 60, 20
	logs := make([]*events.Log, startds)
	for i := range logs {
		if logs[i], err = store.Log(fmt.Sprintf("sim%d", i+1)); err != nil {
			t.Fatal(err)
		}
		for j := 1; j <= each; j++ { // one append each, as a startd makes them
			if _, err := logs[i].Append([]events.Event{events.New("VMStarted", nil).ForJob("schedd", events.JobID{Cluster: i*each + j})}); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, first, err := logs[0].OwnEvent(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := eventstest.Publish(ctx, b.JS, events.RoleStartd, first); err != nil {
		t.Fatal(err)
	}
	pub := events.NewPublisher(b.JS, nil)
	defer pub.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	obs := make([]*events.Outbox, startds)
	done := make(chan error, startds)
	for i, l := range logs {
		if obs[i], err = events.NewOutbox(events.OutboxConfig{Log: l, JS: b.JS, Role: events.RoleStartd, Publisher: pub}); err != nil {
			t.Fatal(err)
		}
		go func() { done <- obs[i].Run(runCtx) }()
	}
	for _, ob := range obs {
		if err := ob.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if ob.Batches() != 0 {
			t.Fatalf("an outbox of %d events batched them itself", each)
		}
	}
	stop()
	for range obs {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := streamCount(t, b); n != startds*each {
		t.Fatalf("stream holds %d events, want %d", n, startds*each)
	}
	cons, err := b.JS.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	next := map[string]uint64{}
	for range startds * each {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		e, err := events.Decode(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != next[e.Source]+1 {
			t.Fatalf("%s:%d follows %s:%d in the stream", e.Source, e.Seq, e.Source, next[e.Source])
		}
		next[e.Source] = e.Seq
	}
	t.Logf("%d batches", pub.Batches())
}
