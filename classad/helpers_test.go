package classad

import (
	"math/rand/v2"
	"testing"
	"time"
)

// testNow is the clock of the tests: 2024-03-01T12:34:56Z.
var testNow = time.Date(2024, 3, 1, 12, 34, 56, 0, time.UTC)

func testOptions() *EvalOptions {
	return &EvalOptions{
		Now:  func() time.Time { return testNow },
		Rand: rand.NewPCG(1, 2),
	}
}

// evalCase is one expression and the value it must have, written in
// ClassAd syntax ("3", "3.5", `"x"`, "true", "undefined", "error",
// "{ 1,2 }").
type evalCase struct {
	name string
	expr string
	want string
}

// runEvalCases evaluates each case with my as MY and target as TARGET and
// compares the printed value.
func runEvalCases(t *testing.T, my, target *Ad, cases []evalCase) {
	t.Helper()
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseExpr(tc.expr)
			if err != nil {
				t.Fatalf("ParseExpr(%q): %v", tc.expr, err)
			}
			got := e.EvalWith(my, target, testOptions())
			if got.String() != tc.want {
				t.Errorf("%s = %s, want %s", tc.expr, got, tc.want)
			}
		})
	}
}

func mustAd(t testing.TB, src string) *Ad {
	t.Helper()
	ad, err := ParseAd(src)
	if err != nil {
		t.Fatalf("ParseAd(%q): %v", src, err)
	}
	return ad
}
