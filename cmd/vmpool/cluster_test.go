package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/vmimage"
)

// The pool beyond one machine: every daemon a separate process, on a
// JetStream cluster of three NATS servers with streams replicated three
// times, two schedds sharing a pair of negotiators (one active) and the
// startds. One NATS server, then the active negotiator, then a schedd
// (started again on its home), then a startd are killed while jobs flow;
// every job must complete exactly once.

type proc struct {
	name string
	args []string // as start was given them (restart starts it so again)
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once cmd.Wait returned
}

// exited reports whether the process has exited (and been reaped).
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

type cluster struct {
	t     testing.TB
	dir   string
	creds string
	urls  string
	procs map[string]*proc
}

func (cl *cluster) start(name string, args ...string) *proc {
	cl.t.Helper()
	given := slices.Clone(args)
	home := filepath.Join(cl.dir, name)
	os.MkdirAll(home, 0o711)
	if os.Getenv("VMPOOL_TEST_DEBUG") != "" {
		args = append(args, "--log-level", "debug") // and keep the logs: VMPOOL_TEST_DIR
	}
	args = append(args, "--home", home, "--set", "CREDS_DIR="+cl.creds,
		"--set", "POOL_DAEMONS=schedd-s1,schedd-s2,negotiator-n1,negotiator-n2,startd-kvm1,startd-sim1,startd-sim2,startd-sim3")
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "VMPOOL_TEST_MAIN=1")
	p := &proc{name: name, args: given, cmd: cmd, log: filepath.Join(cl.dir, name+".log"), done: make(chan struct{})}
	// Appended to: a daemon started again on its home goes on in its log.
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		cl.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		cl.t.Fatal(err)
	}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	cl.procs[name] = p
	cl.t.Cleanup(func() {
		if !p.exited() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-p.done
			}
		}
		if cl.t.Failed() {
			b, _ := os.ReadFile(p.log)
			cl.t.Logf("--- %s log (last 40 lines):\n%s", name, lastN(string(b), 40))
		}
	})
	return p
}

// testDir is a fresh directory for a multi-process test: $VMPOOL_TEST_DIR
// when set (kept after the test, for reading every daemon's whole log),
// else t.TempDir().
func testDir(t testing.TB) string {
	base := os.Getenv("VMPOOL_TEST_DIR")
	if base == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(base, t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test directory (kept): %s", dir)
	return dir
}

func lastN(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (cl *cluster) kill(name string) {
	cl.t.Helper()
	p := cl.procs[name]
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		cl.t.Fatal(err)
	}
	<-p.done
}

// restart starts a process again as it was started, on the same home.
func (cl *cluster) restart(name string) *proc {
	cl.t.Helper()
	return cl.start(name, cl.procs[name].args...)
}

// waitLog waits until a process's log says want.
func (cl *cluster) waitLog(name, want string, timeout time.Duration) {
	cl.t.Helper()
	cl.waitLogN(name, want, 1, timeout)
}

// waitLogN waits until a process's log says want n times.
func (cl *cluster) waitLogN(name, want string, n int, timeout time.Duration) {
	cl.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(cl.procs[name].log)
		if bytes.Count(b, []byte(want)) >= n {
			return
		}
		if time.Now().After(deadline) || cl.procs[name].exited() {
			cl.t.Fatalf("%s never said %q:\n%s", name, want, lastN(string(b), 40))
		}
		time.Sleep(50 * time.Millisecond) // a log line has no event to wait on
	}
}

// vmpool runs a CLI command as the administrator (root's credentials).
func (cl *cluster) vmpool(args ...string) (string, string, int) {
	cl.t.Helper()
	creds := ""
	if p, _ := filepath.Glob(filepath.Join(cl.creds, "*-"+currentUser()+".nk")); len(p) > 0 {
		creds = p[0]
	}
	return cl.vmpoolWith(creds, args...)
}

// vmpoolWith runs a CLI command with the credentials file creds.
func (cl *cluster) vmpoolWith(creds string, args ...string) (string, string, int) {
	cl.t.Helper()
	var out, errb bytes.Buffer
	c := &cli{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: func(k string) string {
		switch k {
		case "VMPOOL_URL":
			return cl.urls
		case "VMPOOL_CREDS":
			return creds
		}
		return ""
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := c.main(ctx, append([]string{"vmpool"}, args...))
	return out.String(), errb.String(), code
}

// leader asks the leader bucket which negotiator leads.
func (cl *cluster) leader() string {
	cl.t.Helper()
	c, err := events.LoadCredentials(filepath.Join(cl.creds, events.CredentialsFile(events.RolePool, poolIdentity)))
	if err != nil {
		cl.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc, js, err := events.Connect(ctx, cl.urls, events.ConnectOptions{Name: "test", Credentials: &c})
	if err != nil {
		cl.t.Fatal(err)
	}
	defer nc.Close()
	// Right after a server of the cluster is lost the bucket may be
	// electing a leader: ask again until it answers.
	for {
		e, err := func() (jetstream.KeyValueEntry, error) {
			tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			kv, err := js.KeyValue(tctx, events.LeaderBucket)
			if err != nil {
				return nil, err
			}
			return kv.Get(tctx, "negotiator")
		}()
		switch {
		case err == nil:
			return string(e.Value())
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return ""
		case ctx.Err() != nil:
			cl.t.Fatalf("ask the leader bucket: %v", err)
		}
	}
}

// startNATSCluster starts three `vmpool nats` servers forming a JetStream
// cluster whose streams and buckets have the given replicas, and waits
// until the pool's stream and buckets are ready.
func startNATSCluster(tb testing.TB, replicas int) *cluster {
	dir := testDir(tb)
	traversable(tb, dir)
	cl := &cluster{t: tb, dir: dir, creds: filepath.Join(dir, "creds"), procs: map[string]*proc{}}
	var clients, routes []string
	for i := 0; i < 3; i++ {
		clients = append(clients, freeAddr(tb))
		routes = append(routes, freeAddr(tb))
	}
	cl.urls = "nats://" + strings.Join(clients, ",nats://")
	for i := 0; i < 3; i++ {
		var others []string
		for j := 0; j < 3; j++ {
			if j != i {
				others = append(others, "nats://"+routes[j])
			}
		}
		cl.start(fmt.Sprintf("nats%d", i+1), "nats", "--listen", clients[i], "--cluster", "vmpool", "--server-name", fmt.Sprintf("nats%d", i+1),
			"--cluster-listen", routes[i], "--routes", strings.Join(others, ","), "--replicas", fmt.Sprint(replicas))
	}
	// Each server waits for the cluster's meta leader, then creates the
	// stream and buckets, asking again what goes unanswered (a second or
	// two; it took 40 to 105 s when each unanswered request waited 20 s).
	// The bound is for a loaded 2-core machine under -race.
	for i := 1; i <= 3; i++ {
		cl.waitLog(fmt.Sprintf("nats%d", i), fmt.Sprintf("stream and buckets are ready (NATS_REPLICAS = %d)", replicas), 240*time.Second)
	}
	return cl
}

func TestClusterSurvivesFailures(t *testing.T) {
	cl := startNATSCluster(t, 3)
	fast := []string{"--set", "UPDATE_INTERVAL=1", "--set", "ALIVE_INTERVAL=1", "--set", "NEGOTIATOR_INTERVAL=2", "--set", "VM_STATUS_INTERVAL=5"}
	daemon := func(name string, args ...string) {
		cl.start(name, append(append(args, "--pool", cl.urls), fast...)...)
	}
	daemon("s1", "schedd", "--name", "s1")
	daemon("s2", "schedd", "--name", "s2")
	daemon("n1", "negotiator", "--name", "n1")
	daemon("n2", "negotiator", "--name", "n2")
	daemon("kvm1", "startd", "--name", "kvm1")
	for i := 1; i <= 3; i++ {
		daemon(fmt.Sprintf("sim%d", i), "startd", "--name", fmt.Sprintf("sim%d", i), "--set", "VM_TYPE=sim", "--set", "NUM_SLOTS=4", "--set", "VM_MEMORY=4096")
	}
	for _, n := range []string{"s1", "s2"} {
		cl.waitLog(n, "schedd serving", 60*time.Second)
	}
	cl.waitLog("kvm1", "startd serving", 60*time.Second)

	sub := t.TempDir()
	traversable(t, sub)
	if err := vmimage.WriteHello(filepath.Join(sub, "hello.img")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(sub, "sim.img"), make([]byte, 4096), 0o644)
	simSub := func(name string, n int) string {
		p := filepath.Join(sub, name+".sub")
		os.WriteFile(p, []byte(fmt.Sprintf(`universe = vm
executable = %s
log = %s.log
vm_type = sim
vm_memory = 64
vm_disk = sim.img:hda:w:raw
should_transfer_files = YES
transfer_input_files = sim.img
job_lease_duration = 20
+SimRunSeconds = 3
queue %d
`, name, name, n)), 0o644)
		return p
	}
	const perSchedd = 16
	for _, s := range []string{"s1", "s2"} {
		if out, errOut, code := cl.vmpool("submit", "-name", s, simSub("sim-"+s, perSchedd)); code != 0 {
			t.Fatalf("submit to %s: %s %s", s, out, errOut)
		}
	}
	kvmSub := filepath.Join(sub, "hello.sub")
	os.WriteFile(kvmSub, []byte(helloSub), 0o644)
	if out, errOut, code := cl.vmpool("submit", "-name", "s1", kvmSub); code != 0 {
		t.Fatalf("submit hello: %s %s", out, errOut)
	}

	completed := func(s string) int {
		out, _, _ := cl.vmpool("history", "-name", s, "-af", "ClusterId", "ProcId", "JobStatus")
		return strings.Count(out, " 4\n")
	}
	waitCompleted := func(atLeast int, timeout time.Duration) {
		deadline := time.Now().Add(timeout)
		for completed("s1")+completed("s2") < atLeast {
			held1, _, _ := cl.vmpool("q", "-name", "s1", "-allusers", "-hold", "-af", "ClusterId", "ProcId", "HoldReasonCode", "HoldReason")
			held2, _, _ := cl.vmpool("q", "-name", "s2", "-allusers", "-hold", "-af", "ClusterId", "ProcId", "HoldReasonCode", "HoldReason")
			if held1+held2 != "" || time.Now().After(deadline) {
				q1, _, _ := cl.vmpool("q", "-name", "s1", "-allusers", "-nobatch")
				q2, _, _ := cl.vmpool("q", "-name", "s2", "-allusers", "-nobatch")
				t.Fatalf("only %d+%d jobs completed, want %d:\n%s\n%s\nheld at s1:\n%s\nheld at s2:\n%s", completed("s1"), completed("s2"), atLeast, q1, q2, held1, held2)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	total := 2*perSchedd + 1
	// Jobs flow: kill one NATS server of three.
	waitCompleted(4, 90*time.Second)
	start := time.Now()
	cl.kill("nats2")
	waitCompleted(10, 90*time.Second)
	t.Logf("after losing nats2: jobs completing again within %s", time.Since(start).Round(time.Millisecond))

	// Kill the active negotiator: the standby takes the lease.
	// Losing a server may have cost the leader its lease (the bucket
	// elects a leader of its own): wait until one negotiator holds it.
	lead := cl.leader()
	for deadline := time.Now().Add(60 * time.Second); lead == "" && time.Now().Before(deadline); lead = cl.leader() {
		time.Sleep(250 * time.Millisecond)
	}
	if lead != "n1" && lead != "n2" {
		t.Fatalf("leader %q", lead)
	}
	other := map[string]string{"n1": "n2", "n2": "n1"}[lead]
	start = time.Now()
	cl.kill(lead)
	cl.waitLog(other, "leading: this negotiator matches", 60*time.Second)
	t.Logf("negotiator %s took over from %s in %s", other, lead, time.Since(start).Round(time.Millisecond))
	waitCompleted(18, 120*time.Second)

	// kill -9 a schedd while its jobs run, and start it again on its home:
	// it rebuilds its queue from its log, the startds running its jobs
	// reach it again, and no job runs twice (checked below).
	start = time.Now()
	cl.kill("s2")
	daemon("s2", "schedd", "--name", "s2")
	cl.waitLogN("s2", "schedd serving", 2, 60*time.Second)
	t.Logf("schedd s2 serving again %s after kill -9", time.Since(start).Round(time.Millisecond))
	waitCompleted(22, 120*time.Second)

	// Kill a startd with jobs on it: their claims' leases run out and the
	// jobs run again elsewhere.
	start = time.Now()
	cl.kill("sim2")
	waitCompleted(total, 240*time.Second)
	t.Logf("all %d jobs completed %s after losing sim2", total, time.Since(start).Round(time.Millisecond))

	// Exactly once: one termination per job in the user logs, and each job
	// once in its schedd's history.
	for _, s := range []string{"s1", "s2"} {
		b, _ := os.ReadFile(filepath.Join(sub, "sim-"+s+".log"))
		for p := 0; p < perSchedd; p++ {
			if n := strings.Count(string(b), fmt.Sprintf("005 (001.%03d.000)", p)); n != 1 {
				t.Errorf("%s job 1.%d terminated %d times in its user log", s, p, n)
			}
		}
		h, _, _ := cl.vmpool("history", "-name", s, "-af", "ClusterId", "ProcId")
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(h), "\n") {
			if seen[line] {
				t.Errorf("%s history lists %s twice", s, line)
			}
			seen[line] = true
		}
	}
	if got := readCounter(t, filepath.Join(sub, "hello.img")); got != 1 {
		t.Errorf("the kvm job's disk counter is %d, want 1", got)
	}
	// The queue equals a replay of the schedds' logs.
	for _, s := range []string{"s1", "s2"} {
		out, errOut, code := cl.vmpool("replay", "--home", filepath.Join(cl.dir, s), "--daemon", s, "--check", "-pool", cl.urls)
		if code != 0 {
			t.Errorf("replay --check of %s: exit %d\n%s%s", s, code, out, errOut)
		}
	}
}
