package qmp_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor/qemu/qmp"
)

const testTimeout = time.Minute // against hangs only

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return c
}

// startQEMU runs an empty machine (no firmware, no guest) paused, with its
// QMP socket bound before QEMU starts, and returns the socket path.
func startQEMU(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skipf("qemu not installed: %v", err)
	}
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	f, err := ln.File()
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none", "-S",
		"-chardev", "socket,id=qmp,fd=3,server=on,wait=off", "-mon", "chardev=qmp,mode=control")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return sock
}

func dial(t *testing.T) *qmp.Client {
	t.Helper()
	c, err := qmp.Dial(ctx(t), startQEMU(t))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestExecute(t *testing.T) {
	c := dial(t)
	if v := c.Version(); v.Major < 2 || v.String() == "" {
		t.Fatalf("Version %+v", v)
	}
	var st struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	if err := c.Execute(ctx(t), "query-status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "prelaunch" || st.Running {
		t.Fatalf("query-status = %+v", st)
	}
	if err := c.Execute(ctx(t), "query-name", map[string]any{}, nil); err != nil {
		t.Fatalf("empty arguments: %v", err)
	}
}

func TestErrorReply(t *testing.T) {
	c := dial(t)
	err := c.Execute(ctx(t), "no-such-command", nil, nil)
	var qe *qmp.Error
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" {
		t.Fatalf("Execute(no-such-command) = %v, want CommandNotFound", err)
	}
	err = c.Execute(ctx(t), "query-status", map[string]int{"bogus": 1}, nil)
	if !errors.As(err, &qe) || qe.Class != "GenericError" {
		t.Fatalf("Execute with a bad argument = %v, want GenericError", err)
	}
}

// nextEvent waits for the named event.
func nextEvent(t *testing.T, c *qmp.Client, name string) qmp.Event {
	t.Helper()
	for {
		for _, ev := range c.TakeEvents() {
			if ev.Name == name {
				return ev
			}
		}
		select {
		case <-c.EventsReady():
		case <-c.Done():
			t.Fatalf("connection ended waiting for %s: %v", name, c.Err())
		case <-ctx(t).Done():
			t.Fatalf("no %s event", name)
		}
	}
}

func TestEvents(t *testing.T) {
	c := dial(t)
	if err := c.Execute(ctx(t), "cont", nil, nil); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, c, "RESUME")
	if ev.Time().Before(time.Now().Add(-time.Minute)) {
		t.Fatalf("event time %v", ev.Time())
	}
	if err := c.Execute(ctx(t), "stop", nil, nil); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, c, "STOP")
}

func TestConcurrentExecute(t *testing.T) {
	c := dial(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16*10)
	for range 16 {
		wg.Go(func() {
			for range 10 {
				var st struct{ Status string }
				if err := c.Execute(ctx(t), "query-status", nil, &st); err != nil || st.Status != "prelaunch" {
					errs <- errors.Join(err, errors.New("status "+st.Status))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestPassFile: getfd registers the passed descriptor, so closefd finds
// it once and only once.
func TestPassFile(t *testing.T) {
	c := dial(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := c.ExecuteWithFile(ctx(t), "getfd", map[string]string{"fdname": "x"}, f, nil); err != nil {
		t.Fatalf("getfd: %v", err)
	}
	if err := c.Execute(ctx(t), "closefd", map[string]string{"fdname": "x"}, nil); err != nil {
		t.Fatalf("closefd of a passed fd: %v", err)
	}
	var qe *qmp.Error
	if err := c.Execute(ctx(t), "closefd", map[string]string{"fdname": "x"}, nil); !errors.As(err, &qe) {
		t.Fatalf("second closefd = %v, want a QMP error", err)
	}
	if err := c.Execute(ctx(t), "getfd", map[string]string{"fdname": "y"}, nil); !errors.As(err, &qe) {
		t.Fatalf("getfd without a descriptor = %v, want a QMP error", err)
	}
}

func TestCancelledContext(t *testing.T) {
	c := dial(t)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Execute(cctx, "query-status", nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Execute with a cancelled context = %v", err)
	}
	// The connection still works.
	if err := c.Execute(ctx(t), "query-status", nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestQuitEndsConnection(t *testing.T) {
	c := dial(t)
	if err := c.Execute(ctx(t), "quit", nil, nil); err != nil && !errors.Is(err, qmp.ErrClosed) {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-ctx(t).Done():
		t.Fatal("connection still open after quit")
	}
	if !errors.Is(c.Err(), qmp.ErrClosed) {
		t.Fatalf("Err = %v", c.Err())
	}
	if err := c.Execute(ctx(t), "query-status", nil, nil); !errors.Is(err, qmp.ErrClosed) {
		t.Fatalf("Execute after quit = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestHandshakeBounded: a socket that accepts but never greets (another
// client holds QEMU's monitor) fails with the context's error.
func TestHandshakeBounded(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mute.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		conn, err := ln.Accept()
		if err == nil {
			var b [1]byte
			conn.Read(b[:]) // until the client gives up
			conn.Close()
		}
	})
	cctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := qmp.Dial(cctx, sock); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a mute socket = %v", err)
	}
	if _, err := qmp.Dial(ctx(t), filepath.Join(t.TempDir(), "none.sock")); err == nil {
		t.Fatal("Dial to a missing socket succeeded")
	}
}
