package classad

import (
	"strings"
)

// Ad is a ClassAd: an ordered set of named expressions. Names are
// case-insensitive; each keeps the spelling it was last set with, and
// printing keeps insertion order.
//
// An ad may be chained to a parent ad (SetParent), as HTCondor chains a
// proc ad to its cluster ad: lookups that miss fall through to the
// parent, and an inherited expression is evaluated with the child as MY.
//
// Concurrency: reading and evaluating an ad from many goroutines at once
// is safe; modifying it (Set, Delete, SetParent) must not overlap any
// other use of it or of an ad chained to it.
type Ad struct {
	attrs  []attr
	index  []slot // open addressing over attrs by key hash
	parent *Ad
}

// slot is one entry of an ad's index: the top half of the hash of an
// attribute's key and the attribute's position plus one (0 marks an empty
// slot). Keeping part of the hash here lets a probe skip other attributes
// without loading them.
type slot struct {
	hash uint32
	at   int32
}

type attr struct {
	name string // as written
	key  string // lower case
	hash uint64
	expr *Expr
	// lit is the value of a literal expression, kept here so that reading
	// it touches no memory beyond the index and this entry.
	lit   Value
	isLit bool
}

func newAttr(name, key string, hash uint64, e *Expr) attr {
	at := attr{name: name, key: key, hash: hash, expr: e}
	if e.root.op == opLit {
		at.lit, at.isLit = e.root.val, true
	}
	return at
}

// NewAd returns an empty ad.
func NewAd() *Ad { return &Ad{} }

// NewAdSize returns an empty ad with room for n attributes: building an
// ad of known size then allocates its attribute table and index once.
func NewAdSize(n int) *Ad {
	a := &Ad{attrs: make([]attr, 0, max(n, 0))}
	size := 8
	for size < 2*n+2 {
		size *= 2
	}
	a.index = make([]slot, size)
	return a
}

// lookup finds an attribute by lower-case key, following the parent
// chain. It is nil-safe.
func (a *Ad) lookup(key string, hash uint64) *attr {
	for ; a != nil; a = a.parent {
		if at := a.own(key, hash); at != nil {
			return at
		}
	}
	return nil
}

// own finds an attribute of a itself.
func (a *Ad) own(key string, hash uint64) *attr {
	if len(a.index) == 0 {
		return nil
	}
	mask := uint64(len(a.index) - 1)
	top := uint32(hash >> 32)
	for i := hash & mask; ; i = (i + 1) & mask {
		s := a.index[i]
		if s.at == 0 {
			return nil
		}
		if s.hash == top {
			if at := &a.attrs[s.at-1]; at.key == key {
				return at
			}
		}
	}
}

func (a *Ad) reindex() {
	size := 8
	for size < 2*len(a.attrs)+2 {
		size *= 2
	}
	if len(a.index) != size {
		a.index = make([]slot, size)
	} else {
		clear(a.index)
	}
	mask := uint64(size - 1)
	for n := range a.attrs {
		h := a.attrs[n].hash
		i := h & mask
		for a.index[i].at != 0 {
			i = (i + 1) & mask
		}
		a.index[i] = slot{hash: uint32(h >> 32), at: int32(n + 1)}
	}
}

// Set binds name to e, replacing any attribute of that name (in place,
// taking the new spelling). A nil e deletes the attribute. The
// expression is shared, not copied: expressions are immutable.
func (a *Ad) Set(name string, e *Expr) {
	if e == nil {
		a.Delete(name)
		return
	}
	key := asciiLower(name)
	h := hashString(key)
	if at := a.own(key, h); at != nil {
		*at = newAttr(name, key, h, e)
		return
	}
	a.attrs = append(a.attrs, newAttr(name, key, h, e))
	if 2*len(a.attrs)+2 > len(a.index) {
		a.reindex()
		return
	}
	mask := uint64(len(a.index) - 1)
	i := h & mask
	for a.index[i].at != 0 {
		i = (i + 1) & mask
	}
	a.index[i] = slot{hash: uint32(h >> 32), at: int32(len(a.attrs))}
}

// Reset empties a of its attributes and its parent and keeps the room
// they took, so that another ad can be built in its place without
// allocating it again. Nothing read from a before may be used after.
func (a *Ad) Reset() {
	clear(a.attrs) // drop what they point to
	a.attrs = a.attrs[:0]
	clear(a.index)
	a.parent = nil
}

// SetValue binds name to a literal of v.
func (a *Ad) SetValue(name string, v Value) { a.Set(name, Literal(v)) }

// SetInt binds name to an integer literal.
func (a *Ad) SetInt(name string, i int64) { a.SetValue(name, Int(i)) }

// SetReal binds name to a real literal.
func (a *Ad) SetReal(name string, f float64) { a.SetValue(name, Real(f)) }

// SetString binds name to a string literal.
func (a *Ad) SetString(name string, s string) { a.SetValue(name, String(s)) }

// SetBool binds name to a boolean literal.
func (a *Ad) SetBool(name string, b bool) { a.SetValue(name, Bool(b)) }

// SetExpr parses src and binds name to it. The error wraps the
// *SyntaxError.
func (a *Ad) SetExpr(name, src string) error {
	e, err := ParseExpr(src)
	if err != nil {
		return &AttrError{Attr: name, Err: err}
	}
	a.Set(name, e)
	return nil
}

// AttrError is an error about one attribute of an ad.
type AttrError struct {
	Attr string
	Err  error
}

func (e *AttrError) Error() string { return "attribute " + e.Attr + ": " + e.Err.Error() }

func (e *AttrError) Unwrap() error { return e.Err }

// Lookup returns the expression bound to name, looking in the parent
// chain when a has no such attribute.
func (a *Ad) Lookup(name string) (*Expr, bool) {
	key := asciiLower(name)
	if at := a.lookup(key, hashString(key)); at != nil {
		return at.expr, true
	}
	return nil, false
}

// Has reports whether a itself (not its parent) binds name.
func (a *Ad) Has(name string) bool {
	key := asciiLower(name)
	return a.own(key, hashString(key)) != nil
}

// Delete removes name from a itself; a parent's attribute of that name
// shows through afterwards.
func (a *Ad) Delete(name string) {
	key := asciiLower(name)
	at := a.own(key, hashString(key))
	if at == nil {
		return
	}
	i := 0
	for &a.attrs[i] != at {
		i++
	}
	copy(a.attrs[i:], a.attrs[i+1:])
	a.attrs[len(a.attrs)-1] = attr{}
	a.attrs = a.attrs[:len(a.attrs)-1]
	a.reindex()
}

// Names returns the names of a's own attributes in insertion order, as
// spelled.
func (a *Ad) Names() []string {
	out := make([]string, len(a.attrs))
	for i := range a.attrs {
		out[i] = a.attrs[i].name
	}
	return out
}

// FlatNames is the names Flatten's ad would have, in its order: a's own
// attributes, then those it inherits and does not override. No copy of
// the attributes is made.
func (a *Ad) FlatNames() []string {
	var out []string
	a.each(true, func(at *attr) { out = append(out, at.name) })
	return out
}

// FlatNamesWhere is FlatNames of the names keep accepts. keep is asked
// first, so a reader after a few names does not pay for finding which of
// the others an ad nearer a shadows.
func (a *Ad) FlatNamesWhere(keep func(name string) bool) []string {
	var out []string
	a.eachWhere(true, keep, func(at *attr) { out = append(out, at.name) })
	return out
}

// Len is the number of a's own attributes.
func (a *Ad) Len() int { return len(a.attrs) }

// SetParent chains a to p (nil unchains). A parent whose own chain
// already leads to a would make lookups loop; such a p is ignored.
func (a *Ad) SetParent(p *Ad) {
	for q := p; q != nil; q = q.parent {
		if q == a {
			return
		}
	}
	a.parent = p
}

// Parent returns the ad a is chained to, or nil.
func (a *Ad) Parent() *Ad { return a.parent }

// Copy returns a copy of a's own attributes, chained to the same parent.
// Expressions are shared (they are immutable).
func (a *Ad) Copy() *Ad {
	b := &Ad{attrs: make([]attr, len(a.attrs)), parent: a.parent}
	copy(b.attrs, a.attrs)
	b.index = append([]slot(nil), a.index...)
	return b
}

// Flatten returns one unchained ad holding a's own attributes followed by
// the inherited ones it does not override.
func (a *Ad) Flatten() *Ad {
	n := len(a.attrs) // at most this many, made at once
	for p := a.parent; p != nil; p = p.parent {
		n += len(p.attrs)
	}
	b := NewAdSize(n)
	a.each(true, func(at *attr) { b.Set(at.name, at.expr) })
	return b
}

// each calls f for a's own attributes in order and, with flat, then for
// the inherited attributes a does not override.
func (a *Ad) each(flat bool, f func(*attr)) { a.eachWhere(flat, nil, f) }

// eachWhere is each of the attributes whose names keep accepts (nil: all).
// keep is asked before an inherited attribute is looked up, so a filter
// that takes few names does not pay for finding which ones are shadowed.
func (a *Ad) eachWhere(flat bool, keep func(name string) bool, f func(*attr)) {
	for i := range a.attrs {
		if keep == nil || keep(a.attrs[i].name) {
			f(&a.attrs[i])
		}
	}
	if !flat || a.parent == nil {
		return
	}
	for p := a.parent; p != nil; p = p.parent {
		for i := range p.attrs {
			at := &p.attrs[i]
			if (keep == nil || keep(at.name)) && a.lookup(at.key, at.hash) == at {
				f(at)
			}
		}
	}
}

// Eval evaluates attribute name with a as MY and no TARGET, without a
// clock (see EvalOptions). A missing attribute is undefined.
func (a *Ad) Eval(name string) Value { return evalAttrIn(a, name, nil, nil) }

// EvalIn evaluates attribute name with a as MY and target as TARGET.
func (a *Ad) EvalIn(name string, target *Ad) Value { return evalAttrIn(a, name, target, nil) }

// EvalWith evaluates attribute name with a as MY and target as TARGET
// under opts.
func (a *Ad) EvalWith(name string, target *Ad, opts *EvalOptions) Value {
	return evalAttrIn(a, name, target, opts)
}

// EvalInt evaluates name and returns it if it is an integer.
func (a *Ad) EvalInt(name string) (int64, bool) { return a.Eval(name).IntValue() }

// EvalString evaluates name and returns it if it is a string.
func (a *Ad) EvalString(name string) (string, bool) { return a.Eval(name).StringValue() }

// EvalBool evaluates name and returns whether it counts as true, the way
// HTCondor's EvalBool does: ok is false unless the value is a boolean or
// a number (non-zero meaning true).
func (a *Ad) EvalBool(name string) (b, ok bool) { return a.Eval(name).boolEquiv() }

// String prints a in new ClassAd syntax on one line, inherited
// attributes included: [ A = 1; B = "x" ].
func (a *Ad) String() string {
	var b strings.Builder
	p := printer{b: &b}
	p.ad(a, true)
	return b.String()
}

// TextAttr is one attribute as String prints it.
type TextAttr struct {
	Key  string // the attribute's name in lower case
	Text string // Name = expr
}

// TextAttrs returns the attributes String writes for a, in its order and
// form: its own, then each parent's that no nearer ad shadows. String's
// text is "[ ", the texts joined by "; ", and " ]", so a caller may render
// an ad's attributes once and write them many times.
func (a *Ad) TextAttrs() []TextAttr {
	var out []TextAttr
	var b strings.Builder
	p := printer{b: &b}
	a.each(true, func(at *attr) {
		b.Reset()
		p.name(at.name)
		p.str(" = ")
		p.node(at.expr.root, 0)
		out = append(out, TextAttr{Key: at.key, Text: b.String()})
	})
	return out
}

// AppendString appends s as a string literal, quoted as String quotes
// strings.
func AppendString(dst []byte, s string) []byte {
	var b strings.Builder
	p := printer{b: &b}
	p.quote(s, '"')
	return append(dst, b.String()...)
}

// OwnString prints a's own attributes in new ClassAd syntax on one line,
// without those it inherits from its parent.
func (a *Ad) OwnString() string {
	var b strings.Builder
	p := printer{b: &b}
	p.ad(a, false)
	return b.String()
}

// LongString prints a in the old syntax of condor_q -long: one
// "Name = expr" line per attribute, inherited attributes included.
// Strings use old-syntax quoting, where a backslash escapes only '"'.
func (a *Ad) LongString() string {
	var b strings.Builder
	p := printer{b: &b, old: true}
	a.each(true, func(at *attr) {
		if needsQuoting(at.name) && !oldNameOK(at.name) {
			p.quote(at.name, '\'')
		} else {
			b.WriteString(at.name)
		}
		b.WriteString(" = ")
		p.node(at.expr.root, 0)
		b.WriteByte('\n')
	})
	return b.String()
}

// oldNameOK reports whether the old syntax, which takes everything before
// the first '=' as the name, can carry name unquoted.
func oldNameOK(name string) bool {
	return name != "" && strings.TrimSpace(name) == name && name[0] != '#' && name[0] != '\'' &&
		!strings.ContainsAny(name, "=\n\r")
}

// Equal reports whether a and b bind the same names (ignoring case) to
// identical expressions, inherited attributes included; order does not
// matter.
func (a *Ad) Equal(b *Ad) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	n := 0
	same := true
	a.each(true, func(at *attr) {
		n++
		if !same {
			return
		}
		bt := b.lookup(at.key, at.hash)
		same = bt != nil && at.expr.Equal(bt.expr)
	})
	if !same {
		return false
	}
	m := 0
	b.each(true, func(*attr) { m++ })
	return n == m
}
