package main

import (
	"os"
	"path/filepath"
	"testing"
)

// writeConf writes a configuration file in a temporary directory.
func writeConf(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigSelfReference: `START = $(START) && ...`, the way HTCondor
// administrators add to a policy, takes the value START had before the
// line (the default when no line set it before); it used to expand
// $(START) into the new value itself, over and over, leaving a START of
// sixteen copies of the clause and a literal "$(START)" that did not parse.
func TestConfigSelfReference(t *testing.T) {
	path := writeConf(t, t.TempDir(), "pool.conf", `START = $(START) && (TARGET.JobVMMemory < 512)
start = $(Start) && (TARGET.Owner == "alice")
VM_MEMORY = 2048
VM_MEMORY = $(VM_MEMORY)
`)
	cfg := NewConfig()
	if err := cfg.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Get("START"), `true && (TARGET.JobVMMemory < 512) && (TARGET.Owner == "alice")`; got != want {
		t.Errorf("START = %s\nwant %s", got, want)
	}
	if got := cfg.Get("VM_MEMORY"); got != "2048" {
		t.Errorf("VM_MEMORY = %s, want 2048", got)
	}
	if got, want := cfg.Origin("START"), path+":2"; got != want {
		t.Errorf("START from %s, want %s", got, want)
	}
	cfg.Set("START", "$(START) && MY.Cpus > 0", "--set")
	if got, want := cfg.Get("START"), `true && (TARGET.JobVMMemory < 512) && (TARGET.Owner == "alice") && MY.Cpus > 0`; got != want {
		t.Errorf("--set START = %s\nwant %s", got, want)
	}
}
