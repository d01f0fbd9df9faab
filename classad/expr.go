package classad

import (
	"math"
	"strings"
	"sync/atomic"
)

// opcode identifies the kind of an expression node.
type opcode uint8

const (
	opLit     opcode = iota // literal value
	opRef                   // bare attribute name: MY, then enclosing ads, then TARGET
	opScoped                // MY.x, TARGET.x, PARENT.x, .x
	opSelect                // expr.x
	opScopeAd               // MY, TARGET or PARENT on its own: the ad itself
	opCall
	opList
	opAdLit
	opTernary
	opElvis
	opSubscript

	// unary operators
	opNeg
	opPos
	opNot
	opBitNot

	// binary operators
	opMul
	opDiv
	opMod
	opAdd
	opSub
	opShl
	opShr
	opUShr
	opLT
	opLE
	opGT
	opGE
	opEQ
	opNE
	opMetaEQ
	opMetaNE
	opBitAnd
	opBitXor
	opBitOr
	opAnd
	opOr
)

// scope says where a scoped reference (or a scope keyword on its own)
// looks.
type scope uint8

const (
	scopeMy     scope = iota // MY: the ad being evaluated
	scopeTarget              // TARGET: the other ad
	scopeParent              // PARENT: the enclosing ad, or the chained parent ad
	scopeRoot                // a leading dot: the top-level ad
)

// Precedence levels, high binds tighter (HTCondor's table, REFERENCE §9).
const (
	precTernary = iota
	precOr
	precAnd
	precBitOr
	precBitXor
	precBitAnd
	precEquality
	precRelational
	precShift
	precAdditive
	precMultiplicative
	precUnary
	precElvis
	precPostfix
	precPrimary
)

func (op opcode) prec() int {
	switch op {
	case opTernary:
		return precTernary
	case opOr:
		return precOr
	case opAnd:
		return precAnd
	case opBitOr:
		return precBitOr
	case opBitXor:
		return precBitXor
	case opBitAnd:
		return precBitAnd
	case opEQ, opNE, opMetaEQ, opMetaNE:
		return precEquality
	case opLT, opLE, opGT, opGE:
		return precRelational
	case opShl, opShr, opUShr:
		return precShift
	case opAdd, opSub:
		return precAdditive
	case opMul, opDiv, opMod:
		return precMultiplicative
	case opNeg, opPos, opNot, opBitNot:
		return precUnary
	case opElvis:
		return precElvis
	case opSelect, opSubscript, opScoped:
		return precPostfix
	}
	return precPrimary
}

// node is one vertex of a compiled expression. Nodes are immutable once
// built, so expressions can be evaluated from many goroutines at once.
type node struct {
	op     opcode
	scope  scope
	fn     fnID
	parens uint16 // how many pairs of parentheses were written around the node
	height int32
	val    Value  // opLit
	name   string // attribute or function name as written
	prefix string // opScoped, opScopeAd: the scope keyword as written
	key    string // lower-case attribute name
	hash   uint64 // hash of key
	a      *node  // operand, condition, base of a selection or subscript
	b      *node
	c      *node
	args   []*node        // opCall arguments, opList elements
	chain  []*node        // opAnd, opOr: the operands of a chain a && b && c, in order
	ad     *Ad            // opAdLit
	re     *compiledRegex // opCall of a regex function with a literal pattern
	sig    uint64         // structural hash of the subtree
}

// Expr is a compiled ClassAd expression. It is immutable and safe for
// concurrent evaluation.
type Expr struct {
	root *node
}

// Literal returns an expression that evaluates to v. A list or ad value
// becomes a list or ad literal, so that the expression prints and reads
// back as itself.
func Literal(v Value) *Expr {
	if e := sharedLiteral(v); e != nil {
		return e
	}
	return &Expr{root: literalNode(v, 0)}
}

func literalNode(v Value, depth int) *node {
	switch {
	case v.k == ListKind && depth < maxNesting:
		l := v.comp().list
		n := &node{op: opList, args: make([]*node, len(l))}
		for i, e := range l {
			n.args[i] = literalNode(e, depth+1)
		}
		return finish(n)
	case v.k == AdKind && depth < maxNesting:
		return finish(&node{op: opAdLit, ad: v.comp().ad.Flatten()})
	}
	n := &node{op: opLit, val: v}
	return finish(n)
}

// MustParseExpr is ParseExpr for constants and tests: it panics on a
// syntax error.
func MustParseExpr(src string) *Expr {
	e, err := ParseExpr(src)
	if err != nil {
		panic(err)
	}
	return e
}

// String prints e in canonical new ClassAd syntax; the text parses back to
// an identical expression.
func (e *Expr) String() string {
	if e == nil {
		return "undefined"
	}
	var b strings.Builder
	p := printer{b: &b}
	p.node(e.root, 0)
	return b.String()
}

// Equal reports whether e and f are the same expression: same structure,
// names compared case-insensitively, literals with Value.Equal.
func (e *Expr) Equal(f *Expr) bool {
	if e == nil || f == nil {
		return e == f
	}
	return sameNode(e.root, f.root)
}

// IsLiteral reports whether e is a scalar literal (not a list or ad
// literal) and returns its value.
func (e *Expr) IsLiteral() (Value, bool) {
	if e == nil || e.root.op != opLit {
		return Value{}, false
	}
	return e.root.val, true
}

// UnknownFunctions lists the functions e calls that this package does not
// know; such calls evaluate to error.
func (e *Expr) UnknownFunctions() []string {
	var out []string
	walk(e.root, func(n *node) {
		if n.op == opCall && n.fn == fnUnknown {
			out = append(out, n.name)
		}
	})
	return out
}

// walk visits every node of the tree under n, including the expressions
// of nested ad literals.
func walk(n *node, f func(*node)) {
	if n == nil {
		return
	}
	f(n)
	walk(n.a, f)
	walk(n.b, f)
	walk(n.c, f)
	for _, x := range n.args {
		walk(x, f)
	}
	if n.ad != nil {
		for i := range n.ad.attrs {
			walk(n.ad.attrs[i].expr.root, f)
		}
	}
}

func sameNode(x, y *node) bool {
	if x == y {
		return true
	}
	if x == nil || y == nil || x.op != y.op || x.parens != y.parens || x.sig != y.sig {
		return false
	}
	switch x.op {
	case opLit:
		return x.val.Equal(y.val)
	case opRef:
		return x.key == y.key
	case opScoped:
		return x.scope == y.scope && x.key == y.key
	case opSelect:
		return x.key == y.key && sameNode(x.a, y.a)
	case opScopeAd:
		return x.scope == y.scope
	case opCall:
		if !strings.EqualFold(x.name, y.name) {
			return false
		}
		fallthrough
	case opList:
		if len(x.args) != len(y.args) {
			return false
		}
		for i := range x.args {
			if !sameNode(x.args[i], y.args[i]) {
				return false
			}
		}
		return true
	case opAdLit:
		return x.ad.Equal(y.ad)
	}
	return sameNode(x.a, y.a) && sameNode(x.b, y.b) && sameNode(x.c, y.c)
}

// FNV-1a, used for attribute-name lookups and structural signatures.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashString(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func mix(h, x uint64) uint64 {
	h ^= x
	h *= fnvPrime
	h ^= h >> 29
	return h
}

// nodeSig computes the structural hash of n from its children's.
func nodeSig(n *node) uint64 {
	h := mix(fnvOffset, uint64(n.op)+1+uint64(n.parens)<<8)
	switch n.op {
	case opLit:
		h = mix(h, valueSig(n.val))
	case opRef, opSelect:
		h = mix(h, n.hash)
	case opScoped:
		h = mix(mix(h, uint64(n.scope)), n.hash)
	case opScopeAd:
		h = mix(h, uint64(n.scope))
	case opCall:
		h = mix(h, hashString(asciiLower(n.name)))
	case opAdLit:
		h = mix(h, adSig(n.ad))
	}
	for _, k := range []*node{n.a, n.b, n.c} {
		if k != nil {
			h = mix(h, k.sig)
		}
	}
	for _, k := range n.args {
		h = mix(h, k.sig)
	}
	return h
}

func valueSig(v Value) uint64 {
	h := mix(fnvOffset, uint64(v.k)+1)
	switch v.k {
	case BoolKind, IntKind, AbsTimeKind:
		h = mix(h, uint64(v.n))
	case RealKind, RelTimeKind:
		f := v.real()
		if f != f {
			f = math.NaN() // one bit pattern for every NaN
		}
		h = mix(h, math.Float64bits(f))
	case StringKind:
		h = mix(h, hashString(v.str()))
	case ListKind:
		for _, e := range v.comp().list {
			h = mix(h, valueSig(e))
		}
	case AdKind:
		h = mix(h, adSig(v.comp().ad))
	}
	return h
}

// adSig hashes an ad's own attributes independently of their order.
func adSig(a *Ad) uint64 {
	var sum uint64
	for i := range a.attrs {
		at := &a.attrs[i]
		sum += mix(at.hash, at.expr.root.sig)
	}
	return mix(fnvOffset, sum)
}

// asciiLower lower-cases ASCII letters, returning s itself when it has
// none. Attribute names compare like HTCondor's strcasecmp. A name with
// capitals is lowered once and remembered (lowered): a pool's ads use a
// few hundred names over and over, and lowering each anew at every Set,
// lookup and parse was a busy pool's most frequent allocation.
func asciiLower(s string) string {
	upper := false
	for i := 0; i < len(s) && !upper; i++ {
		upper = s[i] >= 'A' && s[i] <= 'Z'
	}
	if !upper {
		return s
	}
	if len(s) > maxLowered {
		return lowerCopy(s)
	}
	slot := &lowered[hashString(s)%uint64(len(lowered))]
	if p := slot.Load(); p != nil && p.name == s {
		return p.lower
	}
	l := lowerCopy(s)
	// A copy of s: s may be a slice of a whole parsed ad.
	slot.Store(&loweredName{name: strings.Clone(s), lower: l})
	return l
}

func lowerCopy(s string) string {
	b := []byte(s)
	for j, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[j] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// lowered is a lossy table of names and their lower-case forms, by hash:
// a name whose place another took is lowered anew. Its places are atomic,
// so evaluations on many goroutines share it without a lock.
var lowered [4096]atomic.Pointer[loweredName]

type loweredName struct{ name, lower string }

// maxLowered is the longest name lowered remembers.
const maxLowered = 64
