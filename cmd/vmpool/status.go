package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vmpool/vmpool/classad"
)

func (c *cli) status(ctx context.Context, args []string) int {
	const cmd = "status"
	var f adFormat
	var pool string
	vm, total := false, false
	avail, claimed := false, false
	var machines []string // NAME arguments: a slot, a machine or a startd
	a := &argList{args: args, cmd: cmd}
	for {
		arg, ok := a.next()
		if !ok {
			break
		}
		name, val, has, isOpt := opt(arg)
		if !isOpt {
			machines = append(machines, arg)
			continue
		}
		if f.parseAdOption(a, name, val, has) {
			if a.err != nil {
				return c.usageErr(cmd, "%v", a.err)
			}
			continue
		}
		switch name {
		case "pool":
			pool = a.value(name, val, has)
		case "vm":
			vm = true
		case "total", "totals":
			total = true
		case "avail", "available":
			avail = true
		case "claimed", "run":
			// -run: the slots running a job, with the same columns.
			claimed = true
		case "h", "help":
			fmt.Fprintln(c.stdout, "usage: vmpool status [-pool URL] [-vm] [-json|-long|-af[:jlhtr,] ATTR...|-format FMT ATTR...] [-constraint EXPR] [-avail|-claimed|-run] [-total] [SLOT|MACHINE|STARTD]...")
			return 0
		default:
			return c.usageErr(cmd, "unknown option %s", arg)
		}
		if a.err != nil {
			return c.usageErr(cmd, "%v", a.err)
		}
	}
	var constraint *classad.Expr
	if f.constraint != "" {
		var err error
		if constraint, err = classad.ParseExpr(f.constraint); err != nil {
			return c.usageErr(cmd, "-constraint: %v", err)
		}
	}
	pc, err := c.dial(ctx, c.poolURL(pool))
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	defer pc.close()
	all, err := pc.ads(ctx, "slot.")
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	var ads []*classad.Ad
	for _, ad := range all {
		if vm {
			if b, _ := ad.EvalBool("HasVM"); !b {
				continue
			}
		}
		if constraint != nil && !constraint.EvalWith(ad, nil, wallClock()).IsTrue() {
			continue
		}
		state := strAttr(ad, "State")
		// -avail: slots that would take a job now (unclaimed, and not
		// refusing every job by their START); -claimed: slots running one.
		if avail && (state != "Unclaimed" || startsNothing(ad)) || claimed && state != "Claimed" {
			continue
		}
		if len(machines) > 0 && !namedMachine(ad, machines) {
			continue
		}
		ads = append(ads, ad)
	}
	if f.custom() {
		f.printAds(c.stdout, ads, func(ad *classad.Ad) string { return strAttr(ad, "Name") })
		return 0
	}
	if len(ads) == 0 {
		// Nothing to show prints nothing, as condor_status does; a pool
		// without a single slot ad gets a word on stderr.
		if len(all) == 0 {
			fmt.Fprintln(c.stderr, "vmpool status: no machines are advertised (no startd is running, or none has reached the collector yet)")
		}
		return 0
	}
	w := c.stdout
	now := time.Now().Unix()
	if claimed {
		printClaimed(w, ads, total)
		return 0
	}
	if !total {
		if vm {
			fmt.Fprintln(w, vmHeader)
		} else {
			fmt.Fprintf(w, "%-22s %-7s %-7s %-10s %-9s %6s %6s %s\n\n", "Name", "OpSys", "Arch", "State", "Activity", "LoadAv", "Mem", "ActvtyTime")
		}
		for _, ad := range ads {
			load, _ := ad.Eval("LoadAvg").RealValue()
			act := fmtDuration(now - intAttr(ad, "EnteredCurrentActivity"))
			if vm {
				fmt.Fprintln(w, vmRow(ad, load, act))
			} else {
				fmt.Fprintf(w, "%-22s %-7s %-7s %-10s %-9s %6.3f %6d %s\n", strAttr(ad, "Name"), strAttr(ad, "OpSys"), strAttr(ad, "Arch"),
					strAttr(ad, "State"), strAttr(ad, "Activity"), load, intAttr(ad, "Memory"), act)
			}
		}
		fmt.Fprintln(w)
	}
	type row struct{ n, owner, claimed, unclaimed, matched, preempting, drain int }
	keys, rows, tot := byPlatform(ads, func(x *row, ad *classad.Ad) {
		x.n++
		switch strAttr(ad, "State") {
		case "Owner":
			x.owner++
		case "Claimed":
			x.claimed++
		case "Unclaimed":
			x.unclaimed++
		case "Matched":
			x.matched++
		case "Preempting":
			x.preempting++
		case "Drained":
			x.drain++
		}
	})
	line := func(label string, r *row) {
		fmt.Fprintf(w, "%14s %8d %5d %7d %9d %7d %10d %6d\n", label, r.n, r.owner, r.claimed, r.unclaimed, r.matched, r.preempting, r.drain)
	}
	fmt.Fprintf(w, "%14s %8s %5s %7s %9s %7s %10s %6s\n\n", "", "Machines", "Owner", "Claimed", "Unclaimed", "Matched", "Preempting", "Drain")
	for _, k := range keys {
		line(k, rows[k])
		fmt.Fprintln(w)
	}
	line("Total", tot)
	return 0
}

// byPlatform sums slot ads into a row per platform (Arch/OpSys, in the
// order first seen) and a total: add is called with each of the two.
func byPlatform[R any](ads []*classad.Ad, add func(*R, *classad.Ad)) (keys []string, rows map[string]*R, total *R) {
	rows, total = map[string]*R{}, new(R)
	for _, ad := range ads {
		k := strAttr(ad, "Arch") + "/" + strAttr(ad, "OpSys")
		r := rows[k]
		if r == nil {
			r = new(R)
			rows[k] = r
			keys = append(keys, k)
		}
		add(r, ad)
		add(total, ad)
	}
	return keys, rows, total
}

// startsNothing reports whether a slot's START is false whatever the job
// (undefined, as a START that reads the job's attributes is without one,
// is not).
func startsNothing(ad *classad.Ad) bool {
	b, ok := ad.EvalBool("Start")
	return ok && !b
}

// printClaimed is condor_status -claimed: each claimed slot and whose
// job it runs, then the number of slots and their average load by
// platform (MIPS and KFLOPS when the ads have them, as HTCondor's
// benchmarks put them; vmpool runs none, so 0).
func printClaimed(w io.Writer, ads []*classad.Ad, totalOnly bool) {
	if !totalOnly {
		fmt.Fprintf(w, "%-22s %-13s %6s %-22s %s\n\n", "Name", "OpSys/Arch", "LoadAv", "RemoteUser", "ClientMachine")
		for _, ad := range ads {
			load, _ := ad.Eval("LoadAvg").RealValue()
			fmt.Fprintf(w, "%-22s %-13s %6.3f %-22s %s\n", strAttr(ad, "Name"), strAttr(ad, "OpSys")+"/"+strAttr(ad, "Arch"), load,
				strAttr(ad, "RemoteUser"), strAttr(ad, "ClientMachine"))
		}
		fmt.Fprintln(w)
	}
	type row struct {
		n           int
		mips, flops int64
		load        float64
	}
	keys, rows, tot := byPlatform(ads, func(x *row, ad *classad.Ad) {
		load, _ := ad.Eval("LoadAvg").RealValue()
		x.n++
		x.mips += intAttr(ad, "Mips")
		x.flops += intAttr(ad, "KFlops")
		x.load += load
	})
	line := func(label string, r *row) {
		avg := 0.0
		if r.n > 0 {
			avg = r.load / float64(r.n)
		}
		fmt.Fprintf(w, "%14s %8d %12d %12d %12.3f\n", label, r.n, r.mips, r.flops, avg)
	}
	fmt.Fprintf(w, "%14s %8s %12s %12s %12s\n\n", "", "Machines", "MIPS", "KFLOPS", "AvgLoadAvg")
	for _, k := range keys {
		line(k, rows[k])
		fmt.Fprintln(w)
	}
	line("Total", tot)
}

// namedMachine reports whether a slot ad is one of the names given to
// condor_status: its Name (slot1@startd1), its Machine, or its startd.
func namedMachine(ad *classad.Ad, names []string) bool {
	name, machine := strAttr(ad, "Name"), strAttr(ad, "Machine")
	_, startd, _ := strings.Cut(name, "@")
	for _, n := range names {
		if strings.EqualFold(n, name) || strings.EqualFold(n, machine) || strings.EqualFold(n, startd) {
			return true
		}
	}
	return false
}

// vmHeader is status -vm's header; vmRow one slot's line under it (the
// Network column holds "nat,bridge", which overflowed it by a character).
var vmHeader = fmt.Sprintf("%-22s %-7s %-10s %-10s %-9s %6s %6s %s\n", "Name", "VmType", "Network", "State", "Activity", "LoadAv", "VMMem", "ActvtyTime")

func vmRow(ad *classad.Ad, load float64, act string) string {
	// condor_status -vm prints VM_Networking_Types "OR ??": a slot without
	// networking advertises no types.
	network := "??"
	if t, ok := ad.EvalString("VM_Networking_Types"); ok && t != "" {
		network = t
	}
	return fmt.Sprintf("%-22s %-7s %-10s %-10s %-9s %6.3f %6d %s", strAttr(ad, "Name"), strAttr(ad, "VM_Type"), network,
		strAttr(ad, "State"), strAttr(ad, "Activity"), load, intAttr(ad, "VM_Memory"), act)
}
