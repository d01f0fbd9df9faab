package main

import (
	"testing"
	"time"
)

// TestParseSinceAgo: "10m ago", as vmpool replay --help writes it, is ten
// minutes ago, as "10m" is; it used to be refused as "neither a sequence
// number, a time nor a duration ago".
func TestParseSinceAgo(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"10m", "10m ago", "10m  ago"} {
		seq, at, err := parseSince(s, now, time.UTC)
		if err != nil || seq != 0 || !at.Equal(now.Add(-10*time.Minute)) {
			t.Errorf("parseSince(%q) = %d, %v, %v; want 11:50", s, seq, at, err)
		}
	}
	if _, _, err := parseSince("ago", now, time.UTC); err == nil {
		t.Error(`parseSince("ago") accepted`)
	}
}
