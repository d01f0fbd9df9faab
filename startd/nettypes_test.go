package startd

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
	"github.com/vmpool/vmpool/startd/hypervisor"
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

// specRecorder is a driver that reports each VM's Spec as it starts it.
type specRecorder struct {
	hypervisor.Driver
	specs chan hypervisor.Spec
}

func (s *specRecorder) Start(ctx context.Context, spec hypervisor.Spec) (hypervisor.VM, error) {
	s.specs <- spec
	return s.Driver.Start(ctx, spec)
}

// TestJobNetworkIsWhatTheMachineGives: on a machine configured for
// "nat, bridge" with VM_NETWORKING_DEFAULT_TYPE = bridge that cannot give
// bridge (not root, or its bridge missing: it advertises only nat), a job
// asking for networking without a type got bridge, the configured
// default, matched by the advertised nat: its start failed, the job was
// requeued and the machine's VMs disabled for VM_RECHECK_INTERVAL. It now
// gets nat. A job that overrode its Requirements to land here with
// vm_networking_type = bridge is held for it (its fault), rather than
// disabling the machine.
func TestJobNetworkIsWhatTheMachineGives(t *testing.T) {
	_, bus := eventstest.Bus(t)
	rec := &specRecorder{Driver: sim.New(sim.Config{Networking: []string{"nat"}}), specs: make(chan hypervisor.Spec, 4)}
	d, err := New(Config{Name: "s1", Dir: t.TempDir(), Bus: bus, Driver: rec, VMMemory: 1024, NumSlots: 2,
		Host: "host", UpdateInterval: time.Hour, AliveInterval: time.Hour, Networking: true, NetworkingTypes: []string{"nat", "bridge"},
		DefaultNetworkingType: "bridge", BridgeInterface: "br0", RecheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runReady(t, ctx, cancel, d)
	disk := filepath.Join(t.TempDir(), "hello.img")
	if err := os.WriteFile(disk, make([]byte, 512), 0o644); err != nil {
		t.Fatal(err)
	}
	claim := func(cluster int, slot, extra string) {
		t.Helper()
		req := events.ClaimRequest{ClaimID: fmt.Sprintf("c%d", cluster), Schedd: "schedd", Job: events.JobID{Cluster: cluster}, Slot: slot, Owner: "alice",
			JobAd: fmt.Sprintf(`[ ClusterId = %d; ProcId = 0; Owner = "alice"; JobVMType = "sim"; JobVMMemory = 100; SimRunSeconds = 3600; VMPARAM_vm_Disk = "%s:hda:w:raw"; JobVMNetworking = true; %s Requirements = true ]`, cluster, disk, extra)}
		mustClaim(t, ctx, d, req)
	}
	held, err := bus.JS.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"vmpool.ev.startd.s1.job.schedd.2.0." + events.VMFailed}})
	if err != nil {
		t.Fatal(err)
	}

	claim(1, "slot1@s1", "")
	select {
	case spec := <-rec.specs:
		if !spec.Network.Enabled || spec.Network.Type != "nat" {
			t.Errorf("an untyped networking job got %+v on a machine that gives only nat", spec.Network)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the untyped networking job's VM did not start")
	}

	claim(2, "slot2@s1", `JobVMNetworkingType = "bridge";`)
	m, err := held.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		select {
		case spec := <-rec.specs:
			t.Fatalf("a bridge job started with %+v on a machine that cannot give bridge", spec.Network)
		default:
		}
		t.Fatalf("no VMFailed for the bridge job: %v", err)
	}
	e, err := events.Decode(m.Data())
	if err != nil {
		t.Fatal(err)
	}
	var p events.VMEventPayload
	if err := e.Decode(&p); err != nil {
		t.Fatal(err)
	}
	if !p.Hold || !strings.Contains(p.Reason, "VMGAHP_ERR_JOBCLASSAD_MISMATCHED_NETWORKING_TYPE") || !strings.Contains(p.Reason, "this machine offers nat") {
		t.Errorf("the bridge job failed with %+v; want a hold for VMGAHP_ERR_JOBCLASSAD_MISMATCHED_NETWORKING_TYPE saying the machine offers nat", p)
	}
	if ok, why := d.VMsAvailable(); !ok {
		t.Errorf("the machine's VMs are disabled after a job's mismatched networking: %s", why)
	}
}

// bridgeLater is a driver that can give bridge once told to (its bridge
// made after the startd started).
type bridgeLater struct {
	hypervisor.Driver
	bridge atomic.Bool
}

func (b *bridgeLater) Probe(ctx context.Context) (hypervisor.Fingerprint, error) {
	fp, err := b.Driver.Probe(ctx)
	if b.bridge.Load() {
		fp.Networking = append(fp.Networking, "bridge")
	} else {
		fp.NetworkingNote = "VM_NETWORKING_BRIDGE_INTERFACE = br0: no interface"
	}
	return fp, err
}

// TestBridgeMadeLaterIsAdvertised: a startd configured for nat, bridge
// whose bridge did not exist when it started advertised nat only until it
// was restarted, though the administrator made the bridge; it now probes
// again every VM_RECHECK_INTERVAL while a configured type is missing, and
// advertises bridge once the machine can give it.
func TestBridgeMadeLaterIsAdvertised(t *testing.T) {
	_, bus := eventstest.Bus(t)
	drv := &bridgeLater{Driver: sim.New(sim.Config{Networking: []string{"nat"}})}
	d, err := New(Config{Name: "s1", Dir: t.TempDir(), Bus: bus, Driver: drv, VMMemory: 1024, NumSlots: 1,
		Host: "host", UpdateInterval: time.Hour, AliveInterval: time.Hour, Networking: true, NetworkingTypes: []string{"nat", "bridge"},
		BridgeInterface: "br0", RecheckInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := bus.Collector.Watch(ctx, "slot.s1.slot1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	runReady(t, ctx, cancel, d)
	types := func() string {
		t.Helper()
		v, _ := nextAdPut(t, w, 10*time.Second).EvalString("VM_Networking_Types")
		return v
	}
	if got := types(); got != "nat" {
		t.Fatalf("VM_Networking_Types = %q before the bridge exists, want nat", got)
	}
	drv.bridge.Store(true)
	if got := types(); got != "nat,bridge" {
		t.Errorf("VM_Networking_Types = %q once the bridge exists, want nat,bridge", got)
	}
}
