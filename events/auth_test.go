package events_test

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"testing"

	"github.com/vmpool/vmpool/events"
)

// TestSaveNewAgreesOnOneIdentity: processes creating the same identity at
// once (the servers of a cluster sharing CREDS_DIR) end up with one: the
// first written; the others are told it exists, and nothing else is left
// in the directory.
func TestSaveNewAgreesOnOneIdentity(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	var wg sync.WaitGroup
	seeds := make([]string, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		c, err := events.NewCredentials(events.RoleStartd, "node7")
		if err != nil {
			t.Fatal(err)
		}
		seeds[i] = string(c.Seed)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.SaveNew(dir, -1, -1)
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("saves %d and %d both succeeded", winner, i)
			}
			winner = i
		case !errors.Is(err, fs.ErrExist):
			t.Fatalf("save %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no save succeeded")
	}
	got, err := events.LoadCredentials(dir + "/" + events.CredentialsFile(events.RoleStartd, "node7"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Seed) != seeds[winner] || got.Role != events.RoleStartd || got.Name != "node7" {
		t.Fatalf("loaded %s/%s, want the winner's identity", got.Role, got.Name)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left in the directory: %v", entries)
	}
	if st, _ := os.Stat(dir + "/" + entries[0].Name()); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
}
