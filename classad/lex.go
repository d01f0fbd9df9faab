package classad

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tInt
	tReal
	tString
	tIdent
	tTrue
	tFalse
	tUndefined
	tError
	tLParen
	tRParen
	tLBrack
	tRBrack
	tLBrace
	tRBrace
	tComma
	tSemi
	tDot
	tQuestion
	tColon
	tElvis
	tPlus
	tMinus
	tStar
	tSlash
	tPercent
	tNot
	tTilde
	tAndAnd
	tOrOr
	tAmp
	tPipe
	tCaret
	tLT
	tLE
	tGT
	tGE
	tEQ
	tNE
	tMetaEQ
	tMetaNE
	tShl
	tShr
	tUShr
	tAssign
)

var tokNames = [...]string{
	tEOF: "end of expression", tInt: "integer", tReal: "real", tString: "string",
	tIdent: "name", tTrue: "true", tFalse: "false", tUndefined: "undefined", tError: "error",
	tLParen: "'('", tRParen: "')'", tLBrack: "'['", tRBrack: "']'", tLBrace: "'{'",
	tRBrace: "'}'", tComma: "','", tSemi: "';'", tDot: "'.'", tQuestion: "'?'",
	tColon: "':'", tElvis: "'?:'", tPlus: "'+'", tMinus: "'-'", tStar: "'*'",
	tSlash: "'/'", tPercent: "'%'", tNot: "'!'", tTilde: "'~'", tAndAnd: "'&&'",
	tOrOr: "'||'", tAmp: "'&'", tPipe: "'|'", tCaret: "'^'", tLT: "'<'", tLE: "'<='",
	tGT: "'>'", tGE: "'>='", tEQ: "'=='", tNE: "'!='", tMetaEQ: "'=?='", tMetaNE: "'=!='",
	tShl: "'<<'", tShr: "'>>'", tUShr: "'>>>'", tAssign: "'='",
}

type token struct {
	kind tokKind
	pos  int    // byte offset of the first character
	s    string // tIdent, tString: the decoded text; operators spelled as words: the word
	i    int64
	f    float64
}

// describe names a token for an error message.
func (t token) describe() string {
	switch t.kind {
	case tIdent:
		return "name " + strconv.Quote(t.s)
	case tInt, tReal:
		return "number"
	case tString:
		return "string " + strconv.Quote(t.s)
	case tMetaEQ, tMetaNE:
		if t.s != "" {
			return "'" + t.s + "'"
		}
	}
	return tokNames[t.kind]
}

// lexer splits ClassAd source into tokens. With old set, string literals
// follow the old ClassAd (condor_q -long) rules: a backslash escapes only
// a double quote.
type lexer struct {
	src  string
	pos  int
	prev tokKind // kind of the last token, to tell a negative number from a minus
	old  bool
	err  *SyntaxError
}

func (l *lexer) fail(pos int, msg string) token {
	if l.err == nil {
		l.err = &SyntaxError{Msg: msg, Offset: pos}
	}
	l.pos = len(l.src)
	return token{kind: tEOF, pos: pos}
}

// next returns the next token; after an error it returns tEOF and l.err
// is set.
func (l *lexer) next() token {
	t := l.scan()
	l.prev = t.kind
	return t
}

func (l *lexer) skipSpace() {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			l.pos++
		case c == '/' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '/':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		case c == '/' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '*':
			end := strings.Index(l.src[l.pos+2:], "*/")
			if end < 0 {
				l.fail(l.pos, "unterminated comment")
				return
			}
			l.pos += end + 4
		default:
			return
		}
	}
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// valueLike reports whether a minus after a token of kind k is the binary
// operator (and not the sign of a number literal), as in HTCondor's lexer.
func valueLike(k tokKind) bool {
	switch k {
	case tInt, tReal, tTrue, tFalse, tString, tUndefined, tError, tIdent, tDot, tRBrack, tRParen, tRBrace:
		return true
	}
	return false
}

func (l *lexer) scan() token {
	l.skipSpace()
	if l.err != nil || l.pos >= len(l.src) {
		return token{kind: tEOF, pos: l.pos}
	}
	start := l.pos
	c := l.src[start]
	switch {
	case isDigit(c):
		return l.number(start)
	case c == '.' && start+1 < len(l.src) && isDigit(l.src[start+1]):
		return l.number(start)
	case c == '-' && !valueLike(l.prev) && start+1 < len(l.src) &&
		(isDigit(l.src[start+1]) || (l.src[start+1] == '.' && start+2 < len(l.src) && isDigit(l.src[start+2]))):
		return l.number(start)
	case isIdentStart(c):
		return l.word(start)
	case c == '"':
		s, ok := l.quoted('"')
		if !ok {
			return token{kind: tEOF, pos: start}
		}
		// Adjacent string literals are joined: "a" "b" is "ab" (new syntax
		// only, as in HTCondor).
		for !l.old {
			save := l.pos
			for l.pos < len(l.src) && isSpace(l.src[l.pos]) {
				l.pos++
			}
			if l.pos >= len(l.src) || l.src[l.pos] != '"' {
				l.pos = save
				break
			}
			more, ok := l.quoted('"')
			if !ok {
				return token{kind: tEOF, pos: start}
			}
			s += more
		}
		return token{kind: tString, pos: start, s: s}
	case c == '\'':
		s, ok := l.quoted('\'')
		if !ok {
			return token{kind: tEOF, pos: start}
		}
		if s == "" {
			return l.fail(start, "empty quoted attribute name")
		}
		return token{kind: tIdent, pos: start, s: s}
	}
	return l.punct(start)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// number lexes a decimal integer or a real, with an optional leading
// minus. Octal and hexadecimal forms are refused, as HTCondor refuses them
// in old-ClassAd mode, which is how its daemons run.
func (l *lexer) number(start int) token {
	p := start
	if l.src[p] == '-' {
		p++
	}
	digitsStart := p
	for p < len(l.src) && isDigit(l.src[p]) {
		p++
	}
	intDigits := p - digitsStart
	real := false
	if p < len(l.src) && l.src[p] == '.' {
		if p+1 < len(l.src) && isDigit(l.src[p+1]) {
			real = true
			p++
			for p < len(l.src) && isDigit(l.src[p]) {
				p++
			}
		} else if intDigits > 0 {
			return l.fail(start, "invalid number: a digit must follow the decimal point")
		}
	}
	if p < len(l.src) && (l.src[p] == 'e' || l.src[p] == 'E') {
		q := p + 1
		if q < len(l.src) && (l.src[q] == '+' || l.src[q] == '-') {
			q++
		}
		if q >= len(l.src) || !isDigit(l.src[q]) {
			return l.fail(start, "invalid number: the exponent has no digits")
		}
		for q < len(l.src) && isDigit(l.src[q]) {
			q++
		}
		real = true
		p = q
	}
	text := l.src[start:p]
	l.pos = p
	if real {
		if f, ok := shortDecimal(text); ok {
			return token{kind: tReal, pos: start, f: f}
		}
		f, err := strconv.ParseFloat(text, 64)
		if err != nil && !math.IsInf(f, 0) && f != 0 {
			return l.fail(start, "invalid number "+strconv.Quote(text))
		}
		return token{kind: tReal, pos: start, f: f}
	}
	if intDigits > 1 && l.src[digitsStart] == '0' {
		if p < len(l.src) && (l.src[p] == 'x' || l.src[p] == 'X') {
			return l.fail(start, "hexadecimal numbers are not supported")
		}
		return l.fail(start, "invalid number "+strconv.Quote(text)+": leading zeros are not allowed (octal numbers are not supported)")
	}
	if intDigits == 1 && l.src[digitsStart] == '0' && p < len(l.src) && (l.src[p] == 'x' || l.src[p] == 'X') {
		return l.fail(start, "hexadecimal numbers are not supported")
	}
	i, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return l.fail(start, "integer "+text+" is out of range")
	}
	return token{kind: tInt, pos: start, i: i}
}

func (l *lexer) word(start int) token {
	p := start
	for p < len(l.src) && isIdentChar(l.src[p]) {
		p++
	}
	w := l.src[start:p]
	l.pos = p
	switch len(w) {
	case 2:
		if strings.EqualFold(w, "is") {
			return token{kind: tMetaEQ, pos: start, s: w}
		}
	case 4:
		if strings.EqualFold(w, "true") {
			return token{kind: tTrue, pos: start}
		}
		if strings.EqualFold(w, "isnt") {
			return token{kind: tMetaNE, pos: start, s: w}
		}
	case 5:
		if strings.EqualFold(w, "false") {
			return token{kind: tFalse, pos: start}
		}
		if strings.EqualFold(w, "error") {
			return token{kind: tError, pos: start}
		}
	case 9:
		if strings.EqualFold(w, "undefined") {
			return token{kind: tUndefined, pos: start}
		}
	}
	return token{kind: tIdent, pos: start, s: w}
}

// quoted lexes a literal delimited by delim starting at l.pos and returns
// its decoded text.
func (l *lexer) quoted(delim byte) (string, bool) {
	start := l.pos
	p := start + 1
	if l.old {
		// Old syntax: the literal ends at the first delimiter not preceded
		// by a backslash. A backslash-delimiter pair is a literal
		// delimiter unless it ends the line or the input, in which case the
		// string ends with a backslash.
		var b strings.Builder
		from := p
		for {
			q := strings.IndexByte(l.src[p:], delim)
			if q < 0 {
				l.fail(start, "unterminated string literal")
				return "", false
			}
			q += p
			if q > from && l.src[q-1] == '\\' && q+1 < len(l.src) && l.src[q+1] != '\n' && l.src[q+1] != '\r' {
				b.WriteString(l.src[from : q-1])
				b.WriteByte(delim)
				p = q + 1
				from = p
				continue
			}
			b.WriteString(l.src[from:q])
			l.pos = q + 1
			s := b.String()
			if strings.IndexByte(s, 0) >= 0 {
				l.fail(start, "string contains a NUL character")
				return "", false
			}
			return s, true
		}
	}
	// New syntax: find the closing delimiter, skipping escaped characters.
	esc := false
	for ; p < len(l.src); p++ {
		c := l.src[p]
		if c == '\\' {
			esc = true
			p++
			continue
		}
		if c == delim {
			break
		}
	}
	if p >= len(l.src) {
		l.fail(start, "unterminated string literal")
		return "", false
	}
	raw := l.src[start+1 : p]
	l.pos = p + 1
	if !esc {
		if strings.IndexByte(raw, 0) >= 0 {
			l.fail(start, "string contains a NUL character")
			return "", false
		}
		return raw, true
	}
	s, ok := unescape(raw)
	if !ok {
		l.fail(start, "string contains a NUL character")
		return "", false
	}
	return s, true
}

// unescape decodes the backslash escapes of a new-syntax literal: the C
// escapes \a \b \f \n \r \t \v \\ \' \" \?, octal \o \oo \ooo, and any
// other character after a backslash stands for itself. A NUL is refused.
func unescape(raw string) (string, bool) {
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i == len(raw)-1 {
			b = append(b, c)
			continue
		}
		i++
		c = raw[i]
		switch c {
		case 'a':
			c = '\a'
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'v':
			c = '\v'
		default:
			if c >= '0' && c <= '7' {
				n := int(c - '0')
				if i+1 < len(raw) && raw[i+1] >= '0' && raw[i+1] <= '7' {
					i++
					n = n<<3 + int(raw[i]-'0')
					if n < 0x20 && i+1 < len(raw) && raw[i+1] >= '0' && raw[i+1] <= '7' {
						i++
						n = n<<3 + int(raw[i]-'0')
					}
				}
				c = byte(n)
			}
		}
		b = append(b, c)
	}
	if strings.IndexByte(string(b), 0) >= 0 {
		return "", false
	}
	return string(b), true
}

func (l *lexer) punct(start int) token {
	src := l.src
	at := func(i int) byte {
		if start+i < len(src) {
			return src[start+i]
		}
		return 0
	}
	tok := func(k tokKind, n int) token {
		l.pos = start + n
		return token{kind: k, pos: start}
	}
	switch src[start] {
	case '(':
		return tok(tLParen, 1)
	case ')':
		return tok(tRParen, 1)
	case '[':
		return tok(tLBrack, 1)
	case ']':
		return tok(tRBrack, 1)
	case '{':
		return tok(tLBrace, 1)
	case '}':
		return tok(tRBrace, 1)
	case ',':
		return tok(tComma, 1)
	case ';':
		return tok(tSemi, 1)
	case '.':
		return tok(tDot, 1)
	case ':':
		return tok(tColon, 1)
	case '+':
		return tok(tPlus, 1)
	case '-':
		return tok(tMinus, 1)
	case '*':
		return tok(tStar, 1)
	case '/':
		return tok(tSlash, 1)
	case '%':
		return tok(tPercent, 1)
	case '~':
		return tok(tTilde, 1)
	case '^':
		return tok(tCaret, 1)
	case '?':
		// "?:" is the elvis operator, even with blanks between.
		p := start + 1
		for p < len(src) && isSpace(src[p]) {
			p++
		}
		if p < len(src) && src[p] == ':' {
			l.pos = p + 1
			return token{kind: tElvis, pos: start}
		}
		return tok(tQuestion, 1)
	case '&':
		if at(1) == '&' {
			return tok(tAndAnd, 2)
		}
		return tok(tAmp, 1)
	case '|':
		if at(1) == '|' {
			return tok(tOrOr, 2)
		}
		return tok(tPipe, 1)
	case '!':
		if at(1) == '=' {
			return tok(tNE, 2)
		}
		return tok(tNot, 1)
	case '<':
		switch at(1) {
		case '=':
			return tok(tLE, 2)
		case '<':
			return tok(tShl, 2)
		}
		return tok(tLT, 1)
	case '>':
		switch at(1) {
		case '=':
			return tok(tGE, 2)
		case '>':
			if at(2) == '>' {
				return tok(tUShr, 3)
			}
			return tok(tShr, 2)
		}
		return tok(tGT, 1)
	case '=':
		switch {
		case at(1) == '=':
			return tok(tEQ, 2)
		case at(1) == '?' && at(2) == '=':
			return tok(tMetaEQ, 3)
		case at(1) == '!' && at(2) == '=':
			return tok(tMetaNE, 3)
		}
		return tok(tAssign, 1)
	}
	r, _ := utf8.DecodeRuneInString(src[start:])
	if r == utf8.RuneError {
		return l.fail(start, "unexpected byte "+strconv.QuoteToASCII(src[start:start+1]))
	}
	return l.fail(start, "unexpected character "+strconv.QuoteRune(r))
}

// exactPow10 are the powers of ten a float64 holds exactly.
var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// shortDecimal reads a real without an exponent and of at most 15 digits
// (0.0, 12.5, -3.25: the reals ads are made of) exactly as
// strconv.ParseFloat does: its digits and the power of ten are both exact
// in a float64, and one IEEE division rounds their quotient correctly.
// strconv's own general path grows a fresh goroutine's stack (its frames
// are large), which every claim a startd decided paid for a job ad's
// RemoteUserCpu = 0.0. Anything else is left to strconv.
func shortDecimal(text string) (float64, bool) {
	neg := false
	if text != "" && text[0] == '-' {
		neg, text = true, text[1:]
	}
	var mant uint64
	digits, frac, dot := 0, 0, false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '.' && !dot:
			dot = true
		case isDigit(c):
			digits++
			if digits > 15 {
				return 0, false
			}
			mant = mant*10 + uint64(c-'0')
			if dot {
				frac++
			}
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	f := float64(mant) / exactPow10[frac]
	if neg {
		f = -f
	}
	return f, true
}
