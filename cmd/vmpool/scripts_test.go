package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmpool/vmpool/vmimage"
)

// TestScripts runs the shell scripts in testdata/scripts, written the way
// HTCondor users write them (parsing condor_q -af, -format and -totals,
// condor_history -json, condor_wait's exit status), against the condor_*
// links vmpool links makes to this binary and a real pool, one pool per
// script. A script says what else it needs in a "# needs:" line; it is
// skipped where that is missing.
func TestScripts(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	scripts, err := filepath.Glob(filepath.Join("testdata", "scripts", "*.sh"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bin")
	var out, errb bytes.Buffer
	c := &cli{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := c.main(t.Context(), []string{"vmpool", "links", bin}); code != 0 {
		t.Fatalf("vmpool links: %s%s", out.String(), errb.String())
	}
	ran := 0
	for _, script := range scripts {
		if filepath.Base(script) == "lib.sh" {
			continue
		}
		abs, err := filepath.Abs(script)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(strings.TrimSuffix(filepath.Base(script), ".sh"), func(t *testing.T) {
			for _, tool := range scriptNeeds(t, abs) {
				if _, err := exec.LookPath(tool); err != nil {
					t.Skipf("needs %s", tool)
				}
			}
			tp := newTestPool(t, 1)
			if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
				t.Fatal(err)
			}
			if err := vmimage.Forever().WriteRaw(filepath.Join(tp.dir, "forever.img"), 0); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bash, abs)
			cmd.Dir = tp.dir
			cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"VMPOOL_URL="+tp.env("VMPOOL_URL"), "VMPOOL_CREDS="+tp.env("VMPOOL_CREDS"), "VMPOOL_TEST_MAIN=")
			got, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", filepath.Base(abs), err, got)
			}
			t.Logf("%s:\n%s", filepath.Base(abs), got)
		})
		ran++
	}
	if ran == 0 {
		t.Fatal("no scripts in testdata/scripts")
	}
}

// scriptNeeds reads a script's "# needs: TOOL..." line.
func scriptNeeds(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "# needs:"); ok {
			return strings.Fields(rest)
		}
	}
	return nil
}
