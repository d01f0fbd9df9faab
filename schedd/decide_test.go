package schedd

import (
	"errors"
	"strings"
	"testing"

	"github.com/vmpool/vmpool/events"
)

// TestCheckAttrsRefusesEveryTime: a submit's good expression is taken
// again and again, a bad one refused every time, however often both come
// (checkAttrs skips the parse of a text that parsed before).
func TestCheckAttrsRefusesEveryTime(t *testing.T) {
	good := events.Attr{Name: "Requirements", Expr: `TARGET.Memory >= 512 && TARGET.VM_Type == "kvm" /* check test */`}
	bad := events.Attr{Name: "Rank", Expr: `(TARGET.Memory >= /* check test */`}
	for i := range 3 {
		if err := checkAttrs("", []events.Attr{good}); err != nil {
			t.Fatalf("round %d: %s refused: %v", i, good.Expr, err)
		}
		err := checkAttrs("", []events.Attr{good, bad})
		if !errors.Is(err, ErrBadSubmit) || !strings.Contains(err.Error(), "attribute Rank") || !strings.Contains(err.Error(), "column") {
			t.Fatalf("round %d: %s: got %v, want a bad-submit naming Rank and where", i, bad.Expr, err)
		}
	}
}
