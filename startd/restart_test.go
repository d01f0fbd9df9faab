package startd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/sim"
)

// restartChild names, in the environment of a test binary this test
// starts again, the startd directory, bus URL and input file the child
// startd runs its VM with.
const restartChild = "VMPOOL_TEST_RESTART_CHILD"

// restartMarker is the line the child prints once its VM runs.
const restartMarker = "VM RUNS"

// TestRestartReportsWholeRun: a startd killed (-9) while its VM runs, and
// started again, reattaches to the VM; the VMExited it records when the
// guest powers off reports the whole run, as an unrestarted startd would:
// run_ns from the run's start (not from the reattach) and bytes_in the
// 1 MiB input disk the first process fetched (not 0). The first startd
// runs in a child process (this test binary again), so that the kill is
// a real one: its log holds what it synced and no more. Its sim VMs are
// recorded in their scratch directories as soon as they start, as a QEMU
// outlives its startd, so that the second startd finds the VM running.
func TestRestartReportsWholeRun(t *testing.T) {
	restartAfterKill(t, false)
}

// TestRestartLostVMReportsItsInput: a startd killed (-9) while its VM
// runs, whose VM is gone when it starts again (the machine rebooted),
// ends the claim with a VMFailed that reports the input the run had
// fetched (bytes_in), so that the job's BytesSent and the user log's 007
// count the run (before: 0).
func TestRestartLostVMReportsItsInput(t *testing.T) {
	restartAfterKill(t, true)
}

// restartAfterKill runs a claim's VM in a child startd, kills it, and
// starts the startd again on its directory, with the VM still running
// or (lose) gone.
func restartAfterKill(t *testing.T, lose bool) {
	if env := os.Getenv(restartChild); env != "" {
		restartChildStartd(t, env)
		return
	}
	const (
		inBytes = 1 << 20
		simRun  = 2500 * time.Millisecond // the guest's run time (SimRunSeconds)
		before  = 1200 * time.Millisecond // how long the VM runs before the kill
	)
	srv, bus := eventstest.Bus(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, inBytes), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := bus.PutFile(ctx, "alice", disk, "disk.img")
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := json.Marshal(in)
	dir := t.TempDir()

	t0 := time.Now()
	child := exec.Command(os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.count=1", "-test.timeout=1m")
	child.Env = append(os.Environ(), restartChild+"="+strings.Join([]string{dir, srv.URL(), string(ref), fmt.Sprint(simRun.Seconds())}, "\n"))
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	runs := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == restartMarker {
				close(runs)
				break
			}
		}
		for sc.Scan() { // drain, so that the child never blocks on its stdout
		}
	}()
	select {
	case <-runs:
	case <-time.After(30 * time.Second):
		child.Process.Kill()
		child.Wait()
		t.Fatalf("the child startd did not start its VM:\n%s", stderr.String())
	}
	time.Sleep(before)
	child.Process.Kill()
	child.Wait()
	killedAt := time.Since(t0)
	if lose {
		// The VM dies with the machine: its record goes, and the
		// restarted startd cannot reattach.
		filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
			if err == nil && e.Name() == "sim-vm.json" {
				os.Remove(path)
			}
			return nil
		})
	}

	d, err := New(Config{Name: "s1", Dir: dir, Bus: bus, Driver: sim.New(sim.Config{}), VMMemory: 1024, NumSlots: 1,
		Host: "host", UpdateInterval: time.Hour, AliveInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	runReady(t, ctx, cancel, d)
	typ, p := endOf(t, d, "c1")
	if lose {
		// The run the lost VM had made fetched its input: the claim's end
		// says so, as it says where the run ended (the user log's 007,
		// the job's BytesSent).
		if typ != events.VMFailed {
			t.Fatalf("the restarted startd recorded %s (%+v), want VMFailed: the VM was lost", typ, p)
		}
		if p.BytesIn != inBytes {
			t.Errorf("bytes_in %d on the lost VM's VMFailed, want the %d of the input disk its run fetched", p.BytesIn, inBytes)
		}
		return
	}
	if typ != events.VMExited || !p.PoweredOff {
		t.Fatalf("the restarted startd recorded %s (%+v), want the guest's VMExited", typ, p)
	}
	wall := time.Since(t0)
	t.Logf("killed %v after the child started; VMExited %v after: run_ns %v, bytes_in %d",
		killedAt.Round(time.Millisecond), wall.Round(time.Millisecond), time.Duration(p.RunNanos), p.BytesIn)
	// The run began before the guest's run time did (the input's fetch),
	// less a few milliseconds the VMStarted's sync takes: the part before
	// the kill (at least `before`) must be in it.
	if run := time.Duration(p.RunNanos); run < simRun-100*time.Millisecond || run > wall {
		t.Errorf("run_ns %v, want the whole run: at least the guest's %v, at most the %v since the child started", run, simRun, wall.Round(time.Millisecond))
	}
	if p.BytesIn != inBytes {
		t.Errorf("bytes_in %d, want the %d of the input disk fetched before the restart", p.BytesIn, inBytes)
	}
}

// restartChildStartd is the child's part: a startd runs the claim's VM
// and says so on stdout, then waits to be killed.
func restartChildStartd(t *testing.T, env string) {
	args := strings.Split(env, "\n")
	if len(args) != 4 {
		t.Fatalf("%s: %q", restartChild, env)
	}
	dir, url, ref, simRun := args[0], args[1], args[2], args[3]
	var in events.FileRef
	if err := json.Unmarshal([]byte(ref), &in); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	nc, js := eventstest.Connect(t, url)
	bus, err := events.OpenBus(ctx, nc, js, events.BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Name: "s1", Dir: dir, Bus: bus, Driver: survivingSim{sim.New(sim.Config{})}, VMMemory: 1024, NumSlots: 1,
		Host: "host", UpdateInterval: time.Hour, AliveInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("startd stopped: %v", err)
	}
	req := events.ClaimRequest{ClaimID: "c1", Schedd: "schedd", Job: events.JobID{Cluster: 1}, Slot: "slot1@s1", Owner: "alice",
		Inputs: []events.FileRef{in},
		JobAd: `[ ClusterId = 1; ProcId = 0; Owner = "alice"; JobVMType = "sim"; JobVMMemory = 100;` +
			` SimRunSeconds = ` + simRun + `; VMPARAM_vm_Disk = "disk.img:hda:w:raw"; Requirements = true ]`}
	mustClaim(t, ctx, d, req)
	vmEventOf(t, d, "c1", events.VMStarted)
	fmt.Println(restartMarker)
	select {} // until killed
}

// survivingSim is the sim driver whose VMs outlive the startd's process,
// as QEMUs do: each is recorded in its directory the moment it starts
// (detached and reattached at once), where the next process's driver
// finds it.
type survivingSim struct{ *sim.Driver }

func (s survivingSim) Start(ctx context.Context, spec hypervisor.Spec) (hypervisor.VM, error) {
	vm, err := s.Driver.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	if err := vm.(hypervisor.Detacher).Detach(); err != nil {
		return nil, err
	}
	return s.Driver.Reattach(ctx, vm.Handle())
}

// endOf waits for the startd's event ending claim and returns its type
// and payload.
func endOf(t *testing.T, d *Startd, claim string) (string, events.VMEventPayload) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var typ string
		var p events.VMEventPayload
		err := d.log.Scan(1, func(_ uint64, e events.Event) error {
			switch e.Type {
			case events.VMExited, events.VMEvicted, events.VMFailed, events.VMStopped:
			default:
				return nil
			}
			var q events.VMEventPayload
			if err := e.Decode(&q); err != nil {
				return err
			}
			if q.ClaimID == claim {
				typ, p = e.Type, q
				return events.ErrStop
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if typ != "" {
			return typ, p
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("claim %s did not end", claim)
	return "", events.VMEventPayload{}
}
