package events_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
)

// slowStore hands out its objects through readers that wait before each
// read (slow), or that stop after the given bytes until closed (stall).
type slowStore struct {
	jetstream.ObjectStore
	delay time.Duration
	stall int64 // bytes given before the reader stops; -1: never stops
}

func (s slowStore) Get(ctx context.Context, name string, opts ...jetstream.GetObjectOpt) (jetstream.ObjectResult, error) {
	r, err := s.ObjectStore.Get(ctx, name, opts...)
	if err != nil {
		return nil, err
	}
	return &slowResult{ObjectResult: r, delay: s.delay, left: s.stall, closed: make(chan struct{})}, nil
}

type slowResult struct {
	jetstream.ObjectResult
	delay  time.Duration
	left   int64
	once   sync.Once
	closed chan struct{}
}

func (r *slowResult) Read(p []byte) (int, error) {
	if r.left == 0 {
		<-r.closed // the data stopped: nothing until the fetch gives up
		return 0, io.ErrClosedPipe
	}
	if r.left > 0 && int64(len(p)) > r.left {
		p = p[:r.left]
	}
	time.Sleep(r.delay)
	n, err := r.ObjectResult.Read(p)
	if r.left > 0 {
		r.left -= int64(n)
	}
	return n, err
}

func (r *slowResult) Close() error {
	r.once.Do(func() { close(r.closed) })
	return r.ObjectResult.Close()
}

// putTestFile stores a file of size bytes in alice's bucket.
func putTestFile(t *testing.T, bus *events.Bus, size int) (events.FileRef, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 13)
	}
	src := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := bus.PutFile(ctx, "alice", src, "")
	if err != nil {
		t.Fatal(err)
	}
	return ref, data
}

// TestGetFileOutlastsTheDefaultTimeout: a fetch that takes longer than
// its JetStream handle's default timeout, data flowing all along, arrives
// whole (the object store's Get ended every fetch at that timeout: a disk
// image of gigabytes could never come back).
func TestGetFileOutlastsTheDefaultTimeout(t *testing.T) {
	_, bus := eventstest.Bus(t)
	ref, data := putTestFile(t, bus, 1<<20)
	js, err := jetstream.New(bus.NC, jetstream.WithDefaultTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := js.ObjectStore(ctx, ref.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "disk.img")
	start := time.Now()
	// 32 reads of 32 KiB at 40 ms each: over a second, four timeouts.
	if err := events.GetFile(ctx, slowStore{ObjectStore: st, delay: 40 * time.Millisecond, stall: -1}, ref, dst); err != nil {
		t.Fatalf("a fetch of %s failed: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("the fetch took %s: the reader was not slowed, the test proves nothing", took)
	}
	if got, _ := os.ReadFile(dst); string(got) != string(data) {
		t.Fatal("fetched file differs")
	}
}

// TestGetFileGivesUpAStall: a fetch whose data does not start, or stops,
// gives up within its wait with ErrFetchStalled, which is retried (not
// Permanent), and leaves the destination as it was.
func TestGetFileGivesUpAStall(t *testing.T) {
	_, bus := eventstest.Bus(t)
	ref, _ := putTestFile(t, bus, 1<<20)
	ctx := context.Background()
	st, err := bus.FileStore(ctx, ref.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer func(first, stall time.Duration) { events.FetchFirstByte, events.FetchStall = first, stall }(events.FetchFirstByte, events.FetchStall)
	events.FetchFirstByte, events.FetchStall = 200*time.Millisecond, 300*time.Millisecond
	for _, c := range []struct {
		name string
		give int64
	}{{"no first byte", 0}, {"stopped after 100,000 bytes", 100000}} {
		dst := filepath.Join(t.TempDir(), "disk.img")
		os.WriteFile(dst, []byte("old"), 0o644)
		start := time.Now()
		err := events.GetFile(ctx, slowStore{ObjectStore: st, stall: c.give}, ref, dst)
		took := time.Since(start)
		if !errors.Is(err, events.ErrFetchStalled) || events.Permanent(err) {
			t.Fatalf("%s: %v (permanent %v), want ErrFetchStalled, retried", c.name, err, events.Permanent(err))
		}
		if took > 5*time.Second {
			t.Fatalf("%s: gave up after %s", c.name, took)
		}
		if b, _ := os.ReadFile(dst); string(b) != "old" {
			t.Fatalf("%s: destination changed", c.name)
		}
		t.Logf("%s: %v after %s", c.name, err, took.Round(time.Millisecond))
	}
}
