package classad

import (
	"strings"
)

// ParseAd parses one ad in new ClassAd syntax: [ A = 1; B = "x" ].
// Comments (// and /* */) and empty statements are allowed. A syntax error
// is a *SyntaxError.
func ParseAd(src string) (*Ad, error) { return parseAd(src, true) }

// parseAd is ParseAd, its expressions from and to the shared table when
// share is set (shared.go).
func parseAd(src string, share bool) (*Ad, error) {
	p := newParser(src, false)
	p.attrs = min(strings.Count(src, ";")+1, 1<<12)
	p.share = share
	var ad *Ad
	if p.tok.kind != tLBrack {
		p.unexpected("'[' to start an ad")
	} else {
		ad = p.adBody()
	}
	if ad != nil && p.tok.kind != tEOF {
		p.fail(p.tok.pos, "unexpected "+p.tok.describe()+" after the end of the ad")
	}
	if err := p.error(); err != nil {
		return nil, err
	}
	return ad, nil
}

// parseNewAds parses a sequence of new-syntax ads, optionally separated by
// commas and optionally enclosed in braces, as condor_q -xml's sibling
// "new" format prints them.
func parseNewAds(src string) ([]*Ad, error) {
	p := newParser(src, false)
	braced := p.tok.kind == tLBrace
	if braced {
		p.advance()
	}
	var ads []*Ad
	for !p.failed() {
		switch p.tok.kind {
		case tComma:
			p.advance()
			continue
		case tLBrack:
			if ad := p.adBody(); ad != nil {
				ads = append(ads, ad)
			}
			continue
		case tRBrace:
			if braced {
				p.advance()
				braced = false
				continue
			}
		case tEOF:
			if !braced {
				return ads, nil
			}
		}
		p.unexpected("'[' to start an ad")
	}
	return nil, p.error()
}

// ParseOldAd parses one ad in the old syntax of condor_q -long: one
// "Name = expression" per line. Blank lines and lines starting with '#'
// are skipped. A string literal may span lines. Errors are *SyntaxError
// with Line set to the line in src.
func ParseOldAd(src string) (*Ad, error) {
	ads, err := parseOld(src, false)
	if err != nil {
		return nil, err
	}
	if len(ads) == 0 {
		return NewAd(), nil
	}
	return ads[0], nil
}

// ParseOldAds parses ads in the old syntax separated by blank lines, as
// condor_q -long prints several ads.
func ParseOldAds(src string) ([]*Ad, error) { return parseOld(src, true) }

func parseOld(src string, split bool) ([]*Ad, error) {
	var ads []*Ad
	var cur *Ad
	pos := 0
	for pos < len(src) {
		lineEnd := strings.IndexByte(src[pos:], '\n')
		if lineEnd < 0 {
			lineEnd = len(src)
		} else {
			lineEnd += pos
		}
		line := strings.TrimSpace(src[pos:lineEnd])
		if line == "" {
			if split {
				cur = nil
			}
			pos = lineEnd + 1
			continue
		}
		if line[0] == '#' {
			pos = lineEnd + 1
			continue
		}
		start := pos + strings.Index(src[pos:lineEnd], line)
		name, rhs, err := splitOldLine(src, start, lineEnd)
		if err != nil {
			return nil, err
		}
		end := oldValueEnd(src, rhs)
		p := newParserAt(src[:end], rhs, true)
		n := p.expr()
		p.end(n)
		if e := p.error(); e != nil {
			return nil, e.locate(src)
		}
		if cur == nil {
			cur = NewAd()
			ads = append(ads, cur)
		}
		cur.Set(name, &Expr{root: n})
		pos = end
		if nl := strings.IndexByte(src[pos:], '\n'); nl >= 0 {
			pos += nl + 1
		} else {
			pos = len(src)
		}
	}
	return ads, nil
}

// splitOldLine splits "Name = value" at the first '=' of the line
// starting at start. It returns the name and the offset of the value.
func splitOldLine(src string, start, lineEnd int) (string, int, error) {
	if src[start] == '\'' {
		lx := lexer{src: src[:lineEnd], pos: start, old: true}
		name, ok := lx.quoted('\'')
		if !ok {
			return "", 0, lx.err.locate(src)
		}
		rest := strings.TrimLeft(src[lx.pos:lineEnd], " \t")
		if !strings.HasPrefix(rest, "=") || name == "" {
			return "", 0, (&SyntaxError{Msg: "expected 'Name = value'", Offset: lx.pos}).locate(src)
		}
		return name, lineEnd - len(rest) + 1, nil
	}
	eq := strings.IndexByte(src[start:lineEnd], '=')
	if eq < 0 {
		return "", 0, (&SyntaxError{Msg: "expected 'Name = value'", Offset: start}).locate(src)
	}
	name := strings.TrimRight(src[start:start+eq], " \t")
	if name == "" {
		return "", 0, (&SyntaxError{Msg: "missing attribute name before '='", Offset: start}).locate(src)
	}
	return name, start + eq + 1, nil
}

// oldValueEnd finds where the value starting at rhs ends: at the first
// line break outside a string literal.
func oldValueEnd(src string, rhs int) int {
	lx := lexer{src: src, pos: rhs, old: true, prev: tAssign}
	end := rhs
	for {
		// A line break before the next token ends the value; look for it
		// before lexing, which could run into the next line.
		p := lx.pos
		for p < len(src) && isSpace(src[p]) && src[p] != '\n' {
			p++
		}
		if p >= len(src) || src[p] == '\n' {
			return end
		}
		t := lx.next()
		if lx.err != nil {
			if nl := strings.IndexByte(src[lx.err.Offset:], '\n'); nl >= 0 {
				return lx.err.Offset + nl
			}
			return len(src)
		}
		if t.kind == tEOF || strings.IndexByte(src[p:t.pos], '\n') >= 0 {
			return end // a comment ran to the end of the line
		}
		end = lx.pos
	}
}

// Format is a syntax in which ads are written.
type Format uint8

// The syntaxes ParseAds recognises.
const (
	FormatNew  Format = iota // [ A = 1; B = "x" ]
	FormatOld                // A = 1 (condor_q -long)
	FormatJSON               // {"A": 1} (condor_q -json)
)

func (f Format) String() string {
	switch f {
	case FormatNew:
		return "new"
	case FormatOld:
		return "old"
	}
	return "json"
}

// DetectFormat guesses the syntax of src from its first characters: a
// JSON object or array of objects, new-syntax ads in brackets, or else
// old-syntax lines.
func DetectFormat(src string) Format {
	s := skipBlanksAndComments(src)
	if s == "" {
		return FormatOld
	}
	next := skipBlanksAndComments(s[1:])
	switch s[0] {
	case '{':
		if next != "" && next[0] == '[' {
			return FormatNew
		}
		return FormatJSON
	case '[':
		if next != "" && next[0] == '{' {
			return FormatJSON
		}
		return FormatNew
	}
	return FormatOld
}

func skipBlanksAndComments(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n\f\v")
		switch {
		case strings.HasPrefix(s, "#"), strings.HasPrefix(s, "//"):
			nl := strings.IndexByte(s, '\n')
			if nl < 0 {
				return ""
			}
			s = s[nl+1:]
		case strings.HasPrefix(s, "/*"):
			end := strings.Index(s, "*/")
			if end < 0 {
				return ""
			}
			s = s[end+2:]
		default:
			return s
		}
	}
}

// ParseAds parses ads in whichever syntax src is written in (see
// DetectFormat): new syntax (one or more ads), old syntax (ads separated
// by blank lines) or JSON (an object or an array of objects).
func ParseAds(src string) ([]*Ad, Format, error) {
	f := DetectFormat(src)
	var ads []*Ad
	var err error
	switch f {
	case FormatNew:
		ads, err = parseNewAds(src)
	case FormatOld:
		ads, err = ParseOldAds(src)
	default:
		ads, err = ParseJSONAds([]byte(src))
	}
	return ads, f, err
}
