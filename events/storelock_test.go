package events_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
)

// TestStoreInUseIsRefused: a second server on a store a running server
// holds is refused before it opens anything (it used to rewrite the
// running server's index files), and the store is free again once the
// first server stops.
func TestStoreInUseIsRefused(t *testing.T) {
	store := t.TempDir()
	first, err := events.StartNATS(events.NATSConfig{Listen: "127.0.0.1:0", StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	second, err := events.StartNATS(events.NATSConfig{Listen: "127.0.0.1:0", StoreDir: store})
	if err == nil {
		second.Stop()
		first.Stop()
		t.Fatal("a second server started on a store in use")
	}
	if !strings.Contains(err.Error(), "is in use by another process") {
		t.Errorf("second server: %v", err)
	}
	if !first.ReadyForConnections(time.Second) {
		t.Error("the first server stopped serving")
	}
	first.Stop()
	again, err := events.StartNATS(events.NATSConfig{Listen: "127.0.0.1:0", StoreDir: store})
	if err != nil {
		t.Fatalf("the store stayed locked after Stop: %v", err)
	}
	again.Stop()
}

// TestPortInUseFailsAtOnce: a port another process listens on is said at
// once, as such, not as a server that was not ready after its 10 s wait.
func TestPortInUseFailsAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := events.StartNATS(events.NATSConfig{Listen: ln.Addr().String(), StoreDir: t.TempDir()})
	if err == nil {
		s.Stop()
		t.Fatal("started on a port in use")
	}
	if !strings.Contains(err.Error(), "cannot listen on "+ln.Addr().String()) {
		t.Errorf("port in use: %v", err)
	}
}

// TestLogInUseIsRefused: a second daemon on a log another process holds
// (the same --home and name started twice) is told so, and what to do,
// not Pebble's bare "resource temporarily unavailable".
func TestLogInUseIsRefused(t *testing.T) {
	if dir := os.Getenv("VMPOOL_TEST_HOLD_LOG"); dir != "" {
		// The other process: holds the log (or store) until its stdin closes.
		var closer interface{ Close() error }
		var err error
		if strings.HasSuffix(dir, "store") {
			closer, err = events.OpenStore(dir, events.LogOptions{})
		} else {
			closer, err = events.OpenLog(dir, "schedd", events.LogOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("held")
		io.Copy(io.Discard, os.Stdin)
		closer.Close()
		return
	}
	hold := func(dir string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLogInUseIsRefused$")
		cmd.Env = append(os.Environ(), "VMPOOL_TEST_HOLD_LOG="+dir)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close(); cmd.Wait() })
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "held\n" {
			t.Fatalf("the holding process said %q (%v)", line, err)
		}
	}
	dir := filepath.Join(t.TempDir(), "log")
	hold(dir)
	l, err := events.OpenLog(dir, "schedd", events.LogOptions{})
	if err == nil {
		l.Close()
		t.Fatal("a log opened while another process holds it")
	}
	for _, want := range []string{dir, "in use by another process", "--home"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("open: %v\nwant it to say %q", err, want)
		}
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("open: %v does not wrap EWOULDBLOCK", err)
	}
	storeDir := filepath.Join(t.TempDir(), "store")
	hold(storeDir)
	if s, err := events.OpenStore(storeDir, events.LogOptions{}); err == nil {
		s.Close()
		t.Fatal("a store opened while another process holds it")
	} else if !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("open store: %v", err)
	}
}
