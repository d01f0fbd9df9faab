// Command vmpool runs a pool that runs virtual machines as batch jobs, in
// the manner of HTCondor's vm universe, and is its user interface.
//
//	vmpool up            one process: embedded NATS + schedd + negotiator + startd(s)
//	vmpool schedd|negotiator|startd   the daemons as separate processes
//	vmpool submit FILE   queue the jobs of a submit description
//	vmpool q | status | history | rm | hold | release | vacate-job
//	vmpool classad eval|match
//
// Invoked through a link named condor_submit, condor_q, ... it behaves as
// that command. This package is the only reader of flags, the environment
// and signals; it wires the daemons together.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vmpool/vmpool/cmd/vmpool/classadcmd"
	"github.com/vmpool/vmpool/events"
)

// cli carries what every command needs; tests build one with buffers.
type cli struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	getenv         func(string) string
	// creds, when set, are the credentials the tools use (a pool this
	// process started itself); otherwise they are looked up.
	creds *events.Credentials
	// plain: pools that turned out to have no credentials, though a file
	// vmpool up left for an earlier pool at the same address says
	// otherwise (see connect).
	plain map[string]bool
}

type command struct {
	name    string
	summary string
	run     func(c *cli, ctx context.Context, args []string) int
}

var commands []command

func init() {
	commands = []command{
		{"up", "run a whole pool in one process (embedded NATS, schedd, negotiator, startds)", (*cli).up},
		{"schedd", "run a schedd against an existing pool", (*cli).runSchedd},
		{"negotiator", "run a negotiator against an existing pool", (*cli).runNegotiator},
		{"startd", "run a startd (an execute machine) against an existing pool", (*cli).runStartd},
		{"submit", "queue the jobs of a submit description file (condor_submit)", (*cli).submit},
		{"q", "show the job queue (condor_q)", (*cli).q},
		{"status", "show the machines of the pool (condor_status)", (*cli).status},
		{"history", "show jobs that left the queue (condor_history)", (*cli).history},
		{"rm", "remove jobs (condor_rm)", func(c *cli, ctx context.Context, a []string) int { return c.act(ctx, "rm", a) }},
		{"hold", "hold jobs (condor_hold)", func(c *cli, ctx context.Context, a []string) int { return c.act(ctx, "hold", a) }},
		{"release", "release held jobs (condor_release)", func(c *cli, ctx context.Context, a []string) int { return c.act(ctx, "release", a) }},
		{"vacate-job", "evict running jobs back to the queue (condor_vacate_job)", func(c *cli, ctx context.Context, a []string) int { return c.act(ctx, "vacate", a) }},
		{"classad", "evaluate and match ClassAd expressions", func(c *cli, _ context.Context, a []string) int { return classadcmd.Main(a, c.stdout, c.stderr) }},
		{"schedds", "list the schedds the pool has had and which run now; -retire NAME forgets one gone for good", (*cli).schedds},
		{"drain", "drain execute machines: no new jobs, running VMs vacated (condor_drain)", (*cli).drain},
		{"wait", "wait for the jobs of a user log to finish (condor_wait)", (*cli).wait},
		{"userlog", "summarise the runs of the jobs of user logs: wall, good and CPU time per slot and job (condor_userlog)", (*cli).userlogCmd},
		{"watch", "follow your jobs live from the pool's events (condor_watch_q)", (*cli).watch},
		{"events", "print the pool's events as stored, or follow them (--follow)", (*cli).eventsCmd},
		{"replay", "rebuild a daemon's state from its event log, a job's timeline, or check the logs", (*cli).replay},
		{"config", "show the effective configuration (condor_config_val)", (*cli).config},
		{"links", "make condor_submit, condor_q, ... in a directory: links to this binary, which answers to them", (*cli).links},
		{"image", "write an example guest (hello, count) or read what a guest wrote on its disk", (*cli).image},
		{"nats", "run the pool's NATS server with JetStream alone (for separate daemons)", (*cli).nats},
		{"emulate", "act as Xen's xl or VMware's vmrun, running guests under QEMU (also through links named xl, vmrun)", (*cli).emulate},
		{"bench", "measure the pool's speed on real parts (submit, match, turnaround, query, replay, memory, checkpoint)", (*cli).bench},
	}
}

// condorNames maps HTCondor command names (links to this binary) to ours.
var condorNames = map[string]string{
	"condor_submit": "submit", "condor_q": "q", "condor_status": "status", "condor_history": "history",
	"condor_rm": "rm", "condor_hold": "hold", "condor_release": "release", "condor_vacate_job": "vacate-job",
	"condor_config_val": "config", "condor_wait": "wait", "condor_watch_q": "watch", "condor_drain": "drain",
	"condor_userlog": "userlog",
}

func main() {
	raiseProcs(os.Getenv)
	c := &cli{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.Getenv}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := c.main(ctx, os.Args)
	stop()
	os.Exit(code)
}

func (c *cli) main(ctx context.Context, argv []string) int {
	name := filepath.Base(argv[0])
	args := argv[1:]
	if sub, ok := condorNames[name]; ok {
		return c.dispatch(ctx, sub, args)
	}
	if isEmulatorName(name) {
		return c.emulateAs(ctx, argv[0], args)
	}
	if len(args) == 2 && args[0] == "help" {
		// vmpool help COMMAND is vmpool COMMAND -h.
		return c.dispatch(ctx, args[1], []string{"-h"})
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		c.usage(c.stdout)
		return 0
	}
	return c.dispatch(ctx, args[0], args[1:])
}

func (c *cli) dispatch(ctx context.Context, name string, args []string) int {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd.run(c, ctx, args)
		}
	}
	fmt.Fprintf(c.stderr, "vmpool: unknown command %q; run 'vmpool help' for the list\n", name)
	return 2
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "vmpool runs virtual machines as batch jobs, after HTCondor's vm universe.")
	fmt.Fprintln(w, "\nUsage: vmpool COMMAND [arguments]   (or through a condor_* link)")
	fmt.Fprintln(w, "\nCommands:")
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintln(w, "\n'vmpool help COMMAND' (or 'vmpool COMMAND -h') shows a command's options.")
	fmt.Fprintln(w, "Clients find the pool at $VMPOOL_URL (default nats://127.0.0.1:4222) or -pool URL.")
}

// errorf prints "vmpool CMD: message" and returns exit status 1.
func (c *cli) errorf(cmd, format string, args ...any) int {
	fmt.Fprintf(c.stderr, "vmpool %s: %s\n", cmd, fmt.Sprintf(format, args...))
	return 1
}

// usageErr prints a usage problem and returns exit status 2.
func (c *cli) usageErr(cmd, format string, args ...any) int {
	fmt.Fprintf(c.stderr, "vmpool %s: %s\n", cmd, fmt.Sprintf(format, args...))
	return 2
}

// opt normalises an HTCondor-style option: "-json", "--json" and
// "-json=x" all give ("json", "x", true). Non-options give ok false.
func opt(arg string) (name, value string, hasValue, ok bool) {
	if !strings.HasPrefix(arg, "-") || arg == "-" || isNumber(arg) {
		return "", "", false, false
	}
	s := strings.TrimLeft(arg, "-")
	name, value, hasValue = strings.Cut(s, "=")
	// The name is case-insensitive; the letters after its colon are not
	// (-af:V quotes strings).
	if head, tail, colon := strings.Cut(name, ":"); colon {
		return strings.ToLower(head) + ":" + tail, value, hasValue, true
	}
	return strings.ToLower(name), value, hasValue, true
}

func isNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' {
			return false
		}
	}
	return true
}

// argList walks a command's arguments; options that take a value read it
// from "=value" or the next argument.
type argList struct {
	args []string
	i    int
	cmd  string
	err  error
}

func (a *argList) next() (string, bool) {
	if a.i >= len(a.args) {
		return "", false
	}
	a.i++
	return a.args[a.i-1], true
}

// value returns an option's value.
func (a *argList) value(name, inline string, has bool) string {
	if has {
		return inline
	}
	v, ok := a.next()
	if !ok {
		a.err = fmt.Errorf("option -%s needs a value", name)
		return ""
	}
	return v
}
