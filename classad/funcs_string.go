package classad

import (
	"math"
	"strconv"
	"strings"
)

// maxStringLen bounds the strings functions build, so that no expression
// can make an evaluation allocate without limit.
const maxStringLen = 16 << 20

// grow spends steps for adding n bytes to a string that has size bytes,
// and reports whether the result stays within maxStringLen and the
// budget.
func (c *evalCtx) grow(size, n int) bool {
	return size+n <= maxStringLen && c.spend(n/64)
}

// strcat and join. Every argument goes through string(). strcat is
// undefined if an argument is undefined (HTCondor's implementation; its
// manual says error) and error if one is error. join's first argument is
// the separator; undefined arguments are skipped; join(sep, list) and
// join(list) join the list's elements.
func (c *evalCtx) strcat(n *node, f *frame) Value {
	isJoin := n.fn == fnJoin
	var items []Value
	args := n.args
	if isJoin && (len(args) == 1 || len(args) == 2) {
		last := c.eval(args[len(args)-1], f)
		if last.k == ListKind {
			sep := String("")
			if len(args) == 2 {
				sep = c.eval(args[0], f)
			}
			items = append(append(items, sep), last.comp().list...)
		} else {
			if len(args) == 2 {
				items = append(items, c.eval(args[0], f))
			}
			items = append(items, last)
		}
	} else {
		items = make([]Value, len(args))
		for i, a := range args {
			items[i] = c.eval(a, f)
		}
	}
	var b strings.Builder
	sep := ""
	undef, def := false, false
	for i, v := range items {
		s := toString(v)
		switch s.k {
		case UndefinedKind:
			undef = true
			if isJoin {
				continue
			}
			return Value{}
		case ErrorKind:
			return Error()
		}
		if isJoin {
			if i == 0 {
				sep = s.str()
				continue
			}
			if b.Len() > 0 {
				b.WriteString(sep)
			}
		}
		def = true
		if !c.grow(b.Len(), len(sep)+len(s.str())) {
			return Error()
		}
		b.WriteString(s.str())
	}
	if undef && !def {
		return Value{}
	}
	return String(b.String())
}

// split(s [, seps]) splits s at any of the characters of seps (default
// comma and white space). Runs of white space, alone or around one other
// separator, count as one separator; two non-blank separators in a row
// delimit an empty item; leading and trailing separators are ignored.
func (c *evalCtx) split(n *node, f *frame) Value {
	if len(n.args) != 1 && len(n.args) != 2 {
		return Error()
	}
	sv := c.eval(n.args[0], f)
	seps := ", \t"
	if len(n.args) == 2 {
		dv := c.eval(n.args[1], f)
		if sv.k != StringKind || dv.k != StringKind {
			return Error()
		}
		seps = dv.str()
	}
	if sv.k != StringKind {
		return Error()
	}
	s := sv.str()
	if !c.spend(len(s) / 16) {
		return Error()
	}
	var out []Value
	last := 0
	if seps != "" {
		var prev byte // the last non-blank separator seen, 0 after an item
		for i := 0; i < len(s); i++ {
			if strings.IndexByte(seps, s[i]) < 0 {
				continue
			}
			if i > last {
				out = append(out, String(s[last:i]))
				prev = 0
			} else if !isSpace(s[i]) && prev == s[i] {
				out = append(out, String(""))
			}
			if !isSpace(s[i]) {
				prev = s[i]
			}
			last = i + 1
		}
	}
	if last < len(s) {
		out = append(out, String(s[last:]))
	}
	if !c.spend(len(out)) {
		return Error()
	}
	return listOwned(out)
}

// splitAt is splitUserName and splitSlotName: a list of the parts before
// and after the first '@'. Without an '@', the name is the user (first)
// or the machine (second).
func splitAt(fn fnID, v Value) Value {
	if v.k != StringKind {
		return Error()
	}
	before, after, found := strings.Cut(v.str(), "@")
	if !found {
		if fn == fnSplitSlotName {
			before, after = "", v.str()
		} else {
			before, after = v.str(), ""
		}
	}
	return listOwned([]Value{String(before), String(after)})
}

// substr(s, offset [, length]) is Perl's substr: a negative offset counts
// from the end, a negative length leaves that many characters off the
// end, and the part outside the string is dropped.
func (c *evalCtx) substr(n *node, f *frame) Value {
	if len(n.args) < 2 || len(n.args) > 3 {
		return Error()
	}
	s, o := c.eval(n.args[0], f), c.eval(n.args[1], f)
	l := Int(0)
	if len(n.args) == 3 {
		l = c.eval(n.args[2], f)
	}
	if s.k == UndefinedKind || o.k == UndefinedKind || l.k == UndefinedKind {
		return Value{}
	}
	if s.k != StringKind || o.k != IntKind || l.k != IntKind {
		return Error()
	}
	size := int64(len(s.str()))
	off, ln := o.n, l.n
	if off < 0 {
		off = max(size+off, 0)
	} else if off > size {
		off = size
	}
	switch {
	case len(n.args) == 3 && ln == 0:
		ln = 0
	case ln <= 0:
		ln = max(size-off+ln, 0)
	case ln > size-off:
		ln = size - off
	}
	return String(s.str()[off : off+ln])
}

// strcmpFunc is strcmp and stricmp: -1, 0 or 1 after converting both
// arguments with string(); undefined if either is undefined.
func strcmpFunc(fold bool, a, b Value) Value {
	if a.k == UndefinedKind || b.k == UndefinedKind {
		return Value{}
	}
	x, y := toString(a), toString(b)
	if x.k != StringKind || y.k != StringKind {
		return Error()
	}
	if fold {
		return Int(int64(foldCompare(x.str(), y.str())))
	}
	return Int(int64(strings.Compare(x.str(), y.str())))
}

// changeCase maps ASCII letters like C's toupper and tolower.
func changeCase(s string, upper bool) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case upper && c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !upper && c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// stringListItems splits a string list the way HTCondor's
// StringTokenIterator does: items end at any delimiter character, white
// space around an item is trimmed, and empty items are dropped.
func stringListItems(s, delims string) []string {
	var out []string
	i := 0
	for i < len(s) {
		for i < len(s) && (strings.IndexByte(delims, s[i]) >= 0 || isSpace(s[i])) {
			i++
		}
		start := i
		for i < len(s) && strings.IndexByte(delims, s[i]) < 0 {
			i++
		}
		if item := strings.TrimRight(s[start:i], " \t\r\n\f\v"); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// argStrings evaluates string arguments of the string-list functions.
// Each must be a string (or undefined where undefOK) else the call is
// error.
func (c *evalCtx) argStrings(args []*node, f *frame, undefOK bool) ([]Value, bool) {
	vs := make([]Value, len(args))
	for i, a := range args {
		vs[i] = c.eval(a, f)
		if vs[i].k != StringKind && !(undefOK && vs[i].k == UndefinedKind) {
			return nil, false
		}
	}
	return vs, true
}

// stringListMember(x, list [, delims]) and its case-insensitive and subset
// variants. Undefined arguments act as empty strings unless both the item
// and the list are undefined, which is undefined; other non-strings are
// error.
func (c *evalCtx) stringListMember(n *node, f *frame) Value {
	if len(n.args) < 2 || len(n.args) > 3 {
		return Error()
	}
	vs, ok := c.argStrings(n.args, f, true)
	if !ok {
		return Error()
	}
	if vs[0].k == UndefinedKind && vs[1].k == UndefinedKind {
		return Value{}
	}
	delims := ", \t\r\n"
	if len(vs) == 3 && vs[2].k == StringKind {
		delims = vs[2].str()
	}
	if !c.spend((len(vs[0].str()) + len(vs[1].str())) / 16) {
		return Error()
	}
	item, list := vs[0].str(), stringListItems(vs[1].str(), delims)
	fold := n.fn == fnStringListIMember || n.fn == fnStringListISubsetMatch
	has := func(x string) bool {
		for _, e := range list {
			if e == x || (fold && foldEqual(e, x)) {
				return true
			}
		}
		return false
	}
	if n.fn == fnStringListMember || n.fn == fnStringListIMember {
		return Bool(has(item))
	}
	for _, x := range stringListItems(item, delims) {
		if !has(x) {
			return Bool(false)
		}
	}
	return Bool(true)
}

// stringListSize and stringListSum/Avg/Min/Max(list [, delims]); the
// default delimiters are comma and space. Sum and average of no items are
// 0.0; min and max of none are undefined. The result is an integer when
// every item is an integer.
func (c *evalCtx) stringListSummary(n *node, f *frame) Value {
	if len(n.args) < 1 || len(n.args) > 2 {
		return Error()
	}
	vs, ok := c.argStrings(n.args, f, false)
	if !ok {
		return Error()
	}
	delims := ", "
	if len(vs) == 2 {
		delims = vs[1].str()
	}
	if !c.spend(len(vs[0].str()) / 16) {
		return Error()
	}
	items := stringListItems(vs[0].str(), delims)
	if n.fn == fnStringListSize {
		return Int(int64(len(items)))
	}
	if len(items) == 0 {
		if n.fn == fnStringListMin || n.fn == fnStringListMax {
			return Value{}
		}
		return Real(0)
	}
	isReal := false
	var acc float64
	for i, it := range items {
		x, ok := parseNumberPrefix(it)
		if !ok {
			return Error()
		}
		if strings.Trim(it, "+-0123456789") != "" {
			isReal = true
		}
		switch {
		case i == 0 && (n.fn == fnStringListMin || n.fn == fnStringListMax):
			acc = x
		case n.fn == fnStringListMin:
			acc = math.Min(acc, x)
		case n.fn == fnStringListMax:
			acc = math.Max(acc, x)
		default:
			acc += x
		}
	}
	if n.fn == fnStringListAvg {
		return Real(acc / float64(len(items))) // the manual: a real average
	}
	if isReal {
		return Real(acc)
	}
	return truncInt(acc)
}

// stringListsIntersect(a, b [, delims]) is true when the lists share an
// item (case-sensitive). The default delimiters are space and comma.
func (c *evalCtx) stringListsIntersect(n *node, f *frame) Value {
	if len(n.args) < 2 || len(n.args) > 3 {
		return Error()
	}
	vs := make([]Value, len(n.args))
	for i, a := range n.args {
		vs[i] = c.eval(a, f)
	}
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
	for _, v := range vs {
		if v.k != StringKind {
			return Error()
		}
	}
	delims := " ,"
	if len(vs) == 3 && vs[2].str() != "" {
		delims = vs[2].str()
	}
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r < 0x80 && strings.IndexByte(delims, byte(r)) >= 0 })
	}
	if !c.spend((len(vs[0].str()) + len(vs[1].str())) / 16) {
		return Error()
	}
	a, b := split(vs[0].str()), split(vs[1].str())
	set := make(map[string]bool, len(b))
	for _, x := range b {
		set[x] = true
	}
	for _, x := range a {
		if set[x] {
			return Bool(true)
		}
	}
	return Bool(false)
}

// versionFunc is versioncmp and versionGT/GE/LT/LE/EQ: undefined if
// either side is undefined, else the arguments go through string().
func versionFunc(fn fnID, a, b Value) Value {
	if a.k == UndefinedKind || b.k == UndefinedKind {
		return Value{}
	}
	x, y := toString(a), toString(b)
	if x.k != StringKind || y.k != StringKind {
		return Error()
	}
	r := versionCompare(x.str(), y.str())
	switch fn {
	case fnVersionCmp:
		return Int(int64(r))
	case fnVersionGT:
		return Bool(r > 0)
	case fnVersionGE:
		return Bool(r >= 0)
	case fnVersionLT:
		return Bool(r < 0)
	case fnVersionLE:
		return Bool(r <= 0)
	}
	return Bool(r == 0)
}

// versionInRange(v, lo, hi) is versionLE(lo, v) && versionLE(v, hi).
func versionInRange(v, lo, hi Value) Value {
	if lo.k == UndefinedKind || hi.k == UndefinedKind {
		return Value{}
	}
	x, l, h := toString(v), toString(lo), toString(hi)
	if x.k != StringKind || l.k != StringKind || h.k != StringKind {
		return Error()
	}
	return Bool(versionCompare(l.str(), x.str()) <= 0 && versionCompare(x.str(), h.str()) <= 0)
}

// versionCompare orders version strings: lexicographically, except that
// where the first difference falls in a run of digits the runs compare as
// numbers, and more leading zeros make a smaller number. Thus
// 000 < 00 < 01 < 010 < 09 < 0 < 1 < 9 < 10. It returns -1, 0 or 1.
func versionCompare(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) && i == len(b) {
		return 0
	}
	at := func(s string, j int) byte {
		if j < len(s) {
			return s[j]
		}
		return 0
	}
	sign := func(x int) int {
		switch {
		case x < 0:
			return -1
		case x > 0:
			return 1
		}
		return 0
	}
	// Back up to the start of the digit run holding the difference.
	start := i
	for start > 0 && isDigit(a[start-1]) {
		start--
	}
	if start == i && (!isDigit(at(a, i)) || !isDigit(at(b, i))) {
		return sign(int(at(a, i)) - int(at(b, i)))
	}
	zeros := func(s string) int {
		j := start
		for j < len(s) && s[j] == '0' {
			j++
		}
		if j > start && !isDigit(at(s, j)) {
			j-- // a lone zero is the number zero, not padding
		}
		return j - start
	}
	za, zb := zeros(a), zeros(b)
	if za != zb {
		return sign(zb - za)
	}
	if za > 0 {
		return sign(int(at(a, i)) - int(at(b, i)))
	}
	runEnd := func(s string) int {
		j := start
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		return j
	}
	if la, lb := runEnd(a), runEnd(b); la != lb {
		return sign(la - lb)
	}
	return sign(int(at(a, i)) - int(at(b, i)))
}

// parseNumberPrefix reads a number from the start of s the way C's strtod
// does: leading white space, a sign, then digits with an optional
// fraction and exponent, or "inf", "infinity", "nan". Trailing text is
// ignored; ok is false when no number starts s.
func parseNumberPrefix(s string) (float64, bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	start := i
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	rest := strings.ToLower(s[i:min(len(s), i+8)])
	switch {
	case strings.HasPrefix(rest, "infinity"):
		return parseSpecial(s[start:i] + "inf")
	case strings.HasPrefix(rest, "inf"):
		return parseSpecial(s[start:i] + "inf")
	case strings.HasPrefix(rest, "nan"):
		return math.NaN(), true
	}
	digits := 0
	for i < len(s) && isDigit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			i = j
		}
	}
	f, err := strconv.ParseFloat(s[start:i], 64)
	if err != nil && !math.IsInf(f, 0) && f != 0 {
		return 0, false
	}
	return f, true
}

func parseSpecial(s string) (float64, bool) {
	if strings.HasPrefix(s, "-") {
		return math.Inf(-1), true
	}
	return math.Inf(1), true
}

// formatInterval prints seconds as days+hh:mm:ss, leaving out leading
// zero fields: 67 is "1:07", 1472523 is "17+01:02:03".
func formatInterval(secs int64) string {
	days := secs / 86400
	secs %= 86400
	hours := secs / 3600
	secs %= 3600
	mins := secs / 60
	secs %= 60
	abs := func(x int64) int64 {
		if x < 0 {
			return -x
		}
		return x
	}
	two := func(x int64) string {
		s := strconv.FormatInt(abs(x), 10)
		if len(s) < 2 {
			s = "0" + s
		}
		return s
	}
	switch {
	case days != 0:
		return strconv.FormatInt(days, 10) + "+" + two(hours) + ":" + two(mins) + ":" + two(secs)
	case hours != 0:
		return strconv.FormatInt(hours, 10) + ":" + two(mins) + ":" + two(secs)
	case mins != 0:
		return strconv.FormatInt(mins, 10) + ":" + two(secs)
	}
	return strconv.FormatInt(secs, 10)
}
