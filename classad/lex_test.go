package classad

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestShortDecimalIsParseFloat: the lexer's own reading of short reals
// gives the very float64 strconv.ParseFloat gives, bit for bit, and leaves
// what it cannot read exactly to strconv.
func TestShortDecimalIsParseFloat(t *testing.T) {
	texts := []string{"0.0", "-0.0", "1.5", "0.1", "0.3", "12.25", "-3.75", "123456789.012345", "999999999999999.0",
		"0.000000000000001", "1.", "7"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		ip := strconv.FormatUint(r.Uint64N(1_000_000_000), 10)
		fp := strconv.FormatUint(r.Uint64N(1_000_000), 10)
		texts = append(texts, ip[:r.IntN(len(ip))+1]+"."+fp[:r.IntN(len(fp))+1])
	}
	read := 0
	for _, text := range texts {
		f, ok := shortDecimal(text)
		if !ok {
			continue
		}
		read++
		want, err := strconv.ParseFloat(text, 64)
		if err != nil || math.Float64bits(f) != math.Float64bits(want) {
			t.Fatalf("shortDecimal(%q) = %v (%x), strconv: %v (%x) %v", text, f, math.Float64bits(f), want, math.Float64bits(want), err)
		}
	}
	if read < len(texts)/2 {
		t.Fatalf("shortDecimal read %d of %d", read, len(texts))
	}
	for _, text := range []string{"1234567890123456.0", "1e5", "0.1234567890123456", "", "-", ".", "1.2.3"} {
		if f, ok := shortDecimal(text); ok {
			t.Errorf("shortDecimal(%q) = %v: it should leave it to strconv", text, f)
		}
	}
	// The lexer reads reals through it.
	for _, src := range []string{"0.0", "-2.5", "3.14159", "1e3", "0.1234567890123456789"} {
		v := MustParseExpr(src).Eval(nil, nil)
		want, _ := strconv.ParseFloat(src, 64)
		if got, ok := v.RealValue(); !ok || got != want {
			t.Errorf("%s reads as %v, want %v", src, v, want)
		}
	}
}
