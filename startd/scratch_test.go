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
	// made makes scratch and checks both directories' modes.
	made := func(scratch, when string) {
		t.Helper()
		if err := makeScratch(scratch, &ready, log); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			dir, what string
			want      fs.FileMode
		}{{exec, "execute directory", 0o711}, {scratch, "scratch directory", 0o700}} {
			fi, err := os.Stat(c.dir)
			if err != nil {
				t.Fatal(err)
			}
			if m := fi.Mode().Perm(); m != c.want {
				t.Errorf("%s %o %s, want %o", c.what, m, when, c.want)
			}
		}
	}
	a := filepath.Join(exec, "dir_a")
	made(a, "after the first VM")
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
	made(filepath.Join(exec, "dir_b"), "when created again")
}
