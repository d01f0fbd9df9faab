package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/schedd"
	"github.com/vmpool/vmpool/startd"
	"github.com/vmpool/vmpool/vmimage"
)

// runCLI runs the vmpool command line in-process with TZ=UTC and the
// given pool URL, and returns what it printed.
func runCLI(ctx context.Context, url string, args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	c := &cli{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: testEnv(url)}
	code = c.main(ctx, append([]string{"vmpool"}, args...))
	return out.String(), errb.String(), code
}

func testEnv(url string) func(string) string {
	return func(k string) string {
		switch k {
		case "VMPOOL_URL":
			return url
		case "VMPOOL_CREDS":
			return testCreds(url)
		case "TZ":
			return "UTC"
		}
		return ""
	}
}

// cmdLine rebuilds a command line from a datadriven directive's
// arguments: "--until=3" stays "--until=3", "-json" stays "-json".
func cmdLine(d *datadriven.TestData) []string {
	var args []string
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 {
			args = append(args, a.Key)
		} else {
			args = append(args, a.Key+"="+strings.Join(a.Vals, ","))
		}
	}
	return args
}

// parseEventLines reads events in JSON lines, as logs and the stream store
// them; each must pass the codec's checks.
func parseEventLines(t *testing.T, input string) []events.Event {
	t.Helper()
	var evs []events.Event
	for _, line := range strings.Split(input, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := events.Decode([]byte(line))
		if err != nil {
			t.Fatalf("bad event line %s: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// TestReplayScripts replays recorded logs: each script appends events (in
// JSON lines, as stored) to a fresh Pebble log under a pool home, then
// runs vmpool replay on it and compares what it prints.
func TestReplayScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/replay", func(t *testing.T, path string) {
		home := t.TempDir()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "log":
				var daemon string
				d.ScanArgs(t, "daemon", &daemon)
				l, err := events.OpenLog(filepath.Join(home, daemon, "log"), daemon, events.LogOptions{})
				if err != nil {
					t.Fatal(err)
				}
				evs := parseEventLines(t, d.Input)
				if _, err := l.Append(evs); err != nil {
					t.Fatal(err)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				return fmt.Sprintf("appended %d records to %s/log\n", len(evs), daemon)
			case "vmpool":
				args := cmdLine(d)
				if len(args) > 0 && args[0] == "replay" {
					args = append(args, "--home", home)
				}
				out, errOut, code := runCLI(context.Background(), "nats://127.0.0.1:1", args...)
				s := out
				if errOut != "" {
					s += "stderr: " + errOut
				}
				if code != 0 {
					s += fmt.Sprintf("exit %d\n", code)
				}
				return strings.ReplaceAll(s, home, "HOME")
			}
			t.Fatalf("unknown command %s", d.Cmd)
			return ""
		})
	})
}

// TestFirstDivergence checks the prefix search replay --check uses to name
// the first event where two replays part.
func TestFirstDivergence(t *testing.T) {
	for _, tc := range []struct{ total, first int }{{1, 1}, {2, 1}, {2, 2}, {10, 1}, {10, 7}, {10, 10}, {1000, 513}} {
		calls := 0
		got := firstDivergence(tc.total, func(n int) bool { calls++; return n >= tc.first })
		if got != tc.first {
			t.Errorf("total %d, diverging from %d: got %d", tc.total, tc.first, got)
		}
		if limit := 2 + bitsLen(tc.total); calls > limit {
			t.Errorf("total %d: %d calls, want at most %d (a binary search)", tc.total, calls, limit)
		}
	}
}

func bitsLen(n int) int {
	b := 0
	for ; n > 0; n >>= 1 {
		b++
	}
	return b
}

// TestDumpStateSeesEveryField checks that the state dump replay --check
// compares tells two queues apart by any field, so a field a codec loses
// cannot hide.
func TestDumpStateSeesEveryField(t *testing.T) {
	mk := func() *schedd.Queue {
		q := schedd.NewQueue("schedd")
		e := events.New(events.ClusterSubmitted, events.ClusterSubmittedPayload{SubmitID: "s", Owner: "alice", Iwd: "/h", NumProcs: 1,
			Attrs: []events.Attr{{Name: "Cmd", Expr: `"x"`}}}).ForCluster("schedd", 1)
		e.Source, e.Seq, e.Time = "schedd", 1, 1e18
		schedd.Apply(q, e)
		return q
	}
	a, b := mk(), mk()
	if dumpState(a) != dumpState(b) {
		t.Fatalf("equal queues dump differently:\n%s\n%s", dumpState(a), dumpState(b))
	}
	b.Jobs[events.JobID{Cluster: 1}].BytesRecv = 7
	if dumpState(a) == dumpState(b) {
		t.Fatal("queues differing in a job's BytesRecv dump alike")
	}
	b = mk()
	b.Clusters[1].Ad().SetInt("Extra", 1)
	if dumpState(a) == dumpState(b) {
		t.Fatal("queues differing in a cluster ad dump alike")
	}
}

// TestReplayEqualsLivePool runs jobs on a real pool, then checks that
// replaying the schedd's log gives exactly the live queue and history,
// first against the running pool (replay reads a copy of the locked log)
// and then with the pool stopped.
func TestReplayEqualsLivePool(t *testing.T) {
	tp := newTestPool(t, 1).serving()
	img := filepath.Join(tp.dir, "hello.img")
	if err := vmimage.WriteHello(img); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("hello.sub", helloSub))
	tp.jobEvent(1, 0, events.JobCompleted, 60*time.Second)
	// Too big for the pool, so they never run: one submitted on hold,
	// released, held again and removed; one idle for ever.
	big := strings.Replace(helloSub, "vm_memory = 16", "vm_memory = 999999", 1)
	tp.mustRun("submit", tp.write("held.sub", strings.Replace(big, "queue", "hold = true\nqueue", 1)))
	tp.mustRun("release", "2")
	tp.jobEvent(2, 0, events.JobReleased, 10*time.Second)
	tp.mustRun("hold", "2.0")
	tp.mustRun("rm", "2.0")
	tp.mustRun("submit", tp.write("big.sub", big))

	out, errOut, code := tp.vmpool("replay", "--home", tp.home, "--check", "-pool", tp.URL)
	if code != 0 || !strings.Contains(out, "equal vmpool q -json and vmpool history -json") || !strings.Contains(out, "the replayed slots (1) equal the machine ads vmpool status shows") {
		t.Fatalf("replay --check against the running pool: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "reading a copy taken now") {
		t.Errorf("replay of a running daemon's log should say it reads a copy: %q", errOut)
	}
	live := tp.mustRun("q", "-json", "-allusers")
	hist := tp.mustRun("history", "-json")
	tp.stop()

	replayed := jsonAds(t, tp.mustRunOffline("replay", "--home", tp.home, "-json"))
	want := append(jsonAds(t, live), jsonAds(t, hist)...)
	if len(want) != 3 {
		t.Fatalf("live pool has %d jobs, want 3 (1 completed, 1 removed, 1 idle)", len(want))
	}
	if !sameJSON(t, replayed, want) {
		t.Fatalf("replayed ads differ from the live pool's:\nreplayed %v\nlive %v", replayed, want)
	}
	check := tp.mustRunOffline("replay", "--home", tp.home, "--check")
	for _, name := range []string{"schedd", "negotiator", "startd1"} {
		if !regexp.MustCompile(`(?m)^` + name + ` +ok +`).MatchString(check) {
			t.Errorf("replay --check does not pass %s:\n%s", name, check)
		}
	}
	timeline := tp.mustRunOffline("replay", "--home", tp.home, "--job", "1.0")
	for _, want := range []string{"submitted by ", "matched to slot1@startd1 by negotiator", "started on slot1@startd1", "guest powered off", "completed (exit code 0); returned hello.img", "Time in each phase: idle "} {
		if !strings.Contains(timeline, want) {
			t.Errorf("timeline of 1.0 lacks %q:\n%s", want, timeline)
		}
	}
	if tl := tp.mustRunOffline("replay", "--home", tp.home, "--job", "2.0"); !strings.Contains(tl, "held: via condor_hold") || !strings.Contains(tl, "removed: via condor_rm") {
		t.Errorf("timeline of 2.0:\n%s", tl)
	}
	// As it was before anything ran: one job, idle.
	early := tp.mustRunOffline("replay", "--home", tp.home, "--until", "1")
	if !strings.Contains(early, "Total for query: 1 jobs; 0 completed, 0 removed, 1 idle") {
		t.Errorf("replay --until 1:\n%s", early)
	}
	neg := tp.mustRunOffline("replay", "--home", tp.home, "--daemon", "negotiator", "-json")
	var nd negotiatorDump
	if err := json.Unmarshal([]byte(neg), &nd); err != nil || nd.Made < 1 {
		t.Errorf("negotiator replay: %v\n%s", err, neg)
	}
	st := tp.mustRunOffline("replay", "--home", tp.home, "--daemon", "startd1")
	if !strings.Contains(st, "slot1@startd1") || !strings.Contains(st, "Claims accepted since the log began: 1") {
		t.Errorf("startd replay:\n%s", st)
	}
}

// mustRunOffline runs a command that needs no pool.
func (tp *testPool) mustRunOffline(args ...string) string {
	tp.t.Helper()
	out, errOut, code := runCLI(context.Background(), "nats://127.0.0.1:1", args...)
	if code != 0 {
		tp.t.Fatalf("vmpool %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func sameJSON(t *testing.T, a, b []map[string]any) bool {
	t.Helper()
	norm := func(ads []map[string]any) []string {
		var out []string
		for _, ad := range ads {
			s, err := json.Marshal(ad)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(s))
		}
		sort.Strings(out)
		return out
	}
	x, y := norm(a), norm(b)
	return strings.Join(x, "\n") == strings.Join(y, "\n")
}

// TestHistoryAcrossRestart checks that condor_history's answers come from
// the schedd's log: the same after the pool restarts.
func TestHistoryAcrossRestart(t *testing.T) {
	home := t.TempDir()
	tp := startTestPool(t, home, 1).serving()
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("hello.sub", strings.Replace(helloSub, "queue", "queue 2", 1)))
	tp.jobEvent(1, 0, events.JobCompleted, 60*time.Second)
	tp.jobEvent(1, 1, events.JobCompleted, 60*time.Second)
	queries := [][]string{
		{"history", "-json"},
		{"history", "-limit", "1", "-af", "ClusterId", "ProcId", "JobStatus"},
		{"history", "-constraint", "ProcId == 1", "-af", "ProcId", "NumJobStarts", "Cmd"},
		{"history"},
	}
	before := make([]string, len(queries))
	for i, q := range queries {
		before[i] = tp.mustRun(q...)
	}
	if n := len(jsonAds(t, before[0])); n != 2 {
		t.Fatalf("history has %d jobs before the restart, want 2", n)
	}
	if before[2] != "1 1 hello_vm_job\n" {
		t.Fatalf("history -constraint -af: %q", before[2])
	}
	tp.stop()
	tp2 := startTestPool(t, home, 0).serving()
	for i, q := range queries {
		if got := tp2.mustRun(q...); got != before[i] {
			t.Errorf("vmpool %s after the restart:\n%s\nbefore:\n%s", strings.Join(q, " "), got, before[i])
		}
	}
}

// TestCheckLiveNamesFirstDivergentEvent compares a replayed schedd log
// with "live" ads that lag or differ, as replay --check -pool does, and
// checks the event it names.
func TestCheckLiveNamesFirstDivergentEvent(t *testing.T) {
	src, err := os.ReadFile("testdata/replay/lifecycle.txt")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, `{"v":1,"src":"schedd"`) {
			lines = append(lines, l)
		}
		if len(lines) > 0 && l == "----" {
			break
		}
	}
	evs := parseEventLines(t, strings.Join(lines, "\n"))
	recs := make([]record, len(evs))
	for i, e := range evs {
		recs[i] = record{idx: uint64(i + 1), e: e}
	}
	adAfter := func(n int, id events.JobID) string {
		q := schedd.NewQueue("schedd")
		for _, r := range recs[:n] {
			schedd.Apply(q, r.e)
		}
		for _, j := range append(q.Sorted(), q.History...) {
			if j.ID == id {
				return adJSON(j, "schedd")
			}
		}
		t.Fatalf("no job %s after %d records", id, n)
		return ""
	}
	live := map[string]string{}
	q := schedd.NewQueue("schedd")
	for _, r := range recs {
		schedd.Apply(q, r.e)
	}
	for _, j := range append(q.Sorted(), q.History...) {
		live[j.ID.String()] = adJSON(j, "schedd")
	}
	t.Run("equal", func(t *testing.T) {
		res := checkResult{ok: true}
		checkLive(&res, logTarget{source: "schedd"}, recs, live, "nats://x")
		if !res.ok || !strings.Contains(strings.Join(res.notes, "\n"), "(3 jobs) equal vmpool q -json") {
			t.Fatalf("equal live and replayed ads reported as %v %q", res.ok, res.notes)
		}
	})
	t.Run("lagging", func(t *testing.T) {
		lagging := maps.Clone(live)
		lagging["1.0"] = adAfter(8, events.JobID{Cluster: 1, Proc: 0}) // as if the live schedd never applied schedd:9 on
		delete(lagging, "2.0")
		lagging["5.0"] = live["1.1"]
		res := checkResult{ok: true}
		checkLive(&res, logTarget{source: "schedd"}, recs, lagging, "nats://x")
		notes := strings.Join(res.notes, "\n")
		for _, want := range []string{
			"job 1.0: ",
			"the live ad equals the log up to record 8, first divergent event: record 9 (schedd:9 JobStarted job=schedd/1.0)",
			"job 2.0: in the log but not in the live pool; its first event is record 15 (schedd:15 ClusterSubmitted cluster=schedd/2)",
			"job 5.0 is in the live pool but not in the log",
			"3 of 4 jobs differ from the live pool",
		} {
			if !strings.Contains(notes, want) {
				t.Errorf("notes lack %q:\n%s", want, notes)
			}
		}
		if res.ok {
			t.Error("differences reported as ok")
		}
	})
}

// TestCheckLiveSlots: replay --check -pool compares a startd's replayed
// slots with its ads in the collector, and names the first record the
// live ad does not reflect.
func TestCheckLiveSlots(t *testing.T) {
	req := events.ClaimRequest{ClaimID: "c1", Schedd: "schedd", Job: events.JobID{Cluster: 1}, Slot: "slot1@startd1", Owner: "alice", JobAd: "[ ClusterId = 1; ProcId = 0 ]"}
	accepted := events.New(events.ClaimAccepted, startd.ClaimAcceptedPayload{Req: req, MemoryMiB: 16}).ForJob("schedd", req.Job)
	running := events.New(events.VMStarted, events.VMEventPayload{ClaimID: "c1", Slot: "slot1@startd1"}).ForJob("schedd", req.Job)
	var recs []record
	for i, e := range []events.Event{accepted, running} {
		e.Source, e.Seq, e.Time = "startd1", uint64(i+1), int64(i+1)*1e9
		recs = append(recs, record{idx: uint64(i + 1), e: e})
	}
	after := func(n int) map[string]string {
		st := startd.NewState("startd1", 2)
		for _, r := range recs[:n] {
			startd.Apply(st, r.e)
		}
		return replayedSlots(st)
	}
	rf := &replayFlags{slots: 2}
	res := checkResult{ok: true}
	checkLiveSlots(&res, logTarget{source: "startd1"}, recs, after(2), "nats://x", rf)
	if !res.ok || !strings.Contains(strings.Join(res.notes, "\n"), "the replayed slots (2) equal the machine ads") {
		t.Fatalf("equal slots reported as %v %q", res.ok, res.notes)
	}
	if live := after(2); !strings.Contains(live["slot1@startd1"], "claim c1") || !strings.Contains(live["slot2@startd1"], "State Unclaimed") {
		t.Fatalf("replayed slots %v", live)
	}

	lagging := after(1) // as if the startd had not advertised its VM running
	lagging["slot3@startd1"] = lagging["slot2@startd1"]
	res = checkResult{ok: true}
	checkLiveSlots(&res, logTarget{source: "startd1"}, recs, lagging, "nats://x", rf)
	notes := strings.Join(res.notes, "\n")
	for _, want := range []string{
		"slot slot1@startd1: replayed State Claimed, Activity Busy",
		"the live ad equals the log up to record 1, first divergent record: 2 (startd1:2 VMStarted",
		"slot slot3@startd1 is in the collector but not in the log",
		"2 of 3 slots differ from the collector's ads",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if res.ok {
		t.Error("differences reported as ok")
	}
}

// TestReplaySimStartds: the simulated startds' logs share one Pebble
// (<home>/sim-startds/log). vmpool replay --daemon sim1 replays sim1's log
// as a startd's, and --check checks each sim startd's log. They used to
// be taken for one schedd's log named sim-startds, empty: "sim-startds ok
// schedd log ...: 0 records", and --daemon sim1 found no log at all.
func TestReplaySimStartds(t *testing.T) {
	tp := newTestPool(t, 0, "SIM_STARTDS=2").serving()
	tp.mustRun("submit", tp.write("sim.sub", `universe = vm
executable = sim
log = sim.log
vm_type = sim
vm_memory = 16
vm_disk = /dev/null:hda:w:raw
+SimRunSeconds = 0
queue 2
`))
	tp.jobEvent(1, 0, events.JobCompleted, 60*time.Second)
	tp.jobEvent(1, 1, events.JobCompleted, 60*time.Second)
	tp.stop()

	out := tp.mustRunOffline("replay", "--home", tp.home, "--daemon", "sim1")
	if !strings.Contains(out, "-- Startd sim1 replayed from ") || !strings.Contains(out, "slot1@sim1") {
		t.Errorf("replay --daemon sim1:\n%s", out)
	}
	out = tp.mustRunOffline("replay", "--home", tp.home, "--check")
	for _, want := range []string{"sim1         ok      startd log ", "sim2         ok      startd log "} {
		if !strings.Contains(out, want) {
			t.Errorf("replay --check does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\nsim-startds ") || strings.HasPrefix(out, "sim-startds ") {
		t.Errorf("replay --check takes the sim startds' store for a daemon:\n%s", out)
	}
}

// TestReplayNamesWhatIsWrongWithALog: a directory where a daemon's log
// should be that is no Pebble log is named, with what to give instead.
func TestReplayNamesWhatIsWrongWithALog(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, "schedd", "log")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(context.Background(), "nats://127.0.0.1:1", "replay", "--home", home)
	if code != 1 || !strings.Contains(errOut, dir) || !strings.Contains(errOut, "not a daemon's event log") || !strings.Contains(errOut, "as --home") {
		t.Errorf("vmpool replay of a directory that is no log: exit %d, %q; want exit 1 naming %s, that it is no event log and what to give", code, errOut, dir)
	}
	// --check cannot compare what it cannot read: an error, not a
	// difference.
	out, errOut, code := runCLI(context.Background(), "nats://127.0.0.1:1", "replay", "--home", home, "--check")
	if code != 1 || !strings.HasPrefix(out, "schedd       ERROR   open "+dir) || !strings.Contains(out, "as --home") {
		t.Errorf("vmpool replay --check of a directory that is no log: exit %d, %q %q; want exit 1 and schedd ERROR naming %s", code, out, errOut, dir)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "notes.txt" && e.Name() != "LOCK" { // Pebble locks even a read-only open
			t.Errorf("vmpool replay wrote %s into %s", e.Name(), dir)
		}
	}
}

// TestReplayOfALiveSimStartdSaysInUseOnce: the sim startds share one
// store; replaying one of them while it is held says once that a copy is
// read, not once for finding the log and again for reading it.
func TestReplayOfALiveSimStartdSaysInUseOnce(t *testing.T) {
	home := t.TempDir()
	st, err := events.OpenStore(filepath.Join(home, simStore, "log"), events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := st.Log("sim1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append([]events.Event{events.New(events.SlotState, map[string]string{"slot": "slot1@sim1"}).ForMachine("slot1@sim1")}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(context.Background(), "nats://127.0.0.1:1", "replay", "--home", home, "--daemon", "sim1")
	if code != 0 || !strings.Contains(out, "-- Startd sim1 replayed from ") {
		t.Fatalf("vmpool replay --daemon sim1 of a held store: exit %d\n%s%s", code, out, errOut)
	}
	if n := strings.Count(errOut, "reading a copy taken now"); n != 1 {
		t.Errorf("vmpool replay said %d times that it reads a copy:\n%s", n, errOut)
	}
}

// tmpWatch is a stdout that notes, at its first write, what a directory
// holds: a replay piped into head is killed (SIGPIPE) at a write to the
// closed pipe, so whatever it has not removed by then stays.
type tmpWatch struct {
	dir   string
	seen  []string
	wrote bool
	out   bytes.Buffer
}

func (w *tmpWatch) Write(p []byte) (int, error) {
	if !w.wrote {
		w.wrote = true
		ents, _ := os.ReadDir(w.dir)
		for _, e := range ents {
			w.seen = append(w.seen, e.Name())
		}
	}
	return w.out.Write(p)
}

// TestReplayOfALiveLogRemovesItsCopyBeforePrinting: replay of a running
// daemon's log reads a copy in the temporary directory; the copy is gone
// before the first line is printed, so that `vmpool replay ... | head`
// (killed by SIGPIPE at its next write) leaves nothing behind. Before, a
// copy of the schedd's log (10 MB with 10,000 jobs) stayed in /tmp for
// each such run.
func TestReplayOfALiveLogRemovesItsCopyBeforePrinting(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	home := t.TempDir()
	l, err := events.OpenLog(filepath.Join(home, "schedd", "log"), "schedd", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() // held, as by the running schedd
	sub := events.New(events.ClusterSubmitted, map[string]any{"owner": "alice", "num_procs": 1,
		"attrs": []map[string]string{{"n": "Cmd", "e": `"vm"`}}}).ForCluster("schedd", 1)
	if _, err := l.Append([]events.Event{sub}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{}, {"--job", "1.0"}, {"-json"}} {
		w := &tmpWatch{dir: tmp}
		var errb bytes.Buffer
		c := &cli{stdout: w, stderr: &errb, stdin: strings.NewReader(""), getenv: testEnv("nats://127.0.0.1:1")}
		code := c.main(context.Background(), append([]string{"vmpool", "replay", "--home", home}, args...))
		if code != 0 || !strings.Contains(errb.String(), "reading a copy taken now") {
			t.Fatalf("vmpool replay %v of a held log: exit %d\n%s%s", args, code, w.out.String(), errb.String())
		}
		if len(w.seen) > 0 {
			t.Errorf("vmpool replay %v printed while its copy %v was still in %s", args, w.seen, tmp)
		}
	}
}
