package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/vmimage"
)

// TestOutputIntoVanishedSubmitDirIsHeldClearly: a job whose submit
// directory is gone when its guest powers off (removed, or an unmounted
// share) is held with code 12, as in HTCondor, by a reason that names
// the disk and the directory and says what to do; it named only the
// fetch's temporary file (".hello.img.part-PID@HOST-N: no such file or
// directory"). Released once the directory is back, the job runs again
// and its disk comes back into it.
func TestOutputIntoVanishedSubmitDirIsHeldClearly(t *testing.T) {
	tp := newTestPool(t, 1)
	iwd := filepath.Join(tp.dir, "results")
	if err := os.Mkdir(iwd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := vmimage.WriteHello(filepath.Join(iwd, "hello.img")); err != nil {
		t.Fatal(err)
	}
	sub := strings.Replace(helloSub, "log = hello.log", "initialdir = results\nlog = "+filepath.Join(tp.dir, "hello.log")+"\nhold = true", 1)
	tp.mustRun("submit", tp.write("gone.sub", sub)) // queued held (hold = true)
	if err := os.RemoveAll(iwd); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("release", "1.0")
	e := tp.waitEvent("vmpool.ev.schedd.schedd.job.schedd.1.0."+events.JobHeld, func(e events.Event) bool {
		var p events.JobHeldPayload
		return e.Decode(&p) == nil && p.Code == 12
	}, 90*time.Second)
	var p events.JobHeldPayload
	if err := e.Decode(&p); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hello.img", iwd + ", which no longer exists", "release the job"} {
		if !strings.Contains(p.Reason, want) {
			t.Errorf("hold reason lacks %q: %s", want, p.Reason)
		}
	}
	if err := os.Mkdir(iwd, 0o755); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("release", "1.0")
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	if n := readCounter(t, filepath.Join(iwd, "hello.img")); n != 1 {
		t.Fatalf("counter of the returned disk = %d, want 1", n)
	}
}

// TestReturnedDiskWritesThroughASymlink: a disk named in the submit
// directory by a symbolic link (disk.img -> images/v3.img) comes back into
// the link's target, as HTCondor's file transfer writes through the link;
// the link had been replaced by a copy of the disk, and the image it
// pointed at kept as submitted. (A link leading out of the directory is
// still replaced: TestFilesStayInTheSubmitDirectory.)
func TestReturnedDiskWritesThroughASymlink(t *testing.T) {
	tp := newTestPool(t, 1)
	if err := os.Mkdir(filepath.Join(tp.dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(tp.dir, "images", "v3.img")
	if err := vmimage.WriteHello(target); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(tp.dir, "hello.img")
	if err := os.Symlink(filepath.Join("images", "v3.img"), link); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("link.sub", helloSub))
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	fi, err := os.Lstat(link)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symbolic link %s was replaced by a %v file", link, fi.Mode())
	}
	if n := readCounter(t, target); n != 1 {
		t.Fatalf("counter of the link's target = %d, want 1 (the disk did not come back into it)", n)
	}
}
