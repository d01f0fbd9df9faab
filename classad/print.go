package classad

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// printer writes expressions and values in ClassAd syntax. With old set,
// string literals follow the old ClassAd rules (only '"' is escaped), as
// condor_q -long prints them.
type printer struct {
	b   *strings.Builder
	old bool
}

func (p *printer) str(s string) { p.b.WriteString(s) }

// node prints n, in parentheses when its precedence is below min. Parsed
// trees keep the parentheses that were written, so this only matters for
// trees built by this package (Explain, Literal of composite values).
func (p *printer) node(n *node, min int) {
	if n.parens > 0 {
		for i := uint16(0); i < n.parens; i++ {
			p.b.WriteByte('(')
		}
		p.bare(n)
		for i := uint16(0); i < n.parens; i++ {
			p.b.WriteByte(')')
		}
		return
	}
	if n.op.prec() < min {
		p.b.WriteByte('(')
		p.bare(n)
		p.b.WriteByte(')')
		return
	}
	p.bare(n)
}

// bare prints n without the parentheses written around it.
func (p *printer) bare(n *node) {
	switch n.op {
	case opLit:
		p.value(n.val)
	case opRef:
		p.name(n.name)
	case opScoped:
		if n.scope != scopeRoot {
			p.str(n.prefix)
		}
		p.b.WriteByte('.')
		p.name(n.name)
	case opScopeAd:
		p.str(n.prefix)
	case opSelect:
		p.node(n.a, precPostfix)
		if n.a.op == opLit && n.a.parens == 0 && n.a.val.k == IntKind {
			p.b.WriteByte(' ') // "5.x" would read as a malformed real
		}
		p.b.WriteByte('.')
		p.name(n.name)
	case opCall:
		p.str(n.name)
		p.b.WriteByte('(')
		for i, a := range n.args {
			if i > 0 {
				p.b.WriteByte(',')
			}
			p.node(a, 0)
		}
		p.b.WriteByte(')')
	case opList:
		p.str("{ ")
		for i, a := range n.args {
			if i > 0 {
				p.b.WriteByte(',')
			}
			p.node(a, 0)
		}
		p.str(" }")
	case opAdLit:
		p.ad(n.ad, false)
	case opTernary:
		p.node(n.a, precOr)
		p.str(" ? ")
		p.node(n.b, 0)
		p.str(" : ")
		p.node(n.c, 0)
	case opElvis:
		p.node(n.a, precPostfix)
		p.str(" ?: ")
		p.node(n.b, precUnary)
	case opSubscript:
		p.node(n.a, precPostfix)
		p.b.WriteByte('[')
		p.node(n.b, 0)
		p.b.WriteByte(']')
	case opNeg:
		// "- 5" and "-5" differ: the second is a negative literal.
		var sub strings.Builder
		q := printer{b: &sub, old: p.old}
		q.node(n.a, precUnary)
		p.b.WriteByte('-')
		if s := sub.String(); s != "" && (isDigit(s[0]) || s[0] == '.') {
			p.b.WriteByte(' ')
		}
		p.str(sub.String())
	case opPos, opNot, opBitNot:
		p.b.WriteByte("+!~"[n.op-opPos])
		p.node(n.a, precUnary)
	default: // binary, left-associative
		prec := n.op.prec()
		p.node(n.a, prec)
		p.b.WriteByte(' ')
		p.str(binSpelling[n.op])
		p.b.WriteByte(' ')
		p.node(n.b, prec+1)
	}
}

var binSpelling = [...]string{
	opMul: "*", opDiv: "/", opMod: "%", opAdd: "+", opSub: "-", opShl: "<<", opShr: ">>",
	opUShr: ">>>", opLT: "<", opLE: "<=", opGT: ">", opGE: ">=", opEQ: "==", opNE: "!=",
	opMetaEQ: "=?=", opMetaNE: "=!=", opBitAnd: "&", opBitXor: "^", opBitOr: "|",
	opAnd: "&&", opOr: "||",
}

func (p *printer) value(v Value) {
	switch v.k {
	case UndefinedKind:
		p.str("undefined")
	case ErrorKind:
		p.str("error")
	case BoolKind:
		if v.n != 0 {
			p.str("true")
		} else {
			p.str("false")
		}
	case IntKind:
		p.str(strconv.FormatInt(v.n, 10))
	case RealKind:
		p.str(formatReal(v.real()))
	case StringKind:
		p.quote(v.str(), '"')
	case ListKind:
		p.str("{ ")
		for i, e := range v.comp().list {
			if i > 0 {
				p.b.WriteByte(',')
			}
			p.value(e)
		}
		p.str(" }")
	case AdKind:
		p.ad(v.comp().ad, true)
	case AbsTimeKind:
		p.str(`absTime("`)
		p.str(formatAbsTime(v.secs(), v.zone()))
		p.str(`")`)
	case RelTimeKind:
		p.str(`relTime("`)
		p.str(formatRelTime(v.real()))
		p.str(`")`)
	}
}

// ad prints "[ a = 1; b = 2 ]"; with flat, inherited attributes too.
func (p *printer) ad(a *Ad, flat bool) {
	p.str("[ ")
	i := 0
	a.each(flat, func(at *attr) {
		if i > 0 {
			p.str("; ")
		}
		i++
		p.name(at.name)
		p.str(" = ")
		p.node(at.expr.root, 0)
	})
	p.str(" ]")
}

// name prints an attribute name, quoting it when it is not a plain
// identifier or would read as a keyword.
func (p *printer) name(s string) {
	if !needsQuoting(s) {
		p.str(s)
		return
	}
	p.quote(s, '\'')
}

func needsQuoting(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return true
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return true
		}
	}
	switch strings.ToLower(s) {
	case "error", "false", "is", "isnt", "parent", "true", "undefined", "my", "target":
		return true
	}
	return false
}

// quote writes s as a literal delimited by delim.
func (p *printer) quote(s string, delim byte) {
	p.b.WriteByte(delim)
	if p.old {
		// Old syntax escapes only the delimiter.
		for i := 0; i < len(s); i++ {
			if s[i] == delim {
				p.b.WriteByte('\\')
			}
			p.b.WriteByte(s[i])
		}
		p.b.WriteByte(delim)
		return
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == delim || c == '\\':
			p.b.WriteByte('\\')
			p.b.WriteByte(c)
		case c == '\n':
			p.str(`\n`)
		case c == '\t':
			p.str(`\t`)
		case c == '\r':
			p.str(`\r`)
		case c == '\a':
			p.str(`\a`)
		case c == '\b':
			p.str(`\b`)
		case c == '\f':
			p.str(`\f`)
		case c == '\v':
			p.str(`\v`)
		case c < 0x20 || c == 0x7f:
			p.octal(c)
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				p.octal(c)
			} else {
				p.str(s[i : i+size])
			}
			i += size
			continue
		default:
			p.b.WriteByte(c)
		}
		i++
	}
	p.b.WriteByte(delim)
}

func (p *printer) octal(c byte) {
	p.b.WriteByte('\\')
	p.b.WriteByte('0' + c>>6)
	p.b.WriteByte('0' + (c>>3)&7)
	p.b.WriteByte('0' + c&7)
}

// formatReal prints a real the way HTCondor's old-syntax and JSON
// unparsers do (%.16G, with ".0" added to integral values), but with the
// shortest digits that read back to the same float64.
func formatReal(f float64) string {
	switch {
	case math.IsNaN(f):
		return `real("NaN")`
	case math.IsInf(f, 1):
		return `real("INF")`
	case math.IsInf(f, -1):
		return `real("-INF")`
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return strings.ToUpper(e)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if strings.IndexByte(s, '.') < 0 {
		s += ".0"
	}
	return s
}
