package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScheddGoneLongerThanItsAd: a pool with schedds s1 and s2, each with
// a job 1.0. s1 stops; once its ad has expired (CLASSAD_LIFETIME), the
// collector knows only s2, and 'vmpool hold 1.0' without -name used to
// take s2 for the pool's only schedd and hold s2's 1.0 while the user
// meant s1's. The pool's list of schedds outlasts their ads: the command
// refuses, naming both and the fix, for users too (who may read the
// list); only an admin retires s1 from it, after which s2 is taken again;
// and s1 started again lists itself again.
func TestScheddGoneLongerThanItsAd(t *testing.T) {
	dir := testDir(t)
	traversable(t, dir)
	cl := &cluster{t: t, dir: dir, creds: filepath.Join(dir, "creds"), procs: map[string]*proc{}}
	addr := freeAddr(t)
	cl.urls = "nats://" + addr
	life := []string{"--set", "CLASSAD_LIFETIME=3"}
	cl.start("nats", append([]string{"nats", "--listen", addr, "--set", "POOL_USERS=alice"}, life...)...)
	cl.waitLog("nats", "stream and buckets are ready", 60*time.Second)
	schedd := func(name string) {
		cl.start(name, append([]string{"schedd", "--name", name, "--pool", cl.urls}, life...)...)
	}
	schedd("s1")
	schedd("s2")
	cl.waitLog("s1", "schedd serving", 60*time.Second)
	cl.waitLog("s2", "schedd serving", 60*time.Second)

	sub := t.TempDir()
	traversable(t, sub)
	os.WriteFile(filepath.Join(sub, "sim.img"), make([]byte, 4096), 0o644)
	subFile := filepath.Join(sub, "idle.sub")
	os.WriteFile(subFile, []byte(`universe = vm
executable = idle
vm_type = sim
vm_memory = 64
vm_disk = sim.img:hda:w:raw
should_transfer_files = YES
transfer_input_files = sim.img
queue
`), 0o644)
	for _, s := range []string{"s1", "s2"} {
		if out, errOut, code := cl.vmpool("submit", "-name", s, subFile); code != 0 {
			t.Fatalf("submit to %s: exit %d\n%s%s", s, code, out, errOut)
		}
	}
	// alice, a user: she reads the list, and may not retire a schedd.
	alice := func(args ...string) (string, string, int) {
		t.Helper()
		return cl.vmpoolWith(filepath.Join(cl.creds, "user-alice.nk"), args...)
	}
	status := func(s string) string {
		t.Helper()
		out, errOut, code := cl.vmpool("q", "-name", s, "-allusers", "-af", "JobStatus")
		if code != 0 {
			t.Fatalf("q -name %s: exit %d\n%s%s", s, code, out, errOut)
		}
		return strings.TrimSpace(out)
	}

	// s1 stops; wait until its ad has left the collector.
	cl.procs["s1"].cmd.Process.Signal(os.Interrupt)
	<-cl.procs["s1"].done
	for deadline := time.Now().Add(60 * time.Second); ; {
		out, errOut, code := cl.vmpool("schedds")
		if code != 0 {
			t.Fatalf("schedds: exit %d\n%s%s", code, out, errOut)
		}
		if strings.Contains(out, "s1    yes     no") {
			t.Logf("schedds once s1's ad expired:\n%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("s1's ad never left the collector:\n%s", out)
		}
		time.Sleep(250 * time.Millisecond) // an ad's expiry sends no event
	}

	for who, run := range map[string]func(...string) (string, string, int){"root": cl.vmpool, "alice": alice} {
		out, errOut, code := run("hold", "1.0")
		if code == 0 {
			t.Fatalf("%s: hold 1.0 without -name went through with s1 gone: %s%s", who, out, errOut)
		}
		for _, want := range []string{"2 schedds", "s1 (not running", "s2", "-name", "VMPOOL_SCHEDD", "vmpool schedds -retire"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%s: hold 1.0 without -name: %q does not say %q", who, errOut, want)
			}
		}
	}
	if got := status("s2"); got != "1" {
		t.Fatalf("s2's 1.0 has JobStatus %s, want 1 (idle): a command meant for s1 reached it", got)
	}
	// q -global shows s2's job and says that s1's cannot be shown (it
	// left them out without a word).
	if out, errOut, code := cl.vmpool("q", "-global", "-allusers", "-af", "GlobalJobId"); code != 1 || !strings.Contains(out, "s2#1.0#") ||
		!strings.Contains(errOut, "schedd s1 is not running") || !strings.Contains(errOut, "not shown") {
		t.Errorf("q -global with s1 gone: exit %d, stdout %q, stderr %q; want s2's job, a word on s1 and exit 1", code, out, errOut)
	}

	out, errOut, code := alice("schedds")
	if code != 0 || !strings.Contains(out, "s1    yes     no") || !strings.Contains(out, "s2    yes     yes") {
		t.Errorf("alice: schedds: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := alice("schedds", "-retire", "s1"); code == 0 || !strings.Contains(errOut, "permission denied") {
		t.Errorf("alice: schedds -retire s1: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := cl.vmpool("schedds", "-retire", "s2"); code == 0 || !strings.Contains(errOut, "is running") {
		t.Errorf("schedds -retire s2 (running): exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := cl.vmpool("schedds", "-retire", "s1"); code != 0 {
		t.Fatalf("schedds -retire s1: exit %d\n%s%s", code, out, errOut)
	}
	// s2 is the pool's only schedd now.
	if out, errOut, code := cl.vmpool("hold", "1.0"); code != 0 {
		t.Fatalf("hold 1.0 without -name once s1 was retired: exit %d\n%s%s", code, out, errOut)
	}
	if got := status("s2"); got != "5" {
		t.Errorf("s2's 1.0 has JobStatus %s, want 5 (held)", got)
	}

	// s1 comes back: it lists itself again.
	schedd("s1")
	cl.waitLogN("s1", "schedd serving", 2, 60*time.Second)
	if out, errOut, code := cl.vmpool("schedds"); code != 0 || !strings.Contains(out, "s1    yes     yes") {
		t.Errorf("schedds after s1 started again: exit %d\n%s%s", code, out, errOut)
	}
	if got := status("s1"); got != "1" {
		t.Errorf("s1's 1.0 has JobStatus %s, want 1 (idle)", got)
	}
}
