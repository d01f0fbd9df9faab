package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/vmimage"
)

// TestSubmitPathsKnob: SUBMIT_PATHS ($VMPOOL_SUBMIT_PATHS) confines what a
// submit description may name; an absolute path outside the submit
// directory is refused then (nothing queued), accepted by default, and a
// bad value is a clear error.
func TestSubmitPathsKnob(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	outside := filepath.Join(elsewhere, "hello.img")
	if err := vmimage.WriteHello(outside); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "abs.sub")
	os.WriteFile(sub, []byte("universe = vm\nexecutable = x\nvm_type = kvm\nvm_memory = 16\nvm_disk = "+outside+
		":hda:w:raw\nshould_transfer_files = YES\ntransfer_input_files = "+outside+"\nqueue\n"), 0o644)
	run := func(policy string) (string, int) {
		var out bytes.Buffer
		c := &cli{stdout: &out, stderr: &out, stdin: strings.NewReader(""), getenv: func(k string) string {
			if k == "VMPOOL_SUBMIT_PATHS" {
				return policy
			}
			return ""
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		code := c.main(ctx, []string{"vmpool", "submit", "-dry-run", filepath.Join(dir, "out.ads"), sub})
		return out.String(), code
	}
	if out, code := run(""); code != 0 {
		t.Fatalf("default policy refused an absolute path: %d %s", code, out)
	}
	out, code := run("confined")
	if code == 0 || !strings.Contains(out, "abs.sub:7: transfer_input_files") || !strings.Contains(out, "[input-absolute-forbidden]") || !strings.Contains(out, "nothing was queued") {
		t.Fatalf("confined: exit %d\n%s", code, out)
	}
	if out, code := run("sideways"); code == 0 || !strings.Contains(out, `VMPOOL_SUBMIT_PATHS = "sideways": use default, confined or unrestricted`) {
		t.Fatalf("bad value: exit %d\n%s", code, out)
	}
}

// TestDryRunWarns: submit -dry-run, the way to check a description
// without queueing it, prints the warnings a real submit prints (as
// condor_submit -dry-run does) on standard error, besides writing the ads.
func TestDryRunWarns(t *testing.T) {
	dir := t.TempDir()
	if err := vmimage.WriteHello(filepath.Join(dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "w.sub")
	os.WriteFile(sub, []byte("universe = vm\nexecutable = x\nvm_type = kvm\nvm_memory = 16\nvm_disk = hello.img:hda:w:raw\n"+
		"should_transfer_files = YES\ntransfer_input_files = hello.img\narguments = -v\nqueue\n"), 0o644)
	var out, errOut bytes.Buffer
	c := &cli{stdout: &out, stderr: &errOut, stdin: strings.NewReader(""), getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code := c.main(ctx, []string{"vmpool", "submit", "-dry-run", filepath.Join(dir, "out.ads"), sub}); code != 0 {
		t.Fatalf("dry run: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"WARNING: " + sub + ":8: arguments has no effect", "request_memory was not specified"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("dry run's standard error lacks %q:\n%s", want, errOut.String())
		}
	}
	if !strings.Contains(out.String(), "1 job(s) dry-run to cluster 1.") {
		t.Errorf("dry run's output:\n%s", out.String())
	}
}
