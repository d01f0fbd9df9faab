package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
)

// TestHangupAppliesStartPolicy: a startd process started with START =
// false takes a changed START on SIGHUP, as condor_reconfig does, without a
// restart: its slot ad says the new Start and the queued job runs. A knob
// that only a restart applies is named as such; a configuration that no
// longer parses changes nothing and the startd runs on.
func TestHangupAppliesStartPolicy(t *testing.T) {
	tp := newTestPool(t, 0, "POOL_DAEMONS=startd-ext1")
	conf := filepath.Join(t.TempDir(), "vmpool.conf")
	writeFile := func(text string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("START = false\n")
	proc := tp.vmpoolProcess("ext1.log", "startd", "--home", tp.home, "--name", "ext1", "--config", conf, "--set", "UPDATE_INTERVAL=1")
	logOf := func() string {
		b, _ := os.ReadFile(proc.Stdout.(*os.File).Name())
		return string(b)
	}
	startIs := func(want string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			out, _, _ := tp.vmpool("status", "-af", "Name", "Start")
			if strings.Contains(out, "slot1@ext1 "+want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("status never said Start %s for slot1@ext1; last:\n%s\nstartd log:\n%s", want, out, logOf())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	startIs("false")
	tp.writeStampImage()
	tp.mustRun("submit", tp.write("stamp.sub", stampSub("")))

	writeFile("START = true\nVM_MEMORY = 2048\n")
	if err := proc.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	startIs("true")
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	log := logOf()
	if !strings.Contains(log, "applied to the running startds") || !strings.Contains(log, `START = true`) ||
		!strings.Contains(log, "apply only when the daemon restarts") || !strings.Contains(log, "VM_MEMORY") {
		t.Fatalf("the startd's log does not say START was applied and VM_MEMORY waits for a restart:\n%s", log)
	}

	writeFile("START = (((\n")
	if err := proc.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logOf(), "does not parse") {
		if time.Now().After(deadline) {
			t.Fatalf("no error for a START that does not parse:\n%s", logOf())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if proc.ProcessState != nil {
		t.Fatalf("the startd ended: %v", proc.ProcessState)
	}
	startIs("true")
}
