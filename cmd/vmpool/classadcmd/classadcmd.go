// Package classadcmd implements "vmpool classad": evaluate a ClassAd
// expression against ads given on the command line, and explain why a
// job and a machine match or not, clause by clause. It is a thin shell
// over package classad; the top-level vmpool command calls Main with the
// arguments after "classad". It reads the clock, and a file or stdin for
// an @FILE argument, and nothing else.
package classadcmd

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vmpool/vmpool/classad"
)

// Exit codes.
const (
	exitOK      = 0
	exitNoMatch = 1
	exitUsage   = 2
)

const usage = `usage:
  vmpool classad eval [--my AD] [--target AD] [--now SECONDS] [--seed N] [--strict] EXPR
  vmpool classad match [--now SECONDS] [--seed N] JOBAD MACHINEAD
  vmpool classad help

eval prints the value of EXPR in ClassAd syntax on its last line.
  --my AD        the ad EXPR is evaluated in (MY)
  --target AD    the other ad (TARGET); without it TARGET.x is undefined
  --now SECONDS  the clock for time() and CurrentTime (default: now)
  --seed N       the seed of random() (default: from the clock)
  --strict       bare names never fall back to TARGET (STRICT_CLASSAD_EVALUATION)
  Everything after the options (or after --) is the expression.

match evaluates each ad's Requirements with the other ad as TARGET, shows
every top-level && clause with its value, marks the failing ones, and
exits 0 if the ads match, 1 if not.

AD is an ad in new syntax, such as '[ Memory = 2048; Arch = "X86_64" ]', or
@FILE (@- for stdin) holding one ad in new syntax, old syntax
(condor_q -long) or JSON (condor_q -json).

Exit status: 0 success (or match), 1 no match, 2 usage or syntax error.
`

// Main runs "vmpool classad" with args (the words after "classad") and
// returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "eval":
		return runEval(args[1:], stdout, stderr)
	case "match":
		return runMatch(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "vmpool classad: unknown command %q\n%s", args[0], usage)
	return exitUsage
}

// options are the flags eval and match share.
type options struct {
	my, target string // AD arguments, "" if not given
	now        *int64
	seed       *uint64
	strict     bool
	rest       []string
}

// parseOptions reads the known options and stops at the first word that
// is not one, so that an expression may start with '-' ("-1 + x").
func parseOptions(cmd string, args []string, allowAds bool) (options, error) {
	var o options
	// Options may come before or after the expression or ads (vmpool
	// classad eval 'EXPR' --target '[...]'); "--" ends them.
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.rest = append(o.rest, args[i+1:]...)
			return o, nil
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			o.rest = append(o.rest, a)
			continue
		}
		takesValue := true
		switch name {
		case "my", "target":
			if !allowAds {
				return o, fmt.Errorf("%s takes no --%s; give the ads as arguments", cmd, name)
			}
		case "now", "seed":
		case "strict":
			takesValue = false
		case "h", "help":
			return o, errHelp
		default:
			o.rest = append(o.rest, a) // not an option: part of the expression (-1)
			continue
		}
		if takesValue && !hasValue {
			if i+1 >= len(args) {
				return o, fmt.Errorf("option --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		switch name {
		case "my":
			o.my = value
		case "target":
			o.target = value
		case "now":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return o, fmt.Errorf("--now %q: want seconds since the epoch", value)
			}
			o.now = &n
		case "seed":
			n, err := strconv.ParseUint(value, 10, 64)
			if err != nil {
				return o, fmt.Errorf("--seed %q: want a non-negative integer", value)
			}
			o.seed = &n
		case "strict":
			o.strict = true
		}
	}
	return o, nil
}

var errHelp = errors.New("help requested")

// evalOptions gives the evaluation the clock, a random source and the
// local zone: this shell, not package classad, reads them.
func (o options) evalOptions() *classad.EvalOptions {
	now := time.Now
	if o.now != nil {
		t := time.Unix(*o.now, 0)
		now = func() time.Time { return t }
	}
	seed := uint64(time.Now().UnixNano())
	if o.seed != nil {
		seed = *o.seed
	}
	return &classad.EvalOptions{
		Now:      now,
		Rand:     rand.NewPCG(seed, seed^0x9e3779b97f4a7c15),
		Location: time.Local,
		Strict:   o.strict,
	}
}

func runEval(args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions("eval", args, true)
	if err != nil {
		return usageError(err, stdout, stderr)
	}
	if len(o.rest) == 0 {
		return usageError(errors.New("eval needs an expression"), stdout, stderr)
	}
	src := strings.Join(o.rest, " ")
	expr, err := classad.ParseExpr(src)
	if err != nil {
		fmt.Fprintf(stderr, "vmpool classad eval: %v\n", err)
		return exitUsage
	}
	var my, target *classad.Ad
	if o.my != "" {
		if my, err = loadAd(o.my); err != nil {
			fmt.Fprintf(stderr, "vmpool classad eval: --my: %v\n", err)
			return exitUsage
		}
	}
	if o.target != "" {
		if target, err = loadAd(o.target); err != nil {
			fmt.Fprintf(stderr, "vmpool classad eval: --target: %v\n", err)
			return exitUsage
		}
	}
	for _, fn := range expr.UnknownFunctions() {
		fmt.Fprintf(stderr, "vmpool classad eval: warning: unknown function %s() evaluates to error\n", fn)
	}
	if my == nil {
		my = classad.NewAd()
	}
	fmt.Fprintln(stdout, expr.EvalWith(my, target, o.evalOptions()))
	return exitOK
}

func runMatch(args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions("match", args, false)
	if err != nil {
		return usageError(err, stdout, stderr)
	}
	if len(o.rest) != 2 {
		return usageError(errors.New("match needs a job ad and a machine ad"), stdout, stderr)
	}
	job, err := loadAd(o.rest[0])
	if err != nil {
		fmt.Fprintf(stderr, "vmpool classad match: job ad: %v\n", err)
		return exitUsage
	}
	machine, err := loadAd(o.rest[1])
	if err != nil {
		fmt.Fprintf(stderr, "vmpool classad match: machine ad: %v\n", err)
		return exitUsage
	}
	opts := o.evalOptions()
	matched := classad.MatchWith(job, machine, opts)
	if matched {
		fmt.Fprintln(stdout, "Job and machine match.")
	} else {
		fmt.Fprintln(stdout, "Job and machine do not match.")
	}
	fmt.Fprintln(stdout)
	explain(stdout, "Job", job, machine, opts)
	fmt.Fprintln(stdout)
	explain(stdout, "Machine", machine, job, opts)
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "Job Rank of the machine: %s\n", classad.Real(classad.RankWith(job, machine, opts)))
	fmt.Fprintf(stdout, "Machine Rank of the job: %s\n", classad.Real(classad.RankWith(machine, job, opts)))
	if matched {
		return exitOK
	}
	return exitNoMatch
}

// explain prints side's Requirements clause by clause.
func explain(w io.Writer, side string, owner, other *classad.Ad, opts *classad.EvalOptions) {
	if _, ok := owner.Lookup("Requirements"); !ok {
		fmt.Fprintf(w, "%s has no Requirements, so it matches nothing.\n", side)
		return
	}
	v := owner.EvalWith("Requirements", other, opts)
	verdict := "satisfied"
	if !v.IsTrue() {
		verdict = "NOT satisfied"
	}
	fmt.Fprintf(w, "%s Requirements (MY = %s, TARGET = %s): %s, %s\n", side,
		strings.ToLower(side), otherSide(side), v, verdict)
	clauses := classad.ExplainWith(owner, other, opts)
	width := 0
	for _, c := range clauses {
		width = max(width, len(c.Value.String()))
	}
	for i, c := range clauses {
		line := fmt.Sprintf("  [%d] %-*s  %s", i+1, width, c.Value, c.Expr)
		if !c.OK() {
			line += "  <- fails"
		}
		fmt.Fprintln(w, line)
	}
}

func otherSide(side string) string {
	if side == "Job" {
		return "machine"
	}
	return "job"
}

// loadAd reads an AD argument: an ad literal, or @FILE / @- holding one
// ad in new, old or JSON syntax.
func loadAd(arg string) (*classad.Ad, error) {
	src, where := arg, ""
	if strings.HasPrefix(arg, "@") {
		where = arg[1:]
		var data []byte
		var err error
		if where == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(where)
		}
		if err != nil {
			return nil, fmt.Errorf("read ad: %w", err)
		}
		src = string(data)
	}
	ads, format, err := classad.ParseAds(src)
	if err != nil {
		if where != "" {
			return nil, fmt.Errorf("%s (%s syntax): %w", where, format, err)
		}
		return nil, fmt.Errorf("%s syntax: %w", format, err)
	}
	switch len(ads) {
	case 1:
		return ads[0], nil
	case 0:
		return nil, errors.New("no ad found")
	}
	return nil, fmt.Errorf("found %d ads, want one", len(ads))
}

func usageError(err error, stdout, stderr io.Writer) int {
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "vmpool classad: %v\n%s", err, usage)
	return exitUsage
}
