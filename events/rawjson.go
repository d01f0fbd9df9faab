package events

// A JSON scanner and indenter for replies that are large and JSON already
// (q -json of a big queue): one tight pass each, where encoding/json's
// state machine takes a function call per byte. They accept exactly what
// encoding/json accepts (FuzzJSONValueEnd, FuzzAppendIndentJSON).

import "encoding/binary"

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// JSONValueEnd checks that b[i:] starts, after white space, with one valid
// JSON value and returns the index just past it; ok is false if it does not.
func JSONValueEnd(b []byte, i int) (end int, ok bool) {
	var open []byte // the containers around the value being read
	for {
		// A value.
		i = skipJSONSpace(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(open) >= maxJSONDepth {
				return 0, false
			}
			j := skipJSONSpace(b, i+1)
			if j < len(b) && b[j] == c+2 { // {} or []
				i = j + 1
				break
			}
			open = append(open, c)
			i = j
			if c == '{' {
				if i, ok = jsonMemberName(b, i); !ok {
					return 0, false
				}
			}
			continue
		case c == '"':
			if i, ok = jsonStringEnd(b, i); !ok {
				return 0, false
			}
		case c == '-' || c >= '0' && c <= '9':
			if i, ok = jsonNumberEnd(b, i); !ok {
				return 0, false
			}
		case c == 't':
			if i, ok = jsonLiteral(b, i, "true"); !ok {
				return 0, false
			}
		case c == 'f':
			if i, ok = jsonLiteral(b, i, "false"); !ok {
				return 0, false
			}
		case c == 'n':
			if i, ok = jsonLiteral(b, i, "null"); !ok {
				return 0, false
			}
		default:
			return 0, false
		}
		// After a value: close containers, or go on to the next element.
	after:
		for {
			if len(open) == 0 {
				return i, true
			}
			i = skipJSONSpace(b, i)
			if i >= len(b) {
				return 0, false
			}
			top := open[len(open)-1]
			switch b[i] {
			case ',':
				i++
				if top == '{' {
					if i, ok = jsonMemberName(b, skipJSONSpace(b, i)); !ok {
						return 0, false
					}
				}
				break after
			case top + 2: // } or ]
				open = open[:len(open)-1]
				i++
			default:
				return 0, false
			}
		}
	}
}

// jsonMemberName reads `"name" :` at b[i].
func jsonMemberName(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	i, ok := jsonStringEnd(b, i)
	if !ok {
		return 0, false
	}
	i = skipJSONSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return 0, false
	}
	return i + 1, true
}

func jsonLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// jsonPlain marks the bytes a string goes on with: not a quote, a
// backslash or a control character.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// endsPlain reports whether one of the eight bytes in x is a quote, a
// backslash or a control character (below 0x20): the classic test for a
// zero byte, (v - 0x01...) &^ v & 0x80..., on x xor the quote, x xor the
// backslash, and x minus 0x20 for the bytes below it. A borrow can set
// the test's bit above a byte that matches, never without one.
func endsPlain(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	s := x ^ (ones * '\\')
	return ((q-ones)&^q|(s-ones)&^s|(x-ones*0x20)&^x)&highs != 0
}

// jsonStringEnd reads the string starting with the quote at b[i].
func jsonStringEnd(b []byte, i int) (int, bool) {
	i++
	for i < len(b) {
		// Eight bytes at a time while none of them ends the plain text
		// (a word with a quote, a backslash or a control character goes
		// byte by byte below): most of a replay's reading is strings.
		for i+8 <= len(b) && !endsPlain(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && jsonPlain[b[i]] {
			i++ // the common case: plain text
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i+1 >= len(b) {
				return 0, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 {
					return 0, false
				}
				for _, h := range b[i+2 : i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return 0, false
					}
				}
				i += 6
			default:
				return 0, false
			}
		case c < 0x20:
			return 0, false
		default:
			i++
		}
	}
	return 0, false
}

// jsonNumberEnd reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumberEnd(b []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j, j > i
	}
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, false
	}
	if b[i] == '0' {
		i++
	} else {
		var ok bool
		if i, ok = digits(i); !ok {
			return 0, false
		}
	}
	if i < len(b) && b[i] == '.' {
		var ok bool
		if i, ok = digits(i + 1); !ok {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		var ok bool
		if i, ok = digits(i); !ok {
			return 0, false
		}
	}
	return i, true
}

// AppendIndentJSON appends src, one valid JSON value (JSONValueEnd), with
// the layout json.Indent gives it with no prefix: white space between
// tokens dropped, each element and member on a line of its own, indent
// per level, empty objects and arrays kept as {} and [], white space after
// the value kept. On invalid src it appends nothing and returns false.
func AppendIndentJSON(dst, src []byte, indent string) ([]byte, bool) {
	end, ok := JSONValueEnd(src, 0)
	if !ok || skipJSONSpace(src, end) != len(src) {
		return dst, false
	}
	return appendIndentValid(dst, src, end, indent), true
}

// AppendIndentValidJSON is AppendIndentJSON of src known to hold one
// valid JSON value, and nothing after it but white space: what
// JSONValueEnd found, or encoding/json decoded or encoded. It does not
// check src again (vmpool q -json prints 100,000 ads the reader of the
// reply checked already). Given anything else, it writes something
// other than JSON, but it does not fail.
func AppendIndentValidJSON(dst, src []byte, indent string) []byte {
	end := len(src)
	for end > 0 && isJSONSpace(src[end-1]) {
		end--
	}
	return appendIndentValid(dst, src, end, indent)
}

// appendIndentValid is AppendIndentJSON of src whose one valid value ends
// at end. On invalid JSON it stops at an unterminated string and never
// reads past src.
func appendIndentValid(dst, src []byte, end int, indent string) []byte {
	newline := func(dst []byte, depth int) []byte {
		dst = append(dst, '\n')
		for range depth {
			dst = append(dst, indent...)
		}
		return dst
	}
	depth := 0
	i := skipJSONSpace(src, 0)
	for i < end {
		c := src[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			i++
		case '"':
			j, ok := jsonStringEnd(src, i)
			if !ok || j > end {
				j = end
			}
			dst = append(dst, src[i:j]...)
			i = j
		case '{', '[':
			if k := skipJSONSpace(src, i+1); k < end && src[k] == c+2 {
				dst = append(dst, c, c+2)
				i = k + 1
				continue
			}
			depth++
			dst = newline(append(dst, c), depth)
			i++
		case '}', ']':
			depth--
			dst = append(newline(dst, depth), c)
			i++
		case ',':
			dst = newline(append(dst, c), depth)
			i++
		case ':':
			dst = append(dst, ':', ' ')
			i++
		default: // numbers and literals
			j := i + 1
			for j < end && !isJSONDelim(src[j]) {
				j++
			}
			dst = append(dst, src[i:j]...)
			i = j
		}
	}
	return append(dst, src[end:]...)
}

func isJSONDelim(c byte) bool {
	switch c {
	case ',', ']', '}', ':', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}
