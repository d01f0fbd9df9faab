package classad

import (
	"errors"
	"regexp"
	"regexp/syntax"
	"strings"
)

// HTCondor's regular expressions are PCRE; these are Go's (RE2), which
// run in linear time. The option letters of HTCondor are honoured: i
// (ignore case), m (^ and $ match at line breaks), s (. matches a
// newline), x (extended: blanks and #-comments in the pattern are
// ignored), f and g (for substitution: return the full target, replace
// every match). PCRE features RE2 lacks (back-references, look-around,
// possessive quantifiers, \Z) make the pattern invalid, which is error;
// so does a pattern that compiles to more than maxRegexSize instructions.

// regexOptIndex returns the position of the options argument of a regex
// function, or -1.
func regexOptIndex(fn fnID, nargs int) int {
	switch fn {
	case fnRegexp, fnRegexpMember:
		if nargs == 3 {
			return 2
		}
	case fnRegexps, fnReplace, fnReplaceAll, fnStringListRegexpMember:
		if nargs == 4 {
			return 3
		}
	}
	return -1
}

// compiledRegex is a compiled pattern and the size of its program, which
// scales the cost of matching (Go's matcher is linear in the target and
// in the program).
type compiledRegex struct {
	re   *regexp.Regexp
	size int
}

// cost is the number of steps charged for running r over n bytes.
func (r *compiledRegex) cost(n int) int { return 1 + n*r.size/256 }

// maxRegexSize bounds the program a pattern may compile to (counted as
// by progSize). Compiling is linear in it, and "a{1000}a{1000}..." would
// otherwise take seconds; real patterns are far smaller.
const maxRegexSize = 5000

// compileRegex compiles pattern under HTCondor option letters.
func compileRegex(pattern, opts string) (*compiledRegex, error) {
	var flags string
	for _, f := range []byte{'i', 'm', 's'} {
		if strings.IndexByte(opts, f) >= 0 || strings.IndexByte(opts, f-'a'+'A') >= 0 {
			flags += string(f)
		}
	}
	if strings.ContainsAny(opts, "xX") {
		pattern = stripExtended(pattern)
	}
	if flags != "" {
		pattern = "(?" + flags + ")" + pattern
	}
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	size := progSize(parsed)
	if size > maxRegexSize {
		return nil, errRegexTooLarge
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	return &compiledRegex{re: re, size: size}, nil
}

var errRegexTooLarge = errors.New("regular expression too large")

// progSize estimates the number of instructions re compiles to, without
// expanding its repetitions; it stops counting past maxRegexSize.
func progSize(re *syntax.Regexp) int {
	n := 1
	switch re.Op {
	case syntax.OpLiteral:
		n = len(re.Rune)
	case syntax.OpRepeat:
		times := re.Max
		if times < 0 {
			times = re.Min + 1
		}
		n = 1 + times*progSize(re.Sub[0])
	default:
		for _, sub := range re.Sub {
			n += progSize(sub)
			if n > maxRegexSize {
				break
			}
		}
	}
	return min(n, maxRegexSize+1)
}

// stripExtended removes the blanks and #-comments that PCRE's extended
// mode ignores, keeping escaped characters and character classes.
func stripExtended(p string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			b.WriteByte(c)
			b.WriteByte(p[i+1])
			i++
		case inClass:
			if c == '[' && i+1 < len(p) && p[i+1] == ':' {
				if end := strings.Index(p[i+2:], ":]"); end >= 0 {
					b.WriteString(p[i : i+2+end+2])
					i += 2 + end + 1
					continue
				}
			}
			if c == ']' {
				inClass = false
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal member.
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
		case isSpace(c):
		case c == '#':
			for i < len(p) && p[i] != '\n' {
				i++
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// literalRegex precompiles the pattern of a regex call whose pattern and
// options are literals, so evaluation does not compile it again.
func literalRegex(fn fnID, args []*node) *compiledRegex {
	if len(args) == 0 || args[0].op != opLit || args[0].val.k != StringKind {
		return nil
	}
	opts := ""
	if i := regexOptIndex(fn, len(args)); i >= 0 {
		if args[i].op != opLit || args[i].val.k != StringKind {
			return nil
		}
		opts = args[i].val.str()
	}
	re, err := compileRegex(args[0].val.str(), opts)
	if err != nil {
		return nil
	}
	return re
}

// regexFunc is regexp, regexps, replace, replaceAll, regexpMember and
// stringList_regexpMember.
func (c *evalCtx) regexFunc(n *node, f *frame) Value {
	args := n.args
	lo, hi := 2, 3
	switch n.fn {
	case fnRegexps, fnReplace, fnReplaceAll:
		lo, hi = 3, 4
	case fnStringListRegexpMember:
		lo, hi = 2, 4
	}
	if len(args) < lo || len(args) > hi {
		return Error()
	}
	vs := make([]Value, len(args))
	for i, a := range args {
		vs[i] = c.eval(a, f)
	}
	if n.fn == fnStringListRegexpMember {
		for _, v := range vs {
			if v.k != StringKind {
				return Error()
			}
		}
	} else {
		for _, v := range vs {
			if v.k == ErrorKind {
				return Error()
			}
		}
		for _, v := range vs {
			if v.k == UndefinedKind {
				return Value{}
			}
		}
	}
	opts := ""
	if i := regexOptIndex(n.fn, len(args)); i >= 0 {
		if vs[i].k != StringKind {
			return Error()
		}
		opts = vs[i].str()
	}
	if vs[0].k != StringKind {
		return Error()
	}
	cr := n.re
	if cr == nil {
		var err error
		if !c.spend(len(vs[0].str())) {
			return Error()
		}
		cr, err = compileRegex(vs[0].str(), opts)
		if err != nil {
			return Error()
		}
	}
	re := cr.re
	switch n.fn {
	case fnRegexp:
		if vs[1].k != StringKind {
			return Error()
		}
		if !c.spend(cr.cost(len(vs[1].str()))) {
			return Error()
		}
		return Bool(re.MatchString(vs[1].str()))
	case fnRegexpMember:
		if vs[1].k != ListKind {
			return Error()
		}
		undef := false
		for _, e := range vs[1].comp().list {
			switch e.k {
			case StringKind:
				if !c.spend(cr.cost(len(e.str()))) {
					return Error()
				}
				if re.MatchString(e.str()) {
					return Bool(true)
				}
			case UndefinedKind:
				undef = true
			default:
				return Error()
			}
		}
		if undef {
			return Value{}
		}
		return Bool(false)
	case fnStringListRegexpMember:
		delims := ", "
		if len(vs) >= 3 {
			delims = vs[2].str()
		}
		if !c.spend(cr.cost(len(vs[1].str()))) {
			return Error()
		}
		items := stringListItems(vs[1].str(), delims)
		if len(items) == 0 {
			return Value{}
		}
		for _, it := range items {
			if re.MatchString(it) {
				return Bool(true)
			}
		}
		return Bool(false)
	}
	// regexps, replace, replaceAll
	if vs[1].k != StringKind || vs[2].k != StringKind {
		return Error()
	}
	full := n.fn != fnRegexps || strings.ContainsAny(opts, "fF")
	global := n.fn == fnReplaceAll || strings.ContainsAny(opts, "gG")
	if !c.spend(cr.cost(len(vs[1].str()))) {
		return Error()
	}
	s, ok := c.substitute(re, vs[1].str(), vs[2].str(), full, global)
	if !ok {
		return Error()
	}
	return String(s)
}

// substitute replaces the first (or, with global, every) match of re in
// target by repl, where \0 to \9 stand for the groups of the match and
// any other backslash is itself. With full the rest of target is kept;
// without it only the replacement text is returned ("" without a match).
func (c *evalCtx) substitute(re *regexp.Regexp, target, repl string, full, global bool) (string, bool) {
	limit := 1
	if global {
		limit = -1
	}
	matches := re.FindAllStringSubmatchIndex(target, limit)
	if len(matches) == 0 {
		if full {
			return target, true
		}
		return "", true
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		before := b.Len()
		if full {
			b.WriteString(target[last:m[0]])
		}
		for i := 0; i < len(repl); i++ {
			ch := repl[i]
			if ch == '\\' && i+1 < len(repl) && isDigit(repl[i+1]) {
				g := int(repl[i+1] - '0')
				i++
				if 2*g+1 >= len(m) {
					return "", false
				}
				if m[2*g] >= 0 {
					b.WriteString(target[m[2*g]:m[2*g+1]])
				}
				continue
			}
			b.WriteByte(ch)
		}
		last = m[1]
		if !c.grow(before, b.Len()-before) {
			return "", false
		}
	}
	if full {
		b.WriteString(target[last:])
	}
	return b.String(), true
}
