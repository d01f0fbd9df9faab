package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
)

// TestUnwritableUserLogHoldsTheJob: a job whose user log cannot be written
// when it is matched (its directory removed after the submit) is held with
// HTCondor's code 22, UnableToInitUserLog, naming the log, and its VM does
// not start; once the directory is back, a release runs it. The schedd
// used to start the VM and drop every event the log could not take, so
// `vmpool wait` on the log never ended.
func TestUnwritableUserLogHoldsTheJob(t *testing.T) {
	tp := newTestPool(t, 0, "SIM_STARTDS=1").serving()
	logs := filepath.Join(tp.dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("sim.sub", "universe = vm\nexecutable = sim\nlog = logs/sim.log\nvm_type = sim\nvm_memory = 16\n"+
		"vm_disk = /dev/null:hda:w:raw\n+SimRunSeconds = 0\nhold = true\nqueue\n"))
	if err := os.RemoveAll(logs); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("release", "1.0")
	tp.waitEvent("vmpool.ev.schedd.schedd.job.schedd.1.0.JobHeld", func(e events.Event) bool {
		var p events.JobHeldPayload
		return e.Decode(&p) == nil && p.Code == 22
	}, 60*time.Second)
	out := tp.mustRun("q", "-hold", "-af", "HoldReasonCode", "HoldReason")
	if !strings.HasPrefix(out, "22 Failed to initialize user log to "+filepath.Join(logs, "sim.log")) {
		t.Fatalf("q -hold: %q; want code 22 naming the log", out)
	}
	if !strings.Contains(out, "the schedd writes it as "+currentUser()+":") {
		t.Fatalf("q -hold: %q; want the reason to say as whom the log is written", out)
	}
	if n := tp.mustRun("q", "-af", "NumJobStarts"); n != "0\n" {
		t.Fatalf("NumJobStarts %q: the VM started", n)
	}

	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("release", "1.0")
	tp.jobEvent(1, 0, events.JobCompleted, 60*time.Second)
	// The log gets the run's events from the release on (its 000 went
	// with the directory).
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(logs, "sim.log"))
		if strings.Contains(string(b), "\n001 (001.000.000)") && strings.Contains(string(b), "\n005 (001.000.000)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("user log after the release:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond) // the log's writes have no event to wait on
	}
}
