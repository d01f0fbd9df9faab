package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLinks: vmpool links makes every condor_* name a link to the binary,
// keeps them when run again, refuses to replace another file unless
// --force, and the binary answers to the name it is called by.
func TestLinks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bin")
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		c := &cli{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := c.main(t.Context(), append([]string{"vmpool", "links"}, args...))
		return out.String(), errb.String(), code
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	self, _ = filepath.EvalSymlinks(self)
	want := []string{"condor_config_val", "condor_drain", "condor_history", "condor_hold", "condor_q", "condor_release",
		"condor_rm", "condor_status", "condor_submit", "condor_userlog", "condor_vacate_job", "condor_wait", "condor_watch_q"}
	out, errOut, code := run(dir)
	if code != 0 || !strings.HasPrefix(out, fmt.Sprintf("%d link(s) made, 0 already there", len(want))) {
		t.Fatalf("vmpool links: exit %d, %q %q", code, out, errOut)
	}
	for _, name := range want {
		if target, err := os.Readlink(filepath.Join(dir, name)); err != nil || target != self {
			t.Errorf("%s -> %q (%v), want a link to %s", name, target, err, self)
		}
	}
	if out, _, code := run(dir); code != 0 || !strings.HasPrefix(out, fmt.Sprintf("0 link(s) made, %d already there", len(want))) {
		t.Errorf("second run: exit %d, %q", code, out)
	}
	// Another file by one of the names is left alone, unless --force.
	q := filepath.Join(dir, "condor_q")
	if err := os.Remove(q); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(q, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(dir); code != 1 || !strings.Contains(errOut, q+" exists and is not a link to") {
		t.Errorf("links over a file: exit %d, %q", code, errOut)
	}
	if out, _, code := run("--force", dir); code != 0 || !strings.HasPrefix(out, fmt.Sprintf("1 link(s) made, %d already there", len(want)-1)) {
		t.Errorf("links --force: exit %d, %q", code, out)
	}
	// Called through a link, the binary (here the test binary, whose
	// TestMain dispatches on its name) is that command.
	cmd := exec.Command(filepath.Join(dir, "condor_config_val"), "-v", "--set", "VM_TYPE=xen", "VM_TYPE")
	cmd.Env = append(os.Environ(), "VMPOOL_TEST_MAIN=")
	got, err := cmd.CombinedOutput()
	if err != nil || string(got) != "VM_TYPE = xen\n # at: --set\n" {
		t.Fatalf("condor_config_val through the link: %v, %q", err, got)
	}
	if _, _, code := run(); code != 2 {
		t.Errorf("links without a directory: exit %d, want 2", code)
	}
}
