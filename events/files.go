package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

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
	h := sha256.New()
	if _, err := store.Put(ctx, jetstream.ObjectMeta{Name: ref.Object, Description: name}, counted(ctx, io.TeeReader(f, h))); err != nil {
		return FileRef{}, fmt.Errorf("store %s as %s: %w", path, ref.Object, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		_ = store.Delete(ctx, ref.Object)
		return FileRef{}, fmt.Errorf("store %s: changed while being stored: %w", path, ErrChecksum)
	}
	return ref, nil
}

// GetFile fetches ref into dst, streaming it into a temporary file in the
// same directory, verifying its hash and size, syncing, then renaming it
// into place: dst is either the old file or the whole new one.
//
// The fetch has no deadline of its own (the object store would give it
// its JetStream handle's default, 5 s, for the whole file, which a disk
// image of gigabytes cannot meet), but it gives up this try, for the
// caller to retry, when its first bytes take FetchFirstByte or later ones
// stop for FetchStall (ErrFetchStalled). The object store's reader can
// lose the start of an object and notice only at its next heartbeat, 5 s
// later: one fetch in a few hundred waited that long.
func GetFile(ctx context.Context, store jetstream.ObjectStore, ref FileRef, dst string) error {
	return getFile(ctx, store, ref, dst, FetchFirstByte)
}

// getFile is GetFile waiting first for its first bytes.
func getFile(ctx context.Context, store jetstream.ObjectStore, ref FileRef, dst string, first time.Duration) error {
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if _, ok := ctx.Deadline(); !ok {
		gctx, cancel = context.WithDeadline(gctx, time.Now().Add(fetchNoDeadline))
		defer cancel()
	}
	wd := newFetchWatch(cancel, first)
	defer wd.stop()
	r, err := store.Get(gctx, ref.Object)
	if err != nil {
		if wd.fired() {
			return fmt.Errorf("fetch %s (%s): nothing within %s (%v): %w", ref.Name, ref.Object, first, err, ErrFetchStalled)
		}
		return fmt.Errorf("fetch %s (%s): %w", ref.Name, ref.Object, err)
	}
	defer r.Close()
	wd.watch(r)
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".part-*")
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
	n, err := io.Copy(io.MultiWriter(tmp, h), counted(ctx, &watchedReader{r: r, wd: wd}))
	if err != nil {
		if wd.fired() {
			return fmt.Errorf("fetch %s (%s): no data for %s after %d of %d bytes (%v): %w", ref.Name, ref.Object,
				wd.limit(n), n, ref.Size, err, ErrFetchStalled)
		}
		return fmt.Errorf("fetch %s (%s): %w", ref.Name, ref.Object, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ref.SHA256 || n != ref.Size {
		return fmt.Errorf("fetch %s (%s): got %d bytes sha256 %s, want %d bytes %s: %w", ref.Name, ref.Object, n, got, ref.Size, ref.SHA256, ErrChecksum)
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

// ErrFetchStalled: a fetch's data stopped coming (GetFile). It is not
// Permanent: the fetch is tried again.
var ErrFetchStalled = errors.New("the bus sent no data")

// FetchFirstByte and FetchStall bound how long a fetch waits for its
// first bytes and, once they flow, for more (GetFile); Bus.GetFile
// doubles the first wait at each try, up to 16 times. Variables for the
// tests.
var (
	FetchFirstByte = 500 * time.Millisecond
	FetchStall     = 30 * time.Second
)

// fetchNoDeadline stands for no deadline on a fetch (see GetFile).
const fetchNoDeadline = 7 * 24 * time.Hour

// fetchWatch gives up a fetch whose data does not come: it cancels the
// fetch's context and closes its reader.
type fetchWatch struct {
	mu     sync.Mutex
	t      *time.Timer
	r      io.Closer
	cancel context.CancelFunc
	first  time.Duration
	done   bool // fired
}

func newFetchWatch(cancel context.CancelFunc, first time.Duration) *fetchWatch {
	w := &fetchWatch{cancel: cancel, first: first}
	w.t = time.AfterFunc(first, w.fire)
	return w
}

func (w *fetchWatch) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	w.cancel()
	if w.r != nil {
		w.r.Close()
	}
}

// watch hands over the reader to close when the watch fires.
func (w *fetchWatch) watch(r io.Closer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.r = r
	if w.done {
		r.Close()
	}
}

// read notes bytes read: the watch waits FetchStall from now.
func (w *fetchWatch) read() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Reset(FetchStall)
	}
}

func (w *fetchWatch) fired() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.done
}

// limit is the wait that ran out after n bytes.
func (w *fetchWatch) limit(n int64) time.Duration {
	if n > 0 {
		return FetchStall
	}
	return w.first
}

func (w *fetchWatch) stop() { w.t.Stop() }

// watchedReader tells its watch of every read that brought bytes.
type watchedReader struct {
	r  io.Reader
	wd *fetchWatch
}

func (r *watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.wd.read()
	}
	return n, err
}

// FileStore returns the object store bucket, binding it (and creating it
// when it is missing and this identity may create it).
func (b *Bus) FileStore(ctx context.Context, bucket string) (jetstream.ObjectStore, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st, ok := b.stores[bucket]; ok {
		return st, nil
	}
	st, err := b.JS.ObjectStore(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = b.JS.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: bucket, Description: "vmpool files", Storage: jetstream.FileStorage, Replicas: max(b.replicas, 1)})
	}
	if err != nil {
		return nil, fmt.Errorf("open file bucket %s: %w", bucket, err)
	}
	if b.stores == nil {
		b.stores = map[string]jetstream.ObjectStore{}
	}
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
	bucket := ref.Bucket
	if bucket == "" {
		return fmt.Errorf("fetch %s: the reference names no bucket: %w", ref.Name, ErrMalformed)
	}
	try := 0
	return b.retryFile(ctx, ref.Name, func(ctx context.Context) error {
		st, err := b.FileStore(ctx, bucket)
		if err != nil {
			return err
		}
		first := FetchFirstByte << min(try, 4)
		try++
		return getFile(ctx, st, ref, dst, first)
	})
}
