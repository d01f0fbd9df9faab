package startd

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
)

// TestSetPolicy changes a running startd's START, PREEMPT and KILL, as
// condor_reconfig does: the slot ad in the collector says the new Start at
// once, claims are decided by it, a new PREEMPT vacates the running VM it
// is true for, and an expression that does not parse changes nothing.
func TestSetPolicy(t *testing.T) {
	d, ctx, in := simStartdWithDisk(t, 512, func(c *Config) { c.Start = `TARGET.Owner == "bob"` })
	w, err := d.cfg.Bus.Collector.Watch(ctx, "slot.s1.slot1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	// startIs waits for the slot ad in the collector to say want as Start.
	startIs := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if e, ok := nextAdPut(t, w, time.Until(deadline)).Lookup("Start"); ok && e.String() == want {
				return
			}
		}
	}
	startIs(`TARGET.Owner == "bob"`)
	req := func(id string) events.ClaimRequest {
		return events.ClaimRequest{ClaimID: id, Schedd: "schedd", Job: events.JobID{Cluster: 1}, Slot: "slot1@s1", Owner: "alice",
			JobAd:  `[ ClusterId = 1; ProcId = 0; Owner = "alice"; JobVMType = "sim"; JobVMMemory = 100; SimRunSeconds = 3600; VMPARAM_vm_Disk = "disk.img:hda:w:raw"; Requirements = true ]`,
			Inputs: []events.FileRef{in}}
	}
	claim := func(id string) events.ClaimReply {
		t.Helper()
		b, _ := json.Marshal(req(id))
		rep, err := d.handleClaim(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		return rep.(events.ClaimReply)
	}
	if r := claim("c1"); r.Accepted || !strings.Contains(r.Reason, "START") {
		t.Fatalf("alice's claim under START = Owner == bob: %+v; want refused for START", r)
	}

	if err := d.SetPolicy(ctx, Policy{Start: "true"}); err != nil {
		t.Fatal(err)
	}
	startIs("true")
	// Changed again and again while the claim's VM starts: the starter
	// reads the configuration as SetPolicy writes it (go test -race).
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := d.SetPolicy(ctx, Policy{Start: "true", Rank: "1"}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	mustClaim(t, ctx, d, req("c2"))
	vmEventOf(t, d, "c2", events.VMStarted)
	close(stop)
	<-done

	err = d.SetPolicy(ctx, Policy{Start: "true", Preempt: "((("})
	if err == nil || !strings.Contains(err.Error(), "PREEMPT") {
		t.Fatalf("a PREEMPT that does not parse: %v; want an error naming it", err)
	}
	if err := d.SetPolicy(ctx, Policy{Start: "false", Preempt: `TARGET.Owner == "alice"`}); err != nil {
		t.Fatal(err)
	}
	startIs("false")
	if p := vmEventOf(t, d, "c2", events.VMEvicted); !strings.Contains(p.Reason, "PREEMPT") {
		t.Fatalf("evicted for %q; want PREEMPT", p.Reason)
	}
}
