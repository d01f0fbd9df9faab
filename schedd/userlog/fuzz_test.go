package userlog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics, reports where a header is malformed, and
// what it reads formats and parses back to the same text.
func FuzzParse(f *testing.F) {
	if ref, err := os.ReadFile(filepath.Join("testdata", "reference.log")); err == nil {
		f.Add(ref)
	}
	for _, g := range golden {
		f.Add([]byte(g.text))
	}
	f.Add([]byte("012 (1.2.3) 05/14 10:00:00.5Z Job was held.\n\tCode x\n...\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		o := ParseOptions{Location: zone, Year: 2024}
		events, err := ParseWith(bytes.NewReader(data), o)
		var pe *ParseError
		if err != nil && (!errors.As(err, &pe) || pe.Line < 1) {
			t.Fatalf("error without a line: %v", err)
		}
		for _, e := range events {
			fo := FormatOptions{Location: zone, SubSecond: true}
			text := Format(e, fo)
			again, err := ParseWith(bytes.NewReader(text), o)
			if err != nil || len(again) != 1 {
				t.Fatalf("%q parses to %d events, %v", text, len(again), err)
			}
			if twice := Format(again[0], fo); !bytes.Equal(twice, text) {
				t.Fatalf("round trip\n%q\n%q", text, twice)
			}
		}
	})
}
