package events

import (
	"encoding/binary"
	"fmt"
)

// WindowSize is how far below the highest sequence seen from a source an
// event may still arrive and be applied. JetStream keeps a source's
// messages in publish order except when a failed publish is retried after
// later ones went through; the outbox keeps far fewer than WindowSize
// publishes in flight, so such a straggler always lands inside the window.
const WindowSize = 1024

// Window remembers which sequence numbers of one source a consumer has
// applied: every one at or below High-WindowSize, and those marked in a
// bitmap above it. It is the consumer's half of exactly-once: an event is
// applied only if Seen says no, and the updated Window is stored in the same
// Pebble batch as the events derived from it.
//
// A consumer that filters subjects sees only some of a source's sequence
// numbers, so gaps are normal and do not block progress.
type Window struct {
	High uint64
	bits [WindowSize / 64]uint64 // bit i: High-i was applied (i < WindowSize)
}

// Seen reports whether seq was already applied (or is too old to tell, which
// counts as applied).
func (w *Window) Seen(seq uint64) bool {
	if seq == 0 {
		return true
	}
	if seq > w.High {
		return false
	}
	d := w.High - seq
	if d >= WindowSize {
		return true
	}
	return w.bits[d/64]&(1<<(d%64)) != 0
}

// Mark records seq as applied.
func (w *Window) Mark(seq uint64) {
	if seq == 0 {
		return
	}
	if seq > w.High {
		shift := seq - w.High
		w.shift(shift)
		w.High = seq
		w.bits[0] |= 1
		return
	}
	d := w.High - seq
	if d < WindowSize {
		w.bits[d/64] |= 1 << (d % 64)
	}
}

// shift moves the bitmap n places towards older sequence numbers.
func (w *Window) shift(n uint64) {
	if n >= WindowSize {
		w.bits = [WindowSize / 64]uint64{}
		return
	}
	words, rem := int(n/64), n%64
	var out [WindowSize / 64]uint64
	for i := len(w.bits) - 1; i >= words; i-- {
		v := w.bits[i-words] << rem
		if rem != 0 && i-words-1 >= 0 {
			v |= w.bits[i-words-1] >> (64 - rem)
		}
		out[i] = v
	}
	w.bits = out
}

// MarshalBinary encodes the window for storage.
func (w *Window) MarshalBinary() ([]byte, error) {
	b := make([]byte, 8+8*len(w.bits))
	binary.BigEndian.PutUint64(b, w.High)
	for i, v := range w.bits {
		binary.BigEndian.PutUint64(b[8+8*i:], v)
	}
	return b, nil
}

// UnmarshalBinary decodes a stored window.
func (w *Window) UnmarshalBinary(b []byte) error {
	if len(b) != 8+8*len(w.bits) {
		return fmt.Errorf("decode consumer window: %d bytes, want %d: %w", len(b), 8+8*len(w.bits), ErrMalformed)
	}
	w.High = binary.BigEndian.Uint64(b)
	for i := range w.bits {
		w.bits[i] = binary.BigEndian.Uint64(b[8+8*i:])
	}
	return nil
}
