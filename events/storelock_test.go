package events_test

import (
	"net"
	"strings"
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
