package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/schedd"
)

// queryFlags are q's and history's options.
type queryFlags struct {
	adFormat
	pool, name      string
	nobatch, totals bool
	hold, allusers  bool
	run             bool // -run: running jobs and where
	global          bool // every schedd of the pool
	limit           int
	jobs            []string
	owner           string
	ownerGiven      bool
}

func (c *cli) parseQueryFlags(cmd string, args []string, qf *queryFlags) int {
	a := &argList{args: args, cmd: cmd}
	for {
		arg, ok := a.next()
		if !ok {
			break
		}
		name, val, has, isOpt := opt(arg)
		if !isOpt {
			if _, ok := events.ParseJobID(arg); ok || isNumber(arg) {
				qf.jobs = append(qf.jobs, arg)
			} else {
				qf.owner, qf.ownerGiven = arg, true
			}
			continue
		}
		if qf.parseAdOption(a, name, val, has) {
			if a.err != nil {
				return c.usageErr(cmd, "%v", a.err)
			}
			continue
		}
		switch name {
		case "pool":
			qf.pool = a.value(name, val, has)
		case "name":
			qf.name = a.value(name, val, has)
		case "nobatch", "nob":
			qf.nobatch = true
		case "batch":
			qf.nobatch = false
		case "totals", "tot":
			qf.totals = true
		case "hold", "held":
			qf.hold = true
		case "run", "running":
			qf.run = true
		case "allusers", "all", "a":
			qf.allusers = true
		case "global", "g":
			qf.global = true
		case "limit", "match":
			v := a.value(name, val, has)
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return c.usageErr(cmd, "-limit %q: want a number of jobs", v)
			}
			qf.limit = n
		case "h", "help":
			fmt.Fprintf(c.stdout, "usage: vmpool %s [-pool URL] [-name SCHEDD] [-json|-long|-af[:jlhVrtng,] ATTR...|-format FMT ATTR...] [-constraint EXPR] [-nobatch] [-totals] [-hold] [-run] [-allusers] [-limit N] [CLUSTER|CLUSTER.PROC|OWNER]...\n", cmd)
			if cmd == "q" {
				fmt.Fprintln(c.stdout, "       vmpool q -global ...          every schedd of the pool")
				fmt.Fprintln(c.stdout, "       vmpool q -better-analyze [-pool URL] [-name SCHEDD] [CLUSTER|CLUSTER.PROC|OWNER]...   why a job does not run (-analyze: the same)")
				fmt.Fprintln(c.stdout, "       vmpool q -watch ...           the queue, redrawn as it changes (vmpool watch)")
			}
			return 0
		default:
			return c.usageErr(cmd, "unknown option %s", arg)
		}
		if a.err != nil {
			return c.usageErr(cmd, "%v", a.err)
		}
	}
	if qf.constraint != "" {
		if _, err := classad.ParseExpr(qf.constraint); err != nil {
			return c.usageErr(cmd, "-constraint: %v", err)
		}
	}
	return -1
}

// fetch runs a query (or history) request and collects the ads.
func (c *cli) fetch(ctx context.Context, pc *client, sched, verb string, req schedd.QueryRequest) ([]*classad.Ad, schedd.Totals, error) {
	raws, tot, err := c.fetchRaw(ctx, pc, sched, verb, req)
	if err != nil {
		return nil, tot, err
	}
	return decodeAds(raws), tot, nil
}

// fetchRaw is fetch without decoding the ads.
func (c *cli) fetchRaw(ctx context.Context, pc *client, sched, verb string, req schedd.QueryRequest) ([]json.RawMessage, schedd.Totals, error) {
	var raws []json.RawMessage
	var tot schedd.Totals
	err := c.queryChunks(ctx, pc, sched, verb, req, func(ch schedd.QueryChunk) {
		raws = append(raws, ch.Ads...)
		if ch.Totals != nil {
			tot = *ch.Totals
		}
	})
	if err != nil {
		return nil, tot, err
	}
	return raws, tot, nil
}

// queryChunks asks schedd sched's verb and hands each chunk of the answer
// to fn, in order.
func (c *cli) queryChunks(ctx context.Context, pc *client, sched, verb string, req schedd.QueryRequest, fn func(schedd.QueryChunk)) error {
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err := pc.callStream(cctx, events.UserCmdSubject(sched, verb, pc.user), req, func(d json.RawMessage) error {
		ch, err := schedd.DecodeQueryChunk(d)
		if err != nil {
			return err
		}
		fn(ch)
		return nil
	})
	if errors.Is(err, events.ErrNoResponders) {
		return fmt.Errorf("ask schedd %s: %w", sched, events.ErrNoResponders)
	}
	if err != nil {
		return fmt.Errorf("ask schedd %s: %w", sched, err)
	}
	return nil
}

func jobID(ad *classad.Ad) string {
	return fmt.Sprintf("%d.%d", intAttr(ad, "ClusterId"), intAttr(ad, "ProcId"))
}

func (c *cli) q(ctx context.Context, args []string) (code int) {
	const cmd = "q"
	if rest, ok := cutOption(args, "watch"); ok {
		return c.watch(ctx, rest)
	}
	if rest, ok := cutOption(args, "analyze", "better-analyze"); ok {
		return c.analyze(ctx, rest)
	}
	var qf queryFlags
	if code := c.parseQueryFlags(cmd, args, &qf); code >= 0 {
		return code
	}
	pc, err := c.dial(ctx, c.poolURL(qf.pool))
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	defer pc.close()
	var scheds, down []string
	if qf.global {
		if scheds, down, err = c.allSchedds(ctx, pc); err != nil {
			return c.errorf(cmd, "%v", err)
		}
		// As condor_q -global says of a schedd it cannot reach: the
		// rest is shown, and the exit status says something is missing.
		defer func() {
			for _, d := range down {
				fmt.Fprintf(c.stderr, "vmpool q: schedd %s is not running (its ad has expired): its jobs are not shown (an admin retires a schedd gone for good with 'vmpool schedds -retire %s')\n", d, d)
			}
			if len(down) > 0 && code == 0 {
				code = 1
			}
		}()
	} else {
		sched, err := c.schedd(ctx, pc, qf.name)
		if err != nil {
			return c.errorf(cmd, "%v", err)
		}
		scheds = []string{sched}
	}
	me := pc.user
	req := schedd.QueryRequest{Constraint: qf.constraint, Jobs: qf.jobs, Totals: qf.totals}
	switch {
	case qf.ownerGiven:
		req.Owner = qf.owner
	case !qf.allusers && len(qf.jobs) == 0 && qf.constraint == "":
		req.Owner = me // condor_q shows your own jobs unless asked for more
	}
	for _, only := range []struct {
		on   bool
		cond string
	}{{qf.hold, "JobStatus == 5"}, {qf.run, "JobStatus == 2"}} {
		if !only.on {
			continue
		}
		if req.Constraint != "" {
			req.Constraint = "(" + req.Constraint + ") && " + only.cond
		} else {
			req.Constraint = only.cond
		}
	}
	req.Attrs = qf.projection()
	if qf.custom() {
		var all []json.RawMessage
		for _, sched := range scheds {
			raws, _, err := c.fetchRaw(ctx, pc, sched, "query", req)
			if err != nil {
				return c.errorf(cmd, "%v", err)
			}
			all = append(all, raws...)
		}
		if qf.limit > 0 && len(all) > qf.limit {
			all = all[:qf.limit]
		}
		if qf.json {
			// The schedd's ads are printed as they come: decoding and
			// encoding 100,000 of them again would cost seconds.
			printRawJSON(c.stdout, all)
			return 0
		}
		qf.printAds(c.stdout, decodeAds(all), jobID)
		return 0
	}
	for _, sched := range scheds {
		if code := c.qTable(ctx, pc, sched, me, req, &qf); code != 0 {
			return code
		}
	}
	return 0
}

// allSchedds lists the schedds the collector knows (-global), and the
// pool's listed schedds it does not: not running, their jobs cannot be
// shown.
func (c *cli) allSchedds(ctx context.Context, pc *client) (up, down []string, err error) {
	ps, err := pc.poolSchedds(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range ps {
		if s.advertised {
			up = append(up, s.name)
		} else {
			down = append(down, s.name)
		}
	}
	if len(up) == 0 {
		return nil, nil, fmt.Errorf("no schedd is advertised at %s", pc.url)
	}
	return up, down, nil
}

// qTable prints one schedd's part of condor_q's table view.
func (c *cli) qTable(ctx context.Context, pc *client, sched, me string, req schedd.QueryRequest, qf *queryFlags) int {
	const cmd = "q"
	ads, tot, err := c.fetch(ctx, pc, sched, "query", req)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	if qf.limit > 0 && len(ads) > qf.limit {
		ads = ads[:qf.limit]
	}
	_, all, err := c.fetch(ctx, pc, sched, "query", schedd.QueryRequest{Totals: true})
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	_, mine, err := c.fetch(ctx, pc, sched, "query", schedd.QueryRequest{Totals: true, Owner: me})
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	w := c.stdout
	if !qf.totals {
		fmt.Fprintf(w, "\n-- Schedd: %s : <%s> @ %s\n", sched, busAddr(pc.url), time.Now().Format("01/02/06 15:04:05"))
		switch {
		case qf.hold:
			printHeld(w, ads)
		case qf.run:
			printRunning(w, ads)
		case qf.nobatch:
			printNoBatch(w, ads)
		default:
			printBatch(w, ads)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Total for query: %s\n", totalsLine(tot))
	fmt.Fprintf(w, "Total for %s: %s\n", me, totalsLine(mine))
	fmt.Fprintf(w, "Total for all users: %s\n", totalsLine(all))
	return 0
}

// afAttrs are the attributes an -af list needs from the schedd (names
// only; expressions need whole ads).
func afAttrs(af []string) []string {
	var out []string
	for _, a := range af {
		if !isIdent(a) {
			return nil
		}
		out = append(out, a)
	}
	return append(out, "ClusterId", "ProcId")
}

func isIdent(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func totalsLine(t schedd.Totals) string {
	return fmt.Sprintf("%d jobs; %d completed, %d removed, %d idle, %d running, %d held, %d suspended",
		t.Jobs, t.Completed, t.Removed, t.Idle, t.Running, t.Held, t.Suspended)
}

func runTime(ad *classad.Ad, now int64) int64 {
	rt := intAttr(ad, "RemoteWallClockTime")
	if intAttr(ad, "JobStatus") == schedd.Running {
		if start := intAttr(ad, "JobCurrentStartDate"); start > 0 {
			rt += now - start
		}
	}
	return rt
}

func stLetter(ad *classad.Ad) string {
	if b, _ := ad.EvalBool("TransferringOutput"); b {
		return ">"
	}
	return schedd.StatusLetter(int(intAttr(ad, "JobStatus")))
}

func printNoBatch(w io.Writer, ads []*classad.Ad) {
	now := time.Now().Unix()
	fmt.Fprintln(w, " ID      OWNER            SUBMITTED     RUN_TIME ST PRI SIZE CMD")
	for _, ad := range ads {
		fmt.Fprintf(w, "%6s   %-14s %11s %12s %-2s %-3d %4.1f %s\n", jobID(ad), strAttr(ad, "Owner"),
			fmtDate(intAttr(ad, "QDate")), fmtDuration(runTime(ad, now)), stLetter(ad), intAttr(ad, "JobPrio"),
			float64(intAttr(ad, "JobVMMemory")), strAttr(ad, "Cmd"))
	}
}

// printRunning is condor_q -run: running jobs and the slot each runs on.
func printRunning(w io.Writer, ads []*classad.Ad) {
	now := time.Now().Unix()
	fmt.Fprintln(w, " ID      OWNER            SUBMITTED     RUN_TIME HOST(S)")
	for _, ad := range ads {
		fmt.Fprintf(w, "%6s   %-14s %11s %12s %s\n", jobID(ad), strAttr(ad, "Owner"),
			fmtDate(intAttr(ad, "QDate")), fmtDuration(runTime(ad, now)), strAttr(ad, "RemoteHost"))
	}
}

func printHeld(w io.Writer, ads []*classad.Ad) {
	fmt.Fprintln(w, " ID      OWNER          HELD_SINCE  CODE/SUB HOLD_REASON")
	for _, ad := range ads {
		fmt.Fprintf(w, "%6s   %-14s %11s %4d/%-3d %s\n", jobID(ad), strAttr(ad, "Owner"),
			fmtDate(intAttr(ad, "EnteredCurrentStatus")), intAttr(ad, "HoldReasonCode"), intAttr(ad, "HoldReasonSubCode"), strAttr(ad, "HoldReason"))
	}
}

// printBatch prints condor_q's default view: one line per batch (cluster).
func printBatch(w io.Writer, ads []*classad.Ad) {
	type batch struct {
		owner, name string
		qdate       int64
		total       int64
		run, idle   int
		held        int
		ids         []string
		cluster     int64
	}
	var order []int64
	batches := map[int64]*batch{}
	anyHeld := false
	for _, ad := range ads {
		cl := intAttr(ad, "ClusterId")
		b := batches[cl]
		if b == nil {
			name := strAttr(ad, "JobBatchName")
			if name == "" {
				name = "ID: " + strconv.FormatInt(cl, 10)
			}
			b = &batch{owner: strAttr(ad, "Owner"), name: name, qdate: intAttr(ad, "QDate"), total: intAttr(ad, "TotalSubmitProcs"), cluster: cl}
			batches[cl] = b
			order = append(order, cl)
		}
		switch intAttr(ad, "JobStatus") {
		case schedd.Running:
			b.run++
		case schedd.Idle:
			b.idle++
		case schedd.Held:
			b.held++
			anyHeld = true
		}
		b.ids = append(b.ids, jobID(ad))
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	dash := func(n int) string {
		if n == 0 {
			return "_"
		}
		return strconv.Itoa(n)
	}
	if anyHeld {
		fmt.Fprintln(w, "OWNER      BATCH_NAME     SUBMITTED   DONE   RUN    IDLE   HOLD  TOTAL JOB_IDS")
	} else {
		fmt.Fprintln(w, "OWNER      BATCH_NAME     SUBMITTED   DONE   RUN    IDLE  TOTAL JOB_IDS")
	}
	for _, cl := range order {
		b := batches[cl]
		inQueue := len(b.ids)
		done := int(b.total) - inQueue
		ids := b.ids[0]
		if len(b.ids) > 1 {
			ids += "-" + strings.SplitN(b.ids[len(b.ids)-1], ".", 2)[1]
		}
		if anyHeld {
			fmt.Fprintf(w, "%-10s %-14s %11s %6s %5s %7s %6s %6d %s\n", b.owner, b.name, fmtDate(b.qdate), dash(done), dash(b.run), dash(b.idle), dash(b.held), max(b.total, int64(inQueue)), ids)
		} else {
			fmt.Fprintf(w, "%-10s %-14s %11s %6s %5s %7s %6d %s\n", b.owner, b.name, fmtDate(b.qdate), dash(done), dash(b.run), dash(b.idle), max(b.total, int64(inQueue)), ids)
		}
	}
}

func (c *cli) history(ctx context.Context, args []string) int {
	const cmd = "history"
	var qf queryFlags
	if code := c.parseQueryFlags(cmd, args, &qf); code >= 0 {
		return code
	}
	pc, err := c.dial(ctx, c.poolURL(qf.pool))
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	defer pc.close()
	sched, err := c.schedd(ctx, pc, qf.name)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	req := schedd.QueryRequest{Constraint: qf.constraint, Jobs: qf.jobs, Limit: qf.limit}
	if qf.ownerGiven {
		req.Owner = qf.owner
	}
	req.Attrs = qf.projection()
	ads, _, err := c.fetch(ctx, pc, sched, "history", req)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	if qf.custom() {
		qf.printAds(c.stdout, ads, jobID)
		return 0
	}
	fmt.Fprintln(c.stdout, " ID     OWNER          SUBMITTED   RUN_TIME     ST  COMPLETED   CMD")
	for _, ad := range ads {
		completed := intAttr(ad, "CompletionDate")
		if completed == 0 {
			completed = intAttr(ad, "EnteredCurrentStatus")
		}
		fmt.Fprintf(c.stdout, "%6s  %-14s %11s %12s %-2s %11s %s\n", jobID(ad), strAttr(ad, "Owner"), fmtDate(intAttr(ad, "QDate")),
			fmtDuration(intAttr(ad, "RemoteWallClockTime")), stLetter(ad), fmtDate(completed), strAttr(ad, "Cmd"))
	}
	return 0
}
