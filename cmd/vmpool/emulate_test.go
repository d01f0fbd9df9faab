package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runTool runs an emulator link and returns what it printed; it must
// succeed.
func runTool(t *testing.T, tool string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", tool, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// TestEmulateCommand: `vmpool emulate xl|vmrun` runs the emulators with
// their state where --state says; other tools are refused.
func TestEmulateCommand(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skipf("QEMU not installed: %v", err)
	}
	state := t.TempDir()
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		c := &cli{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: func(string) string { return "" }}
		code := c.main(context.Background(), append([]string{"vmpool", "emulate"}, args...))
		return out.String(), errb.String(), code
	}
	out, errOut, code := run("--state", filepath.Join(state, "xl"), "xl", "info")
	if code != 0 || !strings.Contains(out, "xen_version") || !strings.Contains(out, "emulated") {
		t.Fatalf("xl info: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = run("--state", filepath.Join(state, "xl"), "xl", "list")
	if code != 0 || !strings.HasPrefix(out, "Name ") || !strings.Contains(out, "\nDomain-0 ") {
		t.Fatalf("xl list: exit %d\n%s", code, out)
	}
	out, _, code = run("--state="+filepath.Join(state, "vmrun"), "vmrun", "list")
	if code != 0 || out != "Total running VMs: 0\n" {
		t.Fatalf("vmrun list: exit %d\n%q", code, out)
	}
	// A bad domain configuration is refused the way xl refuses it.
	cfg := filepath.Join(state, "bad.cfg")
	if err := os.WriteFile(cfg, []byte("memory = 16\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = run("--state", filepath.Join(state, "xl"), "xl", "create", cfg)
	if code == 0 || !strings.Contains(errOut, "Domain name must be specified.") {
		t.Fatalf("xl create without a name: exit %d\n%s", code, errOut)
	}
	if _, _, code := run("--state", state, "virsh", "list"); code != 2 {
		t.Fatalf("emulate virsh: exit %d, want 2", code)
	}
}

// TestEmulatorLinks: through links named xl and vmrun the binary is the
// emulator, with the state beside the link (the test binary stands in for
// vmpool: TestMain dispatches on the name as main does).
func TestEmulatorLinks(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skipf("QEMU not installed: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tool := range []string{"xl", "vmrun"} {
		if err := os.Symlink(self, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	if out := runTool(t, filepath.Join(dir, "xl"), "info"); !strings.Contains(out, "xl_emulator_state      : "+filepath.Join(dir, "xl.state")) {
		t.Fatalf("xl info through the link:\n%s", out)
	}
	if out := runTool(t, filepath.Join(dir, "vmrun"), "list"); out != "Total running VMs: 0\n" {
		t.Fatalf("vmrun list through the link: %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "vmrun.state")); err != nil {
		t.Fatalf("vmrun keeps no state beside its link: %v", err)
	}
}

// TestEmulateKnob: EMULATE takes xen and vmware only.
func TestEmulateKnob(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  []string
		ok    bool
	}{
		{"", nil, true},
		{"xen", []string{"xen"}, true},
		{"xen, vmware,xen", []string{"xen", "vmware"}, true},
		{"kvm", nil, false},
		{"hyperv", nil, false},
	} {
		cfg := NewConfig()
		cfg.Set("EMULATE", tc.value, "test")
		got, err := emulatedKinds(cfg)
		if (err == nil) != tc.ok || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("EMULATE = %q: %v, %v; want %v (ok %v)", tc.value, got, err, tc.want, tc.ok)
		}
	}
}
