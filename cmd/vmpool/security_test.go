package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/vmimage"
)

// Security tests: every identity on the bus has its role's subjects only.
// The pool runs with credentials (POOL_AUTH, the default); the users and a
// separately run startd are given theirs by the pool.

// as runs a CLI command as one of the pool's users.
func (tp *testPool) as(name string, args ...string) (string, string, int) {
	tp.t.Helper()
	var out, errb bytes.Buffer
	c := &cli{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: func(k string) string {
		switch k {
		case "VMPOOL_URL":
			return tp.URL
		case "VMPOOL_CREDS":
			return filepath.Join(tp.home, "creds", events.CredentialsFile(events.RoleUser, name))
		}
		return ""
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := c.main(ctx, append([]string{"vmpool"}, args...))
	return out.String(), errb.String(), code
}

// connectAs connects to the pool with an identity's credentials file.
func (tp *testPool) connectAs(file string) *client {
	tp.t.Helper()
	c := &cli{getenv: func(k string) string {
		if k == "VMPOOL_CREDS" {
			return filepath.Join(tp.home, "creds", file)
		}
		return ""
	}}
	pc, err := c.dial(context.Background(), tp.URL)
	if err != nil {
		tp.t.Fatal(err)
	}
	tp.t.Cleanup(pc.close)
	return pc
}

// denied publishes on subject (as a request, or through JetStream with
// js) and reports whether the server refused it.
func denied(t *testing.T, pc *client, subject string, js bool) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var err error
	if js {
		_, err = pc.js.Publish(ctx, subject, []byte(`{"forged":true}`))
		select {
		case <-pc.deniedCh(subject):
			return true
		case <-time.After(2 * time.Second):
		}
		return errors.Is(err, nats.ErrPermissionViolation)
	}
	// A refused request fails at once, not when its context runs out.
	cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
	defer ccancel()
	err = pc.call(cctx, subject, map[string]string{"forged": "yes"}, nil)
	var pe errPermission
	if errors.As(err, &pe) && cctx.Err() != nil {
		t.Errorf("the refused request to %s waited for its deadline", subject)
	}
	return errors.As(err, &pe)
}

func TestUsersTouchOnlyTheirOwnJobs(t *testing.T) {
	tp := newTestPool(t, 1, "POOL_USERS=alice,bob", "POOL_DAEMONS=startd-ext1")
	if err := vmimage.Forever().WriteRaw(filepath.Join(tp.dir, "forever.img"), 0); err != nil {
		t.Fatal(err)
	}
	// alice has no account here: the schedd writes her user log as
	// nobody, who must reach it and write it (the test's submit, run as
	// root, makes the file).
	traversable(t, tp.dir)
	os.Chmod(tp.dir, 0o777)
	logf := filepath.Join(tp.dir, "hello.log")
	if err := os.WriteFile(logf, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(logf, 0o666) // past the umask
	sub := tp.write("forever.sub", strings.ReplaceAll(helloSub, "hello.img", "forever.img"))
	out, errOut, code := tp.as("alice", "submit", sub)
	if code != 0 || !strings.Contains(out, "submitted to cluster 1.") {
		t.Fatalf("alice's submit: %d %s %s", code, out, errOut)
	}
	tp.jobEvent(1, 0, events.JobStarted, 60*time.Second)
	if owner := tp.mustRun("q", "-allusers", "-af", "Owner"); owner != "alice\n" {
		t.Fatalf("owner %q", owner)
	}

	// bob may not touch alice's job, whatever the verb.
	for verb, word := range map[string]string{"rm": "remove", "hold": "hold", "vacate-job": "vacate"} {
		_, errOut, code := tp.as("bob", verb, "1.0")
		want := "Permission denied to " + word + " job 1.0 (job 1.0 belongs to alice, not bob: permission denied)"
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("bob %s 1.0: exit %d, stderr %q, want %q", verb, code, errOut, want)
		}
	}
	if _, errOut, code := tp.as("bob", "rm", "alice"); code == 0 || !strings.Contains(errOut, "Permission denied to remove job 1.0") {
		t.Errorf("bob rm alice: exit %d, %q", code, errOut)
	}
	if st := tp.mustRun("q", "-allusers", "-af", "JobStatus"); st != "2\n" {
		t.Fatalf("alice's job changed state after bob's attempts: %q", st)
	}

	// A daemon without credentials is told where it looked for them and
	// how to get some (it was asked whether the NATS server ran).
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer dcancel()
	if _, errOut, code := runCLI(dctx, tp.URL, "startd", "--pool", tp.URL, "--name", "nocreds", "--home", t.TempDir()); code != 1 ||
		!strings.Contains(errOut, "this startd has no credentials (none at ") || !strings.Contains(errOut, "startd-nocreds.nk") ||
		!strings.Contains(errOut, "POOL_DAEMONS") || strings.Contains(errOut, "is the pool's NATS server running") {
		t.Errorf("a startd without credentials: exit %d, %q", code, errOut)
	}

	bob := tp.connectAs(events.CredentialsFile(events.RoleUser, "bob"))
	// bob cannot speak as alice: the subject of a request names its sender.
	if !denied(t, bob, events.UserCmdSubject("schedd", "act", "alice"), false) {
		t.Error("bob could send a request as alice")
	}
	// Nor publish daemons' events or machine ads.
	for _, subj := range []string{
		"vmpool.ev.startd.startd1.job.schedd.1.0.VMExited",
		"vmpool.ev.schedd.schedd.job.schedd.1.0.JobCompleted",
		"$KV." + events.CollectorBucket + ".slot.startd1.slot1",
	} {
		if !denied(t, bob, subj, true) {
			t.Errorf("bob could publish on %s", subj)
		}
	}
	// Nor drain a machine (an administrator's verb).
	if _, errOut, code := tp.as("bob", "drain", "startd1"); code == 0 || !strings.Contains(errOut, "permission denied") {
		t.Errorf("bob drained startd1: exit %d, %q", code, errOut)
	}
	// Nor read alice's files.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err := bob.bus.FileStore(ctx, events.UserBucket("alice"))
	cancel()
	if err == nil {
		t.Error("bob opened alice's file bucket")
	}
	// A startd's credentials publish that startd's events, not a schedd's
	// or another startd's.
	ext := tp.connectAs(events.CredentialsFile(events.RoleStartd, "ext1"))
	for _, subj := range []string{"vmpool.ev.schedd.schedd.job.schedd.1.0.JobCompleted", "vmpool.ev.startd.startd1.job.schedd.1.0.VMExited"} {
		if !denied(t, ext, subj, true) {
			t.Errorf("startd ext1 could publish on %s", subj)
		}
	}
	if denied(t, ext, "vmpool.ev.startd.ext1.daemon.Probe", true) {
		t.Error("startd ext1 may not publish its own events")
	}

	// alice may, and so may a queue super user (root by default).
	if out, _, code := tp.as("alice", "hold", "1.0"); code != 0 || strings.TrimSpace(out) != "Job 1.0 held" {
		t.Fatalf("alice hold: %d %q", code, out)
	}
	if u, err := user.Current(); err == nil && u.Username == "root" {
		if out := tp.mustRun("rm", "1.0"); strings.TrimSpace(out) != "Job 1.0 marked for removal" {
			t.Fatalf("root rm: %q", out)
		}
	}

	// Each user's credentials file is theirs alone.
	fi, err := os.Stat(filepath.Join(tp.home, "creds", events.CredentialsFile(events.RoleUser, "bob")))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bob's credentials: %v %v", fi, err)
	}
}

// TestNoCredentialsNoEntry: a client without credentials, or with another
// pool's, is turned away with a message that says what to do.
func TestNoCredentialsNoEntry(t *testing.T) {
	// A home of its own: another test's vmpool up on this port, earlier in
	// the run, may have left its credentials in the shared test home.
	t.Setenv("HOME", t.TempDir())
	tp := newTestPool(t, 0)
	var out, errb bytes.Buffer
	c := &cli{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: func(k string) string {
		if k == "VMPOOL_URL" {
			return tp.URL
		}
		return ""
	}}
	if code := c.main(t.Context(), []string{"vmpool", "q"}); code == 0 || !strings.Contains(errb.String(), "refuses you, with no credentials file") || !strings.Contains(errb.String(), "VMPOOL_CREDS") {
		t.Fatalf("q without credentials: exit %d, %q", code, errb.String())
	}
	other, err := events.NewCredentials(events.RoleUser, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	path, err := other.Save(t.TempDir(), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	c.getenv = func(k string) string {
		switch k {
		case "VMPOOL_URL":
			return tp.URL
		case "VMPOOL_CREDS":
			return path
		}
		return ""
	}
	if code := c.main(t.Context(), []string{"vmpool", "q"}); code == 0 || !strings.Contains(errb.String(), "refuses you, with VMPOOL_CREDS="+path) {
		t.Fatalf("q with foreign credentials: exit %d, %q (want it to name the file)", code, errb.String())
	}
}

// TestFilesStayInTheSubmitDirectory: a submit naming a disk outside its
// directory through "..", and a returned disk aimed outside the job's
// directory, are both refused; a returned disk replaces a symlink in the
// directory rather than writing through it.
func TestFilesStayInTheSubmitDirectory(t *testing.T) {
	tp := newTestPool(t, 1)
	outside := filepath.Join(filepath.Dir(tp.dir), "outside.img")
	if err := vmimage.WriteHello(outside); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(outside)
	sub := tp.write("escape.sub", strings.ReplaceAll(helloSub, "hello.img", "../outside.img"))
	_, errOut, code := tp.vmpool("submit", sub)
	if code != 1 || !strings.Contains(errOut, "[input-escapes-iwd]") || !strings.Contains(errOut, "escape.sub:") {
		t.Fatalf("escaping submit: exit %d\n%s", code, errOut)
	}

	// A symlink in the submit directory pointing outside it: the returned
	// disk must replace the link, not the file it points to.
	target := filepath.Join(t.TempDir(), "target.img")
	if err := vmimage.WriteHello(target); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(target)
	img := filepath.Join(tp.dir, "hello.img")
	if err := vmimage.WriteHello(img); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("hello.sub", helloSub))
	tp.jobEvent(1, 0, events.JobStarted, 60*time.Second)
	os.Remove(img)
	if err := os.Symlink(target, img); err != nil {
		t.Fatal(err)
	}
	tp.jobEvent(1, 0, events.JobCompleted, 60*time.Second)
	if fi, err := os.Lstat(img); err != nil || fi.Mode()&os.ModeSymlink != 0 {
		t.Fatalf("the returned disk did not replace the symlink: %v %v", fi, err)
	}
	if after, _ := os.ReadFile(target); !bytes.Equal(before, after) {
		t.Fatal("the returned disk was written through a symlink to outside the submit directory")
	}

	// A startd (here forged with the pool's own credentials) reports an
	// output the job never sent, named to escape the directory: the job is
	// held and nothing is written.
	vmimage.WriteHello(img)
	tp.mustRun("submit", tp.write("hello2.sub", strings.ReplaceAll(helloSub, "hello.log", "hello2.log")))
	tp.jobEvent(2, 0, events.JobStarted, 60*time.Second)
	started := tp.jobEvent(2, 0, events.JobStarted, time.Second)
	var sp events.JobStartedPayload
	started.Decode(&sp)
	forged := events.New(events.VMExited, events.VMEventPayload{ClaimID: sp.ClaimID, Slot: sp.Slot, PoweredOff: true,
		Outputs: []events.FileRef{{Name: "../escaped.img", Bucket: events.UserBucket(currentUser()), Object: events.ObjectName(strings.Repeat("ab", 32)), Size: 1, SHA256: strings.Repeat("ab", 32)}}}).ForJob("schedd", events.JobID{Cluster: 2})
	forged.Source, forged.Seq, forged.V, forged.Time = "startd1", 1_000_000, events.Version, time.Now().UnixNano()
	data, _ := json.Marshal(forged)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tp.Bus.JS.Publish(ctx, events.Subject(events.RoleStartd, forged), data); err != nil {
		t.Fatal(err)
	}
	held := tp.jobEvent(2, 0, events.JobHeld, 30*time.Second)
	var hp events.JobHeldPayload
	held.Decode(&hp)
	if hp.Code != 12 || !strings.Contains(hp.Reason, `"../escaped.img", which the job did not send`) {
		t.Fatalf("hold %+v", hp)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(tp.dir), "escaped.img")); err == nil {
		t.Fatal("a file was written outside the submit directory")
	}
}

// TestGuestRunsUnprivileged: a startd running as root runs QEMU as an
// unprivileged account (VM_UNIV_NOBODY_USER for a root-owned job), which
// owns the VM's scratch directory and nothing else of the startd's.
func TestGuestRunsUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the startd drops privileges only when it runs as root; this machine's tests do not")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("no nobody account: %v", err)
	}
	tp := newTestPool(t, 1)
	if err := vmimage.Forever().WriteRaw(filepath.Join(tp.dir, "forever.img"), 0); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("forever.sub", strings.ReplaceAll(helloSub, "hello.img", "forever.img")))
	tp.jobEvent(1, 0, events.JobStarted, 60*time.Second)
	pid := tp.vmPID(1, 0)
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	var uid string
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid = f[1] // the real uid; all four must agree
			if f[2] != uid || f[3] != uid || f[4] != uid {
				t.Fatalf("QEMU's uids differ: %s", line)
			}
		}
	}
	if uid != nobody.Uid {
		t.Fatalf("QEMU runs as uid %s, want nobody (%s)", uid, nobody.Uid)
	}
	scratch, _ := filepath.Glob(filepath.Join(tp.home, "startd1", "execute", "dir_*"))
	if len(scratch) != 1 {
		t.Fatalf("scratch dirs %v", scratch)
	}
	fi, err := os.Stat(scratch[0])
	if err != nil || fi.Mode().Perm() != 0o700 || strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid)) != nobody.Uid {
		t.Fatalf("scratch dir %s: %v %v, want 0700 owned by nobody", scratch[0], fi.Mode(), err)
	}
	tp.mustRun("rm", "1.0")
	waitGone(t, pid)
}

// account is a local account the test runs commands as.
type account struct {
	name     string
	uid, gid int
}

// localAccount returns the account name, creating it (and removing it
// when the test ends) when the host lacks it.
func localAccount(t *testing.T, name string) account {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
		if err != nil {
			t.Fatalf("useradd %s: %v: %s", name, err, out)
		}
		t.Cleanup(func() { _ = exec.Command("userdel", name).Run() })
		if u, err = user.Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return account{name: name, uid: uid, gid: gid}
}

// TestTwoAccountsOnOneHost: two local accounts, created by the test, use
// one pool with the credentials it made for them (given to each account).
// alice's job runs and its returned disk and user log are written as
// alice into her private directory; bob can neither act on her jobs nor
// use her credentials; alice can.
func TestTwoAccountsOnOneHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating local accounts needs root (CI runs as root)")
	}
	alice, bob := localAccount(t, "vmpt-alice"), localAccount(t, "vmpt-bob")
	tp := newTestPool(t, 1, "POOL_USERS=vmpt-alice,vmpt-bob")
	credsOf := func(a account) string {
		return filepath.Join(tp.home, "creds", events.CredentialsFile(events.RoleUser, a.name))
	}
	for _, a := range []account{alice, bob} {
		fi, err := os.Stat(credsOf(a))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != a.uid || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s's credentials belong to uid %d, mode %v; want uid %d, 0600", a.name, st.Uid, fi.Mode().Perm(), a.uid)
		}
	}
	traversable(t, filepath.Join(tp.home, "creds"))
	// The CLI (this test binary) where both accounts may run it.
	binDir := t.TempDir()
	traversable(t, binDir)
	bin := filepath.Join(binDir, "vmpool")
	data, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(bin, data, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	// alice's private submit directory.
	base := t.TempDir()
	traversable(t, base)
	dir := filepath.Join(base, "alice")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "hello.img")
	if err := vmimage.WriteHello(img); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "hello.sub")
	held := filepath.Join(dir, "held.sub")
	err = os.WriteFile(sub, []byte(helloSub), 0o600)
	if err == nil {
		err = os.WriteFile(held, []byte(strings.Replace(helloSub, "queue", "hold = true\nqueue", 1)), 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, img, sub, held} {
		if err := os.Chown(p, alice.uid, alice.gid); err != nil {
			t.Fatal(err)
		}
	}
	run := func(a account, creds string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = "/"
		if a == alice {
			cmd.Dir = dir
		}
		cmd.Env = []string{"VMPOOL_TEST_MAIN=1", "VMPOOL_URL=" + tp.URL, "VMPOOL_CREDS=" + creds, "HOME=/nonexistent", "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid), Groups: []uint32{}}}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run %v as %s: %v", args, a.name, err)
		}
		return out.String(), errb.String(), code
	}

	if out, errOut, code := run(alice, credsOf(alice), "submit", "hello.sub"); code != 0 || !strings.Contains(out, "submitted to cluster 1.") {
		t.Fatalf("alice's submit: exit %d\n%s%s", code, out, errOut)
	}
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	checkUserLog(t, filepath.Join(dir, "hello.log"), []string{"000", "001", "005"})
	if got := readCounter(t, img); got != 1 {
		t.Errorf("alice's returned disk: counter %d, want 1", got)
	}
	for _, p := range []string{img, filepath.Join(dir, "hello.log")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != alice.uid {
			t.Errorf("%s belongs to uid %d, want alice's %d (the schedd writes as the job's owner)", p, st.Uid, alice.uid)
		}
	}

	if out, errOut, code := run(alice, credsOf(alice), "submit", "held.sub"); code != 0 || !strings.Contains(out, "submitted to cluster 2.") {
		t.Fatalf("alice's second submit: exit %d\n%s%s", code, out, errOut)
	}
	for verb, word := range map[string]string{"rm": "remove", "hold": "hold", "release": "release", "vacate-job": "vacate"} {
		_, errOut, code := run(bob, credsOf(bob), verb, "2.0")
		want := "Permission denied to " + word + " job 2.0 (job 2.0 belongs to vmpt-alice, not vmpt-bob: permission denied)"
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("bob %s 2.0: exit %d, stderr %q, want %q", verb, code, errOut, want)
		}
	}
	if _, errOut, code := run(bob, credsOf(alice), "rm", "2.0"); code == 0 || !strings.Contains(errOut, "credentials (VMPOOL_CREDS)") || !strings.Contains(errOut, "permission denied") {
		t.Errorf("bob with alice's credentials file: exit %d, stderr %q", code, errOut)
	}
	if st := tp.mustRun("q", "-allusers", "-af", "Owner", "JobStatus"); st != "vmpt-alice 5\n" {
		t.Fatalf("alice's held job after bob's attempts: %q", st)
	}
	if out, errOut, code := run(alice, credsOf(alice), "rm", "2.0"); code != 0 || strings.TrimSpace(out) != "Job 2.0 marked for removal" {
		t.Fatalf("alice rm 2.0: exit %d %q %q", code, out, errOut)
	}
}
