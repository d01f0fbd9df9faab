package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// adFormat is how q, status and history print ads: -json, -long, -af.
type adFormat struct {
	json, long bool
	af         []string // -af attributes
	afOpts     string   // the letters after -af: (j, l, h, V, r, t, n, g, ',')
	formats    []formatPair
	constraint string
}

// formatPair is one -format FMT ATTR: a printf-style format of one
// attribute (or expression) of each ad.
type formatPair struct{ format, attr string }

// parseAdOption handles the options shared by q, status and history;
// it reports whether it consumed the option.
func (f *adFormat) parseAdOption(a *argList, name, val string, has bool) bool {
	switch {
	case name == "json":
		f.json = true
	case name == "long" || name == "l":
		f.long = true
	case name == "constraint":
		f.constraint = a.value(name, val, has)
	case name == "af" || strings.HasPrefix(name, "af:") || name == "autoformat" || strings.HasPrefix(name, "autoformat:"):
		if i := strings.IndexByte(name, ':'); i >= 0 {
			f.afOpts = name[i+1:]
			for _, r := range f.afOpts {
				if !strings.ContainsRune(afLetters, r) {
					a.err = fmt.Errorf("-%s: unknown option %q after the colon: known are j (job id first), l (label each value), h (a header), V (strings quoted), r (expressions unevaluated), t (tabs), n (newlines), g (a blank line between ads) and ','", name, r)
					return true
				}
			}
		}
		// -af takes every following argument that is not an option.
		for a.i < len(a.args) {
			if _, _, _, isOpt := opt(a.args[a.i]); isOpt {
				break
			}
			f.af = append(f.af, a.args[a.i])
			a.i++
		}
		if len(f.af) == 0 {
			a.err = fmt.Errorf("-af needs at least one attribute")
		}
	case name == "format" || name == "fmt":
		format := a.value(name, val, has)
		attr, ok := a.next()
		if !ok && a.err == nil {
			a.err = fmt.Errorf("-format needs a format and an attribute, e.g. -format '%%d\\n' ClusterId")
		}
		f.formats = append(f.formats, formatPair{format, attr})
	default:
		return false
	}
	if a.err == nil {
		a.err = f.conflict()
	}
	return true
}

// conflict says which of the formats chosen cannot go together: -json
// and -long print whole ads, and -af or -format chosen attributes, so one
// of them was silently dropped.
func (f *adFormat) conflict() error {
	var whole, some []string
	if f.json {
		whole = append(whole, "-json")
	}
	if f.long {
		whole = append(whole, "-long")
	}
	if len(f.af) > 0 {
		some = append(some, "-af")
	}
	if len(f.formats) > 0 {
		some = append(some, "-format")
	}
	switch {
	case len(whole) > 1:
		return fmt.Errorf("-json and -long cannot go together: choose one")
	case len(whole) == 1 && len(some) > 0:
		return fmt.Errorf("%s prints whole ads and %s chosen attributes: choose one (%s alone, or %s)", whole[0], strings.Join(some, " and "), whole[0], strings.Join(some, " and "))
	}
	return nil
}

// afLetters are the options -af takes after a colon, as condor_q's.
const afLetters = "jlhVrtng,"

// custom reports whether the user chose an ad format over the table.
func (f *adFormat) custom() bool { return f.json || f.long || len(f.af) > 0 || len(f.formats) > 0 }

// projection is the attributes -af and -format need from the schedd
// (nil: whole ads, as -json, -long and expressions need).
func (f *adFormat) projection() []string {
	if f.json || f.long || len(f.af)+len(f.formats) == 0 {
		return nil
	}
	names := append([]string(nil), f.af...)
	for _, p := range f.formats {
		names = append(names, p.attr)
	}
	return afAttrs(names)
}

// printAds prints ads in the chosen format.
func (f *adFormat) printAds(w io.Writer, ads []*classad.Ad, idOf func(*classad.Ad) string) {
	switch {
	case f.json:
		printJSON(w, ads)
	case f.long:
		for _, ad := range ads {
			fmt.Fprint(w, ad.LongString())
			if !strings.HasSuffix(ad.LongString(), "\n") {
				fmt.Fprintln(w)
			}
			fmt.Fprintln(w)
		}
	default:
		if len(f.formats) > 0 {
			f.printFormats(w, ads)
		}
		if len(f.af) > 0 {
			f.printAF(w, ads, idOf)
		}
	}
}

// printFormats prints the -format pairs of each ad, one after the other
// with no separator of their own (the formats carry their newlines, as
// "\n"). A pair whose attribute the ad lacks prints nothing.
func (f *adFormat) printFormats(w io.Writer, ads []*classad.Ad) {
	for _, ad := range ads {
		var b strings.Builder
		for _, p := range f.formats {
			v := evalAttrOrExpr(ad, p.attr)
			if v.IsUndefined() {
				if _, ok := ad.Lookup(p.attr); !ok {
					continue
				}
			}
			b.WriteString(formatValue(unescape(p.format), v))
		}
		io.WriteString(w, b.String())
	}
}

// formatValue renders v through a printf-style format with one
// conversion, converting v to what the conversion wants: %d %i %x %X %o
// %c an integer, %f %e %g %E %G a real, %s its string (a string's
// characters, an expression's text otherwise), %v the value as -af shows
// it, %V as a ClassAd literal. Flags, width and precision are kept.
func formatValue(format string, v classad.Value) string {
	var b strings.Builder
	done := false
	for i := 0; i < len(format); i++ {
		ch := format[i]
		if ch != '%' {
			b.WriteByte(ch)
			continue
		}
		j := i + 1
		for j < len(format) && strings.IndexByte("-+ #0123456789.", format[j]) >= 0 {
			j++
		}
		if j >= len(format) {
			b.WriteString(format[i:])
			break
		}
		verb, spec := format[j], format[i:j]
		i = j
		if verb == '%' {
			b.WriteByte('%')
			continue
		}
		if done { // one conversion per format: the rest is text
			b.WriteString(spec + string(verb))
			continue
		}
		done = true
		str, isStr := v.StringValue()
		switch verb {
		case 'd', 'i', 'x', 'X', 'o', 'c':
			n, ok := v.NumberValue()
			if !ok && isStr {
				n, ok = parseNumber(str)
			}
			if !ok {
				b.WriteString(fmt.Sprintf(spec+"s", v.String()))
				continue
			}
			if verb == 'i' {
				verb = 'd'
			}
			if verb == 'c' {
				b.WriteString(fmt.Sprintf(spec+"c", rune(int64(n))))
				continue
			}
			b.WriteString(fmt.Sprintf(spec+string(verb), int64(n)))
		case 'f', 'F', 'e', 'E', 'g', 'G':
			n, ok := v.NumberValue()
			if !ok && isStr {
				n, ok = parseNumber(str)
			}
			if !ok {
				b.WriteString(fmt.Sprintf(spec+"s", v.String()))
				continue
			}
			b.WriteString(fmt.Sprintf(spec+string(verb), n))
		case 'V':
			b.WriteString(fmt.Sprintf(spec+"s", v.String()))
		default: // s, v and anything else: the value's text
			if !isStr {
				str = v.String()
			}
			b.WriteString(fmt.Sprintf(spec+"s", str))
		}
	}
	return b.String()
}

func parseNumber(s string) (float64, bool) {
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return n, err == nil
}

// unescape turns the escapes HTCondor's tools accept in -format strings
// (\n, \t, \\, ...) into their characters.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i == len(s)-1 {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '\\':
			b.WriteByte('\\')
		case '"':
			b.WriteByte('"')
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// printJSON prints a JSON array of ads, one attribute a line. An empty
// result is "[]" (HTCondor prints nothing, which no JSON parser accepts).
func printJSON(w io.Writer, ads []*classad.Ad) {
	raws := make([]json.RawMessage, 0, len(ads))
	for _, ad := range ads {
		if raw, err := json.Marshal(ad); err == nil {
			raws = append(raws, raw)
		}
	}
	printRawJSON(w, raws)
}

// printRawJSON prints ads that are JSON already as printJSON prints
// decoded ones (an ad's JSON is canonical: decoding and encoding it again
// gives the same bytes; TestRawJSONEqualsPrintJSON). Each raw must be
// one valid JSON value, as DecodeQueryChunk and encoding/json give them:
// it is not checked again.
func printRawJSON(w io.Writer, raws []json.RawMessage) {
	if len(raws) == 0 {
		fmt.Fprintln(w, "[]")
		return
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	defer bw.Flush()
	fmt.Fprintln(bw, "[")
	var buf []byte
	for i, raw := range raws {
		// Checked already: by DecodeQueryChunk, or encoding/json.
		buf = events.AppendIndentValidJSON(buf[:0], raw, "  ")
		bw.Write(buf)
		if i < len(raws)-1 {
			fmt.Fprintln(bw, ",")
		} else {
			fmt.Fprintln(bw)
		}
	}
	fmt.Fprintln(bw, "]")
}

// printAF prints -af output: one line per ad, the attributes' values.
func (f *adFormat) printAF(w io.Writer, ads []*classad.Ad, idOf func(*classad.Ad) string) {
	sep := " "
	if strings.Contains(f.afOpts, "t") {
		sep = "\t"
	}
	if strings.Contains(f.afOpts, ",") {
		sep = ","
	}
	withID := strings.Contains(f.afOpts, "j") && idOf != nil
	if strings.Contains(f.afOpts, "h") {
		var hdr []string
		if withID {
			hdr = append(hdr, "ID")
		}
		hdr = append(hdr, f.af...)
		fmt.Fprintln(w, strings.Join(hdr, sep))
	}
	for _, ad := range ads {
		var parts []string
		if withID {
			parts = append(parts, idOf(ad))
		}
		for _, attr := range f.af {
			var s string
			switch {
			case strings.Contains(f.afOpts, "r"):
				// The expression as the ad has it, unevaluated (an
				// argument that is no attribute: as given).
				s = attr
				if e, ok := ad.Lookup(attr); ok {
					s = e.String()
				}
			default:
				v := evalAttrOrExpr(ad, attr)
				s = v.String() // V: strings quoted, as ClassAd literals
				if str, ok := v.StringValue(); ok && !strings.Contains(f.afOpts, "V") {
					s = str
				}
			}
			if strings.Contains(f.afOpts, "l") {
				s = attr + " = " + s
			}
			parts = append(parts, s)
		}
		if strings.Contains(f.afOpts, "n") {
			fmt.Fprintln(w, strings.Join(parts, "\n"))
		} else {
			fmt.Fprintln(w, strings.Join(parts, sep))
		}
		if strings.Contains(f.afOpts, "g") {
			fmt.Fprintln(w)
		}
	}
}

// evalAttrOrExpr evaluates an -af argument: an attribute name, or any
// ClassAd expression evaluated in the ad.
func evalAttrOrExpr(ad *classad.Ad, s string) classad.Value {
	if _, ok := ad.Lookup(s); ok {
		return ad.Eval(s)
	}
	e, err := classad.ParseExpr(s)
	if err != nil {
		return classad.Error()
	}
	return e.EvalWith(ad, nil, wallClock())
}

// wallClock lets time() and CurrentTime in a user's expression read the
// clock, as they do in HTCondor's tools.
func wallClock() *classad.EvalOptions { return &classad.EvalOptions{Now: time.Now} }

// decodeAds parses JSON-encoded ads.
func decodeAds(raws []json.RawMessage) []*classad.Ad {
	out := make([]*classad.Ad, 0, len(raws))
	for _, r := range raws {
		var ad classad.Ad
		if err := json.Unmarshal(r, &ad); err == nil {
			out = append(out, &ad)
		}
	}
	return out
}

// Time and duration formats of the HTCondor tools.
func fmtDate(unix int64) string {
	if unix <= 0 {
		return "??/?? ??:??"
	}
	return time.Unix(unix, 0).Format("1/2 15:04")
}

func fmtDuration(secs int64) string {
	if secs < 0 {
		secs = 0
	}
	d := secs / 86400
	secs %= 86400
	return fmt.Sprintf("%d+%02d:%02d:%02d", d, secs/3600, secs%3600/60, secs%60)
}

func intAttr(ad *classad.Ad, name string) int64 {
	v, _ := ad.EvalInt(name)
	return v
}

func strAttr(ad *classad.Ad, name string) string {
	v, _ := ad.EvalString(name)
	return v
}
