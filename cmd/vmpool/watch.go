package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/schedd"
)

// watch is condor_watch_q (and q -watch): it follows the user's jobs live
// from the pool's event stream and shows, per batch (cluster), how many
// are done, running, idle and held. With --exit-when-done it is a
// condor_wait that returns once every watched job has completed, been
// removed or been held; its exit status is 1 if any was held or removed.
//
// How the view is built. The watcher keeps its own copy of the schedd's
// queue, folded through schedd.Apply, the function the schedd itself
// uses, from the schedd's events in the stream; it never polls the
// schedd. Reading the stream from its start, rather than starting from a
// query's answer, means there is no point where a query's state and the
// stream's events overlap or leave a gap: the copy is exactly the
// schedd's queue as of the last event read. Events are taken once per
// (source, seq). The one query made is to learn which of the user's jobs
// the schedd holds right now: the watcher does not show anything until its
// copy knows all of them (their submits may still be on the way to the
// stream when the watcher starts, e.g. right after vmpool submit).
//
// Filters: a cluster or job named on the command line becomes a subject
// filter, so the server sends only those events; the owner and
// -constraint are not in the subject and are applied here. The set of
// watched jobs is fixed when the view starts (the user's jobs in the
// queue, plus any named ones), and grows with clusters submitted later that
// pass the filters.
//
// In a terminal the table is redrawn as jobs change; otherwise it prints
// one line per event about a watched job.
func (c *cli) watch(ctx context.Context, args []string) int {
	const cmd = "watch"
	var wf watchFlags
	if code := c.parseWatchFlags(cmd, args, &wf); code >= 0 {
		return code
	}
	var constraint *classad.Expr
	if wf.constraint != "" {
		var err error
		if constraint, err = classad.ParseExpr(wf.constraint); err != nil {
			return c.usageErr(cmd, "-constraint: %v", err)
		}
	}
	sel, err := parseSelection(wf.jobs)
	if err != nil {
		return c.usageErr(cmd, "%v", err)
	}
	pc, err := c.followClient(ctx, c.poolURL(wf.pool))
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	defer pc.close()
	sched, err := c.schedd(ctx, pc, wf.name)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	w := &watcher{
		sched: sched, q: schedd.NewQueue(sched), jobs: map[events.JobID]*schedd.Job{},
		constraint: constraint, sel: sel, known0: map[events.JobID]bool{},
		watched: map[events.JobID]bool{}, batches: map[int]*batch{},
		out: c.stdout, loc: c.location(), table: isTerminal(c.stdout), exitWhenDone: wf.exitWhenDone,
		url: pc.url,
	}
	switch {
	case wf.ownerGiven:
		w.owner = wf.owner
	case !wf.allUsers && len(wf.jobs) == 0 && wf.constraint == "":
		w.owner = pc.user // like condor_q: your own jobs unless asked for more
	}
	// The jobs the schedd holds now, as a snapshot of its queue: the copy
	// starts from it and applies the schedd's events after it, so jobs
	// older than the event stream's retention are shown too.
	if err := c.watchSnapshot(ctx, pc, w, schedd.QueryRequest{Owner: w.owner, Jobs: wf.jobs, Constraint: wf.constraint, Snapshot: true}); err != nil {
		fmt.Fprintf(c.stderr, "vmpool %s: the schedd did not answer (%v); following the event stream alone\n", cmd, err)
		if first, ok := firstEventOf(ctx, pc.js, sched); ok && first.Seq > 1 {
			// The stream has dropped the schedd's oldest events (MaxAge):
			// jobs submitted before them cannot be shown.
			fmt.Fprintf(c.stderr, "vmpool %s: the pool's event stream begins at schedd event %d (%s); jobs submitted before are not shown\n",
				cmd, first.Seq, fmtEventTime(first.Time, w.loc))
		}
	}
	r := &streamReader{js: pc.js, filters: sel.subjects(sched), stderr: c.stderr}
	// The transfers of the user's jobs, as the daemons report them: bars
	// under the table on a terminal, a line when each ends elsewhere.
	if sub, err := pc.nc.Subscribe(events.ProgressSubjects(pc.user, sched), func(m *nats.Msg) { w.progress(m.Data) }); err == nil {
		defer func() { _ = sub.Unsubscribe() }()
	}
	err = r.run(ctx, true, w.apply, w.caughtUp)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	if ctx.Err() != nil && wf.exitWhenDone {
		return 1 // interrupted before the jobs were done, as condor_wait on a timeout
	}
	return w.exitCode
}

// watchFlags are watch's options.
type watchFlags struct {
	pool, name, constraint string
	allUsers, exitWhenDone bool
	owner                  string
	ownerGiven             bool
	jobs                   []string
}

func (c *cli) parseWatchFlags(cmd string, args []string, wf *watchFlags) int {
	a := &argList{args: args, cmd: cmd}
	for {
		arg, ok := a.next()
		if !ok {
			break
		}
		name, val, has, isOpt := opt(arg)
		if !isOpt {
			if _, ok := events.ParseJobID(arg); ok || isNumber(arg) {
				wf.jobs = append(wf.jobs, arg)
			} else {
				wf.owner, wf.ownerGiven = arg, true
			}
			continue
		}
		switch name {
		case "pool":
			wf.pool = a.value(name, val, has)
		case "name":
			wf.name = a.value(name, val, has)
		case "constraint":
			wf.constraint = a.value(name, val, has)
		case "allusers", "all", "a":
			wf.allUsers = true
		case "exit-when-done", "exit":
			wf.exitWhenDone = true
		case "h", "help":
			fmt.Fprintf(c.stdout, `usage: vmpool %s [-pool URL] [-name SCHEDD] [-allusers] [-constraint EXPR] [--exit-when-done] [CLUSTER|CLUSTER.PROC|OWNER]...

Follows your jobs live from the pool's events (condor_watch_q), with a
progress bar per batch. In a terminal the table is redrawn as jobs change;
otherwise one line is printed per event.
  --exit-when-done  return once every watched job has completed, been removed
                    or been held (condor_wait); exit status 1 if any was held
                    or removed
`, cmd)
			return 0
		default:
			return c.usageErr(cmd, "unknown option %s (try --help)", arg)
		}
		if a.err != nil {
			return c.usageErr(cmd, "%v", a.err)
		}
	}
	return -1
}

// shownTransfer is a transfer under way, as the watcher shows it.
type shownTransfer struct {
	bar  *progressbar.ProgressBar
	seen time.Time // its last report
}

// transferLabels say what a transfer of each kind is, for its owner.
var transferLabels = map[string]string{
	events.TransferInput:      "to the VM",
	events.TransferOutput:     "back to the spool",
	events.TransferReturn:     "returned to you",
	events.TransferCheckpoint: "checkpoint to the spool",
	events.TransferResume:     "checkpoint to the VM",
}

// progress takes a daemon's report on a transfer of one of the user's
// jobs. On a terminal, a transfer of a watched job of at least
// watchProgressMinBytes gets a progress bar (the library's, with rate and time
// left) under the table; elsewhere, one line when it has ended. Small
// files show nothing.
func (w *watcher) progress(data []byte) {
	var p events.TransferProgress
	if json.Unmarshal(data, &p) != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if p.Schedd != w.sched || !w.ready || !w.watched[p.Job] || p.Total < watchProgressMinBytes {
		return
	}
	if w.transfers == nil {
		w.transfers = map[string]*shownTransfer{}
	}
	key := p.Job.String() + " " + p.Kind + " " + p.File
	label := fmt.Sprintf("%-6s %s %s", p.Job, p.File, transferLabels[p.Kind])
	if p.Final {
		delete(w.transfers, key)
		switch {
		case w.table:
			w.dirty = true
			w.draw()
		case p.Err == "":
			secs := max(float64(p.ElapsedNanos)/1e9, 0.001)
			fmt.Fprintf(w.out, "%s  %s: %s in %.1f s (%s/s)\n", time.Now().In(w.loc).Format("01/02 15:04:05"), label,
				humanBytes(p.Total), secs, humanBytes(int64(float64(p.Total)/secs)))
		default:
			fmt.Fprintf(w.out, "%s  %s: failed: %s\n", time.Now().In(w.loc).Format("01/02 15:04:05"), label, p.Err)
		}
		return
	}
	if !w.table {
		return
	}
	t := w.transfers[key]
	if t == nil {
		t = &shownTransfer{bar: progressbar.NewOptions64(p.Total,
			progressbar.OptionSetWriter(io.Discard), // drawn into the table
			progressbar.OptionSetDescription(label),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(20),
		)}
		w.transfers[key] = t
	}
	_ = t.bar.Set64(p.Done)
	t.seen = time.Now()
	if time.Since(w.drawn) > progressRedraw {
		w.draw()
	}
}

// watchProgressMinBytes is the size from which watch shows a transfer:
// smaller ones take no time worth watching.
const watchProgressMinBytes = 8 << 20

// progressRedraw is the least time between two redraws for progress.
const progressRedraw = 200 * time.Millisecond

// transferBars renders the transfers under way, in a stable order; one
// not heard of for a minute is dropped (its daemon went away).
func (w *watcher) transferBars() []string {
	var keys []string
	for k, t := range w.transfers {
		if time.Since(t.seen) > time.Minute {
			delete(w.transfers, k)
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, strings.TrimSpace(strings.TrimLeft(w.transfers[k].bar.String(), "\r")))
	}
	return out
}

// watchSnapshot starts w's copy of the queue from the schedd's snapshot
// of the jobs req selects.
func (c *cli) watchSnapshot(ctx context.Context, pc *client, w *watcher, req schedd.QueryRequest) error {
	var data []byte
	if err := c.queryChunks(ctx, pc, w.sched, "query", req, func(ch schedd.QueryChunk) { data = append(data, ch.Snapshot...) }); err != nil {
		return err
	}
	q, seq, err := schedd.UnmarshalSnapshot(data)
	if err != nil {
		return fmt.Errorf("schedd %s's answer: %w", w.sched, err)
	}
	if q.Name != w.sched {
		return fmt.Errorf("schedd %s answered with a snapshot of %s", w.sched, q.Name)
	}
	w.q, w.after = q, seq
	for id, j := range q.Jobs {
		w.jobs[id], w.known0[id] = j, true
	}
	for _, j := range q.History {
		w.jobs[j.ID], w.known0[j.ID] = j, true
	}
	return nil
}

// selection is the clusters and jobs named on the command line.
type selection struct {
	clusters map[int]bool
	jobs     map[events.JobID]bool
}

func parseSelection(args []string) (selection, error) {
	var s selection
	for _, a := range args {
		if id, ok := events.ParseJobID(a); ok {
			if s.jobs == nil {
				s.jobs = map[events.JobID]bool{}
			}
			s.jobs[id] = true
			continue
		}
		n, err := strconv.Atoi(a)
		if err != nil || n <= 0 {
			return s, fmt.Errorf("job %q: want CLUSTER or CLUSTER.PROC", a)
		}
		if s.clusters == nil {
			s.clusters = map[int]bool{}
		}
		s.clusters[n] = true
	}
	return s, nil
}

// named reports whether the command line named clusters or jobs.
func (s selection) named() bool { return len(s.clusters) > 0 || len(s.jobs) > 0 }

func (s selection) match(id events.JobID) bool {
	return !s.named() || s.clusters[id.Cluster] || s.jobs[id]
}

// subjects are the subject filters of the selection: every event of the
// schedd, or only those about the named clusters and jobs (and their
// clusters' submits). Filters of one consumer must not overlap.
func (s selection) subjects(sched string) []string {
	base := events.SubjectPrefix + "." + events.RoleSchedd + "." + sched
	if !s.named() {
		return []string{base + ".>"}
	}
	var out []string
	seen := map[string]bool{}
	add := func(subj string) {
		if !seen[subj] {
			seen[subj] = true
			out = append(out, subj)
		}
	}
	for c := range s.clusters {
		add(fmt.Sprintf("%s.cluster.%s.%d.*", base, sched, c))
		add(fmt.Sprintf("%s.job.%s.%d.*.*", base, sched, c))
	}
	for id := range s.jobs {
		if s.clusters[id.Cluster] {
			continue
		}
		add(fmt.Sprintf("%s.cluster.%s.%d.*", base, sched, id.Cluster))
		add(fmt.Sprintf("%s.job.%s.%d.%d.*", base, sched, id.Cluster, id.Proc))
	}
	sort.Strings(out)
	return out
}

// firstEventOf returns the oldest event of schedd still in the stream.
func firstEventOf(ctx context.Context, js jetstream.JetStream, sched string) (events.Event, bool) {
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return events.Event{}, false
	}
	m, err := st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(events.SubjectPrefix+"."+events.RoleSchedd+"."+sched+".>"))
	if err != nil {
		return events.Event{}, false
	}
	e, err := events.Decode(m.Data)
	return e, err == nil
}

// isTerminal reports whether w is a terminal, where the table is redrawn
// in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// watcher is watch's state: a copy of the schedd's queue and the view of
// the watched jobs. It is used by one goroutine (the stream reader's).
type watcher struct {
	sched      string
	q          *schedd.Queue
	jobs       map[events.JobID]*schedd.Job // every job the copy has seen, in the queue or gone
	owner      string
	constraint *classad.Expr
	sel        selection
	known0     map[events.JobID]bool // the schedd's jobs when the watch began

	caught  bool // the stream reader has read what the stream held at the start
	ready   bool // the view is shown
	watched map[events.JobID]bool
	batches map[int]*batch
	last    events.Event // the newest event applied
	// after is the schedd's own event the copy started from (its
	// snapshot): the stream's events up to it are already in the copy.
	after uint64

	// mu serializes the stream reader and the transfer reports.
	mu        sync.Mutex
	transfers map[string]*shownTransfer // "C.P kind file" -> its bar

	out          io.Writer
	loc          *time.Location
	table        bool
	exitWhenDone bool
	exitCode     int
	url          string
	dirty        bool
	drawn        time.Time
}

// batch counts the watched jobs of one cluster by state.
type batch struct {
	cluster                           int
	name, owner                       string
	qdate                             int64
	minProc, maxProc                  int
	total, idle, run, held, done, rem int
}

func (b *batch) add(status, n int) {
	b.total += n
	b.move(0, status, n)
}

// move counts n jobs of the batch as leaving status from and entering to.
func (b *batch) move(from, to, n int) {
	for _, x := range []struct {
		status, sign int
	}{{from, -n}, {to, n}} {
		switch x.status {
		case schedd.Idle:
			b.idle += x.sign
		case schedd.Running:
			b.run += x.sign
		case schedd.Held:
			b.held += x.sign
		case schedd.Completed:
			b.done += x.sign
		case schedd.Removed:
			b.rem += x.sign
		}
	}
}

// counts is the batch's tally as the watch lines show it.
func (b *batch) counts() string {
	s := fmt.Sprintf("%d done, %d run, %d idle, %d held", b.done, b.run, b.idle, b.held)
	if b.rem > 0 {
		s += fmt.Sprintf(", %d removed", b.rem)
	}
	return s + fmt.Sprintf(" of %d", b.total)
}

// bar draws the batch's progress: '#' done, 'x' removed, '!' held, '>'
// running, '.' idle, in width cells shared out by largest remainder.
func (b *batch) bar(width int) string {
	parts := []struct {
		n  int
		ch byte
	}{{b.done, '#'}, {b.rem, 'x'}, {b.held, '!'}, {b.run, '>'}, {b.idle, '.'}}
	if b.total <= 0 {
		return "[" + strings.Repeat(" ", width) + "]"
	}
	cells := make([]int, len(parts))
	type rem struct{ i, r int }
	var rems []rem
	used := 0
	for i, p := range parts {
		cells[i] = p.n * width / b.total
		used += cells[i]
		rems = append(rems, rem{i, p.n * width % b.total})
	}
	sort.SliceStable(rems, func(x, y int) bool { return rems[x].r > rems[y].r })
	for k := 0; used < width && k < len(rems); k++ {
		if parts[rems[k].i].n > 0 {
			cells[rems[k].i]++
			used++
		}
	}
	var s strings.Builder
	s.WriteByte('[')
	for i, p := range parts {
		s.WriteString(strings.Repeat(string(p.ch), cells[i]))
	}
	s.WriteString(strings.Repeat(" ", max(width-used, 0)))
	s.WriteByte(']')
	return s.String()
}

func (b *batch) ids() string {
	if b.minProc == b.maxProc {
		return fmt.Sprintf("%d.%d", b.cluster, b.minProc)
	}
	return fmt.Sprintf("%d.%d-%d", b.cluster, b.minProc, b.maxProc)
}

// matches reports whether j passes the owner, constraint and selection.
func (w *watcher) matches(j *schedd.Job) bool {
	if !w.sel.match(j.ID) || w.owner != "" && j.Owner() != w.owner {
		return false
	}
	return w.constraint == nil || w.constraint.Eval(j.Ad(w.sched), nil).IsTrue()
}

// watch adds j to the watched jobs.
func (w *watcher) watch(j *schedd.Job) {
	if w.watched[j.ID] {
		return
	}
	w.watched[j.ID] = true
	b := w.batches[j.ID.Cluster]
	if b == nil {
		c := j.Cluster
		name := "ID: " + strconv.Itoa(c.ID)
		if v, ok := j.Ad(w.sched).EvalString("JobBatchName"); ok && v != "" {
			name = v
		}
		b = &batch{cluster: c.ID, name: name, owner: c.Owner, qdate: c.QDate, minProc: j.ID.Proc, maxProc: j.ID.Proc}
		w.batches[c.ID] = b
	}
	b.minProc, b.maxProc = min(b.minProc, j.ID.Proc), max(b.maxProc, j.ID.Proc)
	b.add(j.Status, 1)
}

// apply folds one event of the stream into the copy of the queue and
// updates the view.
func (w *watcher) apply(se streamEvent) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.fold(se)
	// In a terminal, redraw once the stream has nothing more right now
	// (or a quarter second after the last redraw, under a flood), whether
	// or not this last event was about a watched job.
	if w.table && w.dirty && err == nil && (se.Pending == 0 || time.Since(w.drawn) > 250*time.Millisecond) {
		w.draw()
	}
	return err
}

func (w *watcher) fold(se streamEvent) error {
	e := se.Event
	if e.Source != w.sched {
		return nil
	}
	w.last = e
	if e.Seq <= w.after {
		return nil // already in the snapshot the copy started from
	}
	id := e.Job()
	before := 0
	j := w.jobs[id]
	if e.Proc >= 0 && j != nil {
		before = j.Status
	}
	schedd.Apply(w.q, e)
	if e.Type == events.ClusterSubmitted {
		var fresh []*schedd.Job
		if c := w.q.Clusters[e.Cluster]; c != nil {
			for p := range c.NumProcs {
				pid := events.JobID{Cluster: e.Cluster, Proc: p}
				if nj := w.q.Jobs[pid]; nj != nil && w.jobs[pid] == nil {
					w.jobs[pid] = nj
					fresh = append(fresh, nj)
				}
			}
		}
		if !w.ready {
			return w.tryReady()
		}
		added := false
		for _, nj := range fresh {
			if w.matches(nj) {
				w.watch(nj)
				added = true
			}
		}
		if added {
			w.changed(e, w.batches[e.Cluster])
		}
		return w.checkDone()
	}
	if !w.ready {
		return nil
	}
	if j == nil || e.Proc < 0 || !w.watched[id] {
		return nil
	}
	b := w.batches[id.Cluster]
	if j.Status != before {
		b.move(before, j.Status, 1)
	}
	w.changed(e, b)
	return w.checkDone()
}

// changed shows an event about watched jobs: a line, or (in a terminal)
// a redraw to come.
func (w *watcher) changed(e events.Event, b *batch) {
	if w.table {
		w.dirty = true
		return
	}
	who := strconv.Itoa(e.Cluster)
	if e.Proc >= 0 {
		who = e.Job().String()
	}
	fmt.Fprintf(w.out, "%s  %-6s %s  [%s: %s]\n", fmtWatchTime(e.Time, w.loc), who, schedd.Describe(e), b.name, b.counts())
}

// caughtUp is called when the stream reader has read everything the
// stream held when the watch began.
func (w *watcher) caughtUp() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.caught = true
	return w.tryReady()
}

// tryReady shows the view once the copy of the queue has caught up with
// the stream and knows every job the schedd reported at the start.
func (w *watcher) tryReady() error {
	if w.ready || !w.caught {
		return nil
	}
	for id := range w.known0 {
		if w.jobs[id] == nil {
			return nil // its submit is still on the way to the stream
		}
	}
	w.ready = true
	ids := make([]events.JobID, 0, len(w.jobs))
	for id := range w.jobs {
		ids = append(ids, id)
	}
	sortIDs(ids)
	for _, id := range ids {
		j := w.jobs[id]
		if !w.matches(j) {
			continue
		}
		if w.q.Jobs[id] != nil || w.sel.named() || w.known0[id] {
			w.watch(j)
		}
	}
	if w.table {
		w.draw()
	} else {
		w.summary()
	}
	if len(w.watched) == 0 && w.exitWhenDone {
		if w.sel.named() {
			fmt.Fprintf(w.out, "-- none of the jobs named (%s) is known to schedd %s\n", w.sel, w.sched)
			w.exitCode = 1
		} else if w.owner != "" {
			// Name whose jobs were looked for: a misspelt owner would
			// otherwise pass for one whose jobs are all done.
			fmt.Fprintf(w.out, "-- no jobs of %s to watch on schedd %s\n", w.owner, w.sched)
		} else {
			fmt.Fprintln(w.out, "-- no jobs to watch")
		}
		return errStopReading
	}
	return w.checkDone()
}

func (s selection) String() string {
	var parts []string
	for c := range s.clusters {
		parts = append(parts, strconv.Itoa(c))
	}
	for id := range s.jobs {
		parts = append(parts, id.String())
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func sortIDs(ids []events.JobID) {
	sort.Slice(ids, func(a, b int) bool {
		if ids[a].Cluster != ids[b].Cluster {
			return ids[a].Cluster < ids[b].Cluster
		}
		return ids[a].Proc < ids[b].Proc
	})
}

// sortedBatches lists the batches in cluster order.
func (w *watcher) sortedBatches() []*batch {
	out := make([]*batch, 0, len(w.batches))
	for _, b := range w.batches {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].cluster < out[j].cluster })
	return out
}

// summary prints, in line mode, where the watched batches stand when the
// view starts.
func (w *watcher) summary() {
	at := "no events yet"
	switch {
	case w.last.Seq > 0:
		at = fmt.Sprintf("event %d, %s", w.last.Seq, fmtWatchTime(w.last.Time, w.loc))
	case w.after > 0:
		at = fmt.Sprintf("event %d", w.after) // its snapshot; the stream holds none of its events
	}
	fmt.Fprintf(w.out, "-- Schedd: %s (as of %s): watching %d job(s) in %d batch(es)\n", w.sched, at, len(w.watched), len(w.batches))
	for _, b := range w.sortedBatches() {
		fmt.Fprintf(w.out, "%-12s %-10s %s %s  %s  %s\n", b.name, b.owner, fmtDateIn(b.qdate, w.loc), b.bar(20), b.counts(), b.ids())
	}
}

// draw redraws the table in a terminal.
func (w *watcher) draw() {
	w.dirty = false
	w.drawn = time.Now()
	var s strings.Builder
	s.WriteString("\x1b[H\x1b[2J")
	fmt.Fprintf(&s, "-- Schedd: %s : <%s> @ %s (live; Ctrl-C to stop)\n", w.sched, busAddr(w.url), time.Now().In(w.loc).Format("01/02/06 15:04:05"))
	fmt.Fprintf(&s, "%-10s %-14s %11s %6s %5s %5s %5s %6s %-12s %s\n", "OWNER", "BATCH_NAME", "SUBMITTED", "DONE", "RUN", "IDLE", "HOLD", "TOTAL", "JOB_IDS", "PROGRESS")
	var tot schedd.Totals
	for _, b := range w.sortedBatches() {
		dash := func(n int) string {
			if n == 0 {
				return "_"
			}
			return strconv.Itoa(n)
		}
		fmt.Fprintf(&s, "%-10s %-14s %11s %6s %5s %5s %5s %6d %-12s %s\n", b.owner, b.name, fmtDateIn(b.qdate, w.loc),
			dash(b.done), dash(b.run), dash(b.idle), dash(b.held), b.total, b.ids(), b.bar(30))
		tot.Jobs += b.total
		tot.Completed += b.done
		tot.Removed += b.rem
		tot.Idle += b.idle
		tot.Running += b.run
		tot.Held += b.held
	}
	fmt.Fprintf(&s, "\nTotal: %s\n", totalsLine(tot))
	if w.last.Seq > 0 {
		fmt.Fprintf(&s, "Last event: %s %s %s\n", fmtWatchTime(w.last.Time, w.loc), w.last.Job(), schedd.Describe(w.last))
	}
	if bars := w.transferBars(); len(bars) > 0 {
		s.WriteString("\nTransfers:\n")
		for _, b := range bars {
			s.WriteString("  " + b + "\n")
		}
	}
	io.WriteString(w.out, s.String())
}

// checkDone ends the watch, with --exit-when-done, once every watched job
// has completed, been removed or been held.
func (w *watcher) checkDone() error {
	if !w.exitWhenDone || !w.ready || len(w.watched) == 0 {
		return nil
	}
	var done, rem, held int
	for _, b := range w.batches {
		done += b.done
		rem += b.rem
		held += b.held
	}
	if done+rem+held < len(w.watched) {
		return nil
	}
	if w.table && w.dirty {
		w.draw()
	}
	fmt.Fprintf(w.out, "-- all %d job(s) finished: %d completed, %d removed, %d held\n", len(w.watched), done, rem, held)
	if rem+held > 0 {
		w.exitCode = 1
	}
	return errStopReading
}

// fmtWatchTime prints an event time to the second.
func fmtWatchTime(unixNanos int64, loc *time.Location) string {
	return time.Unix(0, unixNanos).In(loc).Format("2006-01-02 15:04:05")
}

// fmtDateIn is fmtDate in a given time zone.
func fmtDateIn(unix int64, loc *time.Location) string {
	if unix <= 0 {
		return "??/?? ??:??"
	}
	return time.Unix(unix, 0).In(loc).Format("1/2 15:04")
}
