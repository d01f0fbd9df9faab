package classad

import (
	"math/rand/v2"
	"time"
)

// EvalOptions supplies what an evaluation may not take from the
// process: the clock, randomness and the local time zone, plus limits.
// A nil *EvalOptions, or a zero field, means "none": time(), CurrentTime,
// absTime() and formatTime() without a time argument, and random(),
// evaluate to error rather than reading the wall clock or a global
// random source, so evaluation is deterministic unless the caller says
// otherwise.
type EvalOptions struct {
	// Now reads the clock for time(), CurrentTime, absTime() and
	// formatTime().
	Now func() time.Time
	// Rand feeds random(). The evaluation calls Rand.Uint64 from the
	// goroutine that called Eval; a source shared between goroutines
	// must be safe for that.
	Rand rand.Source
	// Location is the "local" time zone of HTCondor's time functions:
	// the offset of absTime(t) and the zone formatTime() prints in.
	// Nil means UTC.
	Location *time.Location
	// Strict is HTCondor's STRICT_CLASSAD_EVALUATION: a bare attribute
	// name is looked up only in MY (and enclosing ads), never in TARGET,
	// and CurrentTime is an ordinary attribute.
	Strict bool
	// MaxSteps bounds the work of one evaluation (expression nodes
	// visited, list elements and string bytes produced); past it the
	// evaluation yields error. Zero means DefaultMaxSteps.
	MaxSteps int
	// Debug, if set, receives the text and value of each argument of
	// debug().
	Debug func(expr string, v Value)
}

// DefaultMaxSteps is the work bound of one evaluation when
// EvalOptions.MaxSteps is zero.
const DefaultMaxSteps = 1_000_000

// maxEvalDepth bounds the recursion of one evaluation: nested
// expressions plus attribute references followed.
const maxEvalDepth = 10_000

// evalCtx is the state of one evaluation. It lives on the caller's stack;
// nothing shared is mutated while evaluating.
type evalCtx struct {
	opts  *EvalOptions
	steps int
	depth int
	// stack holds the attributes being evaluated, to detect cycles; past
	// its size, deep holds them all.
	stack [16]*attr
	nst   int
	deep  map[*attr]bool
}

// frame is the scope an expression is evaluated in.
type frame struct {
	my     *Ad        // MY: the ad whose attribute is being evaluated
	root   *Ad        // the top-level ad on MY's side (".x")
	target *Ad        // TARGET: the other ad
	lex    *scopeLink // ads enclosing my, for nested ad literals
}

// noOptions stands in for a nil *EvalOptions; it is never modified.
var noOptions EvalOptions

func (c *evalCtx) init(opts *EvalOptions) {
	if opts == nil {
		opts = &noOptions
	}
	c.opts = opts
	c.steps = opts.MaxSteps
	if c.steps <= 0 {
		c.steps = DefaultMaxSteps
	}
}

// Eval evaluates e with my as MY and target as TARGET (either may be
// nil), without a clock or random source (see EvalOptions).
func (e *Expr) Eval(my, target *Ad) Value { return e.EvalWith(my, target, nil) }

// EvalWith evaluates e with my as MY and target as TARGET under opts.
// It never fails: problems are the error value. It is safe to call
// concurrently as long as no ad involved is being modified.
func (e *Expr) EvalWith(my, target *Ad, opts *EvalOptions) Value {
	if e == nil {
		return Value{}
	}
	var c evalCtx
	c.init(opts)
	f := frame{my: my, root: my, target: target}
	return c.result(c.ev(e.root, &f))
}

// result is the value of a whole evaluation: error if the evaluation ran
// out of steps anywhere, even where the shortfall was absorbed (an
// element of a list, the left side of an elvis).
func (c *evalCtx) result(v Value) Value {
	if c.steps < 0 {
		return Error()
	}
	return v
}

// evalAttrIn evaluates attribute name of my with target as TARGET.
func evalAttrIn(my *Ad, name string, target *Ad, opts *EvalOptions) Value {
	if my == nil {
		return Value{}
	}
	key := asciiLower(name)
	at := my.lookup(key, hashString(key))
	if at == nil {
		return Value{}
	}
	var c evalCtx
	c.init(opts)
	f := frame{my: my, root: my, target: target}
	return c.result(c.attrValue(at, &f))
}

// spend charges n steps and reports whether the budget still holds.
func (c *evalCtx) spend(n int) bool {
	c.steps -= n
	return c.steps >= 0
}

// push marks at as being evaluated; false means at is already being
// evaluated: a reference cycle.
func (c *evalCtx) push(at *attr) bool {
	if c.deep != nil {
		if c.deep[at] {
			return false
		}
		c.deep[at] = true
		c.nst++
		return true
	}
	for i := 0; i < c.nst; i++ {
		if c.stack[i] == at {
			return false
		}
	}
	if c.nst < len(c.stack) {
		c.stack[c.nst] = at
		c.nst++
		return true
	}
	c.deep = make(map[*attr]bool, 2*len(c.stack))
	for _, x := range c.stack {
		c.deep[x] = true
	}
	c.deep[at] = true
	c.nst++
	return true
}

// pop ends the evaluation of at, the attribute last pushed.
func (c *evalCtx) pop(at *attr) {
	c.nst--
	if c.deep != nil {
		delete(c.deep, at)
		if c.nst <= len(c.stack) {
			c.deep = nil // the stack array holds the first entries still
		}
	}
}

// attrValue evaluates the expression of attribute at in frame f.
func (c *evalCtx) attrValue(at *attr, f *frame) Value {
	if at.isLit {
		return at.lit
	}
	if !c.push(at) {
		return Error()
	}
	v := c.eval(at.expr.root, f)
	c.pop(at)
	return v
}

// ev evaluates n, answering literals without a call. It is small enough
// to be inlined at every operand.
func (c *evalCtx) ev(n *node, f *frame) Value {
	if n.op == opLit {
		return n.val
	}
	return c.eval(n, f)
}

// eval evaluates n in frame f.
func (c *evalCtx) eval(n *node, f *frame) Value {
	c.steps--
	c.depth++
	var v Value
	if c.steps < 0 || c.depth > maxEvalDepth {
		v = Error()
	} else {
		switch n.op {
		case opLit:
			v = n.val
		case opScoped:
			if n.scope == scopeTarget {
				v = c.targetRef(n, f)
			} else {
				v = c.scoped(n, f)
			}
		case opRef:
			v = c.ref(n, f)
		case opAnd:
			v = c.and(n, f)
		case opOr:
			v = c.or(n, f)
		case opEQ, opNE, opLT, opLE, opGT, opGE:
			v = c.compare(n, f)
		case opMetaEQ, opMetaNE:
			v = identical(n.op, c.ev(n.a, f), c.ev(n.b, f))
		case opAdd, opSub, opMul, opDiv, opMod:
			v = arith(n.op, c.ev(n.a, f), c.ev(n.b, f))
		case opBitAnd, opBitOr, opBitXor, opShl, opShr, opUShr:
			v = bitwise(n.op, c.ev(n.a, f), c.ev(n.b, f))
		case opNeg, opPos, opNot, opBitNot:
			v = unary(n.op, c.ev(n.a, f))
		case opTernary:
			v = c.ternary(n, f)
		case opElvis:
			v = c.ev(n.a, f)
			if v.k == UndefinedKind {
				v = c.ev(n.b, f)
			}
		case opSelect:
			v = c.selectAttr(c.ev(n.a, f), n, f)
		case opSubscript:
			v = c.subscript(n, f)
		case opScopeAd:
			v = c.scopeAd(n, f)
		case opList:
			v = c.list(n, f)
		case opAdLit:
			v = Value{k: AdKind, x: &composite{ad: n.ad, scope: enclose(f)}}
		case opCall:
			v = c.call(n, f)
		default:
			v = Error()
		}
	}
	c.depth--
	return v
}

// compare evaluates a comparison, with the common cases (two integers,
// two strings) inline.
func (c *evalCtx) compare(n *node, f *frame) Value {
	a := c.ev(n.a, f)
	b := c.ev(n.b, f)
	if a.k == b.k {
		switch a.k {
		case IntKind:
			switch n.op {
			case opEQ:
				return Bool(a.n == b.n)
			case opNE:
				return Bool(a.n != b.n)
			case opLT:
				return Bool(a.n < b.n)
			case opLE:
				return Bool(a.n <= b.n)
			case opGT:
				return Bool(a.n > b.n)
			default:
				return Bool(a.n >= b.n)
			}
		case StringKind:
			switch n.op {
			case opEQ:
				return Bool(foldEqual(a.str(), b.str()))
			case opNE:
				return Bool(!foldEqual(a.str(), b.str()))
			}
		}
	}
	return compare(n.op, a, b)
}

// targetRef resolves TARGET.x.
func (c *evalCtx) targetRef(n *node, f *frame) Value {
	at := f.target.lookup(n.key, n.hash)
	if at == nil {
		return Value{}
	}
	if at.isLit {
		return at.lit
	}
	nf := frame{my: f.target, root: f.target, target: f.root}
	return c.attrValue(at, &nf)
}

// enclose returns the lexical scope chain for an ad literal evaluated in f.
func enclose(f *frame) *scopeLink {
	if f.my == nil {
		return f.lex
	}
	return &scopeLink{ad: f.my, up: f.lex}
}

// ref resolves a bare name: MY, then the ads enclosing MY, then TARGET,
// then CurrentTime.
func (c *evalCtx) ref(n *node, f *frame) Value {
	if at := f.my.lookup(n.key, n.hash); at != nil {
		return c.attrValue(at, f)
	}
	for l := f.lex; l != nil; l = l.up {
		if at := l.ad.lookup(n.key, n.hash); at != nil {
			if at.isLit {
				return at.lit
			}
			nf := frame{my: l.ad, root: f.root, target: f.target, lex: l.up}
			return c.attrValue(at, &nf)
		}
	}
	if c.opts.Strict {
		return Value{}
	}
	if at := f.target.lookup(n.key, n.hash); at != nil {
		if at.isLit {
			return at.lit
		}
		nf := frame{my: f.target, root: f.target, target: f.root}
		return c.attrValue(at, &nf)
	}
	if n.key == "currenttime" {
		return c.now()
	}
	return Value{}
}

func (c *evalCtx) now() Value {
	if c.opts.Now == nil {
		return Error()
	}
	return Int(c.opts.Now().Unix())
}

// scoped resolves MY.x, TARGET.x, PARENT.x and .x.
func (c *evalCtx) scoped(n *node, f *frame) Value {
	var nf frame
	switch n.scope {
	case scopeMy:
		if at := f.my.lookup(n.key, n.hash); at != nil {
			return c.attrValue(at, f)
		}
		return Value{}
	case scopeTarget:
		return c.targetRef(n, f)
	case scopeRoot:
		at := f.root.lookup(n.key, n.hash)
		if at == nil {
			return Value{}
		}
		nf = frame{my: f.root, root: f.root, target: f.target}
		return c.attrValue(at, &nf)
	default: // scopeParent
		p, up := parentOf(f)
		at := p.lookup(n.key, n.hash)
		if at == nil {
			return Value{}
		}
		nf = frame{my: p, root: f.root, target: f.target, lex: up}
		return c.attrValue(at, &nf)
	}
}

// parentOf returns PARENT in frame f: the ad enclosing MY if MY is a
// nested ad, else MY's chained parent ad.
func parentOf(f *frame) (*Ad, *scopeLink) {
	if f.lex != nil {
		return f.lex.ad, f.lex.up
	}
	if f.my != nil {
		return f.my.parent, nil
	}
	return nil, nil
}

func (c *evalCtx) scopeAd(n *node, f *frame) Value {
	switch n.scope {
	case scopeMy:
		if f.my == nil {
			return Value{}
		}
		return Value{k: AdKind, x: &composite{ad: f.my, scope: f.lex}}
	case scopeTarget:
		return AdValue(f.target)
	default:
		p, up := parentOf(f)
		if p == nil {
			return Value{}
		}
		return Value{k: AdKind, x: &composite{ad: p, scope: up}}
	}
}

// selectAttr evaluates base.name for an already evaluated base.
func (c *evalCtx) selectAttr(base Value, n *node, f *frame) Value {
	switch base.k {
	case AdKind:
		ad := base.comp().ad
		at := ad.lookup(n.key, n.hash)
		if at == nil {
			return Value{}
		}
		var nf frame
		switch ad {
		case f.target:
			nf = frame{my: ad, root: ad, target: f.root}
		case f.root:
			nf = frame{my: ad, root: ad, target: f.target}
		default:
			nf = frame{my: ad, root: f.root, target: f.target, lex: base.comp().scope}
		}
		return c.attrValue(at, &nf)
	case ListKind:
		// Selecting from a list selects from each of its elements.
		src := base.comp().list
		if !c.spend(len(src)) {
			return Error()
		}
		out := make([]Value, len(src))
		for i, e := range src {
			out[i] = c.selectAttr(e, n, f)
		}
		return listOwned(out)
	case UndefinedKind:
		return Value{}
	}
	return Error()
}

func (c *evalCtx) subscript(n *node, f *frame) Value {
	a, b := c.ev(n.a, f), c.ev(n.b, f)
	if v, done := strict2(a, b); done {
		return v
	}
	switch {
	case a.k == ListKind && b.k == IntKind:
		if b.n < 0 || b.n >= int64(len(a.comp().list)) {
			return Error()
		}
		return a.comp().list[b.n]
	case a.k == AdKind && b.k == StringKind:
		key := asciiLower(b.str())
		sel := node{key: key, hash: hashString(key)}
		return c.selectAttr(a, &sel, f)
	}
	return Error()
}

func (c *evalCtx) list(n *node, f *frame) Value {
	if len(n.args) == 0 {
		return listOwned(nil)
	}
	if !c.spend(len(n.args)) {
		return Error()
	}
	out := make([]Value, len(n.args))
	for i, a := range n.args {
		out[i] = c.ev(a, f)
	}
	return listOwned(out)
}

// and is HTCondor's non-strict &&, folded left to right over the chain
// a && b && c: false && x is false and error && x is error without
// evaluating x; undefined && false is false; a string, list or ad is
// error.
func (c *evalCtx) and(n *node, f *frame) Value {
	r := c.ev(n.chain[0], f)
	for _, x := range n.chain[1:] {
		rb, rok := r.boolEquiv()
		if rok && !rb {
			return Bool(false)
		}
		if r.k == ErrorKind {
			return r
		}
		b := c.ev(x, f)
		bb, bok := b.boolEquiv()
		switch {
		case !rok && r.k != UndefinedKind:
			r = Error()
		case !bok && b.k != UndefinedKind && b.k != ErrorKind:
			r = Error()
		case rok: // r is true
			if bok {
				r = Bool(bb)
			} else {
				r = b
			}
		case !bok: // r is undefined
			r = b
		case !bb:
			r = Bool(false)
		default:
			r = Value{}
		}
	}
	return r
}

// or is HTCondor's non-strict ||, folded like and: true || x is true and
// error || x is error without evaluating x; undefined || true is true.
func (c *evalCtx) or(n *node, f *frame) Value {
	r := c.ev(n.chain[0], f)
	for _, x := range n.chain[1:] {
		rb, rok := r.boolEquiv()
		if rok && rb {
			return Bool(true)
		}
		if r.k == ErrorKind {
			return r
		}
		b := c.ev(x, f)
		bb, bok := b.boolEquiv()
		switch {
		case !rok && r.k != UndefinedKind:
			r = Error()
		case !bok && b.k != UndefinedKind && b.k != ErrorKind:
			r = Error()
		case rok: // r is false
			if bok {
				r = Bool(bb)
			} else {
				r = b
			}
		case !bok: // r is undefined
			r = b
		case bb:
			r = Bool(true)
		default:
			r = Value{}
		}
	}
	return r
}

// ternary: c ? a : b is undefined for an undefined c, error for an error
// or a non-boolean, non-numeric c.
func (c *evalCtx) ternary(n *node, f *frame) Value {
	cond := c.ev(n.a, f)
	if cond.k == UndefinedKind {
		return cond
	}
	b, ok := cond.boolEquiv()
	if !ok {
		return Error()
	}
	if b {
		return c.ev(n.b, f)
	}
	return c.ev(n.c, f)
}
