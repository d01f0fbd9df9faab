package classad

import (
	"math"
	"strconv"
	"strings"
)

// JSON follows condor_q -json: an ad is an object; integers, reals,
// strings and booleans are JSON values; undefined is null; lists are
// arrays and nested ads objects; any other expression is a string
// "\/Expr(<expression>)\/" holding its ClassAd text (the error literal
// and times included).

// MarshalJSON encodes a (inherited attributes included) as one JSON
// object.
func (a *Ad) MarshalJSON() ([]byte, error) {
	return a.AppendJSON(nil), nil
}

// AppendJSON appends MarshalJSON's bytes to dst: a caller that compares
// or copies them can write them into a buffer it reuses.
func (a *Ad) AppendJSON(dst []byte) []byte {
	w := jsonWriter{b: dst}
	w.ad(a, true)
	return w.b
}

// UnmarshalJSON replaces a's attributes with those of the JSON object in
// data. a is unchained.
func (a *Ad) UnmarshalJSON(data []byte) error {
	p := jsonParser{src: string(data)}
	p.attrs = min(strings.Count(p.src, ",")+1, 1<<12)
	b, err := p.oneObject()
	if err != nil {
		return err
	}
	*a = *b
	return nil
}

// oneObject reads the whole source as one JSON object.
func (p *jsonParser) oneObject() (*Ad, error) {
	p.space()
	ad := p.object()
	if p.err == nil {
		p.space()
		if p.pos < len(p.src) {
			p.fail("unexpected text after the JSON object")
		}
	}
	if p.err != nil {
		return nil, p.err.locate(p.src)
	}
	return ad, nil
}

// UnmarshalJSONOnly reads a JSON ad as UnmarshalJSON does, but builds
// only the attributes of the outermost object that keep accepts (given
// each name as written); the others' values are skipped unparsed, so
// that a reader that needs a few attributes of a large ad does not pay
// for the rest. Skipped values are checked only for terminated strings
// and balanced brackets.
func UnmarshalJSONOnly(data []byte, keep func(name string) bool) (*Ad, error) {
	// Room for a few attributes at once: the reader keeps few.
	p := jsonParser{src: string(data), keep: keep, attrs: 16}
	return p.oneObject()
}

// FormatJSONAds prints ads the way condor_q -json does: an indented JSON
// array with one object per ad.
func FormatJSONAds(ads []*Ad) []byte {
	w := jsonWriter{indent: true}
	for i, a := range ads {
		if i == 0 {
			w.b.WriteString("[\n")
		} else {
			w.b.WriteString(",\n")
		}
		w.ad(a, true)
		w.b.WriteByte('\n')
	}
	if len(ads) > 0 {
		w.b.WriteString("]\n")
	} else {
		w.b.WriteString("[]\n")
	}
	return w.b
}

type jsonWriter struct {
	b      jsonBuf
	indent bool
	level  int
}

// jsonBuf is the writer's output: strings.Builder's methods over a byte
// slice, so that the bytes can be handed out (or appended to a caller's)
// without a copy.
type jsonBuf []byte

func (b *jsonBuf) WriteByte(c byte) error { *b = append(*b, c); return nil }

func (b *jsonBuf) WriteString(s string) { *b = append(*b, s...) }

// JSONAttr is one attribute as MarshalJSON writes it.
type JSONAttr struct {
	Key  string // the attribute's name in lower case
	JSON []byte // "Name":value
}

// JSONAttrs returns the attributes MarshalJSON writes for a, in its order
// and form: its own, then each parent's that no nearer ad shadows.
// MarshalJSON's bytes are "{", the fragments joined by ",", and "}", so a
// caller may render an ad's attributes once and write them many times.
func (a *Ad) JSONAttrs() []JSONAttr {
	var out []JSONAttr
	w := jsonWriter{}
	a.each(true, func(at *attr) {
		w.b = w.b[:0]
		w.str(at.name)
		w.b.WriteByte(':')
		w.node(at.expr.root)
		out = append(out, JSONAttr{Key: at.key, JSON: append([]byte(nil), w.b...)})
	})
	return out
}

// AppendJSONString appends s as a JSON string, escaped as MarshalJSON
// escapes strings (and as encoding/json does).
func AppendJSONString(dst []byte, s string) []byte {
	w := jsonWriter{b: dst}
	w.str(s)
	return w.b
}

func (w *jsonWriter) newline() {
	if w.indent {
		w.b.WriteByte('\n')
		for i := 0; i < w.level; i++ {
			w.b.WriteString("  ")
		}
	}
}

func (w *jsonWriter) ad(a *Ad, flat bool) {
	w.b.WriteByte('{')
	w.level++
	i := 0
	a.each(flat, func(at *attr) {
		if i > 0 {
			w.b.WriteByte(',')
		}
		i++
		w.newline()
		w.str(at.name)
		w.b.WriteByte(':')
		if w.indent {
			w.b.WriteByte(' ')
		}
		w.node(at.expr.root)
	})
	w.level--
	if w.indent {
		w.newline()
	}
	w.b.WriteByte('}')
}

func (w *jsonWriter) node(n *node) {
	if n.parens > 0 {
		w.exprText((&Expr{root: n}).String())
		return
	}
	switch n.op {
	case opLit:
		w.value(n.val)
	case opList:
		w.list(len(n.args), func(i int) { w.node(n.args[i]) })
	case opAdLit:
		w.ad(n.ad, false)
	default:
		w.exprText((&Expr{root: n}).String())
	}
}

func (w *jsonWriter) list(n int, elem func(int)) {
	w.b.WriteByte('[')
	w.level++
	for i := 0; i < n; i++ {
		if i > 0 {
			w.b.WriteByte(',')
		}
		w.newline()
		elem(i)
	}
	w.level--
	if w.indent && n > 0 {
		w.newline()
	}
	w.b.WriteByte(']')
}

func (w *jsonWriter) value(v Value) {
	switch v.k {
	case UndefinedKind:
		w.b.WriteString("null")
	case BoolKind, IntKind:
		w.b.WriteString(v.String())
	case RealKind:
		if f := v.real(); math.IsNaN(f) || math.IsInf(f, 0) {
			w.exprText(formatReal(f))
		} else {
			w.b.WriteString(formatReal(f))
		}
	case StringKind:
		w.str(v.str())
	case ListKind:
		w.list(len(v.comp().list), func(i int) { w.value(v.comp().list[i]) })
	case AdKind:
		w.ad(v.comp().ad, true)
	default: // error and times
		w.exprText(v.String())
	}
}

func (w *jsonWriter) exprText(s string) {
	w.b.WriteString(`"\/Expr(`)
	w.escape(s)
	w.b.WriteString(`)\/"`)
}

func (w *jsonWriter) str(s string) {
	w.b.WriteByte('"')
	w.escape(s)
	w.b.WriteByte('"')
}

func (w *jsonWriter) escape(s string) {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			w.b.WriteByte('\\')
			w.b.WriteByte(c)
		case '\n':
			w.b.WriteString(`\n`)
		case '\r':
			w.b.WriteString(`\r`)
		case '\t':
			w.b.WriteString(`\t`)
		case '\b':
			w.b.WriteString(`\b`)
		case '\f':
			w.b.WriteString(`\f`)
		case '<', '>', '&':
			// As encoding/json escapes them, so that MarshalJSON's bytes are
			// json.Marshal's and may be sent without another pass.
			w.b.WriteString(`\u00`)
			w.b.WriteByte(hex[c>>4])
			w.b.WriteByte(hex[c&15])
		case 0xe2:
			if i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&^1 == 0xa8 { // U+2028, U+2029
				w.b.WriteString(`\u202`)
				w.b.WriteByte(hex[s[i+2]&1+8])
				i += 2
				continue
			}
			w.b.WriteByte(c)
		default:
			if c < 0x20 {
				w.b.WriteString(`\u00`)
				w.b.WriteByte(hex[c>>4])
				w.b.WriteByte(hex[c&15])
			} else {
				w.b.WriteByte(c)
			}
		}
	}
}

// ParseJSONAds parses a JSON array of ad objects, a single object, or a
// sequence of objects (JSON lines). A string "\/Expr(...)\/" is parsed
// as a ClassAd expression. Errors are *SyntaxError located in data.
func ParseJSONAds(data []byte) ([]*Ad, error) {
	p := jsonParser{src: string(data)}
	var ads []*Ad
	p.space()
	if p.peek() == '[' {
		p.pos++
		p.space()
		if p.peek() == ']' {
			p.pos++
		} else {
			for p.err == nil {
				p.space()
				ads = append(ads, p.object())
				p.space()
				if p.peek() == ',' {
					p.pos++
					continue
				}
				if p.peek() != ']' {
					p.fail("expected ',' or ']' in the array of ads")
				}
				p.pos++
				break
			}
		}
	} else {
		for p.err == nil && p.pos < len(p.src) {
			ads = append(ads, p.object())
			p.space()
		}
	}
	if p.err == nil {
		p.space()
		if p.pos < len(p.src) {
			p.fail("unexpected text after the JSON ads")
		}
	}
	if p.err != nil {
		return nil, p.err.locate(p.src)
	}
	return ads, nil
}

type jsonParser struct {
	src   string
	pos   int
	depth int
	err   *SyntaxError
	// attrs, when positive, is about how many members the outermost
	// object has (its commas counted; see parser.attrs).
	attrs int
	// keep, when set, names the outermost object's attributes to parse;
	// the values of the others are skipped (UnmarshalJSONOnly).
	keep func(name string) bool
}

func (p *jsonParser) fail(msg string) {
	if p.err == nil {
		p.err = &SyntaxError{Msg: msg, Offset: p.pos}
	}
	p.pos = len(p.src)
}

func (p *jsonParser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *jsonParser) space() {
	for p.pos < len(p.src) && isSpace(p.src[p.pos]) {
		p.pos++
	}
}

// object parses {"name": value, ...} into an ad. Extra commas are
// tolerated, as HTCondor tolerates them.
func (p *jsonParser) object() *Ad {
	ad := NewAd()
	if p.depth == 0 && p.attrs > 0 {
		ad = NewAdSize(p.attrs)
	}
	if p.peek() != '{' {
		p.fail("expected '{' to start a JSON object")
		return ad
	}
	if p.depth++; p.depth > maxNesting {
		p.fail("JSON is nested too deeply")
		return ad
	}
	defer func() { p.depth-- }()
	p.pos++
	for p.err == nil {
		p.space()
		switch p.peek() {
		case ',':
			p.pos++
			continue
		case '}':
			p.pos++
			return ad
		case '"':
		default:
			p.fail("expected an attribute name or '}'")
			return ad
		}
		// A selective reader (keep) takes a name without escapes as a
		// part of the source, and copies it only to keep it.
		var name string
		selective, plain := p.keep != nil && p.depth == 1, false
		if selective {
			name, plain = p.plainStr()
		}
		if !plain {
			name, _ = p.str()
		}
		p.space()
		if p.peek() != ':' {
			p.fail("expected ':' after attribute name")
			return ad
		}
		p.pos++
		p.space()
		if selective {
			if !p.keep(name) {
				p.skipValue()
				p.space()
				if c := p.peek(); p.err == nil && c != ',' && c != '}' {
					p.fail("expected ',' or '}' after the value of " + strconv.Quote(name))
				}
				continue
			}
			if plain {
				name = strings.Clone(name)
			}
		}
		e := p.value(name)
		if e == nil {
			return ad
		}
		ad.Set(name, e)
		p.space()
		if c := p.peek(); c != ',' && c != '}' {
			p.fail("expected ',' or '}' after the value of " + strconv.Quote(name))
		}
	}
	return ad
}

// value parses a JSON value into an expression: literals and quoted
// expressions come from the shared tables (shared.go), so that ads alike
// share them.
func (p *jsonParser) value(attr string) *Expr {
	start := p.pos
	var n *node
	switch c := p.peek(); {
	case c == '{':
		ad := p.object()
		n = &node{op: opAdLit, ad: ad}
	case c == '[':
		if p.depth++; p.depth > maxNesting {
			p.fail("JSON is nested too deeply")
			return nil
		}
		p.pos++
		var elems []*node
		for p.err == nil {
			p.space()
			if p.peek() == ']' {
				p.pos++
				break
			}
			e := p.value(attr)
			if e == nil {
				return nil
			}
			elems = append(elems, e.root)
			p.space()
			switch p.peek() {
			case ',':
				p.pos++
			case ']':
			default:
				p.fail("expected ',' or ']' in a list")
			}
		}
		p.depth--
		n = &node{op: opList, args: elems}
	case c == '"':
		s, quotedExpr := p.str()
		if p.err != nil {
			return nil
		}
		if quotedExpr && len(s) >= 8 && strings.EqualFold(s[:6], "/Expr(") && strings.HasSuffix(s, ")/") {
			e, err := parseShared(s[6 : len(s)-2])
			if err != nil {
				p.pos = start
				p.fail("attribute " + strconv.Quote(attr) + ": " + err.Error())
				return nil
			}
			return e
		}
		return p.literal(String(s))
	case c == '-' || isDigit(c):
		return p.literal(p.number())
	case strings.HasPrefix(p.src[p.pos:], "true"):
		p.pos += 4
		return p.literal(Bool(true))
	case strings.HasPrefix(p.src[p.pos:], "false"):
		p.pos += 5
		return p.literal(Bool(false))
	case strings.HasPrefix(p.src[p.pos:], "null"):
		p.pos += 4
		return p.literal(Undefined())
	default:
		p.fail("expected a JSON value")
	}
	if p.err != nil {
		return nil
	}
	return &Expr{root: finish(n)}
}

// literal is the expression of a scalar the parser read (nil after an
// error).
func (p *jsonParser) literal(v Value) *Expr {
	if p.err != nil {
		return nil
	}
	return Literal(v)
}

// finish computes the height and signature of a node built outside the
// expression parser.
func finish(n *node) *node {
	var h int32
	for _, k := range n.args {
		h = max(h, k.height)
	}
	if n.ad != nil {
		for i := range n.ad.attrs {
			h = max(h, n.ad.attrs[i].expr.root.height)
		}
	}
	n.height = h + 1
	n.sig = nodeSig(n)
	return n
}

func (p *jsonParser) number() Value {
	start := p.pos
	if p.peek() == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.src) && isDigit(p.src[p.pos]) {
			p.pos++
			n++
		}
		return n
	}
	if digits() == 0 {
		p.fail("invalid number")
		return Value{}
	}
	isReal := false
	if p.peek() == '.' {
		p.pos++
		isReal = true
		if digits() == 0 {
			p.fail("invalid number: a digit must follow the decimal point")
			return Value{}
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.pos++
		isReal = true
		if c := p.peek(); c == '+' || c == '-' {
			p.pos++
		}
		if digits() == 0 {
			p.fail("invalid number: the exponent has no digits")
			return Value{}
		}
	}
	text := p.src[start:p.pos]
	if !isReal {
		if i, err := strconv.ParseInt(text, 10, 64); err == nil {
			return Int(i)
		}
	}
	f, _ := strconv.ParseFloat(text, 64)
	return Real(f)
}

// plainStr reads a string without escapes and returns it as a part of
// the source; at a string with escapes it reads nothing and reports false.
func (p *jsonParser) plainStr() (string, bool) {
	for i := p.pos + 1; i < len(p.src); i++ {
		switch p.src[i] {
		case '"':
			s := p.src[p.pos+1 : i]
			p.pos = i + 1
			return s, true
		case '\\', 0:
			return "", false
		}
	}
	return "", false
}

// skipValue passes over a JSON value without parsing it: strings to
// their closing quote, objects and lists to their closing bracket, a
// scalar to the next blank, ',', '}' or ']'. It fails on an unterminated
// string or unbalanced brackets, not on every malformed value.
func (p *jsonParser) skipValue() {
	start := p.pos
	depth := 0
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; c {
		case '"':
			p.pos++
			for p.pos < len(p.src) && p.src[p.pos] != '"' {
				if p.src[p.pos] == '\\' {
					p.pos++
				}
				p.pos++
			}
			if p.pos >= len(p.src) {
				p.pos = start
				p.fail("unterminated string")
				return
			}
			p.pos++
			if depth == 0 {
				return
			}
			continue
		case '{', '[':
			if depth++; depth+p.depth > maxNesting {
				p.fail("JSON is nested too deeply")
				return
			}
		case '}', ']':
			if depth == 0 {
				if p.pos == start {
					p.fail("expected a JSON value")
				}
				return
			}
			depth--
			if depth == 0 {
				p.pos++
				return
			}
		case ',':
			if depth == 0 {
				if p.pos == start {
					p.fail("expected a JSON value")
				}
				return
			}
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return // the end of a scalar
			}
		}
		p.pos++
	}
	if depth > 0 {
		p.pos = start
		p.fail("unterminated JSON object or list")
	}
}

// str parses a JSON string; quotedExpr reports that it was written
// "\/...\/", HTCondor's marker of an expression.
func (p *jsonParser) str() (s string, quotedExpr bool) {
	start := p.pos
	p.pos++
	quotedExpr = strings.HasPrefix(p.src[p.pos:], `\/`)
	var b strings.Builder
	for {
		if p.pos >= len(p.src) {
			p.pos = start
			p.fail("unterminated string")
			return "", false
		}
		c := p.src[p.pos]
		switch {
		case c == '"':
			quotedExpr = quotedExpr && strings.HasSuffix(p.src[start:p.pos], `\/`) && p.pos-start >= 5
			p.pos++
			return b.String(), quotedExpr
		case c == '\\' && p.pos+1 < len(p.src):
			p.pos++
			switch e := p.src[p.pos]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'u':
				if p.pos+4 >= len(p.src) {
					p.fail("invalid \\u escape")
					return "", false
				}
				r, err := strconv.ParseUint(p.src[p.pos+1:p.pos+5], 16, 32)
				if err != nil || r == 0 {
					p.fail("invalid \\u escape")
					return "", false
				}
				p.pos += 4
				if r >= 0xd800 && r < 0xdc00 && strings.HasPrefix(p.src[p.pos+1:], `\u`) && p.pos+7 < len(p.src) {
					if lo, err := strconv.ParseUint(p.src[p.pos+3:p.pos+7], 16, 32); err == nil && lo >= 0xdc00 && lo < 0xe000 {
						r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
						p.pos += 6
					}
				}
				b.WriteRune(rune(r))
			default:
				b.WriteByte(e) // \" \\ \/ and anything else stand for themselves
			}
			p.pos++
		case c == 0:
			p.fail("string contains a NUL character")
			return "", false
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}
