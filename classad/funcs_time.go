package classad

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Absolute times are kept within years 0000-9999 so that they always
// print in the four-digit-year form absTime() parses.
const (
	minAbsSecs = -62167219200 // 0000-01-01T00:00:00Z
	maxAbsSecs = 253402300799 // 9999-12-31T23:59:59Z
)

func (c *evalCtx) location() *time.Location {
	if c.opts.Location != nil {
		return c.opts.Location
	}
	return time.UTC
}

// zoneOffset is the offset of the evaluation's local zone at secs.
func (c *evalCtx) zoneOffset(secs int64) int {
	_, off := time.Unix(secs, 0).In(c.location()).Zone()
	return off
}

// absNow is the current time as an absolute time in the local zone.
func (c *evalCtx) absNow() Value {
	if c.opts.Now == nil {
		return Error()
	}
	secs := c.opts.Now().Unix()
	return mkAbs(secs, c.zoneOffset(secs))
}

func mkAbs(secs int64, off int) Value {
	if secs < minAbsSecs || secs > maxAbsSecs || off <= -86400 || off >= 86400 {
		return Error()
	}
	return absTime(secs, off)
}

// absTimeFunc is absTime(), absTime(t) and absTime(t, zone): t is seconds
// since the epoch (integer, real, or relative time) or an absolute time;
// zone is seconds east of UTC (default: the local zone of the
// evaluation). A string t is parsed like an absTime literal.
func (c *evalCtx) absTimeFunc(n *node, f *frame) Value {
	switch len(n.args) {
	case 0:
		return c.absNow()
	case 1, 2:
	default:
		return Error()
	}
	t := c.eval(n.args[0], f)
	zone, haveZone := 0, len(n.args) == 2
	if haveZone {
		z := c.eval(n.args[1], f)
		switch z.k {
		case IntKind:
			zone = int(max(min(z.n, 1<<30), -1<<30))
		case RealKind, RelTimeKind:
			zi := truncInt(z.real())
			if zi.k != IntKind {
				return Error()
			}
			zone = int(max(min(zi.n, 1<<30), -1<<30))
		default:
			return Error()
		}
	}
	var secs int64
	switch t.k {
	case UndefinedKind:
		return t
	case IntKind:
		secs = t.n
	case RealKind, RelTimeKind:
		si := truncInt(t.real())
		if si.k != IntKind {
			return Error()
		}
		secs = si.n
	case AbsTimeKind:
		if !haveZone {
			return t
		}
		secs = t.secs()
	case StringKind:
		if haveZone {
			return Error()
		}
		secs, off, hasZone, ok := parseAbsTimeFields(t.str())
		if !ok {
			return Error()
		}
		if !hasZone {
			off = c.zoneOffset(secs)
		}
		return mkAbs(secs-int64(off), off)
	default:
		return Error()
	}
	if !haveZone {
		zone = c.zoneOffset(secs)
	}
	return mkAbs(secs, zone)
}

// relTimeOf is relTime(t): seconds (integer or real) as a relative time,
// an absolute time as its seconds since the epoch, a string parsed like a
// relTime literal.
func relTimeOf(t Value) Value {
	switch t.k {
	case UndefinedKind, RelTimeKind:
		return t
	case IntKind:
		return mkRel(float64(t.n))
	case RealKind:
		return mkRel(t.real())
	case AbsTimeKind:
		return mkRel(float64(t.secs()))
	case StringKind:
		v, ok := parseRelTime(t.str())
		if !ok {
			return Error()
		}
		return v
	}
	return Error()
}

// formatTime([t [, format]]) formats t (seconds since the epoch, or an
// absolute time in its own zone) like C's strftime; the default t is now
// and the default format "%c".
func (c *evalCtx) formatTime(n *node, f *frame) Value {
	if len(n.args) > 2 {
		return Error()
	}
	var t time.Time
	if len(n.args) == 0 {
		if c.opts.Now == nil {
			return Error()
		}
		t = c.opts.Now().In(c.location())
	} else {
		v := c.eval(n.args[0], f)
		switch v.k {
		case IntKind:
			if v.n < minAbsSecs || v.n > maxAbsSecs {
				return Error()
			}
			t = time.Unix(v.n, 0).In(c.location())
		case RealKind:
			si := truncInt(v.real())
			if si.k != IntKind || si.n < minAbsSecs || si.n > maxAbsSecs {
				return Error()
			}
			t = time.Unix(si.n, 0).In(c.location())
		case AbsTimeKind:
			t, _ = v.TimeValue()
		default:
			return Error()
		}
	}
	format := "%c"
	if len(n.args) == 2 {
		fv := c.eval(n.args[1], f)
		if fv.k != StringKind {
			return Error()
		}
		format = fv.str()
	}
	if !c.spend(len(format)) {
		return Error()
	}
	return String(strftime(t, format))
}

// formatAbsTime prints an absolute time as absTime() reads it:
// 2006-01-02T15:04:05+07:00.
func formatAbsTime(secs int64, off int) string {
	t := time.Unix(secs, 0).In(fixedZone(off))
	s := t.Format("2006-01-02T15:04:05")
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	return s + string(sign) + pad2(int64(off/3600)) + ":" + pad2(int64(off/60%60))
}

func pad2(x int64) string {
	s := strconv.FormatInt(x, 10)
	if len(s) < 2 {
		return "0" + s
	}
	return s
}

// parseAbsTime reads an absolute time the way HTCondor does: a four-digit
// year, then optional two-digit month, day, hour, minute and second, with
// any non-digits between, then an optional zone "Z", "+hh:mm" or "+hhmm".
// Without a zone the offset is defOff.
func parseAbsTime(s string, defOff int) (Value, bool) {
	secs, off, hasZone, ok := parseAbsTimeFields(s)
	if !ok {
		return Value{}, false
	}
	if !hasZone {
		off = defOff
	}
	v := mkAbs(secs-int64(off), off)
	return v, v.k == AbsTimeKind
}

// parseAbsTimeFields reads the fields of an absolute time: secs is the
// written date and time taken as UTC, off the written zone offset.
func parseAbsTimeFields(s string) (secs int64, off int, hasZone, ok bool) {
	s = strings.TrimRight(s, " \t\r\n\f\v")
	haveZone := false
	switch n := len(s); {
	case n > 1 && (s[n-1] == 'z' || s[n-1] == 'Z'):
		s, haveZone = s[:n-1], true
	case n > 5 && (s[n-5] == '+' || s[n-5] == '-') && allDigits(s[n-4:]):
		off, haveZone = zoneSecs(s[n-5], s[n-4:n-2], s[n-2:])
		s = s[:n-5]
	case n > 6 && (s[n-6] == '+' || s[n-6] == '-') && s[n-3] == ':' && allDigits(s[n-5:n-3]) && allDigits(s[n-2:]):
		off, haveZone = zoneSecs(s[n-6], s[n-5:n-3], s[n-2:])
		s = s[:n-6]
	}
	i := 0
	skip := func() {
		for i < len(s) && !isDigit(s[i]) {
			i++
		}
	}
	field := func(width int, def int) int {
		skip()
		if i+width > len(s) || !allDigits(s[i:i+width]) {
			return def
		}
		v, _ := strconv.Atoi(s[i : i+width])
		i += width
		return v
	}
	skip()
	if i+4 > len(s) || !allDigits(s[i:i+4]) {
		return 0, 0, false, false
	}
	year := field(4, 0)
	month := field(2, 1)
	day := field(2, 1)
	hour := field(2, 0)
	minute := field(2, 0)
	sec := field(2, 0)
	skip()
	if i < len(s) {
		return 0, 0, false, false // more digits than the format has fields
	}
	secs = time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).Unix()
	return secs, off, haveZone, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

func zoneSecs(sign byte, hh, mm string) (int, bool) {
	h, _ := strconv.Atoi(hh)
	m, _ := strconv.Atoi(mm)
	off := h*3600 + m*60
	if sign == '-' {
		off = -off
	}
	return off, true
}

// formatRelTime prints a relative time as relTime() reads it:
// [-][days+]hh:mm:ss[.fff], leading zero fields left out.
func formatRelTime(secs float64) string {
	var b strings.Builder
	if secs < 0 {
		b.WriteByte('-')
		secs = -secs
	}
	whole := math.Floor(secs)
	frac := secs - whole
	total := int64(whole)
	days, hours, mins, s := total/86400, total%86400/3600, total%3600/60, total%60
	sec := pad2(s)
	if frac != 0 {
		f := strconv.FormatFloat(float64(s)+frac, 'f', -1, 64)
		if f[0] == '.' || (len(f) > 1 && f[1] == '.') {
			f = "0" + f
		}
		sec = f
	}
	switch {
	case days != 0:
		b.WriteString(strconv.FormatInt(days, 10) + "+" + pad2(hours) + ":" + pad2(mins) + ":" + sec)
	case hours != 0:
		b.WriteString(pad2(hours) + ":" + pad2(mins) + ":" + sec)
	case mins != 0:
		b.WriteString(pad2(mins) + ":" + sec)
	default:
		b.WriteString(sec)
	}
	return b.String()
}

// parseRelTime reads a relative time: [-][days+][hh:][mm:]ss[.fff], or
// the same fields marked with d, h, m and s ("1d2h3m4s"), read from the
// right.
func parseRelTime(s string) (Value, bool) {
	i := len(s) - 1
	back := func() {
		for i >= 0 && isSpace(s[i]) {
			i--
		}
	}
	digitsBack := func() string {
		end := i + 1
		for i >= 0 && isDigit(s[i]) {
			i--
		}
		return s[i+1 : end]
	}
	atoi := func(d string) float64 {
		v, _ := strconv.ParseFloat("0"+d, 64)
		return v
	}
	var secs, mins, hours, days float64
	back()
	if i >= 0 && (s[i] == 's' || s[i] == 'S' || isDigit(s[i])) {
		if s[i] == 's' || s[i] == 'S' {
			i--
		}
		back()
		end := i + 1
		digitsBack()
		if i >= 0 && s[i] == '.' {
			i--
			digitsBack()
		}
		secs, _ = strconv.ParseFloat("0"+s[i+1:end], 64)
	}
	for _, unit := range []struct {
		marks string
		v     *float64
	}{{"mM:", &mins}, {"hH:", &hours}, {"dD+", &days}} {
		back()
		if i >= 0 && strings.IndexByte(unit.marks, s[i]) >= 0 {
			i--
			back()
			*unit.v = atoi(digitsBack())
		}
	}
	back()
	neg := false
	if i >= 0 && s[i] == '-' {
		neg = true
		i--
	}
	back()
	if i >= 0 {
		return Value{}, false
	}
	total := days*86400 + hours*3600 + mins*60 + secs
	if neg {
		total = -total
	}
	v := mkRel(total)
	return v, v.k == RelTimeKind
}

var (
	weekdays = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	months   = [...]string{"January", "February", "March", "April", "May", "June", "July",
		"August", "September", "October", "November", "December"}
)

// strftime formats t like C's strftime in the C locale.
func strftime(t time.Time, format string) string {
	var b strings.Builder
	num := func(x, width int, padc byte) {
		s := strconv.Itoa(x)
		for i := len(s); i < width; i++ {
			b.WriteByte(padc)
		}
		b.WriteString(s)
	}
	for i := 0; i < len(format); i++ {
		ch := format[i]
		if ch != '%' || i+1 == len(format) {
			b.WriteByte(ch)
			continue
		}
		i++
		switch format[i] {
		case 'a':
			b.WriteString(weekdays[t.Weekday()][:3])
		case 'A':
			b.WriteString(weekdays[t.Weekday()])
		case 'b', 'h':
			b.WriteString(months[t.Month()-1][:3])
		case 'B':
			b.WriteString(months[t.Month()-1])
		case 'c':
			b.WriteString(strftime(t, "%a %b %e %H:%M:%S %Y"))
		case 'C':
			num(t.Year()/100, 2, '0')
		case 'd':
			num(t.Day(), 2, '0')
		case 'D', 'x':
			b.WriteString(strftime(t, "%m/%d/%y"))
		case 'e':
			num(t.Day(), 2, ' ')
		case 'F':
			b.WriteString(strftime(t, "%Y-%m-%d"))
		case 'G':
			y, _ := t.ISOWeek()
			num(y, 1, '0')
		case 'g':
			y, _ := t.ISOWeek()
			num(y%100, 2, '0')
		case 'H':
			num(t.Hour(), 2, '0')
		case 'I':
			num((t.Hour()+11)%12+1, 2, '0')
		case 'j':
			num(t.YearDay(), 3, '0')
		case 'k':
			num(t.Hour(), 2, ' ')
		case 'l':
			num((t.Hour()+11)%12+1, 2, ' ')
		case 'm':
			num(int(t.Month()), 2, '0')
		case 'M':
			num(t.Minute(), 2, '0')
		case 'n':
			b.WriteByte('\n')
		case 'p':
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case 'r':
			b.WriteString(strftime(t, "%I:%M:%S %p"))
		case 'R':
			b.WriteString(strftime(t, "%H:%M"))
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'S':
			num(t.Second(), 2, '0')
		case 't':
			b.WriteByte('\t')
		case 'T', 'X':
			b.WriteString(strftime(t, "%H:%M:%S"))
		case 'u':
			num((int(t.Weekday())+6)%7+1, 1, '0')
		case 'U':
			num((t.YearDay()-1+7-int(t.Weekday()))/7, 2, '0')
		case 'V':
			_, w := t.ISOWeek()
			num(w, 2, '0')
		case 'w':
			num(int(t.Weekday()), 1, '0')
		case 'W':
			num((t.YearDay()-1+7-(int(t.Weekday())+6)%7)/7, 2, '0')
		case 'y':
			num(t.Year()%100, 2, '0')
		case 'Y':
			num(t.Year(), 1, '0')
		case 'z':
			_, off := t.Zone()
			sign := byte('+')
			if off < 0 {
				sign, off = '-', -off
			}
			b.WriteByte(sign)
			num(off/3600, 2, '0')
			num(off/60%60, 2, '0')
		case 'Z':
			name, off := t.Zone()
			if name == "" {
				name = "UTC"
				if off != 0 {
					name = strftime(t, "%z")
				}
			}
			b.WriteString(name)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}
