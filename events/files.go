package events

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// FileRef names a file stored in the pool's object store. Objects are
// content-addressed ("sha256-<hex>"), so a disk image that a thousand jobs
// share is stored once, and a returned disk is verified against its hash.
type FileRef struct {
	Name   string `json:"name"`             // base name in the job's directory, e.g. "hello.img"
	Bucket string `json:"bucket,omitempty"` // object store bucket: the owner's (UserBucket)
	Object string `json:"object"`           // object name in Bucket
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ErrChecksum reports a stored or received file whose content does not
// match its recorded hash.
var ErrChecksum = NewError("checksum-mismatch", "file content does not match its checksum")

// HashFile returns the SHA-256 (hex) and size of the file at path.
func HashFile(path string) (sum string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ObjectName is the object store name of content with this SHA-256.
func ObjectName(sum string) string { return "sha256-" + sum }

// PutFile stores the file at path under its content hash, streaming it
// (the object store chunks it), unless an object of that content is
// already there. name is the FileRef's Name (default: the base name).
//
// A bucket from Bus.FileStore sends the chunks a window at a time
// (putObject); store may wrap one (the CLI's wraps it to draw a progress
// bar). Any other store's Put is nats.go's, which cannot store a file of
// a few hundred MiB (see putWindow).
func PutFile(ctx context.Context, store jetstream.ObjectStore, path, name string) (FileRef, error) {
	if name == "" {
		name = filepath.Base(path)
	}
	sum, size, err := HashFile(path)
	if err != nil {
		return FileRef{}, fmt.Errorf("store %s: %w", path, err)
	}
	ref := FileRef{Name: name, Object: ObjectName(sum), Size: size, SHA256: sum}
	if info, err := store.GetInfo(ctx, ref.Object); err == nil && int64(info.Size) == size && !info.Deleted {
		return ref, nil
	} else if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return FileRef{}, fmt.Errorf("store %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return FileRef{}, fmt.Errorf("store %s: %w", path, err)
	}
	defer f.Close()
	// Hash again while uploading: the file may have changed since the
	// first pass, and the object must hold exactly the hashed content.
	// The check comes at the end of the file, before Put stores the
	// object's meta: a changed file fails the put, whose chunks are purged,
	// and the object is never seen.
	h := sha256.New()
	src := &verifyingReader{r: io.TeeReader(f, h), h: h, sum: sum, size: size}
	if _, err := store.Put(ctx, jetstream.ObjectMeta{Name: ref.Object, Description: name}, counted(ctx, src)); err != nil {
		if errors.Is(err, errChanged) {
			return FileRef{}, fmt.Errorf("store %s: changed while being stored: %w", path, ErrChecksum)
		}
		return FileRef{}, fmt.Errorf("store %s as %s: %w", path, ref.Object, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		// A Put that did not read to the end.
		_ = store.Delete(ctx, ref.Object)
		return FileRef{}, fmt.Errorf("store %s: changed while being stored: %w", path, ErrChecksum)
	}
	return ref, nil
}

// errChanged ends the reading of a file whose content is not what was
// hashed (verifyingReader).
var errChanged = errors.New("the file changed while being stored")

// verifyingReader reads r, which feeds h, and at its end returns
// errChanged instead of io.EOF unless the content read has size bytes
// and SHA-256 sum.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	sum  string
	size int64
	n    int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	if err == io.EOF && (v.n != v.size || hex.EncodeToString(v.h.Sum(nil)) != v.sum) {
		return n, errChanged
	}
	return n, err
}

// putWindow bounds the bytes of chunks one put has sent and JetStream has
// not acknowledged yet (at least one chunk). Without a bound (nats.go's
// ObjectStore.Put keeps up to 4,000 chunks, 500 MiB, in flight) a put
// outruns a stream that syncs every write, and the server, whose queue of
// a stream's incoming messages holds at most 128 MiB (nats-server's
// streamDefaultMaxQueueBytes), drops the rest ("Dropping messages due to
// excessive stream ingest rate") and answers 429: a 512 MiB disk could
// not be submitted. On 2 vCPUs a 512 MiB put went as fast with a window
// of 1, 2, 4, 8 or 16 MiB (medians of five runs 196, 190, 199, 172 and
// 210 MiB/s: the disk's noise), and 32 puts of 64 MiB at once into one
// bucket all went through with 4 MiB, while with 8 MiB the server
// dropped some: 4 MiB (32 chunks), 32 puts to fill the queue. A variable
// for the tests.
var putWindow int64 = 4 << 20

// putChunkSize is the size of an object's chunks: nats.go's (128 KiB).
const putChunkSize = 128 << 10

// fileStore is an object store bucket whose Put sends an object's chunks
// through js, at most putWindow bytes of them awaiting their
// acknowledgement (putObject).
type fileStore struct {
	jetstream.ObjectStore
	js     jetstream.JetStream
	bucket string
}

func (s *fileStore) Put(ctx context.Context, meta jetstream.ObjectMeta, r io.Reader) (*jetstream.ObjectInfo, error) {
	return putObject(ctx, s.js, s.ObjectStore, s.bucket, meta, r)
}

func (s *fileStore) PutBytes(ctx context.Context, name string, data []byte) (*jetstream.ObjectInfo, error) {
	return s.Put(ctx, jetstream.ObjectMeta{Name: name}, bytes.NewReader(data))
}

func (s *fileStore) PutString(ctx context.Context, name string, data string) (*jetstream.ObjectInfo, error) {
	return s.Put(ctx, jetstream.ObjectMeta{Name: name}, strings.NewReader(data))
}

func (s *fileStore) PutFile(ctx context.Context, file string) (*jetstream.ObjectInfo, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return s.Put(ctx, jetstream.ObjectMeta{Name: file}, f)
}

// putObject stores what r reads as the object meta.Name of store, bucket
// bucket, as nats.go's ObjectStore.Put does (the same chunk and meta
// messages: its Get and GetInfo, and readChunks, read them), but with at
// most putWindow bytes of chunks awaiting their acknowledgement: before
// sending more it waits for the oldest. The meta, which makes the object
// visible, is published once every chunk is acknowledged (nats.go's went
// out with chunks still in flight, and stayed when one of them was
// refused after it, naming chunks that the failed put then purged). A put that fails purges
// the chunks it sent, once none is in flight any more (one stored after
// the purge would stay forever).
func putObject(ctx context.Context, js jetstream.JetStream, store jetstream.ObjectStore, bucket string, meta jetstream.ObjectMeta, r io.Reader) (*jetstream.ObjectInfo, error) {
	if meta.Name == "" {
		return nil, jetstream.ErrBadObjectMeta
	}
	if meta.Opts == nil {
		meta.Opts = &jetstream.ObjectMetaOptions{}
	}
	if meta.Opts.Link != nil {
		return nil, jetstream.ErrLinkNotAllowed
	}
	if meta.Opts.ChunkSize == 0 {
		meta.Opts.ChunkSize = putChunkSize
	}
	// The object's chunks before this put, purged once it succeeded.
	old, err := store.GetInfo(ctx, meta.Name, jetstream.GetObjectInfoShowDeleted())
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, err
	}
	info := &jetstream.ObjectInfo{ObjectMeta: meta, Bucket: bucket, NUID: rand.Text()}
	subject := "$O." + bucket + ".C." + info.NUID
	size := int64(meta.Opts.ChunkSize)
	// A ring of the chunks in flight, oldest at head. A chunk's buffer is
	// used again only once its publish is settled: nats.go publishes a
	// message again from its buffer when the stream had no responders (a
	// leader election).
	type sent struct {
		buf []byte
		f   jetstream.PubAckFuture
	}
	ring := make([]sent, max(1, putWindow/size))
	head, inFlight := 0, 0
	settle := func(ctx context.Context) error {
		f := ring[head].f
		ring[head].f = nil
		head, inFlight = (head+1)%len(ring), inFlight-1
		return awaitAck(ctx, f)
	}
	fail := func(err error) (*jetstream.ObjectInfo, error) {
		// Cleaning up after a cancelled put too.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), PublishAckTimeout)
		defer cancel()
		for inFlight > 0 {
			if settle(cctx) != nil && cctx.Err() != nil {
				break
			}
		}
		purgeChunks(cctx, js, bucket, subject)
		return nil, err
	}
	h := sha256.New()
	var total uint64
	var chunks uint32
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if inFlight == len(ring) {
			if err := settle(ctx); err != nil {
				return fail(err)
			}
		}
		slot := &ring[(head+inFlight)%len(ring)]
		if slot.buf == nil {
			slot.buf = make([]byte, size)
		}
		n, rerr := io.ReadFull(r, slot.buf)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return fail(rerr)
		}
		if n > 0 {
			h.Write(slot.buf[:n])
			f, err := js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: slot.buf[:n]})
			if err != nil {
				return fail(err)
			}
			slot.f = f
			inFlight++
			total += uint64(n)
			chunks++
		}
		if rerr != nil {
			break
		}
	}
	for inFlight > 0 {
		if err := settle(ctx); err != nil {
			return fail(err)
		}
	}
	info.Size, info.Chunks, info.Digest = total, chunks, jetstream.GetObjectDigestValue(h)
	data, err := json.Marshal(info)
	if err != nil {
		return fail(err)
	}
	m := nats.NewMsg("$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(meta.Name)))
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Data = data
	if _, err := js.PublishMsg(ctx, m); err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) || errors.Is(err, jetstream.ErrNoStreamResponse) {
			return fail(err) // refused: the object is not there
		}
		// No answer: the meta may be stored all the same, and then its
		// chunks must stay.
		if now, gerr := store.GetInfo(context.WithoutCancel(ctx), meta.Name); gerr != nil || now.NUID != info.NUID {
			return nil, err
		}
	}
	info.ModTime = time.Now().UTC()
	if old != nil && !old.Deleted && old.NUID != "" {
		purgeChunks(ctx, js, bucket, "$O."+bucket+".C."+old.NUID)
	}
	return info, nil
}

// awaitAck waits for f's acknowledgement, for PublishAckTimeout at most
// (the handle's own time-out may be none).
func awaitAck(ctx context.Context, f jetstream.PubAckFuture) error {
	t := time.NewTimer(PublishAckTimeout)
	defer t.Stop()
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no acknowledgement of a chunk in %s: %w", PublishAckTimeout, jetstream.ErrAsyncPublishTimeout)
	}
}

// purgeChunks purges the chunks on subject from bucket's stream, as
// nats.go's Put does (an error is let go: the chunks stay unused).
func purgeChunks(ctx context.Context, js jetstream.JetStream, bucket, subject string) {
	if st, err := js.Stream(ctx, "OBJ_"+bucket); err == nil {
		_ = st.Purge(ctx, jetstream.WithPurgeSubject(subject))
	}
}

// GetFile fetches ref from js's object store into dst, streaming it into
// a temporary file in the same directory, verifying its hash and size,
// syncing, then renaming it into place: dst is either the old file or the
// whole new one.
//
// It reads the object's chunks with an ordered pull consumer of its own,
// not the object store's Get: that one ends every fetch at the JetStream
// handle's default timeout (5 s), which a disk image of gigabytes cannot
// meet, and its reader, once its first chunk was lost (one fetch in a few
// hundred), waited out that timeout and could not be stopped sooner. The
// fetch has no deadline of its own; it gives up this try, for the caller
// to retry, when its first bytes take FetchFirstByte or later ones stop
// for FetchStall (ErrFetchStalled).
func GetFile(ctx context.Context, js jetstream.JetStream, ref FileRef, dst string) error {
	if ref.Bucket == "" {
		return fmt.Errorf("fetch %s: the reference names no bucket: %w", ref.Name, ErrMalformed)
	}
	store, err := js.ObjectStore(ctx, ref.Bucket)
	if err != nil {
		return fmt.Errorf("fetch %s: open file bucket %s: %w", ref.Name, ref.Bucket, err)
	}
	return getFile(ctx, js, store, ref, dst, FetchFirstByte)
}

// A fetch streams into a temporary file named .NAME.part-PID@HOST-RANDOM
// beside its destination NAME: its process and host, so that a later
// fetch can tell the part of a fetch whose process died (a schedd killed
// while it fetched a returned disk into the submit directory) from that
// of a running one.
func partPrefix(dst string) string { return "." + filepath.Base(dst) + ".part-" }

func partOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s", os.Getpid(), host)
}

// removeDeadParts removes the parts that fetches into dst left when their
// process died: those of this host whose process is gone. The parts of a
// running process (this one's own, another fetch of dst), and of other
// hosts, are left alone.
func removeDeadParts(dst string) {
	dir, prefix := filepath.Dir(dst), partPrefix(dst)
	host, _ := os.Hostname()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		i := strings.LastIndexByte(rest, '-')
		if !ok || i < 0 || e.IsDir() {
			continue
		}
		pidText, partHost, ok := strings.Cut(rest[:i], "@")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || partHost != host {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// getFile is GetFile from store, ref's bucket, waiting first for its first
// bytes.
func getFile(ctx context.Context, js jetstream.JetStream, store jetstream.ObjectStore, ref FileRef, dst string, first time.Duration) error {
	ictx, icancel := context.WithTimeout(ctx, first)
	info, err := store.GetInfo(ictx, ref.Object)
	icancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(ictx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("fetch %s (%s): no answer within %s (%v): %w", ref.Name, ref.Object, first, err, ErrFetchStalled)
		}
		return fmt.Errorf("fetch %s (%s): %w", ref.Name, ref.Object, err)
	}
	removeDeadParts(dst)
	tmp, err := os.CreateTemp(filepath.Dir(dst), partPrefix(dst)+partOwner()+"-*")
	if err != nil {
		return fmt.Errorf("fetch %s: %w", ref.Name, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	sw := &sparseWriter{f: tmp}
	n, err := readChunks(ctx, js, store, ref, info, io.MultiWriter(sw, h), first)
	for again := 0; errors.Is(err, errReplaced) && again < 3; again++ {
		// Stored again meanwhile (readChunks): read the new chunks, from
		// the start.
		if n > 0 {
			if err = tmp.Truncate(0); err != nil {
				return fmt.Errorf("fetch %s: %w", ref.Name, err)
			}
			sw.off = 0
			h.Reset()
		}
		if info, err = store.GetInfo(ctx, ref.Object); err == nil {
			n, err = readChunks(ctx, js, store, ref, info, io.MultiWriter(sw, h), first)
		}
	}
	if err != nil {
		return fmt.Errorf("fetch %s (%s): %w", ref.Name, ref.Object, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ref.SHA256 || n != ref.Size {
		return fmt.Errorf("fetch %s (%s): got %d bytes sha256 %s, want %d bytes %s: %w", ref.Name, ref.Object, n, got, ref.Size, ref.SHA256, ErrChecksum)
	}
	// A file that ends in zeros ends in a hole: give it its length.
	if err := tmp.Truncate(sw.off); err != nil {
		return fmt.Errorf("fetch %s: %w", ref.Name, err)
	}
	// The new file takes the old one's permissions (a returned disk is the
	// user's file, updated), or 0644 when there was none.
	mode := os.FileMode(0o644)
	if st, err := os.Stat(dst); err == nil {
		mode = st.Mode().Perm()
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("fetch %s: %w", ref.Name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fetch %s: %w", ref.Name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("fetch %s: %w", ref.Name, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("fetch %s: %w", ref.Name, err)
	}
	ok = true
	return nil
}

// sparseBlock is the unit sparseWriter leaves a hole for: a file
// system's block.
const sparseBlock = 4096

var zeroBlock [sparseBlock]byte

// sparseWriter writes to f from offset off on, skipping (leaving a hole
// for) every block of zeros: a disk image that is mostly empty, such as a
// sparse 2 GiB raw image holding a few MiB, stays sparse on the execute
// machine and when it comes back into the submit directory, as cp and
// rsync -S keep it, instead of taking its whole size on disk. The file
// must be new (its skipped blocks then read as zeros), and be truncated
// to off at the end, so that trailing zeros count in its length.
type sparseWriter struct {
	f   *os.File
	off int64
}

func (w *sparseWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		// Skip the zero blocks, then write the run of data blocks
		// that follows them in one call.
		z := blocksWhile(p, true)
		w.off += int64(z)
		p = p[z:]
		if d := blocksWhile(p, false); d > 0 {
			if _, err := w.f.WriteAt(p[:d], w.off); err != nil {
				return n - len(p), err
			}
			w.off += int64(d)
			p = p[d:]
		}
	}
	return n, nil
}

// blocksWhile is the length of p's leading run of sparseBlock blocks (the
// last may be short) that are all zeros (zero) or none of them (!zero).
func blocksWhile(p []byte, zero bool) int {
	i := 0
	for i < len(p) {
		end := min(i+sparseBlock, len(p))
		if bytes.Equal(p[i:end], zeroBlock[:end-i]) != zero {
			break
		}
		i = end
	}
	return i
}

// ErrFetchStalled: a fetch's data stopped coming (GetFile). It is not
// Permanent: the fetch is tried again.
var ErrFetchStalled = errors.New("the bus sent no data")

// chunkLate is how late a chunk after the first may be before the
// object is looked up again (readChunks).
const chunkLate = time.Second

// errReplaced ends a read of chunks that the object no longer has.
var errReplaced = errors.New("the object was stored again")

// FetchFirstByte and FetchStall bound how long a fetch waits for its
// first bytes and, once they flow, for more (GetFile); Bus.GetFile
// doubles the first wait at each try, up to 16 times. Variables for the
// tests.
var (
	FetchFirstByte = 500 * time.Millisecond
	FetchStall     = 30 * time.Second
)

// readChunks writes the chunks of the object info describes to w, in
// order, and returns how many bytes it wrote.
//
// An object stored again (two startds returning the same disk at once:
// objects are named by their content) gets new chunks, and the old ones
// are purged, maybe before this fetch read them: when a chunk is late
// (the first by 100 ms, a later one by a second), the object's chunk set
// is looked up again, and a new one ends this read with errReplaced.
func readChunks(ctx context.Context, js jetstream.JetStream, store jetstream.ObjectStore, ref FileRef, info *jetstream.ObjectInfo, w io.Writer, first time.Duration) (int64, error) {
	if info.Size == 0 {
		return 0, nil
	}
	stream := "OBJ_" + ref.Bucket
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"$O." + ref.Bucket + ".C." + info.NUID}, InactiveThreshold: fetchConsumerIdle})
	if err != nil {
		return 0, err
	}
	// The server keeps an ordered consumer until it has been idle for its
	// InactiveThreshold: deleted as the fetch ends, it does not count
	// against the stream's consumers (MaxConsumers, 1,000 by default)
	// while thousands of jobs fetch their inputs.
	defer DeleteConsumer(js, stream, cons)
	it, err := cons.Messages(jetstream.PullMaxMessages(32), jetstream.PullExpiry(10*time.Second), jetstream.PullHeartbeat(2*time.Second))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	var fired, replaced atomic.Bool
	t := time.AfterFunc(first, func() { fired.Store(true); it.Stop() })
	defer t.Stop()
	check := time.AfterFunc(min(first/5, 100*time.Millisecond), func() {
		cctx, cancel := context.WithTimeout(ctx, first)
		defer cancel()
		if now, err := store.GetInfo(cctx, ref.Object); err == nil && now.NUID != info.NUID {
			replaced.Store(true)
			it.Stop()
		}
	})
	defer check.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	progress := progressOf(ctx)
	var n int64
	for uint64(n) < info.Size {
		m, err := it.Next()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return n, ctx.Err()
			case replaced.Load():
				return n, errReplaced
			case fired.Load():
				wait := FetchStall
				if n == 0 {
					wait = first
				}
				return n, fmt.Errorf("no data for %s after %d of %d bytes: %w", wait, n, info.Size, ErrFetchStalled)
			}
			return n, err
		}
		if replaced.Load() {
			// Looked up as the chunk came: the iterator is stopped.
			return n, errReplaced
		}
		check.Reset(chunkLate)
		if !t.Stop() {
			// Fired as the chunk came: the iterator is stopped.
			return n, fmt.Errorf("no data in time after %d of %d bytes: %w", n, info.Size, ErrFetchStalled)
		}
		data := m.Data()
		if _, err := w.Write(data); err != nil {
			return n, err
		}
		n += int64(len(data))
		if progress != nil {
			progress(n)
		}
		t.Reset(FetchStall)
	}
	return n, nil
}

// fetchConsumerIdle is how long the server keeps a fetch's consumer
// that was not deleted (its fetcher died): nats.go's default is 5 minutes.
const fetchConsumerIdle = 30 * time.Second

// DeleteConsumer deletes the consumer cons (an ordered consumer: the one
// it has now) from stream at once, rather than when the server finds it
// idle. For a reader that ends: it keeps the stream's consumers few.
func DeleteConsumer(js jetstream.JetStream, stream string, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = js.DeleteConsumer(ctx, stream, info.Name) // else it goes when idle
}

// fileMaxConsumers is the consumers a file bucket's stream takes at once
// (each fetch has one): NATS servers since 2.12 allow 1,000 per stream
// unless the stream says otherwise, and a pool of thousands of slots
// fetching one user's inputs at once went past it ("maximum consumers
// limit reached": the fetches failed until consumers expired). The event
// stream takes as many (every vmpool events, watch and wait reads it
// through one).
const fileMaxConsumers = streamMaxConsumers

// liftConsumerLimit sets a file bucket's stream's MaxConsumers to
// fileMaxConsumers when it is lower (or the server's default). A user's
// bus (no collector configuration: BindBus without the pool's sizing)
// may not update streams and leaves it as it is (its request would wait
// for an answer that never comes); the daemons that fetch (startds,
// schedds) may.
func (b *Bus) liftConsumerLimit(ctx context.Context, bucket string) {
	if b.collector == nil {
		return
	}
	// Asked again when unanswered: servers updating the same stream at
	// once (a new cluster's vmpool nats) hear back from one (askAgain).
	_ = askAgain(ctx, func(ctx context.Context) error {
		s, err := b.JS.Stream(ctx, "OBJ_"+bucket)
		if err != nil {
			return err
		}
		cfg := s.CachedInfo().Config
		if cfg.MaxConsumers >= fileMaxConsumers {
			return nil
		}
		cfg.MaxConsumers = fileMaxConsumers
		_, err = b.JS.UpdateStream(ctx, cfg)
		return err
	})
}

// FileStore returns the object store bucket, binding it (and creating it
// when it is missing and this identity may create it). Its Put sends the
// chunks a window at a time (putObject).
func (b *Bus) FileStore(ctx context.Context, bucket string) (jetstream.ObjectStore, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st, ok := b.stores[bucket]; ok {
		return st, nil
	}
	var st jetstream.ObjectStore
	err := askAgain(ctx, func(ctx context.Context) (err error) {
		st, err = b.JS.ObjectStore(ctx, bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			st, err = b.JS.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
				Bucket: bucket, Description: "vmpool files", Storage: jetstream.FileStorage, Replicas: max(b.replicas, 1)})
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open file bucket %s: %w", bucket, err)
	}
	b.liftConsumerLimit(ctx, bucket)
	if b.stores == nil {
		b.stores = map[string]jetstream.ObjectStore{}
	}
	st = &fileStore{ObjectStore: st, js: b.JS, bucket: bucket}
	b.stores[bucket] = st
	return st, nil
}

// PutFile stores the file at path in user's bucket (see PutFile),
// retrying for b.FileRetry when the bus fails for a passing reason.
func (b *Bus) PutFile(ctx context.Context, user, path, name string) (FileRef, error) {
	bucket := UserBucket(user)
	var ref FileRef
	err := b.retryFile(ctx, path, func(ctx context.Context) error {
		st, err := b.FileStore(ctx, bucket)
		if err != nil {
			return err
		}
		ref, err = PutFile(ctx, st, path, name)
		return err
	})
	ref.Bucket = bucket
	return ref, err
}

// GetFile fetches ref from its bucket into dst (see GetFile), retrying
// for b.FileRetry when the bus fails for a passing reason: a missing
// object or a checksum mismatch is final (Permanent).
func (b *Bus) GetFile(ctx context.Context, ref FileRef, dst string) error {
	if ref.Bucket == "" {
		return fmt.Errorf("fetch %s: the reference names no bucket: %w", ref.Name, ErrMalformed)
	}
	try := 0
	return b.retryFile(ctx, ref.Name, func(ctx context.Context) error {
		st, err := b.FileStore(ctx, ref.Bucket)
		if err != nil {
			return err
		}
		first := FetchFirstByte << min(try, 4)
		try++
		return getFile(ctx, b.JS, st, ref, dst, first)
	})
}
