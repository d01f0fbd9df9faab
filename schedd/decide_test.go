package schedd

import (
	"errors"
	"strings"
	"testing"

	"github.com/vmpool/vmpool/events"
)

// TestCheckAttrsRemembersOnlyWhatParsed: an expression that parsed is
// taken again without a parse; one that did not is refused every time,
// however often it comes, beside good ones or not.
func TestCheckAttrsRemembersOnlyWhatParsed(t *testing.T) {
	good := events.Attr{Name: "Requirements", Expr: `TARGET.Memory >= 512 && TARGET.VM_Type == "kvm" /* memo test */`}
	bad := events.Attr{Name: "Rank", Expr: `(TARGET.Memory >= /* memo test */`}
	for i := range 3 {
		if err := checkAttrs("", []events.Attr{good}); err != nil {
			t.Fatalf("round %d: %s refused: %v", i, good.Expr, err)
		}
		if !parsedExprs.has(good.Expr) {
			t.Fatalf("round %d: %s parsed but is not remembered", i, good.Expr)
		}
		err := checkAttrs("", []events.Attr{good, bad})
		if !errors.Is(err, ErrBadSubmit) || !strings.Contains(err.Error(), "attribute Rank") {
			t.Fatalf("round %d: %s: got %v, want a bad-submit naming Rank", i, bad.Expr, err)
		}
		if parsedExprs.has(bad.Expr) {
			t.Fatalf("round %d: %s failed to parse but is remembered", i, bad.Expr)
		}
	}
}

// TestExprMemoBounded: the memo holds at most its bound in bytes, starting
// again empty when the next text would pass it, and keeps no text bigger
// than a 64th of it.
func TestExprMemoBounded(t *testing.T) {
	m := exprMemo{max: 640}
	for i := range 100 {
		s := strings.Repeat(string(rune('a'+i%26)), 5) + strings.Repeat("x", i%5)
		m.add(s)
		if !m.has(s) {
			t.Fatalf("%q added but not held", s)
		}
		if m.bytes > m.max {
			t.Fatalf("memo holds %d bytes, bound %d", m.bytes, m.max)
		}
		total := 0
		for k := range m.set {
			total += len(k)
		}
		if total != m.bytes {
			t.Fatalf("memo counts %d bytes, holds %d", m.bytes, total)
		}
	}
	big := strings.Repeat("y", 11)
	m.add(big)
	if m.has(big) {
		t.Fatalf("a text of %d bytes kept in a memo of %d", len(big), m.max)
	}
	if m.has("never added") {
		t.Fatal("memo holds a text never added")
	}
}
