package startd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
	"github.com/vmpool/vmpool/startd/hypervisor/sim"
)

// TestEvictionCountsBytes: a VMEvicted says what its run moved, as a
// VMExited does: BytesIn its input disk (and the checkpoint it resumed
// from), BytesOut the checkpoint it was vacated with. A sim startd runs a
// vm_checkpoint job with a 128 KiB input disk twice: vacated once with a
// checkpoint, then resumed from it and vacated again.
func TestEvictionCountsBytes(t *testing.T) {
	const diskBytes = 128 << 10
	d, ctx, in := simStartdWithDisk(t, diskBytes)
	// run claims a run of the job and vacates it once its VM runs; it
	// returns the run's VMStarted and VMEvicted.
	run := func(claim string, cps []events.Checkpoint) (started, evicted events.VMEventPayload) {
		t.Helper()
		req := events.ClaimRequest{ClaimID: claim, Schedd: "schedd", Job: events.JobID{Cluster: 1}, Slot: "slot1@s1", Owner: "alice",
			Inputs: []events.FileRef{in}, Checkpoints: cps,
			JobAd: `[ ClusterId = 1; ProcId = 0; Owner = "alice"; JobVMType = "sim"; JobVMMemory = 100; JobVMCheckpoint = true;` +
				` SimRunSeconds = 3600; SimCheckpointBytes = 65536; VMPARAM_vm_Disk = "disk.img:hda:w:raw"; Requirements = true ]`}
		b, _ := json.Marshal(req)
		rep, err := d.handleClaim(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if r := rep.(events.ClaimReply); !r.Accepted {
			t.Fatalf("claim %s refused: %s", claim, r.Reason)
		}
		started = vmEventOf(t, d, claim, events.VMStarted)
		b, _ = json.Marshal(events.DeactivateRequest{ClaimID: claim, Mode: events.ModeVacate, Reason: "test"})
		if _, err := d.handleDeactivate(ctx, b); err != nil {
			t.Fatal(err)
		}
		return started, vmEventOf(t, d, claim, events.VMEvicted)
	}

	_, ev := run("c1", nil)
	if ev.Checkpoint == nil {
		t.Fatalf("vacated without a checkpoint: %+v", ev)
	}
	ckpt := checkpointBytes(ev.Checkpoint)
	if ckpt < 65536 || ev.BytesIn != diskBytes || ev.BytesOut != ckpt {
		t.Fatalf("first run: BytesIn %d, BytesOut %d; want %d (its disk) and %d (its checkpoint, at least 65536)", ev.BytesIn, ev.BytesOut, diskBytes, ckpt)
	}
	cp := *ev.Checkpoint
	cp.Seq = 1 // as the schedd numbers it
	st, ev := run("c2", []events.Checkpoint{cp})
	if !st.Resumed || st.ResumedFrom != 1 {
		t.Fatalf("second run did not resume from checkpoint 1: %+v", st)
	}
	if ev.BytesIn != diskBytes+ckpt || ev.BytesOut != checkpointBytes(ev.Checkpoint) || ev.BytesOut == 0 {
		t.Fatalf("resumed run: BytesIn %d, BytesOut %d; want %d (its disk and the checkpoint it resumed from) and %d (its own checkpoint)",
			ev.BytesIn, ev.BytesOut, diskBytes+ckpt, checkpointBytes(ev.Checkpoint))
	}
}

// vmEventOf waits for the startd's event of type typ about claim and
// returns its payload.
func vmEventOf(t *testing.T, d *Startd, claim, typ string) events.VMEventPayload {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var p events.VMEventPayload
		found := false
		err := d.log.Scan(1, func(_ uint64, e events.Event) error {
			if e.Type != typ {
				return nil
			}
			var q events.VMEventPayload
			if err := e.Decode(&q); err != nil {
				return err
			}
			if q.ClaimID == claim {
				p, found = q, true
				return events.ErrStop
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if found {
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s for claim %s", typ, claim)
	return events.VMEventPayload{}
}

// TestKilledRunCountsBytes: a VM stopped on request (a hold or a removal)
// says what its run moved and used, as an evicted one does: its
// VMStopped carries BytesIn, the input disk.
func TestKilledRunCountsBytes(t *testing.T) {
	const diskBytes = 64 << 10
	d, ctx, in := simStartdWithDisk(t, diskBytes)
	req := events.ClaimRequest{ClaimID: "c1", Schedd: "schedd", Job: events.JobID{Cluster: 1}, Slot: "slot1@s1", Owner: "alice",
		Inputs: []events.FileRef{in},
		JobAd: `[ ClusterId = 1; ProcId = 0; Owner = "alice"; JobVMType = "sim"; JobVMMemory = 100;` +
			` SimRunSeconds = 3600; VMPARAM_vm_Disk = "disk.img:hda:w:raw"; Requirements = true ]`}
	mustClaim(t, ctx, d, req)
	vmEventOf(t, d, "c1", events.VMStarted)
	b, _ := json.Marshal(events.DeactivateRequest{ClaimID: "c1", Mode: events.ModeKill, Reason: "test"})
	if _, err := d.handleDeactivate(ctx, b); err != nil {
		t.Fatal(err)
	}
	p := vmEventOf(t, d, "c1", events.VMStopped)
	if p.BytesIn != diskBytes {
		t.Fatalf("VMStopped %+v: BytesIn %d, want %d (its input disk)", p, p.BytesIn, diskBytes)
	}
	// It says why it was killed: a kill the startd decides on itself (a
	// schedd silent for the job lease) reaches the user log through it.
	if want := "killed on request (test)"; p.Reason != want {
		t.Fatalf("VMStopped reason %q, want %q", p.Reason, want)
	}
}

// TestShutdownVacateSaysWhy: a VM vacated because its startd is stopped
// gracefully says so in its eviction (the user log's 004 reason), as one
// vacated for a drain or a condor_vacate_job does; it used to read only
// "vacated with a checkpoint".
func TestShutdownVacateSaysWhy(t *testing.T) {
	_, bus := eventstest.Bus(t)
	dir := t.TempDir()
	d, err := New(Config{Name: "s1", Dir: dir, Bus: bus, Driver: sim.New(sim.Config{}), VMMemory: 1024, NumSlots: 1,
		Host: "host", UpdateInterval: time.Hour, AliveInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	<-d.Ready()
	req := events.ClaimRequest{ClaimID: "c1", Schedd: "schedd", Job: events.JobID{Cluster: 1}, Slot: "slot1@s1", Owner: "alice",
		JobAd: `[ ClusterId = 1; ProcId = 0; Owner = "alice"; JobVMType = "sim"; JobVMMemory = 100; JobVMCheckpoint = true;` +
			` SimRunSeconds = 3600; SimCheckpointBytes = 4096; VMPARAM_vm_Disk = "/dev/null:hda:r:raw"; Requirements = true ]`}
	mustClaim(t, ctx, d, req)
	vmEventOf(t, d, "c1", events.VMStarted)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	l, err := events.OpenLog(filepath.Join(dir, "log"), "s1", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var p events.VMEventPayload
	err = l.Scan(1, func(_ uint64, e events.Event) error {
		if e.Type == events.VMEvicted {
			return e.Decode(&p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Checkpoint == nil || !strings.Contains(p.Reason, "shutting down") {
		t.Fatalf("VMEvicted at shutdown: %+v; want a checkpoint and a reason saying the startd is shutting down", p)
	}
}

// simStartdWithDisk runs a one-slot sim startd s1 (until the test ends)
// and stores an input disk of size bytes, disk.img, in alice's bucket; it
// returns the startd, the context it runs in and the disk's reference.
func simStartdWithDisk(t *testing.T, size int, edit ...func(*Config)) (*Startd, context.Context, events.FileRef) {
	t.Helper()
	_, bus := eventstest.Bus(t)
	cfg := Config{Name: "s1", Dir: t.TempDir(), Bus: bus, Driver: sim.New(sim.Config{}), VMMemory: 1024, NumSlots: 1,
		Host: "host", UpdateInterval: time.Hour, AliveInterval: time.Hour}
	for _, e := range edit {
		e(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runReady(t, ctx, cancel, d)
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := bus.PutFile(ctx, "alice", disk, "disk.img")
	if err != nil {
		t.Fatal(err)
	}
	return d, ctx, in
}
