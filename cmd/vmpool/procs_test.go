package main

import "testing"

func TestProcsFor(t *testing.T) {
	for _, c := range []struct {
		env       string
		def, want int
	}{
		{"", 2, 6},
		{"", 16, 20},
		{"3", 3, 3},  // the user's setting stands
		{"x", 2, 6},  // the runtime ignored it too
		{"0", 2, 6},  // likewise
		{"-1", 1, 5}, // likewise
	} {
		if got := procsFor(c.env, c.def); got != c.want {
			t.Errorf("procsFor(%q, %d) = %d, want %d", c.env, c.def, got, c.want)
		}
	}
}
