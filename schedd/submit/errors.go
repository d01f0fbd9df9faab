package submit

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrNeedClusterID is returned by Parse when the description uses
// $(Cluster) or $(ClusterId) (directly or through $(JobId)) and
// Options.ClusterID is 0. The caller allocates a cluster id and parses
// again. It is returned only when the file has no other problem; checks of
// values built from the cluster id (log = job_$(Cluster).log) wait for the
// second parse.
var ErrNeedClusterID = errors.New("submit: the description uses $(ClusterId): parse again with Options.ClusterID set")

// Error is one problem a user must fix in a submit description: where it is,
// which command, a stable code (see Codes), what is wrong and how to fix it.
type Error struct {
	File    string // the submit file as given, "-append" for Options.Append lines, or "<stdin>"
	Line    int    // 1-based line of the offending command; for a missing command, the queue statement's line
	Command string // the submit command, e.g. "vm_memory"; empty for problems of a whole line
	Code    string // stable, kebab-case, e.g. "vm-memory-invalid"
	Msg     string
	Fix     string
}

// Error formats the problem as
// `hello.sub:7: vm_memory: vm_memory is incorrectly specified ("-5") [vm-memory-invalid]; fix: ...`.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	if e.Command != "" {
		b.WriteString(e.Command)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	fmt.Fprintf(&b, " [%s]", e.Code)
	if e.Fix != "" {
		b.WriteString("; fix: ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Errors is every problem found in one submit description, in file order.
// errors.As(err, &e) with e a *Error yields the first.
type Errors []*Error

// Error lists the problems, one a line.
func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap exposes each *Error to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// maxErrors bounds the report: binary garbage must not yield a million lines.
const maxErrors = 50

// problems collects errors and warnings while parsing, without duplicates.
type problems struct {
	errs     []*Error
	seen     map[string]bool
	warnings []string
	wseen    map[string]bool
}

func (p *problems) add(e *Error) {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	k := fmt.Sprintf("%s\x00%d\x00%s\x00%s\x00%s", e.File, e.Line, e.Code, e.Command, e.Msg)
	if p.seen[k] {
		return
	}
	p.seen[k] = true
	if e.Fix == "" {
		e.Fix = defaultFix(e.Code)
	}
	p.errs = append(p.errs, e)
}

// has reports whether an error with code was added.
func (p *problems) has(code string) bool {
	for _, e := range p.errs {
		if e.Code == code {
			return true
		}
	}
	return false
}

func (p *problems) warn(file string, line int, format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	if file != "" {
		w = fmt.Sprintf("%s:%d: %s", file, line, w)
	}
	if p.wseen == nil {
		p.wseen = map[string]bool{}
	}
	if p.wseen[w] {
		return
	}
	p.wseen[w] = true
	p.warnings = append(p.warnings, w)
}

// result orders the errors by place and caps their number.
func (p *problems) result() error {
	if len(p.errs) == 0 {
		return nil
	}
	es := append(Errors(nil), p.errs...)
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if (a.File == "-append") != (b.File == "-append") {
			return b.File == "-append"
		}
		return a.Line < b.Line
	})
	if len(es) > maxErrors {
		last := es[maxErrors-1]
		es = append(es[:maxErrors-1:maxErrors-1], &Error{
			File: last.File, Line: last.Line, Code: "too-many-errors",
			Msg: fmt.Sprintf("%d more problems not shown", len(p.errs)-(maxErrors-1)),
			Fix: defaultFix("too-many-errors"),
		})
	}
	return es
}
