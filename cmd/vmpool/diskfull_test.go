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

// smallHome mounts a 160 MiB tmpfs for a pool's home (root only; the
// test is skipped otherwise, with the reason).
func smallHome(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the pool's home")
	}
	home := filepath.Join(t.TempDir(), "home")
	os.MkdirAll(home, 0o711)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=160M,mode=0711", "tmpfs", home).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", home).Run() })
	return home
}

// TestDiskNearlyFull: the pool's home fills up. The schedd refuses the
// submit with a message that says what to do, queues nothing and keeps
// running; once space is freed the same submit goes through and runs.
func TestDiskNearlyFull(t *testing.T) {
	home := smallHome(t)
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

// TestDiskFillsWhileAJobRuns: the pool's home fills up while a VM runs.
// The guest powers off meanwhile; the startd cannot record it and says
// so, retrying; the job stays Running (neither lost nor run again). Once
// space is freed the end is recorded and the job completes, exactly once,
// with its disk back.
func TestDiskFillsWhileAJobRuns(t *testing.T) {
	home := smallHome(t)
	tp := startTestPool(t, home, 1, "LOG_MIN_FREE_MB=64")
	img := tp.writeStampImage()
	tp.mustRun("submit", tp.write("stamp.sub", stampSub("")))
	tp.jobEvent(1, 0, events.JobStarted, 60*time.Second)
	filler := filepath.Join(home, "filler")
	if out, err := exec.Command("fallocate", "-l", "120M", filler).CombinedOutput(); err != nil {
		t.Fatalf("fill the disk: %v %s", err, out)
	}
	// The guest counts for a few seconds and powers off; its end cannot be
	// recorded (a log line says so, as nothing else can).
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(tp.logs.String(), "cannot record VM event; retrying every second") {
		if time.Now().After(deadline) {
			t.Fatalf("the startd never said it could not record the VM's end:\n%s", lastN(tp.logs.String(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := tp.mustRun("q", "-allusers", "-af", "JobStatus", "NumJobStarts"); st != "2 1\n" {
		t.Fatalf("while the disk is full the job shows %q, want Running once", st)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	tp.jobEvent(1, 0, events.JobCompleted, 60*time.Second)
	if h := tp.mustRun("history", "-af", "ClusterId", "JobStatus", "NumJobStarts"); h != "1 4 1\n" {
		t.Fatalf("history %q: want the job completed after one start", h)
	}
	d, err := vmimage.ReadData(img)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Done || d.Boots != 1 {
		t.Fatalf("returned disk %+v: want the count done after one boot", d)
	}
	checkUserLog(t, filepath.Join(tp.dir, "stamp.log"), []string{"000", "001", "005"})
}
