package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/vmimage"
)

// TestQEMUCrashHoldsJob: QEMU dies under a running job. The job is held
// with a reason that says the VM stopped without the guest powering off,
// not lost and not silently rerun.
func TestQEMUCrashHoldsJob(t *testing.T) {
	tp := newTestPool(t, 1)
	if err := vmimage.Forever().WriteRaw(filepath.Join(tp.dir, "forever.img"), 0); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("forever.sub", strings.ReplaceAll(helloSub, "hello.img", "forever.img")))
	tp.jobEvent(1, 0, events.JobStarted, 60*time.Second)
	pid := tp.vmPID(1, 0)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var hp events.JobHeldPayload
	if err := tp.jobEvent(1, 0, events.JobHeld, 60*time.Second).Decode(&hp); err != nil {
		t.Fatal(err)
	}
	if hp.Code != 6 || hp.SubCode != 100 || !strings.Contains(hp.Reason, "VM stopped without the guest powering off") {
		t.Fatalf("hold %+v", hp)
	}
	af := tp.mustRun("q", "-af", "JobStatus", "HoldReasonCode", "HoldReasonSubCode")
	if af != "5 6 100\n" {
		t.Fatalf("queue: %q", af)
	}
}

// TestPeriodicHoldStopsEndlessGuest: a guest that never powers off is held
// by its own periodic_hold expression, and its VM is stopped.
func TestPeriodicHoldStopsEndlessGuest(t *testing.T) {
	tp := newTestPool(t, 1, "PERIODIC_EXPR_INTERVAL=1")
	if err := vmimage.Forever().WriteRaw(filepath.Join(tp.dir, "forever.img"), 0); err != nil {
		t.Fatal(err)
	}
	sub := strings.ReplaceAll(helloSub, "hello.img", "forever.img")
	sub = strings.Replace(sub, "queue", "periodic_hold = JobStatus == 2 && time() - JobCurrentStartDate > 2\nperiodic_hold_reason = \"ran too long\"\nqueue", 1)
	tp.mustRun("submit", tp.write("forever.sub", sub))
	tp.jobEvent(1, 0, events.JobStarted, 60*time.Second)
	pid := tp.vmPID(1, 0)
	var hp events.JobHeldPayload
	if err := tp.jobEvent(1, 0, events.JobHeld, 60*time.Second).Decode(&hp); err != nil {
		t.Fatal(err)
	}
	if hp.Code != 3 || hp.Reason != "ran too long" {
		t.Fatalf("hold %+v", hp)
	}
	waitGone(t, pid)
}

// TestWipedBusHeals: the JetStream store is lost between two runs of the
// pool (what a power loss does to a server that acknowledged before
// fsync), while the daemons' Pebble logs survive. The queue is intact,
// the daemons publish their events again, and the pool carries on.
func TestWipedBusHeals(t *testing.T) {
	home := t.TempDir()
	tp := startTestPool(t, home, 1)
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("hello.sub", helloSub))
	tp.jobEvent(1, 0, events.JobCompleted, 60*time.Second)
	tp.mustRun("submit", tp.write("idle.sub", strings.Replace(helloSub, "vm_memory = 16", "vm_memory = 4096", 1)))
	dir := tp.dir
	tp.stop()
	if err := os.RemoveAll(filepath.Join(home, "nats")); err != nil {
		t.Fatal(err)
	}
	tp2 := startTestPool(t, home, 1)
	tp2.dir = dir
	// The schedd republishes its events: the stream holds the first job's
	// completion again.
	tp2.jobEvent(1, 0, events.JobCompleted, 30*time.Second)
	if h := tp2.mustRun("history", "-af", "ClusterId", "JobStatus"); h != "1 4\n" {
		t.Fatalf("history after the wipe: %q", h)
	}
	if q := tp2.mustRun("q", "-af", "ClusterId", "JobStatus"); q != "2 1\n" {
		t.Fatalf("queue after the wipe: %q", q)
	}
	out := tp2.mustRun("submit", tp2.write("hello3.sub", strings.ReplaceAll(helloSub, "hello.log", "hello3.log")))
	if !strings.Contains(out, "submitted to cluster 3.") {
		t.Fatalf("submit after the wipe: %q", out)
	}
	tp2.jobEvent(3, 0, events.JobCompleted, 60*time.Second)
	if h := tp2.mustRun("history", "-af", "ClusterId", "NumJobStarts"); h != "3 1\n1 1\n" {
		t.Fatalf("history: %q (the first job must not run again)", h)
	}
}

// TestHostileMessagesDropped: malformed events on the bus (not JSON, a
// schema version from the future, a source with a dot, a body whose source
// is not its subject's, an oversized payload) are dropped by their consumers, which keep working.
func TestHostileMessagesDropped(t *testing.T) {
	tp := newTestPool(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	subject := "vmpool.ev.negotiator.negotiator.job.schedd.1.0.Matched"
	future, _ := json.Marshal(map[string]any{"v": 99, "src": "negotiator", "seq": 500, "type": "Matched", "schedd": "schedd", "cluster": 1})
	dotted, _ := json.Marshal(map[string]any{"v": 1, "src": "neg.otiator", "seq": 501, "type": "Matched", "schedd": "schedd", "cluster": 1})
	// On the negotiator's subject, a body that claims another source.
	forged, _ := json.Marshal(map[string]any{"v": 1, "src": "schedd", "seq": 503, "type": "Matched", "schedd": "schedd", "cluster": 1})
	for _, m := range [][]byte{[]byte("not json"), future, dotted, forged, append([]byte(`{"v":1,"src":"negotiator","seq":502,"type":"Matched","p":"`), make([]byte, events.MaxEventSize)...)} {
		if _, err := tp.Bus.JS.Publish(ctx, subject, m); err != nil && !strings.Contains(err.Error(), "maximum") && !strings.Contains(err.Error(), "exceeded") {
			t.Fatalf("publish hostile message: %v", err)
		}
	}
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("hello.sub", helloSub))
	tp.jobEvent(1, 0, events.JobCompleted, 60*time.Second)
	if !strings.Contains(tp.logs.String(), "dropping undecodable message") {
		t.Fatalf("the schedd did not report the hostile messages")
	}
	if !strings.Contains(tp.logs.String(), "does not match its subject") {
		t.Fatalf("the forged source was not reported")
	}
	if h := tp.mustRun("history", "-af", "ClusterId", "NumJobStarts"); h != "1 1\n" {
		t.Fatalf("history: %q", h)
	}
}

// TestNATSRestartUnderLoad: the bus of a pool of separate daemons is
// killed with jobs flowing and started again on the same store; the
// daemons reconnect and every job completes exactly once.
func TestNATSRestartUnderLoad(t *testing.T) {
	cl, sub := busPool(t)
	cl.kill("nats")
	time.Sleep(2 * time.Second) // the bus stays down a while
	start := time.Now()
	cl.start("nats", "nats", "--listen", strings.TrimPrefix(cl.urls, "nats://")) // the same home, the same store
	deadline := time.Now().Add(180 * time.Second)
	for completedIn(cl) < 30 {
		if time.Now().After(deadline) {
			q, _, _ := cl.vmpool("q", "-name", "s1", "-allusers", "-nobatch")
			t.Fatalf("%d of 30 jobs completed after the bus restart:\n%s", completedIn(cl), q)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("all jobs completed %s after the bus came back", time.Since(start).Round(time.Millisecond))
	b, _ := os.ReadFile(filepath.Join(sub, "sim.log"))
	for p := 0; p < 30; p++ {
		if n := strings.Count(string(b), fmt.Sprintf("005 (001.%03d.000)", p)); n != 1 {
			t.Errorf("job 1.%d terminated %d times", p, n)
		}
	}
}

// TestRandomDaemonKillsLoseNothing: in a pool of separate daemons, one
// process at a time (the NATS server, the schedd, the negotiator or a sim
// startd) is killed with SIGKILL at a random moment and started again on
// its home, while 180 sim jobs flow. Every job completes exactly once, and
// none ever runs twice at once: in the user log each execute (001) is
// ended (004, 005, 007, 009, 012, 024) before the job's next one.
func TestRandomDaemonKillsLoseNothing(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 11))
	t.Logf("seed %d", seed)
	cl, sub := busPool(t)
	file := filepath.Join(sub, "more.sub")
	os.WriteFile(file, []byte("universe = vm\nexecutable = sim\nlog = sim.log\nvm_type = sim\nvm_memory = 64\nvm_disk = sim.img:hda:w:raw\nshould_transfer_files = YES\ntransfer_input_files = sim.img\njob_lease_duration = 20\n+SimRunSeconds = 1\nqueue 150\n"), 0o644)
	if out, errOut, code := cl.vmpool("submit", "-name", "s1", file); code != 0 {
		t.Fatalf("submit: %s %s", out, errOut)
	}
	const jobs = 180
	victims := []string{"nats", "s1", "n1", "sim1", "sim2"}
	var killed []string
	for k := 0; k < 10 && completedIn(cl) < jobs; k++ {
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
		v := victims[rng.IntN(len(victims))]
		cl.kill(v)
		killed = append(killed, v)
		time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
		cl.restart(v)
	}
	t.Logf("killed and restarted, in turn: %s", strings.Join(killed, " "))
	deadline := time.Now().Add(240 * time.Second)
	for completedIn(cl) < jobs {
		if time.Now().After(deadline) {
			q, _, _ := cl.vmpool("q", "-name", "s1", "-allusers", "-nobatch")
			t.Fatalf("%d of %d jobs completed:\n%s", completedIn(cl), jobs, lastN(q, 30))
		}
		time.Sleep(250 * time.Millisecond)
	}
	if h, _, _ := cl.vmpool("history", "-name", "s1", "-af", "ClusterId", "ProcId"); strings.Count(h, "\n") != jobs {
		t.Fatalf("history lists %d jobs, want %d exactly once each", strings.Count(h, "\n"), jobs)
	}
	b, _ := os.ReadFile(filepath.Join(sub, "sim.log"))
	runs := map[string][]string{} // job -> its event codes in order
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) > 20 && line[3] == ' ' && line[4] == '(' {
			job := line[5:strings.IndexByte(line, ')')]
			runs[job] = append(runs[job], line[:3])
		}
	}
	if len(runs) != jobs {
		t.Fatalf("the user log names %d jobs, want %d", len(runs), jobs)
	}
	for job, codes := range runs {
		running, ends := false, 0
		for _, c := range codes {
			switch c {
			case "001":
				if running {
					t.Fatalf("job %s started again while it ran: %v", job, codes)
				}
				running = true
			case "004", "007", "009", "012", "024":
				running = false
			case "005":
				running = false
				ends++
			}
		}
		if ends != 1 {
			t.Errorf("job %s terminated %d times: %v", job, ends, codes)
		}
	}
}

// busPool starts a pool of separate daemons on a NATS server of its own
// (schedd s1, negotiator n1, two sim startds of 4 slots), submits 30 sim
// jobs of 1 s from a submit directory it returns, and waits until 4 have
// completed.
func busPool(t *testing.T) (*cluster, string) {
	dir := testDir(t)
	traversable(t, dir)
	cl := &cluster{t: t, dir: dir, creds: filepath.Join(dir, "creds"), procs: map[string]*proc{}}
	addr := freeAddr(t)
	cl.urls = "nats://" + addr
	cl.start("nats", "nats", "--listen", addr)
	cl.waitLog("nats", "stream and buckets are ready", 60*time.Second)
	fast := []string{"--pool", cl.urls, "--set", "UPDATE_INTERVAL=1", "--set", "ALIVE_INTERVAL=1", "--set", "NEGOTIATOR_INTERVAL=2"}
	cl.start("s1", append([]string{"schedd", "--name", "s1"}, fast...)...)
	cl.start("n1", append([]string{"negotiator", "--name", "n1"}, fast...)...)
	for i := 1; i <= 2; i++ {
		cl.start(fmt.Sprintf("sim%d", i), append([]string{"startd", "--name", fmt.Sprintf("sim%d", i), "--set", "VM_TYPE=sim", "--set", "NUM_SLOTS=4", "--set", "VM_MEMORY=4096"}, fast...)...)
	}
	cl.waitLog("s1", "schedd serving", 60*time.Second)
	sub := t.TempDir()
	traversable(t, sub)
	os.WriteFile(filepath.Join(sub, "sim.img"), make([]byte, 4096), 0o644)
	file := filepath.Join(sub, "sim.sub")
	os.WriteFile(file, []byte("universe = vm\nexecutable = sim\nlog = sim.log\nvm_type = sim\nvm_memory = 64\nvm_disk = sim.img:hda:w:raw\nshould_transfer_files = YES\ntransfer_input_files = sim.img\njob_lease_duration = 20\n+SimRunSeconds = 1\nqueue 30\n"), 0o644)
	if out, errOut, code := cl.vmpool("submit", "-name", "s1", file); code != 0 {
		t.Fatalf("submit: %s %s", out, errOut)
	}
	deadline := time.Now().Add(90 * time.Second)
	for completedIn(cl) < 4 {
		if time.Now().After(deadline) {
			t.Fatal("no job completed before the bus went down")
		}
		time.Sleep(200 * time.Millisecond)
	}
	return cl, sub
}

// completedIn counts the completed jobs in schedd s1's history.
func completedIn(cl *cluster) int {
	out, _, _ := cl.vmpool("history", "-name", "s1", "-af", "JobStatus")
	return strings.Count(out, "4\n")
}

// TestBusLostWhileRunning: the bus is killed with jobs flowing and comes
// back with an empty store while the daemons run. The daemons publish
// their events again from their logs and recreate their consumers; the
// startds keep renewing the leases of claims whose end the schedd has not
// heard of yet, so no finished job is taken for lost. The input disks
// spooled on the bus are gone with it: the jobs that still needed theirs
// are held (code 13, naming the file), the others complete, and none runs
// twice (docs/reliability.md).
func TestBusLostWhileRunning(t *testing.T) {
	cl, sub := busPool(t)
	cl.kill("nats")
	if err := os.RemoveAll(filepath.Join(cl.dir, "nats", "nats")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	cl.start("nats", "nats", "--listen", strings.TrimPrefix(cl.urls, "nats://"))
	var completed, held int
	deadline := time.Now().Add(180 * time.Second)
	for {
		completed = completedIn(cl)
		q, _, _ := cl.vmpool("q", "-name", "s1", "-allusers", "-hold", "-af", "HoldReasonCode")
		held = strings.Count(q, "13\n")
		if completed+held == 30 {
			break
		}
		if time.Now().After(deadline) {
			all, _, _ := cl.vmpool("q", "-name", "s1", "-allusers", "-af", "ProcId", "JobStatus", "HoldReasonCode", "HoldReason")
			t.Fatalf("%d completed and %d held for a lost input of 30 jobs:\n%s", completed, held, all)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("%d jobs completed, %d held for their lost input disk", completed, held)
	if q, _, _ := cl.vmpool("q", "-name", "s1", "-allusers", "-hold", "-af", "HoldReason"); held > 0 && !strings.Contains(q, "sim.img") {
		t.Errorf("hold reasons do not name the lost file:\n%s", q)
	}
	b, _ := os.ReadFile(filepath.Join(sub, "sim.log"))
	for p := 0; p < 30; p++ {
		if n := strings.Count(string(b), fmt.Sprintf("005 (001.%03d.000)", p)); n > 1 {
			t.Errorf("job 1.%d terminated %d times", p, n)
		}
	}
	if n := strings.Count(string(b), "005 ("); n != completed {
		t.Errorf("%d terminations in the user log, %d completed jobs in the history", n, completed)
	}
}

// TestRandomKillsLoseNothing: vmpool up is killed with SIGKILL at random
// moments while a few hundred simulated jobs and several QEMU jobs flow,
// and started again each time. Every job completes exactly once, no QEMU
// is left behind, and the schedd's log replays to its live queue.
func TestRandomKillsLoseNothing(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	t.Logf("seed %d", seed)
	home, dir := t.TempDir(), t.TempDir()
	traversable(t, home)
	addr := freeAddr(t)
	upArgs := func() []string {
		return []string{"up", "--home", home, "--listen", addr, "--startds", "1", "--sim-startds", "20", "--metrics", "off",
			"--set", "UPDATE_INTERVAL=1", "--set", "NEGOTIATOR_INTERVAL=2", "--set", "ALIVE_INTERVAL=1", "--set", "VM_STATUS_INTERVAL=5"}
	}
	start := func(n int) *exec.Cmd {
		cmd := exec.Command(os.Args[0], upArgs()...)
		cmd.Env = append(os.Environ(), "VMPOOL_TEST_MAIN=1")
		f, _ := os.Create(filepath.Join(home, fmt.Sprintf("up%d.log", n)))
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Signal(syscall.SIGTERM)
				cmd.Wait()
			}
			f.Close()
		})
		waitUp(t, home, addr, cmd)
		return cmd
	}
	cmd := start(0)
	os.WriteFile(filepath.Join(dir, "sim.img"), make([]byte, 4096), 0o644)
	const sims, kvms = 200, 3
	os.WriteFile(filepath.Join(dir, "sim.sub"), []byte(fmt.Sprintf("universe = vm\nexecutable = sim\nlog = sim.log\nvm_type = sim\nvm_memory = 16\nvm_disk = sim.img:hda:w:raw\nshould_transfer_files = YES\ntransfer_input_files = sim.img\njob_lease_duration = 20\n+SimRunSeconds = 1\nqueue %d\n", sims)), 0o644)
	for i := 0; i < kvms; i++ {
		vmimage.WriteHello(filepath.Join(dir, fmt.Sprintf("disk%d.img", i)))
	}
	os.WriteFile(filepath.Join(dir, "kvm.sub"), []byte(fmt.Sprintf("universe = vm\nexecutable = kvm\nlog = kvm.log\nvm_type = kvm\nvm_memory = 16\nvm_disk = disk$(Process).img:hda:w:raw\nshould_transfer_files = YES\ntransfer_input_files = disk$(Process).img\nqueue %d\n", kvms)), 0o644)
	for _, f := range []string{"sim.sub", "kvm.sub"} {
		if out, errOut, code := runAt(t, home, addr, "submit", filepath.Join(dir, f)); code != 0 {
			t.Fatalf("submit %s: %s %s", f, out, errOut)
		}
	}
	kills := 3
	for k := 1; k <= kills; k++ {
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		cmd = start(k)
	}
	deadline := time.Now().Add(240 * time.Second)
	var hist string
	for {
		hist, _, _ = runAt(t, home, addr, "history", "-af", "ClusterId", "ProcId", "JobStatus")
		if strings.Count(hist, " 4\n") >= sims+kvms {
			break
		}
		if time.Now().After(deadline) {
			q, _, _ := runAt(t, home, addr, "q", "-allusers", "-nobatch")
			t.Fatalf("%d of %d jobs completed:\n%s", strings.Count(hist, " 4\n"), sims+kvms, lastN(q, 30))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if n := strings.Count(hist, "\n"); n != sims+kvms {
		t.Fatalf("history lists %d jobs, want %d exactly once each", n, sims+kvms)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		simLog, _ := os.ReadFile(filepath.Join(dir, "sim.log"))
		kvmLog, _ := os.ReadFile(filepath.Join(dir, "kvm.log"))
		bad := ""
		for p := 0; p < sims; p++ {
			if n := strings.Count(string(simLog), fmt.Sprintf("005 (001.%03d.000)", p)); n != 1 {
				bad = fmt.Sprintf("sim job 1.%d terminated %d times in its user log", p, n)
			}
		}
		for p := 0; p < kvms; p++ {
			if n := strings.Count(string(kvmLog), fmt.Sprintf("005 (002.%03d.000)", p)); n != 1 {
				bad = fmt.Sprintf("kvm job 2.%d terminated %d times in its user log", p, n)
			}
		}
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(bad)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i := 0; i < kvms; i++ {
		if got := readCounter(t, filepath.Join(dir, fmt.Sprintf("disk%d.img", i))); got != 1 {
			t.Errorf("disk%d.img counter %d, want 1", i, got)
		}
	}
	out, _ := exec.Command("pgrep", "-f", "qemu-system.*"+home).Output()
	if len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("QEMU processes left: %s", out)
	}
	if out, errOut, code := runAt(t, home, addr, "replay", "--home", home, "--check", "-pool", "nats://"+addr); code != 0 {
		t.Errorf("replay --check: exit %d\n%s%s", code, out, errOut)
	}
}
