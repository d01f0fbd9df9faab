package events

import (
	"context"
	"fmt"
	"net/textproto"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Events handed to a Publisher faster than the stream acknowledges them
// one by one go as batches; one already on the bus makes its batch
// refused, and that batch's events then go one by one. Every event is
// acknowledged to its sender and stored once.
func TestPublisherBatchesWhatWaits(t *testing.T) {
	s, err := StartNATS(NATSConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc, js, err := Connect(ctx, s.URL(), ConnectOptions{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := OpenBus(ctx, nc, js, BusConfig{}); err != nil {
		t.Fatal(err)
	}
	// First 400 events at once, then 100 with one of them on the bus
	// already.
	const n, first, dup = 500, 400, 450
	msgs := make([]*nats.Msg, n)
	for i := range msgs {
		e := New("VMStarted", nil).ForJob("schedd", JobID{Cluster: i + 1})
		e.V, e.Source, e.Seq, e.Time = Version, "sim1", uint64(i+1), 1
		data, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = EventMsg(RoleStartd, e, data)
	}
	p := NewPublisher(js, nil)
	defer p.Close()
	send := func(msgs []*nats.Msg) {
		t.Helper()
		fs := make([]ackFuture, len(msgs))
		for i, m := range msgs {
			if fs[i], err = p.publish(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		for i, f := range fs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				t.Fatalf("event %d: %v", i+1, err)
			case <-ctx.Done():
				t.Fatalf("event %d: no acknowledgement", i+1)
			}
		}
	}
	send(msgs[:first])
	if p.Batches() == 0 {
		t.Fatalf("%d events handed over at once, and no batch", first)
	}
	if _, err := js.PublishMsg(ctx, msgs[dup]); err != nil {
		t.Fatal(err)
	}
	send(msgs[first:])
	st, err := js.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Fatalf("stream holds %d events, want %d", info.State.Msgs, n)
	}
	for seq := uint64(1); seq <= n; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		e, err := Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		want := seq // in order, but for the duplicate, which went first
		switch {
		case seq == first+1:
			want = dup + 1
		case seq > first+1 && seq <= dup+1:
			want = seq - 1
		}
		if e.Seq != want {
			t.Fatalf("stream message %d is %s, want sim1:%d", seq, fmt.Sprint(e), want)
		}
	}
	t.Logf("%d batches", p.Batches())
}

// A closed publisher refuses what it is handed; closing it twice is fine.
func TestPublisherClosedRefuses(t *testing.T) {
	p := NewPublisher(nil, nil) // never asked to publish: no stream needed
	p.Close()
	p.Close()
	if _, err := p.publish(context.Background(), &nats.Msg{Subject: "x"}); err != ErrPublisherClosed {
		t.Fatalf("publish after Close: %v", err)
	}
}

// The outbox writes its headers' keys straight into the header map, not
// through Header.Set, which would canonicalise them: a key that is not
// canonical would then not be found by its canonical name.
func TestHeaderKeysAreCanonical(t *testing.T) {
	for _, k := range []string{jetstream.MsgIDHeader, headerBatchID, headerBatchSeq, headerBatchCommit} {
		if c := textproto.CanonicalMIMEHeaderKey(k); c != k {
			t.Errorf("header %q is not canonical (%q)", k, c)
		}
	}
	e := New(JobStarted, nil).ForJob("schedd", JobID{Cluster: 1})
	e.Source, e.Seq = "schedd", 7
	msg := EventMsg(RoleSchedd, e, []byte("{}"))
	if got := msg.Header.Get(jetstream.MsgIDHeader); got != "schedd:7" {
		t.Errorf("EventMsg's %s = %q, want schedd:7", jetstream.MsgIDHeader, got)
	}
}
