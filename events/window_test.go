package events

import (
	"math/rand/v2"
	"testing"
)

func TestWindowInOrder(t *testing.T) {
	var w Window
	for seq := uint64(1); seq <= 3000; seq++ {
		if w.Seen(seq) {
			t.Fatalf("seq %d seen before it was marked", seq)
		}
		w.Mark(seq)
		if !w.Seen(seq) {
			t.Fatalf("seq %d not seen after mark", seq)
		}
	}
	for seq := uint64(1); seq <= 3000; seq++ {
		if !w.Seen(seq) {
			t.Fatalf("seq %d forgotten", seq)
		}
	}
	if w.Seen(3001) {
		t.Fatal("future seq seen")
	}
}

func TestWindowStragglerAndGaps(t *testing.T) {
	var w Window
	// A filtered consumer sees every third event, and one arrives late.
	for seq := uint64(3); seq <= 300; seq += 3 {
		if seq == 150 {
			continue
		}
		w.Mark(seq)
	}
	if w.Seen(150) {
		t.Fatal("straggler 150 reported seen before it arrived")
	}
	if w.Seen(151) {
		t.Fatal("never-marked 151 reported seen")
	}
	w.Mark(150)
	if !w.Seen(150) {
		t.Fatal("straggler not remembered")
	}
	// Far below the window counts as seen.
	w.Mark(300 + WindowSize + 10)
	if !w.Seen(151) {
		t.Fatal("seq far below the window should count as seen")
	}
}

func TestWindowMatchesSetModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var w Window
	seen := map[uint64]bool{}
	var high uint64
	for i := 0; i < 20000; i++ {
		// Mostly increasing with jumps, sometimes a straggler within reach.
		var seq uint64
		if high > 10 && rng.IntN(4) == 0 {
			seq = high - uint64(rng.IntN(int(min(high-1, WindowSize-1))))
		} else {
			seq = high + 1 + uint64(rng.IntN(200))
		}
		want := seen[seq]
		if got := w.Seen(seq); got != want {
			t.Fatalf("step %d seq %d (high %d): Seen = %v, want %v", i, seq, high, got, want)
		}
		w.Mark(seq)
		seen[seq] = true
		high = max(high, seq)
	}
	b, _ := w.MarshalBinary()
	var w2 Window
	if err := w2.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if w2 != w {
		t.Fatal("window round trip differs")
	}
	if err := w2.UnmarshalBinary(b[:5]); err == nil {
		t.Fatal("short window decoded without error")
	}
}
