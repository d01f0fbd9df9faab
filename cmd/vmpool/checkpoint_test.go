package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/vmimage"
)

// Checkpoint tests: a guest that stamps its first boot on its disk and
// counts BIOS ticks to a target (vmimage.StampCounter) shows whether a VM
// resumed (same stamp, one boot, full count) or started over (new stamp).

// wholeDisks makes checkpoints copy whole disks, so that the running
// guest's disk file shows its progress (firstStamp reads it); with the
// default qcow2 overlays the writes are readable only once QEMU is gone
// (TestCheckpointOverlaysShipLess).
const wholeDisks = "VM_CHECKPOINT_OVERLAYS=false"

// stampGuestSeconds is how long the stamp guest counts: long enough to be
// interrupted mid-run, short enough for CI.
const stampGuestSeconds = 8

func stampSub(extra string) string {
	return `universe = vm
executable = stamp
log = stamp.log
vm_type = kvm
vm_memory = 16
vm_disk = stamp.img:hda:w:raw
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
transfer_input_files = stamp.img
` + extra + `
queue
`
}

func (tp *testPool) writeStampImage() string {
	tp.t.Helper()
	img := filepath.Join(tp.dir, "stamp.img")
	// As a user makes it (docs/checkpoints.md), and checked to be the
	// guest these tests mean.
	if out, errs, code := runCLI(context.Background(), "", "image", "count", img, fmt.Sprint(stampGuestSeconds*time.Second)); code != 0 {
		tp.t.Fatalf("vmpool image count: exit %d: %s%s", code, out, errs)
	}
	d, err := vmimage.ReadData(img)
	if err != nil {
		tp.t.Fatal(err)
	}
	if want := vmimage.TicksFor(stampGuestSeconds * time.Second); d.Kind != vmimage.KindStamp || d.Target != want || d.Stamped || d.Boots != 0 {
		tp.t.Fatalf("vmpool image count wrote %+v, want a fresh stamp guest counting to %d", d, want)
	}
	return img
}

// TestImageCountArgs: the count guest's duration is checked before
// anything is written.
func TestImageCountArgs(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"image", "count", filepath.Join(dir, "a.img")},
		{"image", "count", filepath.Join(dir, "b.img"), "ten"},
		{"image", "count", filepath.Join(dir, "c.img"), "-5s"},
		{"image", "count", filepath.Join(dir, "d.img"), "48h"},
		{"image", "hello", filepath.Join(dir, "e.img"), "5s"},
	} {
		out, errs, code := runCLI(context.Background(), "", args...)
		if code != 2 || out != "" || !strings.Contains(errs, "vmpool image:") {
			t.Errorf("vmpool %s: exit %d, stdout %q, stderr %q; want exit 2 and a usage message", strings.Join(args, " "), code, out, errs)
		}
		if _, err := os.Stat(args[2]); err == nil {
			t.Errorf("vmpool %s wrote %s", strings.Join(args, " "), args[2])
		}
	}
	img := filepath.Join(dir, "ok.img")
	if _, errs, code := runCLI(context.Background(), "", "image", "count", img, "90s"); code != 0 {
		t.Fatalf("vmpool image count %s 90s: exit %d: %s", img, code, errs)
	}
	out, errs, code := runCLI(context.Background(), "", "image", "read", img)
	if want := fmt.Sprintf("guest stamp, counter 0, boots 0, ticks 0/%d\n", vmimage.TicksFor(90*time.Second)); code != 0 || !strings.HasSuffix(out, want) {
		t.Fatalf("vmpool image read: exit %d, %q %s; want ...%q", code, out, errs, want)
	}
}

// started decodes a JobStarted event.
func started(t *testing.T, e events.Event) events.JobStartedPayload {
	t.Helper()
	var p events.JobStartedPayload
	if err := e.Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// startdOf is the startd name of a slot name (slot1@startd1 -> startd1).
func startdOf(slot string) string { return slot[strings.IndexByte(slot, '@')+1:] }

// firstStamp reads the boot stamp the running guest wrote on its disk in
// the startd's scratch directory.
func firstStamp(t *testing.T, startdDir string) vmimage.Stamp {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		paths, _ := filepath.Glob(filepath.Join(startdDir, "execute", "dir_*", "stamp.img"))
		for _, p := range paths {
			if d, err := vmimage.ReadData(p); err == nil && d.Stamped {
				return d.Stamp
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest wrote no boot stamp under %s", startdDir)
		}
		time.Sleep(50 * time.Millisecond) // the guest's disk shows no event
	}
}

func checkResumedDisk(t *testing.T, img string, stamp vmimage.Stamp) {
	t.Helper()
	d, err := vmimage.ReadData(img)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Done || d.Ticks < d.Target {
		t.Errorf("returned disk: guest not done (%d/%d ticks)", d.Ticks, d.Target)
	}
	if d.Stamp != stamp {
		t.Errorf("returned disk has boot stamp %s, want the first boot's %s: the VM booted again instead of resuming", d.Stamp, stamp)
	}
	if d.Boots != 1 {
		t.Errorf("returned disk records %d boots, want 1", d.Boots)
	}
}

// TestCheckpointDrainResumesElsewhere: a vm_checkpoint job on a startd
// that is drained is checkpointed, goes back to the queue, and resumes on
// the other startd where it stopped.
func TestCheckpointDrainResumesElsewhere(t *testing.T) {
	tp := newTestPool(t, 2, wholeDisks)
	img := tp.writeStampImage()
	tp.mustRun("submit", tp.write("stamp.sub", stampSub("vm_checkpoint = true")))
	first := started(t, tp.jobEvent(1, 0, events.JobStarted, 60*time.Second))
	from := startdOf(first.Slot)
	stamp := firstStamp(t, filepath.Join(tp.home, from))

	// While it runs: condor_q -run names its slot; condor_status -claimed
	// that slot and whose job it runs, -avail only the other startd's.
	if out := tp.mustRun("q", "-run"); !regexp.MustCompile(`(?m)^ +1\.0 .* ` + regexp.QuoteMeta(first.Slot) + `$`).MatchString(out) {
		t.Errorf("q -run:\n%s", out)
	}
	claimedLine := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(first.Slot) + ` +LINUX/X86_64 +[0-9.]+ ` + regexp.QuoteMeta(currentUser()+"@schedd") + ` +schedd$`)
	for _, opt := range []string{"-claimed", "-run"} {
		if out := tp.mustRun("status", opt); !claimedLine.MatchString(out) {
			t.Errorf("status %s:\n%s", opt, out)
		}
	}
	if avail := tp.mustRun("status", "-avail", "-af", "Name"); strings.Contains(avail, first.Slot) || !strings.Contains(avail, "@startd") {
		t.Errorf("status -avail -af Name: %q; want the free slot only (not %s)", avail, first.Slot)
	}

	out := tp.mustRun("drain", from)
	if !strings.Contains(out, "Sent request to drain "+from+" (1 VM(s) vacating)") {
		t.Fatalf("drain printed %q", out)
	}
	var ev events.JobEvictedPayload
	if err := tp.jobEvent(1, 0, events.JobEvicted, 60*time.Second).Decode(&ev); err != nil {
		t.Fatal(err)
	}
	if ev.Checkpoint == nil || len(ev.Checkpoint.Files) == 0 {
		t.Fatalf("evicted without a checkpoint: %+v", ev)
	}
	if ev.UserCPUNanos+ev.SysCPUNanos <= 0 {
		t.Fatalf("eviction without the CPU the VM used: %+v", ev)
	}
	second := started(t, tp.waitEvent("vmpool.ev.schedd.schedd.job.schedd.1.0.JobStarted", func(e events.Event) bool {
		return started(t, e).ClaimID != first.ClaimID
	}, 60*time.Second))
	if !second.Resumed || second.ResumedFrom != 1 || startdOf(second.Slot) == from {
		t.Fatalf("second start %+v: want a resume from checkpoint 1 on the other startd", second)
	}
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	checkResumedDisk(t, img, stamp)
	if h := tp.mustRun("history", "-af", "NumJobStarts", "NumRestarts", "NumCkpts"); h != "2 1 1\n" {
		t.Fatalf("history: %q", h)
	}
	// Both runs count: the guest counted stampGuestSeconds over the two
	// (each run's seconds are cut to whole ones), and the CPU of both.
	var wall, user float64
	if _, err := fmt.Sscan(tp.mustRun("history", "-af", "RemoteWallClockTime", "RemoteUserCpu"), &wall, &user); err != nil ||
		wall < stampGuestSeconds-2 || user*1e9 <= float64(ev.UserCPUNanos) {
		t.Fatalf("history RemoteWallClockTime %v, RemoteUserCpu %v (%v): want both runs (the first used %v s of CPU)", wall, user, err, float64(ev.UserCPUNanos)/1e9)
	}
	checkUserLog(t, filepath.Join(tp.dir, "stamp.log"), []string{"000", "001", "004", "001", "005"})
	if b, _ := os.ReadFile(filepath.Join(tp.dir, "stamp.log")); !strings.Contains(string(b), "(1) Job was checkpointed.") {
		t.Fatalf("user log lacks the checkpointed eviction:\n%s", b)
	}
	// The drained startd's slot says so.
	if st := tp.mustRun("status", "-af", "Name", "State", "-constraint", `StartdName == "`+from+`"`); st != "slot1@"+from+" Drained\n" {
		t.Fatalf("drained slot: %q", st)
	}
}

// TestVacateWithoutCheckpointBootsAgain: without vm_checkpoint an evicted
// VM is gone; the job runs again from its original disk (a new stamp).
func TestVacateWithoutCheckpointBootsAgain(t *testing.T) {
	tp := newTestPool(t, 1)
	img := tp.writeStampImage()
	tp.mustRun("submit", tp.write("stamp.sub", stampSub("")))
	first := started(t, tp.jobEvent(1, 0, events.JobStarted, 60*time.Second))
	stamp := firstStamp(t, filepath.Join(tp.home, "startd1"))
	tp.mustRun("vacate-job", "1.0")
	var ev events.JobEvictedPayload
	if err := tp.jobEvent(1, 0, events.JobEvicted, 60*time.Second).Decode(&ev); err != nil || ev.Checkpoint != nil {
		t.Fatalf("eviction %+v %v: want no checkpoint", ev, err)
	}
	second := started(t, tp.waitEvent("vmpool.ev.schedd.schedd.job.schedd.1.0.JobStarted", func(e events.Event) bool {
		return started(t, e).ClaimID != first.ClaimID
	}, 60*time.Second))
	if second.Resumed {
		t.Fatalf("resumed without a checkpoint: %+v", second)
	}
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	d, err := vmimage.ReadData(img)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Done || d.Stamp == stamp || d.Boots != 1 {
		t.Fatalf("returned disk %+v: want a finished run with a new boot stamp (first was %s)", d, stamp)
	}
	if b, _ := os.ReadFile(filepath.Join(tp.dir, "stamp.log")); !strings.Contains(string(b), "(0) Job was not checkpointed.") {
		t.Fatalf("user log lacks the eviction without checkpoint:\n%s", b)
	}
}

// TestPeriodicCheckpointSurvivesKilledStartd: with vm_checkpoint_interval
// a startd process killed with SIGKILL loses at most an interval: the
// schedd's lease on the claim expires and the job resumes on another
// startd from its last periodic checkpoint. The killed startd, started
// again, stops the VM it left behind.
func TestPeriodicCheckpointSurvivesKilledStartd(t *testing.T) {
	tp := newTestPool(t, 0, "POOL_DAEMONS=startd-ext1,startd-ext2")
	img := tp.writeStampImage()
	daemon := func(name string) []string {
		return []string{"startd", "--home", tp.home, "--name", name, "--set", "ALIVE_INTERVAL=1", "--set", "UPDATE_INTERVAL=1",
			"--set", "VM_STATUS_INTERVAL=5", "--set", wholeDisks}
	}
	procs := map[string]*exec.Cmd{}
	for _, name := range []string{"ext1", "ext2"} {
		procs[name] = tp.vmpoolProcess(name+".log", daemon(name)...)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(tp.mustRun("status", "-af", "Name"), "slot1@ext2") || !strings.Contains(tp.mustRun("status", "-af", "Name"), "slot1@ext1") {
		if time.Now().After(deadline) {
			t.Fatal("the startd processes never advertised their slots")
		}
		time.Sleep(100 * time.Millisecond) // the collector has no event for "both are up"
	}
	tp.mustRun("submit", tp.write("stamp.sub", stampSub("vm_checkpoint = true\nvm_checkpoint_interval = 2\njob_lease_duration = 20")))
	first := started(t, tp.jobEvent(1, 0, events.JobStarted, 60*time.Second))
	victim := startdOf(first.Slot)
	stamp := firstStamp(t, filepath.Join(tp.home, victim))
	tp.jobEvent(1, 0, events.JobCheckpointed, 60*time.Second)
	pid := tp.vmPID(1, 0)

	if err := procs[victim].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	procs[victim].Wait()
	tp.jobEvent(1, 0, events.ClaimLost, 90*time.Second)
	second := started(t, tp.waitEvent("vmpool.ev.schedd.schedd.job.schedd.1.0.JobStarted", func(e events.Event) bool {
		return started(t, e).ClaimID != first.ClaimID
	}, 60*time.Second))
	if !second.Resumed || second.ResumedFrom < 1 || startdOf(second.Slot) == victim {
		t.Fatalf("second start %+v: want a resume from a periodic checkpoint elsewhere", second)
	}
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	checkResumedDisk(t, img, stamp)

	// The killed startd comes back: the schedd disowns its claim, and the
	// VM it left running is stopped.
	if processGone(pid) {
		t.Logf("the orphaned QEMU %d had already exited", pid)
	}
	tp.vmpoolProcess(victim+"-again.log", daemon(victim)...)
	waitGone(t, pid)
	b, _ := os.ReadFile(filepath.Join(tp.dir, "stamp.log"))
	log := string(b)
	if strings.Count(log, "\n005 ") != 1 || !strings.Contains(log, "Job reconnection failed") || !strings.Contains(log, "\n003 ") {
		t.Fatalf("user log: want periodic checkpoints (003), the lost claim (024) and one termination:\n%s", log)
	}
	if h := tp.mustRun("history", "-af", "NumJobStarts", "NumRestarts"); h != "2 1\n" {
		t.Fatalf("history: %q", h)
	}
}

// TestCorruptCheckpointFallsBack: the newest checkpoint of a job is
// corrupted in the spool; the resume detects it by its checksum, falls back
// to the previous good checkpoint, and the user log says so.
func TestCorruptCheckpointFallsBack(t *testing.T) {
	tp := newTestPool(t, 1, wholeDisks)
	img := tp.writeStampImage()
	tp.mustRun("submit", tp.write("stamp.sub", stampSub("vm_checkpoint = true\nvm_checkpoint_interval = 1")))
	tp.jobEvent(1, 0, events.JobStarted, 60*time.Second)
	stamp := firstStamp(t, filepath.Join(tp.home, "startd1"))
	tp.waitEvent("vmpool.ev.schedd.schedd.job.schedd.1.0.JobCheckpointed", func(e events.Event) bool { return e.Seq > 0 }, 60*time.Second)
	// Drain: the VM is vacated with a checkpoint and nothing can take the
	// job until the drain is cancelled.
	tp.mustRun("drain", "startd1")
	var ev events.JobEvictedPayload
	if err := tp.jobEvent(1, 0, events.JobEvicted, 60*time.Second).Decode(&ev); err != nil || ev.Checkpoint == nil {
		t.Fatalf("eviction %+v %v", ev, err)
	}
	newest := tp.mustRun("q", "-af", "VmpoolCheckpoint")
	// Corrupt every object of the newest checkpoint that no older one shares.
	var older events.JobCheckpointedPayload
	if err := tp.waitEvent("vmpool.ev.schedd.schedd.job.schedd.1.0.JobCheckpointed", nil, 5*time.Second).Decode(&older); err != nil {
		t.Fatal(err)
	}
	shared := map[string]bool{}
	for _, f := range older.Checkpoint.Files {
		shared[f.Object] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	corrupted := 0
	for _, f := range ev.Checkpoint.Files {
		if !shared[f.Object] {
			st, err := tp.Bus.FileStore(ctx, f.Bucket)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.PutBytes(ctx, f.Object, []byte("not a checkpoint")); err != nil {
				t.Fatal(err)
			}
			corrupted++
		}
	}
	if corrupted == 0 {
		t.Fatal("the newest checkpoint shares all its objects with an older one")
	}
	tp.mustRun("drain", "-cancel", "startd1")
	second := started(t, tp.waitEvent("vmpool.ev.schedd.schedd.job.schedd.1.0.JobStarted", func(e events.Event) bool {
		return started(t, e).Resumed || started(t, e).ResumeNote != ""
	}, 60*time.Second))
	want := fmt.Sprintf("checkpoint %s unusable", strings.TrimSpace(newest))
	if !second.Resumed || !strings.Contains(second.ResumeNote, want) {
		t.Fatalf("second start %+v: want a resume from an older checkpoint, noting %q", second, want)
	}
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	checkResumedDisk(t, img, stamp)
	b, _ := os.ReadFile(filepath.Join(tp.dir, "stamp.log"))
	if !strings.Contains(string(b), "\n008 ") || !strings.Contains(string(b), want) || !strings.Contains(string(b), fmt.Sprintf("resumed from checkpoint %d", second.ResumedFrom)) {
		t.Fatalf("user log does not say which checkpoint was used:\n%s", b)
	}
}

// TestRankPreemption: one startd whose RANK prefers urgent jobs runs a
// vm_checkpoint job; an urgent job arrives: the running VM is vacated
// with a checkpoint (004, checkpointed, with the reason), the urgent job
// runs and completes on that slot, and the first job then resumes there
// from its checkpoint, not booted again.
func TestRankPreemption(t *testing.T) {
	tp := newTestPool(t, 1, "RANK=TARGET.Urgency =?= undefined ? 0 : TARGET.Urgency", wholeDisks)
	img := tp.writeStampImage()
	tp.mustRun("submit", tp.write("stamp.sub", stampSub("vm_checkpoint = true")))
	first := started(t, tp.jobEvent(1, 0, events.JobStarted, 60*time.Second))
	stamp := firstStamp(t, filepath.Join(tp.home, "startd1"))
	if got := tp.mustRun("status", "-af", "CurrentRank"); got != "0.0\n" && got != "0\n" {
		t.Fatalf("CurrentRank of the slot running a job without Urgency: %q", got)
	}

	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("urgent.sub", strings.Replace(helloSub, "queue", "+Urgency = 10\nqueue", 1)))
	var ev events.JobEvictedPayload
	if err := tp.jobEvent(1, 0, events.JobEvicted, 60*time.Second).Decode(&ev); err != nil {
		t.Fatal(err)
	}
	if ev.Checkpoint == nil || !strings.Contains(ev.Reason, "RANK prefers") {
		t.Fatalf("the preempted job's eviction: %+v", ev)
	}
	urgent := started(t, tp.jobEvent(2, 0, events.JobStarted, 60*time.Second))
	if urgent.Slot != first.Slot {
		t.Fatalf("the urgent job ran on %s, not the preempted slot %s", urgent.Slot, first.Slot)
	}
	tp.jobEvent(2, 0, events.JobCompleted, 60*time.Second)
	tp.jobEvent(1, 0, events.JobCompleted, 120*time.Second)
	checkResumedDisk(t, img, stamp)
	if h := tp.mustRun("history", "-af", "ClusterId", "NumJobStarts", "NumRestarts", "-constraint", "ClusterId == 1"); h != "1 2 1\n" {
		t.Fatalf("history of the preempted job: %q", h)
	}
	checkUserLog(t, filepath.Join(tp.dir, "stamp.log"), []string{"000", "001", "004", "001", "005"})
}

// TestCheckpointOverlaysShipLess: by default a vm_checkpoint job's disk
// writes go to a qcow2 overlay, and its checkpoint ships that overlay, not
// the disk: for a 64 MiB disk of which the guest writes one sector, a few
// hundred KiB instead of 64 MiB. The job resumes on the other startd from
// it (one boot in all) and its returned disk holds every write, merged.
func TestCheckpointOverlaysShipLess(t *testing.T) {
	tp := newTestPool(t, 2)
	img := filepath.Join(tp.dir, "stamp.img")
	const diskSize = 64 << 20
	if err := vmimage.StampCounter(vmimage.TicksFor(stampGuestSeconds*time.Second)).WriteRaw(img, diskSize); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("stamp.sub", stampSub("vm_checkpoint = true")))
	first := started(t, tp.jobEvent(1, 0, events.JobStarted, 60*time.Second))
	from := startdOf(first.Slot)
	// The guest has written once its overlay grew past an empty one's.
	deadline := time.Now().Add(60 * time.Second)
	for {
		paths, _ := filepath.Glob(filepath.Join(tp.home, from, "execute", "dir_*", "hda.overlay.qcow2"))
		if len(paths) == 1 {
			if fi, err := os.Stat(paths[0]); err == nil && fi.Size() > 256<<10 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no overlay written under %s: %v", from, paths)
		}
		time.Sleep(50 * time.Millisecond) // the overlay's growth has no event
	}
	tp.mustRun("drain", from)
	var ev events.JobEvictedPayload
	if err := tp.jobEvent(1, 0, events.JobEvicted, 60*time.Second).Decode(&ev); err != nil {
		t.Fatal(err)
	}
	if ev.Checkpoint == nil {
		t.Fatalf("evicted without a checkpoint: %+v", ev)
	}
	var disk *events.FileRef
	for i, f := range ev.Checkpoint.Files {
		if strings.HasPrefix(f.Name, "disk-") {
			disk = &ev.Checkpoint.Files[i]
		}
	}
	if disk == nil || !strings.HasSuffix(disk.Name, ".qcow2") || disk.Size >= diskSize/16 {
		t.Fatalf("the checkpoint's disk part: %+v (want a qcow2 overlay far smaller than the %d-byte disk)", disk, diskSize)
	}
	t.Logf("checkpoint of a %d MiB disk shipped %s: %d bytes", diskSize>>20, disk.Name, disk.Size)
	second := started(t, tp.waitEvent("vmpool.ev.schedd.schedd.job.schedd.1.0.JobStarted", func(e events.Event) bool {
		return started(t, e).ClaimID != first.ClaimID
	}, 60*time.Second))
	if !second.Resumed || startdOf(second.Slot) == from {
		t.Fatalf("second start %+v: want a resume on the other startd", second)
	}
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	d, err := vmimage.ReadData(img)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Done || d.Ticks < d.Target || d.Boots != 1 {
		t.Fatalf("returned disk %+v: want the count finished after one boot", d)
	}
	if fi, _ := os.Stat(img); fi.Size() != diskSize {
		t.Fatalf("returned disk is %d bytes, want %d", fi.Size(), diskSize)
	}
}

// TestPreemptAndKill: the startd's PREEMPT vacates the running VM it
// picks, and KILL, true while that VM is being vacated, cuts the vacate
// short: the guest, which ignores the ACPI power button, is killed instead
// of being given its 10 s to power off. The 004 names both reasons; the
// job goes back to the queue (and is then removed by the test).
func TestPreemptAndKill(t *testing.T) {
	tp := newTestPool(t, 1, "PREEMPT=TARGET.Evict =?= true", "KILL=TARGET.Evict =?= true")
	tp.writeStampImage()
	tp.mustRun("submit", tp.write("stamp.sub", stampSub("+Evict = true")))
	tp.jobEvent(1, 0, events.JobStarted, 60*time.Second)
	var ev events.JobEvictedPayload
	if err := tp.jobEvent(1, 0, events.JobEvicted, 60*time.Second).Decode(&ev); err != nil {
		t.Fatal(err)
	}
	const want = "killed while vacating (PREEMPT is true; then killed: KILL is true)"
	if ev.Checkpoint != nil || !strings.Contains(ev.Reason, want) {
		t.Fatalf("eviction %+v: want no checkpoint and %q", ev, want)
	}
	tp.mustRun("rm", "1")
	tp.jobEvent(1, 0, events.JobRemoved, 60*time.Second)
	// The job may have started again before the rm; the first 004 is the
	// one this test made.
	var b []byte
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if b, _ = os.ReadFile(filepath.Join(tp.dir, "stamp.log")); strings.Contains(string(b), "\n009 (") {
			break // the user log follows the event log asynchronously
		}
	}
	log := string(b)
	if i := strings.Index(log, "\n004 ("); i < 0 || !strings.Contains(log[i:], "KILL is true") || !strings.Contains(log, "\n009 (") {
		t.Fatalf("the user log does not show the eviction, its reason and the removal:\n%s", b)
	}
}
