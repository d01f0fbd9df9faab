package events

import (
	"runtime/debug"
	"testing"
)

func TestRaiseGCNestsAndRestores(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	a := RaiseGC()
	b := RaiseGC()
	if got := debug.SetGCPercent(replayGCPercent); got != replayGCPercent {
		t.Fatalf("during two replays GOGC is %d, want %d", got, replayGCPercent)
	}
	a()
	a() // once only
	if got := debug.SetGCPercent(replayGCPercent); got != replayGCPercent {
		t.Fatalf("with one replay left GOGC is %d, want %d", got, replayGCPercent)
	}
	b()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("after the replays GOGC is %d, want 100 back", got)
	}
	debug.SetGCPercent(-1) // off: left off
	c := RaiseGC()
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Fatalf("with GC off a replay set GOGC to %d", got)
	}
	c()
	if got := debug.SetGCPercent(100); got != -1 {
		t.Fatalf("after a replay with GC off GOGC is %d, want off", got)
	}
}
