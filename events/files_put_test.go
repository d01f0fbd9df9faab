package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// dropLog is a NATS server's logger that counts its warnings that it
// dropped messages because a stream's queue of incoming messages was full
// (it says so once per stream and reason).
type dropLog struct{ drops atomic.Int64 }

func (l *dropLog) Warnf(f string, v ...any) {
	if strings.Contains(fmt.Sprintf(f, v...), "Dropping messages") {
		l.drops.Add(1)
	}
}
func (l *dropLog) Noticef(string, ...any) {}
func (l *dropLog) Fatalf(string, ...any)  {}
func (l *dropLog) Errorf(string, ...any)  {}
func (l *dropLog) Debugf(string, ...any)  {}
func (l *dropLog) Tracef(string, ...any)  {}

// queueBus starts a NATS server as StartNATS does (every write synced)
// whose streams queue at most queue bytes of incoming messages (the
// server's default is 128 MiB), and opens a bus on it that does not
// retry file transfers.
func queueBus(t *testing.T, queue int64) (*Bus, *dropLog) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		MaxPayload: MaxEventSize, SyncAlways: true, DisableJetStreamBanner: true,
		StreamMaxBufferedSize: queue,
	})
	if err != nil {
		t.Fatal(err)
	}
	log := &dropLog{}
	ns.SetLoggerV2(log, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	s := &NATSServer{Server: ns}
	t.Cleanup(s.Stop)
	bus := testBusAt(t, s.URL())
	bus.FileRetry = -1
	return bus, log
}

// windowSpy is the JetStream a bucket publishes its chunks through: it
// counts the chunks whose acknowledgement the put has not received yet,
// before the put sees it.
type windowSpy struct {
	jetstream.JetStream
	mu               sync.Mutex
	unacked, peak, n int
}

type spyFuture struct {
	jetstream.PubAckFuture
	ok  chan *jetstream.PubAck
	err chan error
}

func (f *spyFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *spyFuture) Err() <-chan error            { return f.err }

func (s *windowSpy) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f, err := s.JetStream.PublishMsgAsync(m, opts...)
	if err != nil || !strings.Contains(m.Subject, ".C.") {
		return f, err
	}
	s.mu.Lock()
	s.unacked++
	s.n++
	s.peak = max(s.peak, s.unacked)
	s.mu.Unlock()
	sf := &spyFuture{PubAckFuture: f, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	go func() {
		var ack *jetstream.PubAck
		var err error
		select {
		case ack = <-f.Ok():
		case err = <-f.Err():
		}
		s.mu.Lock()
		s.unacked--
		s.mu.Unlock()
		if err != nil {
			sf.err <- err
		} else {
			sf.ok <- ack
		}
	}()
	return sf, nil
}

// TestPutFileBoundsWhatIsInFlight: a put sends its chunks a window at a
// time, so a server whose stream queues less than the file (here 2 MiB
// for a 24 MiB file, as 128 MiB for a disk of gigabytes) drops none of
// them. nats.go's ObjectStore.Put kept up to 4,000 chunks (500 MiB) in
// flight: the server dropped what did not fit and the put failed
// ("stalled with too many outstanding async published messages", or 429
// too many requests), and a 512 MiB disk could not be submitted.
func TestPutFileBoundsWhatIsInFlight(t *testing.T) {
	defer func(w int64) { putWindow = w }(putWindow)
	putWindow = 1 << 20 // 8 chunks
	bus, log := queueBus(t, 2<<20)
	ctx := context.Background()
	data := make([]byte, 24<<20)
	for i := range data {
		data[i] = byte(i*13 + i>>17) // every chunk different
	}
	src := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := bus.FileStore(ctx, UserBucket("alice"))
	if err != nil {
		t.Fatal(err)
	}
	spy := &windowSpy{}
	if fs, ok := st.(*fileStore); ok {
		spy.JetStream = fs.js
		fs.js = spy
	} else {
		t.Errorf("the bus's bucket is a %T, whose Put does not bound what it has in flight", st)
	}
	start := time.Now()
	ref, err := bus.PutFile(ctx, "alice", src, "")
	took := time.Since(start)
	if err != nil {
		t.Fatalf("put of %d MiB failed after %s (the server warned of %d drops): %v", len(data)>>20, took.Round(time.Millisecond), log.drops.Load(), err)
	}
	if n := log.drops.Load(); n > 0 {
		t.Errorf("the server warned %d times that it dropped messages", n)
	}
	want := int(putWindow / putChunkSize)
	if spy.n != len(data)/putChunkSize || spy.peak > want {
		t.Errorf("%d chunks sent, at most %d awaiting their acknowledgement; want %d, at most %d", spy.n, spy.peak, len(data)/putChunkSize, want)
	}
	t.Logf("%d MiB stored in %s, at most %d of %d chunks in flight", len(data)>>20, took.Round(time.Millisecond), spy.peak, want)
	dst := filepath.Join(t.TempDir(), "got.img")
	if err := bus.GetFile(ctx, ref, dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("fetched file differs")
	}
}

// changingStore changes the file at path (same size, other content)
// when PutFile looks its object up, after hashing it and before sending
// it.
type changingStore struct {
	jetstream.ObjectStore
	path string
}

func (s changingStore) GetInfo(ctx context.Context, name string, opts ...jetstream.GetObjectInfoOpt) (*jetstream.ObjectInfo, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, err
	}
	data[len(data)-1] ^= 1 // in the last chunk
	if err := os.WriteFile(s.path, data, 0o644); err != nil {
		return nil, err
	}
	return s.ObjectStore.GetInfo(ctx, name, opts...)
}

// TestAFailedPutLeavesNothing: a put that fails once it sent chunks,
// because the file changed after it was hashed (found at its end, every
// chunk sent) or because it was cancelled half-way, leaves no object, not
// even a deletion marker, and no chunk in the bucket's stream (nats.go's
// Put purged with the cancelled context, which failed, and the changed
// file's object was stored and then deleted).
func TestAFailedPutLeavesNothing(t *testing.T) {
	bus, _ := queueBus(t, 0)
	ctx := context.Background()
	data := bytes.Repeat([]byte("vmpool"), 1<<20) // 6 MiB, 48 chunks
	for _, tc := range []struct {
		user string
		put  func(st jetstream.ObjectStore, src string) error
		want error
	}{
		{"alice", func(st jetstream.ObjectStore, src string) error {
			_, err := PutFile(ctx, changingStore{st, src}, src, "")
			return err
		}, ErrChecksum},
		{"bob", func(st jetstream.ObjectStore, src string) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			_, err := PutFile(withProgress(ctx, func(n int64) {
				if n >= 2<<20 {
					cancel()
				}
			}), st, src, "")
			return err
		}, context.Canceled},
	} {
		src := filepath.Join(t.TempDir(), "disk.img")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		bucket := UserBucket(tc.user)
		st, err := bus.FileStore(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		sum, _, err := HashFile(src) // the object's name
		if err != nil {
			t.Fatal(err)
		}
		if err := tc.put(st, src); !errors.Is(err, tc.want) {
			t.Fatalf("%s: put: %v, want %v", tc.user, err, tc.want)
		}
		if info, err := st.GetInfo(ctx, ObjectName(sum), jetstream.GetObjectInfoShowDeleted()); !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Errorf("%s: the object after a failed put: %+v, %v", tc.user, info, err)
		}
		stream, err := bus.JS.Stream(ctx, "OBJ_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		if si, err := stream.Info(ctx); err != nil || si.State.Msgs != 0 {
			t.Errorf("%s: the bucket's stream after a failed put: %+v, %v; want no message", tc.user, si.State, err)
		}
	}
}
