package schedd

import (
	"testing"

	"github.com/vmpool/vmpool/events"
)

// TestWorkQueue: the reconciler's queue keeps every item it is given (a
// burst far beyond the 4,096 a channel held), each once however often it
// is scheduled, in the order it first came; an item taken may be queued
// again; and a token says when items may wait.
func TestWorkQueue(t *testing.T) {
	q := newWorkQueue()
	if _, ok := q.pop(); ok {
		t.Fatal("an empty queue gave an item")
	}
	const n = 20_000
	item := func(i int) workItem { return workItem{kind: workClaim, job: events.JobID{Cluster: 1, Proc: i}} }
	for i := range n {
		q.push(item(i))
		if i%3 == 0 {
			q.push(item(i)) // again, as a scan does for unfinished work
		}
	}
	q.push(workItem{kind: workFetch, job: events.JobID{Cluster: 1, Proc: 0}}) // other work on the same job
	select {
	case <-q.ready:
	default:
		t.Fatal("no token after pushes")
	}
	for i := range n {
		w, ok := q.pop()
		if !ok || w != item(i) {
			t.Fatalf("pop %d: %+v, %v; want %+v", i, w, ok, item(i))
		}
	}
	if w, ok := q.pop(); !ok || w.kind != workFetch {
		t.Fatalf("the fetch of job 1.0 was lost or merged with its claim: %+v, %v", w, ok)
	}
	if _, ok := q.pop(); ok {
		t.Fatal("items left after all were taken")
	}
	q.push(item(5)) // taken before, so queued again
	if w, ok := q.pop(); !ok || w != item(5) {
		t.Fatalf("an item taken and scheduled again: %+v, %v", w, ok)
	}
}
