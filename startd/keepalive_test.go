package startd

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
)

// TestKeepaliveToAGoneScheddWarnsOnce: a schedd stopped for good (taken
// out of the pool) whose claims have all ended is still told of them at
// every keepalive round, for as long as the startd keeps ended claims (an
// hour); each failed round used to log a warning, every ALIVE_INTERVAL on
// every startd it had used. It is said once, then at debug level.
func TestKeepaliveToAGoneScheddWarnsOnce(t *testing.T) {
	var logs lockedBuffer
	d, ctx, in := simStartdWithDisk(t, 4096, func(c *Config) {
		c.AliveInterval = 20 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	// A claim of schedd "gone", which nothing serves.
	req := events.ClaimRequest{ClaimID: "c1", Schedd: "gone", Job: events.JobID{Cluster: 1}, Slot: "slot1@s1", Owner: "alice",
		Inputs: []events.FileRef{in},
		JobAd: `[ ClusterId = 1; ProcId = 0; Owner = "alice"; JobVMType = "sim"; JobVMMemory = 100;` +
			` SimRunSeconds = 3600; VMPARAM_vm_Disk = "disk.img:hda:w:raw"; Requirements = true ]`}
	mustClaim(t, ctx, d, req)
	if testing.Verbose() {
		defer func() { t.Log(logs.String()) }()
	}
	vmEventOf(t, d, "c1", events.VMStarted)
	b, _ := json.Marshal(events.DeactivateRequest{ClaimID: "c1", Mode: events.ModeKill, Reason: "test"})
	if _, err := d.handleDeactivate(ctx, b); err != nil {
		t.Fatal(err)
	}
	vmEventOf(t, d, "c1", events.VMStopped)
	const quietRound = `level=DEBUG msg="keepalive to schedd failed" daemon=startd startd=s1`
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), quietRound) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no quiet keepalive rounds for the ended claim of schedd gone:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
	if i := strings.Index(out, quietRound); strings.Count(out[:i], "level=WARN") == 0 || strings.Count(out[i:], "level=WARN") != 0 {
		t.Fatalf("want warnings only before the quiet rounds (one for the ended claim):\n%s", out)
	}
	if n := strings.Count(out, "only ended ones"); n != 1 {
		t.Fatalf("%d warnings that schedd gone holds only ended claims, want 1:\n%s", n, out)
	}
}
