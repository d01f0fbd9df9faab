package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/negotiator"
	"github.com/vmpool/vmpool/schedd"
	"github.com/vmpool/vmpool/startd"
)

// This file is vmpool replay --check: every log replayed from its first
// event and compared with what else is known of the daemon's state.

// replayer folds records into a fresh state of one daemon, through the
// daemon's Apply.
type replayer struct {
	fresh func() any
	apply func(st any, e events.Event)
}

func replayerFor(role string, t logTarget, recs []record, rf *replayFlags) replayer {
	switch role {
	case events.RoleNegotiator:
		return replayer{
			fresh: func() any { return negotiator.NewState(t.source, rf.matchTimeout.Nanoseconds()) },
			apply: func(st any, e events.Event) { negotiator.Apply(st.(*negotiator.State), e) },
		}
	case events.RoleStartd:
		slots := max(rf.slots, inferSlots(recs, t.source))
		return replayer{
			fresh: func() any { return startd.NewState(t.source, slots) },
			apply: func(st any, e events.Event) { startd.Apply(st.(*startd.State), e) },
		}
	}
	return replayer{
		fresh: func() any { return schedd.NewQueue(t.source) },
		apply: func(st any, e events.Event) { schedd.Apply(st.(*schedd.Queue), e) },
	}
}

// replayPrefix folds the first n records.
func (r replayer) replayPrefix(evs []events.Event, n int) any {
	st := r.fresh()
	for _, e := range evs[:n] {
		r.apply(st, e)
	}
	return st
}

// firstDivergence returns the smallest n in [1, total] for which differs
// reports true, given that differs(total) is true and differs(0) is false:
// a binary search over prefixes. Divergence is assumed to persist once it
// appears; the caller checks that n-1 agrees.
func firstDivergence(total int, differs func(n int) bool) int {
	lo, hi := 0, total // differs(lo) false, differs(hi) true
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if differs(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// checkResult is one line of replay --check.
type checkResult struct {
	name, detail string
	ok           bool
	unreadable   bool // the log could not be read: nothing was compared
	notes        []string
}

// replayCheck replays every log under the home from its first event and
// compares the result with what else is known of the daemon's state.
// For each log it compares the state replayed from the records as read
// with the state replayed from the records passed once more through the
// codec (and so catches a payload field the codec loses, or an Apply that
// is not deterministic); it checks that the daemon's own sequence numbers
// have no gap; it compares the schedd's snapshot with the queue replayed
// from zero up to it; and with -pool, it compares the schedd's replayed
// queue and history with the live pool's, and a startd's replayed slots
// with its machine ads in the collector.
// A difference is reported with the first event where it appears.
func (c *cli) replayCheck(ctx context.Context, rf *replayFlags, cfg *Config) int {
	var targets []logTarget
	if rf.daemon != "" {
		t, err := c.resolveLog(rf.home, rf.daemon, cfg)
		if err != nil {
			return c.errorf("replay", "%v", err)
		}
		targets = []logTarget{t}
	} else {
		targets = c.findLogs(rf.home)
	}
	if len(targets) == 0 {
		return c.errorf("replay", "no daemon logs under %s (is it the pool's --home?)", rf.home)
	}
	var pc *client
	if rf.pool != "" {
		var err error
		if pc, err = c.dial(ctx, c.poolURL(rf.pool)); err != nil {
			return c.errorf("replay", "%v", err)
		}
		defer pc.close()
	}
	failed := false
	for _, t := range targets {
		res := c.checkLog(ctx, t, rf, pc)
		status := "ok"
		switch {
		case res.unreadable:
			status = "ERROR"
			failed = true
		case !res.ok:
			status = "DIFFERS"
			failed = true
		}
		fmt.Fprintf(c.stdout, "%-12s %-7s %s\n", res.name, status, res.detail)
		for _, n := range res.notes {
			fmt.Fprintf(c.stdout, "%-12s %-7s   %s\n", "", "", n)
		}
	}
	if failed {
		return 1
	}
	return 0
}

func (c *cli) checkLog(ctx context.Context, t logTarget, rf *replayFlags, pc *client) checkResult {
	res := checkResult{name: t.source}
	read := func() ([]record, error) {
		lg, err := c.openLogReadOnly(t)
		if err != nil {
			return nil, err
		}
		defer lg.close()
		return readLog(lg.log)
	}
	recs, err := read()
	if err != nil {
		res.detail, res.unreadable = err.Error(), true
		return res
	}
	role := detectRole(recs, t)
	// What the live pool shows of the daemon: the schedd's queue and
	// history, a startd's slot ads. The negotiator keeps no state the
	// pool can be asked for.
	var liveFn func() (map[string]string, error)
	if pc != nil {
		switch role {
		case events.RoleSchedd:
			liveFn = func() (map[string]string, error) { return c.liveAds(ctx, pc, t.source) }
		case events.RoleStartd:
			liveFn = func() (map[string]string, error) { return liveSlots(ctx, pc, t.source) }
		}
	}
	if liveFn == nil {
		return c.checkRecords(t, role, recs, rf)
	}
	// The live answer is read before and after the log, so that a change
	// in between (a busy pool) is noticed and retried.
	for attempt := 0; ; attempt++ {
		live, liveErr := liveFn()
		if liveErr != nil {
			res = c.checkRecords(t, role, recs, rf)
			res.notes = append(res.notes, fmt.Sprintf("live comparison skipped: %v", liveErr))
			return res
		}
		if recs, err = read(); err != nil {
			res.detail = err.Error()
			return res
		}
		again, err2 := liveFn()
		if err2 == nil && !sameStrings(live, again) && attempt < 5 {
			time.Sleep(100 * time.Millisecond) // let the pool settle
			continue
		}
		res = c.checkRecords(t, role, recs, rf)
		if role == events.RoleStartd {
			checkLiveSlots(&res, t, recs, live, pc.url, rf)
		} else {
			checkLive(&res, t, recs, live, pc.url)
		}
		return res
	}
}

// liveSlots reads a startd's slot ads from the collector: for each slot,
// what its state says of it (slotSummary).
func liveSlots(ctx context.Context, pc *client, startdName string) (map[string]string, error) {
	ads, err := pc.ads(ctx, "slot.")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, ad := range ads {
		if n, _ := ad.EvalString("StartdName"); n != startdName {
			continue
		}
		name, _ := ad.EvalString("Name")
		state, _ := ad.EvalString("State")
		act, _ := ad.EvalString("Activity")
		claim, _ := ad.EvalString("VmpoolClaimId")
		since, _ := ad.EvalInt("EnteredCurrentActivity")
		out[name] = slotSummary(state, act, claim, since)
	}
	return out, nil
}

func slotSummary(state, activity, claim string, since int64) string {
	if claim == "" {
		claim = "none"
	}
	return fmt.Sprintf("State %s, Activity %s, claim %s, EnteredCurrentActivity %d", state, activity, claim, since)
}

// replayedSlots is what a replayed startd state says of each slot, in the
// terms of its machine ads.
func replayedSlots(st *startd.State) map[string]string {
	out := map[string]string{}
	for _, s := range st.Slots {
		out[s.Name] = slotSummary(s.State, s.Activity, s.Claim, s.Since)
	}
	return out
}

// unionKeys lists the keys of a and b once each, in less's order.
func unionKeys(a, b map[string]string, less func(x, y string) bool) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return less(keys[i], keys[j]) })
	return keys
}

// checkLiveSlots compares a startd's replayed slots with its live ads in
// the collector and, for a slot that differs, names the record after
// which the replayed slot last agreed with the live one.
func checkLiveSlots(res *checkResult, t logTarget, recs []record, live map[string]string, url string, rf *replayFlags) {
	slots := max(rf.slots, inferSlots(recs, t.source))
	fresh := func() *startd.State { return startd.NewState(t.source, slots) }
	st := fresh()
	for _, r := range recs {
		startd.Apply(st, r.e)
	}
	replayed := replayedSlots(st)
	names := unionKeys(replayed, live, func(a, b string) bool { return a < b })
	bad := 0
	for _, n := range names {
		r, inLog := replayed[n]
		l, isLive := live[n]
		switch {
		case inLog && isLive && r == l:
			continue
		case !inLog:
			res.notes = append(res.notes, fmt.Sprintf("slot %s is in the collector but not in the log", n))
		case !isLive:
			res.notes = append(res.notes, fmt.Sprintf("slot %s: replayed as %s, but the collector has no ad for it", n, r))
		default:
			// The last prefix whose replayed slot equals the live one.
			st := fresh()
			lastOK := -1
			if replayedSlots(st)[n] == l {
				lastOK = 0
			}
			for i, rec := range recs {
				startd.Apply(st, rec.e)
				if replayedSlots(st)[n] == l {
					lastOK = i + 1
				}
			}
			where := "the replayed slot never equals the live one"
			switch {
			case lastOK == 0:
				where = fmt.Sprintf("the live ad is the slot before any record; first divergent record: %d (%s)", recs[0].idx, recs[0].e)
			case lastOK > 0 && lastOK < len(recs):
				where = fmt.Sprintf("the live ad equals the log up to record %d, first divergent record: %d (%s)", recs[lastOK-1].idx, recs[lastOK].idx, recs[lastOK].e)
			}
			res.notes = append(res.notes, fmt.Sprintf("slot %s: replayed %s; live %s; %s", n, r, l, where))
		}
		bad++
	}
	if bad > 0 {
		res.ok = false
		res.notes = append(res.notes, fmt.Sprintf("%d of %d slots differ from the collector's ads at %s", bad, len(names), url))
		return
	}
	res.notes = append(res.notes, fmt.Sprintf("the replayed slots (%d) equal the machine ads vmpool status shows at %s", len(names), url))
}

func sameStrings(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkRecords replays recs as read and through the codec and compares.
func (c *cli) checkRecords(t logTarget, role string, recs []record, rf *replayFlags) checkResult {
	res := checkResult{name: t.source, ok: true}
	evs := make([]events.Event, len(recs))
	coded := make([]events.Event, len(recs))
	own, input := 0, 0
	var lastSeq uint64
	for i, r := range recs {
		evs[i] = r.e
		if r.e.Source == t.source {
			own++
			if r.e.Seq != lastSeq+1 {
				res.ok = false
				res.notes = append(res.notes, fmt.Sprintf("record %d: own event %s:%d follows %s:%d (a gap or repeat in the daemon's sequence)", r.idx, t.source, r.e.Seq, t.source, lastSeq))
			}
			lastSeq = r.e.Seq
		} else {
			input++
		}
		b, err := events.Encode(r.e)
		if err == nil {
			coded[i], err = events.Decode(b)
		}
		if err != nil {
			res.ok = false
			res.notes = append(res.notes, fmt.Sprintf("record %d (%s) does not survive the codec: %v", r.idx, r.e, err))
			coded[i] = r.e
		}
	}
	rp := replayerFor(role, t, recs, rf)
	res.detail = fmt.Sprintf("%s log %s: %d records (%d own events", role, t.dir, len(recs), own)
	if input > 0 {
		res.detail += fmt.Sprintf(", %d input records", input)
	}
	res.detail += ")"
	direct := dumpState(rp.replayPrefix(evs, len(evs)))
	viaCodec := dumpState(rp.replayPrefix(coded, len(coded)))
	again := dumpState(rp.replayPrefix(evs, len(evs)))
	switch {
	case direct != again:
		res.ok = false
		n := firstDivergence(len(evs), func(n int) bool {
			first := dumpState(rp.replayPrefix(evs, n))
			second := dumpState(rp.replayPrefix(evs, n)) // the same input again: Apply must give the same state
			return first != second
		})
		res.notes = append(res.notes, fmt.Sprintf("two replays of the same records differ (Apply is not deterministic); first at record %d (%s)", recs[n-1].idx, recs[n-1].e))
	case direct != viaCodec:
		res.ok = false
		n := firstDivergence(len(evs), func(n int) bool {
			return dumpState(rp.replayPrefix(evs, n)) != dumpState(rp.replayPrefix(coded, n))
		})
		a := dumpState(rp.replayPrefix(evs, n))
		b := dumpState(rp.replayPrefix(coded, n))
		res.notes = append(res.notes, fmt.Sprintf("replay through the codec diverges at record %d (%s): %s", recs[n-1].idx, recs[n-1].e, firstDifference(a, b)))
	default:
		res.detail += "; replayed twice, as read and through the codec: identical"
	}
	if role == events.RoleSchedd {
		checkSnapshot(&res, t, recs)
	}
	return res
}

// checkSnapshot compares the schedd's snapshot with the queue replayed
// from zero up to the snapshot's index, in the snapshot's canonical
// encoding.
func checkSnapshot(res *checkResult, t logTarget, recs []record) {
	path := schedd.SnapshotPath(filepath.Dir(t.dir))
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		res.detail += "; no snapshot"
		return
	}
	fail := func(format string, args ...any) {
		res.ok = false
		res.notes = append(res.notes, fmt.Sprintf(format, args...))
	}
	if err != nil {
		fail("snapshot %s: %v", path, err)
		return
	}
	snap, idx, err := schedd.UnmarshalSnapshot(data)
	if err != nil {
		fail("snapshot %s: %v (the daemon ignores it and replays its whole log)", path, err)
		return
	}
	q := schedd.NewQueue(t.source)
	for _, r := range recs {
		if r.idx > idx {
			break
		}
		schedd.Apply(q, r.e)
	}
	want, err1 := schedd.MarshalSnapshot(q, idx)
	got, err2 := schedd.MarshalSnapshot(snap, idx)
	switch {
	case err1 != nil || err2 != nil:
		fail("snapshot %s: encode: %v %v", path, err1, err2)
	case !bytes.Equal(got, want):
		fail("snapshot %s (record %d) differs from the queue replayed from zero: %s", path, idx, firstDifference(string(want), string(got)))
	default:
		res.detail += fmt.Sprintf("; the snapshot at record %d equals replay from zero", idx)
	}
}

// firstDifference shows where two dumps first differ.
func firstDifference(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(i-40, 0)
	clip := func(s string) string {
		end := min(i+40, len(s))
		if from >= end {
			return "(end)"
		}
		return strconv.Quote(s[from:end])
	}
	return fmt.Sprintf("as read …%s… vs through the codec …%s…", clip(a), clip(b))
}

// liveAds asks the pool's schedd for every job in its queue and history,
// as ad JSON by job id.
func (c *cli) liveAds(ctx context.Context, pc *client, sched string) (map[string]string, error) {
	out := map[string]string{}
	for _, verb := range []string{"query", "history"} {
		ads, _, err := c.fetch(ctx, pc, sched, verb, schedd.QueryRequest{})
		if err != nil {
			return nil, err
		}
		for _, ad := range ads {
			b, err := json.Marshal(ad)
			if err != nil {
				return nil, fmt.Errorf("encode the ad of %s: %w", jobID(ad), err)
			}
			out[jobID(ad)] = string(b)
		}
	}
	return out, nil
}

// checkLive compares the schedd's replayed jobs with the live ones and,
// for each job that differs, finds the first event where they part: the
// record after the last point at which the job's replayed ad equalled
// the live one.
func checkLive(res *checkResult, t logTarget, recs []record, live map[string]string, url string) {
	q := schedd.NewQueue(t.source)
	for _, r := range recs {
		schedd.Apply(q, r.e)
	}
	replayed := map[string]string{}
	for _, ad := range replayedAds(q) {
		b, err := json.Marshal(ad)
		if err == nil {
			replayed[jobID(ad)] = string(b)
		}
	}
	ids := unionKeys(replayed, live, lessJobID)
	bad := 0
	for _, id := range ids {
		r, inLog := replayed[id]
		l, isLive := live[id]
		switch {
		case inLog && isLive && r == l:
			continue
		case !inLog:
			res.notes = append(res.notes, fmt.Sprintf("job %s is in the live pool but not in the log", id))
		default:
			jid, _ := events.ParseJobID(id)
			res.notes = append(res.notes, fmt.Sprintf("job %s: %s", id, divergence(t.source, jid, recs, l, isLive)))
		}
		bad++
	}
	if bad > 0 {
		res.ok = false
		res.notes = append(res.notes, fmt.Sprintf("%d of %d jobs differ from the live pool at %s", bad, len(ids), url))
		return
	}
	res.notes = append(res.notes, fmt.Sprintf("the replayed queue and history (%d jobs) equal vmpool q -json and vmpool history -json at %s", len(ids), url))
}

// divergence finds where a job's replayed ad stops agreeing with the live
// one (liveAd, or no live job at all).
func divergence(source string, id events.JobID, recs []record, liveAd string, isLive bool) string {
	q := schedd.NewQueue(source)
	var j *schedd.Job
	lastOK := -1 // index in recs after which the job's ad equalled the live one
	var about []int
	for i, r := range recs {
		schedd.Apply(q, r.e)
		if r.e.Source != source || r.e.Cluster != id.Cluster || r.e.Proc >= 0 && r.e.Proc != id.Proc {
			continue
		}
		if j == nil {
			j = q.Jobs[id]
		}
		if j == nil {
			continue
		}
		about = append(about, i)
		if isLive && adJSON(j, source) == liveAd {
			lastOK = i
		}
	}
	if !isLive {
		if len(about) == 0 {
			return "in the log but not in the live pool"
		}
		r := recs[about[0]]
		return fmt.Sprintf("in the log but not in the live pool; its first event is record %d (%s)", r.idx, r.e)
	}
	var diff string
	if j != nil {
		diff = adDiff(adJSON(j, source), liveAd)
	}
	for _, i := range about {
		if i > lastOK {
			r := recs[i]
			if lastOK < 0 {
				return fmt.Sprintf("%s; the replayed ad never equals the live one: first event about it is record %d (%s)", diff, r.idx, r.e)
			}
			return fmt.Sprintf("%s; the live ad equals the log up to record %d, first divergent event: record %d (%s)", diff, recs[lastOK].idx, r.idx, r.e)
		}
	}
	return diff + "; the live ad equals the replayed ad after the job's last event, yet differs at the end (an Apply of another job's event changed it?)"
}

func adJSON(j *schedd.Job, sched string) string {
	b, _ := json.Marshal(j.Ad(sched).Flatten())
	ads := decodeAds([]json.RawMessage{b})
	if len(ads) == 0 {
		return ""
	}
	out, _ := json.Marshal(ads[0])
	return string(out)
}

// adDiff names the attributes in which two JSON ads differ.
func adDiff(replayed, live string) string {
	var a, b map[string]any
	_ = json.Unmarshal([]byte(replayed), &a)
	_ = json.Unmarshal([]byte(live), &b)
	var diffs []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s = %v replayed, missing live", k, v))
		} else if !reflect.DeepEqual(v, w) {
			diffs = append(diffs, fmt.Sprintf("%s = %v replayed, %v live", k, v, w))
		}
	}
	for k, w := range b {
		if _, ok := a[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s missing replayed, %v live", k, w))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 4 {
		diffs = append(diffs[:4], fmt.Sprintf("and %d more", len(diffs)-4))
	}
	return strings.Join(diffs, ", ")
}

// dumpState prints a daemon's state deterministically: every exported
// field, map keys sorted, ads and expressions in ClassAd syntax. It walks
// the state by reflection so that a field added to a state is compared
// without anyone updating this function.
func dumpState(v any) string {
	var b strings.Builder
	d := dumper{b: &b, path: map[uintptr]bool{}}
	d.value(reflect.ValueOf(v))
	return b.String()
}

type dumper struct {
	b    *strings.Builder
	path map[uintptr]bool // pointers being printed (a cycle guard)
}

func (d *dumper) value(v reflect.Value) {
	if !v.IsValid() {
		d.b.WriteString("nil")
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			d.b.WriteString("nil")
			return
		}
		if v.Type() == reflect.TypeOf((*classad.Ad)(nil)) || v.Type() == reflect.TypeOf((*classad.Expr)(nil)) ||
			v.Type() == reflect.TypeOf((*classad.Lazy)(nil)) { // its ad, whether built yet or not
			if v.CanInterface() {
				d.b.WriteString(v.Interface().(fmt.Stringer).String())
				return
			}
		}
		p := v.Pointer()
		if d.path[p] {
			d.b.WriteString("<cycle>")
			return
		}
		d.path[p] = true
		d.b.WriteByte('&')
		d.value(v.Elem())
		delete(d.path, p)
	case reflect.Interface:
		d.value(v.Elem())
	case reflect.Struct:
		t := v.Type()
		d.b.WriteString(t.Name() + "{")
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			d.b.WriteString(f.Name + ":")
			d.value(v.Field(i))
			d.b.WriteByte(' ')
		}
		d.b.WriteString("}")
	case reflect.Map:
		type kv struct{ k, v string }
		var entries []kv
		for _, k := range v.MapKeys() {
			var kb, vb strings.Builder
			(&dumper{b: &kb, path: d.path}).value(k)
			(&dumper{b: &vb, path: d.path}).value(v.MapIndex(k))
			entries = append(entries, kv{kb.String(), vb.String()})
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].k < entries[j].k })
		d.b.WriteString("map[")
		for _, e := range entries {
			d.b.WriteString(e.k + ":" + e.v + " ")
		}
		d.b.WriteString("]")
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			d.b.WriteString(strconv.Quote(string(v.Bytes())))
			return
		}
		d.b.WriteString("[")
		for i := 0; i < v.Len(); i++ {
			d.value(v.Index(i))
			d.b.WriteByte(' ')
		}
		d.b.WriteString("]")
	case reflect.String:
		d.b.WriteString(strconv.Quote(v.String()))
	case reflect.Bool:
		d.b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		d.b.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		d.b.WriteString(strconv.FormatFloat(v.Float(), 'g', -1, 64))
	default:
		d.b.WriteString("<" + v.Kind().String() + ">")
	}
}
