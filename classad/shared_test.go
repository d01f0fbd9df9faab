package classad

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSharedLiterals: a scalar literal made twice is one expression; each
// value still reads as itself, however many values pass through the table.
func TestSharedLiterals(t *testing.T) {
	for _, v := range []Value{Int(4096), String("X86_64"), Bool(true), Real(0.5), Undefined(), Error(), RelTime(90 * time.Second)} {
		a, b := Literal(v), Literal(v)
		if a != b {
			t.Errorf("%v: two expressions", v)
		}
		if got, ok := a.IsLiteral(); !ok || !got.Equal(v) {
			t.Errorf("%v: literal of %v", v, got)
		}
	}
	// Values that differ only in what a careless key would drop.
	for _, pair := range [][2]Value{
		{Int(1), Bool(true)}, {Int(0), Bool(false)}, {Int(0), Undefined()}, {Real(0), Real(math.Copysign(0, -1))},
		{String("a"), String("A")}, {Int(0), Real(0)},
	} {
		a, b := Literal(pair[0]), Literal(pair[1])
		if a == b {
			t.Errorf("%v and %v share an expression", pair[0], pair[1])
		}
		if av, _ := a.IsLiteral(); av.k != pair[0].k || av.n != pair[0].n || av.str() != pair[0].str() {
			t.Errorf("literal of %v reads %v", pair[0], av)
		}
	}
	// More values than the table has slots: each reads right.
	for i := range 3 * sharedSlots {
		v := String(fmt.Sprintf("slot%d@machine%d", i%8, i))
		if got, _ := Literal(v).IsLiteral(); got.str() != v.str() {
			t.Fatalf("literal of %v reads %v", v, got)
		}
		if got, _ := Literal(Int(int64(i))).IsLiteral(); got.n != int64(i) || got.k != IntKind {
			t.Fatalf("literal of %d reads %v", i, got)
		}
	}
	long := String(strings.Repeat("x", maxSharedStr+1))
	if x, y := Literal(long), Literal(long); x == y {
		t.Error("a long string shared")
	}
	// Lists and ads are never shared (each literal is its own).
	l := List(Int(1))
	if x, y := Literal(l), Literal(l); x == y {
		t.Error("a list literal shared")
	}
}

// TestSharedJSONAttrs: ads read from JSON share the expressions of the
// attributes they have alike, literal or quoted expression, and each ad
// still evaluates as its own.
func TestSharedJSONAttrs(t *testing.T) {
	src := func(i int) string {
		return fmt.Sprintf(`{"Name":"slot1@m%d","Memory":4096,"Arch":"X86_64","HasVM":true,"Start":"\/Expr(TARGET.JobVMMemory <= MY.Memory \u0026\u0026 Id == %d)\/","Requirements":"\/Expr(TARGET.JobVMType == \"kvm\")\/"}`, i, i)
	}
	var ads []*Ad
	for i := range 3 {
		ad := NewAd()
		if err := ad.UnmarshalJSON([]byte(src(i))); err != nil {
			t.Fatal(err)
		}
		ads = append(ads, ad)
	}
	// What the reads put in the tables after the first ad's: a value whose
	// slot one of them took may have lost its place (the tables are
	// lossy), and only then may its attribute go unshared.
	var laterLits []Value
	var laterSrc []string
	for i := 1; i < 3; i++ {
		laterLits = append(laterLits, String(fmt.Sprintf("slot1@m%d", i)))
		laterSrc = append(laterSrc, fmt.Sprintf("TARGET.JobVMMemory <= MY.Memory && Id == %d", i))
	}
	for name, v := range map[string]Value{"Memory": Int(4096), "Arch": String("X86_64"), "HasVM": Bool(true), "Requirements": String(`TARGET.JobVMType == "kvm"`)} {
		a, _ := ads[0].Lookup(name)
		b, _ := ads[2].Lookup(name)
		if a == b {
			continue
		}
		lost := false
		if name == "Requirements" {
			for _, o := range laterSrc {
				lost = lost || srcSlot(o) == srcSlot(v.str())
			}
		} else {
			s, _ := litSlot(v)
			for _, o := range laterLits {
				os, _ := litSlot(o)
				lost = lost || os == s
			}
		}
		if !lost {
			t.Errorf("%s: each ad has its own expression", name)
		}
	}
	for _, name := range []string{"Name", "Start"} {
		a, _ := ads[0].Lookup(name)
		b, _ := ads[2].Lookup(name)
		if a == b {
			t.Errorf("%s differs between the ads but is shared", name)
		}
	}
	for i, ad := range ads {
		ad.SetInt("Id", int64(i))
		job := NewAd()
		job.SetInt("JobVMMemory", 16)
		job.SetString("JobVMType", "kvm")
		if !ad.EvalIn("Start", job).IsTrue() {
			t.Errorf("ad %d: Start false", i)
		}
		if s, _ := ad.EvalString("Name"); s != fmt.Sprintf("slot1@m%d", i) {
			t.Errorf("ad %d: Name %q", i, s)
		}
	}
	// A bad expression is refused every time, shared table or not.
	for range 2 {
		if err := NewAd().UnmarshalJSON([]byte(`{"Start":"\/Expr(TARGET.x \u003e=)\/"}`)); err == nil {
			t.Fatal("bad quoted expression accepted")
		}
	}
}

// TestSharedConcurrent: ads read and literals made on many goroutines at
// once (run under -race) read right.
func TestSharedConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k := (i*7 + g) % 40
				ad := NewAd()
				if err := ad.UnmarshalJSON([]byte(fmt.Sprintf(`{"A":%d,"B":"\/Expr(A + %d)\/","C":"v%d"}`, k, k, k))); err != nil {
					t.Error(err)
					return
				}
				if b, _ := ad.EvalInt("B"); b != int64(2*k) {
					t.Errorf("B = %d, want %d", b, 2*k)
					return
				}
				if c, _ := Literal(String(fmt.Sprint("v", k))).IsLiteral(); c.str() != fmt.Sprint("v", k) {
					t.Errorf("literal reads %v", c)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// checkSharedParse holds ParseAd's result for src (ad, err), and that of
// a second ParseAd of src, which finds its expressions in the shared
// table, to a parse that shares nothing: the same ad, printed alike, or
// the same error.
func checkSharedParse(t *testing.T, src string, ad *Ad, err error) {
	t.Helper()
	want, wantErr := parseAd(src, false)
	again, againErr := ParseAd(src)
	for i, got := range []struct {
		ad  *Ad
		err error
	}{{ad, err}, {again, againErr}} {
		if (got.err == nil) != (wantErr == nil) || got.err != nil && got.err.Error() != wantErr.Error() {
			t.Fatalf("ParseAd(%q) #%d: error %v, unshared %v", src, i+1, got.err, wantErr)
		}
		if got.err == nil && (!got.ad.Equal(want) || got.ad.String() != want.String()) {
			t.Fatalf("ParseAd(%q) #%d: %s, unshared %s", src, i+1, got.ad, want)
		}
	}
}

// TestParseAdShares: job ads alike share the expressions they have alike,
// whatever the text around them, and read as a parse that shares nothing.
func TestParseAdShares(t *testing.T) {
	ad := func(i int) string {
		return fmt.Sprintf(`[ ClusterId = %d; Requirements = (TARGET.Arch == "X86_64") && (TARGET.VM_Memory >= MY.JobVMMemory) ; `+
			`Note = "a ; b ] c \" d"; Nest = [ x = 1; y = { 2, 3 } ]; 'odd;name' = 7; Cmt = 1 /* ; */ + 2; Last = Note ]`, i)
	}
	a, err := ParseAd(ad(1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseAd(ad(2))
	if err != nil {
		t.Fatal(err)
	}
	// The texts the two parses put in the table, in order; a text whose
	// slot another of them took may have lost its place (the table is
	// lossy), and only then may its attribute go unshared.
	texts := map[string]string{"Requirements": `(TARGET.Arch == "X86_64") && (TARGET.VM_Memory >= MY.JobVMMemory)`,
		"Note": `"a ; b ] c \" d"`, "Nest": `[ x = 1; y = { 2, 3 } ]`, "odd;name": "7", "Last": "Note"}
	stored := []string{"1", "2"}
	for _, x := range texts {
		stored = append(stored, x)
	}
	slot := srcSlot
	for name, text := range texts {
		x, _ := a.Lookup(name)
		y, _ := b.Lookup(name)
		if x != nil && x == y {
			continue
		}
		collided := false
		for _, o := range stored {
			collided = collided || o != text && slot(o) == slot(text)
		}
		if !collided {
			t.Errorf("%s: not shared", name)
		}
	}
	for _, name := range []string{"ClusterId", "Cmt"} { // differs; has a comment
		x, _ := a.Lookup(name)
		y, _ := b.Lookup(name)
		if x == y {
			t.Errorf("%s: shared", name)
		}
	}
	for _, src := range []string{ad(3), ad(3), `[ A = 1 2; B = 3 ]`, `[ A = (1; B = 2 ]`, `[ A = "x;y" ; B = A ]`, `[ A = x ]]`, `[ A = 1; ]`, `[ A = ; ]`} {
		got, err := ParseAd(src)
		checkSharedParse(t, src, got, err)
	}
	if s, _ := b.EvalString("Note"); s != `a ; b ] c " d` {
		t.Errorf("Note = %q", s)
	}
	if n, _ := b.EvalInt("ClusterId"); n != 2 {
		t.Errorf("ClusterId = %d", n)
	}
}

// TestCheckExpr: a text that parses is remembered, one that does not is
// refused every time with ParseExpr's error and never remembered.
func TestCheckExpr(t *testing.T) {
	good, bad := `TARGET.Memory >= 512 /* CheckExpr */`, `(TARGET.Memory >= /* CheckExpr */`
	_, want := ParseExpr(bad)
	for i := range 3 {
		if err := CheckExpr(good); err != nil {
			t.Fatalf("round %d: %q refused: %v", i, good, err)
		}
		if lookupShared(good) == nil {
			t.Fatalf("round %d: %q parsed but is not in the table", i, good)
		}
		if err := CheckExpr(bad); err == nil || err.Error() != want.Error() {
			t.Fatalf("round %d: %q: %v, want %v", i, bad, err, want)
		}
		if lookupShared(bad) != nil {
			t.Fatalf("round %d: %q is in the table", i, bad)
		}
	}
}

// TestAsciiLowerRemembers: a name with capitals is lowered right, and
// once: lowered again it allocates nothing. Names too long for the table,
// more names than it has places, and names lowered on many goroutines at
// once (under -race) are lowered right too.
func TestAsciiLowerRemembers(t *testing.T) {
	long := strings.Repeat("X", maxLowered+1)
	for _, c := range [][2]string{{"Requirements", "requirements"}, {"requirements", "requirements"}, {"VM_AvailNum", "vm_availnum"},
		{"", ""}, {"\u00c0B", "\u00c0b"}, {long, strings.ToLower(long)}} {
		if got := asciiLower(c[0]); got != c[1] {
			t.Errorf("asciiLower(%q) = %q, want %q", c[0], got, c[1])
		}
	}
	asciiLower("JobVMMemory")
	if n := testing.AllocsPerRun(100, func() { _ = asciiLower("JobVMMemory") }); n != 0 {
		t.Errorf("lowering a name lowered before allocated %v times", n)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 * len(lowered) {
				name := fmt.Sprintf("Attr%dOf%d", i, g%2)
				if got, want := asciiLower(name), strings.ToLower(name); got != want {
					t.Errorf("asciiLower(%q) = %q, want %q", name, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
