package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
)

var errNotFound = events.NewError("job-not-found", "job not found")

func TestCallReplyErrorsAndChunks(t *testing.T) {
	s := eventstest.NATS(t)
	nc, _ := eventstest.Connect(t, s.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := events.NewServer(nc, nil, 4)
	defer srv.Close()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(srv.Handle(ctx, "vmpool.cmd.schedd.s.echo", func(_ context.Context, b []byte) (any, error) {
		var in map[string]string
		if err := json.Unmarshal(b, &in); err != nil {
			return nil, err
		}
		return map[string]string{"echo": in["msg"]}, nil
	}))
	must(srv.Handle(ctx, "vmpool.cmd.schedd.s.fail", func(context.Context, []byte) (any, error) {
		return nil, fmt.Errorf("job 42.0: %w", errNotFound)
	}))
	must(srv.Handle(ctx, "vmpool.cmd.schedd.s.held", func(context.Context, []byte) (any, error) {
		return nil, errNotFound.With("job %d.0 was never queued", 43)
	}))
	must(srv.Handle(ctx, "vmpool.cmd.schedd.s.many", func(context.Context, []byte) (any, error) {
		return events.Chunks(func(emit func(any) error) error {
			for i := 0; i < 5; i++ {
				if err := emit([]int{i}); err != nil {
					return err
				}
			}
			return nil
		}), nil
	}))
	nc.Flush()

	var out map[string]string
	must(events.Call(ctx, nc, "vmpool.cmd.schedd.s.echo", map[string]string{"msg": "hi"}, &out))
	if out["echo"] != "hi" {
		t.Fatalf("echo = %v", out)
	}
	err := events.Call(ctx, nc, "vmpool.cmd.schedd.s.fail", nil, nil)
	if !errors.Is(err, errNotFound) || err.Error() != "job 42.0: job not found" {
		t.Fatalf("remote error = %v (is not-found: %v)", err, errors.Is(err, errNotFound))
	}
	// An error of a sentinel's code in words of its own says only those,
	// and still is the sentinel, here and across the bus.
	if local := errNotFound.With("job %d.0 was never queued", 43); !errors.Is(local, errNotFound) || errors.Is(local, events.ErrInternal) {
		t.Fatalf("With: errors.Is does not match by code: %v", local)
	}
	err = events.Call(ctx, nc, "vmpool.cmd.schedd.s.held", nil, nil)
	if !errors.Is(err, errNotFound) || err.Error() != "job 43.0 was never queued" {
		t.Fatalf("remote error = %v (is not-found: %v)", err, errors.Is(err, errNotFound))
	}
	var got []int
	must(events.CallStream(ctx, nc, "vmpool.cmd.schedd.s.many", nil, func(d json.RawMessage) error {
		var v []int
		if err := json.Unmarshal(d, &v); err != nil {
			return err
		}
		got = append(got, v...)
		return nil
	}))
	if fmt.Sprint(got) != "[0 1 2 3 4]" {
		t.Fatalf("chunks = %v", got)
	}
	if err := events.Call(ctx, nc, "vmpool.cmd.schedd.nobody.echo", nil, nil); !errors.Is(err, events.ErrNoResponders) {
		t.Fatalf("no responders: %v", err)
	}
}

func TestPutGetFile(t *testing.T) {
	_, bus := eventstest.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.img")
	data := make([]byte, 3<<20+17) // several object-store chunks
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := bus.PutFile(ctx, "alice", src, "")
	if err != nil {
		t.Fatal(err)
	}
	if ref.Name != "disk.img" || ref.Size != int64(len(data)) || ref.Bucket != events.UserBucket("alice") {
		t.Fatalf("ref = %+v", ref)
	}
	// The same content again is not stored twice.
	ref2, err := bus.PutFile(ctx, "alice", src, "other.img")
	if err != nil || ref2.Object != ref.Object {
		t.Fatalf("second put: %+v %v", ref2, err)
	}
	dst := filepath.Join(dir, "out", "disk.img")
	os.MkdirAll(filepath.Dir(dst), 0o755)
	if err := bus.GetFile(ctx, ref, dst); err != nil {
		t.Fatal(err)
	}
	back, _ := os.ReadFile(dst)
	if string(back) != string(data) {
		t.Fatal("fetched file differs")
	}
	// A ref whose hash does not match what is stored is refused, and the
	// destination keeps its old content.
	bad := ref
	bad.SHA256 = "00" + ref.SHA256[2:]
	os.WriteFile(dst, []byte("old"), 0o644)
	if err := bus.GetFile(ctx, bad, dst); !errors.Is(err, events.ErrChecksum) {
		t.Fatalf("bad checksum: %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "old" {
		t.Fatal("destination overwritten by a corrupt fetch")
	}
	entries, _ := os.ReadDir(filepath.Dir(dst))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

// A streamed reply runs at most a window of chunks ahead of what its
// caller has taken, so that a busy caller is never cut off by NATS as a
// slow consumer (two concurrent q -json of 100,000 jobs lost one reply
// that way); a caller that stops taking chunks ends the reply.
func TestStreamFlowControl(t *testing.T) {
	s := eventstest.NATS(t)
	nc, _ := eventstest.Connect(t, s.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := events.NewServer(nc, nil, 4)
	defer srv.Close()
	const chunks = 60
	var emitted atomic.Int64
	stopped := make(chan error, 1)
	if err := srv.Handle(ctx, "vmpool.cmd.schedd.s.big", func(context.Context, []byte) (any, error) {
		return events.Chunks(func(emit func(any) error) error {
			for i := range chunks {
				if err := emit(i); err != nil {
					stopped <- err
					return err
				}
				emitted.Add(1)
			}
			return nil
		}), nil
	}); err != nil {
		t.Fatal(err)
	}
	nc.Flush()

	taken, most := 0, int64(0)
	err := events.CallStream(ctx, nc, "vmpool.cmd.schedd.s.big", nil, func(json.RawMessage) error {
		taken++
		time.Sleep(2 * time.Millisecond) // a busy caller
		most = max(most, emitted.Load()-int64(taken))
		return nil
	})
	if err != nil || taken != chunks {
		t.Fatalf("took %d of %d chunks: %v", taken, chunks, err)
	}
	if most > 8 {
		t.Fatalf("the server ran %d chunks ahead of its caller, more than the window of 8", most)
	}

	// A caller that asks for flow control and then takes nothing.
	old := events.CreditTimeout
	events.CreditTimeout = 300 * time.Millisecond
	defer func() { events.CreditTimeout = old }()
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	hdr := nats.Header{}
	hdr.Set(events.WindowHeader, "4")
	if err := nc.PublishMsg(&nats.Msg{Subject: "vmpool.cmd.schedd.s.big", Reply: inbox, Header: hdr}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, events.ErrStalled) {
			t.Fatalf("the stalled reply ended with %v, want ErrStalled", err)
		}
	case <-ctx.Done():
		t.Fatal("the server went on waiting for a caller that took nothing")
	}
	got := 0
	for {
		m, err := sub.NextMsg(time.Second)
		if err != nil {
			break
		}
		var r events.Reply
		if json.Unmarshal(m.Data, &r) == nil && r.More {
			got++
		}
	}
	if got != 4 {
		t.Fatalf("the server sent %d chunks to a caller that took none, want the window of 4", got)
	}
}

// Calls on one connection share one reply subscription (no SUB and UNSUB
// per call), and each still gets its own replies, streamed ones included.
func TestConcurrentCallsShareOneReplySubscription(t *testing.T) {
	s := eventstest.NATS(t)
	nc, _ := eventstest.Connect(t, s.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const calls = 64
	srv := events.NewServer(nc, nil, calls)
	defer srv.Close()
	var arrived atomic.Int32
	release := make(chan struct{})
	if err := srv.Handle(ctx, "vmpool.cmd.schedd.s.count", func(_ context.Context, b []byte) (any, error) {
		var n int
		if err := json.Unmarshal(b, &n); err != nil {
			return nil, err
		}
		if n >= 0 {
			arrived.Add(1)
			<-release // every call in flight at once
		}
		return events.Chunks(func(emit func(any) error) error {
			for i := range n % 5 {
				if err := emit(n*10 + i); err != nil {
					return err
				}
			}
			return nil
		}), nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // the server has the subscription
		t.Fatal(err)
	}
	caller, _ := eventstest.Connect(t, s.URL())
	if err := events.Call(ctx, caller, "vmpool.cmd.schedd.s.count", -1, nil); err != nil {
		t.Fatal(err)
	}
	subs := caller.NumSubscriptions()
	errs := make(chan error, calls)
	for n := range calls {
		go func() {
			var got []int
			err := events.CallStream(ctx, caller, "vmpool.cmd.schedd.s.count", n, func(d json.RawMessage) error {
				var v int
				if err := json.Unmarshal(d, &v); err != nil {
					return err
				}
				got = append(got, v)
				return nil
			})
			if err == nil && len(got) != n%5 {
				err = fmt.Errorf("call %d: %d chunks, want %d", n, len(got), n%5)
			}
			for i, v := range got {
				if err == nil && v != n*10+i {
					err = fmt.Errorf("call %d: chunk %d is %d, want %d (another call's reply)", n, i, v, n*10+i)
				}
			}
			errs <- err
		}()
	}
	for arrived.Load() < calls {
		if ctx.Err() != nil {
			t.Fatalf("%d of %d calls reached the server", arrived.Load(), calls)
		}
		time.Sleep(time.Millisecond)
	}
	if got := caller.NumSubscriptions(); got != subs {
		t.Errorf("the connection has %d subscriptions with %d calls in flight, %d with none: calls should share one", got, calls, subs)
	}
	close(release)
	for range calls {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
