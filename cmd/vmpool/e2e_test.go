package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/vmimage"
)

const helloSub = `universe = vm
executable = hello_vm_job
log = hello.log
vm_type = kvm
vm_memory = 16
vm_disk = hello.img:hda:w:raw
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
transfer_input_files = hello.img
queue
`

func readCounter(t *testing.T, path string) uint32 {
	t.Helper()
	d, err := vmimage.ReadData(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return d.Counter
}

// TestHelloJob is the hello job: submitted, matched, run under
// QEMU, its modified disk back in the submit directory, Completed, in the
// history, with its user log events.
func TestHelloJob(t *testing.T) {
	tp := newTestPool(t, 1)
	img := filepath.Join(tp.dir, "hello.img")
	if err := vmimage.WriteHello(img); err != nil {
		t.Fatal(err)
	}
	sub := tp.write("hello.sub", helloSub)
	out := tp.mustRun("submit", sub)
	if !strings.Contains(out, "1 job(s) submitted to cluster 1.") {
		t.Fatalf("submit printed %q", out)
	}
	// condor_wait on the user log returns once the job is done.
	if out := tp.mustRun("wait", "-wait", "60", filepath.Join(tp.dir, "hello.log"), "1.0"); out != "All jobs done.\n" {
		t.Fatalf("wait printed %q", out)
	}
	tp.jobEvent(1, 0, events.JobCompleted, 60*time.Second)

	if got := readCounter(t, img); got != 1 {
		t.Fatalf("returned disk counter = %d, want 1 (the guest's write must come back)", got)
	}
	q := jsonAds(t, tp.mustRun("q", "-json", "-allusers"))
	if len(q) != 0 {
		t.Fatalf("completed job still in the queue: %v", q)
	}
	hist := jsonAds(t, tp.mustRun("history", "-json"))
	if len(hist) != 1 {
		t.Fatalf("history has %d jobs, want 1", len(hist))
	}
	h := hist[0]
	for attr, want := range map[string]any{"ClusterId": 1.0, "ProcId": 0.0, "JobStatus": 4.0, "Cmd": "hello_vm_job",
		"JobVMType": "kvm", "JobVMMemory": 16.0, "JobUniverse": 13.0, "NumJobStarts": 1.0, "Owner": currentUser()} {
		if h[attr] != want {
			t.Errorf("history %s = %v, want %v", attr, h[attr], want)
		}
	}
	if _, ok := h["QDate"].(float64); !ok {
		t.Errorf("history has no QDate: %v", h)
	}
	if _, ok := h["CompletionDate"].(float64); !ok {
		t.Errorf("history has no CompletionDate")
	}
	// The CPU QEMU used, as the startd reported it (HTCondor's
	// RemoteUserCpu and RemoteSysCpu, seconds as reals).
	if u, _ := h["RemoteUserCpu"].(float64); u <= 0 {
		t.Errorf("history RemoteUserCpu = %v, want the CPU the VM used", h["RemoteUserCpu"])
	}
	if _, ok := h["RemoteSysCpu"].(float64); !ok {
		t.Errorf("history has no RemoteSysCpu")
	}
	// The scratch directory is gone once the job is done.
	scratch, _ := filepath.Glob(filepath.Join(tp.home, "startd1", "execute", "dir_*"))
	if len(scratch) != 0 {
		t.Errorf("scratch directories left: %v", scratch)
	}
	checkUserLog(t, filepath.Join(tp.dir, "hello.log"), []string{"000", "001", "005"})
	// The driver's log lines carry the startd's keys.
	if logs := tp.logs.String(); !strings.Contains(logs, `msg="qemu started" daemon=startd startd=startd1 vm_type=kvm`) {
		t.Errorf("the qemu driver's lines do not name their startd:\n%s", logs)
	} else if strings.Contains(logs, "vm_type=kvm vm_type=kvm") {
		t.Errorf("the qemu driver's lines say vm_type twice:\n%s", logs)
	}
}

// checkUserLog checks that a user log holds exactly the given event codes,
// in order, in HTCondor's format.
func checkUserLog(t *testing.T, path string, codes []string) {
	t.Helper()
	var b []byte
	deadline := time.Now().Add(10 * time.Second)
	header := regexp.MustCompile(`(?m)^(\d{3}) \((\d{3,})\.(\d{3,})\.(\d{3,})\) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (.*)$`)
	for {
		b, _ = os.ReadFile(path)
		if len(header.FindAllSubmatch(b, -1)) >= len(codes) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the user log follows the event log asynchronously
	}
	var got []string
	for _, m := range header.FindAllSubmatch(b, -1) {
		got = append(got, string(m[1]))
	}
	if strings.Join(got, " ") != strings.Join(codes, " ") {
		t.Fatalf("user log %s has events %v, want %v:\n%s", path, got, codes, b)
	}
	if n := strings.Count(string(b), "\n...\n"); n != len(codes) {
		t.Fatalf("user log has %d event terminators, want %d:\n%s", n, len(codes), b)
	}
}

// TestSubmitVerbose: condor_submit -verbose prints each job's ad once, as
// queued (its cluster id, not 0), under "** Proc C.P:".
func TestSubmitVerbose(t *testing.T) {
	tp := newTestPool(t, 0)
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	out := tp.mustRun("submit", "-verbose", "-queue", "2", tp.write("v.sub", strings.Replace(helloSub, "queue\n", "", 1)))
	for want, times := range map[string]int{"** Proc 1.0:\n": 1, "** Proc 1.1:\n": 1, "ClusterId = 1\n": 2, "ProcId = 1\n": 1} {
		if n := strings.Count(out, want); n != times {
			t.Errorf("submit -verbose printed %q %d times, want %d:\n%s", want, n, times, out)
		}
	}
	if strings.Contains(out, "ClusterId = 0") {
		t.Errorf("submit -verbose printed an ad before the cluster was known:\n%s", out)
	}
	if !strings.HasSuffix(out, "2 job(s) submitted to cluster 1.\n") {
		t.Errorf("submit -verbose ends %q", out)
	}
}

// TestShortLeaseIsKeptAlive: a job whose job_lease_duration (20 s, the
// least condor_submit takes) is shorter than the startd's ALIVE_INTERVAL
// (60 s, its default) keeps its claim while its VM runs for longer than
// the lease. The startd sent keepalives every ALIVE_INTERVAL only: the
// schedd declared such claims lost (022, 024) and matched the job again
// while its first VM still ran.
func TestShortLeaseIsKeptAlive(t *testing.T) {
	tp := newTestPool(t, 1, "ALIVE_INTERVAL=60")
	img := filepath.Join(tp.dir, "count.img")
	if out, errs, code := runCLI(context.Background(), "", "image", "count", img, "28s"); code != 0 {
		t.Fatalf("image count: %s %s", out, errs)
	}
	tp.mustRun("submit", tp.write("lease.sub", strings.ReplaceAll(strings.Replace(helloSub, "queue", "job_lease_duration = 20\nqueue", 1), "hello.img", "count.img")))
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	checkUserLog(t, filepath.Join(tp.dir, "hello.log"), []string{"000", "001", "005"})
	if n := tp.mustRun("history", "-af", "NumJobStarts"); strings.TrimSpace(n) != "1" {
		t.Errorf("NumJobStarts = %q, want 1", n)
	}
}

// TestWrongDiskFormatIsHeld: a disk that is not in the format vm_disk
// gives is the job's fault: the job is held (code 6, KVM_INVALID_DISK_PARAM's
// subcode 10) before QEMU is asked, and the machine keeps offering VMs.
// It used to be taken for the machine's fault: the job went back to the
// queue and the machine stopped advertising VMs until its recheck, again
// at every match.
func TestWrongDiskFormatIsHeld(t *testing.T) {
	tp := newTestPool(t, 1)
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("qcow.sub", strings.Replace(helloSub, "hello.img:hda:w:raw", "hello.img:hda:w:qcow2", 1)))
	tp.jobEvent(1, 0, events.JobHeld, 60*time.Second)
	q := jsonAds(t, tp.mustRun("q", "-json"))
	if len(q) != 1 || q[0]["HoldReasonCode"] != 6.0 || q[0]["HoldReasonSubCode"] != 10.0 ||
		!strings.Contains(q[0]["HoldReason"].(string), "no qcow2 header") {
		t.Fatalf("held job: %v", q)
	}
	if out := tp.mustRun("status", "-af", "HasVM"); strings.TrimSpace(out) != "true" {
		t.Fatalf("status -af HasVM after the job was held = %q, want true: the machine was blamed", out)
	}
	checkUserLog(t, filepath.Join(tp.dir, "hello.log"), []string{"000", "012"})
}

// TestHaltedGuestCompletes: a guest that halts instead of powering off
// (as /sbin/halt leaves some Linux distributions, which HTCondor's manual
// says hangs the job) completes its job at the second status check that
// finds it halted, its disk returned; replay says what happened.
func TestHaltedGuestCompletes(t *testing.T) {
	tp := newTestPool(t, 1, "VM_STATUS_INTERVAL=1")
	img := filepath.Join(tp.dir, "hello.img")
	if err := vmimage.Halting().WriteRaw(img, 0); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("hello.sub", helloSub))
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	if got := readCounter(t, img); got != 1 {
		t.Fatalf("returned disk counter = %d, want 1", got)
	}
	checkUserLog(t, filepath.Join(tp.dir, "hello.log"), []string{"000", "001", "005"})
	if out := tp.mustRun("replay", "--home", tp.home, "--job", "1.0"); !strings.Contains(out, "guest halted without powering off") {
		t.Errorf("replay --job does not say the guest halted:\n%s", out)
	}
}

// TestQueueManyWithMacros queues several jobs at once, each with its own
// disk named by $(Process), and runs them on two startds.
func TestQueueManyWithMacros(t *testing.T) {
	tp := newTestPool(t, 2)
	for i := 0; i < 3; i++ {
		if err := vmimage.WriteHello(filepath.Join(tp.dir, fmt.Sprintf("disk%d.img", i))); err != nil {
			t.Fatal(err)
		}
	}
	sub := tp.write("many.sub", `universe = vm
executable = many_$(Process)
vm_type = kvm
vm_memory = 16
vm_disk = disk$(Process).img:hda:w:raw
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
transfer_input_files = disk$(Process).img
queue 3
`)
	out := tp.mustRun("submit", sub)
	if !strings.Contains(out, "3 job(s) submitted to cluster 1.") {
		t.Fatalf("submit printed %q", out)
	}
	for p := 0; p < 3; p++ {
		tp.jobEvent(1, p, events.JobCompleted, 90*time.Second)
	}
	for i := 0; i < 3; i++ {
		if got := readCounter(t, filepath.Join(tp.dir, fmt.Sprintf("disk%d.img", i))); got != 1 {
			t.Errorf("disk%d.img counter = %d, want 1", i, got)
		}
	}
	af := tp.mustRun("history", "-af", "ProcId", "Cmd")
	for p := 0; p < 3; p++ {
		if !strings.Contains(af, fmt.Sprintf("%d many_%d\n", p, p)) {
			t.Errorf("history -af lacks proc %d: %q", p, af)
		}
	}
	// Both startds took part.
	started := map[string]bool{}
	for p := 0; p < 3; p++ {
		e := tp.jobEvent(1, p, events.JobStarted, 5*time.Second)
		var sp events.JobStartedPayload
		if err := e.Decode(&sp); err != nil {
			t.Fatal(err)
		}
		started[sp.Slot] = true
	}
	if len(started) < 2 {
		t.Logf("jobs ran on %v only (possible when one startd is fast)", started)
	}
}

// TestRestartMidQueue stops the pool with jobs queued and none run, starts
// it again on the same home, and the jobs run exactly once.
func TestRestartMidQueue(t *testing.T) {
	home := t.TempDir()
	tp := startTestPool(t, home, 0)
	img := filepath.Join(tp.dir, "hello.img")
	if err := vmimage.WriteHello(img); err != nil {
		t.Fatal(err)
	}
	sub := tp.write("hello.sub", strings.Replace(helloSub, "queue", "queue 2", 1))
	tp.mustRun("submit", sub)
	before := tp.mustRun("q", "-af", "ClusterId", "ProcId", "JobStatus")
	if before != "1 0 1\n1 1 1\n" {
		t.Fatalf("queue before restart: %q", before)
	}
	tp.stop()

	tp2 := startTestPool(t, home, 1)
	tp2.dir = tp.dir
	after := tp2.mustRun("q", "-af", "ClusterId", "ProcId", "JobStatus")
	if after != before {
		t.Fatalf("queue after restart %q, before %q", after, before)
	}
	tp2.jobEvent(1, 0, events.JobCompleted, 60*time.Second)
	tp2.jobEvent(1, 1, events.JobCompleted, 60*time.Second)
	// Both jobs wrote the same disk one after the other: 2 runs in all.
	if got := readCounter(t, img); got < 1 {
		t.Fatalf("counter %d", got)
	}
	hist := tp2.mustRun("history", "-af", "ClusterId", "ProcId", "NumJobStarts")
	if hist != "1 1 1\n1 0 1\n" && hist != "1 0 1\n1 1 1\n" {
		t.Fatalf("history after restart: %q", hist)
	}
	// A new submit continues the cluster numbering.
	out := tp2.mustRun("submit", sub)
	if !strings.Contains(out, "submitted to cluster 2.") {
		t.Fatalf("after restart, submit printed %q", out)
	}
}

// TestSubmitChecksQueueNothing submits broken files: each is refused with
// a message naming the file, the line and the fix, and nothing is queued.
func TestSubmitChecksQueueNothing(t *testing.T) {
	tp := newTestPool(t, 0)
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, sub, code string }{
		{"input given", strings.Replace(helloSub, "queue", "input = in.txt\nqueue", 1), "io-not-allowed"},
		{"no vm_type", strings.Replace(helloSub, "vm_type = kvm\n", "", 1), "vm-type-missing"},
		{"unknown vm_type", strings.Replace(helloSub, "vm_type = kvm", "vm_type = virtualbox", 1), "vm-type-unknown"},
		{"no vm_memory", strings.Replace(helloSub, "vm_memory = 16\n", "", 1), "vm-memory-missing"},
		{"bad vm_memory", strings.Replace(helloSub, "vm_memory = 16", "vm_memory = -5", 1), "vm-memory-invalid"},
		{"vm_disk fields", strings.Replace(helloSub, "hello.img:hda:w:raw", "hello.img:hda", 1), "vm-disk-format"},
		{"missing disk file", strings.ReplaceAll(helloSub, "hello.img", "nothere.img"), "input-missing"},
		{"checkpoint and networking", strings.Replace(helloSub, "queue", "vm_checkpoint = true\nvm_networking = true\nqueue", 1), "vm-checkpoint-networking"},
		{"xen without kernel", strings.Replace(helloSub, "vm_type = kvm", "vm_type = xen", 1), "xen-kernel-missing"},
		{"vmware without transfer", "universe = vm\nexecutable = x\nvm_type = vmware\nvm_memory = 64\nvmware_dir = .\nqueue\n", "vmware-transfer-missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := tp.write("bad.sub", tc.sub)
			out, errOut, code := tp.vmpool("submit", sub)
			if code != 1 {
				t.Fatalf("exit %d, want 1\nstdout %s\nstderr %s", code, out, errOut)
			}
			if !strings.Contains(errOut, "["+tc.code+"]") {
				t.Fatalf("stderr lacks code [%s]:\n%s", tc.code, errOut)
			}
			if !regexp.MustCompile(`bad\.sub:\d+: `).MatchString(errOut) || !strings.Contains(errOut, "fix:") {
				t.Fatalf("message does not name file, line and fix:\n%s", errOut)
			}
			if !strings.Contains(errOut, "nothing was queued") {
				t.Fatalf("stderr does not say nothing was queued:\n%s", errOut)
			}
		})
	}
	if q := jsonAds(t, tp.mustRun("q", "-json", "-allusers")); len(q) != 0 {
		t.Fatalf("a rejected submit queued jobs: %v", q)
	}
	out := tp.mustRun("submit", tp.write("good.sub", helloSub))
	if !strings.Contains(out, "cluster 1.") {
		t.Fatalf("the first accepted submit should be cluster 1: %q", out)
	}
}

// vmPID finds the QEMU process of a job from the handle in the startd's
// VMStarted event.
func (tp *testPool) vmPID(c, p int) int {
	tp.t.Helper()
	h := tp.vmHandle(c, p, nil)
	if h.PID <= 0 {
		tp.t.Fatalf("VMStarted without a pid: %+v", h)
	}
	return h.PID
}

// vmHandle waits for a startd's VMStarted about job c.p whose handle
// satisfies match (nil: any) and returns the handle.
func (tp *testPool) vmHandle(c, p int, match func(hypervisor.Handle) bool) hypervisor.Handle {
	tp.t.Helper()
	var h hypervisor.Handle
	tp.waitEvent(fmt.Sprintf("vmpool.ev.startd.*.job.schedd.%d.%d.%s", c, p, events.VMStarted), func(e events.Event) bool {
		var vp events.VMEventPayload
		h = hypervisor.Handle{}
		if e.Decode(&vp) != nil || len(vp.Handle) == 0 || json.Unmarshal(vp.Handle, &h) != nil {
			return false
		}
		return match == nil || match(h)
	}, 60*time.Second)
	return h
}

func processGone(pid int) bool {
	err := syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("QEMU process %d still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHoldReleaseRemoveRunningVM holds a running VM (its QEMU process goes
// away, HoldReason is set), releases it (it runs again), then removes it.
func TestHoldReleaseRemoveRunningVM(t *testing.T) {
	tp := newTestPool(t, 1)
	if err := vmimage.Forever().WriteRaw(filepath.Join(tp.dir, "forever.img"), 0); err != nil {
		t.Fatal(err)
	}
	sub := tp.write("forever.sub", strings.ReplaceAll(helloSub, "hello.img", "forever.img"))
	tp.mustRun("submit", sub)
	first := tp.jobEvent(1, 0, events.JobStarted, 60*time.Second)
	pid := tp.vmPID(1, 0)
	if processGone(pid) {
		t.Fatalf("QEMU %d not running while the job runs", pid)
	}

	out := tp.mustRun("hold", "1.0")
	if strings.TrimSpace(out) != "Job 1.0 held" {
		t.Fatalf("hold printed %q", out)
	}
	tp.jobEvent(1, 0, events.ClaimReleased, 30*time.Second)
	waitGone(t, pid)
	af := tp.mustRun("q", "-af", "JobStatus", "HoldReasonCode", "HoldReason")
	if !strings.HasPrefix(af, "5 1 via condor_hold (by user ") {
		t.Fatalf("held job: %q", af)
	}
	if _, errOut, code := tp.vmpool("release", "1.1"); code == 0 || !strings.Contains(errOut, "Job 1.1 not found") {
		t.Fatalf("release of a missing job: exit %d, %q", code, errOut)
	}
	// Holding it again says why not, in condor_hold's words (it said
	// "already held: job already removed", then "Could not hold job 1.0:
	// job 1.0 is already held").
	if _, errOut, code := tp.vmpool("hold", "1.0"); code != 1 || strings.TrimSpace(errOut) != "Job 1.0 already held" {
		t.Fatalf("hold of a held job: exit %d, %q", code, errOut)
	}
	if _, errOut, code := tp.vmpool("vacate-job", "1.0"); code != 1 || strings.TrimSpace(errOut) != "Job 1.0 not running to be vacated" {
		t.Fatalf("vacate of a held job: exit %d, %q", code, errOut)
	}
	tp.mustRun("release", "1")
	// It runs again: a second JobStarted, and a second VM.
	tp.waitEvent("vmpool.ev.schedd.schedd.job.schedd.1.0.JobStarted", func(e events.Event) bool { return e.Seq > first.Seq }, 60*time.Second)
	second := tp.vmHandle(1, 0, func(h hypervisor.Handle) bool { return h.PID != pid })
	out = tp.mustRun("rm", "1.0")
	if strings.TrimSpace(out) != "Job 1.0 marked for removal" {
		t.Fatalf("rm printed %q", out)
	}
	waitGone(t, second.PID)
	tp.waitEvent("vmpool.ev.schedd.schedd.job.schedd.1.0.ClaimReleased", func(e events.Event) bool { return e.Seq > 0 }, 30*time.Second)
	hist := tp.mustRun("history", "-af", "ClusterId", "JobStatus", "NumJobStarts", "RemoveReason")
	if !strings.HasPrefix(hist, "1 3 2 via condor_rm (by user ") {
		t.Fatalf("history after rm: %q", hist)
	}
	checkUserLog(t, filepath.Join(tp.dir, "hello.log"), []string{"000", "001", "012", "013", "001", "009"})
}

// TestVacateFastSkipsTheCheckpoint: vacate-job -fast of a job that asked
// for checkpoints (vm_checkpoint) evicts its VM at once, without one, as
// condor_vacate_job -fast does; the job goes back to the queue and runs
// again from its disks.
func TestVacateFastSkipsTheCheckpoint(t *testing.T) {
	tp := newTestPool(t, 1)
	tp.writeStampImage()
	tp.mustRun("submit", tp.write("stamp.sub", stampSub("vm_checkpoint = true")))
	tp.jobEvent(1, 0, events.JobStarted, 60*time.Second)
	if out := tp.mustRun("vacate-job", "-fast", "1.0"); strings.TrimSpace(out) != "Job 1.0 fast-vacated" {
		t.Fatalf("vacate-job -fast printed %q", out)
	}
	ev := tp.jobEvent(1, 0, events.JobEvicted, 30*time.Second)
	var p events.JobEvictedPayload
	if err := ev.Decode(&p); err != nil || p.Checkpoint != nil || !strings.Contains(p.Reason, "vacate-job -fast") {
		t.Fatalf("eviction %+v %v: want no checkpoint, for vacate-job -fast", p, err)
	}
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	if got := tp.mustRun("history", "-af", "NumJobStarts", "NumCkpts"); got != "2 0\n" {
		t.Fatalf("history NumJobStarts NumCkpts = %q, want 2 starts and no checkpoint", got)
	}
	checkUserLog(t, filepath.Join(tp.dir, "stamp.log"), []string{"000", "001", "004", "001", "005"})
}

// TestVacateRequeuesWithoutCheckpoint vacates a running VM that asked for
// no checkpoint: it is stopped, the job goes back to Idle, and it later
// runs again from its original disk.
func TestVacateRequeuesWithoutCheckpoint(t *testing.T) {
	tp := newTestPool(t, 1)
	img := filepath.Join(tp.dir, "timed.img")
	if err := vmimage.Timed(vmimage.TicksFor(3*time.Second)).WriteRaw(img, 0); err != nil {
		t.Fatal(err)
	}
	sub := tp.write("timed.sub", strings.ReplaceAll(helloSub, "hello.img", "timed.img"))
	tp.mustRun("submit", sub)
	tp.jobEvent(1, 0, events.JobStarted, 60*time.Second)
	pid := tp.vmPID(1, 0)
	out := tp.mustRun("vacate-job", "1.0")
	if strings.TrimSpace(out) != "Job 1.0 vacated" {
		t.Fatalf("vacate printed %q", out)
	}
	ev := tp.jobEvent(1, 0, events.JobEvicted, 30*time.Second)
	var p events.JobEvictedPayload
	if err := ev.Decode(&p); err != nil || p.Checkpoint != nil {
		t.Fatalf("eviction %+v %v: want no checkpoint", p, err)
	}
	waitGone(t, pid)
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	hist := tp.mustRun("history", "-af", "NumJobStarts", "JobStatus")
	if hist != "2 4\n" {
		t.Fatalf("history: %q, want 2 starts and Completed", hist)
	}
	if got := readCounter(t, img); got != 1 {
		t.Fatalf("counter %d: the vacated run must not have been returned", got)
	}
	checkUserLog(t, filepath.Join(tp.dir, "hello.log"), []string{"000", "001", "004", "001", "005"})
}

// TestEmptyPool: in a pool without a startd, condor_status prints nothing
// on stdout and says why on stderr, condor_drain of a machine says there
// is none of that name (it quoted its request's subject), and a submit to
// a schedd that is not there fails before it uploads anything.
func TestEmptyPool(t *testing.T) {
	tp := newTestPool(t, 0)
	out, errOut, code := tp.vmpool("status")
	if code != 0 || out != "" || !strings.Contains(errOut, "no machines are advertised") {
		t.Fatalf("status of an empty pool: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = tp.vmpool("drain", "nosuch")
	if code != 1 || out != "" || !strings.Contains(errOut, "no startd of that name answers") || strings.Contains(errOut, "vmpool.cmd") {
		t.Fatalf("drain of a missing startd: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// A submit to a schedd that is not there says so before it sends the
	// disks (it sent them, then said the schedd "refused the submit").
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = tp.vmpool("submit", "-name", "nosched", tp.write("hello.sub", helloSub))
	if code != 1 || strings.Contains(out, "Submitting") || !strings.Contains(errOut, "no schedd named nosched is advertised") ||
		!strings.Contains(errOut, "(the pool's schedds: schedd); nothing was queued") {
		t.Fatalf("submit to a missing schedd: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestStatusAndNoPool checks condor_status views and the message when no
// pool answers.
func TestStatusAndNoPool(t *testing.T) {
	tp := newTestPool(t, 2, "VM_MEMORY=512")
	ads := jsonAds(t, tp.mustRun("status", "-json"))
	if len(ads) != 2 {
		t.Fatalf("%d machine ads, want 2", len(ads))
	}
	for _, ad := range ads {
		if ad["HasVM"] != true || ad["VM_Type"] != "kvm" || ad["VM_Memory"] != 512.0 || ad["State"] != "Unclaimed" {
			t.Errorf("machine ad: %v", ad)
		}
	}
	vm := tp.mustRun("status", "-vm")
	if !strings.Contains(vm, "slot1@startd1") || !strings.Contains(vm, "kvm") {
		t.Fatalf("status -vm: %q", vm)
	}
	af := tp.mustRun("status", "-af", "Name", "-constraint", `Name == "slot1@startd2"`)
	if af != "slot1@startd2\n" {
		t.Fatalf("status -af -constraint: %q", af)
	}
	// Nothing matching prints nothing at all, as condor_status does (it
	// printed an empty table and said no startd ran).
	for _, args := range [][]string{{"status", "-claimed"}, {"status", "nosuch"}, {"status", "-constraint", "false"}, {"status", "-total", "-avail", "nosuch"}} {
		if out, errOut, code := tp.vmpool(args...); code != 0 || out != "" || errOut != "" {
			t.Errorf("%v with nothing matching: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	var out, errb strings.Builder
	c := &cli{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: func(string) string { return "" }}
	code := c.main(t.Context(), []string{"vmpool", "status", "-pool", "127.0.0.1:1"})
	if code == 0 || !strings.Contains(errb.String(), "no vmpool answers at nats://127.0.0.1:1") {
		t.Fatalf("status without a pool: exit %d, %q", code, errb.String())
	}
}
