package startd

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestMakeScratch: a VM's scratch directory is created empty (what a
// crashed run left is removed), private to the VM, below an execute
// directory made traversable at the startd's first VM and again when it
// has gone missing.
func TestMakeScratch(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	exec := filepath.Join(t.TempDir(), "execute")
	if err := os.Mkdir(exec, 0o700); err != nil { // not traversable yet
		t.Fatal(err)
	}
	var ready atomic.Bool
	mode := func(p string) fs.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	a := filepath.Join(exec, "dir_a")
	if err := makeScratch(a, &ready, log); err != nil {
		t.Fatal(err)
	}
	if m := mode(exec); m != 0o711 {
		t.Errorf("execute directory %o after the first VM, want 711", m)
	}
	if m := mode(a); m != 0o700 {
		t.Errorf("scratch directory %o, want 700", m)
	}
	// A crashed run's leftovers.
	if err := os.WriteFile(filepath.Join(a, "disk.img"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := makeScratch(a, &ready, log); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(a); err != nil || len(ents) != 0 {
		t.Errorf("scratch directory again: %v, %d entries, want it empty", err, len(ents))
	}
	// The execute directory removed under the startd.
	if err := os.RemoveAll(exec); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(exec, "dir_b")
	if err := makeScratch(b, &ready, log); err != nil {
		t.Fatal(err)
	}
	if m := mode(exec); m != 0o711 {
		t.Errorf("execute directory %o when created again, want 711", m)
	}
	if m := mode(b); m != 0o700 {
		t.Errorf("scratch directory %o, want 700", m)
	}
}
