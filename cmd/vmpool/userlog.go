package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vmpool/vmpool/schedd/userlog"
)

// userlogCmd is condor_userlog: it reads job event logs and summarises
// every allocation (a run of a job on a slot, from its 001 to the event
// that ended it), then each slot's and each job's totals:
//
//	vmpool userlog [-total | -raw] [-evict] [-j C[.P]] [-all] [-hostname] [-debug] LOG...
//
// Wall Time is an allocation's length; Good Time the part of it that
// counted towards the job's completion: all of it when the guest powered
// off (005) or the VM was vacated with a checkpoint (004 "(1) Job was
// checkpointed."), up to its last periodic checkpoint (003) when it was
// vacated without one, else nothing (held, removed, its claim lost); CPU
// Usage the CPU the VM used in an allocation that counted (the event's Run
// Remote Usage). Times are whole seconds, printed as days+hours:minutes.
func (c *cli) userlogCmd(ctx context.Context, args []string) int {
	const usage = "usage: vmpool userlog [-total | -raw] [-evict] [-j CLUSTER[.PROC]] [-all] [-hostname] [-debug] LOG..."
	var (
		s     ulogStats
		files []string
	)
	s.cluster, s.proc = -1, -1
	for i := 0; i < len(args); i++ {
		name, _, _, ok := opt(args[i])
		if !ok {
			files = append(files, args[i])
			continue
		}
		switch name {
		case "h", "help":
			fmt.Fprintln(c.stdout, usage)
			return 0
		case "total", "totals":
			s.totalsOnly = true
		case "raw":
			s.raw = true
		case "debug":
			s.debug = c.stderr
		case "evict":
			s.evictOnly = true
		case "all":
			s.cluster, s.proc, s.evictOnly = -1, -1, false
		case "hostname":
			// Hosts are slot names already: nothing to look up.
		case "j":
			if i+1 >= len(args) {
				return c.usageErr("userlog", "-j needs CLUSTER or CLUSTER.PROC; %s", usage)
			}
			i++
			cl, pr, ok := parseJobArg(args[i])
			if !ok {
				return c.usageErr("userlog", "-j %s: want CLUSTER or CLUSTER.PROC; %s", args[i], usage)
			}
			s.cluster, s.proc = cl, pr
		default:
			return c.usageErr("userlog", "unknown option %s; %s", args[i], usage)
		}
	}
	if len(files) == 0 {
		return c.usageErr("userlog", "no log file given; %s", usage)
	}
	if s.totalsOnly && s.raw {
		return c.usageErr("userlog", "-total and -raw exclude each other; %s", usage)
	}
	s.out = c.stdout
	code := 0
	read := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(c.stderr, "vmpool userlog: %v\n", err)
			code = 1
			continue
		}
		evs, perr := userlog.Parse(bytes.NewReader(b))
		if perr != nil {
			// The events it could read still count, as condor_userlog
			// skips what it cannot read.
			fmt.Fprintf(c.stderr, "vmpool userlog: %s: %v (skipped)\n", f, perr)
		}
		s.read(evs)
		read = true
	}
	if read && !s.raw {
		fmt.Fprintln(c.stdout)
		s.summary()
	}
	return code
}

// ulogStats gathers allocations and prints them.
type ulogStats struct {
	totalsOnly, raw, evictOnly bool
	cluster, proc              int // -1: any
	debug                      io.Writer
	out                        io.Writer

	headed bool
	jobs   map[[2]int]*ulogTotals
	hosts  map[string]*ulogTotals
}

type ulogTotals struct {
	allocs, kills        int
	wall, good, cpuUsage int64 // seconds
}

func (t *ulogTotals) add(wall, good, cpu int64) {
	t.allocs++
	if wall != good {
		t.kills++
	}
	t.wall += wall
	t.good += good
	t.cpuUsage += cpu
}

// read follows the events of one log: an allocation opens at 001 and
// closes at the 004, 005, 007, 009, 012 or 024 that ends it.
func (s *ulogStats) read(evs []userlog.Event) {
	type open struct {
		start time.Time
		host  string
	}
	running := map[[2]int]open{}
	ckpt := map[[2]int]time.Time{} // the last 003 of the open allocation
	for _, e := range evs {
		k := [2]int{e.Cluster, e.Proc}
		if s.cluster >= 0 && e.Cluster != s.cluster || s.proc >= 0 && e.Proc != s.proc {
			continue
		}
		switch e.Code {
		case userlog.JobExecuting:
			if o, ok := running[k]; ok && s.debug != nil {
				fmt.Fprintf(s.debug, "warning: job %d.%d started on %s before its run on %s ended; that run is dropped\n", k[0], k[1], ulogHost(e), o.host)
			}
			running[k] = open{e.Time, ulogHost(e)}
			delete(ckpt, k)
		case userlog.JobCheckpointed:
			if _, ok := running[k]; ok {
				ckpt[k] = e.Time
			}
		case userlog.JobEvicted, userlog.JobTerminated, userlog.JobAborted, userlog.JobHeld, userlog.JobReconnectFailed,
			userlog.ShadowException: // the VM could not go on on its machine; the job is idle again
			o, ok := running[k]
			if !ok {
				if s.debug != nil && (e.Code == userlog.JobEvicted || e.Code == userlog.JobTerminated) {
					fmt.Fprintf(s.debug, "warning: job %d.%d: event %03d without a run before it\n", k[0], k[1], e.Code)
				}
				continue
			}
			delete(running, k)
			end := e.Time
			wall := secs(end.Sub(o.start))
			var good, cpu int64
			switch {
			case e.Code == userlog.JobTerminated:
				good, cpu = wall, usageSecs(e.RunRemote)
			case e.Code == userlog.JobEvicted && e.Checkpointed:
				good, cpu = wall, usageSecs(e.RunRemote)
			default:
				// Lost: what a periodic checkpoint kept, if any (its
				// CPU is not reported).
				if t, ok := ckpt[k]; ok && t.After(o.start) {
					good = secs(t.Sub(o.start))
				}
			}
			delete(ckpt, k)
			if e.Code == userlog.JobTerminated && s.evictOnly {
				continue
			}
			s.record(k, o.host, o.start, end, wall, good, cpu)
		}
	}
}

func ulogHost(e userlog.Event) string {
	if e.SlotName != "" {
		return e.SlotName
	}
	return strings.TrimSuffix(strings.TrimPrefix(e.Host, "<"), ">")
}

func secs(d time.Duration) int64 { return max(int64(d/time.Second), 0) }

func usageSecs(u userlog.Usage) int64 { return secs(u.User) + secs(u.Sys) }

func (s *ulogStats) record(k [2]int, host string, start, end time.Time, wall, good, cpu int64) {
	if s.jobs == nil {
		s.jobs, s.hosts = map[[2]int]*ulogTotals{}, map[string]*ulogTotals{}
	}
	jt, ht := s.jobs[k], s.hosts[host]
	if jt == nil {
		jt = &ulogTotals{}
		s.jobs[k] = jt
	}
	if ht == nil {
		ht = &ulogTotals{}
		s.hosts[host] = ht
	}
	jt.add(wall, good, cpu)
	ht.add(wall, good, cpu)
	if s.totalsOnly {
		return
	}
	if !s.raw && !s.headed {
		fmt.Fprintf(s.out, "\n%-8.8s %-15.15s %-11.11s %-11.11s %9s %9s %9s\n", "Job", "Host", "Start Time", "Evict Time", "Wall Time", "Good Time", "CPU Usage")
		s.headed = true
	}
	fmt.Fprintf(s.out, "%-8.8s %-15.15s %11s %11s %9s %9s %9s\n", fmt.Sprintf("%d.%d", k[0], k[1]), host,
		fmtDate(start.Unix()), fmtDate(end.Unix()), noSecs(wall), noSecs(good), noSecs(cpu))
}

// summary prints each slot's totals, each job's and the whole.
func (s *ulogStats) summary() {
	fmt.Fprintf(s.out, "%-15.15s %9.9s %9.9s %9.9s %9.9s %9.9s %7.7s %6.6s\n\n",
		"Host/Job", "Wall Time", "Good Time", "CPU Usage", "Avg Alloc", "Avg Lost", "Goodput", "Util.")
	hosts := make([]string, 0, len(s.hosts))
	for h := range s.hosts {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		s.line(h, s.hosts[h])
	}
	fmt.Fprintln(s.out)
	jobs := make([][2]int, 0, len(s.jobs))
	for k := range s.jobs {
		jobs = append(jobs, k)
	}
	sort.Slice(jobs, func(i, j int) bool {
		if jobs[i][0] != jobs[j][0] {
			return jobs[i][0] < jobs[j][0]
		}
		return jobs[i][1] < jobs[j][1]
	})
	var total ulogTotals
	for _, k := range jobs {
		t := s.jobs[k]
		s.line(fmt.Sprintf("%d.%d", k[0], k[1]), t)
		total.allocs += t.allocs
		total.kills += t.kills
		total.wall += t.wall
		total.good += t.good
		total.cpuUsage += t.cpuUsage
	}
	fmt.Fprintln(s.out)
	s.line("Total", &total)
}

func (s *ulogStats) line(name string, t *ulogTotals) {
	avgAlloc, avgLost := "0+00:00", "0+00:00"
	if t.allocs > 0 {
		avgAlloc = noSecs(t.wall / int64(t.allocs))
	}
	if t.kills > 0 {
		avgLost = noSecs((t.wall - t.good) / int64(t.kills))
	}
	var goodput, util float64
	if t.wall > 0 {
		goodput = float64(t.good) / float64(t.wall) * 100
	}
	if t.good > 0 {
		util = float64(t.cpuUsage) / float64(t.good) * 100
	}
	fmt.Fprintf(s.out, "%-15.15s %9.9s %9.9s %9.9s %9.9s %9.9s %6.1f%% %5.1f%%\n",
		name, noSecs(t.wall), noSecs(t.good), noSecs(t.cpuUsage), avgAlloc, avgLost, goodput, util)
}

// noSecs prints seconds as days+hours:minutes.
func noSecs(secs int64) string {
	secs = max(secs, 0)
	return fmt.Sprintf("%d+%02d:%02d", secs/86400, secs%86400/3600, secs%3600/60)
}
