package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchSmoke runs vmpool bench at a tiny size, as CI can afford: the
// scenarios must run on their real pools and report sane figures. Speed
// is not judged here; the numbers are only checked to be measurements.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several pools")
	}
	scenarios := []string{"classad", "submit", "query", "memory", "replay", "match"}
	keys := []string{"classad_eval_requirements_ns", "classad_match_100k_on_10k_s", "submit_batch_jobs_per_s", "submit_concurrent_clusters_per_s", "q_totals_100k_ms", "q_json_100k_ms",
		"schedd_bytes_per_job", "replay_events_per_s", "restart_100k_s", "match_100k_on_10k_s", "placements_per_s"}
	if _, err := exec.LookPath("qemu-system-x86_64"); err == nil {
		scenarios = append(scenarios, "turnaround")
		keys = append(keys, "turnaround_overhead_median_s", "turnaround_overhead_p99_s")
	}
	var out, errb bytes.Buffer
	c := &cli{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	home := t.TempDir()
	traversable(t, home) // a root startd runs QEMU as nobody
	args := []string{"vmpool", "bench", "--scale", "0.0005", "--home", home, "--scenario", strings.Join(scenarios, ","), "-json"}
	if code := c.main(ctx, args); code != 0 {
		t.Fatalf("vmpool bench: exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	var got map[string]float64
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("bench -json printed no JSON object: %v\n%s", err, out.String())
	}
	for _, k := range keys {
		v, ok := got[k]
		if !ok {
			t.Errorf("%s missing from %v", k, got)
			continue
		}
		// Memory per job may come out negative at this size only if the
		// empty schedd outweighed the full one: still a bug.
		if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			t.Errorf("%s = %v, want a positive finite figure", k, v)
		}
	}
	if _, ok := got["checkpoint_256mib_s"]; ok {
		t.Errorf("checkpoint_256mib_s reported for a scenario not run: %v", got)
	}
	for k := range got {
		if _, known := benchTargets[k]; !known && !benchUntargeted[k] {
			t.Errorf("unknown key %s in the JSON object", k)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"unknown scenario", []string{"--scenario", "warp"}, 2},
		{"scale out of range", []string{"--scale", "2"}, 2},
		{"unknown option", []string{"--fast"}, 2},
		{"help", []string{"--help"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			c := &cli{stdout: &out, stderr: &out, stdin: strings.NewReader(""), getenv: func(string) string { return "" }}
			if code := c.main(t.Context(), append([]string{"vmpool", "bench"}, tc.args...)); code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, out.String())
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for _, tc := range []struct{ p, want float64 }{{50, 3}, {99, 5}, {0, 1}, {20, 1}, {21, 2}} {
		if got := percentile(xs, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", xs, tc.p, got, tc.want)
		}
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("percentile of nothing is a number")
	}
}

// TestBenchMatchApart: bench --apart runs the match's sim startds as a
// process of their own (vmpool startd --sim-startds N, here the test
// binary as vmpool) and tells each side's CPU per placement.
func TestBenchMatchApart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a pool and a process")
	}
	var out, errb bytes.Buffer
	c := &cli{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	home := t.TempDir()
	if code := c.main(ctx, []string{"vmpool", "bench", "--scale", "0.0005", "--home", home, "--scenario", "match", "--apart"}); code != 0 {
		t.Fatalf("vmpool bench --apart: exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	for _, row := range []string{"CPU per placement (NATS server, schedd, negotiator: one process)", "CPU per placement (the 5 sim startds: a process of their own)",
		"CPU per placement (whole pool, user + system)"} {
		if !regexp.MustCompile(regexp.QuoteMeta(row) + ` +[0-9.]+ ms`).MatchString(out.String()) {
			t.Errorf("no %q row:\n%s", row, out.String())
		}
	}
	// How near the CPU bound: both processes' cores over the wall time.
	cores := regexp.MustCompile(`cores busy while placing \(of the (\d+) this host has\) +([0-9.]+) cores`).FindStringSubmatch(out.String())
	if cores == nil {
		t.Errorf("no row of the cores busy:\n%s", out.String())
	} else if n, _ := strconv.Atoi(cores[1]); n != runtime.NumCPU() {
		t.Errorf("cores busy row says the host has %s cores, it has %d", cores[1], runtime.NumCPU())
	} else if v, _ := strconv.ParseFloat(cores[2], 64); v <= 0 || v > float64(n)+0.5 {
		t.Errorf("cores busy = %v of %d", v, n)
	}
	if !regexp.MustCompile(`placements/s the \d+ cores allow at this CPU per placement +[0-9.]+ jobs/s`).MatchString(out.String()) {
		t.Errorf("no row of the placements/s the cores allow:\n%s", out.String())
	}
	// The startds were those of the other process: their log is there.
	if b, err := os.ReadFile(filepath.Join(home, "match-startds", "startds.log")); err != nil {
		t.Errorf("the sim startds' process left no log: %v", err)
	} else if strings.Contains(string(b), "level=ERROR") {
		t.Errorf("the sim startds' process logged errors:\n%s", b)
	}
}

// The daemons refuse the options of vmpool up they would ignore.
func TestDaemonRefusesUpOptions(t *testing.T) {
	for _, args := range [][]string{{"startd", "--startds", "2"}, {"schedd", "--sim-startds", "3"}, {"negotiator", "--startds", "1"}} {
		out, errs, code := runCLI(t.Context(), "", args...)
		if code != 2 || out != "" || !strings.Contains(errs, "is an option of vmpool up") {
			t.Errorf("vmpool %s: exit %d, %q %q; want exit 2 naming vmpool up", strings.Join(args, " "), code, out, errs)
		}
	}
}
