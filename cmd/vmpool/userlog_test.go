package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/vmimage"
)

// TestPerProcUserLogs: `log = job$(Process).log` gives each proc its own
// user log, a proc without one is in the same cluster, and clusters
// without a log are beside it in the queue. The
// writer passes over the events of jobs without a log without reading
// them, so this holds it to the procs' logs: each gets its submit, and
// the removed one its abort, exactly once, also after a restart (the
// writer keeps its position lazily when a pass wrote nothing).
func TestPerProcUserLogs(t *testing.T) {
	home := t.TempDir()
	tp := startTestPool(t, home, 0)
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	noLog := strings.Replace(helloSub, "log = hello.log\n", "hold = true\n", 1)
	// Proc 0 has no log, and so the cluster has none: only procs 1 and 2
	// have theirs.
	perProc := strings.Replace(noLog, "\nqueue\n", "\nqueue\nlog = job$(Process).log\nqueue 2\n", 1)
	tp.mustRun("submit", tp.write("nolog.sub", noLog))
	tp.mustRun("submit", tp.write("procs.sub", perProc))
	tp.mustRun("submit", tp.write("nolog2.sub", noLog))
	tp.mustRun("rm", "2.1")

	logOf := func(p int) string { return filepath.Join(tp.dir, "job"+string(rune('0'+p))+".log") }
	want := map[int][]string{
		1: {"000 (002.001.000)", "009 (002.001.000)"},
		2: {"000 (002.002.000)"},
	}
	waitLogs := func() {
		t.Helper()
		until := time.Now().Add(20 * time.Second)
		for p, heads := range want {
			for {
				b, _ := os.ReadFile(logOf(p))
				ok := true
				for _, h := range heads {
					ok = ok && strings.Contains(string(b), h)
				}
				if ok {
					break
				}
				if time.Now().After(until) {
					t.Fatalf("%s after 20 s:\n%s\nwant events %q", logOf(p), b, heads)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	waitLogs()
	for _, name := range []string{"hello.log", "job0.log", "job3.log"} {
		if _, err := os.Stat(filepath.Join(tp.dir, name)); err == nil {
			t.Errorf("%s written: no job logs there", name)
		}
	}
	tp.stop()

	tp2 := startTestPool(t, home, 0)
	tp2.dir = tp.dir
	tp2.mustRun("submit", tp2.write("nolog3.sub", noLog))
	tp2.mustRun("rm", "2.0", "2.2")
	want[2] = append(want[2], "009 (002.002.000)")
	waitLogs()
	tp2.stop()
	for p, heads := range want {
		b, err := os.ReadFile(logOf(p))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), "\n...\n"); n != len(heads) {
			t.Errorf("%s holds %d events, want %d (%q):\n%s", logOf(p), n, len(heads), heads, b)
		}
		for _, h := range heads {
			if strings.Count(string(b), h) != 1 {
				t.Errorf("%s: %q not there exactly once:\n%s", logOf(p), h, b)
			}
		}
	}
}
