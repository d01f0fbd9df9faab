package startd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/sim"
)

// TestAdvertisePutsOnlyChangedAds runs a startd of three sim slots on a
// real embedded NATS server and counts the collector puts: a change
// signal that changed nothing puts no ad; a claim puts its slot's ad
// only, though it takes from what every slot advertises of the machine
// (VM_Memory, VM_AvailNum): the other slots' ads keep the old figures
// until the refresh, as HTCondor's do. A claim refused for want of what
// those stale ads promised puts them all at once. A claim's ad waits for
// its VM to start (one put, Busy) unless the start is slow. What a claim
// gives back, or a claim that leaves nothing, goes out at once to the
// unclaimed slots, not to the claimed ones. Whatever was skipped, the
// collector ends up with every slot's current ad.
func TestAdvertisePutsOnlyChangedAds(t *testing.T) {
	_, bus := eventstest.Bus(t)
	slow := &slowStart{Driver: sim.New(sim.Config{})}
	d, err := New(Config{Name: "s1", Dir: t.TempDir(), Bus: bus, Driver: slow, VMMemory: 1024, NumSlots: 3,
		Host: "host", UpdateInterval: time.Hour, AliveInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Watching from before the startd runs, the test sees every put.
	w, err := bus.Collector.Watch(ctx, "slot.s1.>", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	runReady(t, ctx, cancel, d)
	ads := map[string]*classad.Ad{}
	puts := map[string]int{}
	// collect takes puts until cond holds of the ads or quiet passes
	// without one.
	collect := func(quiet time.Duration, cond func() bool) {
		t.Helper()
		for cond == nil || !cond() {
			key, ad := adPut(t, w, quiet)
			if ad == nil {
				if cond != nil {
					t.Fatalf("timed out; ads: %v", ads)
				}
				return
			}
			ads[key] = ad
			puts[key]++
		}
	}
	str := func(key, attr string) string {
		if ad := ads[key]; ad != nil {
			v, _ := ad.EvalString(attr)
			return v
		}
		return ""
	}
	num := func(key, attr string) int64 {
		if ad := ads[key]; ad != nil {
			v, _ := ad.EvalInt(attr)
			return v
		}
		return -1
	}
	keys := []string{"slot.s1.slot1", "slot.s1.slot2", "slot.s1.slot3"}
	collect(10*time.Second, func() bool { return len(ads) == 3 })
	collect(300*time.Millisecond, nil)

	clear(puts)
	d.signalChanged()
	collect(500*time.Millisecond, nil)
	if len(puts) != 0 {
		t.Fatalf("a change signal with nothing changed put %v", puts)
	}

	disk := filepath.Join(t.TempDir(), "hello.img")
	if err := os.WriteFile(disk, make([]byte, 512), 0o644); err != nil {
		t.Fatal(err)
	}
	req := events.ClaimRequest{ClaimID: "c1", Schedd: "schedd", Job: events.JobID{Cluster: 1}, Slot: "slot1@s1", Owner: "alice",
		JobAd: `[ ClusterId = 1; ProcId = 0; Owner = "alice"; JobVMType = "sim"; JobVMMemory = 100; SimRunSeconds = 3600; VMPARAM_vm_Disk = "` + disk + `:hda:w:raw"; Requirements = true ]`}
	b, _ := json.Marshal(req)
	rep, err := d.handleClaim(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.(events.ClaimReply); !r.Accepted {
		t.Fatalf("claim refused: %s", r.Reason)
	}
	collect(10*time.Second, func() bool { return str(keys[0], "Activity") == "Busy" })
	collect(500*time.Millisecond, nil)
	if puts[keys[1]] != 0 || puts[keys[2]] != 0 || puts[keys[0]] != 1 {
		t.Fatalf("after a claim and its VM starting, puts per slot %v; want slot1 once (busy: the claim waited for its VM), the others not", puts)
	}
	if got := num(keys[0], "VM_Memory"); got != 924 {
		t.Errorf("the claimed slot's VM_Memory = %d, want 924", got)
	}
	if got := num(keys[1], "VM_Memory"); got != 1024 {
		t.Errorf("slot2's VM_Memory = %d, want 1024 (not put again for a claim of slot1)", got)
	}

	// The negotiator believes slot2's ad: 1024 MiB free. The startd
	// refuses 1000 MiB, and puts the other slots' true figures.
	clear(puts)
	req = events.ClaimRequest{ClaimID: "c2", Schedd: "schedd", Job: events.JobID{Cluster: 2}, Slot: "slot2@s1", Owner: "alice",
		JobAd: `[ ClusterId = 2; ProcId = 0; Owner = "alice"; JobVMType = "sim"; JobVMMemory = 1000; SimRunSeconds = 3600; VMPARAM_vm_Disk = "` + disk + `:hda:w:raw"; Requirements = true ]`}
	b, _ = json.Marshal(req)
	if rep, err = d.handleClaim(ctx, b); err != nil {
		t.Fatal(err)
	}
	if r := rep.(events.ClaimReply); r.Accepted {
		t.Fatal("claim of 1000 MiB accepted with 924 MiB free")
	}
	collect(10*time.Second, func() bool { return num(keys[1], "VM_Memory") == 924 && num(keys[2], "VM_Memory") == 924 })
	collect(500*time.Millisecond, nil)
	if puts[keys[0]] != 0 || puts[keys[1]] != 1 || puts[keys[2]] != 1 {
		t.Fatalf("after a refused claim, puts per slot %v; want slot2 and slot3 once", puts)
	}
	for _, k := range keys {
		if got := num(k, "VmpoolClaims"); got != 1 {
			t.Errorf("%s: VmpoolClaims = %d, want 1", k, got)
		}
		if got := num(k, "VM_AvailNum"); got != 2 {
			t.Errorf("%s: VM_AvailNum = %d, want 2", k, got)
		}
		if !strings.HasSuffix(str(k, "Name"), "@s1") {
			t.Errorf("%s: Name = %q", k, str(k, "Name"))
		}
	}
	if str(keys[0], "State") != Claimed || str(keys[1], "State") != Unclaimed {
		t.Errorf("states %q, %q", str(keys[0], "State"), str(keys[1], "State"))
	}

	// A VM slow to start: its slot's ad waits adStartGrace for it, then
	// goes out Claimed/Idle, and Busy once the VM runs.
	slow.delay.Store(int64(adStartGrace + time.Second))
	clear(puts)
	req = events.ClaimRequest{ClaimID: "c3", Schedd: "schedd", Job: events.JobID{Cluster: 3}, Slot: "slot3@s1", Owner: "alice",
		JobAd: `[ ClusterId = 3; ProcId = 0; Owner = "alice"; JobVMType = "sim"; JobVMMemory = 100; SimRunSeconds = 3600; VMPARAM_vm_Disk = "` + disk + `:hda:w:raw"; Requirements = true ]`}
	b, _ = json.Marshal(req)
	claimed := time.Now()
	if rep, err = d.handleClaim(ctx, b); err != nil {
		t.Fatal(err)
	}
	if r := rep.(events.ClaimReply); !r.Accepted {
		t.Fatalf("claim refused: %s", r.Reason)
	}
	collect(10*time.Second, func() bool { return str(keys[2], "State") == Claimed })
	if took := time.Since(claimed); took < adStartGrace/2 || str(keys[2], "Activity") != "Idle" {
		t.Errorf("slot3's first ad after the claim: %s/%s after %v; want Claimed/Idle after the grace (%v)",
			str(keys[2], "State"), str(keys[2], "Activity"), took, adStartGrace)
	}
	collect(10*time.Second, func() bool { return str(keys[2], "Activity") == "Busy" })
	if puts[keys[2]] != 2 {
		t.Errorf("slot3 put %d times for a slow start, want twice (Claimed/Idle, Busy)", puts[keys[2]])
	}

	// c3 ends: what it gives back goes out at once, to the unclaimed
	// slots: slot3, now; slot2 already shows those figures (it never
	// showed what c3 took).
	clear(puts)
	b, _ = json.Marshal(events.DeactivateRequest{ClaimID: "c3", Mode: events.ModeKill, Reason: "test"})
	if _, err := d.handleDeactivate(ctx, b); err != nil {
		t.Fatal(err)
	}
	collect(10*time.Second, func() bool {
		return str(keys[2], "State") == Unclaimed && num(keys[1], "VM_Memory") == 924 && num(keys[2], "VM_Memory") == 924
	})
	collect(500*time.Millisecond, nil)
	if puts[keys[0]] != 0 || puts[keys[1]] != 0 || puts[keys[2]] != 1 {
		t.Fatalf("after a claim ended, puts per slot %v; want slot3 once, the others not", puts)
	}
	// A claim that takes all the memory left goes out at once too: slot3,
	// still unclaimed, must not be matched for memory there is not.
	clear(puts)
	req = events.ClaimRequest{ClaimID: "c4", Schedd: "schedd", Job: events.JobID{Cluster: 4}, Slot: "slot2@s1", Owner: "alice",
		JobAd: `[ ClusterId = 4; ProcId = 0; Owner = "alice"; JobVMType = "sim"; JobVMMemory = 924; SimRunSeconds = 3600; VMPARAM_vm_Disk = "` + disk + `:hda:w:raw"; Requirements = true ]`}
	b, _ = json.Marshal(req)
	slow.delay.Store(0)
	if rep, err = d.handleClaim(ctx, b); err != nil {
		t.Fatal(err)
	}
	if r := rep.(events.ClaimReply); !r.Accepted {
		t.Fatalf("claim refused: %s", r.Reason)
	}
	collect(10*time.Second, func() bool { return str(keys[1], "Activity") == "Busy" && num(keys[2], "VM_Memory") == 0 })
	collect(500*time.Millisecond, nil)
	if puts[keys[0]] != 0 || puts[keys[1]] != 1 || puts[keys[2]] != 1 {
		t.Fatalf("after a claim that left no memory, puts per slot %v; want slot2 (claimed) and slot3 (unclaimed) once, slot1 not", puts)
	}
	if got := num(keys[0], "VM_Memory"); got != 924 {
		t.Errorf("claimed slot1's VM_Memory = %d, want 924 until the refresh", got)
	}
}

// slowStart is a driver whose VMs take delay (nanoseconds) to start.
type slowStart struct {
	hypervisor.Driver
	delay atomic.Int64
}

func (s *slowStart) Start(ctx context.Context, spec hypervisor.Spec) (hypervisor.VM, error) {
	select {
	case <-time.After(time.Duration(s.delay.Load())):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Driver.Start(ctx, spec)
}

// runReady runs d until the test ends (cancel stops it then, and an error
// it stops with fails the test) and returns once it serves.
func runReady(t *testing.T, ctx context.Context, cancel context.CancelFunc, d *Startd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("startd: %v", err)
		}
	})
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("startd stopped: %v", err)
	}
}

// adPut waits up to d for the next ad put the collector watch w sees, and
// returns its key and ad (nil when none came).
func adPut(t *testing.T, w jetstream.KeyWatcher, d time.Duration) (string, *classad.Ad) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ent := <-w.Updates():
			if ent == nil || ent.Operation() != jetstream.KeyValuePut {
				continue
			}
			var ad classad.Ad
			if err := ad.UnmarshalJSON(ent.Value()); err != nil {
				t.Fatalf("ad %s: %v", ent.Key(), err)
			}
			return ent.Key(), &ad
		case <-timeout:
			return "", nil
		}
	}
}

// nextAdPut is adPut's ad, and fails the test if none comes within d.
func nextAdPut(t *testing.T, w jetstream.KeyWatcher, d time.Duration) *classad.Ad {
	t.Helper()
	_, ad := adPut(t, w, d)
	if ad == nil {
		t.Fatalf("no slot ad put within %v", d)
	}
	return ad
}

// mustClaim has d decide the claim request req and fails the test unless
// it is accepted.
func mustClaim(t *testing.T, ctx context.Context, d *Startd, req events.ClaimRequest) {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := d.handleClaim(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.(events.ClaimReply); !r.Accepted {
		t.Fatalf("claim %s refused: %s", req.ClaimID, r.Reason)
	}
}
