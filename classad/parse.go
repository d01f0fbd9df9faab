package classad

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxNesting bounds both the parser's recursion and the height of a
// parsed tree (a chain of 1000 binary operators is as deep as 1000
// parentheses), so no input can exhaust the stack while parsing,
// printing or evaluating.
const maxNesting = 1000

// SyntaxError reports an expression or ad that does not parse. Callers
// add the file and line it came from by wrapping it.
type SyntaxError struct {
	// Expr is the text that failed to parse; for input of several lines,
	// the line holding the error.
	Expr string
	// Line is the 1-based line of the error in input of several lines, 0
	// for one-line input.
	Line int
	// Col is the 1-based column of the error within Expr, in characters.
	Col int
	// Msg says what is wrong.
	Msg string
	// Offset is the byte offset of the error in the whole input.
	Offset int
}

func (e *SyntaxError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	b.WriteString("expression ")
	if r := []rune(e.Expr); len(r) > maxQuotedExpr {
		// A huge expression is shown around the error only: quoted
		// whole, it would bury the message.
		from := min(max(e.Col-1-maxQuotedExpr/2, 0), len(r)-maxQuotedExpr)
		b.WriteString("of ")
		b.WriteString(strconv.Itoa(len(r)))
		b.WriteString(" characters, columns ")
		b.WriteString(strconv.Itoa(from + 1))
		b.WriteString(" to ")
		b.WriteString(strconv.Itoa(from + maxQuotedExpr))
		b.WriteString(" ")
		b.WriteString(strconv.Quote(string(r[from : from+maxQuotedExpr])))
	} else {
		b.WriteString(strconv.Quote(e.Expr))
	}
	b.WriteString(": column ")
	b.WriteString(strconv.Itoa(e.Col))
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// maxQuotedExpr is how much of an expression (in characters) a
// SyntaxError quotes.
const maxQuotedExpr = 120

// locate fills in Expr, Line and Col of e from its Offset in src.
func (e *SyntaxError) locate(src string) *SyntaxError {
	off := e.Offset
	if off > len(src) {
		off = len(src)
	}
	if strings.IndexByte(src, '\n') < 0 {
		e.Expr, e.Line = src, 0
		e.Col = utf8.RuneCountInString(src[:off]) + 1
		return e
	}
	lineStart := strings.LastIndexByte(src[:off], '\n') + 1
	lineEnd := strings.IndexByte(src[off:], '\n')
	if lineEnd < 0 {
		lineEnd = len(src)
	} else {
		lineEnd += off
	}
	e.Line = strings.Count(src[:off], "\n") + 1
	e.Expr = strings.TrimRight(src[lineStart:lineEnd], "\r")
	e.Col = utf8.RuneCountInString(src[lineStart:off]) + 1
	return e
}

// ParseExpr compiles a ClassAd expression in new syntax. A syntax error
// is a *SyntaxError naming the column and what is wrong.
func ParseExpr(src string) (*Expr, error) {
	p := newParser(src, false)
	n := p.expr()
	p.end(n)
	if err := p.error(); err != nil {
		return nil, err
	}
	return &Expr{root: n}, nil
}

// end checks that the expression n used up the input.
func (p *parser) end(n *node) {
	switch {
	case n == nil || p.tok.kind == tEOF:
	case p.tok.kind == tAssign:
		p.fail(p.tok.pos, "unexpected '=' after the expression (use '==' to compare)")
	default:
		p.fail(p.tok.pos, "unexpected "+p.tok.describe()+" after the end of the expression")
	}
}

type parser struct {
	src   string
	lx    lexer
	tok   token
	depth int
	err   *SyntaxError
	nodes []node // storage for new nodes, allocated a chunk at a time
	// attrs, when positive, is about how many attributes the outermost
	// ad has (ParseAd counts its separators), so that its attribute
	// table is made once at its size, not grown an attribute at a time.
	attrs int
	// share: the outermost ad's expressions come from, and go to, the
	// shared table (ParseAd; shared.go).
	share bool
}

// alloc stores n in the parser's current chunk of nodes and returns its
// address; a parse then costs a few allocations rather than one per node.
func (p *parser) alloc(n node) *node {
	if len(p.nodes) == cap(p.nodes) {
		// A node is 200 bytes: the first chunk is sized to what is left
		// of the source (an expression has fewer nodes than a third of
		// its bytes, plus a couple), so that "16" does not cost 3 KiB.
		size := 16
		if p.nodes == nil {
			size = min(max((len(p.src)-p.lx.pos)/3+2, 2), 16)
		}
		p.nodes = make([]node, 0, size)
	}
	p.nodes = append(p.nodes, n)
	return &p.nodes[len(p.nodes)-1]
}

func newParser(src string, old bool) *parser { return newParserAt(src, 0, old) }

// newParserAt returns a parser of src starting at byte offset pos; error
// offsets stay relative to src.
func newParserAt(src string, pos int, old bool) *parser {
	p := &parser{src: src, lx: lexer{src: src, pos: pos, old: old, prev: tEOF}}
	p.advance()
	return p
}

func (p *parser) advance() { p.tok = p.lx.next() }

// fail records the first error; the lexer's error, if any, wins because it
// happened first.
func (p *parser) fail(pos int, msg string) {
	if p.err == nil && p.lx.err == nil {
		p.err = &SyntaxError{Msg: msg, Offset: pos}
	}
}

func (p *parser) error() *SyntaxError {
	e := p.lx.err
	if e == nil {
		e = p.err
	}
	if e == nil {
		return nil
	}
	return e.locate(p.src)
}

func (p *parser) failed() bool { return p.err != nil || p.lx.err != nil }

// unexpected reports the current token where an operand was needed.
func (p *parser) unexpected(what string) {
	switch p.tok.kind {
	case tEOF:
		p.fail(p.tok.pos, "unexpected end of expression, expected "+what)
	case tAssign:
		p.fail(p.tok.pos, "unexpected '=', expected "+what+" (use '==' to compare)")
	default:
		p.fail(p.tok.pos, "unexpected "+p.tok.describe()+", expected "+what)
	}
}

func (p *parser) enter() bool {
	p.depth++
	if p.depth > maxNesting {
		p.fail(p.tok.pos, "expression is nested too deeply (more than "+strconv.Itoa(maxNesting)+" levels)")
		return false
	}
	return true
}

func (p *parser) leave() { p.depth-- }

// mk builds a node, computing its height and signature; it fails when the
// tree grows deeper than maxNesting.
func (p *parser) mk(n *node, pos int) *node {
	h := int32(0)
	for _, k := range [...]*node{n.a, n.b, n.c} {
		if k != nil && k.height > h {
			h = k.height
		}
	}
	for _, k := range n.args {
		if k.height > h {
			h = k.height
		}
	}
	if n.ad != nil {
		for i := range n.ad.attrs {
			if x := n.ad.attrs[i].expr.root.height; x > h {
				h = x
			}
		}
	}
	n.height = h + 1
	if n.height > maxNesting {
		p.fail(pos, "expression is nested too deeply (more than "+strconv.Itoa(maxNesting)+" levels)")
		return nil
	}
	linkChain(n)
	n.sig = nodeSig(n)
	return n
}

// linkChain lists the operands of a chain of && (or of ||) in its top
// node, so that evaluation iterates instead of recursing. A chain is
// left-associative and unbroken by parentheses; the left operand's list
// is extended in place, which is safe because a node is the left operand
// of at most one other.
func linkChain(n *node) {
	if n.op != opAnd && n.op != opOr {
		return
	}
	if n.a.op == n.op && n.a.parens == 0 {
		n.chain = append(n.a.chain, n.b)
	} else {
		n.chain = []*node{n.a, n.b}
	}
}

// expr parses a full expression, including the conditional operator.
func (p *parser) expr() *node {
	if !p.enter() {
		return nil
	}
	defer p.leave()
	pos := p.tok.pos
	c := p.binary(precOr)
	if c == nil || p.tok.kind != tQuestion {
		return c
	}
	q := p.tok.pos
	p.advance()
	a := p.expr()
	if a == nil {
		return nil
	}
	if p.tok.kind != tColon {
		p.unexpected("':' to complete the '?' at column " + strconv.Itoa(utf8.RuneCountInString(p.src[:q])+1))
		return nil
	}
	p.advance()
	b := p.expr()
	if b == nil {
		return nil
	}
	return p.mk(p.alloc(node{op: opTernary, a: c, b: a, c: b}), pos)
}

func binaryOp(k tokKind) (opcode, bool) {
	switch k {
	case tOrOr:
		return opOr, true
	case tAndAnd:
		return opAnd, true
	case tPipe:
		return opBitOr, true
	case tCaret:
		return opBitXor, true
	case tAmp:
		return opBitAnd, true
	case tEQ:
		return opEQ, true
	case tNE:
		return opNE, true
	case tMetaEQ:
		return opMetaEQ, true
	case tMetaNE:
		return opMetaNE, true
	case tLT:
		return opLT, true
	case tLE:
		return opLE, true
	case tGT:
		return opGT, true
	case tGE:
		return opGE, true
	case tShl:
		return opShl, true
	case tShr:
		return opShr, true
	case tUShr:
		return opUShr, true
	case tPlus:
		return opAdd, true
	case tMinus:
		return opSub, true
	case tStar:
		return opMul, true
	case tSlash:
		return opDiv, true
	case tPercent:
		return opMod, true
	}
	return 0, false
}

// binary parses a chain of left-associative binary operators of
// precedence minPrec and above (precedence climbing).
func (p *parser) binary(minPrec int) *node {
	pos := p.tok.pos
	left := p.unary()
	for left != nil {
		op, ok := binaryOp(p.tok.kind)
		if !ok || op.prec() < minPrec {
			return left
		}
		p.advance()
		right := p.binary(op.prec() + 1)
		if right == nil {
			if !p.failed() {
				p.unexpected("an operand")
			}
			return nil
		}
		left = p.mk(p.alloc(node{op: op, a: left, b: right}), pos)
	}
	return nil
}

func (p *parser) unary() *node {
	if !p.enter() {
		return nil
	}
	defer p.leave()
	var op opcode
	switch p.tok.kind {
	case tMinus:
		op = opNeg
	case tPlus:
		op = opPos
	case tNot:
		op = opNot
	case tTilde:
		op = opBitNot
	default:
		return p.postfix()
	}
	pos := p.tok.pos
	p.advance()
	x := p.unary()
	if x == nil {
		return nil
	}
	return p.mk(p.alloc(node{op: op, a: x}), pos)
}

func (p *parser) postfix() *node {
	pos := p.tok.pos
	x := p.primary()
	for x != nil {
		switch p.tok.kind {
		case tDot:
			p.advance()
			if p.tok.kind != tIdent {
				p.unexpected("an attribute name after '.'")
				return nil
			}
			name := p.tok.s
			p.advance()
			x = p.mk(p.alloc(selectNode(x, name)), pos)
		case tLBrack:
			open := p.tok.pos
			p.advance()
			i := p.expr()
			if i == nil {
				return nil
			}
			if p.tok.kind != tRBrack {
				p.unexpected("']' to close the '[' at column " + strconv.Itoa(utf8.RuneCountInString(p.src[:open])+1))
				return nil
			}
			p.advance()
			x = p.mk(p.alloc(node{op: opSubscript, a: x, b: i}), pos)
		case tElvis:
			p.advance()
			r := p.unary()
			if r == nil {
				return nil
			}
			x = p.mk(p.alloc(node{op: opElvis, a: x, b: r}), pos)
		default:
			return x
		}
	}
	return nil
}

// selectNode builds base.name; MY.name, TARGET.name and PARENT.name become
// scoped references.
func selectNode(base *node, name string) node {
	key := asciiLower(name)
	if base.op == opScopeAd && base.parens == 0 {
		return node{op: opScoped, scope: base.scope, prefix: base.prefix, name: name, key: key, hash: hashString(key)}
	}
	return node{op: opSelect, a: base, name: name, key: key, hash: hashString(key)}
}

// scopeKeyword recognises MY, TARGET and PARENT written as bare names.
func scopeKeyword(name string) (scope, bool) {
	switch {
	case strings.EqualFold(name, "my"):
		return scopeMy, true
	case strings.EqualFold(name, "target"):
		return scopeTarget, true
	case strings.EqualFold(name, "parent"):
		return scopeParent, true
	}
	return 0, false
}

func (p *parser) primary() *node {
	t := p.tok
	switch t.kind {
	case tIdent:
		p.advance()
		if p.tok.kind == tLParen {
			return p.call(t)
		}
		if p.src[t.pos] != '\'' {
			if s, ok := scopeKeyword(t.s); ok {
				return p.mk(p.alloc(node{op: opScopeAd, scope: s, prefix: t.s}), t.pos)
			}
		}
		key := asciiLower(t.s)
		return p.mk(p.alloc(node{op: opRef, name: t.s, key: key, hash: hashString(key)}), t.pos)
	case tDot:
		p.advance()
		if p.tok.kind != tIdent {
			p.unexpected("an attribute name after '.'")
			return nil
		}
		name := p.tok.s
		p.advance()
		key := asciiLower(name)
		return p.mk(p.alloc(node{op: opScoped, scope: scopeRoot, name: name, key: key, hash: hashString(key)}), t.pos)
	case tLParen:
		p.advance()
		x := p.expr()
		if x == nil {
			return nil
		}
		if p.tok.kind != tRParen {
			p.unexpected("')' to close the '(' at column " + strconv.Itoa(utf8.RuneCountInString(p.src[:t.pos])+1))
			return nil
		}
		p.advance()
		x.parens++
		x.sig = nodeSig(x)
		return x
	case tLBrack:
		ad := p.adBody()
		if ad == nil {
			return nil
		}
		return p.mk(p.alloc(node{op: opAdLit, ad: ad}), t.pos)
	case tLBrace:
		return p.list()
	case tInt:
		p.advance()
		return p.mk(p.alloc(node{op: opLit, val: Int(t.i)}), t.pos)
	case tReal:
		p.advance()
		return p.mk(p.alloc(node{op: opLit, val: Real(t.f)}), t.pos)
	case tString:
		p.advance()
		return p.mk(p.alloc(node{op: opLit, val: String(t.s)}), t.pos)
	case tTrue, tFalse:
		p.advance()
		return p.mk(p.alloc(node{op: opLit, val: Bool(t.kind == tTrue)}), t.pos)
	case tUndefined:
		p.advance()
		return p.mk(p.alloc(node{op: opLit, val: Undefined()}), t.pos)
	case tError:
		p.advance()
		return p.mk(p.alloc(node{op: opLit, val: Error()}), t.pos)
	}
	p.unexpected("an operand")
	return nil
}

func (p *parser) list() *node {
	open := p.tok.pos
	p.advance()
	var elems []*node
	for p.tok.kind != tRBrace {
		e := p.expr()
		if e == nil {
			return nil
		}
		elems = append(elems, e)
		switch p.tok.kind {
		case tComma:
			p.advance()
		case tRBrace:
		default:
			p.unexpected("',' or '}' to close the '{' at column " + strconv.Itoa(utf8.RuneCountInString(p.src[:open])+1))
			return nil
		}
	}
	p.advance()
	return p.mk(p.alloc(node{op: opList, args: elems}), open)
}

func (p *parser) call(name token) *node {
	open := p.tok.pos
	p.advance()
	var args []*node
	for p.tok.kind != tRParen {
		e := p.expr()
		if e == nil {
			return nil
		}
		args = append(args, e)
		switch p.tok.kind {
		case tComma:
			p.advance()
		case tRParen:
		default:
			p.unexpected("',' or ')' to close the argument list of " + name.s + "()")
			return nil
		}
	}
	p.advance()
	fn := lookupFunc(name.s)
	// absTime("...") and relTime("...") of a string literal are literals,
	// as in HTCondor's parser.
	if (fn == fnAbsTime || fn == fnRelTime) && len(args) == 1 && args[0].op == opLit && args[0].val.k == StringKind {
		var v Value
		var ok bool
		if fn == fnAbsTime {
			v, ok = parseAbsTime(args[0].val.str(), 0)
		} else {
			v, ok = parseRelTime(args[0].val.str())
		}
		if !ok {
			p.fail(open, "invalid time "+strconv.Quote(args[0].val.str())+" for "+name.s+"()")
			return nil
		}
		return p.mk(p.alloc(node{op: opLit, val: v}), name.pos)
	}
	// real("INF"), real("-INF") and real("NaN") are how non-finite reals
	// print; reading them back gives the literal again.
	if fn == fnReal && len(args) == 1 && args[0].op == opLit && args[0].parens == 0 {
		switch args[0].val.str() {
		case "INF":
			return p.mk(p.alloc(node{op: opLit, val: Real(math.Inf(1))}), name.pos)
		case "-INF":
			return p.mk(p.alloc(node{op: opLit, val: Real(math.Inf(-1))}), name.pos)
		case "NaN":
			return p.mk(p.alloc(node{op: opLit, val: Real(math.NaN())}), name.pos)
		}
	}
	return p.mk(p.alloc(node{op: opCall, name: name.s, fn: fn, args: args, re: literalRegex(fn, args)}), name.pos)
}

// bareLiteral reads an attribute's value that is a lone literal (a
// number, a string, true or false, then ';' or ']'), as most of a job's
// or a machine's attributes are, without the expression parser; from the
// shared literals when the parser shares (shared.go). At anything else it
// reads nothing and returns nil.
func (p *parser) bareLiteral() *Expr {
	t := p.tok
	var v Value
	switch t.kind {
	case tInt:
		v = Int(t.i)
	case tReal:
		v = Real(t.f)
	case tString:
		v = String(t.s)
	case tTrue, tFalse:
		v = Bool(t.kind == tTrue)
	default:
		return nil
	}
	lx := p.lx
	p.advance()
	if p.tok.kind != tSemi && p.tok.kind != tRBrack {
		p.lx, p.tok = lx, t // an expression that begins with it
		return nil
	}
	if p.share {
		if e := sharedLiteral(v); e != nil {
			return e
		}
	}
	return &Expr{root: finish(&node{op: opLit, val: v})}
}

// adBody parses "[ name = expr; ... ]" starting at the '['.
func (p *parser) adBody() *Ad {
	if !p.enter() {
		return nil
	}
	defer p.leave()
	open := p.tok.pos
	p.advance()
	ad := NewAd()
	if p.depth == 1 && p.attrs > 0 {
		ad = NewAdSize(p.attrs)
	}
	for p.tok.kind != tRBrack {
		if p.tok.kind == tSemi {
			p.advance()
			continue
		}
		if p.tok.kind != tIdent {
			p.unexpected("an attribute name or ']' to close the '[' at column " + strconv.Itoa(utf8.RuneCountInString(p.src[:open])+1))
			return nil
		}
		name := p.tok.s
		p.advance()
		if p.tok.kind != tAssign {
			p.unexpected("'=' after attribute name " + strconv.Quote(name))
			return nil
		}
		p.advance()
		var e *Expr
		start, end, text := p.tok.pos, -1, ""
		if p.share && p.depth == 1 {
			// An expression seen before, in this ad or another, is not
			// parsed again (shared.go).
			if end = exprExtent(p.src, start); end >= 0 {
				text = trimSpaceRight(p.src[start:end])
				if e = lookupShared(text); e != nil {
					p.lx.pos, p.lx.prev = end, tIdent
					p.advance() // the ';' or ']' at end
				}
			}
		}
		if e == nil {
			if e = p.bareLiteral(); e != nil && end >= 0 && text != "" && p.tok.pos == end {
				storeShared(strings.Clone(text), e)
			}
		}
		if e == nil {
			n := p.expr()
			if n == nil {
				if !p.failed() {
					p.unexpected("an expression")
				}
				return nil
			}
			e = &Expr{root: n}
			if end >= 0 && text != "" && p.tok.pos == end && !p.failed() {
				storeShared(strings.Clone(text), e)
			}
		}
		ad.Set(name, e)
		if p.tok.kind != tSemi && p.tok.kind != tRBrack {
			p.unexpected("';' or ']' after the value of " + strconv.Quote(name))
			return nil
		}
	}
	p.advance()
	return ad
}
