package events_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
)

// applier is a consumer daemon in miniature: a log, a loop and a count of
// the events it applied from each source.
type applier struct {
	log     *events.Log
	loop    *events.Loop
	mu      sync.Mutex
	applied map[string][]uint64
}

func newApplier(t *testing.T, dir string) *applier {
	l, err := events.OpenLog(dir, "neg", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	a := &applier{log: l, applied: map[string][]uint64{}}
	a.loop = events.NewLoop(events.LoopConfig{Log: l, Apply: func(e events.Event) {
		if e.Source != "neg" {
			a.mu.Lock()
			a.applied[e.Source] = append(a.applied[e.Source], e.Seq)
			a.mu.Unlock()
		}
	}})
	return a
}

func (a *applier) handle(ctx context.Context, evs []events.Event) error {
	_, err := a.loop.Do(ctx, func(tx *events.Tx) error {
		for _, e := range evs {
			if a.log.Consume(e.Source, e.Seq) {
				tx.Emit(e) // kept verbatim as an input record
			}
		}
		return nil
	})
	return err
}

func (a *applier) count(src string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.applied[src])
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOutboxConsumerExactlyOnce(t *testing.T) {
	_, bus := eventstest.Bus(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	srcLog, err := events.OpenLog(t.TempDir(), "schedd", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srcLog.Close()
	const n = 600
	for i := 0; i < n; i += 100 {
		var batch []events.Event
		for j := 0; j < 100; j++ {
			batch = append(batch, events.New("JobSubmitted", nil).ForJob("schedd", events.JobID{Cluster: i + j + 1}))
		}
		if _, err := srcLog.Append(batch); err != nil {
			t.Fatal(err)
		}
	}

	runOutbox := func(ctx context.Context) *events.Outbox {
		ob, err := events.NewOutbox(events.OutboxConfig{Log: srcLog, JS: bus.JS, Role: events.RoleSchedd, InFlight: 64})
		if err != nil {
			t.Fatal(err)
		}
		go ob.Run(ctx)
		return ob
	}
	obCtx, obCancel := context.WithCancel(ctx)
	ob := runOutbox(obCtx)
	fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
	if err := ob.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	fcancel()
	obCancel()

	consumerDir := t.TempDir()
	a := newApplier(t, consumerDir)
	loopCtx, loopCancel := context.WithCancel(ctx)
	go a.loop.Run(loopCtx)
	cctx, ccancel := context.WithCancel(ctx)
	cdone := make(chan error, 1)
	go func() {
		cdone <- events.Consume(cctx, bus.JS, events.ConsumerConfig{Durable: "neg", Filters: []events.SubjectFilter{events.AllOfRole(events.RoleSchedd)}, Handle: a.handle})
	}()
	waitFor(t, "all events applied", func() bool { return a.count("schedd") == n })

	// Forget what was published: the outbox republishes everything; the
	// duplicate window and the consumer's window drop it all.
	if err := srcLog.SetMetaUint("outbox.published", 0, true); err != nil {
		t.Fatal(err)
	}
	obCtx, obCancel = context.WithCancel(ctx)
	ob = runOutbox(obCtx)
	fctx, fcancel = context.WithTimeout(ctx, 20*time.Second)
	if err := ob.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	fcancel()
	obCancel()

	// Restart the consumer daemon from its log: its windows survive.
	ccancel()
	if err := <-cdone; err != nil {
		t.Fatal(err)
	}
	loopCancel()
	a.log.Close()
	a2 := newApplier(t, consumerDir)
	go a2.loop.Run(ctx)
	// Publish a few more after the restart.
	var more []events.Event
	for j := 0; j < 10; j++ {
		more = append(more, events.New("JobRemoved", nil).ForJob("schedd", events.JobID{Cluster: j + 1}))
	}
	if _, err := srcLog.Append(more); err != nil {
		t.Fatal(err)
	}
	obCtx, obCancel = context.WithCancel(ctx)
	defer obCancel()
	runOutbox(obCtx)
	go events.Consume(ctx, bus.JS, events.ConsumerConfig{Durable: "neg", Filters: []events.SubjectFilter{events.AllOfRole(events.RoleSchedd)}, Handle: a2.handle})
	waitFor(t, "new events applied", func() bool { return a2.count("schedd") == 10 })
	// Nothing of the first 600 was applied again.
	time.Sleep(200 * time.Millisecond)
	a2.mu.Lock()
	defer a2.mu.Unlock()
	for _, s := range a2.applied["schedd"] {
		if s <= n {
			t.Fatalf("event schedd:%d applied twice", s)
		}
	}
	if len(a2.applied["schedd"]) != 10 {
		t.Fatalf("applied %d after restart, want 10", len(a2.applied["schedd"]))
	}
}

func TestLoopGroupsCommandsAndRejects(t *testing.T) {
	l, err := events.OpenLog(t.TempDir(), "schedd", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	next := 0
	var afterCalls int
	loop := events.NewLoop(events.LoopConfig{Log: l,
		Apply: func(e events.Event) { next = e.Cluster },
		After: func([]events.Event) { afterCalls++ },
		Clock: func() time.Time { return time.Unix(100, 0) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- loop.Run(ctx) }()
	var wg sync.WaitGroup
	ids := make(chan int, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs, err := loop.DoEvents(ctx, func(now time.Time) ([]events.Event, error) {
				return []events.Event{events.New("ClusterSubmitted", nil).ForCluster("schedd", next+1)}, nil
			})
			if err != nil {
				t.Error(err)
				return
			}
			if evs[0].Time != time.Unix(100, 0).UnixNano() || evs[0].Seq == 0 {
				t.Errorf("event not stamped: %+v", evs[0])
			}
			ids <- evs[0].Cluster
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[int]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("cluster %d handed out twice: commands did not see each other's events", id)
		}
		seen[id] = true
	}
	rejected := errors.New("no")
	if _, err := loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) { return nil, rejected }); err != rejected {
		t.Fatalf("rejection: %v", err)
	}
	if l.LastSeq() != 50 {
		t.Fatalf("last seq %d, want 50 (a rejected command writes nothing)", l.LastSeq())
	}
	if _, err := loop.Do(ctx, func(*events.Tx) error { panic("broken invariant") }); err == nil {
		t.Fatal("panicking decision did not return an error")
	}
	cancel()
	<-done
	if _, err := loop.Do(context.Background(), func(*events.Tx) error { return nil }); err != events.ErrLoopStopped {
		t.Fatalf("Do on stopped loop: %v", err)
	}
	if afterCalls == 0 || afterCalls > 50 {
		t.Fatalf("After called %d times", afterCalls)
	}
}

func TestLoopRefusesWhenDiskNearlyFull(t *testing.T) {
	l, err := events.OpenLog(t.TempDir(), "schedd", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	applied := 0
	loop := events.NewLoop(events.LoopConfig{Log: l, Apply: func(events.Event) { applied++ }, MinFree: 1 << 62})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go loop.Run(ctx)
	_, err = loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
		return []events.Event{events.New("JobSubmitted", nil)}, nil
	})
	if !errors.Is(err, events.ErrDiskFull) || !strings.Contains(err.Error(), "LOG_MIN_FREE_MB") {
		t.Fatalf("Do on a full disk: %v", err)
	}
	if applied != 0 || l.LastIndex() != 0 {
		t.Fatalf("a refused command changed state: %d applied, log at %d", applied, l.LastIndex())
	}
}

// TestCollectorInMemory: OpenBus keeps the collector's ads in memory (no
// fsync per ad), replacing a file-stored collector of an older vmpool;
// when the collector is lost (its server restarted alone), a daemon's
// PutAd creates it again and says so, and a daemon's BindBus finds or
// creates it, while a user's BindBus reports it missing.
func TestCollectorInMemory(t *testing.T) {
	srv := eventstest.NATS(t)
	nc, js := eventstest.Connect(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	storage := func() jetstream.StorageType {
		t.Helper()
		kv, err := js.KeyValue(ctx, events.CollectorBucket)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Storage
	}

	// An older pool's collector, in files, with an ad in it.
	old, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: events.CollectorBucket, TTL: time.Minute, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Put(ctx, "slot.s1.slot1", []byte(`{"Name":"slot1@s1"}`)); err != nil {
		t.Fatal(err)
	}
	bus, err := events.OpenBus(ctx, nc, js, events.BusConfig{AdTTL: 30 * time.Second})
	if err != nil {
		t.Fatalf("OpenBus over a file-stored collector: %v", err)
	}
	if got := storage(); got != jetstream.MemoryStorage {
		t.Fatalf("collector storage %v, want memory", got)
	}
	if _, err := events.OpenBus(ctx, nc, js, events.BusConfig{AdTTL: 30 * time.Second}); err != nil {
		t.Fatalf("OpenBus again: %v", err)
	}
	if recreated, err := bus.PutAd(ctx, "slot.s1.slot1", []byte(`{"Name":"slot1@s1"}`)); err != nil || recreated {
		t.Fatalf("PutAd = %v, %v; want false, nil", recreated, err)
	}

	// The collector is lost.
	if err := js.DeleteKeyValue(ctx, events.CollectorBucket); err != nil {
		t.Fatal(err)
	}
	if _, err := events.BindBus(ctx, nc, js, nil); err == nil || !strings.Contains(err.Error(), events.CollectorBucket) {
		t.Fatalf("a user's BindBus without the collector: %v, want an error naming the bucket", err)
	}
	recreated, err := bus.PutAd(ctx, "slot.s1.slot2", []byte(`{"Name":"slot2@s1"}`))
	if err != nil || !recreated {
		t.Fatalf("PutAd into a lost collector = %v, %v; want true, nil", recreated, err)
	}
	ent, err := bus.Collector.Get(ctx, "slot.s1.slot2")
	if err != nil || string(ent.Value()) != `{"Name":"slot2@s1"}` {
		t.Fatalf("the ad put into the new collector: %v, %v", ent, err)
	}
	st, err := bus.Collector.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != 30*time.Second || storage() != jetstream.MemoryStorage {
		t.Fatalf("recreated collector: TTL %v, storage %v; want 30s, memory", st.TTL(), storage())
	}

	// A daemon binding a pool whose collector is lost creates it.
	if err := js.DeleteKeyValue(ctx, events.CollectorBucket); err != nil {
		t.Fatal(err)
	}
	if _, err := events.BindBus(ctx, nc, js, &events.BusConfig{AdTTL: 30 * time.Second}); err != nil {
		t.Fatalf("a daemon's BindBus without the collector: %v", err)
	}
	if storage() != jetstream.MemoryStorage {
		t.Fatal("BindBus created the collector in files")
	}
}

// TestManyOutboxesShareAConnection: one connection carries the publishes
// of many daemons at once (vmpool up with thousands of sim startds). Far
// more than the old cap of 1,024 unacknowledged publishes go out together
// without one failing as stalled.
func TestManyOutboxesShareAConnection(t *testing.T) {
	_, b := eventstest.Bus(t)
	const n = 8000
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		e := events.New("Tick", nil)
		e.Source, e.Seq, e.V = "many", uint64(i+1), events.Version
		data, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		f, err := b.JS.PublishMsgAsync(&nats.Msg{Subject: events.Subject(events.RoleStartd, e), Data: data})
		if err != nil {
			t.Fatalf("publish %d of %d at once: %v", i+1, n, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("publish %d: %v", i+1, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("publish %d: no acknowledgement", i+1)
		}
	}
}

// TestConsumerTakesNewFilters: a durable consumer created with one set of
// subject filters (an older daemon's) is given the new set when the daemon
// starts consuming again with it, and then delivers only what the new set
// matches (a schedd upgraded to take only some startd event types).
func TestConsumerTakesNewFilters(t *testing.T) {
	_, bus := eventstest.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publish := func(seq uint64, typ string) {
		e := events.New(typ, map[string]string{"claim_id": "c"}).ForJob("s", events.JobID{Cluster: 1, Proc: 0})
		e.V, e.Source, e.Seq, e.Time = events.Version, "sd", seq, int64(seq)
		if err := eventstest.Publish(ctx, bus.JS, events.RoleStartd, e); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var got []string
	consume := func(filters []events.SubjectFilter, want int) {
		t.Helper()
		cctx, ccancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- events.Consume(cctx, bus.JS, events.ConsumerConfig{Durable: "upgraded", Filters: filters,
				Handle: func(_ context.Context, evs []events.Event) error {
					mu.Lock()
					defer mu.Unlock()
					for _, e := range evs {
						got = append(got, e.Type)
					}
					return nil
				}})
		}()
		waitFor(t, "deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= want })
		time.Sleep(100 * time.Millisecond) // nothing more comes
		ccancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	publish(1, events.ClaimAccepted)
	consume([]events.SubjectFilter{events.JobsOfSchedd(events.RoleStartd, "s"), events.JobsOfSchedd(events.RoleNegotiator, "s")}, 1)
	publish(2, events.ClaimAccepted)
	publish(3, events.VMStarted)
	consume(append(events.JobEventsOfSchedd(events.RoleStartd, "s", events.VMStarted, events.VMExited),
		events.JobsOfSchedd(events.RoleNegotiator, "s")), 2)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != "ClaimAccepted,VMStarted" {
		t.Errorf("delivered %v, want the first ClaimAccepted under the old filters, then only VMStarted", got)
	}
	cons, err := bus.JS.Consumer(ctx, events.StreamName, "upgraded")
	if err != nil {
		t.Fatal(err)
	}
	if fs := cons.CachedInfo().Config.FilterSubjects; len(fs) != 3 || !strings.HasSuffix(fs[0], ".VMStarted") {
		t.Errorf("consumer filters %v, want the new three", fs)
	}
}
