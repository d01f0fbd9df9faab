package submit

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// maxExpansion bounds the text one value may expand to.
const maxExpansion = 1 << 20

// maxDepth bounds macro nesting; deeper is reported as recursion.
const maxDepth = 64

// maxSteps bounds the macro look-ups of one job, so that macros referring
// to others many times over cannot take exponential time.
const maxSteps = 100_000

// macroDef is one definition in a submit description.
type macroDef struct {
	name  string // as written; literal attributes as "MY.Name"
	value string // raw, not expanded
	file  string
	line  int
	attr  bool // +Name or MY.Name: a literal job attribute
}

// macroTable maps lower-cased names to definitions. Literal attributes are
// stored under "my.<name>". A table is never modified after a snapshot of
// it is taken: define copies on write.
type macroTable struct {
	defs     map[string]*macroDef
	attrKeys []string // literal attributes in order of first definition

	hints map[string]*macroDef // command -> earliest definition misspelling it; computed once
}

// misspellings maps a submit command to the earliest definition of a name
// that is no command but within a typo of it.
func (t *macroTable) misspellings() map[string]*macroDef {
	if t.hints != nil {
		return t.hints
	}
	t.hints = map[string]*macroDef{}
	for k, d := range t.defs {
		if d.attr || knownCommand(k) {
			continue
		}
		if cmd := suggest(k); cmd != "" {
			if best := t.hints[cmd]; best == nil || d.line < best.line {
				t.hints[cmd] = d
			}
		}
	}
	return t.hints
}

func newMacroTable() *macroTable { return &macroTable{defs: map[string]*macroDef{}} }

func (t *macroTable) clone() *macroTable {
	c := &macroTable{defs: make(map[string]*macroDef, len(t.defs)), attrKeys: append([]string(nil), t.attrKeys...)}
	for k, v := range t.defs {
		c.defs[k] = v
	}
	return c
}

// define records name = value. A value that refers to its own name,
// as in `a = $(a) more`, takes the previous definition's text there, as
// HTCondor's configuration language does.
func (t *macroTable) define(s stmt) {
	name := s.name
	attr := false
	switch {
	case strings.HasPrefix(name, "+"):
		name = "MY." + strings.TrimSpace(name[1:])
		attr = true
	case len(name) > 3 && strings.EqualFold(name[:3], "my."):
		name = "MY." + name[3:]
		attr = true
	}
	key := strings.ToLower(name)
	value := s.value
	if prev := t.defs[key]; prev != nil || strings.Contains(value, "$") {
		prevText := ""
		if prev != nil {
			prevText = prev.value
		}
		value = replaceSelf(value, key, prevText)
	}
	if attr && t.defs[key] == nil {
		t.attrKeys = append(t.attrKeys, key)
	}
	t.defs[key] = &macroDef{name: name, value: value, file: s.file, line: s.line, attr: attr}
}

// replaceSelf substitutes prev for every $(key) in v.
func replaceSelf(v, key, prev string) string {
	lv := strings.ToLower(v)
	pat := "$(" + key + ")"
	if !strings.Contains(lv, pat) {
		return v
	}
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(lv[i:], pat)
		if j < 0 {
			b.WriteString(v[i:])
			return b.String()
		}
		// $$(key) is a match-time reference, not ours.
		if i+j > 0 && v[i+j-1] == '$' {
			b.WriteString(v[i : i+j+len(pat)])
		} else {
			b.WriteString(v[i : i+j])
			b.WriteString(prev)
		}
		i += j + len(pat)
	}
}

// lookup returns a definition by name, case-insensitively.
func (t *macroTable) lookup(name string) *macroDef { return t.defs[strings.ToLower(name)] }

// expandError is an expansion problem; the caller adds place and command.
type expandError struct {
	code, msg string
}

func (e *expandError) Error() string { return e.msg }

// expander expands macros for one job (one proc of a queue statement) and
// records which per-job variables the expansion used, so that jobs that
// cannot differ are built once.
type expander struct {
	macros    *macroTable
	live      map[string]string // loop variables, Step, ItemIndex, Row (lower-cased)
	cluster   int               // 0: not yet known
	proc      int
	getenv    func(string) (string, bool)
	defaults  map[string]string // ARCH, OPSYS, ...
	submitDir string

	steps int // macro look-ups so far; bounded by maxSteps

	usedCluster bool // $(ClusterId) and friends
	usedProc    bool // $(ProcId), $(Step), $(JobId): differs for every job
	usedItem    bool // loop variables, $(ItemIndex), $(Row)
}

// isPerStep names the variables that change with every job of an item.
var perStep = map[string]bool{"process": true, "procid": true, "step": true}

// expand expands every $(...) and $FUNC(...) in s. $$(...) is left for
// match time.
func (x *expander) expand(s string) (string, error) {
	return x.expandIn(s, 0, nil)
}

func (x *expander) expandIn(s string, depth int, stack []string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	if depth > maxDepth {
		return "", &expandError{"macro-recursive", "macros nest too deeply (a cycle?)"}
	}
	var b strings.Builder
	i := 0
	for i < len(s) {
		c := s[i]
		if c != '$' {
			j := strings.IndexByte(s[i:], '$')
			if j < 0 {
				b.WriteString(s[i:])
				break
			}
			b.WriteString(s[i : i+j])
			i += j
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "$$("):
			end := matchParen(s, i+2)
			if end < 0 {
				b.WriteString(s[i:])
				i = len(s)
				continue
			}
			b.WriteString(s[i : end+1])
			i = end + 1
		case strings.HasPrefix(s[i:], "$("):
			end := matchParen(s, i+1)
			if end < 0 {
				b.WriteString(s[i:])
				i = len(s)
				continue
			}
			v, err := x.macro(s[i+2:end], depth, stack)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i = end + 1
		default:
			j := i + 1
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			if j == i+1 || j >= len(s) || s[j] != '(' {
				b.WriteByte('$')
				i++
				continue
			}
			end := matchParen(s, j)
			if end < 0 {
				b.WriteString(s[i:])
				i = len(s)
				continue
			}
			v, err := x.function(s[i+1:j], s[j+1:end], depth, stack)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i = end + 1
		}
		if b.Len() > maxExpansion {
			return "", &expandError{"macro-too-large", fmt.Sprintf("the value expands to more than %d bytes", maxExpansion)}
		}
	}
	if b.Len() > maxExpansion {
		return "", &expandError{"macro-too-large", fmt.Sprintf("the value expands to more than %d bytes", maxExpansion)}
	}
	return b.String(), nil
}

// matchParen returns the index of the ')' closing the '(' at s[open], or -1.
func matchParen(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// macro expands the body of $(body): "name" or "name:default".
func (x *expander) macro(body string, depth int, stack []string) (string, error) {
	name, def, hasDef := strings.Cut(body, ":")
	name = strings.TrimSpace(name)
	v, ok, err := x.value(name, depth, stack)
	if err != nil {
		return "", err
	}
	if ok {
		return v, nil
	}
	if hasDef {
		return x.expandIn(def, depth+1, stack)
	}
	return "", &expandError{"macro-undefined", fmt.Sprintf("macro $(%s) is not defined", name)}
}

// value looks a name up and expands it. ok is false when it is not defined.
func (x *expander) value(name string, depth int, stack []string) (string, bool, error) {
	x.steps++
	if x.steps > maxSteps {
		return "", false, &expandError{"macro-too-large", fmt.Sprintf("expanding the macros takes more than %d look-ups", maxSteps)}
	}
	key := strings.ToLower(name)
	switch key {
	case "cluster", "clusterid", "joblistid":
		x.usedCluster = true
		if x.cluster == 0 {
			return "1", true, nil // placeholder: Parse asks for the real id
		}
		return strconv.Itoa(x.cluster), true, nil
	case "process", "procid":
		x.usedProc = true
		return strconv.Itoa(x.proc), true, nil
	}
	for _, k := range stack {
		if k == key {
			return "", false, &expandError{"macro-recursive", fmt.Sprintf("macro $(%s) refers to itself", name)}
		}
	}
	var raw string
	found := false
	if d := x.macros.lookup(key); d != nil && !(x.live != nil && x.isLoopVar(key)) {
		raw, found = d.value, true
	} else if v, ok := x.live[key]; ok {
		if perStep[key] {
			x.usedProc = true
		} else {
			x.usedItem = true
		}
		return v, true, nil // items are used as they are
	} else if key == "jobid" {
		raw, found = "$(ClusterId).$(ProcId)", true
	} else if v, ok := x.defaults[key]; ok {
		raw, found = v, true
	}
	if !found {
		return "", false, nil
	}
	v, err := x.expandIn(raw, depth+1, append(stack, key))
	if err != nil {
		return "", false, err
	}
	return v, true, nil
}

// isLoopVar reports whether key is a loop variable of the current queue
// statement: those override file macros of the same name; Step, ItemIndex
// and Row do not (HTCondor leaves them alone when the file sets them).
func (x *expander) isLoopVar(key string) bool {
	if _, ok := x.live[key]; !ok {
		return false
	}
	switch key {
	case "step", "itemindex", "row":
		return false
	}
	return true
}

// function evaluates $NAME(args).
func (x *expander) function(fname, args string, depth int, stack []string) (string, error) {
	up := strings.ToUpper(fname)
	switch {
	case up == "ENV":
		name, def, hasDef := strings.Cut(args, ":")
		name = strings.TrimSpace(name)
		if v, ok := x.getenv(name); ok {
			return v, nil
		}
		if hasDef {
			return x.expandIn(def, depth+1, stack)
		}
		return "", &expandError{"env-undefined", fmt.Sprintf("environment variable %s is not set ($ENV(%s))", name, name)}
	case up == "INT" || up == "REAL":
		return x.numberFunc(up, args, depth, stack)
	case up == "CHOICE":
		return x.choice(args, depth, stack)
	case up == "SUBSTR":
		return x.substr(args, depth, stack)
	case up == "BASENAME":
		v, err := x.argValue(args, depth, stack)
		if err != nil {
			return "", err
		}
		return filepath.Base(v), nil
	case up == "DIRNAME":
		v, err := x.argValue(args, depth, stack)
		if err != nil {
			return "", err
		}
		return filepath.Dir(v), nil
	case isFilenameFunc(up):
		v, err := x.argValue(args, depth, stack)
		if err != nil {
			return "", err
		}
		return filenameParts(up[1:], v, x.submitDir), nil
	case up == "RANDOM_CHOICE" || up == "RANDOM_INTEGER":
		return "", &expandError{"macro-function-unknown", fmt.Sprintf("$%s() is not supported: vmpool expands a submit description the same way every time", fname)}
	}
	return "", &expandError{"macro-function-unknown", fmt.Sprintf("$%s() is not a macro function", fname)}
}

func isFilenameFunc(up string) bool {
	if len(up) < 1 || up[0] != 'F' {
		return false
	}
	for i := 1; i < len(up); i++ {
		if !strings.ContainsRune("PDNXQAB", rune(up[i])) {
			return false
		}
	}
	return true
}

// argValue resolves a function argument naming a macro: its expanded value,
// or the argument itself (expanded) when no macro has that name.
func (x *expander) argValue(arg string, depth int, stack []string) (string, error) {
	arg = strings.TrimSpace(arg)
	if v, ok, err := x.value(arg, depth, stack); err != nil || ok {
		return v, err
	}
	return x.expandIn(arg, depth+1, stack)
}

func (x *expander) argInt(arg string, depth int, stack []string, what string) (int, error) {
	v, err := x.argValue(arg, depth, stack)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, &expandError{"macro-function-invalid", fmt.Sprintf("%s %q is not an integer", what, v)}
	}
	return n, nil
}

func (x *expander) numberFunc(up, args string, depth int, stack []string) (string, error) {
	name, format, hasFmt := strings.Cut(args, ",")
	v, err := x.argValue(name, depth, stack)
	if err != nil {
		return "", err
	}
	v = strings.TrimSpace(v)
	if up == "INT" {
		n, perr := strconv.ParseInt(v, 0, 64)
		if perr != nil {
			f, ferr := strconv.ParseFloat(v, 64)
			if ferr != nil {
				return "", &expandError{"macro-function-invalid", fmt.Sprintf("$INT(%s): %q is not an integer", strings.TrimSpace(name), v)}
			}
			n = int64(f)
		}
		if !hasFmt {
			return strconv.FormatInt(n, 10), nil
		}
		gf, ok := goFormat(strings.TrimSpace(format), "dixXo")
		if !ok {
			return "", &expandError{"macro-function-invalid", fmt.Sprintf("$INT(): %q is not an integer format such as %%03d", strings.TrimSpace(format))}
		}
		return fmt.Sprintf(gf, n), nil
	}
	f, perr := strconv.ParseFloat(v, 64)
	if perr != nil {
		return "", &expandError{"macro-function-invalid", fmt.Sprintf("$REAL(%s): %q is not a number", strings.TrimSpace(name), v)}
	}
	if !hasFmt {
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	}
	gf, ok := goFormat(strings.TrimSpace(format), "eEfFgG")
	if !ok {
		return "", &expandError{"macro-function-invalid", fmt.Sprintf("$REAL(): %q is not a number format such as %%.2f", strings.TrimSpace(format))}
	}
	return fmt.Sprintf(gf, f), nil
}

// goFormat converts a printf format with exactly one conversion among verbs
// into Go's fmt syntax (length modifiers dropped, %i as %d).
func goFormat(f, verbs string) (string, bool) {
	var b strings.Builder
	n := 0
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(f) && f[i+1] == '%' {
			b.WriteString("%%")
			i++
			continue
		}
		b.WriteByte('%')
		i++
		for i < len(f) && strings.IndexByte("-+ 0#", f[i]) >= 0 {
			b.WriteByte(f[i])
			i++
		}
		for i < len(f) && (isDigit(f[i]) || f[i] == '.') {
			b.WriteByte(f[i])
			i++
		}
		for i < len(f) && strings.IndexByte("hlLqjzt", f[i]) >= 0 {
			i++
		}
		if i >= len(f) || strings.IndexByte(verbs, f[i]) < 0 {
			return "", false
		}
		v := f[i]
		if v == 'i' {
			v = 'd'
		}
		b.WriteByte(v)
		n++
	}
	return b.String(), n == 1
}

func splitArgs(args string) []string {
	parts := strings.Split(args, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func (x *expander) choice(args string, depth int, stack []string) (string, error) {
	parts := splitArgs(args)
	if len(parts) < 2 {
		return "", &expandError{"macro-function-invalid", "$CHOICE() needs an index and a list: $CHOICE(index, a, b, c) or $CHOICE(index, listname)"}
	}
	idx, err := x.argInt(parts[0], depth, stack, "$CHOICE() index")
	if err != nil {
		return "", err
	}
	items := parts[1:]
	if len(items) == 1 {
		v, ok, err := x.value(items[0], depth, stack)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", &expandError{"macro-function-invalid", fmt.Sprintf("$CHOICE(): no list named %q", items[0])}
		}
		items = splitArgs(v)
	}
	if idx < 0 || idx >= len(items) {
		return "", &expandError{"macro-function-invalid", fmt.Sprintf("$CHOICE(): index %d is out of range (0 to %d)", idx, len(items)-1)}
	}
	return x.expandIn(items[idx], depth+1, stack)
}

func (x *expander) substr(args string, depth int, stack []string) (string, error) {
	parts := splitArgs(args)
	if len(parts) < 2 || len(parts) > 3 {
		return "", &expandError{"macro-function-invalid", "$SUBSTR() takes a name, a start and an optional length"}
	}
	v, ok, err := x.value(parts[0], depth, stack)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", &expandError{"macro-undefined", fmt.Sprintf("macro $(%s) is not defined", parts[0])}
	}
	start, err := x.argInt(parts[1], depth, stack, "$SUBSTR() start")
	if err != nil {
		return "", err
	}
	n := len(v)
	if start < 0 {
		start += n
	}
	start = max(0, min(start, n))
	end := n
	if len(parts) == 3 {
		l, err := x.argInt(parts[2], depth, stack, "$SUBSTR() length")
		if err != nil {
			return "", err
		}
		if l < 0 {
			end = max(start, n+l)
		} else {
			end = min(n, start+l)
		}
	}
	return v[start:end], nil
}

// filenameParts implements $F[pdnxqab](...): p directory, d parent
// directory name, n base name without extension, x extension, q quoted, a
// absolute (against the submit directory), b bare (no trailing / or
// leading .).
func filenameParts(mods, v, dir string) string {
	var p, d, n, xx, q, a, b bool
	for _, c := range mods {
		switch c {
		case 'P':
			p = true
		case 'D':
			d = true
		case 'N':
			n = true
		case 'X':
			xx = true
		case 'Q':
			q = true
		case 'A':
			a = true
		case 'B':
			b = true
		}
	}
	v = strings.Trim(v, `"'`)
	if a && !filepath.IsAbs(v) && v != "" {
		v = filepath.Join(dir, v)
	}
	base := filepath.Base(v)
	if v == "" {
		base = ""
	}
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	dirPart := ""
	if i := strings.LastIndexByte(v, '/'); i >= 0 {
		dirPart = v[:i+1]
	}
	var out string
	switch {
	case !p && !d && !n && !xx:
		out = v
	case d:
		parent := filepath.Base(strings.TrimSuffix(dirPart, "/"))
		if dirPart == "" {
			parent = ""
		}
		out = parent
		if parent != "" && (n || xx || !b) {
			out += "/"
		}
		if n {
			out += stem
		}
		if xx {
			out += ext
		}
	case p && !n && !xx:
		out = dirPart
		if b {
			out = strings.TrimSuffix(out, "/")
		}
	case p && n && !xx:
		out = dirPart + stem
	case p:
		out = v
	case n && xx:
		out = base
	case n:
		out = stem
	default: // x alone
		out = ext
		if b {
			out = strings.TrimPrefix(out, ".")
		}
	}
	if q {
		out = `"` + out + `"`
	}
	return out
}
