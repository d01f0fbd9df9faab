package classad

import (
	"math"
	"strings"
	"time"
)

// Kind is the type of a Value.
type Kind uint8

// The kinds of values. AbsTimeKind and RelTimeKind are HTCondor's absolute
// time (seconds since the epoch plus a zone offset) and relative time
// (seconds, possibly fractional).
const (
	UndefinedKind Kind = iota
	ErrorKind
	BoolKind
	IntKind
	RealKind
	StringKind
	ListKind
	AdKind
	AbsTimeKind
	RelTimeKind
)

var kindNames = [...]string{
	UndefinedKind: "undefined",
	ErrorKind:     "error",
	BoolKind:      "boolean",
	IntKind:       "integer",
	RealKind:      "real",
	StringKind:    "string",
	ListKind:      "list",
	AdKind:        "classad",
	AbsTimeKind:   "abstime",
	RelTimeKind:   "reltime",
}

// String names the kind as the ClassAd manual does: "integer", "string", ...
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// Value is the result of evaluating an expression. The zero Value is
// undefined. Values are immutable and safe to share between goroutines.
//
// A Value is kept to four machine words so that the compiler passes it in
// registers; that matters on the evaluation path.
type Value struct {
	k Kind
	// n holds BoolKind 0/1, IntKind, RealKind and RelTimeKind (float
	// bits), AbsTimeKind (seconds<<20 | zone offset+2^19).
	n int64
	// x holds StringKind's string and ListKind's and AdKind's *composite.
	x any
}

func (v Value) str() string {
	s, _ := v.x.(string)
	return s
}

func (v Value) comp() *composite {
	c, _ := v.x.(*composite)
	return c
}

// Absolute times pack the zone offset (|offset| < 2^19 s) into the low
// bits of n.
const zoneBits = 20

func (v Value) secs() int64 { return v.n >> zoneBits }

func (v Value) zone() int { return int(v.n&(1<<zoneBits-1)) - 1<<(zoneBits-1) }

// composite holds the parts of list and ad values.
type composite struct {
	list []Value
	ad   *Ad
	// scope is the chain of ads enclosing a nested ad literal, so that a
	// bare name inside it can fall back to the enclosing ad (lexical
	// scope). Nil for ads handed in by callers.
	scope *scopeLink
}

// scopeLink is one step of a lexical scope chain.
type scopeLink struct {
	ad *Ad
	up *scopeLink
}

// Undefined returns the undefined value.
func Undefined() Value { return Value{} }

// Error returns the error value.
func Error() Value { return Value{k: ErrorKind} }

// Bool returns a boolean value.
func Bool(b bool) Value {
	if b {
		return Value{k: BoolKind, n: 1}
	}
	return Value{k: BoolKind}
}

// Int returns an integer value.
func Int(i int64) Value { return Value{k: IntKind, n: i} }

// Real returns a real value.
func Real(f float64) Value { return Value{k: RealKind, n: int64(math.Float64bits(f))} }

// String returns a string value.
func String(s string) Value { return Value{k: StringKind, x: s} }

// List returns a list value holding vs. The slice is copied.
func List(vs ...Value) Value {
	l := make([]Value, len(vs))
	copy(l, vs)
	return Value{k: ListKind, x: &composite{list: l}}
}

// listOwned wraps l without copying; l must not be modified afterwards.
func listOwned(l []Value) Value { return Value{k: ListKind, x: &composite{list: l}} }

// AdValue returns a value holding the ad a (a nested record). A nil ad
// gives undefined. The ad is shared, not copied.
func AdValue(a *Ad) Value {
	if a == nil {
		return Value{}
	}
	return Value{k: AdKind, x: &composite{ad: a}}
}

// AbsTime returns an absolute time value for t, keeping t's zone offset.
func AbsTime(t time.Time) Value {
	_, off := t.Zone()
	return absTime(t.Unix(), off)
}

func absTime(secs int64, off int) Value {
	return Value{k: AbsTimeKind, n: secs<<zoneBits | int64(off+1<<(zoneBits-1))}
}

// RelTime returns a relative time value of d (kept to the nanosecond as a
// real number of seconds).
func RelTime(d time.Duration) Value { return relTime(d.Seconds()) }

func relTime(secs float64) Value {
	return Value{k: RelTimeKind, n: int64(math.Float64bits(secs))}
}

// Kind reports the type of v.
func (v Value) Kind() Kind { return v.k }

// IsUndefined reports whether v is undefined.
func (v Value) IsUndefined() bool { return v.k == UndefinedKind }

// IsError reports whether v is the error value.
func (v Value) IsError() bool { return v.k == ErrorKind }

// BoolValue returns the boolean held by v; ok is false unless v is a
// boolean.
func (v Value) BoolValue() (b, ok bool) { return v.n != 0, v.k == BoolKind }

// IntValue returns the integer held by v; ok is false unless v is an
// integer. Booleans are not integers here (HTCondor's IsIntegerValue);
// use NumberValue to accept them.
func (v Value) IntValue() (int64, bool) {
	if v.k != IntKind {
		return 0, false
	}
	return v.n, true
}

// RealValue returns v as a float64 when v is a real or an integer.
func (v Value) RealValue() (float64, bool) {
	switch v.k {
	case RealKind:
		return v.real(), true
	case IntKind:
		return float64(v.n), true
	}
	return 0, false
}

// NumberValue returns v as a float64 when v is a number in HTCondor's
// wider sense: an integer, a real, or a boolean (1 or 0). Rank uses it.
func (v Value) NumberValue() (float64, bool) {
	switch v.k {
	case RealKind:
		return v.real(), true
	case IntKind, BoolKind:
		return float64(v.n), true
	}
	return 0, false
}

// StringValue returns the string held by v; ok is false unless v is a
// string.
func (v Value) StringValue() (string, bool) { return v.str(), v.k == StringKind }

// ListValue returns the elements of a list value. The slice is shared:
// callers must not modify it.
func (v Value) ListValue() ([]Value, bool) {
	if v.k != ListKind {
		return nil, false
	}
	return v.comp().list, true
}

// AdValue returns the ad held by v; ok is false unless v is an ad.
func (v Value) AdValue() (*Ad, bool) {
	if v.k != AdKind {
		return nil, false
	}
	return v.comp().ad, true
}

// TimeValue returns an absolute time value as a time.Time in its own zone
// offset.
func (v Value) TimeValue() (time.Time, bool) {
	if v.k != AbsTimeKind {
		return time.Time{}, false
	}
	return time.Unix(v.secs(), 0).In(fixedZone(v.zone())), true
}

// DurationValue returns a relative time value as a time.Duration.
func (v Value) DurationValue() (time.Duration, bool) {
	if v.k != RelTimeKind {
		return 0, false
	}
	return time.Duration(v.real() * float64(time.Second)), true
}

// IsTrue reports whether v counts as true where HTCondor needs a
// decision (matchmaking, EvalBool, policy expressions): boolean true, or
// a non-zero integer or real. Everything else, including undefined and
// error, is not true.
func (v Value) IsTrue() bool {
	b, ok := v.boolEquiv()
	return ok && b
}

// boolEquiv is HTCondor's IsBooleanValueEquiv: booleans, and numbers
// compared with zero.
func (v Value) boolEquiv() (b, ok bool) {
	switch v.k {
	case BoolKind, IntKind:
		return v.n != 0, true
	case RealKind:
		return v.real() != 0, true
	}
	return false, false
}

func (v Value) real() float64 { return math.Float64frombits(uint64(v.n)) }

// String prints v in ClassAd syntax: 3, 3.5, "ab1", true, undefined,
// error, { 1,2 }, [ a = 1 ], absTime("..."), relTime("...").
func (v Value) String() string {
	var b strings.Builder
	p := printer{b: &b}
	p.value(v)
	return b.String()
}

// Equal reports whether v and w are identical: same kind and same value,
// strings compared case-sensitively, lists element by element and ads by
// their attributes (see Ad.Equal). Reals compare by value, except that
// NaN equals NaN so that Equal is reflexive.
func (v Value) Equal(w Value) bool {
	if v.k != w.k {
		return false
	}
	switch v.k {
	case UndefinedKind, ErrorKind:
		return true
	case BoolKind, IntKind, AbsTimeKind:
		return v.n == w.n
	case RealKind, RelTimeKind:
		a, b := v.real(), w.real()
		return a == b || (a != a && b != b)
	case StringKind:
		return v.str() == w.str()
	case ListKind:
		if len(v.comp().list) != len(w.comp().list) {
			return false
		}
		for i := range v.comp().list {
			if !v.comp().list[i].Equal(w.comp().list[i]) {
				return false
			}
		}
		return true
	case AdKind:
		return v.comp().ad.Equal(w.comp().ad)
	}
	return false
}

// fixedZone returns a zone for an offset in seconds east of UTC.
func fixedZone(off int) *time.Location {
	if off == 0 {
		return time.UTC
	}
	return time.FixedZone("", off)
}
