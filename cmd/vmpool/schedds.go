package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vmpool/vmpool/events"
)

// schedds lists the pool's schedds: those it has had (its lasting list,
// which a schedd joins when it starts) and those advertised in the
// collector now. -retire drops a schedd gone for good from the list, so
// that tools given no -name take the one left again (admins only).
//
//	vmpool schedds [-pool URL] [-retire NAME]
func (c *cli) schedds(ctx context.Context, args []string) int {
	const cmd = "schedds"
	const usage = "usage: vmpool schedds [-pool URL] [-retire NAME]"
	var pool, retire string
	a := &argList{args: args, cmd: cmd}
	for {
		arg, ok := a.next()
		if !ok {
			break
		}
		o, val, has, isOpt := opt(arg)
		if !isOpt {
			return c.usageErr(cmd, "unexpected argument %q; %s", arg, usage)
		}
		switch o {
		case "pool":
			pool = a.value(o, val, has)
		case "retire":
			retire = a.value(o, val, has)
		case "h", "help":
			fmt.Fprintln(c.stdout, usage)
			fmt.Fprintln(c.stdout, "Lists the schedds the pool has had (each lists itself when it starts) and whether each is advertised now;")
			fmt.Fprintln(c.stdout, "-retire NAME drops a stopped schedd gone for good from the list (QUEUE_SUPER_USERS only).")
			return 0
		default:
			return c.usageErr(cmd, "unknown option %s; %s", arg, usage)
		}
		if a.err != nil {
			return c.usageErr(cmd, "%v", a.err)
		}
	}
	if retire != "" {
		if err := events.CheckName("schedd", retire); err != nil {
			return c.usageErr(cmd, "%v", err)
		}
	}
	pc, err := c.dial(ctx, c.poolURL(pool))
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	defer pc.close()
	ps, err := pc.poolSchedds(ctx)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	if retire != "" {
		return c.retireSchedd(ctx, pc, ps, retire)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLISTED\tADVERTISED")
	for _, s := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.name, yesNo(s.listed), yesNo(s.advertised))
	}
	tw.Flush()
	return 0
}

// retireSchedd drops schedd name, which must be listed and stopped, from
// the pool's list of schedds.
func (c *cli) retireSchedd(ctx context.Context, pc *client, ps []poolSchedd, name string) int {
	const cmd = "schedds"
	i := slices.IndexFunc(ps, func(s poolSchedd) bool { return s.name == name })
	if i < 0 || !ps[i].listed {
		var names []string
		for _, s := range ps {
			if s.listed {
				names = append(names, s.name)
			}
		}
		return c.errorf(cmd, "schedd %s is not in the pool's list of schedds (it lists: %s)", name, strings.Join(names, ", "))
	}
	if ps[i].advertised {
		return c.errorf(cmd, "schedd %s is running (its ad is in the collector): stop it first (a schedd lists itself again whenever it starts)", name)
	}
	// An identity that may not retire schedds is refused by the server:
	// the call ends as soon as it says so.
	subject := "$KV." + events.ScheddsBucket + "." + name
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, id := pc.startCall(subject, cancel)
	defer pc.endCall(subject, id)
	err := pc.bus.RetireSchedd(rctx, name)
	if err != nil && pc.wasDenied(subject) {
		return c.errorf(cmd, "permission denied: only the pool's admins (QUEUE_SUPER_USERS) may retire a schedd, and %s is not one", pc.user)
	}
	if errors.Is(err, events.ErrNoScheddList) {
		return c.errorf(cmd, "%v: there is nothing to retire %s from", err, name)
	}
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	fmt.Fprintf(c.stdout, "schedd %s retired: tools without -name no longer count it among the pool's schedds\n", name)
	return 0
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
