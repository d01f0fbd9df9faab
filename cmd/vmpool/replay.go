package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/negotiator"
	"github.com/vmpool/vmpool/schedd"
	"github.com/vmpool/vmpool/startd"
)

// replay rebuilds a daemon's state from its Pebble log alone, through the
// Apply the daemon itself runs (schedd.Replay, negotiator.Replay,
// startd.Replay), with the pool stopped: the logs are opened read-only.
// While a daemon runs, its log is locked; replay then reads a copy of the
// log taken at that moment.
//
//	vmpool replay --home DIR [--daemon schedd|negotiator|startd-NAME|NAME] [--until SEQ|TIME] [-json] [--job C.P]
//	vmpool replay --home DIR --check [-pool URL]
func (c *cli) replay(ctx context.Context, args []string) int {
	const cmd = "replay"
	var rf replayFlags
	if code := c.parseReplayFlags(cmd, args, &rf); code >= 0 {
		return code
	}
	if rf.home == "" {
		return c.usageErr(cmd, "--home DIR is required: the pool's home (vmpool up --home), where each daemon keeps its log")
	}
	cfg := NewConfig()
	for _, s := range rf.sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return c.usageErr(cmd, "--set %q: write KNOB=VALUE", s)
		}
		cfg.Set(strings.TrimSpace(k), strings.TrimSpace(v), "--set")
	}
	var errs []string
	rf.matchTimeout = cfg.Seconds("MATCH_TIMEOUT", &errs)
	if len(errs) > 0 {
		return c.usageErr(cmd, "%s", strings.Join(errs, "; "))
	}
	if rf.check {
		if rf.until != "" || rf.job != "" || rf.json {
			return c.usageErr(cmd, "--check replays whole logs: drop --until, --job and -json")
		}
		return c.replayCheck(ctx, &rf, cfg)
	}
	target, err := c.resolveLog(rf.home, rf.daemon, cfg)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	lg, err := c.openLogReadOnly(target)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	defer lg.close()
	recs, err := readLog(lg.log)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	role := detectRole(recs, target)
	loc := c.location()
	cut := len(recs)
	// asOf is the moment the replayed state stands for: the end of the
	// log, --until's time, or now when the log is a running daemon's.
	var asOf int64
	asOfWhat := "at the end of the log"
	if len(recs) > 0 {
		asOf = recs[len(recs)-1].e.Time
	}
	if lg.copy != "" {
		asOf, asOfWhat = time.Now().UnixNano(), "now"
	}
	if rf.until != "" {
		seq, at, err := parseSince(rf.until, time.Now(), loc)
		if err != nil {
			return c.usageErr(cmd, "--until: %v", err)
		}
		cut = cutAt(recs, target.source, seq, at)
		if code := c.checkUntil(rf.until, target, recs, cut, seq, at, loc); code >= 0 {
			return code
		}
		if !at.IsZero() && cut < len(recs) {
			asOf, asOfWhat = at.UnixNano(), "at --until"
		} else if cut < len(recs) {
			asOf, asOfWhat = recs[cut-1].e.Time, "at --until"
		}
	}
	shown := recs[:cut]
	w := c.stdout
	switch role {
	case events.RoleSchedd:
		q := schedd.NewQueue(target.source)
		if cut > 0 {
			if q, err = schedd.Replay(lg.log, target.source, recs[cut-1].idx); err != nil {
				return c.errorf(cmd, "replay %s: %v", target.dir, err)
			}
		}
		lg.close() // before any output: a reader that goes away (| head) ends the process
		if rf.job != "" {
			id, ok := events.ParseJobID(rf.job)
			if !ok {
				return c.usageErr(cmd, "--job %q: want CLUSTER.PROC", rf.job)
			}
			if code := c.checkJobInLog(target, id, recs, cut, rf.until, loc); code >= 0 {
				return code
			}
			return c.printTimeline(w, target, q, id, shown, asOf, asOfWhat, loc)
		}
		if rf.json {
			printJSON(w, replayedAds(q))
			return 0
		}
		printReplayedQueue(w, target, q, shown, loc)
	case events.RoleNegotiator:
		if rf.job != "" {
			return c.usageErr(cmd, "--job works on a schedd's log")
		}
		st := negotiator.NewState(target.source, rf.matchTimeout.Nanoseconds())
		if cut > 0 {
			if st, err = negotiator.Replay(lg.log, target.source, rf.matchTimeout, recs[cut-1].idx); err != nil {
				return c.errorf(cmd, "replay %s: %v", target.dir, err)
			}
		}
		lg.close()
		d := dumpNegotiator(st, loc)
		if rf.json {
			printIndented(w, d)
			return 0
		}
		printReplayHeader(w, "Negotiator", target, shown, loc)
		d.print(w)
	default:
		if rf.job != "" {
			return c.usageErr(cmd, "--job works on a schedd's log")
		}
		slots := max(rf.slots, inferSlots(recs, target.source))
		st := startd.NewState(target.source, slots)
		if cut > 0 {
			if st, err = startd.Replay(lg.log, target.source, slots, recs[cut-1].idx); err != nil {
				return c.errorf(cmd, "replay %s: %v", target.dir, err)
			}
		}
		lg.close()
		d := dumpStartd(st, loc)
		if rf.json {
			printIndented(w, d)
			return 0
		}
		printReplayHeader(w, "Startd", target, shown, loc)
		d.print(w)
	}
	return 0
}

// replayFlags are replay's options.
type replayFlags struct {
	home, daemon, until, job, pool, name string
	json, check                          bool
	slots                                int
	sets                                 []string
	matchTimeout                         time.Duration
}

func (c *cli) parseReplayFlags(cmd string, args []string, rf *replayFlags) int {
	a := &argList{args: args, cmd: cmd}
	for {
		arg, ok := a.next()
		if !ok {
			break
		}
		name, val, has, isOpt := opt(arg)
		if !isOpt {
			return c.usageErr(cmd, "unexpected argument %q (try --help)", arg)
		}
		switch name {
		case "home", "local-dir":
			rf.home = a.value(name, val, has)
		case "daemon":
			rf.daemon = a.value(name, val, has)
		case "name":
			rf.name = a.value(name, val, has)
		case "until":
			rf.until = a.value(name, val, has)
		case "job":
			rf.job = a.value(name, val, has)
		case "json":
			rf.json = true
		case "check":
			rf.check = true
		case "pool":
			rf.pool = a.value(name, val, has)
		case "slots":
			v := a.value(name, val, has)
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return c.usageErr(cmd, "--slots %q: want the startd's NUM_SLOTS", v)
			}
			rf.slots = n
		case "set":
			rf.sets = append(rf.sets, a.value(name, val, has))
		case "h", "help":
			fmt.Fprintln(c.stdout, `usage: vmpool replay --home DIR [--daemon schedd|negotiator|startd-NAME] [--until SEQ|TIME] [-json] [--job C.P]
       vmpool replay --home DIR --check [-pool URL]

Rebuilds a daemon's state from its event log alone, through the daemon's
own Apply, and prints it. Run it with the pool stopped; while a daemon
runs, a copy of its log taken now is read.
  --daemon NAME   schedd (default), negotiator, or a startd (startd1 or startd-startd1,
                  or a simulated one, sim1)
  --until SEQ     the state just after the daemon's own event SEQ
  --until TIME    the state as of TIME (2006-01-02 15:04:05, RFC 3339, or 10m ago)
  -json           schedd: every job it has known (queue, then history, newest
                  first) as vmpool q -json / vmpool history -json print them
  --job C.P       the job's life: each event, the phase it led to, time in each
  --check         replay every log from its first event twice (as read, and
                  through the codec) and compare; with -pool URL also compare
                  the schedd's replayed queue and history with the live pool's,
                  and each startd's replayed slots with its machine ads
  --slots N       a startd's NUM_SLOTS (default: as many as its log names)
  --set KNOB=V    e.g. MATCH_TIMEOUT for the negotiator`)
			return 0
		default:
			return c.usageErr(cmd, "unknown option %s (try --help)", arg)
		}
		if a.err != nil {
			return c.usageErr(cmd, "%v", a.err)
		}
	}
	if rf.name != "" && rf.daemon == "" {
		rf.daemon = rf.name
	}
	return -1
}

// logTarget is a daemon's log on disk.
type logTarget struct {
	dir    string // the Pebble directory
	source string // the daemon's name: the source of its own events
	role   string // from the name; detectRole confirms it from the events
	store  bool   // dir is the store the sim startds' logs share
}

// simStore is the directory under a pool's home whose log is the store
// of its simulated startds' logs (SIM_STARTDS), one Pebble for them all.
const simStore = "sim-startds"

// resolveLog finds a daemon's log under home: the schedd's is
// <home>/<SCHEDD_NAME>/log, the negotiator's <home>/<NEGOTIATOR_NAME>/log
// and a startd's <home>/<STARTD_NAME>/log.
func (c *cli) resolveLog(home, daemon string, cfg *Config) (logTarget, error) {
	role, name := events.RoleSchedd, cfg.Get("SCHEDD_NAME")
	switch {
	case daemon == "" || daemon == "schedd":
	case daemon == "negotiator":
		role, name = events.RoleNegotiator, cfg.Get("NEGOTIATOR_NAME")
	case strings.HasPrefix(daemon, "startd-") && !dirExists(filepath.Join(home, daemon, "log")):
		role, name = events.RoleStartd, strings.TrimPrefix(daemon, "startd-")
	default:
		role, name = "", daemon
	}
	if err := events.CheckName("daemon", name); err != nil {
		return logTarget{}, err
	}
	dir := filepath.Join(home, name, "log")
	if !dirExists(dir) || name == simStore {
		var found []string
		for _, t := range c.findLogs(home) {
			if t.source == name && t.store {
				return t, nil
			}
			found = append(found, t.source)
		}
		if len(found) == 0 {
			return logTarget{}, fmt.Errorf("no event log at %s, and no daemon logs under %s (is it the pool's --home?)", dir, home)
		}
		what := "no event log at " + dir
		if name == simStore {
			what = dir + " holds the simulated startds' logs, each its own"
		}
		return logTarget{}, fmt.Errorf("%s; the logs under %s are: %s (choose one with --daemon)", what, home, strings.Join(found, ", "))
	}
	return logTarget{dir: dir, source: name, role: role}, nil
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// findLogs lists the daemon logs under home, by name: the sim startds'
// (in their shared store) after the others.
func (c *cli) findLogs(home string) []logTarget {
	ents, err := os.ReadDir(home)
	if err != nil {
		return nil
	}
	var out, sims []logTarget
	for _, e := range ents {
		dir := filepath.Join(home, e.Name(), "log")
		if !e.IsDir() || events.CheckName("daemon", e.Name()) != nil || !dirExists(dir) {
			continue
		}
		if e.Name() != simStore {
			out = append(out, logTarget{dir: dir, source: e.Name()})
			continue
		}
		var names []string
		// Quietly: only listing names; the log read later says it.
		copyDir, err := c.readOnlyQuiet(dir, true, func(dir string) error {
			st, err := events.OpenStore(dir, events.LogOptions{ReadOnly: true})
			if err != nil {
				return err
			}
			defer st.Close()
			names, err = st.Sources()
			return err
		})
		if err != nil {
			fmt.Fprintf(c.stderr, "vmpool replay: the sim startds' logs: %v\n", err)
			continue
		}
		os.RemoveAll(copyDir)
		for _, n := range names {
			sims = append(sims, logTarget{dir: dir, source: n, role: events.RoleStartd, store: true})
		}
	}
	return append(out, sims...)
}

// record is one record of a log with its index.
type record struct {
	idx uint64
	e   events.Event
}

func readLog(l *events.Log) ([]record, error) {
	var recs []record
	err := l.Scan(1, func(idx uint64, e events.Event) error {
		recs = append(recs, record{idx, e})
		return nil
	})
	return recs, err
}

// detectRole tells what daemon wrote a log from the types of its own
// events (names can be anything), falling back to the name. Types it does
// not know (added later) decide nothing.
func detectRole(recs []record, t logTarget) string {
	for _, r := range recs {
		if r.e.Source != t.source {
			continue
		}
		typ := r.e.Type
		switch {
		case typ == events.Matched:
			return events.RoleNegotiator
		case typ == events.ClaimAccepted || typ == events.SlotState || typ == startd.StopRequested || strings.HasPrefix(typ, "VM"):
			return events.RoleStartd
		case strings.HasPrefix(typ, "Job") || strings.HasPrefix(typ, "Cluster") || typ == events.MatchRejected ||
			typ == events.ClaimFailed || typ == events.ClaimReleased:
			return events.RoleSchedd
		}
	}
	switch {
	case t.role != "":
		return t.role
	case strings.HasPrefix(t.source, "negotiator"):
		return events.RoleNegotiator
	case strings.HasPrefix(t.source, "startd"):
		return events.RoleStartd
	}
	return events.RoleSchedd
}

// cutAt is how many records make the state as of the daemon's own event
// seq (inclusive), or as of time at.
func cutAt(recs []record, source string, seq uint64, at time.Time) int {
	for i, r := range recs {
		if !at.IsZero() {
			if r.e.Time > at.UnixNano() {
				return i
			}
			continue
		}
		if r.e.Source == source && r.e.Seq >= seq {
			if r.e.Seq == seq {
				return i + 1
			}
			return i
		}
	}
	return len(recs)
}

var slotNumber = regexp.MustCompile(`"slot(\d+)@`)

// inferSlots is how many slots a startd's log names (its NUM_SLOTS is
// not in the log).
func inferSlots(recs []record, source string) int {
	n := 1
	for _, r := range recs {
		for _, m := range slotNumber.FindAllSubmatch(r.e.Payload, -1) {
			if k, err := strconv.Atoi(string(m[1])); err == nil && k < 100000 {
				n = max(n, k)
			}
		}
	}
	return n
}

// openedLog is a log opened read-only, possibly from a copy.
type openedLog struct {
	log   *events.Log
	store *events.Store // the store the log is in (sim startds), closed after it
	copy  string        // the temporary copy's directory, removed on close
}

// close closes the log and removes its copy; closing again does nothing.
func (o *openedLog) close() {
	if o.log == nil {
		return
	}
	o.log.Close()
	o.log = nil
	if o.store != nil {
		o.store.Close()
	}
	if o.copy != "" {
		os.RemoveAll(o.copy)
	}
}

// openLogReadOnly opens t's log read-only, or a copy of it (readOnly).
func (c *cli) openLogReadOnly(t logTarget) (*openedLog, error) {
	var o *openedLog
	copyDir, err := c.readOnly(t.dir, func(dir string) error {
		if !t.store {
			l, err := events.OpenLog(dir, t.source, events.LogOptions{ReadOnly: true})
			if err != nil {
				return err
			}
			o = &openedLog{log: l}
			return nil
		}
		st, err := events.OpenStore(dir, events.LogOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		l, err := st.Log(t.source)
		if err != nil {
			st.Close()
			return err
		}
		o = &openedLog{log: l, store: st}
		return nil
	})
	if err != nil {
		return nil, err
	}
	o.copy = copyDir
	return o, nil
}

// readOnly runs open on the Pebble directory dir. A running daemon holds
// its log's lock; then open runs on a copy of dir taken now (the immutable
// tables hard-linked, the rest copied), whose directory it returns for
// the caller to remove, and stderr says so.
func (c *cli) readOnly(dir string, open func(dir string) error) (string, error) {
	return c.readOnlyQuiet(dir, false, open)
}

// readOnlyQuiet is readOnly, saying nothing of a copy when quiet.
func (c *cli) readOnlyQuiet(dir string, quiet bool, open func(dir string) error) (string, error) {
	first := open(dir)
	if first == nil {
		return "", nil
	}
	for attempt := 0; attempt < 3; attempt++ {
		tmp, cerr := snapshotDir(dir)
		if cerr != nil {
			continue
		}
		if err := open(tmp); err != nil {
			os.RemoveAll(tmp)
			continue
		}
		if quiet {
			return tmp, nil
		}
		if errors.Is(first, syscall.EWOULDBLOCK) {
			fmt.Fprintf(c.stderr, "vmpool replay: %s is in use by its running daemon; reading a copy taken now\n", dir)
		} else {
			fmt.Fprintf(c.stderr, "vmpool replay: %s is in use (%v); reading a copy taken now\n", dir, first)
		}
		return tmp, nil
	}
	return "", fmt.Errorf("open %s read-only: %w%s", dir, first, logOpenHint(first))
}

// logOpenHint says what to do about a log that will not open.
func logOpenHint(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "database does not exist"):
		return "; it is not a daemon's event log: give the pool's home (vmpool up --home DIR, or the daemon's --home) as --home"
	case strings.Contains(msg, "checksum mismatch") || strings.Contains(msg, "corrupt"):
		return "; the log is damaged: restore the daemon's home from a backup, or remove it and let the daemon start empty (docs/reliability.md)"
	}
	return ""
}

// snapshotDir copies a Pebble directory that a running daemon may be
// writing: sstables are immutable and hard-linked (copied across
// devices), the manifest, options and write-ahead logs are copied.
func snapshotDir(dir string) (string, error) {
	tmp, err := os.MkdirTemp("", "vmpool-replay-")
	if err != nil {
		return "", fmt.Errorf("copy %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("copy %s: %w", dir, err)
	}
	// Tables first: a manifest copied after them names only tables that
	// existed before it, which were linked unless a compaction raced us
	// (then the open fails and the caller tries again).
	sort.SliceStable(ents, func(i, j int) bool {
		return strings.HasSuffix(ents[i].Name(), ".sst") && !strings.HasSuffix(ents[j].Name(), ".sst")
	})
	for _, e := range ents {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		src, dst := filepath.Join(dir, e.Name()), filepath.Join(tmp, e.Name())
		if strings.HasSuffix(e.Name(), ".sst") && os.Link(src, dst) == nil {
			continue
		}
		if err := copyFile(src, dst); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("copy %s: %w", dir, err)
		}
	}
	return tmp, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// replayedAds are the job ads of every job a replayed queue has known:
// the queue in id order, then the history most recent first, each as the
// schedd's query verb sends it and the client decodes it, so that the
// output can be diffed with vmpool q -json and vmpool history -json.
func replayedAds(q *schedd.Queue) []*classad.Ad {
	jobs := q.Sorted()
	for i := len(q.History) - 1; i >= 0; i-- {
		jobs = append(jobs, q.History[i])
	}
	raws := make([]json.RawMessage, 0, len(jobs))
	for _, j := range jobs {
		b, err := json.Marshal(j.Ad(q.Name).Flatten())
		if err != nil {
			continue
		}
		raws = append(raws, b)
	}
	return decodeAds(raws)
}

func printReplayHeader(w io.Writer, what string, t logTarget, shown []record, loc *time.Location) {
	own := 0
	for _, r := range shown {
		if r.e.Source == t.source {
			own++
		}
	}
	at := "no events"
	if n := len(shown); n > 0 {
		last := shown[n-1].e
		at = fmt.Sprintf("up to record %d (%s:%d, %s)", shown[n-1].idx, last.Source, last.Seq, fmtEventTime(last.Time, loc))
	}
	fmt.Fprintf(w, "-- %s %s replayed from %s: %d records (%d own events), %s\n", what, t.source, t.dir, len(shown), own, at)
}

// printReplayedQueue prints a replayed schedd queue as condor_q -nobatch
// would have at the last event replayed, then its history.
func printReplayedQueue(w io.Writer, t logTarget, q *schedd.Queue, shown []record, loc *time.Location) {
	printReplayHeader(w, "Schedd", t, shown, loc)
	var now int64
	if n := len(shown); n > 0 {
		now = shown[n-1].e.Time / 1e9
	}
	var tot schedd.Totals
	fmt.Fprintln(w, " ID      OWNER            SUBMITTED     RUN_TIME ST PRI SIZE CMD")
	for _, j := range q.Sorted() {
		ad := j.Ad(q.Name)
		tot.Add(j.Status)
		fmt.Fprintf(w, "%6s   %-14s %11s %12s %-2s %-3d %4.1f %s\n", jobID(ad), strAttr(ad, "Owner"),
			fmtDateIn(intAttr(ad, "QDate"), loc), fmtDuration(runTime(ad, now)), stLetter(ad), intAttr(ad, "JobPrio"),
			float64(intAttr(ad, "JobVMMemory")), strAttr(ad, "Cmd"))
	}
	fmt.Fprintf(w, "\nTotal for query: %s\n", totalsLine(tot))
	if len(q.History) == 0 {
		return
	}
	fmt.Fprintf(w, "\n-- History (%d jobs that left the queue, most recent first):\n", len(q.History))
	fmt.Fprintln(w, " ID     OWNER          SUBMITTED   RUN_TIME     ST  COMPLETED   CMD")
	for i := len(q.History) - 1; i >= 0; i-- {
		ad := q.History[i].Ad(q.Name)
		completed := intAttr(ad, "CompletionDate")
		if completed == 0 {
			completed = intAttr(ad, "EnteredCurrentStatus")
		}
		fmt.Fprintf(w, "%6s  %-14s %11s %12s %-2s %11s %s\n", jobID(ad), strAttr(ad, "Owner"), fmtDateIn(intAttr(ad, "QDate"), loc),
			fmtDuration(intAttr(ad, "RemoteWallClockTime")), stLetter(ad), fmtDateIn(completed, loc), strAttr(ad, "Cmd"))
	}
}

// checkUntil says when --until leaves nothing to show (it is before the
// log's first record: an error) or everything (after its last: a note,
// for the user may have meant another day or sequence number). It
// returns the exit code when replay must stop, else -1.
func (c *cli) checkUntil(until string, t logTarget, recs []record, cut int, seq uint64, at time.Time, loc *time.Location) int {
	if len(recs) == 0 {
		return -1
	}
	first, last := recs[0].e, recs[len(recs)-1].e
	if cut == 0 {
		return c.errorf("replay", "--until %s is before the first record of %s's log %s (%s:%d, %s): there is nothing to replay; give a later time or sequence number",
			until, t.source, t.dir, first.Source, first.Seq, fmtEventTime(first.Time, loc))
	}
	if cut < len(recs) {
		return -1
	}
	lastOwn := uint64(0)
	for _, r := range recs {
		if r.e.Source == t.source {
			lastOwn = r.e.Seq
		}
	}
	switch {
	case !at.IsZero() && at.UnixNano() > last.Time:
		fmt.Fprintf(c.stderr, "vmpool replay: note: --until %s (%s) is after the last record of %s's log (%s): showing the whole log\n",
			until, at.In(loc).Format("2006-01-02 15:04:05"), t.source, fmtEventTime(last.Time, loc))
	case at.IsZero() && seq > lastOwn:
		fmt.Fprintf(c.stderr, "vmpool replay: note: --until %d is past %s's last event, %s:%d (%s): showing the whole log\n",
			seq, t.source, t.source, lastOwn, fmtEventTime(last.Time, loc))
	}
	return -1
}

// checkJobInLog explains a --job the timeline would find no event of:
// submitted after --until, or not in this schedd's log at all.
func (c *cli) checkJobInLog(t logTarget, id events.JobID, recs []record, cut int, until string, loc *time.Location) int {
	evs := make([]events.Event, len(recs))
	for i, r := range recs {
		evs[i] = r.e
	}
	steps := schedd.Timeline(t.source, id, evs)
	switch {
	case len(steps) == 0:
		var clusters []int
		for _, e := range evs {
			if e.Source == t.source && e.Type == events.ClusterSubmitted {
				clusters = append(clusters, e.Cluster)
			}
		}
		known := "it holds no submit"
		if n := len(clusters); n > 0 {
			known = fmt.Sprintf("its clusters are %d to %d", clusters[0], clusters[n-1])
		}
		return c.errorf("replay", "job %s is not in the log of %s (%s; %s); check the id with vmpool q or vmpool history, or name another schedd with --daemon NAME",
			id, t.source, t.dir, known)
	case len(schedd.Timeline(t.source, id, evs[:cut])) == 0:
		return c.errorf("replay", "job %s was submitted at %s (%s:%d), after --until %s: give a later --until to see it",
			id, fmtEventTime(steps[0].Event.Time, loc), steps[0].Event.Source, steps[0].Event.Seq, until)
	}
	return -1
}

// printTimeline prints a job's life from the schedd's log, as of asOf
// (the "so far" of a phase the job is still in).
func (c *cli) printTimeline(w io.Writer, t logTarget, q *schedd.Queue, id events.JobID, shown []record, asOf int64, asOfWhat string, loc *time.Location) int {
	evs := make([]events.Event, len(shown))
	for i, r := range shown {
		evs[i] = r.e
	}
	steps := schedd.Timeline(t.source, id, evs)
	if len(steps) == 0 {
		return c.errorf("replay", "job %s is not in the log of %s (%s)", id, t.source, t.dir)
	}
	var j *schedd.Job
	if j = q.Jobs[id]; j == nil {
		for _, h := range q.History {
			if h.ID == id {
				j = h
			}
		}
	}
	if j != nil {
		ad := j.Ad(q.Name)
		fmt.Fprintf(w, "Job %s of schedd %s: owner %s, Cmd %q, %s\n\n", id, t.source, j.Owner(), strAttr(ad, "Cmd"), schedd.Phase(j))
	}
	fmt.Fprintf(w, "%-23s %5s  %-52s %-20s %s\n", "TIME", "SEQ", "EVENT", "PHASE", "TIME IN PREVIOUS PHASE")
	type spent struct {
		phase string
		d     time.Duration
	}
	var totals []spent
	addSpent := func(phase string, d time.Duration) {
		for i := range totals {
			if totals[i].phase == phase {
				totals[i].d += d
				return
			}
		}
		totals = append(totals, spent{phase, d})
	}
	for i, s := range steps {
		prev := ""
		if i > 0 {
			d := time.Duration(s.Event.Time - steps[i-1].Event.Time)
			addSpent(steps[i-1].Phase, d)
			prev = fmt.Sprintf("%s %s", steps[i-1].Phase, fmtSpan(d))
		}
		fmt.Fprintf(w, "%-23s %5d  %-52s %-20s %s\n", fmtEventTime(s.Event.Time, loc), s.Event.Seq, s.What, s.Phase, prev)
	}
	last := steps[len(steps)-1]
	end := max(asOf, shown[len(shown)-1].e.Time)
	if last.Phase != "completed" && last.Phase != "removed" {
		if d := time.Duration(end - last.Event.Time); d > 0 {
			addSpent(last.Phase+" (so far)", d)
		}
	}
	var parts []string
	for _, s := range totals {
		parts = append(parts, s.phase+" "+fmtSpan(s.d))
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "\nTime in each phase: %s\n", strings.Join(parts, ", "))
	}
	if last.Phase == "completed" || last.Phase == "removed" {
		fmt.Fprintf(w, "From submit to %s: %s\n", last.Phase, fmtSpan(time.Duration(last.Event.Time-steps[0].Event.Time)))
	} else {
		fmt.Fprintf(w, "Still %s %s (%s), %s after submit\n", last.Phase, asOfWhat, fmtEventTime(end, loc), fmtSpan(time.Duration(end-steps[0].Event.Time)))
	}
	return 0
}

// fmtSpan prints a duration the way people read them: 1.5s, 2m3s, 1h2m.
func fmtSpan(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func printIndented(w io.Writer, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintf(w, "encode: %v\n", err)
		return
	}
	fmt.Fprintf(w, "%s\n", b)
}

// negotiatorDump is a replayed negotiator's state in a stable form.
type negotiatorDump struct {
	Name    string             `json:"name"`
	Applied uint64             `json:"applied"`
	Made    int64              `json:"matches_made"`
	Latest  string             `json:"latest_event_time,omitempty"`
	Jobs    []negotiatorJob    `json:"jobs"`
	Matches []negotiatorMatchD `json:"unsettled_matches"`
}

type negotiatorJob struct {
	Schedd   string `json:"schedd"`
	Job      string `json:"job"`
	Owner    string `json:"owner"`
	Status   int    `json:"status"`
	HasClaim bool   `json:"has_claim"`
}

type negotiatorMatchD struct {
	ID    string `json:"id"`
	Job   string `json:"job"`
	Slot  string `json:"slot"`
	At    string `json:"at"`
	Taken bool   `json:"taken"`
}

func dumpNegotiator(st *negotiator.State, loc *time.Location) negotiatorDump {
	d := negotiatorDump{Name: st.Name, Applied: st.Applied, Made: st.Made, Jobs: []negotiatorJob{}, Matches: []negotiatorMatchD{}}
	if st.Latest > 0 {
		d.Latest = fmtEventTime(st.Latest, loc)
	}
	for k, j := range st.Jobs {
		owner := ""
		if j.Cluster != nil {
			owner = j.Cluster.Owner
		}
		d.Jobs = append(d.Jobs, negotiatorJob{Schedd: k.Schedd, Job: k.ID.String(), Owner: owner, Status: j.Status, HasClaim: j.HasClaim})
	}
	sort.Slice(d.Jobs, func(a, b int) bool {
		x, y := d.Jobs[a], d.Jobs[b]
		if x.Schedd != y.Schedd {
			return x.Schedd < y.Schedd
		}
		return lessJobID(x.Job, y.Job)
	})
	for _, m := range st.Matches {
		d.Matches = append(d.Matches, negotiatorMatchD{ID: m.ID, Job: m.Job.Schedd + "/" + m.Job.ID.String(), Slot: m.Slot, At: fmtEventTime(m.At, loc), Taken: m.Taken})
	}
	sort.Slice(d.Matches, func(a, b int) bool { return d.Matches[a].ID < d.Matches[b].ID })
	return d
}

func lessJobID(a, b string) bool {
	x, _ := events.ParseJobID(a)
	y, _ := events.ParseJobID(b)
	if x.Cluster != y.Cluster {
		return x.Cluster < y.Cluster
	}
	return x.Proc < y.Proc
}

func (d negotiatorDump) print(w io.Writer) {
	fmt.Fprintf(w, "Matches made since the log began: %d\n\n", d.Made)
	fmt.Fprintf(w, "Jobs it may match (%d):\n", len(d.Jobs))
	fmt.Fprintf(w, "  %-12s %-8s %-12s %-2s %s\n", "SCHEDD", "ID", "OWNER", "ST", "CLAIM")
	for _, j := range d.Jobs {
		claim := "-"
		if j.HasClaim {
			claim = "yes"
		}
		fmt.Fprintf(w, "  %-12s %-8s %-12s %-2s %s\n", j.Schedd, j.Job, j.Owner, schedd.StatusLetter(j.Status), claim)
	}
	fmt.Fprintf(w, "\nUnsettled matches (%d):\n", len(d.Matches))
	fmt.Fprintf(w, "  %-18s %-16s %-20s %-23s %s\n", "MATCH", "JOB", "SLOT", "MADE", "TAKEN")
	for _, m := range d.Matches {
		fmt.Fprintf(w, "  %-18s %-16s %-20s %-23s %v\n", m.ID, m.Job, m.Slot, m.At, m.Taken)
	}
}

// startdDump is a replayed startd's state in a stable form.
type startdDump struct {
	Name     string       `json:"name"`
	Applied  uint64       `json:"applied"`
	Accepted int64        `json:"claims_accepted"`
	Slots    []startdSlot `json:"slots"`
	Claims   []startdClm  `json:"claims"`
}

type startdSlot struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Activity string `json:"activity"`
	Since    string `json:"since"`
	Claim    string `json:"claim,omitempty"`
}

type startdClm struct {
	ID        string `json:"id"`
	Job       string `json:"job"`
	Slot      string `json:"slot"`
	MemoryMiB int    `json:"memory_mib"`
	Started   bool   `json:"started"`
	StopMode  string `json:"stop_mode,omitempty"`
}

func dumpStartd(st *startd.State, loc *time.Location) startdDump {
	d := startdDump{Name: st.Name, Applied: st.Applied, Accepted: st.Accepted, Slots: []startdSlot{}, Claims: []startdClm{}}
	for _, s := range st.Slots {
		since := ""
		if s.Since > 0 {
			since = time.Unix(s.Since, 0).In(loc).Format("2006-01-02 15:04:05")
		}
		d.Slots = append(d.Slots, startdSlot{Name: s.Name, State: s.State, Activity: s.Activity, Since: since, Claim: s.Claim})
	}
	for _, cl := range st.SortedClaims() {
		d.Claims = append(d.Claims, startdClm{ID: cl.Req.ClaimID, Job: cl.Req.Schedd + "/" + cl.Req.Job.String(), Slot: cl.Slot,
			MemoryMiB: cl.MemoryMiB, Started: cl.Started, StopMode: cl.StopMode})
	}
	return d
}

func (d startdDump) print(w io.Writer) {
	fmt.Fprintf(w, "Claims accepted since the log began: %d\n\n", d.Accepted)
	fmt.Fprintf(w, "%-22s %-11s %-9s %-20s %s\n", "Name", "State", "Activity", "Since", "Claim")
	for _, s := range d.Slots {
		fmt.Fprintf(w, "%-22s %-11s %-9s %-20s %s\n", s.Name, s.State, s.Activity, s.Since, s.Claim)
	}
	fmt.Fprintf(w, "\nOpen claims (%d):\n", len(d.Claims))
	fmt.Fprintf(w, "  %-18s %-16s %-20s %6s %-7s %s\n", "CLAIM", "JOB", "SLOT", "VM_MEM", "STARTED", "STOP")
	for _, cl := range d.Claims {
		fmt.Fprintf(w, "  %-18s %-16s %-20s %6d %-7v %s\n", cl.ID, cl.Job, cl.Slot, cl.MemoryMiB, cl.Started, cl.StopMode)
	}
}
