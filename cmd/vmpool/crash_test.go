package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/vmimage"
)

// Crash tests: `vmpool up` runs as a separate process with a failpoint
// armed (VMPOOL_FAILPOINTS), dies at that point as if killed -9, and is
// started again on the same home. Every job must then complete exactly
// once: one 005 in its user log, Completed in the history, its disk back.

// freeAddr returns a loopback address with a free port.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runAt runs a vmpool command in-process against the pool at addr whose
// home is home.
func runAt(t *testing.T, home, addr string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	c := &cli{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: func(k string) string {
		switch k {
		case "VMPOOL_URL":
			return "nats://" + addr
		case "VMPOOL_CREDS":
			return userCredsFile(home)
		}
		return ""
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := c.main(ctx, append([]string{"vmpool"}, args...))
	return out.String(), errb.String(), code
}

// upProcess starts `vmpool up` as a separate process.
func upProcess(t *testing.T, home, addr, failpoints, logName string) (*exec.Cmd, *os.File) {
	t.Helper()
	// No metrics: a pool already running on this machine holds the
	// default metrics port.
	cmd := exec.Command(os.Args[0], "up", "--home", home, "--listen", addr, "--startds", "1", "--metrics", "off",
		"--set", "UPDATE_INTERVAL=1", "--set", "NEGOTIATOR_INTERVAL=2", "--set", "ALIVE_INTERVAL=1", "--set", "VM_STATUS_INTERVAL=5")
	cmd.Env = append(os.Environ(), "VMPOOL_TEST_MAIN=1", "VMPOOL_FAILPOINTS="+failpoints)
	logf, err := os.Create(filepath.Join(home, logName))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, logf
}

// upAgain starts `vmpool up` on home again (no failpoint), after a crash,
// waits until it answers, and stops it (an interrupt) when the test ends.
// It returns the pool's log.
func upAgain(t *testing.T, home, addr, logName string) *os.File {
	t.Helper()
	cmd, logf := upProcess(t, home, addr, "", logName)
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		logf.Close()
	})
	waitUp(t, home, addr, cmd)
	return logf
}

// waitUp waits until the pool at addr answers.
func waitUp(t *testing.T, home, addr string, cmd *exec.Cmd) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, _, code := runAt(t, home, addr, "q", "-totals"); code == 0 {
			return
		}
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			_, stderr, _ := runAt(t, home, addr, "q", "-totals")
			logs, _ := filepath.Glob(filepath.Join(home, "*.log"))
			var tail string
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				tail += fmt.Sprintf("\n%s (last 3000 bytes):\n%s", l, b[max(0, len(b)-3000):])
			}
			t.Fatalf("the pool at %s never answered (q -totals: %s)%s", addr, strings.TrimSpace(stderr), tail)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCrashPointsLoseNothing(t *testing.T) {
	// Each point fires in whichever daemon of the pool passes it first,
	// or, aimed with DAEMON/, in that daemon: the negotiator's and the
	// startd's logs, outboxes and consumers too.
	points := []string{"loop-after-append@4", "outbox-after-publish@3", "consumer-before-ack@3", "userlog-after-write@2",
		"userlog-after-done@2", "negotiator/loop-after-append@2", "negotiator/consumer-before-ack@2", "startd1/loop-after-append@3", "startd1/outbox-after-publish@2", "startd1/vm-after-start@1",
		"startd1/vm-after-poweroff@1"}
	for _, fp := range points {
		point := strings.SplitN(fp, "@", 2)[0]
		daemon, name, targeted := strings.Cut(point, "/")
		if !targeted {
			daemon, name = "", point
		}
		t.Run(strings.ReplaceAll(point, "/", ":"), func(t *testing.T) {
			home, dir := t.TempDir(), t.TempDir()
			traversable(t, home)
			const jobs = 3
			for i := 0; i < jobs; i++ {
				if err := vmimage.WriteHello(filepath.Join(dir, fmt.Sprintf("disk%d.img", i))); err != nil {
					t.Fatal(err)
				}
			}
			sub := filepath.Join(dir, "jobs.sub")
			os.WriteFile(sub, []byte(`universe = vm
executable = crashy
log = jobs.log
vm_type = kvm
vm_memory = 16
vm_disk = disk$(Process).img:hda:w:raw
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
transfer_input_files = disk$(Process).img
queue `+fmt.Sprint(jobs)+"\n"), 0o644)

			addr := freeAddr(t)
			cmd, logf := upProcess(t, home, addr, fp, "up1.log")
			defer logf.Close()
			waitUp(t, home, addr, cmd)
			// The submit may itself be cut short by the crash: the client
			// then retries against the restarted pool, and the submit id
			// makes sure nothing is queued twice.
			runAt(t, home, addr, "submit", sub)
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-exited:
			case <-time.After(90 * time.Second):
				cmd.Process.Kill()
				<-exited
				b, _ := os.ReadFile(logf.Name())
				t.Fatalf("failpoint %s never fired:\n%s", fp, b)
			}
			b, _ := os.ReadFile(logf.Name())
			want := "failpoint " + name + " fired in " + daemon
			if daemon == "" {
				want = "failpoint " + name + " fired"
			}
			if code := cmd.ProcessState.ExitCode(); code != 137 || !strings.Contains(string(b), want) {
				t.Fatalf("pool exited with %d, want 137 and %q:\n%s", code, want, b)
			}
			t.Logf("crashed at %s; before the crash: %s", fp, lastLines(string(b), 3))

			logf2 := upAgain(t, home, addr, "up2.log")
			if out, _, _ := runAt(t, home, addr, "q", "-af", "ClusterId", "-allusers"); out == "" {
				if h, _, _ := runAt(t, home, addr, "history", "-af", "ClusterId"); h == "" {
					// The crash came before the submit was durable: submit again.
					if _, errOut, code := runAt(t, home, addr, "submit", sub); code != 0 {
						t.Fatalf("submit after restart: %s", errOut)
					}
				}
			}
			deadline := time.Now().Add(120 * time.Second)
			for {
				h, _, _ := runAt(t, home, addr, "history", "-af", "ClusterId", "ProcId", "JobStatus")
				if strings.Count(h, " 4\n") >= jobs {
					break
				}
				if time.Now().After(deadline) {
					q, _, _ := runAt(t, home, addr, "q", "-allusers", "-nobatch")
					b, _ := os.ReadFile(logf2.Name())
					t.Fatalf("jobs did not all complete after the restart:\nhistory:\n%s\nqueue:\n%s\nlog:\n%s", h, q, b)
				}
				time.Sleep(200 * time.Millisecond)
			}
			h, _, _ := runAt(t, home, addr, "history", "-af", "ClusterId", "ProcId", "JobStatus")
			if strings.Count(h, "\n") != jobs {
				t.Fatalf("history has %d jobs, want %d (each exactly once):\n%s", strings.Count(h, "\n"), jobs, h)
			}
			for i := 0; i < jobs; i++ {
				if got := readCounter(t, filepath.Join(dir, fmt.Sprintf("disk%d.img", i))); got != 1 {
					t.Errorf("disk%d.img counter %d, want 1", i, got)
				}
			}
			// One submit event and one termination per job in the user log;
			// a guest that powered off before the crash ran once: one 001.
			deadline = time.Now().Add(20 * time.Second)
			for {
				b, _ := os.ReadFile(filepath.Join(dir, "jobs.log"))
				log := string(b)
				ok := true
				for p := 0; p < jobs; p++ {
					if strings.Count(log, fmt.Sprintf("005 (001.%03d.000)", p)) != 1 || strings.Count(log, fmt.Sprintf("000 (001.%03d.000)", p)) != 1 {
						ok = false
					}
					if name == "vm-after-poweroff" && strings.Count(log, fmt.Sprintf("001 (001.%03d.000)", p)) != 1 {
						ok = false
					}
				}
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("user log: want exactly one 000 and one 005 per job (and one 001 after %s):\n%s", name, log)
				}
				time.Sleep(100 * time.Millisecond)
			}
			// No QEMU of this pool is left running.
			out, _ := exec.Command("pgrep", "-f", "qemu-system.*"+home).Output()
			if len(bytes.TrimSpace(out)) != 0 {
				t.Fatalf("QEMU processes of the crashed pool still run: %s", out)
			}
		})
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// TestStartdRestartReattaches: the pool is killed (-9) while a guest runs;
// QEMU lives on, and the restarted startd finds it again by the handle its
// VMStarted recorded: the job stays Running on the same QEMU process,
// starts no second VM and writes no second execute event, and is removed
// as usual.
func TestStartdRestartReattaches(t *testing.T) {
	home, dir := t.TempDir(), t.TempDir()
	traversable(t, home)
	if err := vmimage.Forever().WriteRaw(filepath.Join(dir, "forever.img"), 0); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "forever.sub")
	os.WriteFile(sub, []byte(strings.ReplaceAll(strings.Replace(helloSub, "hello.log", "forever.log", 1), "hello.img", "forever.img")), 0o644)
	addr := freeAddr(t)
	cmd, logf := upProcess(t, home, addr, "", "up1.log")
	defer logf.Close()
	waitUp(t, home, addr, cmd)
	if _, errOut, code := runAt(t, home, addr, "submit", sub); code != 0 {
		t.Fatalf("submit: %s", errOut)
	}
	running := func(what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			if out, _, _ := runAt(t, home, addr, "q", "-af", "JobStatus"); strings.TrimSpace(out) == "2" {
				return
			}
			if time.Now().After(deadline) {
				q, _, _ := runAt(t, home, addr, "q", "-nobatch")
				t.Fatalf("job not running %s:\n%s", what, q)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	running("before the kill")
	qemuPID := func() string {
		out, _ := exec.Command("pgrep", "-f", "qemu-system.*"+home).Output()
		return strings.TrimSpace(string(out))
	}
	pid := qemuPID()
	if pid == "" || strings.Contains(pid, "\n") {
		t.Fatalf("want one QEMU of this pool, found %q", pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if qemuPID() != pid {
		t.Fatalf("QEMU %s did not outlive its killed startd (now %q)", pid, qemuPID())
	}

	logf2 := upAgain(t, home, addr, "up2.log")
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(logf2.Name())
		if strings.Contains(string(b), "reattached to running VM") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted startd did not reattach:\n%s", lastLines(string(b), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	running("after the restart")
	if got := qemuPID(); got != pid {
		t.Fatalf("QEMU after the restart: %q, want the same process %s", got, pid)
	}
	if out, errOut, code := runAt(t, home, addr, "rm", "1.0"); code != 0 {
		t.Fatalf("rm: %s%s", out, errOut)
	}
	deadline = time.Now().Add(30 * time.Second)
	for qemuPID() != "" {
		if time.Now().After(deadline) {
			t.Fatalf("QEMU %s still runs after rm", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "forever.log"))
		log := string(b)
		if strings.Contains(log, "009 (001.000.000)") {
			if n := strings.Count(log, "001 (001.000.000)"); n != 1 {
				t.Fatalf("user log has %d execute events, want 1:\n%s", n, log)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no abort event in the user log:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
