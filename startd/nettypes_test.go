package startd

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events/eventstest"
	"github.com/vmpool/vmpool/startd/hypervisor/sim"
)

// lockedBuffer is a bytes.Buffer that goroutines may write at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestUnofferedNetworkingTypeIsSaid: a networking type the configuration
// offers and the machine cannot give (bridge, for a startd that is not
// root) is left out of the ads, and the startd says so at start (it did
// so silently).
func TestUnofferedNetworkingTypeIsSaid(t *testing.T) {
	_, bus := eventstest.Bus(t)
	var logs lockedBuffer
	d, err := New(Config{Name: "s1", Dir: t.TempDir(), Bus: bus, Driver: sim.New(sim.Config{Networking: []string{"nat"}}), VMMemory: 1024, NumSlots: 1,
		Host: "host", UpdateInterval: time.Hour, AliveInterval: time.Hour, Networking: true, NetworkingTypes: []string{"nat", "bridge"},
		BridgeInterface: "br0", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runReady(t, ctx, cancel, d)
	if s := logs.String(); !strings.Contains(s, "VM_NETWORKING_TYPE offers a networking type this machine cannot give") || !strings.Contains(s, "type=bridge") {
		t.Errorf("no word of the bridge the machine cannot give:\n%s", s)
	}
}
