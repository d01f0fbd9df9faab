package schedd

import (
	"encoding/json"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"testing"

	"github.com/vmpool/vmpool/events"
)

// A crash after writing a batch of user log events but before recording
// it: the restart cuts the files back to where the batch began, so that
// writing the batch again leaves every event there exactly once.
func TestUserLogRollback(t *testing.T) {
	dir := t.TempDir()
	l, err := events.OpenLog(filepath.Join(dir, "log"), "schedd", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := &Schedd{log: l, logger: slog.New(slog.DiscardHandler)}
	existing := filepath.Join(dir, "a.log")
	fresh := filepath.Join(dir, "b.log")
	os.WriteFile(existing, []byte("000 (001.000.000) 2026-01-01 00:00:00 Job submitted from host: <h>\n...\n"), 0o644)
	before := fileSize(existing)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(userLogIntent{Last: 7, Sizes: map[string]int64{existing: before, fresh: -1},
		Owners: map[string]string{existing: me.Username, fresh: me.Username}})
	if err := l.SetMeta(metaUserLogIntent, in, true); err != nil {
		t.Fatal(err)
	}
	// The interrupted batch reached both files.
	f, _ := os.OpenFile(existing, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("001 (001.000.000) 2026-01-01 00:00:01 Job executing on host: <s>\n...\n")
	f.Close()
	os.WriteFile(fresh, []byte("000 (002.000.000) 2026-01-01 00:00:01 Job submitted from host: <h>\n"), 0o644)

	if err := s.rollbackUserLogs(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(existing); got != before {
		t.Fatalf("existing log is %d bytes, want %d", got, before)
	}
	if got := fileSize(fresh); got != 0 {
		t.Fatalf("new log is %d bytes, want 0", got)
	}
	if b, ok, _ := l.Meta(metaUserLogIntent); ok && len(b) > 0 {
		t.Fatal("intent not cleared")
	}
	// Once the position passed the batch, an intent left behind is stale:
	// nothing is cut.
	os.WriteFile(fresh, []byte("x"), 0o644)
	in, _ = json.Marshal(userLogIntent{Last: 7, Sizes: map[string]int64{fresh: -1}, Owners: map[string]string{fresh: me.Username}})
	l.SetMeta(metaUserLogIntent, in, true)
	l.SetMetaUint(metaUserLogDone, 7, true)
	if err := s.rollbackUserLogs(); err != nil {
		t.Fatal(err)
	}
	if fileSize(fresh) != 1 {
		t.Fatal("a completed batch was rolled back")
	}
}
