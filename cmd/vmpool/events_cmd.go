package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/events"
)

// streamReader follows the pool's event stream the way a user tool must:
// through ephemeral ordered consumers (no acks, flow-controlled, deleted
// by the server when the tool goes away), so that however slowly the tool
// reads, no daemon ever waits for it. It survives a restart of the pool:
// it keeps the stream position of the last message it handed out and,
// whenever its consumer is lost, makes a new one that starts right after
// it. Events are handed out once per (source, seq), so a republish by a
// daemon's outbox after a restart is not shown twice.
type streamReader struct {
	js      jetstream.JetStream
	filters []string
	// Where to start: after stream sequence startAfter, or at startTime
	// (when set), else at the beginning of the stream.
	startAfter uint64
	startTime  time.Time
	stderr     io.Writer

	seen map[string]*events.Window
	last uint64 // stream sequence of the last message handed out
}

// streamEvent is an event as the stream holds it.
type streamEvent struct {
	events.Event
	StreamSeq uint64 `json:"stream_seq"`
	// Pending is how many messages the stream held after this one (for
	// the reader's filters) when it was delivered.
	Pending uint64 `json:"-"`
}

// errStopReading ends streamReader.run without error.
var errStopReading = errors.New("stop reading the event stream")

// run hands each new event to fn, in stream order. caughtUp is called
// once, when every message stored when the reader started has been handed
// out (at once for an empty stream). Without follow, run returns then;
// with it, run follows the stream until ctx is done. fn or caughtUp
// returning errStopReading ends run without error.
func (r *streamReader) run(ctx context.Context, follow bool, fn func(streamEvent) error, caughtUp func() error) error {
	if r.seen == nil {
		r.seen = map[string]*events.Window{}
	}
	r.last = r.startAfter
	signalled := false
	signal := func() (bool, error) {
		if signalled {
			return false, nil
		}
		signalled = true
		if caughtUp != nil {
			if err := caughtUp(); err != nil {
				return true, err
			}
		}
		return !follow, nil
	}
	backoff := 100 * time.Millisecond
	for {
		done, err := r.session(ctx, fn, signal)
		if done || ctx.Err() != nil {
			if errors.Is(err, errStopReading) {
				return nil
			}
			return err
		}
		// The consumer was lost for good (the connection closed, the
		// server went away for long): make a new one after a pause.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// session reads through one ordered consumer. done reports that run must
// return (with err); otherwise the consumer was lost and err says why.
func (r *streamReader) session(ctx context.Context, fn func(streamEvent) error, signal func() (bool, error)) (done bool, err error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: r.filters, InactiveThreshold: time.Minute}
	switch {
	case r.last > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = r.last + 1
	case !r.startTime.IsZero():
		t := r.startTime
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &t
	}
	cons, err := r.js.OrderedConsumer(ctx, events.StreamName, cfg)
	if err != nil {
		return ctx.Err() != nil, fmt.Errorf("follow the event stream: %w", err)
	}
	// Gone as the reader ends, not a minute later: a script that runs
	// vmpool events (watch, wait) often would fill the stream's consumers.
	defer events.DeleteConsumer(r.js, events.StreamName, cons)
	it, err := cons.Messages(jetstream.PullMaxMessages(256), jetstream.PullHeartbeat(time.Second), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return ctx.Err() != nil, fmt.Errorf("follow the event stream: %w", err)
	}
	// While the pool is down, Next retries inside the library, watching
	// the iterator rather than ctx: stop the iterator when ctx ends.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-stop:
		}
		it.Stop()
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		if done, err := signal(); done || err != nil {
			return true, err
		}
	}
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return true, nil
			}
			return false, fmt.Errorf("follow the event stream: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		r.last = meta.Sequence.Stream
		e, err := events.Decode(m.Data())
		if err != nil {
			fmt.Fprintf(r.stderr, "vmpool: skipping undecodable message %d on %s: %v\n", meta.Sequence.Stream, m.Subject(), err)
		} else if r.fresh(e) {
			if err := fn(streamEvent{Event: e, StreamSeq: meta.Sequence.Stream, Pending: meta.NumPending}); err != nil {
				return true, err
			}
		}
		if meta.NumPending == 0 {
			if done, err := signal(); done || err != nil {
				return true, err
			}
		}
	}
}

// fresh reports whether e was not handed out before, and marks it.
func (r *streamReader) fresh(e events.Event) bool {
	w := r.seen[e.Source]
	if w == nil {
		w = new(events.Window)
		r.seen[e.Source] = w
	}
	if w.Seen(e.Seq) {
		return false
	}
	w.Mark(e.Seq)
	return true
}

// followClient connects a long-running tool (watch, events --follow) to
// the pool: unlike dial's connection, this one reconnects forever, so the
// tool outlives a restart of the pool.
func (c *cli) followClient(ctx context.Context, url string) (*client, error) {
	return c.connect(ctx, url, true)
}

// location is the time zone the tools print times in: $TZ when set (so
// that tests and users can choose), else the system's.
func (c *cli) location() *time.Location {
	if tz := c.getenv("TZ"); tz != "" {
		if loc, err := time.LoadLocation(tz); err == nil {
			return loc
		}
	}
	return time.Local
}

// parseSince reads a --since or --until argument: a sequence number, or a
// time (RFC 3339, "2006-01-02 15:04:05", "15:04:05" today) or a duration
// ago ("10m", "10m ago").
func parseSince(s string, now time.Time, loc *time.Location) (seq uint64, at time.Time, err error) {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n, time.Time{}, nil
	}
	// "10m" or, as replay --help writes it, "10m ago".
	if d, err := time.ParseDuration(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "ago"))); err == nil && d > 0 {
		return 0, now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return 0, t, nil
		}
	}
	if t, err := time.ParseInLocation("15:04:05", s, loc); err == nil {
		y, m, d := now.In(loc).Date()
		return 0, time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, loc), nil
	}
	return 0, time.Time{}, fmt.Errorf("%q is neither a sequence number, a time (2006-01-02 15:04:05, RFC 3339) nor a duration ago (10m)", s)
}

// eventFilters are the subject filters of the events command's options:
// the subject carries the daemon, and the schedd, cluster and proc of a
// job event, so the server does the filtering.
func eventFilters(daemon, schedd string, job string) ([]string, error) {
	src, sch := "*", "*"
	if daemon != "" {
		if err := events.CheckName("daemon", daemon); err != nil {
			return nil, err
		}
		src = daemon
	}
	if schedd != "" {
		if err := events.CheckName("schedd", schedd); err != nil {
			return nil, err
		}
		sch = schedd
	}
	prefix := events.SubjectPrefix + ".*." + src
	if job == "" {
		return []string{prefix + ".>"}, nil
	}
	if id, ok := events.ParseJobID(job); ok {
		return []string{
			fmt.Sprintf("%s.cluster.%s.%d.*", prefix, sch, id.Cluster),
			fmt.Sprintf("%s.job.%s.%d.%d.*", prefix, sch, id.Cluster, id.Proc),
		}, nil
	}
	if n, err := strconv.Atoi(job); err == nil && n > 0 {
		return []string{
			fmt.Sprintf("%s.cluster.%s.%d.*", prefix, sch, n),
			fmt.Sprintf("%s.job.%s.%d.*.*", prefix, sch, n),
		}, nil
	}
	return nil, fmt.Errorf("--job %q: want CLUSTER or CLUSTER.PROC", job)
}

// eventsCmd prints the pool's events as the stream stores them.
//
//	vmpool events [--follow] [--since SEQ|TIME] [--until SEQ|TIME] [--job C[.P]] [--daemon NAME] [-name SCHEDD] [-json] [-pool URL]
func (c *cli) eventsCmd(ctx context.Context, args []string) int {
	const cmd = "events"
	var pool, since, until, job, daemon, sched string
	follow, asJSON := false, false
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
		case "pool":
			pool = a.value(name, val, has)
		case "follow", "f":
			follow = true
		case "since":
			since = a.value(name, val, has)
		case "until":
			until = a.value(name, val, has)
		case "job":
			job = a.value(name, val, has)
		case "daemon", "source":
			daemon = a.value(name, val, has)
		case "name":
			sched = a.value(name, val, has)
		case "json":
			asJSON = true
		case "h", "help":
			fmt.Fprintln(c.stdout, `usage: vmpool events [--follow] [--since SEQ|TIME] [--until SEQ|TIME] [--job C[.P]] [--daemon NAME] [-name SCHEDD] [-json] [-pool URL]

Prints the pool's events as the event stream stores them, oldest first:
stream position, source:seq, time, type, what it is about, payload.
  --follow      print new events as they happen until interrupted (survives a pool
                restart); with --since, the stored ones from then on first
  --since SEQ   with --daemon, from that daemon's event SEQ on; else from stream position SEQ
  --since TIME  from that time on: 2006-01-02 15:04:05, RFC 3339, or a duration ago (10m)
  --until SEQ   up to and including that event (as for --since: the daemon's SEQ with --daemon,
                else the stream position); not with --follow
  --until TIME  up to and including that time (the same forms as --since TIME)
  --job C[.P]   only events about that cluster or job (of schedd -name, or any schedd)
  --daemon NAME only the events NAME (schedd, negotiator, startd1, ...) recorded
  -json         one JSON object per line: the event as stored, plus "stream_seq"`)
			return 0
		default:
			return c.usageErr(cmd, "unknown option %s (try --help)", arg)
		}
		if a.err != nil {
			return c.usageErr(cmd, "%v", a.err)
		}
	}
	if until != "" && follow {
		return c.usageErr(cmd, "--until ends the listing and --follow never does: drop one of them")
	}
	filters, err := eventFilters(daemon, sched, job)
	if err != nil {
		return c.usageErr(cmd, "%v", err)
	}
	loc := c.location()
	r := &streamReader{filters: filters, stderr: c.stderr}
	var minSeq uint64
	var minTime int64
	maxSeq, maxPos, maxTime := uint64(0), uint64(0), int64(0)
	if until != "" {
		seq, at, err := parseSince(until, time.Now(), loc)
		if err != nil {
			return c.usageErr(cmd, "--until: %v", err)
		}
		switch {
		case !at.IsZero():
			maxTime = at.UnixNano()
		case daemon != "":
			maxSeq = seq
		default:
			maxPos = seq
		}
	}
	if since != "" {
		seq, at, err := parseSince(since, time.Now(), loc)
		if err != nil {
			return c.usageErr(cmd, "--since: %v", err)
		}
		switch {
		case !at.IsZero():
			r.startTime, minTime = at, at.UnixNano()
		case daemon != "":
			minSeq = seq
		case seq > 0:
			r.startAfter = seq - 1
		}
	}
	var pc *client
	if follow {
		pc, err = c.followClient(ctx, c.poolURL(pool))
	} else {
		pc, err = c.dial(ctx, c.poolURL(pool))
	}
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	defer pc.close()
	r.js = pc.js
	// --follow alone prints what happens from now on: what the stream
	// holds already (up to 7 days of the pool's events) is what --since
	// asks for.
	fromNow := follow && since == ""
	if fromNow {
		st, err := pc.js.Stream(ctx, events.StreamName)
		if err != nil {
			return c.errorf(cmd, "follow the event stream: %v", err)
		}
		r.startAfter = st.CachedInfo().State.LastSeq
	}
	if !asJSON {
		fmt.Fprintf(c.stdout, "%-6s %-22s %-23s %-17s %-22s %s\n", "POS", "SOURCE:SEQ", "TIME", "TYPE", "ABOUT", "PAYLOAD")
	}
	printed, stopped := 0, false
	// A filter that matches nothing says so, rather than print a header
	// alone: a user cannot tell that from a pool with nothing to show.
	caughtUp := func() error {
		if printed > 0 || fromNow {
			return nil
		}
		var given, fixes []string
		for _, f := range [][3]string{
			{"--job", job, "check the job id with vmpool q or vmpool history (the stream keeps events 7 days by default)"},
			{"--daemon", daemon, "check the daemon's name (vmpool status lists the startds)"},
			{"-name", sched, "check the schedd's name"},
			{"--since", since, "give an earlier --since"},
			{"--until", until, "give a later --until"},
		} {
			if f[1] != "" {
				given, fixes = append(given, f[0]+" "+f[1]), append(fixes, f[2])
			}
		}
		what := "no event in the pool's stream"
		fix := "the pool has recorded nothing yet"
		if len(given) > 0 {
			what = "no event in the pool's stream matches " + strings.Join(given, " ")
			fix = strings.Join(fixes, "; ")
		}
		if follow {
			fmt.Fprintf(c.stderr, "vmpool events: %s so far, waiting for new ones; %s\n", what, fix)
		} else {
			fmt.Fprintf(c.stderr, "vmpool events: %s; %s\n", what, fix)
		}
		return nil
	}
	err = r.run(ctx, follow, func(se streamEvent) error {
		if se.Seq < minSeq || se.Time < minTime {
			return nil
		}
		// Past --until: the stream is in publishing order, which is not
		// quite time order across daemons, so later events are skipped
		// rather than the listing ended, except at a stream position.
		if maxPos > 0 && se.StreamSeq > maxPos {
			stopped = true
			return errStopReading
		}
		if maxSeq > 0 && se.Seq > maxSeq || maxTime > 0 && se.Time > maxTime || until != "" && maxPos == 0 && maxSeq == 0 && maxTime == 0 {
			return nil
		}
		printed++
		if asJSON {
			b, err := json.Marshal(se)
			if err != nil {
				return fmt.Errorf("encode event %s: %w", se.Event, err)
			}
			_, err = fmt.Fprintf(c.stdout, "%s\n", b)
			return err
		}
		_, err := fmt.Fprintln(c.stdout, eventLine(se, loc))
		return err
	}, caughtUp)
	if err == nil && stopped {
		err = caughtUp() // ended before the end of the stream: say so if nothing matched
	}
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	return 0
}

// eventLine is the text form of an event: one line, as stored.
func eventLine(se streamEvent, loc *time.Location) string {
	payload := string(se.Payload)
	if payload == "" {
		payload = "-"
	}
	return fmt.Sprintf("%-6d %-22s %-23s %-17s %-22s %s", se.StreamSeq, se.Source+":"+strconv.FormatUint(se.Seq, 10),
		fmtEventTime(se.Time, loc), se.Type, about(se.Event), payload)
}

// about names what an event is about: a job, a cluster, a machine or its
// daemon.
func about(e events.Event) string {
	switch {
	case e.Cluster > 0 && e.Proc >= 0:
		return fmt.Sprintf("job %s/%d.%d", e.Schedd, e.Cluster, e.Proc)
	case e.Cluster > 0:
		return fmt.Sprintf("cluster %s/%d", e.Schedd, e.Cluster)
	case e.Machine != "":
		return "machine " + e.Machine
	}
	return "daemon"
}

// fmtEventTime prints an event time to the millisecond.
func fmtEventTime(unixNanos int64, loc *time.Location) string {
	return time.Unix(0, unixNanos).In(loc).Format("2006-01-02 15:04:05.000")
}

// cutOption removes the options named names from args (in any of the
// spellings opt accepts, without a value) and reports whether one was
// there. q uses it to hand -watch and -analyze to their commands.
func cutOption(args []string, names ...string) ([]string, bool) {
	var rest []string
	found := false
	for _, a := range args {
		if n, _, has, ok := opt(a); ok && !has {
			match := false
			for _, want := range names {
				if n == want {
					match = true
				}
			}
			if match {
				found = true
				continue
			}
		}
		rest = append(rest, a)
	}
	return rest, found
}
