package events_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/events"
)

func startBus(t *testing.T, store string) (*events.NATSServer, *events.Bus) {
	t.Helper()
	s, err := events.StartNATS(events.NATSConfig{Listen: "127.0.0.1:0", StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, js, err := events.Connect(ctx, s.URL(), events.ConnectOptions{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := events.OpenBus(ctx, nc, js, events.BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

func streamCount(t *testing.T, b *events.Bus) uint64 {
	t.Helper()
	st, err := b.JS.Stream(context.Background(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestOutboxHealsForgetfulBus: JetStream acknowledged the events, then its
// store was wiped (what a power loss does to a server that acknowledges
// before fsync). The Pebble log survives; the outbox notices that the bus
// lacks what it had published and publishes it again.
func TestOutboxHealsForgetfulBus(t *testing.T) {
	store := filepath.Join(t.TempDir(), "nats")
	l, err := events.OpenLog(t.TempDir(), "schedd", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var evs []events.Event
	for i := 1; i <= 50; i++ {
		evs = append(evs, events.New("JobSubmitted", nil).ForJob("schedd", events.JobID{Cluster: i}))
	}
	if _, err := l.Append(evs); err != nil {
		t.Fatal(err)
	}
	run := func(b *events.Bus) {
		ctx, cancel := context.WithCancel(context.Background())
		ob, err := events.NewOutbox(events.OutboxConfig{Log: l, JS: b.JS, Role: events.RoleSchedd, VerifyInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- ob.Run(ctx) }()
		deadline := time.Now().Add(20 * time.Second)
		for streamCount(t, b) < 50 {
			if time.Now().After(deadline) {
				t.Fatalf("stream holds %d events, want 50", streamCount(t, b))
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Acknowledged too, so the second run starts with all 50 counted
		// as published and must find the loss to publish them again.
		for ob.Published() < l.LastIndex() {
			if time.Now().After(deadline) {
				t.Fatalf("the outbox has %d of %d events acknowledged", ob.Published(), l.LastIndex())
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	s, b := startBus(t, store)
	run(b)
	b.NC.Close()
	s.Stop()
	// The bus forgets everything; the log does not.
	if err := os.RemoveAll(store); err != nil {
		t.Fatal(err)
	}
	s, b = startBus(t, store)
	defer s.Stop()
	defer b.NC.Close()
	if n := streamCount(t, b); n != 0 {
		t.Fatalf("wiped stream holds %d events", n)
	}
	run(b) // fails unless the outbox republishes what it had published before
}

// TestOutboxRefusesLogBehindBus: the bus holds newer events of a daemon
// than its log (the log was restored from an old copy). Publishing on would
// reuse sequence numbers that consumers already applied, so the outbox
// stops with ErrLogBehindBus.
func TestOutboxRefusesLogBehindBus(t *testing.T) {
	s, b := startBus(t, filepath.Join(t.TempDir(), "nats"))
	defer s.Stop()
	defer b.NC.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	newer := events.New("JobSubmitted", nil).ForJob("schedd", events.JobID{Cluster: 9})
	newer.Source, newer.Seq, newer.V = "schedd", 9, 1
	data, _ := events.Encode(newer)
	if _, err := b.JS.Publish(ctx, events.Subject(events.RoleSchedd, newer), data); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := events.OpenLog(dir, "schedd", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Append([]events.Event{events.New("JobSubmitted", nil)})
	ob, err := events.NewOutbox(events.OutboxConfig{Log: l, JS: b.JS, Role: events.RoleSchedd})
	if err != nil {
		t.Fatal(err)
	}
	err = ob.Run(ctx)
	if !errors.Is(err, events.ErrLogBehindBus) {
		t.Fatalf("Run = %v, want ErrLogBehindBus", err)
	}
	// The administrator reads which log, what is wrong and what to do.
	for _, want := range []string{dir, "seq 9", "seq 1", "restore", "--name", "another daemon of this name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Run = %v\nwant it to say %q", err, want)
		}
	}
}

// TestOutboxRepublishesWhenAnAckIsLost: JetStream never acknowledges the
// first publishes (here a plain subscriber takes them where the stream
// will be; in a cluster, a stream leader that died with them in flight).
// The publishes time out and the outbox publishes them again once the
// stream answers, instead of waiting for those acknowledgements forever.
func TestOutboxRepublishesWhenAnAckIsLost(t *testing.T) {
	s, err := events.StartNATS(events.NATSConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js, err := events.Connect(ctx, s.URL(), events.ConnectOptions{Name: t.Name(), PublishTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	swallowed := make(chan struct{}, 1)
	sink, err := nc.Subscribe(events.SubjectPrefix+".>", func(*nats.Msg) {
		select {
		case swallowed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := events.OpenLog(t.TempDir(), "schedd", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var evs []events.Event
	for i := 1; i <= 20; i++ {
		evs = append(evs, events.New("JobSubmitted", nil).ForJob("schedd", events.JobID{Cluster: i}))
	}
	if _, err := l.Append(evs); err != nil {
		t.Fatal(err)
	}
	ob, err := events.NewOutbox(events.OutboxConfig{Log: l, JS: js, Role: events.RoleSchedd})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ob.Run(runCtx) }()
	select {
	case <-swallowed:
	case <-ctx.Done():
		t.Fatal("the outbox published nothing")
	}
	if ob.Published() != 0 {
		t.Fatalf("published %d without an acknowledgement", ob.Published())
	}
	// Now the stream exists and acknowledges.
	if err := sink.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	b, err := events.OpenBus(ctx, nc, js, events.BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Flush(ctx); err != nil {
		t.Fatalf("outbox stuck on the lost acknowledgements: %v", err)
	}
	if n := streamCount(t, b); n != 20 {
		t.Fatalf("stream holds %d events, want 20", n)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestOutboxHealsGapBelowNewest: the bus lost acknowledged events while
// the outbox ran, and the outbox published a newer event before it next
// checked the bus: the stream holds the daemon's newest event but not the
// older ones. The outbox notices the gap and publishes them again.
func TestOutboxHealsGapBelowNewest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := filepath.Join(t.TempDir(), "nats")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s, err := events.StartNATS(events.NATSConfig{Listen: addr, StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	nc, js, err := events.Connect(ctx, s.URL(), events.ConnectOptions{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, err := events.OpenBus(ctx, nc, js, events.BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := events.OpenLog(t.TempDir(), "schedd", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	submit := func(from, to int) {
		var evs []events.Event
		for i := from; i <= to; i++ {
			e := events.New("JobSubmitted", nil).ForJob("schedd", events.JobID{Cluster: i})
			e.Time = time.Now().UnixNano() // as the daemon's loop stamps it
			evs = append(evs, e)
		}
		if _, err := l.Append(evs); err != nil {
			t.Fatal(err)
		}
	}
	waitCount := func(want uint64) {
		deadline := time.Now().Add(20 * time.Second)
		for streamCount(t, b) < want {
			if time.Now().After(deadline) {
				t.Fatalf("stream holds %d events, want %d", streamCount(t, b), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	submit(1, 50)
	// The outbox checks the bus at its start and then every 5 s: the loss
	// and the newer event below both fall between two checks.
	logs := &lockedLog{}
	ob, err := events.NewOutbox(events.OutboxConfig{Log: l, JS: js, Role: events.RoleSchedd, VerifyInterval: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	octx, ocancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ob.Run(octx) }()
	defer func() {
		ocancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitCount(50)
	// The stream holding the events is not enough: the outbox must have
	// their acknowledgement too. Stopped between the two, the server never
	// acknowledges the batch, and the outbox publishes it again to the new
	// server after its wait, without a loss to find.
	for ob.Published() < l.LastIndex() {
		if ctx.Err() != nil {
			t.Fatalf("the outbox has %d of %d events acknowledged", ob.Published(), l.LastIndex())
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Stop()
	if err := os.RemoveAll(store); err != nil {
		t.Fatal(err)
	}
	if s, err = events.StartNATS(events.NATSConfig{Listen: addr, StoreDir: store}); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for !nc.IsConnected() {
		if ctx.Err() != nil {
			t.Fatal("no reconnection")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b, err = events.OpenBus(ctx, nc, js, events.BusConfig{}); err != nil { // the stream, made again
		t.Fatal(err)
	}
	submit(51, 51)
	waitCount(51) // fails unless the outbox publishes 1-50 again
	// Healed once, and only once: the events published again follow 51 in
	// the stream, which must not look like a loss of 51 (or of 1-50) at
	// the next checks. Before it did, the outbox published again every
	// 5 s, the stream dropped the copies as duplicates, and the stream's
	// newest event stayed older than the newest acknowledged one.
	time.Sleep(11 * time.Second)
	if n := strings.Count(logs.String(), "the bus lost"); n != 1 {
		t.Fatalf("the outbox found a loss %d times, want once:\n%s", n, logs.String())
	}
}

// lockedLog is a log destination safe for concurrent writers.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestOutboxPublishesBacklogInBatches: a backlog goes to the stream as
// atomic batches, each event once and in order, input records skipped. A
// republish after a crash (events the stream has already) fails a batch;
// those events then go one by one and the duplicates are dropped.
func TestOutboxPublishesBacklogInBatches(t *testing.T) {
	s, b := startBus(t, t.TempDir())
	defer s.Stop()
	defer b.NC.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := events.OpenLog(t.TempDir(), "schedd", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const own = 1200
	var evs []events.Event
	for i := 1; i <= own; i++ {
		evs = append(evs, events.New("JobSubmitted", nil).ForJob("schedd", events.JobID{Cluster: i}))
		if i%100 == 0 { // an input record from another daemon
			in := events.New("VMStarted", nil).ForJob("schedd", events.JobID{Cluster: i})
			in.Source, in.Seq = "startd1", uint64(i)
			l.Consume(in.Source, in.Seq)
			evs = append(evs, in)
		}
	}
	evs, err = l.Append(evs)
	if err != nil {
		t.Fatal(err)
	}
	// The first 40 are on the bus already: a crash after their publish,
	// before the outbox recorded it.
	for _, e := range evs[:40] {
		data, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		m := &nats.Msg{Subject: events.Subject(events.RoleSchedd, e), Data: data, Header: nats.Header{}}
		m.Header.Set("Nats-Msg-Id", events.MsgID(e))
		if _, err := b.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	ob, err := events.NewOutbox(events.OutboxConfig{Log: l, JS: b.JS, Role: events.RoleSchedd})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ob.Run(runCtx) }()
	if err := ob.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ob.Published() != l.LastIndex() {
		t.Fatalf("published up to %d of %d", ob.Published(), l.LastIndex())
	}
	if ob.Batches() < 2 {
		t.Fatalf("%d atomic batches for a backlog of %d events", ob.Batches(), own)
	}
	if n := streamCount(t, b); n != own {
		t.Fatalf("stream holds %d events, want %d", n, own)
	}
	cons, err := b.JS.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= own; want++ {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("event %d: %v", want, err)
		}
		e, err := events.Decode(m.Data())
		if err != nil || e.Source != "schedd" || e.Seq != want {
			t.Fatalf("stream event %d is %s:%d (%v), want schedd:%d", want, e.Source, e.Seq, err, want)
		}
	}
}
