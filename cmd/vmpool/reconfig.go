package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/startd"
)

// policyKnobs are the knobs a SIGHUP applies to the startds of a running
// process (startd.SetPolicy); every other knob applies when its daemon
// starts.
var policyKnobs = []string{"START", "RANK", "PREEMPT", "KILL"}

// policyProblems says which policy knobs do not parse, and where they were
// set (startd.New checks them too, but cannot say where).
func policyProblems(cfg *Config) []string {
	var errs []string
	for _, k := range policyKnobs {
		if v := cfg.Get(k); strings.TrimSpace(v) != "" {
			if _, err := classad.ParseExpr(v); err != nil {
				errs = append(errs, fmt.Sprintf("%s = %s (from %s): %v%s", k, v, cfg.Origin(k), err, commentHint(v)))
			}
		}
	}
	return errs
}

// reconfig is HTCondor's condor_reconfig for one process: on SIGHUP (what
// systemctl reload sends) it reads the configuration again, as the process
// read it at start (the same --config files, --set and options), applies
// the changed policy knobs to the process's startds at once, and logs
// every other changed knob as one that applies at the daemon's restart.
// A configuration that no longer reads, or a policy that does not parse,
// changes nothing and is logged as an error; the daemons run on.
type reconfig struct {
	load   func() (*Config, error)
	logger *slog.Logger

	mu      sync.Mutex
	cur     *Config           // as the process started
	applied map[string]string // policy knobs changed since, as applied
	startds []*startd.Startd  // this process's, whose policy SetPolicy changes
}

// onHangup reads and applies the configuration again on every SIGHUP
// until ctx ends; then SIGHUP is ignored (Go's default would end the
// process at once, without vacating VMs or closing logs).
func onHangup(ctx context.Context, logger *slog.Logger, cur *Config, load func() (*Config, error)) *reconfig {
	r := &reconfig{load: load, logger: logger, cur: cur, applied: map[string]string{}}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-ctx.Done():
				signal.Ignore(syscall.SIGHUP)
				signal.Stop(ch)
				return
			case <-ch:
				r.apply(ctx)
			}
		}
	}()
	return r
}

// add has SIGHUP change these startds' policy too.
func (r *reconfig) add(ds ...*startd.Startd) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.startds = append(r.startds, ds...)
}

// value is what knob k is set to now in the running process.
func (r *reconfig) value(k string) string {
	if v, ok := r.applied[k]; ok {
		return v
	}
	return r.cur.Get(k)
}

// apply reads the configuration again and applies what changed.
func (r *reconfig) apply(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next, err := r.load()
	if err != nil {
		r.logger.Error("SIGHUP: the configuration does not read; nothing changed, the daemons run on as they were: fix it and send SIGHUP again", "err", err)
		return
	}
	names := append(r.cur.Names(), next.Names()...)
	slices.Sort(names)
	names = slices.Compact(names)
	var live, later []string
	for _, k := range names {
		if next.Get(k) == r.value(k) {
			continue
		}
		switch {
		case slices.Contains(policyKnobs, k) && len(r.startds) > 0:
			live = append(live, k)
		case slices.Contains(policyKnobs, k):
			// Not this process's: no startd runs here.
		default:
			later = append(later, k)
		}
	}
	if len(live) > 0 {
		if problems := policyProblems(next); len(problems) > 0 {
			r.logger.Error("SIGHUP: the new policy does not parse; nothing changed, the daemons run on as they were: fix it and send SIGHUP again",
				"problems", strings.Join(problems, "; "))
			return
		}
		p := startd.Policy{Start: next.Get("START"), Rank: next.Get("RANK"), Preempt: next.Get("PREEMPT"), Kill: next.Get("KILL")}
		for _, d := range r.startds {
			if err := d.SetPolicy(ctx, p); err != nil {
				r.logger.Error("SIGHUP: policy not applied", "startd", d.Name(), "err", err)
				return
			}
		}
		var said []string
		for _, k := range live {
			r.applied[k] = next.Get(k)
			said = append(said, fmt.Sprintf("%s = %s", k, next.Get(k)))
		}
		r.logger.Info("SIGHUP: configuration read again; applied to the running startds", "startds", len(r.startds), "knobs", strings.Join(said, "; "))
	}
	if len(later) > 0 {
		r.logger.Warn("SIGHUP: these knobs changed but apply only when the daemon restarts (a startd vacates its VMs as it stops, checkpointing those that asked for it)",
			"knobs", strings.Join(later, ", "))
	}
	if len(live) == 0 && len(later) == 0 {
		r.logger.Info("SIGHUP: configuration read again; nothing changed")
	}
}
