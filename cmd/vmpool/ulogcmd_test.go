package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/schedd/userlog"
)

// TestUserlogSummary: condor_userlog's allocations and totals for a log
// with a run lost (evicted without a checkpoint, after a periodic one), a
// run vacated with a checkpoint, a completed run and a run held. The
// figures below were worked out by hand.
func TestUserlogSummary(t *testing.T) {
	day := time.Date(2026, 3, 4, 0, 0, 0, 0, time.Local)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	cpu := func(m int) userlog.Usage {
		return userlog.Usage{User: time.Duration(m) * time.Minute, Sys: 30 * time.Second}
	}
	evs := []userlog.Event{
		{Code: userlog.JobSubmitted, Cluster: 1, Time: at(9, 0), Host: "<schedd>"},
		{Code: userlog.JobSubmitted, Cluster: 2, Time: at(9, 0), Host: "<schedd>"},
		{Code: userlog.JobExecuting, Cluster: 1, Time: at(10, 0), Host: "<slot1@a>", SlotName: "slot1@a"},
		{Code: userlog.JobExecuting, Cluster: 2, Time: at(10, 0), Host: "<slot1@b>", SlotName: "slot1@b"},
		{Code: userlog.JobHeld, Cluster: 2, Time: at(10, 5), Reason: "via condor_hold (by user alice)", HoldCode: 1},
		{Code: userlog.JobCheckpointed, Cluster: 1, Time: at(10, 20)},
		{Code: userlog.JobEvicted, Cluster: 1, Time: at(10, 30), RunRemote: cpu(7)},
		{Code: userlog.JobExecuting, Cluster: 1, Time: at(11, 0), Host: "<slot1@b>", SlotName: "slot1@b"},
		{Code: userlog.JobEvicted, Cluster: 1, Time: at(11, 40), Checkpointed: true, RunRemote: cpu(30)},
		{Code: userlog.JobExecuting, Cluster: 1, Time: at(12, 0), Host: "<slot1@a>", SlotName: "slot1@a"},
		{Code: userlog.JobTerminated, Cluster: 1, Time: at(12, 10), RunRemote: cpu(9)},
	}
	path := writeUserLog(t, evs)
	run := func(args ...string) string {
		t.Helper()
		out, errs, code := runCLI(context.Background(), "", append([]string{"userlog"}, args...)...)
		if code != 0 || errs != "" {
			t.Fatalf("vmpool userlog %v: exit %d: %s", args, code, errs)
		}
		return out
	}
	// The CPU of a lost run does not count; a run's CPU is its user and
	// system time (30 min + 30 s, printed as 0+00:30), summed as seconds
	// (job 1.0: 1,830 + 570 s = 0+00:40).
	want := `
Job      Host            Start Time  Evict Time  Wall Time Good Time CPU Usage
2.0      slot1@b           3/4 10:00   3/4 10:05   0+00:05   0+00:00   0+00:00
1.0      slot1@a           3/4 10:00   3/4 10:30   0+00:30   0+00:20   0+00:00
1.0      slot1@b           3/4 11:00   3/4 11:40   0+00:40   0+00:40   0+00:30
1.0      slot1@a           3/4 12:00   3/4 12:10   0+00:10   0+00:10   0+00:09

Host/Job        Wall Time Good Time CPU Usage Avg Alloc  Avg Lost Goodput  Util.

slot1@a           0+00:40   0+00:30   0+00:09   0+00:20   0+00:10   75.0%  31.7%
slot1@b           0+00:45   0+00:40   0+00:30   0+00:22   0+00:05   88.9%  76.2%

1.0               0+01:20   0+01:10   0+00:40   0+00:26   0+00:10   87.5%  57.1%
2.0               0+00:05   0+00:00   0+00:00   0+00:05   0+00:05    0.0%   0.0%

Total             0+01:25   0+01:10   0+00:40   0+00:21   0+00:07   82.4%  57.1%
`
	if got := run(path); got != want {
		t.Errorf("vmpool userlog:\n%s\nwant:\n%s", got, want)
	}
	// -total: the summary only; -evict: no completed run; -j: one job.
	if got := run("-total", path); got != want[strings.Index(want, "\nHost/Job"):] {
		t.Errorf("vmpool userlog -total:\n%s", got)
	}
	if got := run("-evict", path); strings.Contains(got, "12:10") || !strings.Contains(got, "11:40") {
		t.Errorf("vmpool userlog -evict kept the completed run or lost the evicted one:\n%s", got)
	}
	if got := run("-j", "2", path); strings.Contains(got, "1.0 ") || !strings.Contains(got, "2.0 ") {
		t.Errorf("vmpool userlog -j 2:\n%s", got)
	}
	// Bad use: a clear message and exit 2; a missing file: exit 1.
	for _, args := range [][]string{{}, {"-j"}, {"-j", "x", path}, {"-j", "0", path}, {"-bogus", path}, {"-total", "-raw", path}} {
		if _, errs, code := runCLI(context.Background(), "", append([]string{"userlog"}, args...)...); code != 2 || !strings.Contains(errs, "vmpool userlog:") {
			t.Errorf("vmpool userlog %v: exit %d, %q; want exit 2 and a usage message", args, code, errs)
		}
	}
	if _, errs, code := runCLI(context.Background(), "", "userlog", filepath.Join(t.TempDir(), "none.log")); code != 1 || !strings.Contains(errs, "none.log") {
		t.Errorf("vmpool userlog of a missing file: exit %d, %q", code, errs)
	}
}

// TestUserlogCountsARunEndedByAShadowException: vmpool writes a 007 when
// a run ends because the VM could not go on on its machine (lost while
// its startd was down, refused at start); the job is idle again and its
// next run is a new 001. The run the 007 ended is an allocation like a
// held one: its wall time counts, none of it good.
func TestUserlogCountsARunEndedByAShadowException(t *testing.T) {
	day := time.Date(2026, 3, 4, 0, 0, 0, 0, time.Local)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	evs := []userlog.Event{
		{Code: userlog.JobSubmitted, Cluster: 3, Time: at(9, 0), Host: "<schedd>"},
		{Code: userlog.JobExecuting, Cluster: 3, Time: at(10, 0), Host: "<slot1@a>", SlotName: "slot1@a"},
		{Code: userlog.ShadowException, Cluster: 3, Time: at(10, 20), Text: "Error from slot1@a: the VM was lost while its startd was down"},
		{Code: userlog.JobExecuting, Cluster: 3, Time: at(10, 30), Host: "<slot1@b>", SlotName: "slot1@b"},
		{Code: userlog.JobTerminated, Cluster: 3, Time: at(10, 40)},
	}
	path := writeUserLog(t, evs)
	out, errs, code := runCLI(context.Background(), "", "userlog", "-debug", path)
	if code != 0 {
		t.Fatalf("vmpool userlog: exit %d: %s", code, errs)
	}
	for _, row := range []string{
		"3.0      slot1@a           3/4 10:00   3/4 10:20   0+00:20   0+00:00   0+00:00",
		"3.0      slot1@b           3/4 10:30   3/4 10:40   0+00:10   0+00:10   0+00:00",
		"Total             0+00:30   0+00:10",
	} {
		if !strings.Contains(out, row) {
			t.Errorf("vmpool userlog: no line %q in\n%s%s", row, out, errs)
		}
	}
	if errs != "" {
		t.Errorf("vmpool userlog -debug warned: %s", errs)
	}
}

// writeUserLog writes evs as a user log in a file of the test's own and
// returns its path.
func writeUserLog(t *testing.T, evs []userlog.Event) string {
	t.Helper()
	var log []byte
	for _, e := range evs {
		log = append(log, userlog.Format(e, userlog.FormatOptions{})...)
	}
	path := filepath.Join(t.TempDir(), "job.log")
	if err := os.WriteFile(path, log, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
