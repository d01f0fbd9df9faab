package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
	"github.com/vmpool/vmpool/schedd"
	"github.com/vmpool/vmpool/vmimage"
)

// lineBuffer is a command's stdout that a test can wait on, line by line.
type lineBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{} // closed and replaced on every write
	read    int           // lines handed out by next
}

func newLineBuffer() *lineBuffer { return &lineBuffer{changed: make(chan struct{})} }

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// next waits until n more complete lines were written, or done is closed
// or the timeout passes, and returns them.
func (l *lineBuffer) next(t *testing.T, n int, done <-chan struct{}, timeout time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		lines := strings.SplitAfter(l.b.String(), "\n")
		complete := len(lines) - 1 // the last element is an unfinished line
		ch := l.changed
		l.mu.Unlock()
		if complete >= l.read+n {
			out := strings.Join(lines[l.read:l.read+n], "")
			l.read += n
			return out
		}
		select {
		case <-ch:
		case <-done:
			n = complete - l.read
		case <-deadline.C:
			t.Fatalf("waited for %d more lines; have:\n%s", n, strings.Join(lines[l.read:], ""))
		}
	}
}

// waitFor waits until the output holds s and returns all of it.
func (l *lineBuffer) waitFor(t *testing.T, s string, timeout time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		out, ch := l.b.String(), l.changed
		l.mu.Unlock()
		if strings.Contains(out, s) {
			return out
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("output never held %q:\n%s", s, out)
		}
	}
}

// rest returns the lines not handed out yet.
func (l *lineBuffer) rest() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.SplitAfter(l.b.String(), "\n")
	out := strings.Join(lines[min(l.read, len(lines)):], "")
	l.read = len(lines) - 1
	return out
}

// bgCommand is a vmpool command running in the background of a test.
type bgCommand struct {
	stdout, stderr *lineBuffer
	cancel         context.CancelFunc
	done           chan struct{}
	code           int
}

func startCLI(url string, args ...string) *bgCommand {
	ctx, cancel := context.WithCancel(context.Background())
	b := &bgCommand{stdout: newLineBuffer(), stderr: newLineBuffer(), cancel: cancel, done: make(chan struct{})}
	c := &cli{stdout: b.stdout, stderr: b.stderr, stdin: strings.NewReader(""), getenv: testEnv(url)}
	go func() {
		defer close(b.done)
		b.code = c.main(ctx, append([]string{"vmpool"}, args...))
	}()
	return b
}

// finish waits for the command to end (cancelling it first when stop is
// set) and returns its remaining output and exit status.
func (b *bgCommand) finish(t *testing.T, stop bool) string {
	t.Helper()
	if stop {
		b.cancel()
	}
	select {
	case <-b.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("command did not end; output so far:\n%s", b.stdout.rest())
	}
	b.cancel()
	return b.stdout.rest() + fmt.Sprintf("exit %d\n", b.code)
}

// roleOf is the role whose subjects a scripted event goes out on.
func roleOf(source string) string {
	switch {
	case strings.HasPrefix(source, "negotiator"):
		return events.RoleNegotiator
	case strings.HasPrefix(source, "startd"):
		return events.RoleStartd
	}
	return events.RoleSchedd
}

// publishEvents publishes events to the pool's stream as a daemon's outbox
// does (subject, Nats-Msg-Id), or, with noMsgID, as a republish that
// JetStream's duplicate window no longer catches.
func publishEvents(t *testing.T, js jetstream.JetStream, evs []events.Event, noMsgID bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, e := range evs {
		data, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		m := events.EventMsg(roleOf(e.Source), e, data)
		if noMsgID {
			m.Header.Del(jetstream.MsgIDHeader)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("publish %s: %v", e, err)
		}
	}
}

// TestStreamScripts drives watch and events against scripted event
// streams: each script publishes events (JSON lines, as the stream stores
// them) to a real embedded NATS server and shows what the commands print
// in response, step by step. "lines=N" waits for N more lines of the
// background command's output.
func TestStreamScripts(t *testing.T) {
	for _, dir := range []string{"testdata/watch", "testdata/events"} {
		datadriven.Walk(t, dir, func(t *testing.T, path string) {
			srv, bus := eventstest.Bus(t)
			url := srv.URL()
			var bg *bgCommand
			t.Cleanup(func() {
				if bg != nil {
					bg.cancel()
					<-bg.done
				}
			})
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				lines := 0
				var args []string
				noMsgID := false
				for _, a := range d.CmdArgs {
					switch {
					case a.Key == "lines":
						fmt.Sscan(a.Vals[0], &lines)
					case a.Key == "nomsgid":
						noMsgID = true
					case len(a.Vals) == 0:
						args = append(args, a.Key)
					default:
						args = append(args, a.Key+"="+strings.Join(a.Vals, ","))
					}
				}
				switch d.Cmd {
				case "publish":
					publishEvents(t, bus.JS, parseEventLines(t, d.Input), noMsgID)
					if bg == nil || lines == 0 {
						return ""
					}
					return bg.stdout.next(t, lines, bg.done, 30*time.Second)
				case "run":
					out, errOut, code := runCLI(context.Background(), url, args...)
					if errOut != "" {
						out += "stderr: " + errOut
					}
					if code != 0 {
						out += fmt.Sprintf("exit %d\n", code)
					}
					return out
				case "start":
					bg = startCLI(url, args...)
					return bg.stdout.next(t, lines, bg.done, 30*time.Second)
				case "wait", "stop":
					out := bg.finish(t, d.Cmd == "stop")
					bg = nil
					return out
				case "stderr":
					return bg.stderr.rest()
				}
				t.Fatalf("unknown command %s", d.Cmd)
				return ""
			})
		})
	}
}

// freePort returns a TCP port nothing listens on now, so that a pool can
// be restarted at the same address.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startTestPoolAt is startTestPool listening on a fixed address.
func startTestPoolAt(t *testing.T, home, listen string, n int) *testPool {
	t.Helper()
	traversable(t, home)
	cfg := NewConfig()
	cfg.Set("LOCAL_DIR", home, "test")
	cfg.Set("VM_STATUS_INTERVAL", "5", "test")
	cfg.Set("UPDATE_INTERVAL", "2", "test")
	cfg.Set("NEGOTIATOR_INTERVAL", "5", "test")
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := startPool(ctx, cfg, listen, n, logger)
	if err != nil {
		t.Fatalf("start pool at %s: %v", listen, err)
	}
	tp := &testPool{personalPool: p, t: t, home: home, dir: t.TempDir(), cfg: cfg, logs: logs}
	testPools.Store(p.URL, home)
	t.Cleanup(func() {
		tp.stop()
		if t.Failed() {
			t.Logf("pool log:\n%s", logs.String())
		}
	})
	return tp.serving()
}

// serving waits until the NATS server has taken the in-process daemons'
// subscriptions: they share the pool's connection, and a round trip on
// it orders everything they sent before. Without it a request made right
// after the pool starts can find "no daemon answers".
func (tp *testPool) serving() *testPool {
	tp.t.Helper()
	if err := tp.Bus.NC.Flush(); err != nil {
		tp.t.Fatalf("flush the pool's connection: %v", err)
	}
	return tp
}

// gateWriter is a terminal that stops taking output until it is opened:
// a user's stalled terminal.
type gateWriter struct {
	open, blocked chan struct{} // blocked is closed when a write first waits
	once          sync.Once
	out           *lineBuffer
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.blocked) })
	<-g.open
	return g.out.Write(p)
}

// TestWatchSurvivesRestartAndSlowTerminal follows a job through a restart
// of the whole pool, then follows another while its terminal is stalled:
// the pool runs the job to completion meanwhile (no daemon waits for a
// watcher), and once the terminal takes output again every line comes,
// once each.
func TestWatchSurvivesRestartAndSlowTerminal(t *testing.T) {
	home, listen := t.TempDir(), freePort(t)
	tp := startTestPoolAt(t, home, listen, 0)
	dir := tp.dir
	if err := vmimage.WriteHello(filepath.Join(dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("hello.sub", helloSub))
	w := startCLI(tp.URL, "watch", "1", "--exit-when-done")
	t.Cleanup(func() { w.cancel(); <-w.done })
	head := w.stdout.next(t, 2, w.done, 30*time.Second)
	if !strings.Contains(head, "watching 1 job(s) in 1 batch(es)") || !strings.Contains(head, "0 done, 0 run, 1 idle, 0 held of 1") {
		t.Fatalf("watch began with:\n%s", head)
	}
	// Restart the pool on the same address, now with an execute machine.
	tp.stop()
	tp2 := startTestPoolAt(t, home, listen, 1)
	tp2.dir = dir
	tp2.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	out := w.finish(t, false)
	for _, want := range []string{"matched to slot1@startd1", "started on slot1@startd1", "guest powered off", "completed (exit code 0)"} {
		if n := strings.Count(out, want); n != 1 {
			t.Errorf("watch printed %q %d times across the restart, want once:\n%s", want, n, out)
		}
	}
	// A VM that starts within the schedd's ClaimedGrace has no JobClaimed
	// (its claim goes from matched to running); a slower one has one.
	if n := strings.Count(out, "claimed slot1@startd1"); n > 1 {
		t.Errorf("watch printed the claim %d times across the restart, want at most once:\n%s", n, out)
	}
	if !strings.Contains(out, "[ID: 1: 1 done, 0 run, 0 idle, 0 held of 1]") || !strings.HasSuffix(out, "-- all 1 job(s) finished: 1 completed, 0 removed, 0 held\nexit 0\n") {
		t.Errorf("watch across the restart ended with:\n%s", out)
	}

	// A stalled terminal: the watcher blocks on its first line; a job is
	// submitted and runs to completion meanwhile.
	gate := &gateWriter{open: make(chan struct{}), blocked: make(chan struct{}), out: newLineBuffer()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &cli{stdout: gate, stderr: newLineBuffer(), stdin: strings.NewReader(""), getenv: testEnv(tp2.URL)}
	done := make(chan int, 1)
	go func() { done <- c.main(ctx, []string{"vmpool", "q", "-watch"}) }()
	select {
	case <-gate.blocked:
	case <-time.After(30 * time.Second):
		t.Fatal("watch printed nothing")
	}
	tp2.mustRun("submit", tp2.write("hello.sub", helloSub))
	tp2.jobEvent(2, 0, events.JobCompleted, 90*time.Second)
	close(gate.open)
	slow := gate.out.waitFor(t, "2.0    completed (exit code 0)", 30*time.Second)
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("watch stopped by the user: exit %d, want 0", code)
	}
	for _, want := range []string{"watching 0 job(s)", "2      submitted by ", "2.0    started on slot1@startd1"} {
		if n := strings.Count(slow, want); n != 1 {
			t.Errorf("watch behind a stalled terminal printed %q %d times, want once:\n%s", want, n, slow)
		}
	}
}

// TestWatchTable feeds scripted events to the watcher in terminal mode and
// checks the redrawn table: one row per batch with its progress bar, the
// totals, and -constraint applied when the view starts.
func TestWatchTable(t *testing.T) {
	evs := parseEventLines(t, `
{"v":1,"src":"schedd","seq":1,"type":"ClusterSubmitted","t":1700000000000000000,"schedd":"schedd","cluster":1,"proc":-1,"p":{"submit_id":"a","owner":"alice","iwd":"/h","attrs":[{"n":"JobVMMemory","e":"16"},{"n":"JobBatchName","e":"\"nightly\""}],"procs":[],"num_procs":4}}
{"v":1,"src":"schedd","seq":2,"type":"ClusterSubmitted","t":1700000001000000000,"schedd":"schedd","cluster":2,"proc":-1,"p":{"submit_id":"b","owner":"alice","iwd":"/h","attrs":[{"n":"JobVMMemory","e":"4096"}],"procs":[],"num_procs":1}}
{"v":1,"src":"schedd","seq":3,"type":"JobMatched","t":1700000002000000000,"schedd":"schedd","cluster":1,"p":{"claim_id":"n#1","negotiator":"negotiator","startd":"s1","slot":"slot1@s1","machine":"h"}}
{"v":1,"src":"schedd","seq":4,"type":"JobStarted","t":1700000003000000000,"schedd":"schedd","cluster":1,"p":{"claim_id":"n#1","slot":"slot1@s1","host":"<h>"}}
{"v":1,"src":"schedd","seq":5,"type":"JobHeld","t":1700000004000000000,"schedd":"schedd","cluster":1,"proc":1,"p":{"code":1,"reason":"via condor_hold (by user alice)"}}
{"v":1,"src":"schedd","seq":6,"type":"JobRemoved","t":1700000005000000000,"schedd":"schedd","cluster":1,"proc":2,"p":{"reason":"via condor_rm (by user alice)"}}
`)
	var out strings.Builder
	w := &watcher{sched: "schedd", q: schedd.NewQueue("schedd"), jobs: map[events.JobID]*schedd.Job{},
		constraint: classad.MustParseExpr("JobVMMemory < 100"), known0: map[events.JobID]bool{},
		watched: map[events.JobID]bool{}, batches: map[int]*batch{}, out: &out, loc: time.UTC, table: true, url: "nats://here:4222"}
	if err := w.apply(streamEvent{Event: evs[0], Pending: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.caughtUp(); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs[1:] {
		if err := w.apply(streamEvent{Event: e}); err != nil {
			t.Fatal(err)
		}
	}
	screens := strings.Split(out.String(), "\x1b[H\x1b[2J")
	last := screens[len(screens)-1]
	for _, want := range []string{
		"OWNER      BATCH_NAME       SUBMITTED   DONE   RUN  IDLE  HOLD  TOTAL JOB_IDS      PROGRESS",
		"alice      nightly        11/14 22:13      _     1     1     1      4 1.0-3        [xxxxxxxx!!!!!!!!>>>>>>>.......]",
		"Total: 4 jobs; 0 completed, 1 removed, 1 idle, 1 running, 1 held, 0 suspended",
		"Last event: 2023-11-14 22:13:25 1.2 removed: via condor_rm (by user alice)",
	} {
		if !strings.Contains(last, want) {
			t.Errorf("table lacks %q:\n%s", want, last)
		}
	}
	if strings.Contains(last, "ID: 2") {
		t.Errorf("cluster 2 fails -constraint yet is shown:\n%s", last)
	}
	if len(screens) < 4 {
		t.Errorf("%d redraws for 5 events about watched jobs, want one each", len(screens)-1)
	}
}

// TestWatchShowsJobsOlderThanTheStream: the pool's event stream has lost
// the schedd's events of a job still in the queue (as when they outlive
// its 7-day retention); watch starts from the schedd's snapshot of the
// queue, so the job is shown, and follows the events after it.
func TestWatchShowsJobsOlderThanTheStream(t *testing.T) {
	tp := newTestPool(t, 0)
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("hello.sub", helloSub)) // no startd: it stays idle
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := tp.Bus.JS.Stream(ctx, events.StreamName)
	if err == nil {
		err = st.Purge(ctx, jetstream.WithPurgeSubject("vmpool.ev.schedd.>"))
	}
	if err != nil {
		t.Fatalf("purge the schedd's events: %v", err)
	}
	w := startCLI(tp.URL, "watch", "1", "--exit-when-done")
	t.Cleanup(func() { w.cancel(); <-w.done })
	head := w.stdout.next(t, 2, w.done, 30*time.Second)
	if !strings.Contains(head, "watching 1 job(s) in 1 batch(es)") || !strings.Contains(head, "0 done, 0 run, 1 idle, 0 held of 1") {
		t.Fatalf("watch of a job whose events the stream lost began with:\n%s\nstderr: %s", head, w.stderr.rest())
	}
	tp.mustRun("rm", "1")
	out := w.finish(t, false)
	if !strings.Contains(out, "1.0    removed") || !strings.HasSuffix(out, "-- all 1 job(s) finished: 0 completed, 1 removed, 0 held\nexit 1\n") {
		t.Fatalf("watch after the rm:\n%s", out)
	}
	// An owner with no jobs (a misspelt one) is named, not passed over as
	// one whose jobs are all done.
	if stdout, stderr, code := tp.vmpool("watch", "--exit-when-done", "nosuch"); code != 0 || !strings.Contains(stdout, "-- no jobs of nosuch to watch on schedd ") {
		t.Errorf("watch of an owner without jobs: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestWatchShowsTransfers: the daemons' reports on a watched job's large
// transfers become progress bars under the table on a terminal (gone once
// the transfer ends), and one line per finished transfer elsewhere; small
// files and other jobs' transfers show nothing.
func TestWatchShowsTransfers(t *testing.T) {
	evs := parseEventLines(t, `
{"v":1,"src":"schedd","seq":1,"type":"ClusterSubmitted","t":1700000000000000000,"schedd":"schedd","cluster":1,"proc":-1,"p":{"submit_id":"a","owner":"alice","iwd":"/h","attrs":[{"n":"JobVMMemory","e":"16"}],"procs":[],"num_procs":1}}
`)
	report := func(p events.TransferProgress) []byte {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const size = 64 << 20
	job := events.JobID{Cluster: 1}
	for _, table := range []bool{true, false} {
		var out strings.Builder
		w := &watcher{sched: "schedd", q: schedd.NewQueue("schedd"), jobs: map[events.JobID]*schedd.Job{}, known0: map[events.JobID]bool{},
			watched: map[events.JobID]bool{}, batches: map[int]*batch{}, out: &out, loc: time.UTC, table: table, url: "nats://here:4222"}
		if err := w.apply(streamEvent{Event: evs[0]}); err != nil {
			t.Fatal(err)
		}
		if err := w.caughtUp(); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		p := events.TransferProgress{Schedd: "schedd", Job: job, Kind: events.TransferReturn, File: "big.img", Total: size, By: "schedd"}
		w.progress(report(p))
		p.Done = size / 2
		w.drawn = time.Time{} // as if the last redraw were long ago
		w.progress(report(p))
		small := events.TransferProgress{Schedd: "schedd", Job: job, Kind: events.TransferInput, File: "small.img", Total: 1 << 20, Done: 1 << 19}
		w.progress(report(small))
		other := events.TransferProgress{Schedd: "schedd", Job: events.JobID{Cluster: 9}, Kind: events.TransferInput, File: "theirs.img", Total: size, Done: 1}
		w.progress(report(other))
		mid := out.String()
		p.Final, p.Done, p.ElapsedNanos = true, size, 2e9
		w.progress(report(p))
		end := strings.TrimPrefix(out.String(), mid)
		if table {
			screens := strings.Split(mid, "\x1b[H\x1b[2J")
			last := screens[len(screens)-1]
			if !strings.Contains(last, "Transfers:\n  1.0    big.img returned to you") || !strings.Contains(last, "50%") || !strings.Contains(last, "32/64 MiB") {
				t.Errorf("table during the transfer:\n%s", last)
			} else {
				t.Logf("the transfer under the table: %s", last[strings.Index(last, "Transfers:"):])
			}
			if strings.Contains(mid, "small.img") || strings.Contains(mid, "theirs.img") {
				t.Errorf("a small file or another job's transfer is shown:\n%s", mid)
			}
			if !strings.Contains(end, "Total:") || strings.Contains(end, "Transfers:") {
				t.Errorf("table after the transfer:\n%s", end)
			}
			continue
		}
		if mid != "" {
			t.Errorf("lines before the transfer ended: %q", mid)
		}
		if !strings.HasSuffix(end, "1.0    big.img returned to you: 64.0 MiB in 2.0 s (32.0 MiB/s)\n") {
			t.Errorf("line for the finished transfer: %q", end)
		}
	}
}

// TestEventsLeavesNoConsumer: vmpool events (and watch, wait) reads the
// event stream through an ordered consumer that the server kept for a
// minute after the command ended; a script running it often filled the
// stream's consumers (1,000 by default on a server the pool did not set
// up), and then a daemon could not make its own. It is deleted as the
// command ends.
func TestEventsLeavesNoConsumer(t *testing.T) {
	srv, bus := eventstest.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	consumers := func() int { return streamConsumers(t, ctx, bus) }
	before := consumers()
	for range 5 {
		if _, errOut, code := runCLI(ctx, srv.URL(), "events"); code != 0 {
			t.Fatalf("vmpool events: exit %d: %s", code, errOut)
		}
	}
	if after := consumers(); after != before {
		t.Errorf("5 runs of vmpool events left %d consumers on the stream (%d before)", after, before)
	}
}

// streamConsumers is how many consumers the pool's stream has.
func streamConsumers(t *testing.T, ctx context.Context, bus *events.Bus) int {
	t.Helper()
	s, err := bus.JS.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}

// TestEventsFollowStartsNow: vmpool events --follow prints the events
// published while it runs, as the docs say ("as they happen"). It printed
// every event the stream held first, from its beginning: in a pool that
// has run for a week, every event of seven days, read from every block of
// the stream into the server's memory, before the first new one. --since
// still starts earlier.
func TestEventsFollowStartsNow(t *testing.T) {
	srv, bus := eventstest.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publish := func(seq uint64) {
		t.Helper()
		e := events.New(events.JobHeld, events.JobHeldPayload{Code: 1, Reason: "test"}).ForJob("schedd", events.JobID{Cluster: 1})
		e.Source, e.Seq, e.Time = "schedd", seq, time.Now().UnixNano()
		if err := eventstest.Publish(ctx, bus.JS, events.RoleSchedd, e); err != nil {
			t.Fatal(err)
		}
	}
	consumers := func() int { return streamConsumers(t, ctx, bus) }
	publish(1)
	publish(2)
	before := consumers()

	var out, errOut syncBuffer
	fctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		c := &cli{stdout: &out, stderr: &errOut, stdin: strings.NewReader(""), getenv: testEnv(srv.URL())}
		done <- c.main(fctx, []string{"vmpool", "events", "--follow"})
	}()
	for consumers() == before {
		select {
		case code := <-done:
			t.Fatalf("vmpool events --follow ended (exit %d): %s", code, errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	publish(3)
	for !strings.Contains(out.String(), "schedd:3 ") {
		select {
		case code := <-done:
			t.Fatalf("vmpool events --follow ended (exit %d): %s", code, errOut.String())
		case <-ctx.Done():
			t.Fatalf("the event published while vmpool events --follow ran was not printed:\n%s", out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop()
	<-done
	if got := out.String(); strings.Contains(got, "schedd:1 ") || strings.Contains(got, "schedd:2 ") {
		t.Errorf("vmpool events --follow printed the events stored before it started:\n%s", got)
	}
	if strings.TrimSpace(errOut.String()) != "" {
		t.Errorf("stderr: %s", errOut.String())
	}

	// --since: from there on, then what comes.
	sctx, sstop := context.WithTimeout(ctx, 2*time.Second)
	defer sstop()
	got, _, _ := runCLI(sctx, srv.URL(), "events", "--follow", "--since", "2")
	if !strings.Contains(got, "schedd:2 ") || !strings.Contains(got, "schedd:3 ") || strings.Contains(got, "schedd:1 ") {
		t.Errorf("vmpool events --follow --since 2:\n%s", got)
	}
}
