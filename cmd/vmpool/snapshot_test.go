package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/schedd"
	"github.com/vmpool/vmpool/vmimage"
)

// TestRestartFromSnapshot: the schedd snapshots its queue (here every 5
// records, and at shutdown); a restart starts from the snapshot and only
// the records after it, and gives the queue a replay from zero gives
// (replay --check compares them). A snapshot that does not decode is
// ignored with a warning and the whole log replayed.
func TestRestartFromSnapshot(t *testing.T) {
	home := t.TempDir()
	tp := startTestPool(t, home, 1, "QUEUE_SNAPSHOT_EVENTS=5")
	img := filepath.Join(tp.dir, "hello.img")
	if err := vmimage.WriteHello(img); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("hello.sub", helloSub))
	tp.jobEvent(1, 0, events.JobCompleted, 60*time.Second)
	tp.mustRun("submit", "-append", "hold = true", tp.write("held.sub", strings.Replace(helloSub, "queue", "queue 3", 1)))
	before := tp.mustRun("q", "-af", "ClusterId", "ProcId", "JobStatus", "HoldReasonCode")
	hist := tp.mustRun("history", "-af", "ClusterId", "ProcId", "JobStatus", "NumJobStarts")
	tp.stop()
	snap := schedd.SnapshotPath(filepath.Join(home, "schedd"))
	if _, err := os.Stat(snap); err != nil {
		t.Fatalf("no snapshot after a clean shutdown: %v", err)
	}
	out, errOut, code := runCLI(t.Context(), "nats://127.0.0.1:1", "replay", "--home", home, "--daemon", "schedd", "--check")
	if code != 0 || !strings.Contains(out, "equals replay from zero") {
		t.Fatalf("replay --check: exit %d\n%s%s", code, out, errOut)
	}

	tp2 := startTestPool(t, home, 1, "QUEUE_SNAPSHOT_EVENTS=5")
	tp2.dir = tp.dir
	if !strings.Contains(tp2.logs.String(), "from_snapshot=true") {
		t.Fatalf("the restart did not start from the snapshot:\n%s", tp2.logs.String())
	}
	if after := tp2.mustRun("q", "-af", "ClusterId", "ProcId", "JobStatus", "HoldReasonCode"); after != before {
		t.Fatalf("queue after restart %q, before %q", after, before)
	}
	if h := tp2.mustRun("history", "-af", "ClusterId", "ProcId", "JobStatus", "NumJobStarts"); h != hist {
		t.Fatalf("history after restart %q, before %q", h, hist)
	}
	// The restarted pool goes on: a new cluster, and the held jobs run.
	tp2.mustRun("release", "2")
	tp2.jobEvent(2, 2, events.JobCompleted, 90*time.Second)
	tp2.stop()

	if err := os.WriteFile(snap, []byte("{not a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	tp3 := startTestPool(t, home, 0)
	tp3.dir = tp.dir
	if !strings.Contains(tp3.logs.String(), "snapshot not used") || !strings.Contains(tp3.logs.String(), "from_snapshot=false") {
		t.Fatalf("a broken snapshot was not reported and skipped:\n%s", tp3.logs.String())
	}
	if h := tp3.mustRun("history", "-af", "ClusterId", "ProcId", "JobStatus"); strings.Count(h, "\n") != 4 {
		t.Fatalf("history after a replay from zero: %q", h)
	}
}

// TestScheddFindableWhenStarted: once the pool has started, the schedd's
// ad is in the collector, so a tool run at once finds it (it was put a
// moment after, and such a tool now and then found no schedd). Started
// three times: the collector is in memory and begins empty each time.
func TestScheddFindableWhenStarted(t *testing.T) {
	home := t.TempDir()
	for i := range 3 {
		tp := startTestPool(t, home, 0)
		if _, err := tp.Bus.Collector.Get(t.Context(), events.ScheddKey(tp.cfg.Get("SCHEDD_NAME"))); err != nil {
			t.Fatalf("start %d: the schedd's ad is not in the collector: %v", i+1, err)
		}
		tp.mustRun("q", "-totals")
		tp.stop()
	}
}
