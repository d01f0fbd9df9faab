package events

import (
	"context"
	"errors"
	"testing"
	"time"
)

// tempLog opens a schedd log in a temporary directory, closed when the
// test ends.
func tempLog(t *testing.T) *Log {
	t.Helper()
	l, err := OpenLog(t.TempDir(), "schedd", LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// runLoop runs loop until the test ends (it has stopped before the
// test's earlier cleanups, such as closing its log, run) and returns the
// context its commands run in.
func runLoop(t *testing.T, loop *Loop) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); loop.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return ctx
}

// commitOne commits one event of type typ through loop.
func commitOne(ctx context.Context, loop *Loop, typ string) error {
	_, err := loop.DoEvents(ctx, func(time.Time) ([]Event, error) { return []Event{New(typ, nil)}, nil })
	return err
}

// TestLoopReadsFreeSpaceSparingly: with ample room the loop reads its
// disk's free space once per freeRecheck, however often it commits; near
// the reserve it reads it at every commit, refuses below it, and takes
// commands again as soon as room is back.
func TestLoopReadsFreeSpaceSparingly(t *testing.T) {
	const reserve = 1 << 20
	free, reads := int64(100*reserve), 0
	loop := NewLoop(LoopConfig{Log: tempLog(t), Apply: func(Event) {}, MinFree: reserve})
	loop.statfs = func(string) (int64, bool) { reads++; return free, true }
	ctx := runLoop(t, loop)
	do := func() error { return commitOne(ctx, loop, "JobSubmitted") }
	start := time.Now()
	for range 20 {
		if err := do(); err != nil {
			t.Fatal(err)
		}
	}
	if quick := time.Since(start) < freeRecheck; quick && reads != 1 {
		t.Fatalf("20 commits within %s read the free space %d times, want once", freeRecheck, reads)
	}
	time.Sleep(freeRecheck)
	before := reads
	if err := do(); err != nil || reads != before+1 {
		t.Fatalf("after %s: %v, %d reads, want one more", freeRecheck, err, reads-before)
	}
	// Near the reserve: every commit reads it (the next reading is
	// fresh, so the change shows after freeRecheck at most).
	free = reserve + reserve/2
	time.Sleep(freeRecheck)
	before = reads
	for range 3 {
		if err := do(); err != nil {
			t.Fatal(err)
		}
	}
	if reads != before+3 {
		t.Fatalf("near the reserve: %d reads for 3 commits", reads-before)
	}
	free = reserve / 2
	if err := do(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("below the reserve: %v, want ErrDiskFull", err)
	}
	free = 100 * reserve
	if err := do(); err != nil {
		t.Fatalf("room back: %v", err)
	}
}

// TestStoreLoopsShareFreeSpace: the loops of logs in one Store (sim
// startds by the thousand) read the disk's free space once per
// freeRecheck between them, from the store's directory; near the reserve
// each reads it at every commit again.
func TestStoreLoopsShareFreeSpace(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStore(dir, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the loops and their logs (cleanups run last first)
	const reserve = 1 << 20
	free, reads := int64(100*reserve), 0
	var dirs []string
	statfs := func(d string) (int64, bool) { reads++; dirs = append(dirs, d); return free, true }
	var loops []*Loop
	var ctx context.Context
	for _, name := range []string{"sim1", "sim2", "sim3"} {
		l, err := st.Log(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		loop := NewLoop(LoopConfig{Log: l, Apply: func(Event) {}, MinFree: reserve})
		loop.statfs = statfs
		ctx = runLoop(t, loop)
		loops = append(loops, loop)
	}
	do := func(loop *Loop) error { return commitOne(ctx, loop, "VMStarted") }
	// The loops run one at a time here (each DoEvents waits for its
	// commit), so reads is not raced.
	start := time.Now()
	for range 5 {
		for _, loop := range loops {
			if err := do(loop); err != nil {
				t.Fatal(err)
			}
		}
	}
	if quick := time.Since(start) < freeRecheck; quick && reads != 1 {
		t.Fatalf("15 commits of 3 loops within %s read the free space %d times, want once", freeRecheck, reads)
	}
	for _, d := range dirs {
		if d != dir {
			t.Fatalf("read the free space of %q, want the store's directory %q", d, dir)
		}
	}
	free = reserve + reserve/2
	time.Sleep(freeRecheck)
	for _, loop := range loops {
		if err := do(loop); err != nil {
			t.Fatal(err)
		}
	}
	before := reads
	for _, loop := range loops {
		if err := do(loop); err != nil {
			t.Fatal(err)
		}
	}
	if reads != before+3 {
		t.Fatalf("near the reserve: %d reads for 3 commits of 3 loops, want 3", reads-before)
	}
	free = reserve / 2
	for _, loop := range loops {
		if err := do(loop); !errors.Is(err, ErrDiskFull) {
			t.Fatalf("below the reserve: %v, want ErrDiskFull", err)
		}
	}
}

// TestLoopGroupsBeyondItsQueue: commands that wait to send while the
// loop's channel is full (more than loopQueue) still go into the loop's
// next group, up to MaxGroup, rather than one small group after another.
func TestLoopGroupsBeyondItsQueue(t *testing.T) {
	groups := make(chan int, 1000)
	loop := NewLoop(LoopConfig{Log: tempLog(t), Apply: func(Event) {}, After: func(evs []Event) { groups <- len(evs) }})
	if cap(loop.ops) != loopQueue {
		t.Fatalf("the loop's channel holds %d, want %d", cap(loop.ops), loopQueue)
	}
	ctx := runLoop(t, loop)
	// The loop is busy with a first command while the others arrive.
	release := make(chan struct{})
	busy := make(chan struct{})
	go loop.DoEvents(ctx, func(time.Time) ([]Event, error) {
		close(busy)
		<-release
		return []Event{New("JobSubmitted", nil)}, nil
	})
	<-busy
	const n = 4 * loopQueue
	errs := make(chan error, n)
	for range n {
		go func() { errs <- commitOne(ctx, loop, "JobSubmitted") }()
	}
	for len(loop.ops) < loopQueue {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the rest wait to send
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if first := <-groups; first != 1 {
		t.Fatalf("first group of %d commands, want the busy one alone", first)
	}
	biggest := 0
	for len(groups) > 0 {
		biggest = max(biggest, <-groups)
	}
	if biggest <= loopQueue {
		t.Fatalf("largest group %d commands of %d waiting: no group took more than the channel holds (%d)", biggest, n, loopQueue)
	}
}
