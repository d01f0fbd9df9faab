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
