package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/startd"
)

// drain is condor_drain: the named execute machines take no new jobs and
// vacate the VMs they run (checkpointing those that asked for it);
// -cancel undoes it.
//
//	vmpool drain [-pool URL] [-cancel] [-reason TEXT] STARTD|SLOT...
func (c *cli) drain(ctx context.Context, args []string) int {
	const cmd = "drain"
	var pool, reason string
	cancel := false
	var names []string
	a := &argList{args: args, cmd: cmd}
	for {
		arg, ok := a.next()
		if !ok {
			break
		}
		o, val, has, isOpt := opt(arg)
		if !isOpt {
			names = append(names, arg)
			continue
		}
		switch o {
		case "pool":
			pool = a.value(o, val, has)
		case "cancel", "c":
			cancel = true
		case "reason":
			reason = a.value(o, val, has)
		case "h", "help":
			fmt.Fprintln(c.stdout, "usage: vmpool drain [-pool URL] [-cancel] [-reason TEXT] STARTD|SLOT...")
			return 0
		default:
			return c.usageErr(cmd, "unknown option %s", arg)
		}
		if a.err != nil {
			return c.usageErr(cmd, "%v", a.err)
		}
	}
	if len(names) == 0 {
		return c.usageErr(cmd, "name the machines to drain (a startd name, or a slot such as slot1@startd1)")
	}
	pc, err := c.dial(ctx, c.poolURL(pool))
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	defer pc.close()
	code := 0
	for _, n := range names {
		name := n
		if i := strings.LastIndexByte(n, '@'); i >= 0 {
			name = n[i+1:]
		}
		if err := events.CheckName("startd", name); err != nil {
			fmt.Fprintf(c.stderr, "vmpool drain: %v\n", err)
			code = 1
			continue
		}
		var reply startd.DrainReply
		cctx, stop := context.WithTimeout(ctx, 30*time.Second)
		err := pc.call(cctx, events.CmdSubject(events.RoleStartd, name, "drain")+"."+pc.user, startd.DrainRequest{Cancel: cancel, Reason: reason}, &reply)
		stop()
		if errors.Is(err, events.ErrNoResponders) {
			// condor_drain's words for a machine the collector has no ad of.
			fmt.Fprintf(c.stderr, "vmpool drain: can't find address for startd %s: no startd of that name answers (vmpool status lists them)\n", name)
			code = 1
			continue
		}
		if err != nil {
			fmt.Fprintf(c.stderr, "vmpool drain: startd %s: %v\n", name, err)
			code = 1
			continue
		}
		if cancel {
			fmt.Fprintf(c.stdout, "Sent request to cancel draining on %s\n", name)
		} else {
			fmt.Fprintf(c.stdout, "Sent request to drain %s (%d VM(s) vacating)\n", name, reply.Vacating)
		}
	}
	return code
}
