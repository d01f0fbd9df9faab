package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/vmimage"
)

// TestBrokenMachineStopsAdvertisingVMs: QEMU answers --version but fails
// to start VMs (a machine fault, not the job's). The startd takes the
// first job, fails, and stops advertising VMs (HasVM = false, with
// VMOfflineReason saying why) instead of failing job after job as fast as
// the negotiator matches them; once QEMU works again the recheck
// (VM_RECHECK_INTERVAL) brings the VMs back and the job completes.
func TestBrokenMachineStopsAdvertisingVMs(t *testing.T) {
	real, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatalf("QEMU is needed (scripts/setup.sh installs it): %v", err)
	}
	bin := t.TempDir()
	traversable(t, bin)
	fixed := filepath.Join(bin, "fixed")
	wrapper := filepath.Join(bin, "qemu")
	script := "#!/bin/sh\n" +
		"if [ \"$1\" = --version ] || [ -e " + fixed + " ]; then exec " + real + " \"$@\"; fi\n" +
		"echo 'qemu: cannot start (broken on purpose by the test)' >&2\nexit 1\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tp := newTestPool(t, 1, "QEMU="+wrapper, "VM_RECHECK_INTERVAL=2")
	img := filepath.Join(tp.dir, "hello.img")
	if err := vmimage.WriteHello(img); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("hello.sub", helloSub))

	var status string
	for deadline := time.Now().Add(60 * time.Second); ; {
		status = tp.mustRun("status", "-af", "HasVM", "VMOfflineReason")
		if strings.HasPrefix(status, "false") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the machine still advertises VMs after a failed start:\n%s\n%s", status, tp.logs.String())
		}
		time.Sleep(100 * time.Millisecond) // an ad update has no event to wait on
	}
	if !strings.Contains(status, "failed to start") || !strings.Contains(status, "VM_RECHECK_INTERVAL") {
		t.Fatalf("VMOfflineReason does not say why: %q", status)
	}
	if q := tp.mustRun("q", "-af", "JobStatus", "NumJobStarts"); q != "1 0\n" {
		t.Fatalf("the job is not idle and unstarted: %q", q)
	}

	if err := os.WriteFile(fixed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	if got := readCounter(t, img); got != 1 {
		t.Fatalf("returned disk counter = %d, want 1", got)
	}
	// The failed start is the machine's: its user log says so with a 007
	// quoting the error, as HTCondor's shadow does, not a 004.
	ulog, err := os.ReadFile(filepath.Join(tp.dir, "hello.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^007 \(001\.000\.000\) .* Shadow exception!\n\tError from slot1@\S+: .*qemu: cannot start`).Match(ulog) ||
		strings.Contains(string(ulog), "\n004 ") {
		t.Errorf("user log does not give the failed start as a 007:\n%s", ulog)
	}
	if !strings.Contains(tp.logs.String(), "VMs enabled again after the recheck") {
		t.Errorf("no recheck brought the VMs back")
	}
	// A hot loop would fail hundreds of starts in the recheck's 2 s.
	if n := strings.Count(tp.logs.String(), "VM did not start"); n < 1 || n > 3 {
		t.Errorf("%d failed starts, want 1 to 3", n)
	}
}
