package classad

import (
	"hash/maphash"
	"sync/atomic"
)

// Expressions are immutable once built, so one expression can stand in
// every ad that binds an attribute to the same literal or to the same
// expression text. Thousands of slot ads, and the job ads a startd
// receives, say Arch = "X86_64", Memory = 4096 or the same Requirements
// over and over: these tables hand out the expression made the last time
// instead of a new one, sparing the parse and the memory (a node is about
// 200 bytes, and the ads of a big pool are most of its daemons' heaps).
//
// Each table is lossy: a slot chosen by hash holds the last expression
// put there, and a different one simply replaces it. Slots are atomic, so
// any goroutine may read and fill them without a lock.

const (
	sharedSlots   = 4096
	maxSharedText = 1024 // longest expression text shared
	maxSharedStr  = 128  // longest string literal shared
)

var (
	sharedSeed = maphash.MakeSeed()
	sharedLits [sharedSlots]atomic.Pointer[Expr]
	sharedSrc  [sharedSlots]atomic.Pointer[sharedExpr]
)

// sharedExpr is an expression with the text it was parsed from.
type sharedExpr struct {
	src string
	e   *Expr
}

// sharedLiteral returns a literal expression of v, the one made last time
// for the same value when the table still holds it. Lists, ads and long
// strings are not shared (nil).
func sharedLiteral(v Value) *Expr {
	slot, ok := litSlot(v)
	if !ok {
		return nil
	}
	at := &sharedLits[slot]
	if e := at.Load(); e != nil {
		if w := e.root.val; w.k == v.k && w.n == v.n && (v.k != StringKind || w.str() == v.str()) {
			return e
		}
	}
	e := &Expr{root: finish(&node{op: opLit, val: v})}
	at.Store(e)
	return e
}

// litSlot is the slot of sharedLits for v; ok is false for a value that
// is not shared.
func litSlot(v Value) (slot uint64, ok bool) {
	var h uint64
	switch v.k {
	case UndefinedKind, ErrorKind, BoolKind, IntKind, RealKind, RelTimeKind, AbsTimeKind:
		// The kind and n say all: a real's bits, a time's seconds and zone.
		h = uint64(v.n)*0x9e3779b97f4a7c15 ^ uint64(v.k)
		h ^= h >> 29
	case StringKind:
		s := v.str()
		if len(s) > maxSharedStr {
			return 0, false
		}
		h = maphash.String(sharedSeed, s) ^ uint64(v.k)
	default:
		return 0, false
	}
	return h % sharedSlots, true
}

// srcSlot is the slot of sharedSrc for an expression's text.
func srcSlot(src string) uint64 { return maphash.String(sharedSeed, src) % sharedSlots }

// parseShared is ParseExpr, handing out the expression parsed last time
// from the same text when the table still holds it.
func parseShared(src string) (*Expr, error) {
	if e := lookupShared(src); e != nil {
		return e, nil
	}
	e, err := ParseExpr(src)
	if err != nil {
		return nil, err
	}
	storeShared(src, e)
	return e, nil
}

// CheckExpr reports whether src parses as an expression, with
// ParseExpr's error when it does not. A text that parsed before, and is
// still in the shared table, is not parsed again: a schedd checks every
// expression of every submit, and clusters submitted from one file repeat
// nearly all of theirs.
func CheckExpr(src string) error {
	_, err := parseShared(src)
	return err
}

// lookupShared returns the expression parsed from src, if the table
// holds it. Only texts that parsed are ever stored.
func lookupShared(src string) *Expr {
	if len(src) > maxSharedText {
		return nil
	}
	if s := sharedSrc[srcSlot(src)].Load(); s != nil && s.src == src {
		return s.e
	}
	return nil
}

// storeShared records that src parses as e. The caller gives src a
// memory of its own: the table keeps it.
func storeShared(src string, e *Expr) {
	if len(src) > maxSharedText {
		return
	}
	sharedSrc[srcSlot(src)].Store(&sharedExpr{src: src, e: e})
}

// exprExtent returns where the expression of an ad's attribute that
// starts at src[pos] ends: the index of the ';' or ']' after it, outside
// parentheses, brackets, braces, strings and quoted names; -1 when it
// cannot tell (a comment, or no end), and the expression is parsed then.
// A text it delimits that does not parse as a whole is never in the
// table, so a wrong guess costs only the lookup.
func exprExtent(src string, pos int) int {
	depth := 0
	for i := pos; i < len(src); i++ {
		switch c := src[i]; c {
		case '(', '[', '{':
			depth++
		case ')', '}':
			depth--
		case ']':
			if depth == 0 {
				return i
			}
			depth--
		case ';':
			if depth == 0 {
				return i
			}
		case '"', '\'':
			for i++; i < len(src) && src[i] != c; i++ {
				if src[i] == '\\' {
					i++
				}
			}
		case '/':
			if i+1 < len(src) && (src[i+1] == '/' || src[i+1] == '*') {
				return -1
			}
		}
		if depth < 0 {
			return -1
		}
	}
	return -1
}

// trimSpaceRight drops the white space the lexer skips from the end of s.
func trimSpaceRight(s string) string {
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}
