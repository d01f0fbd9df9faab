package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// testBusAt connects to the NATS server at url and opens the pool's bus
// on it, both closed with the test.
func testBusAt(t *testing.T, url string) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js, err := Connect(ctx, url, ConnectOptions{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	bus, err := OpenBus(ctx, nc, js, BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return bus
}

// newFileBus starts a NATS server of the test's own and a bus on it.
func newFileBus(t *testing.T) *Bus {
	t.Helper()
	s, err := StartNATS(NATSConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return testBusAt(t, s.URL())
}

// fileBus starts a NATS server and a bus for the file tests, and stores
// a file of size bytes in alice's bucket.
func fileBus(t *testing.T, size int) (*Bus, FileRef, []byte) {
	t.Helper()
	bus := newFileBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
	return bus, ref, data
}

// objectInfo is ref's bucket and its object's info as stored now.
func objectInfo(t *testing.T, bus *Bus, ref FileRef) (jetstream.ObjectStore, *jetstream.ObjectInfo) {
	t.Helper()
	ctx := context.Background()
	st, err := bus.FileStore(ctx, ref.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.GetInfo(ctx, ref.Object)
	if err != nil {
		t.Fatal(err)
	}
	return st, info
}

// TestGetFileOutlastsTheDefaultTimeout: a fetch that takes longer than
// its JetStream handle's default timeout, data flowing all along, arrives
// whole (the object store's Get ended every fetch at that timeout: a disk
// image of gigabytes could never come back).
func TestGetFileOutlastsTheDefaultTimeout(t *testing.T) {
	bus, ref, data := fileBus(t, 3<<20)
	js, err := jetstream.New(bus.NC, jetstream.WithDefaultTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// Each chunk (128 KiB, 24 of them) is slowed by 40 ms: about a
	// second in all, three timeouts.
	ctx := withProgress(context.Background(), func(int64) { time.Sleep(40 * time.Millisecond) })
	dst := filepath.Join(t.TempDir(), "disk.img")
	start := time.Now()
	if err := GetFile(ctx, js, ref, dst); err != nil {
		t.Fatalf("a fetch of %s failed: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Fatalf("the fetch took %s: it was not slowed, the test proves nothing", took)
	}
	if got, _ := os.ReadFile(dst); string(got) != string(data) {
		t.Fatal("fetched file differs")
	}
}

// TestGetFileGivesUpAStall: a fetch whose chunks do not come (all lost,
// or the last one) gives up within its wait with ErrFetchStalled, which
// is retried (not Permanent), and leaves the destination as it was.
func TestGetFileGivesUpAStall(t *testing.T) {
	bus, ref, _ := fileBus(t, 1<<20)
	ctx := context.Background()
	_, info := objectInfo(t, bus, ref)
	stream, err := bus.JS.Stream(ctx, "OBJ_"+ref.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	chunks := "$O." + ref.Bucket + ".C." + info.NUID
	defer func(first, stall time.Duration) { FetchFirstByte, FetchStall = first, stall }(FetchFirstByte, FetchStall)
	FetchFirstByte, FetchStall = 200*time.Millisecond, 300*time.Millisecond
	fetch := func(what string) {
		t.Helper()
		dst := filepath.Join(t.TempDir(), "disk.img")
		os.WriteFile(dst, []byte("old"), 0o644)
		start := time.Now()
		err := GetFile(ctx, bus.JS, ref, dst)
		took := time.Since(start)
		if !errors.Is(err, ErrFetchStalled) || Permanent(err) {
			t.Fatalf("%s: %v (permanent %v), want ErrFetchStalled, retried", what, err, Permanent(err))
		}
		if took > 5*time.Second {
			t.Fatalf("%s: gave up after %s", what, took)
		}
		if b, _ := os.ReadFile(dst); string(b) != "old" {
			t.Fatalf("%s: destination changed", what)
		}
		t.Logf("%s: %v after %s", what, err, took.Round(time.Millisecond))
	}
	// The last chunk lost: the data stops.
	last, err := stream.GetLastMsgForSubject(ctx, chunks)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, last.Sequence); err != nil {
		t.Fatal(err)
	}
	fetch("the last chunk lost")
	// Every chunk lost: nothing comes.
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(chunks)); err != nil {
		t.Fatal(err)
	}
	fetch("every chunk lost")
}

// TestGetFileFollowsAReplacedObject: an object stored again (new chunks,
// the old ones purged) while a fetch waits for its first chunk ends that
// read at once with errReplaced, long before the first-byte wait, and a
// fetch then reads the new chunks.
func TestGetFileFollowsAReplacedObject(t *testing.T) {
	bus, ref, data := fileBus(t, 1<<20)
	ctx := context.Background()
	st, old := objectInfo(t, bus, ref)
	// Stored again, as a second startd returning the same disk does.
	if _, err := st.PutBytes(ctx, ref.Object, data); err != nil {
		t.Fatal(err)
	}
	if now, _ := st.GetInfo(ctx, ref.Object); now == nil || now.NUID == old.NUID {
		t.Fatal("storing again kept the chunks: the test proves nothing")
	}
	start := time.Now()
	n, err := readChunks(ctx, bus.JS, st, ref, old, io.Discard, 5*time.Second)
	if !errors.Is(err, errReplaced) || n != 0 {
		t.Fatalf("read of purged chunks: %d bytes, %v; want errReplaced", n, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("errReplaced after %s, not at the first look", took)
	}
	dst := filepath.Join(t.TempDir(), "disk.img")
	if err := GetFile(ctx, bus.JS, ref, dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); string(got) != string(data) {
		t.Fatal("fetched file differs")
	}
}

// TestGetFileFollowsAnObjectReplacedMidway: an object stored again while
// a fetch is half-way through it (the old chunks purged before the fetch
// took them) is fetched again from the start, from its new chunks, a
// second after the chunks stopped, not after FetchStall.
func TestGetFileFollowsAnObjectReplacedMidway(t *testing.T) {
	bus, ref, data := fileBus(t, 8<<20) // 64 chunks, more than a pull takes at once
	ctx := context.Background()
	st, old := objectInfo(t, bus, ref)
	defer func(stall time.Duration) { FetchStall = stall }(FetchStall)
	FetchStall = 20 * time.Second
	stored := false
	pctx := withProgress(ctx, func(done int64) {
		if !stored {
			// After the first chunk: stored again, as a second startd
			// returning the same disk does.
			stored = true
			if _, err := st.PutBytes(ctx, ref.Object, data); err != nil {
				t.Error(err)
			}
		}
	})
	dst := filepath.Join(t.TempDir(), "disk.img")
	start := time.Now()
	if err := GetFile(pctx, bus.JS, ref, dst); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if now, _ := st.GetInfo(ctx, ref.Object); !stored || now == nil || now.NUID == old.NUID {
		t.Fatal("the object was not stored again: the test proves nothing")
	}
	if took >= FetchStall {
		t.Fatalf("the fetch took %s: it waited for the stall, not for the new chunks", took)
	}
	if got, _ := os.ReadFile(dst); string(got) != string(data) {
		t.Fatal("fetched file differs")
	}
	t.Logf("fetched in %s", took.Round(time.Millisecond))
}

// TestGetFileRemovesPartsOfDeadFetches: a fetch killed half-way (a schedd
// killed while it fetched a returned disk into the submit directory) left
// its temporary file, the size of what it had fetched, beside the
// destination for ever. The next fetch of that destination removes the
// parts of fetches whose process is gone, and not those of a running one.
func TestGetFileRemovesPartsOfDeadFetches(t *testing.T) {
	bus, ref, data := fileBus(t, 1<<20)
	dir := t.TempDir()
	dst := filepath.Join(dir, "disk.img")
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	dead := filepath.Join(dir, fmt.Sprintf(".disk.img.part-%d@%s-123", gone.Process.Pid, host))
	live := filepath.Join(dir, fmt.Sprintf(".disk.img.part-%d@%s-456", os.Getpid(), host))
	other := filepath.Join(dir, fmt.Sprintf(".other.img.part-%d@%s-789", gone.Process.Pid, host))
	elsewhere := filepath.Join(dir, fmt.Sprintf(".disk.img.part-%d@another-host-789", gone.Process.Pid))
	for _, p := range []string{dead, live, other, elsewhere} {
		if err := os.WriteFile(p, []byte("half a disk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := GetFile(context.Background(), bus.JS, ref, dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); string(got) != string(data) {
		t.Fatal("fetched file differs")
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the part of a dead fetch is still there (%v)", err)
	}
	for _, p := range []string{live, other, elsewhere} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s, of a running fetch, another file or another host, was removed: %v", filepath.Base(p), err)
		}
	}
}

// TestGetFileKeepsZerosSparse: a disk image that is mostly zeros (a
// sparse raw image, as qemu-img create and truncate make them) was
// written whole by a fetch: a 2 GiB image holding a boot sector came back
// into the submit directory taking 2 GiB of disk. A fetch leaves holes
// for the zero blocks, and the file reads back the same, zeros at its end
// included.
func TestGetFileKeepsZerosSparse(t *testing.T) {
	bus := newFileBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const size = 16 << 20
	data := make([]byte, size)
	copy(data, "boot sector")
	copy(data[size/2+100:], "data in the middle, not block-aligned")
	src := filepath.Join(t.TempDir(), "Sparse Disk.IMG")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := bus.PutFile(ctx, "alice", src, "")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "Sparse Disk.IMG")
	if err := bus.GetFile(ctx, ref, dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != size || string(got) != string(data) {
		t.Fatalf("fetched file differs (%d bytes, want %d)", len(got), size)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dst, &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512; used > 1<<20 {
		t.Fatalf("the fetched %d MiB image, 2 blocks of data, takes %d KiB on disk: its zeros were written", size>>20, used>>10)
	}
}

// TestFetchesLeaveNoConsumers: each fetch reads its file through an
// ordered consumer, which the server kept for five minutes after the
// fetch; a stream takes 1,000 consumers by default (NATS 2.12 and
// later), and a pool whose slots fetched one user's inputs a thousand
// times within five minutes had every further fetch fail ("maximum
// consumers limit reached") and its jobs wait, claimed, for ever. A fetch
// now deletes its consumer, and the bucket's stream takes far more at
// once.
func TestFetchesLeaveNoConsumers(t *testing.T) {
	bus, ref, data := fileBus(t, 3000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	for i := range 20 {
		dst := filepath.Join(dir, fmt.Sprintf("copy%d.img", i))
		if err := bus.GetFile(ctx, ref, dst); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("fetch %d: %v (%d bytes)", i, err, len(got))
		}
	}
	s, err := bus.JS.Stream(ctx, "OBJ_"+ref.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Errorf("20 fetches left %d consumers on the bucket's stream", info.State.Consumers)
	}
	if info.Config.MaxConsumers < fileMaxConsumers {
		t.Errorf("the bucket's stream takes %d consumers at once (the server's default is 1,000), want %d", info.Config.MaxConsumers, fileMaxConsumers)
	}
}

// TestOpenBusUnderAnAccountConsumerLimit: on a server whose account takes
// fewer consumers than the pool's streams ask for (an external cluster's
// admin limited it), the bus still opens, under the account's limit.
func TestOpenBusUnderAnAccountConsumerLimit(t *testing.T) {
	s, err := StartNATS(NATSConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	if err := s.GlobalAccount().UpdateJetStreamLimits(map[string]server.JetStreamAccountLimits{
		"": {MaxMemory: -1, MaxStore: -1, MaxStreams: -1, MaxConsumers: 100}}); err != nil {
		t.Fatal(err)
	}
	bus := testBusAt(t, s.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := bus.JS.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.MaxConsumers; got > 100 {
		t.Errorf("the stream takes %d consumers, above the account's 100", got)
	}
}
