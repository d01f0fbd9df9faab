package submit

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxFileSize bounds a submit file and a queue item file.
const maxFileSize = 16 << 20

type stmtKind int

const (
	stmtAssign stmtKind = iota
	stmtQueue
)

// stmt is one logical statement of a submit description.
type stmt struct {
	kind stmtKind
	file string
	line int // first physical line

	// stmtAssign
	name  string // as written, trimmed: "vm_memory", "+Project", "MY.Project"
	value string // raw, trimmed, not expanded

	// stmtQueue
	args  string     // text after "queue", trimmed
	items []listLine // lines of a multi-line "(...)" item list, when args opens one
}

// listLine is one line of a multi-line queue item list.
type listLine struct {
	line int
	text string // trimmed
}

// checkText reports every line that holds a NUL byte, a control character
// other than tab (and a carriage return before the newline) or bytes that
// are not UTF-8. It returns false if the text must be rejected.
func checkText(file string, data []byte, p *problems) bool {
	ok := true
	lineNo := 1
	start := 0
	for i := 0; i <= len(data); i++ {
		if i < len(data) && data[i] != '\n' {
			continue
		}
		ln := data[start:i]
		if len(ln) > 0 && ln[len(ln)-1] == '\r' {
			ln = ln[:len(ln)-1]
		}
		if msg := badText(ln); msg != "" {
			ok = false
			p.add(&Error{File: file, Line: lineNo, Code: "file-not-text",
				Msg: fmt.Sprintf("line %d is not text: %s", lineNo, msg)})
		}
		lineNo++
		start = i + 1
	}
	return ok
}

func badText(b []byte) string {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			switch {
			case c == 0:
				return fmt.Sprintf("NUL byte at column %d", i+1)
			case c < 0x20 && c != '\t', c == 0x7f:
				return fmt.Sprintf("control character 0x%02x at column %d", c, i+1)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return fmt.Sprintf("invalid UTF-8 byte 0x%02x at column %d", c, i+1)
		}
		i += n
	}
	return ""
}

// lex splits a checked submit text into statements. Problems are added to p;
// lexing goes on after an error so that every problem is reported.
func lex(file string, text string, p *problems) []stmt {
	text = strings.TrimPrefix(text, "\ufeff")
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	var out []stmt
	for i := 0; i < len(lines); i++ {
		num := i + 1
		t := strings.TrimSpace(lines[i])
		if t == "" || t[0] == '#' {
			continue
		}
		// A trailing backslash continues the line; comment lines inside a
		// continuation are skipped.
		for strings.HasSuffix(t, `\`) {
			t = t[:len(t)-1]
			if i+1 >= len(lines) {
				break
			}
			i++
			next := strings.TrimSpace(lines[i])
			if strings.HasPrefix(next, "#") {
				t += `\` // keep continuing past the comment
				continue
			}
			t += next
		}
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}

		if args, ok := queueArgs(t); ok {
			s := stmt{kind: stmtQueue, file: file, line: num, args: args}
			if queueOpensList(args) {
				closed := false
				for i+1 < len(lines) {
					i++
					lt := strings.TrimSpace(lines[i])
					if strings.HasPrefix(lt, ")") {
						closed = true
						break
					}
					s.items = append(s.items, listLine{line: i + 1, text: lt})
				}
				if !closed {
					p.add(&Error{File: file, Line: num, Command: "queue", Code: "queue-list-unterminated",
						Msg: "the item list opened with ( has no line starting with )"})
					continue
				}
			}
			out = append(out, s)
			continue
		}

		if name, tag, ok := multiLineHead(t); ok {
			var vals []string
			closed := false
			for i+1 < len(lines) {
				i++
				if strings.TrimSpace(lines[i]) == "@"+tag {
					closed = true
					break
				}
				vals = append(vals, lines[i])
			}
			if !closed {
				p.add(&Error{File: file, Line: num, Command: name, Code: "value-unterminated",
					Msg: fmt.Sprintf("the multi-line value of %s has no closing line @%s", name, tag)})
				continue
			}
			out = append(out, stmt{kind: stmtAssign, file: file, line: num, name: name, value: strings.Join(vals, "\n")})
			continue
		}

		eq := strings.IndexByte(t, '=')
		if eq < 0 {
			first := strings.ToLower(strings.Fields(t)[0])
			msg := fmt.Sprintf("cannot understand %q: expected name = value or a queue statement", clip(t))
			switch first {
			case "if", "elif", "else", "endif", "include", "error", "warning":
				msg = fmt.Sprintf("%q statements are not supported by vmpool", first)
			}
			p.add(&Error{File: file, Line: num, Code: "line-syntax", Msg: msg})
			continue
		}
		name := strings.TrimSpace(t[:eq])
		value := strings.TrimSpace(t[eq+1:])
		if !validCommandName(name) {
			p.add(&Error{File: file, Line: num, Code: "line-syntax",
				Msg: fmt.Sprintf("%q is not a command name: use letters, digits, _ and . (or +Attribute)", clip(name))})
			continue
		}
		out = append(out, stmt{kind: stmtAssign, file: file, line: num, name: name, value: value})
	}
	return out
}

// multiLineHead recognises `name @=TAG`.
func multiLineHead(t string) (name, tag string, ok bool) {
	at := strings.Index(t, "@=")
	if at <= 0 {
		return "", "", false
	}
	if eq := strings.IndexByte(t, '='); eq < at+1 {
		return "", "", false
	}
	name = strings.TrimSpace(t[:at])
	tag = strings.TrimSpace(t[at+2:])
	if !validCommandName(name) || tag == "" || strings.ContainsAny(tag, " \t") {
		return "", "", false
	}
	return name, tag, true
}

// validCommandName accepts macro names (letters, digits, _ and ., not
// starting with a digit) and +Name literal attributes.
func validCommandName(n string) bool {
	if strings.HasPrefix(n, "+") {
		// The attribute name proper is checked with a better message later.
		return len(n) > 1 && !strings.ContainsAny(n, " \t")
	}
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c == '_' || c == '.' || isAlpha(c):
		case isDigit(c) && i > 0:
		default:
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdent(c byte) bool { return isAlpha(c) || isDigit(c) || c == '_' }

// clip shortens text quoted in a message.
func clip(s string) string {
	const n = 60
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
