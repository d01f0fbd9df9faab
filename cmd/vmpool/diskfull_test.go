package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/vmimage"
)

// TestDiskNearlyFull: the pool's home fills up. The schedd refuses the
// submit with a message that says what to do, queues nothing and keeps
// running; once space is freed the same submit goes through and runs.
func TestDiskNearlyFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the pool's home")
	}
	home := filepath.Join(t.TempDir(), "home")
	os.MkdirAll(home, 0o711)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=160M,mode=0711", "tmpfs", home).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", home).Run() })
	tp := startTestPool(t, home, 1, "LOG_MIN_FREE_MB=64")
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	sub := tp.write("hello.sub", helloSub)
	// Leave less than LOG_MIN_FREE_MB free.
	filler := filepath.Join(home, "filler")
	if out, err := exec.Command("fallocate", "-l", "120M", filler).CombinedOutput(); err != nil {
		t.Fatalf("fill the disk: %v %s", err, out)
	}
	_, errOut, code := tp.vmpool("submit", sub)
	if code != 1 || !strings.Contains(errOut, "nothing was queued") || !strings.Contains(errOut, "LOG_MIN_FREE_MB") || !strings.Contains(errOut, "free space and retry") {
		t.Fatalf("submit on a full disk: exit %d\n%s", code, errOut)
	}
	if q := jsonAds(t, tp.mustRun("q", "-json", "-allusers")); len(q) != 0 {
		t.Fatalf("a refused submit queued %d jobs", len(q))
	}
	os.Remove(filler)
	out := tp.mustRun("submit", sub)
	if !strings.Contains(out, "1 job(s) submitted to cluster 1.") {
		t.Fatalf("submit after freeing space: %q", out)
	}
	tp.jobEvent(1, 0, events.JobCompleted, 60*time.Second)
	if got := readCounter(t, filepath.Join(tp.dir, "hello.img")); got != 1 {
		t.Fatalf("counter %d", got)
	}
}
