package events

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCorruptLogDetected: a byte flipped in the log's table files on disk
// is caught by Pebble's block checksums when the log is opened or read:
// the daemon gets an error naming the log, never a silently different
// record.
func TestCorruptLogDetected(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	l := openTestLog(t, dir)
	var in []Event
	for i := 0; i < 200; i++ {
		in = append(in, New("JobSubmitted", map[string]string{"pad": strings.Repeat("x", 100)}).ForJob("schedd", JobID{i + 1, 0}))
	}
	if _, err := l.Append(in); err != nil {
		t.Fatal(err)
	}
	// Move the records from the write-ahead log into a table file.
	if err := l.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table file after a flush")
	}
	for _, sst := range tables {
		b, err := os.ReadFile(sst)
		if err != nil {
			t.Fatal(err)
		}
		// The records sit at the start of the file, ahead of the index and
		// footer; flip one byte among them.
		b[len(b)/4] ^= 0x40
		if err := os.WriteFile(sst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := OpenLog(dir, "schedd", LogOptions{})
	if err == nil {
		// The open may not touch the corrupted block; a full read must.
		err = l.Scan(1, func(uint64, Event) error { return nil })
		l.Close()
	}
	if err == nil {
		t.Fatal("a corrupted table file was read without an error")
	}
	if !strings.Contains(err.Error(), "checksum") && !errors.Is(err, ErrMalformed) {
		t.Fatalf("error does not say what is wrong: %v", err)
	}
	t.Logf("reported: %v", err)
}
