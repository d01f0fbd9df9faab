package events_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
)

func TestPermanent(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"object gone", fmt.Errorf("fetch x: %w", jetstream.ErrObjectNotFound), true},
		{"bucket gone", jetstream.ErrBucketNotFound, true},
		{"checksum", fmt.Errorf("fetch: %w", events.ErrChecksum), true},
		{"local file", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}, true},
		{"cancelled", context.Canceled, true},
		{"time-out", fmt.Errorf("fetch: %w", context.DeadlineExceeded), false},
		{"no responders", jetstream.ErrNoStreamResponse, false},
		{"unknown", errors.New("raft: no leader"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := events.Permanent(tc.err); got != tc.want {
				t.Fatalf("Permanent(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// retryWatcher is a slog handler that closes retried when a transfer is
// first retried.
type retryWatcher struct {
	slog.Handler
	retried chan struct{}
}

func (w *retryWatcher) Enabled(context.Context, slog.Level) bool { return true }

func (w *retryWatcher) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "retrying") {
		select {
		case <-w.retried:
		default:
			close(w.retried)
		}
	}
	return nil
}

// TestGetFileRetriesAcrossAnOutage: the bus goes away while a file is
// fetched; the fetch retries, and succeeds once the server is back on
// the same store. Without retries it fails at once; a missing object
// fails at once even with them.
func TestGetFileRetriesAcrossAnOutage(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	store := t.TempDir()
	srv, err := events.StartNATS(events.NATSConfig{Listen: addr, StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	nc, js := eventstest.Connect(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bus, err := events.OpenBus(ctx, nc, js, events.BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w := &retryWatcher{Handler: slog.DiscardHandler, retried: make(chan struct{})}
	bus.Logger = slog.New(w)
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(src, []byte("a disk image"), 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := bus.PutFile(ctx, "alice", src, "")
	if err != nil {
		t.Fatal(err)
	}

	missing := ref
	missing.Object = events.ObjectName(strings.Repeat("0", 64))
	if err := bus.GetFile(ctx, missing, filepath.Join(dir, "missing.img")); !errors.Is(err, jetstream.ErrObjectNotFound) || strings.Contains(err.Error(), "tries") {
		t.Fatalf("missing object: %v, want ErrObjectNotFound at the first try", err)
	}

	srv.Stop()
	bus.FileRetry = -1
	if err := bus.GetFile(ctx, ref, filepath.Join(dir, "once.img")); err == nil {
		t.Fatal("a fetch without retries succeeded with the bus down")
	}

	bus.FileRetry = 45 * time.Second
	restarted := make(chan error, 1)
	go func() {
		select {
		case <-w.retried:
		case <-ctx.Done():
			restarted <- ctx.Err()
			return
		}
		s, err := events.StartNATS(events.NATSConfig{Listen: addr, StoreDir: store})
		if err == nil {
			t.Cleanup(s.Stop)
		}
		restarted <- err
	}()
	dst := filepath.Join(dir, "back.img")
	if err := bus.GetFile(ctx, ref, dst); err != nil {
		t.Fatalf("fetch across the outage: %v", err)
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "a disk image" {
		t.Fatalf("fetched %q", b)
	}
}
