package submit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

type foreachMode int

const (
	foreachNone foreachMode = iota
	foreachIn
	foreachFrom
	foreachMatching
)

// queueSpec is a parsed queue statement.
type queueSpec struct {
	count    int
	vars     []string // loop variable names as written; default "Item"
	mode     foreachMode
	files    bool // matching files
	dirs     bool // matching dirs
	slice    *slice
	items    []string // in: items; matching: patterns; from: lines
	fromFile string
}

// item is one element of a queue statement's list, with its index in the
// list before slicing ($(ItemIndex)).
type item struct {
	index  int
	values []string // one per loop variable
}

type slice struct {
	start, end, step *int
}

// queueArgs recognises a queue statement and returns its arguments.
func queueArgs(t string) (string, bool) {
	if len(t) < 5 || !strings.EqualFold(t[:5], "queue") {
		return "", false
	}
	if len(t) > 5 && t[5] != ' ' && t[5] != '\t' {
		return "", false
	}
	return strings.TrimSpace(t[5:]), true
}

// words splits s at blanks and before '(' and '[', returning each word with
// its offset.
type word struct {
	text string
	at   int
}

func scanWords(s string) []word {
	var ws []word
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '(' && s[j] != '[' {
			j++
		}
		if j == i { // '(' or '[': the rest is items or a slice
			ws = append(ws, word{s[i:], i})
			break
		}
		ws = append(ws, word{s[i:j], i})
		i = j
	}
	return ws
}

// findKeyword finds the in|from|matching keyword; it returns the mode, the
// text before it and the text after it.
func findKeyword(args string) (foreachMode, string, string) {
	for _, w := range scanWords(args) {
		var m foreachMode
		switch strings.ToLower(w.text) {
		case "in":
			m = foreachIn
		case "from":
			m = foreachFrom
		case "matching":
			m = foreachMatching
		default:
			continue
		}
		return m, strings.TrimSpace(args[:w.at]), strings.TrimSpace(args[w.at+len(w.text):])
	}
	return foreachNone, args, ""
}

// skipQualifiers consumes the files|dirs|any qualifiers and a slice after
// the keyword. It returns the rest and what it found.
func skipQualifiers(mode foreachMode, rest string) (files, dirs bool, sl string, out string, err error) {
	for {
		rest = strings.TrimSpace(rest)
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return files, dirs, sl, rest, fmt.Errorf("the slice %q has no closing ]", clip(rest))
			}
			sl = rest[:end+1]
			rest = rest[end+1:]
			continue
		}
		ws := scanWords(rest)
		if len(ws) == 0 || mode != foreachMatching {
			return files, dirs, sl, rest, nil
		}
		switch strings.ToLower(ws[0].text) {
		case "files":
			files = true
		case "dirs":
			dirs = true
		case "any":
			files, dirs = false, false
		default:
			return files, dirs, sl, rest, nil
		}
		rest = rest[len(ws[0].text):]
	}
}

// queueOpensList reports whether a queue statement's item list starts with
// '(' and continues on the following lines.
func queueOpensList(args string) bool {
	mode, _, rest := findKeyword(args)
	if mode == foreachNone {
		return false
	}
	_, _, _, rest, err := skipQualifiers(mode, rest)
	if err != nil {
		return false
	}
	rest = strings.TrimSpace(rest)
	return strings.HasPrefix(rest, "(") && !strings.HasSuffix(rest, ")")
}

// parseQueue parses expanded queue arguments. list holds the lines of a
// multi-line item list.
func parseQueue(args string, list []listLine) (*queueSpec, *Error) {
	q := &queueSpec{count: 1}
	mode, pre, rest := findKeyword(args)
	q.mode = mode
	countText := pre
	if mode != foreachNone {
		// pre is [count] [var[,var...]]
		fields := strings.FieldsFunc(pre, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
		countText = ""
		if len(fields) > 0 && (isDigit(fields[0][0]) || fields[0][0] == '-' || fields[0][0] == '+') {
			countText = fields[0]
			fields = fields[1:]
		}
		for _, v := range fields {
			if !validVarName(v) {
				return nil, &Error{Code: "queue-syntax", Msg: fmt.Sprintf("%q is not a loop variable name", clip(v)),
					Fix: "name loop variables with letters, digits and _, starting with a letter, e.g. queue disk,mem from list.txt"}
			}
			q.vars = append(q.vars, v)
		}
		if len(q.vars) == 0 {
			q.vars = []string{"Item"}
		}
		files, dirs, sl, r, err := skipQualifiers(mode, rest)
		if err != nil {
			return nil, &Error{Code: "queue-slice-invalid", Msg: err.Error()}
		}
		q.files, q.dirs = files, dirs
		if sl != "" {
			s, err := parseSlice(sl)
			if err != nil {
				return nil, &Error{Code: "queue-slice-invalid", Msg: err.Error()}
			}
			q.slice = s
		}
		rest = strings.TrimSpace(r)
		if e := q.readItems(rest, list); e != nil {
			return nil, e
		}
	}
	countText = strings.TrimSpace(countText)
	if countText != "" {
		n, err := strconv.ParseInt(strings.TrimPrefix(countText, "+"), 10, 64)
		if err != nil || n < 0 {
			return nil, &Error{Code: "queue-count-invalid",
				Msg: fmt.Sprintf("queue count %q is not a non-negative integer", clip(countText))}
		}
		if n > 1<<31-1 {
			return nil, &Error{Code: "queue-too-many", Msg: fmt.Sprintf("queue count %d is out of range", n)}
		}
		q.count = int(n)
	}
	return q, nil
}

func validVarName(v string) bool {
	if v == "" || !isAlpha(v[0]) {
		return false
	}
	for i := 1; i < len(v); i++ {
		if !isIdent(v[i]) && v[i] != '.' {
			return false
		}
	}
	return true
}

// readItems fills q.items (or q.fromFile) from the text after the keyword.
func (q *queueSpec) readItems(rest string, list []listLine) *Error {
	multi := strings.HasPrefix(rest, "(") && !strings.HasSuffix(rest, ")")
	if strings.HasPrefix(rest, "(") && !multi {
		inner := strings.TrimSpace(rest[1 : len(rest)-1])
		if q.mode == foreachFrom {
			if inner != "" {
				q.items = []string{inner}
			}
		} else {
			q.items = tokens(inner)
		}
		return nil
	}
	if multi {
		if first := strings.TrimSpace(rest[1:]); first != "" {
			list = append([]listLine{{text: first}}, list...)
		}
		for _, l := range list {
			if l.text == "" || strings.HasPrefix(l.text, "#") {
				continue
			}
			if q.mode == foreachFrom {
				q.items = append(q.items, l.text)
			} else {
				q.items = append(q.items, tokens(l.text)...)
			}
		}
		return nil
	}
	if q.mode == foreachFrom {
		if rest == "" {
			return &Error{Code: "queue-syntax", Msg: "queue ... from needs a file name or a (list)"}
		}
		if strings.HasSuffix(rest, "|") {
			return &Error{Code: "queue-from-command", Msg: fmt.Sprintf("queue ... from %q would run a command", clip(rest))}
		}
		q.fromFile = rest
		return nil
	}
	q.items = tokens(rest)
	if len(q.items) == 0 {
		what := "in"
		if q.mode == foreachMatching {
			what = "matching"
		}
		return &Error{Code: "queue-syntax", Msg: fmt.Sprintf("queue ... %s has no items", what)}
	}
	return nil
}

// tokens splits at commas and blanks.
func tokens(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

func parseSlice(s string) (*slice, error) {
	body := strings.TrimSpace(s[1 : len(s)-1])
	parts := strings.Split(body, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("slice %s is not [start:end] or [start:end:step]", s)
	}
	sl := &slice{}
	ptrs := []**int{&sl.start, &sl.end, &sl.step}
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("slice %s: %q is not an integer", s, p)
		}
		*ptrs[i] = &n
	}
	if sl.step != nil && *sl.step <= 0 {
		return nil, fmt.Errorf("slice %s: the step must be positive", s)
	}
	return sl, nil
}

// indexes returns the selected indexes of a list of n items.
func (s *slice) indexes(n int) []int {
	norm := func(p *int, def int) int {
		if p == nil {
			return def
		}
		v := *p
		if v < 0 {
			v += n
		}
		return max(0, min(v, n))
	}
	start, end, step := norm(s.start, 0), norm(s.end, n), 1
	if s.step != nil {
		step = *s.step
	}
	var out []int
	for i := start; i < end; i += step {
		out = append(out, i)
	}
	return out
}

// loadItems produces the statement's items; dir is the submit directory.
func (q *queueSpec) loadItems(dir string, policy PathPolicy) ([]item, *Error) {
	var raw []string
	switch q.mode {
	case foreachNone:
		return nil, nil
	case foreachIn:
		raw = q.items
	case foreachFrom:
		if q.fromFile != "" {
			lines, e := readItemFile(dir, q.fromFile, policy)
			if e != nil {
				return nil, e
			}
			raw = lines
		} else {
			raw = q.items
		}
	case foreachMatching:
		seen := map[string]bool{}
		for _, pat := range q.items {
			full := pat
			if !filepath.IsAbs(pat) {
				full = filepath.Join(dir, pat)
			}
			matches, err := filepath.Glob(full)
			if err != nil {
				return nil, &Error{Code: "queue-glob-invalid", Msg: fmt.Sprintf("pattern %q: %v", clip(pat), err)}
			}
			sort.Strings(matches)
			for _, m := range matches {
				fi, err := os.Stat(m)
				if err != nil {
					continue
				}
				if (q.files && fi.IsDir()) || (q.dirs && !fi.IsDir()) {
					continue
				}
				name := m
				if !filepath.IsAbs(pat) {
					if rel, err := filepath.Rel(dir, m); err == nil {
						name = rel
					}
				}
				if !seen[name] {
					seen[name] = true
					raw = append(raw, name)
				}
			}
		}
	}
	idx := make([]int, len(raw))
	for i := range idx {
		idx[i] = i
	}
	if q.slice != nil {
		idx = q.slice.indexes(len(raw))
	}
	items := make([]item, 0, len(idx))
	for _, i := range idx {
		items = append(items, item{index: i, values: splitItem(raw[i], len(q.vars))})
	}
	return items, nil
}

// splitItem gives each of n variables a field of the item: fields are
// separated by commas or blanks, and the last variable takes the rest.
func splitItem(s string, n int) []string {
	s = strings.TrimSpace(s)
	out := make([]string, n)
	for i := 0; i < n; i++ {
		if i == n-1 {
			out[i] = s
			break
		}
		j := strings.IndexAny(s, ", \t")
		if j < 0 {
			out[i] = s
			s = ""
			continue
		}
		out[i] = strings.TrimSpace(s[:j])
		s = strings.TrimSpace(s[j+1:])
	}
	return out
}

func readItemFile(dir, name string, policy PathPolicy) ([]string, *Error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	if e := confine(dir, name, path, policy); e != nil {
		e.Code = "queue-from-unreadable"
		return nil, e
	}
	// Only regular files: opening a named pipe or a terminal would block.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &Error{Code: "queue-from-unreadable", Msg: fmt.Sprintf("cannot read the item file %q: %v", name, unwrapPathErr(err))}
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{Code: "queue-from-unreadable", Msg: fmt.Sprintf("the item file %q is not a regular file", name)}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Code: "queue-from-unreadable", Msg: fmt.Sprintf("cannot read the item file %q: %v", name, unwrapPathErr(err))}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, &Error{Code: "queue-from-unreadable", Msg: fmt.Sprintf("cannot read the item file %q: %v", name, unwrapPathErr(err))}
	}
	if len(data) > maxFileSize {
		return nil, &Error{Code: "file-too-large", Msg: fmt.Sprintf("the item file %q is larger than %d bytes", name, maxFileSize)}
	}
	var tp problems
	if !checkText(name, data, &tp) {
		e := tp.errs[0]
		return nil, &Error{Code: "file-not-text", Msg: fmt.Sprintf("the item file %q, %s", name, e.Msg)}
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(strings.TrimSuffix(l, "\r"))
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
	}
	return lines, nil
}
