package schedd

import (
	"testing"

	"github.com/vmpool/vmpool/schedd/userlog"
)

// TestLogRuns: a batch's user log events go out as appends of one file
// and one owner each, every file's events in the order they came; a log
// that two users share gets each one's events written as that user (they
// were all written as the first one's).
func TestLogRuns(t *testing.T) {
	ev := func(cluster int) userlog.Event { return userlog.Event{Cluster: cluster} }
	runs := logRuns([]logEntry{
		{"/shared.log", "root", ev(1)},
		{"/a.log", "alice", ev(2)},
		{"/shared.log", "root", ev(3)},
		{"/shared.log", "bob", ev(4)},
		{"/a.log", "alice", ev(5)},
		{"/shared.log", "root", ev(6)},
	})
	type want struct {
		path, owner string
		clusters    []int
	}
	wants := []want{
		{"/shared.log", "root", []int{1, 3}},
		{"/a.log", "alice", []int{2, 5}},
		{"/shared.log", "bob", []int{4}},
		{"/shared.log", "root", []int{6}},
	}
	if len(runs) != len(wants) {
		t.Fatalf("%d runs, want %d: %+v", len(runs), len(wants), runs)
	}
	for i, w := range wants {
		r := runs[i]
		var got []int
		for _, e := range r.evs {
			got = append(got, e.Cluster)
		}
		if r.path != w.path || r.owner != w.owner || len(got) != len(w.clusters) {
			t.Fatalf("run %d: %s as %s %v, want %s as %s %v", i, r.path, r.owner, got, w.path, w.owner, w.clusters)
		}
		for j := range got {
			if got[j] != w.clusters[j] {
				t.Fatalf("run %d: %v, want %v", i, got, w.clusters)
			}
		}
	}
}
