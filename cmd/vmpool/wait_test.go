package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// User log events for the wait tests, in HTCondor's format.
const (
	waitSubmitted = `000 (001.000.000) 2024-05-14 10:01:07 Job submitted from host: <10.0.0.5:9618>
...
`
	waitTerminated = `005 (001.000.000) 2024-05-14 12:40:55 Job terminated.
	(1) Normal termination (return value 0)
		Usr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage
		Usr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage
		Usr 0 00:00:00, Sys 0 00:00:00  -  Total Remote Usage
		Usr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage
	0  -  Run Bytes Sent By Job
	0  -  Run Bytes Received By Job
	0  -  Total Bytes Sent By Job
	0  -  Total Bytes Received By Job
...
`
	waitHeld = `012 (001.000.000) 2024-05-14 10:06:12 Job was held.
	Error from slot1@exec09: VMGAHP_ERR_JOBCLASSAD_KVM_INVALID_DISK_PARAM
	Code 6 Subcode 10
...
`
)

// setWaitGrace sets waitGrace for the test and restores it after.
func setWaitGrace(t *testing.T, d time.Duration) {
	old := waitGrace
	waitGrace = d
	t.Cleanup(func() { waitGrace = old })
}

// writeLog writes a user log whole (through a rename, so that wait never
// reads half of it) and returns its path.
func writeLog(t *testing.T, path, text string) string {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

type waitResult struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// runWait runs vmpool wait in-process; a wait that polls on is cut off
// after 5 s (exit 1, nothing printed).
func runWait(t *testing.T, args ...string) waitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	out, errs, code := runCLI(ctx, "", append([]string{"wait"}, args...)...)
	return waitResult{out, errs, code, time.Since(start)}
}

func (r waitResult) check(t *testing.T, stdout, stderr string, code int) {
	t.Helper()
	if r.stdout != stdout || r.stderr != stderr || r.code != code {
		t.Fatalf("got exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q (after %v)",
			r.code, r.stdout, r.stderr, code, stdout, stderr, r.took)
	}
}

// TestWaitGivesUp: as condor_wait, wait gives up with exit 1 on a log it
// cannot open or that mentions no job (or not the given one), but only once
// the grace has passed: the schedd writes the log just after submit returns.
func TestWaitGivesUp(t *testing.T) {
	const grace = 100 * time.Millisecond
	setWaitGrace(t, grace)
	dir := t.TempDir()
	missing := filepath.Join(dir, "nonexist.log")
	log := writeLog(t, filepath.Join(dir, "c.log"), waitSubmitted+waitTerminated)
	empty := writeLog(t, filepath.Join(dir, "empty.log"), "")
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"missing", []string{missing}, "Couldn't open " + missing + ": No such file or directory\n"},
		{"missing job", []string{missing, "1"}, "Couldn't open " + missing + ": No such file or directory\n"},
		{"other cluster", []string{log, "99"}, "This log does not mention that job!\n"},
		{"other proc", []string{log, "1.1"}, "This log does not mention that job!\n"},
		{"empty", []string{empty}, "This log does not mention any jobs!\n"},
		{"empty job", []string{empty, "1.0"}, "This log does not mention that job!\n"},
		{"num", []string{"-num", "1", empty}, "This log does not mention any jobs!\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runWait(t, tc.args...)
			r.check(t, "", tc.stderr, 1)
			if r.took < grace {
				t.Fatalf("gave up after %v, before the grace of %v", r.took, grace)
			}
		})
	}
}

// TestWaitZero: -wait 0 reads the log to its end and stops: exit 0 if the
// jobs are done, else "Time expired." and exit 1; no grace for a missing
// log or one without the job.
func TestWaitZero(t *testing.T) {
	setWaitGrace(t, 10*time.Second)
	dir := t.TempDir()
	done := writeLog(t, filepath.Join(dir, "done.log"), waitSubmitted+waitTerminated)
	held := writeLog(t, filepath.Join(dir, "held.log"), waitSubmitted+waitHeld)
	empty := writeLog(t, filepath.Join(dir, "empty.log"), "")
	missing := filepath.Join(dir, "nonexist.log")
	// One log for the jobs of two schedds (log = jobs.log in submits to
	// -name a and -name b): a 1.0 of each, one ended. wait used to say
	// "All jobs done" while the other ran on.
	shared := writeLog(t, filepath.Join(dir, "shared.log"), waitSubmitted+waitSubmitted+waitTerminated)
	sharedDone := writeLog(t, filepath.Join(dir, "shared-done.log"), waitSubmitted+waitSubmitted+waitTerminated+waitTerminated)
	for _, tc := range []struct {
		name           string
		args           []string
		stdout, stderr string
		code           int
	}{
		{"done", []string{"-wait", "0", done}, "All jobs done.\n", "", 0},
		{"done job", []string{"-wait", "0", done, "1.0"}, "All jobs done.\n", "", 0},
		{"done num", []string{"-wait", "0", "-num", "1", done}, "Specified number of jobs (1) done.\n", "", 0},
		{"held", []string{"-wait", "0", held}, "Time expired.\n", "", 1},
		{"held num", []string{"-wait", "0", "-num", "1", held}, "Time expired.\n", "", 1},
		{"shared", []string{"-wait", "0", shared}, "Time expired.\n", "", 1},
		{"shared job", []string{"-wait", "0", shared, "1.0"}, "Time expired.\n", "", 1},
		{"shared num", []string{"-wait", "0", "-num", "1", shared}, "Specified number of jobs (1) done.\n", "", 0},
		{"shared num 2", []string{"-wait", "0", "-num", "2", shared}, "Time expired.\n", "", 1},
		{"shared done", []string{"-wait", "0", sharedDone}, "All jobs done.\n", "", 0},
		{"empty", []string{"-wait", "0", empty}, "", "This log does not mention any jobs!\n", 1},
		{"other job", []string{"-wait", "0", done, "2"}, "", "This log does not mention that job!\n", 1},
		{"missing", []string{"-wait", "0", missing}, "", "Couldn't open " + missing + ": No such file or directory\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runWait(t, tc.args...)
			r.check(t, tc.stdout, tc.stderr, tc.code)
			if r.took > time.Second {
				t.Fatalf("-wait 0 took %v", r.took)
			}
		})
	}
}

// TestWaitGraceAtMostWait: with -wait shorter than the grace, wait gives up
// on a missing log when the -wait time is up, with condor_wait's message.
func TestWaitGraceAtMostWait(t *testing.T) {
	setWaitGrace(t, 10*time.Second)
	missing := filepath.Join(t.TempDir(), "nonexist.log")
	r := runWait(t, "-wait", "1", missing)
	r.check(t, "", "Couldn't open "+missing+": No such file or directory\n", 1)
	if r.took < time.Second || r.took > 3*time.Second {
		t.Fatalf("-wait 1 on a missing log took %v", r.took)
	}
}

// TestWaitLogAppears: a log written during the grace (as the schedd writes
// it just after submit returns) is followed until its job is done, even
// when that is after the grace.
func TestWaitLogAppears(t *testing.T) {
	const grace = 500 * time.Millisecond
	setWaitGrace(t, grace)
	path := filepath.Join(t.TempDir(), "job.log")
	errc := make(chan error, 1)
	go func() {
		time.Sleep(grace / 2)
		if err := os.WriteFile(path+".tmp", []byte(waitSubmitted), 0o644); err != nil {
			errc <- err
			return
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			errc <- err
			return
		}
		time.Sleep(grace)
		if err := os.WriteFile(path+".tmp", []byte(waitSubmitted+waitTerminated), 0o644); err != nil {
			errc <- err
			return
		}
		errc <- os.Rename(path+".tmp", path)
	}()
	r := runWait(t, path, "1")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	r.check(t, "All jobs done.\n", "", 0)
	if r.took < grace {
		t.Fatalf("done after %v, before the job's 005 was written", r.took)
	}
}
