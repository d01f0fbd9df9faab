package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/schedd/userlog"
)

// waitGrace is how long wait keeps looking for a user log that does not
// exist yet, or that mentions no job (or not the given job), before it gives
// up as condor_wait does at once. The schedd writes user logs
// asynchronously, a few milliseconds after the submit request has returned
// (schedd/userlogs.go), so "vmpool submit job.sub && vmpool wait job.log"
// may find no log, or no submit (000) event, yet. With -wait the grace is at
// most the -wait time; -wait 0 has none. A variable so that tests can
// shorten it.
var waitGrace = 3 * time.Second

// wait is condor_wait: it watches a user log until the jobs in it (or the
// given job or cluster) are done: terminated (005) or aborted (009).
// Exit status 0 only when they are: 1 on timeout ("Time expired."), when
// the log cannot be opened ("Couldn't open LOG: ...") or mentions no job to
// wait for ("This log does not mention any jobs!" / "... that job!") once
// waitGrace has passed, or on another error. -wait 0 reads the log to its
// end once and stops there, as condor_wait's does: "Time expired." unless
// the jobs are done.
//
//	vmpool wait [-wait SECONDS] [-num N] LOG [CLUSTER | CLUSTER.PROC]
func (c *cli) wait(ctx context.Context, args []string) int {
	const cmd = "wait"
	var logPath, jobArg string
	timeout := time.Duration(-1) // no -wait: no limit
	num := 0
	a := &argList{args: args, cmd: cmd}
	for {
		arg, ok := a.next()
		if !ok {
			break
		}
		name, val, has, isOpt := opt(arg)
		if !isOpt {
			switch {
			case logPath == "":
				logPath = arg
			case jobArg == "":
				jobArg = arg
			default:
				return c.usageErr(cmd, "unexpected argument %q", arg)
			}
			continue
		}
		switch name {
		case "wait":
			v := a.value(name, val, has)
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return c.usageErr(cmd, "-wait %q: want seconds", v)
			}
			timeout = time.Duration(n) * time.Second
		case "num":
			v := a.value(name, val, has)
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return c.usageErr(cmd, "-num %q: want a number of jobs", v)
			}
			num = n
		case "debug", "status", "echo":
		case "h", "help":
			fmt.Fprintln(c.stdout, "usage: vmpool wait [-wait SECONDS] [-num N] LOG [CLUSTER | CLUSTER.PROC]")
			return 0
		default:
			return c.usageErr(cmd, "unknown option %s", arg)
		}
		if a.err != nil {
			return c.usageErr(cmd, "%v", a.err)
		}
	}
	if logPath == "" {
		return c.usageErr(cmd, "no user log given: vmpool wait LOG [JOB]")
	}
	wantCluster, wantProc := 0, -1
	if jobArg != "" {
		var ok bool
		if wantCluster, wantProc, ok = parseJobArg(jobArg); !ok {
			return c.usageErr(cmd, "job %q: want CLUSTER or CLUSTER.PROC", jobArg)
		}
	}
	grace := waitGrace
	if timeout >= 0 && timeout < grace {
		grace = timeout
	}
	graceEnd := time.Now().Add(grace)
	// expired: the -wait time is up; read the log once more, then stop.
	expired := timeout == 0
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		giveUp := expired || !time.Now().Before(graceEnd)
		b, err := os.ReadFile(logPath)
		if err != nil && !os.IsNotExist(err) {
			return c.errorf(cmd, "read %v", err)
		}
		if err != nil && giveUp {
			fmt.Fprintf(c.stderr, "Couldn't open %s: No such file or directory\n", logPath)
			return 1
		}
		evs, _ := userlog.Parse(bytes.NewReader(b))
		// Counted per job id: a log shared by the jobs of several schedds
		// holds a 6.0 of each (their cluster ids overlap); it is done when
		// each has ended.
		submitted := map[events.JobID]int{}
		finished := map[events.JobID]int{}
		for _, e := range evs {
			id := events.JobID{Cluster: e.Cluster, Proc: e.Proc}
			if wantCluster != 0 && (e.Cluster != wantCluster || wantProc >= 0 && e.Proc != wantProc) {
				continue
			}
			switch e.Code {
			case userlog.JobSubmitted:
				submitted[id]++
			case userlog.JobTerminated, userlog.JobAborted:
				finished[id]++
			}
		}
		done, running := 0, 0
		for id, n := range finished {
			if s := submitted[id]; s > 0 {
				n = min(n, s)
			}
			done += n
		}
		for id, n := range submitted {
			running += max(n-finished[id], 0)
		}
		switch {
		case num > 0 && done >= num:
			fmt.Fprintf(c.stdout, "Specified number of jobs (%d) done.\n", num)
			return 0
		case num == 0 && len(submitted) > 0 && running == 0:
			fmt.Fprintln(c.stdout, "All jobs done.")
			return 0
		case len(submitted) == 0 && giveUp:
			if jobArg != "" {
				fmt.Fprintln(c.stderr, "This log does not mention that job!")
			} else {
				fmt.Fprintln(c.stderr, "This log does not mention any jobs!")
			}
			return 1
		}
		if expired {
			fmt.Fprintln(c.stdout, "Time expired.")
			return 1
		}
		select {
		case <-tick.C:
		case <-deadline:
			expired = true
		case <-ctx.Done():
			return 1
		}
	}
}

// parseJobArg reads a job argument, CLUSTER or CLUSTER.PROC; proc is -1
// for a whole cluster.
func parseJobArg(s string) (cluster, proc int, ok bool) {
	if id, ok := events.ParseJobID(s); ok {
		return id.Cluster, id.Proc, true
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return n, -1, true
	}
	return 0, 0, false
}
