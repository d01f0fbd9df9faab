package submit

import (
	"fmt"
	"strconv"
	"strings"
)

// quote returns s as a ClassAd string literal.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(&b, `\%03o`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func boolExpr(v bool) string { return strconv.FormatBool(v) }

func intExpr(v int64) string { return strconv.FormatInt(v, 10) }

// refs are the attribute references of a ClassAd expression, lower-cased.
type refs struct {
	target map[string]bool // TARGET.x
	my     map[string]bool // MY.x
	bare   map[string]bool // x: the job's if it has x, else the machine's
}

// machine reports whether the expression may refer to the machine
// attribute name: TARGET.name or a bare name.
func (r refs) machine(name string) bool {
	n := strings.ToLower(name)
	return r.target[n] || r.bare[n]
}

// job reports whether the expression refers to the job attribute name.
func (r refs) job(name string) bool {
	n := strings.ToLower(name)
	return r.my[n] || r.bare[n]
}

var exprKeywords = map[string]bool{
	"true": true, "false": true, "undefined": true, "error": true,
	"is": true, "isnt": true, "parent": true,
}

// scanRefs finds the identifiers of a ClassAd expression outside string
// literals, classified by their MY./TARGET. prefix; function names are not
// references. It fails only on an unterminated string or quoted name: the
// grammar is the caller's to check (Options.CheckExpr).
func scanRefs(src string) (refs, error) {
	r := refs{target: map[string]bool{}, my: map[string]bool{}, bare: map[string]bool{}}
	i := 0
	n := len(src)
	skipBlank := func(j int) int {
		for j < n && (src[j] == ' ' || src[j] == '\t' || src[j] == '\n' || src[j] == '\r') {
			j++
		}
		return j
	}
	// ident reads an identifier or a 'quoted name' at j.
	ident := func(j int) (string, int, error) {
		if j < n && src[j] == '\'' {
			k := j + 1
			for k < n && src[k] != '\'' {
				if src[k] == '\\' {
					k++
				}
				k++
			}
			if k >= n {
				return "", j, fmt.Errorf("unterminated quoted attribute name at column %d", j+1)
			}
			return src[j+1 : k], k + 1, nil
		}
		if j < n && (isAlpha(src[j]) || src[j] == '_') {
			k := j + 1
			for k < n && isIdent(src[k]) {
				k++
			}
			return src[j:k], k, nil
		}
		return "", j, nil
	}
	for i < n {
		c := src[i]
		switch {
		case c == '"':
			j := i + 1
			for j < n && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= n {
				return r, fmt.Errorf("unterminated string literal at column %d", i+1)
			}
			i = j + 1
		case isDigit(c):
			for i < n && (isIdent(src[i]) || src[i] == '.') {
				i++
			}
		case c == '\'' || isAlpha(c) || c == '_':
			name, j, err := ident(i)
			if err != nil {
				return r, err
			}
			k := skipBlank(j)
			lower := strings.ToLower(name)
			if k < n && src[k] == '.' && (lower == "my" || lower == "target") {
				attr, j2, err := ident(skipBlank(k + 1))
				if err != nil {
					return r, err
				}
				if attr != "" {
					if lower == "my" {
						r.my[strings.ToLower(attr)] = true
					} else {
						r.target[strings.ToLower(attr)] = true
					}
					i = j2
					continue
				}
			}
			if k < n && src[k] == '(' && c != '\'' {
				i = j // a function call
				continue
			}
			if c == '\'' || !exprKeywords[lower] {
				r.bare[lower] = true
			}
			i = j
			// skip a .member selection: it names a field, not an attribute
			for {
				k := skipBlank(i)
				if k >= n || src[k] != '.' {
					break
				}
				_, j2, err := ident(skipBlank(k + 1))
				if err != nil {
					return r, err
				}
				if j2 == skipBlank(k+1) {
					break
				}
				i = j2
			}
		default:
			i++
		}
	}
	return r, nil
}
