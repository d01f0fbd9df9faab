package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/schedd"
)

// verbs are how HTCondor's tools say what they did.
var verbs = map[string]struct{ cmd, done, doing string }{
	schedd.ActRemove:  {"rm", "marked for removal", "remove"},
	schedd.ActHold:    {"hold", "held", "hold"},
	schedd.ActRelease: {"release", "released", "release"},
	schedd.ActVacate:  {"vacate-job", "vacated", "vacate"},
}

// act runs rm, hold, release and vacate-job.
func (c *cli) act(ctx context.Context, kind string, args []string) int {
	v := verbs[kind]
	cmd := v.cmd
	var pool, name, reason, constraint string
	subcode := 0
	all, fast := false, false
	var targets []string
	a := &argList{args: args, cmd: cmd}
	for {
		arg, ok := a.next()
		if !ok {
			break
		}
		o, val, has, isOpt := opt(arg)
		if !isOpt {
			targets = append(targets, arg)
			continue
		}
		switch o {
		case "pool":
			pool = a.value(o, val, has)
		case "name":
			name = a.value(o, val, has)
		case "reason":
			reason = a.value(o, val, has)
		case "subcode":
			s := a.value(o, val, has)
			n, err := strconv.Atoi(s)
			if err != nil {
				return c.usageErr(cmd, "-subcode %q: want a number", s)
			}
			subcode = n
		case "constraint":
			constraint = a.value(o, val, has)
		case "all":
			all = true
		case "fast":
			// vacate-job -fast: at once, without a checkpoint (condor_vacate_job's);
			// the other verbs accept it and do as without it.
			fast = kind == schedd.ActVacate
		case "forcex":
			// accepted for compatibility
		case "h", "help":
			fast := ""
			if kind == schedd.ActVacate {
				fast = " [-fast]"
			}
			fmt.Fprintf(c.stdout, "usage: vmpool %s [-pool URL] [-name SCHEDD] [-reason TEXT]%s CLUSTER | CLUSTER.PROC | USER | -constraint EXPR | -all\n", cmd, fast)
			if fast != "" {
				fmt.Fprintln(c.stdout, "  -fast  evict at once, without a checkpoint or the guest's grace (the job still goes back to the queue)")
			}
			return 0
		default:
			return c.usageErr(cmd, "unknown option %s", arg)
		}
		if a.err != nil {
			return c.usageErr(cmd, "%v", a.err)
		}
	}
	if constraint != "" {
		if _, err := classad.ParseExpr(constraint); err != nil {
			return c.usageErr(cmd, "-constraint: %v", err)
		}
	}
	if len(targets) == 0 && constraint == "" && !all {
		return c.usageErr(cmd, "say which jobs: CLUSTER, CLUSTER.PROC, a user name, -constraint EXPR or -all")
	}
	var sels []schedd.Selector
	for _, t := range targets {
		if id, ok := events.ParseJobID(t); ok {
			sels = append(sels, schedd.Selector{Cluster: id.Cluster, Proc: id.Proc})
		} else if n, err := strconv.Atoi(t); err == nil && n > 0 {
			sels = append(sels, schedd.Selector{Cluster: n, Proc: -1})
		} else if strings.ContainsAny(t, ".") || strings.HasPrefix(t, "-") {
			return c.usageErr(cmd, "%q is neither CLUSTER, CLUSTER.PROC nor a user name", t)
		} else {
			sels = append(sels, schedd.Selector{Owner: t, Proc: -1})
		}
	}
	if constraint != "" {
		sels = append(sels, schedd.Selector{Constraint: constraint, Proc: -1})
	}
	if all {
		sels = append(sels, schedd.Selector{All: true, Proc: -1})
	}
	done := v.done
	if fast {
		done = "fast-vacated" // condor_vacate_job -fast's word
	}
	pc, err := c.dial(ctx, c.poolURL(pool))
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	defer pc.close()
	sched, err := c.schedd(ctx, pc, name)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	me := pc.user
	code := 0
	for _, sel := range sels {
		var reply schedd.ActReply
		req := schedd.ActionCmd{Kind: kind, Select: sel, By: me, Reason: reason, SubCode: subcode, Fast: fast}
		err := callRetry(ctx, pc, events.UserCmdSubject(sched, "act", pc.user), req, &reply)
		if err != nil {
			if errors.Is(err, schedd.ErrJobNotFound) {
				fmt.Fprintln(c.stderr, notFound(sel))
			} else {
				fmt.Fprintf(c.stderr, "vmpool %s: %v\n", cmd, err)
			}
			code = 1
			continue
		}
		failed := 0
		for _, r := range reply.Results {
			line, ok := actResultLine(kind, fast, r)
			if ok {
				if sel.Cluster != 0 && sel.Proc >= 0 {
					fmt.Fprintln(c.stdout, line)
				}
				continue
			}
			failed++
			fmt.Fprintln(c.stderr, line)
		}
		if failed > 0 {
			code = 1
		}
		if sel.Cluster != 0 && sel.Proc >= 0 {
			continue
		}
		if failed == 0 {
			switch {
			case sel.Cluster != 0:
				fmt.Fprintf(c.stdout, "All jobs in cluster %d have been %s\n", sel.Cluster, done)
			case sel.Owner != "":
				fmt.Fprintf(c.stdout, "All jobs of user \"%s\" have been %s\n", sel.Owner, done)
			case sel.Constraint != "":
				fmt.Fprintf(c.stdout, "All jobs matching constraint (%s) have been %s\n", sel.Constraint, done)
			default:
				fmt.Fprintf(c.stdout, "All jobs have been %s\n", done)
			}
		} else if ok := len(reply.Results) - failed; ok > 0 {
			fmt.Fprintf(c.stdout, "%d job(s) %s\n", ok, done)
		}
	}
	return code
}

// actResultLine is what the tool prints of one job's result: HTCondor's
// words (dc_schedd.cpp's JobActionResults), and whether the action was
// done (stdout) or not (stderr). fast is vacate-job -fast.
func actResultLine(kind string, fast bool, r schedd.ActionResult) (string, bool) {
	v := verbs[kind]
	vacate := "vacate"
	if fast {
		vacate = "fast-vacate"
	}
	switch r.Code {
	case "":
		if kind == schedd.ActVacate {
			return fmt.Sprintf("Job %s %sd", r.Job, vacate), true
		}
		return fmt.Sprintf("Job %s %s", r.Job, v.done), true
	case schedd.ErrPermissionDenied.Code:
		doing := v.doing
		if kind == schedd.ActVacate {
			doing = vacate
		}
		return fmt.Sprintf("Permission denied to %s job %s (%s)", doing, r.Job, r.Error), false
	case schedd.ErrNotHeld.Code:
		return fmt.Sprintf("Job %s not held to be released", r.Job), false
	case schedd.ErrNotRunning.Code:
		return fmt.Sprintf("Job %s not running to be %sd", r.Job, vacate), false
	case schedd.ErrAlreadyDone.Code:
		switch kind {
		case schedd.ActHold:
			return fmt.Sprintf("Job %s already held", r.Job), false
		case schedd.ActRemove:
			return fmt.Sprintf("Job %s already marked for removal", r.Job), false
		}
	}
	return fmt.Sprintf("Could not %s job %s: %s", v.doing, r.Job, r.Error), false
}

func notFound(sel schedd.Selector) string {
	switch {
	case sel.Cluster != 0 && sel.Proc >= 0:
		return fmt.Sprintf("Job %d.%d not found", sel.Cluster, sel.Proc)
	case sel.Cluster != 0:
		return fmt.Sprintf("Cluster %d not found", sel.Cluster)
	case sel.Owner != "":
		return fmt.Sprintf("No jobs of user \"%s\" found", sel.Owner)
	case sel.Constraint != "":
		return fmt.Sprintf("No jobs match constraint (%s)", sel.Constraint)
	}
	return "No jobs found"
}
