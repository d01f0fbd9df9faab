package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigMarkdownCurrent fails when docs/config.md is not what
// `vmpool config -markdown` prints from the Knobs table: after changing a
// knob, run `go generate ./cmd/vmpool` (or vmpool config -markdown >
// docs/config.md) and commit the result.
func TestConfigMarkdownCurrent(t *testing.T) {
	var want bytes.Buffer
	writeConfigMarkdown(&want)
	path := filepath.Join("..", "..", "docs", "config.md")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (generate it: go generate ./cmd/vmpool)", path, err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(want.String(), "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s is stale (first difference at line %d):\n  file:  %q\n  table: %q\nregenerate it: go generate ./cmd/vmpool", path, i+1, g, w)
			}
		}
	}
}

// TestConfigMarkdownListsEveryKnob: every knob of the table is in the
// reference, once, in its daemon's section; the command prints the same.
func TestConfigMarkdownListsEveryKnob(t *testing.T) {
	var b bytes.Buffer
	writeConfigMarkdown(&b)
	doc := b.String()
	for _, k := range Knobs {
		if n := strings.Count(doc, "| `"+k.Name+"` |"); n != 1 {
			t.Errorf("knob %s appears %d times in the reference, want once", k.Name, n)
		}
	}
	for _, s := range knobSections {
		if !strings.Contains(doc, "\n## "+s.title+"\n") {
			t.Errorf("no section %q", s.title)
		}
	}
	var out, errb bytes.Buffer
	c := &cli{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := c.main(t.Context(), []string{"condor_config_val", "-markdown"}); code != 0 || out.String() != doc {
		t.Fatalf("condor_config_val -markdown: exit %d, %d bytes (want the reference's %d); stderr %s", code, out.Len(), len(doc), errb.String())
	}
}

// TestConfigValVerbose: condor_config_val NAME prints the value alone,
// -v where it came from, and an unknown knob is "Not defined" with exit 1.
func TestConfigValVerbose(t *testing.T) {
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		c := &cli{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := c.main(t.Context(), append([]string{"condor_config_val"}, args...))
		return out.String(), errb.String(), code
	}
	if out, _, code := run("--set", "VM_MEMORY=2048", "vm_memory"); code != 0 || out != "2048\n" {
		t.Errorf("condor_config_val vm_memory: %d %q", code, out)
	}
	if out, _, code := run("-v", "--set", "VM_MEMORY=2048", "VM_MEMORY", "NUM_SLOTS"); code != 0 || out != "VM_MEMORY = 2048\n # at: --set\nNUM_SLOTS = 1\n # at: <default>\n" {
		t.Errorf("condor_config_val -v: %d %q", code, out)
	}
	if _, errOut, code := run("NO_SUCH_KNOB"); code != 1 || errOut != "Not defined: NO_SUCH_KNOB\n" {
		t.Errorf("unknown knob: %d %q", code, errOut)
	}
	cfgFile := filepath.Join(t.TempDir(), "pool.conf")
	if err := os.WriteFile(cfgFile, []byte("# a pool\nVM_MEMORY = 4096\nVM_MAX_NUMBER = $(NUM_SLOTS)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := run("-dump", "-v", "--config", cfgFile)
	if code != 0 || !strings.Contains(out, "VM_MEMORY = 4096\n # at: "+cfgFile+":2\n") || !strings.Contains(out, "VM_MAX_NUMBER = 1\n # at: "+cfgFile+":3\n") {
		t.Errorf("condor_config_val -dump -v --config: %d\n%s", code, out)
	}
}
