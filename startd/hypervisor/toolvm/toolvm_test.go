package toolvm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

func waitFor(t *testing.T, w *Watcher) (hypervisor.Exit, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return w.Wait(ctx)
}

// TestWatcher: how a watch ends, for each way a VM goes.
func TestWatcher(t *testing.T) {
	powerOff := func(ctx context.Context, o Observation) (hypervisor.Exit, error) {
		return hypervisor.Exit{PoweredOff: true, Reason: "off"}, nil
	}
	t.Run("vanished is ended", func(t *testing.T) {
		var n atomic.Int32
		w := NewWatcher(WatchConfig{Interval: time.Millisecond, Ended: powerOff, Poll: func(context.Context) (Observation, error) {
			if n.Add(1) < 3 {
				return Running, nil
			}
			return Vanished, nil
		}})
		w.Start()
		if exit, err := waitFor(t, w); err != nil || !exit.PoweredOff {
			t.Fatalf("Wait = %+v, %v", exit, err)
		}
	})
	t.Run("stopping is not a power-off", func(t *testing.T) {
		w := NewWatcher(WatchConfig{Interval: time.Millisecond, Ended: powerOff, Poll: func(context.Context) (Observation, error) { return Vanished, nil }})
		w.Stopping("stopped")
		w.Start()
		if exit, err := waitFor(t, w); err != nil || exit.PoweredOff || exit.Reason != "stopped" {
			t.Fatalf("Wait = %+v, %v", exit, err)
		}
	})
	t.Run("failed polls end the watch", func(t *testing.T) {
		boom := errors.New("tool broke")
		w := NewWatcher(WatchConfig{Interval: time.Millisecond, MaxErrors: 3, Ended: powerOff, Poll: func(context.Context) (Observation, error) { return 0, boom }})
		w.Start()
		if _, err := waitFor(t, w); !errors.Is(err, boom) {
			t.Fatalf("Wait = %v, want the poll's error", err)
		}
	})
	t.Run("held polls are ignored", func(t *testing.T) {
		var polls atomic.Int32
		vanished := make(chan struct{})
		w := NewWatcher(WatchConfig{Interval: time.Millisecond, Ended: powerOff, Poll: func(context.Context) (Observation, error) {
			polls.Add(1)
			select {
			case <-vanished:
				return Vanished, nil
			default:
				return Running, nil
			}
		}})
		release := w.Hold()
		w.Start()
		close(vanished)
		time.Sleep(20 * time.Millisecond) // polls would see the VM gone now; none must run
		if _, ok := w.Exit(); ok || polls.Load() != 0 {
			t.Fatalf("a held watch polled (%d) or ended", polls.Load())
		}
		release()
		if exit, err := waitFor(t, w); err != nil || !exit.PoweredOff {
			t.Fatalf("Wait after the release = %+v, %v", exit, err)
		}
	})
	t.Run("detach cancels a slow poll", func(t *testing.T) {
		inPoll := make(chan struct{}, 1)
		w := NewWatcher(WatchConfig{Interval: time.Millisecond, Ended: powerOff, Poll: func(ctx context.Context) (Observation, error) {
			inPoll <- struct{}{}
			<-ctx.Done()
			return 0, ctx.Err()
		}})
		w.Start()
		<-inPoll
		w.Detach()
		if _, err := waitFor(t, w); !errors.Is(err, hypervisor.ErrDetached) {
			t.Fatalf("Wait after Detach = %v", err)
		}
	})
	t.Run("settle", func(t *testing.T) {
		w := NewWatcher(WatchConfig{Interval: time.Hour, Ended: powerOff, Poll: func(context.Context) (Observation, error) { return Running, nil }})
		w.Start()
		w.Settle(hypervisor.Exit{Reason: "killed"})
		w.Settle(hypervisor.Exit{Reason: "again"})
		if exit, err := waitFor(t, w); err != nil || exit.Reason != "killed" {
			t.Fatalf("Wait = %+v, %v", exit, err)
		}
	})
}

// TestCopyFileKeepsHoles: a sparse image stays sparse and equal.
func TestCopyFileKeepsHoles(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.img"), filepath.Join(dir, "dst.img")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("head"), 0)
	f.WriteAt([]byte("tail"), 64<<20-4)
	f.Close()
	if err := CopyFile(dst, src); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(dst)
	if !bytes.Equal(a, b) {
		t.Fatal("copy differs")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dst, &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512; used > 8<<20 {
		t.Fatalf("a 64 MiB image with 8 bytes of data takes %d bytes copied", used)
	}
	if err := CopyFile(src, src); err != nil {
		t.Fatalf("copy onto itself: %v", err)
	}
}

// TestRunReportsTheTool: a failing tool's words are in the error.
func TestRunReportsTheTool(t *testing.T) {
	_, err := Run(context.Background(), "sh", "-c", "echo 'Error: it broke'; exit 3")
	var te *ToolError
	if !errors.As(err, &te) || te.Status != 3 || te.Output != "Error: it broke" {
		t.Fatalf("Run = %v", err)
	}
	if _, err := Run(context.Background(), filepath.Join(t.TempDir(), "none")); err == nil || errors.As(err, &te) {
		t.Fatalf("Run of a missing tool = %v", err)
	}
}
