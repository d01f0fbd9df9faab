package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmpool/vmpool/vmimage"
)

// Tests of what an HTCondor user's habits and existing submit files meet:
// the condor_* flags typed daily and the submit language of real files.

// TestHoldBeforeLaterQueue: `hold = true` set between two queue statements
// holds the jobs of the later one (code 15, "submitted on hold at user's
// request"), as condor_submit does; the real submit queued them idle,
// while -dry-run showed them held.
func TestHoldBeforeLaterQueue(t *testing.T) {
	tp := newTestPool(t, 0)
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	sub := strings.Replace(helloSub, "queue", "queue 2\nhold = true\nqueue\nhold = false\nqueue", 1)
	tp.mustRun("submit", tp.write("hello.sub", sub))
	got := tp.mustRun("q", "-af:j", "JobStatus", "HoldReasonCode")
	want := "1.0 1 undefined\n1.1 1 undefined\n1.2 5 15\n1.3 1 undefined\n"
	if got != want {
		t.Fatalf("q -af:j JobStatus HoldReasonCode:\n%swant:\n%s", got, want)
	}
	// The reason is condor_submit's, as -dry-run shows it.
	if got := tp.mustRun("q", "1.2", "-af", "HoldReason"); got != "submitted on hold at user's request\n" {
		t.Fatalf("q 1.2 -af HoldReason: %q", got)
	}
}
