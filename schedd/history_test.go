package schedd

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
)

// TestHistoryKeptWithinMaxHistory runs a schedd on a real bus and Pebble
// log with MaxHistory 3 and removes the jobs of 8 clusters, each with a
// user log: the history keeps the 3 newest, forgets the others with what
// only they needed (submit ids, user logs), every forgotten job's 009 is
// in its user log, and the log replayed from zero gives the live queue.
// The history used to keep every job that ever left the queue, in memory
// and in each snapshot: a pool running for months grew without bound.
func TestHistoryKeptWithinMaxHistory(t *testing.T) {
	_, bus := eventstest.Bus(t)
	dir := t.TempDir()
	s, err := New(Config{Dir: dir, Bus: bus, AdInterval: time.Hour, PolicyInterval: 20 * time.Millisecond, MaxHistory: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := runScheddReady(t, s)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}

	const clusters = 8
	logOf := func(c int) string { return filepath.Join(dir, fmt.Sprintf("c%d.log", c)) }
	for c := 1; c <= clusters; c++ {
		sub := events.ClusterSubmittedPayload{SubmitID: fmt.Sprintf("s%d", c), Owner: me.Username, Iwd: dir, NumProcs: 1,
			UserLog: logOf(c), Attrs: []events.Attr{{Name: "JobUniverse", Expr: "13"}, {Name: "JobVMType", Expr: `"sim"`}}}
		if _, err := s.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
			ps, err := PrepareSubmit(SubmitCmd{Payload: sub})
			if err != nil {
				return nil, err
			}
			_, evs, err := DecidePreparedSubmit(s.q, ps)
			return evs, err
		}); err != nil {
			t.Fatal(err)
		}
		// As a claim does: the cluster's ad is parsed.
		s.View(func(q *Queue) { q.Clusters[c].Ad() })
		if _, err := s.loop.DoEvents(ctx, func(now time.Time) ([]events.Event, error) {
			evs, _, err := DecideAction(s.q, ActionCmd{Kind: ActRemove, By: me.Username, Select: Selector{Cluster: c, Proc: -1}, Now: now})
			return evs, err
		}); err != nil {
			t.Fatal(err)
		}
	}

	// A cluster that left the queue keeps its ad as text, not parsed.
	s.View(func(q *Queue) {
		for _, j := range q.History {
			if j.Cluster.Lazy.Built() {
				t.Errorf("job %s left the queue with its cluster's ad still parsed", j.ID)
			}
			if got, _ := j.Ad(q.Name).EvalString("JobVMType"); got != "sim" {
				t.Errorf("job %s: JobVMType %q after the ad is parsed again, want sim", j.ID, got)
			}
		}
	})

	var hist []string
	var submits, userLogs int
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		hist = hist[:0]
		s.View(func(q *Queue) {
			for _, j := range q.History {
				hist = append(hist, j.ID.String())
			}
			submits, userLogs = len(q.Submits), len(q.UserLogs)
		})
		if len(hist) <= 3 || time.Now().After(deadline) {
			break
		}
	}
	if got := strings.Join(hist, " "); got != "6.0 7.0 8.0" {
		t.Fatalf("history %q, want the 3 newest jobs, 6.0 7.0 8.0", got)
	}
	if submits != 3 || userLogs != 3 {
		t.Errorf("the queue keeps %d submit ids and %d user logs, want 3 each (the history's clusters')", submits, userLogs)
	}
	for c := 1; c <= clusters; c++ {
		b, err := os.ReadFile(logOf(c))
		if err != nil || !strings.Contains(string(b), "009 (") {
			t.Errorf("user log of cluster %d has no 009 (err %v):\n%s", c, err, b)
		}
	}

	// The trim is an event of the log: replay from zero forgets the same
	// jobs.
	var live []byte
	var idx uint64
	s.View(func(q *Queue) {
		idx = s.log.LastIndex()
		live, err = MarshalSnapshot(q, idx)
	})
	if err != nil {
		t.Fatal(err)
	}
	q, err := Replay(s.log, s.cfg.Name, idx)
	if err != nil {
		t.Fatal(err)
	}
	replayed, err := MarshalSnapshot(q, idx)
	if err != nil {
		t.Fatal(err)
	}
	if string(replayed) != string(live) {
		t.Errorf("replayed from zero:\n%s\nlive:\n%s", replayed, live)
	}
}
