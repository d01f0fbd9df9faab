package events

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openTestLog(t *testing.T, dir string) *Log {
	t.Helper()
	l, err := OpenLog(dir, "schedd", LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLogAppendScanReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	l := openTestLog(t, dir)
	var in []Event
	for i := 0; i < 5; i++ {
		in = append(in, New("JobSubmitted", map[string]int{"i": i}).ForJob("schedd", JobID{i + 1, 0}))
	}
	// An input record from another daemon keeps its own source and seq.
	foreign := New("VMStarted", nil).ForJob("schedd", JobID{1, 0})
	foreign.Source, foreign.Seq = "startd1", 77
	in = append(in[:2], append([]Event{foreign}, in[2:]...)...)
	if !l.Consume("startd1", 77) {
		t.Fatal("first delivery reported as seen")
	}
	out, err := l.Append(in)
	if err != nil {
		t.Fatal(err)
	}
	wantSeq := []uint64{1, 2, 77, 3, 4, 5}
	for i, e := range out {
		if e.Seq != wantSeq[i] {
			t.Fatalf("event %d seq %d, want %d", i, e.Seq, wantSeq[i])
		}
	}
	if l.LastIndex() != 6 || l.LastSeq() != 5 {
		t.Fatalf("last index %d seq %d", l.LastIndex(), l.LastSeq())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openTestLog(t, dir)
	defer l.Close()
	if l.LastIndex() != 6 || l.LastSeq() != 5 {
		t.Fatalf("after reopen: last index %d seq %d", l.LastIndex(), l.LastSeq())
	}
	if l.Consume("startd1", 77) {
		t.Fatal("window not persisted: startd1:77 applied twice")
	}
	var got []string
	if err := l.Scan(3, func(idx uint64, e Event) error {
		got = append(got, fmt.Sprintf("%d:%s:%d", idx, e.Source, e.Seq))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[3:startd1:77 4:schedd:3 5:schedd:4 6:schedd:5]" {
		t.Fatalf("scan = %v", got)
	}
	// Appending continues the sequence.
	out, err = l.Append([]Event{New("JobRemoved", nil).ForJob("schedd", JobID{1, 0})})
	if err != nil || out[0].Seq != 6 {
		t.Fatalf("append after reopen: %v %v", out, err)
	}
}

func TestLogWait(t *testing.T) {
	l := openTestLog(t, t.TempDir())
	done := make(chan error, 1)
	go func() { done <- l.Wait(context.Background(), 0) }()
	if _, err := l.Append([]Event{New("X", nil)}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx, 1); err != context.DeadlineExceeded {
		t.Fatalf("wait with nothing new: %v", err)
	}
	go func() { done <- l.Wait(context.Background(), 1) }()
	l.Close()
	if err := <-done; err != ErrLogClosed {
		t.Fatalf("wait on closed log: %v", err)
	}
}

func TestLogMeta(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir)
	if v, err := l.MetaUint("x"); err != nil || v != 0 {
		t.Fatalf("unset meta: %v %v", v, err)
	}
	if err := l.SetMetaUint("x", 42, true); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = openTestLog(t, dir)
	defer l.Close()
	if v, err := l.MetaUint("x"); err != nil || v != 42 {
		t.Fatalf("meta after reopen: %v %v", v, err)
	}
}

func TestOpenLogRejectsBadName(t *testing.T) {
	if _, err := OpenLog(t.TempDir(), "a.b", LogOptions{}); err == nil {
		t.Fatal("daemon name with a dot accepted")
	}
}

func BenchmarkLogAppend(b *testing.B) {
	l, err := OpenLog(b.TempDir(), "schedd", LogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	batch := make([]Event, 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range batch {
			batch[j] = New("JobSubmitted", nil).ForJob("schedd", JobID{i + 1, j})
		}
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}

func TestSharedStore(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Log("startd1")
	b, _ := s.Log("startd2")
	if _, err := a.Append([]Event{New("X", nil), New("Y", nil)}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append([]Event{New("Z", nil)}); err != nil {
		t.Fatal(err)
	}
	a.Consume("schedd", 5)
	a.Append(nil)
	a.SetMetaUint("m", 3, true)
	a.Close()
	b.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenStore(dir, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, _ = s.Log("startd1")
	b, _ = s.Log("startd2")
	if a.LastIndex() != 2 || a.LastSeq() != 2 || b.LastIndex() != 1 || b.LastSeq() != 1 {
		t.Fatalf("logs mixed up: a %d/%d b %d/%d", a.LastIndex(), a.LastSeq(), b.LastIndex(), b.LastSeq())
	}
	var types []string
	b.Scan(1, func(_ uint64, e Event) error { types = append(types, e.Source+":"+e.Type); return nil })
	if fmt.Sprint(types) != "[startd2:Z]" {
		t.Fatalf("startd2's log holds %v", types)
	}
	if a.Consume("schedd", 5) || !b.Consume("schedd", 5) {
		t.Fatal("windows not kept per log")
	}
	if v, _ := a.MetaUint("m"); v != 3 {
		t.Fatalf("meta %d", v)
	}
	if v, _ := b.MetaUint("m"); v != 0 {
		t.Fatalf("meta leaked across logs: %d", v)
	}
	// The store says whose logs it holds (vmpool replay lists them).
	if srcs, err := s.Sources(); err != nil || fmt.Sprint(srcs) != "[startd1 startd2]" {
		t.Fatalf("Sources = %v, %v", srcs, err)
	}
}

func TestFailpointsParse(t *testing.T) {
	if f, err := ParseFailpoints("", "schedd"); f != nil || err != nil {
		t.Fatalf("empty spec: %v %v", f, err)
	}
	for _, bad := range []string{"nonsense", "loop-after-append@0", "loop-after-append@x", "/loop-after-append", "startd1/nonsense"} {
		if _, err := ParseFailpoints(bad, "schedd"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// Points aimed at another daemon are left out.
	if f, err := ParseFailpoints("startd1/loop-after-append, negotiator/consumer-before-ack@2", "schedd"); f != nil || err != nil {
		t.Fatalf("another daemon's points armed here: %v %v", f, err)
	}
	f, err := ParseFailpoints("loop-after-append@3, schedd/consumer-before-ack, startd1/outbox-after-publish", "schedd")
	if err != nil {
		t.Fatal(err)
	}
	var fired []string
	f.onFire = func(n string) { fired = append(fired, n) }
	for i := 0; i < 4; i++ {
		f.Hit("loop-after-append")
	}
	f.Hit("consumer-before-ack")
	f.Hit("outbox-after-publish")
	var nilF *Failpoints
	nilF.Hit("loop-after-append") // a nil set never fires
	if fmt.Sprint(fired) != "[loop-after-append consumer-before-ack]" {
		t.Fatalf("fired %v", fired)
	}
}

// TestIndexOfSeq: the index of each own event, found among input records
// of other sources; an absent or zero sequence is index 0.
func TestIndexOfSeq(t *testing.T) {
	l := tempLog(t)
	want := map[uint64]uint64{}
	for i := 1; i <= 30; i++ {
		e := New("Tick", nil)
		if i%3 == 0 {
			e.Source, e.Seq = "startd1", uint64(i) // an input record
		}
		out, err := l.Append([]Event{e})
		if err != nil {
			t.Fatal(err)
		}
		if out[0].Source == "schedd" {
			want[out[0].Seq] = l.LastIndex()
		}
	}
	for seq, idx := range want {
		if got, err := l.IndexOfSeq(seq); err != nil || got != idx {
			t.Errorf("IndexOfSeq(%d) = %d, %v; want %d", seq, got, err, idx)
		}
	}
	for _, seq := range []uint64{0, 21, 1000} {
		if got, err := l.IndexOfSeq(seq); err != nil || got != 0 {
			t.Errorf("IndexOfSeq(%d) = %d, %v; want 0", seq, got, err)
		}
	}
}

// Scan reads ahead on a goroutine of its own, in batches: across batch
// boundaries every record comes once and in order, and fn's ErrStop or
// error ends the scan there.
func TestScanAcrossBatches(t *testing.T) {
	l := openTestLog(t, filepath.Join(t.TempDir(), "log"))
	defer l.Close()
	n := scanBatchLen*(scanAhead+2) + 7
	var in []Event
	for i := range n {
		in = append(in, New("JobSubmitted", map[string]int{"i": i}).ForJob("schedd", JobID{i + 1, 0}))
	}
	if _, err := l.Append(in); err != nil {
		t.Fatal(err)
	}
	next := uint64(1)
	if err := l.Scan(1, func(idx uint64, e Event) error {
		if idx != next || e.Cluster != int(idx) {
			return fmt.Errorf("record %d (cluster %d) where %d was next", idx, e.Cluster, next)
		}
		next++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if next != uint64(n)+1 {
		t.Fatalf("scan gave %d records of %d", next-1, n)
	}
	for _, stopAt := range []uint64{1, scanBatchLen, scanBatchLen + 1, uint64(n)} {
		errBoom := fmt.Errorf("boom")
		for _, want := range []error{ErrStop, errBoom} {
			var seen uint64
			err := l.Scan(1, func(idx uint64, e Event) error {
				seen = idx
				if idx == stopAt {
					return want
				}
				return nil
			})
			if (want == ErrStop && err != nil) || (want == errBoom && err != errBoom) || seen != stopAt {
				t.Fatalf("stop at %d with %v: scan returned %v after record %d", stopAt, want, err, seen)
			}
		}
	}
}

// The outbox reads the newest records from memory: scanRecent gives what
// Scan gives, with the bytes Append stored, for as long as the log holds
// them all; after forgetRecent, after a batch too big to keep, or past
// maxRecent records it says no, and the outbox reads Pebble.
func TestScanRecentIsScan(t *testing.T) {
	l := tempLog(t)
	appendN := func(n int) {
		t.Helper()
		var evs []Event
		for i := range n {
			evs = append(evs, New("JobSubmitted", map[string]int{"i": i}).ForJob("schedd", JobID{i + 1, 0}))
			if i%3 == 1 { // an input record among them
				in := New("VMStarted", nil).ForJob("schedd", JobID{i + 1, 0})
				in.Source, in.Seq = "startd1", l.LastIndex()+uint64(i)+1
				l.Consume(in.Source, in.Seq)
				evs = append(evs, in)
			}
		}
		if _, err := l.Append(evs); err != nil {
			t.Fatal(err)
		}
	}
	// same holds scanRecent(after) to Scan(after+1), or reports that
	// scanRecent declined.
	same := func(after uint64) bool {
		t.Helper()
		var fromMem []string
		ok, err := l.scanRecent(after, func(idx uint64, e Event, data []byte) error {
			fromMem = append(fromMem, fmt.Sprintf("%d %s", idx, data))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if len(fromMem) > 0 {
				t.Fatalf("scanRecent(%d) declined after calling fn", after)
			}
			return false
		}
		var fromDisk []string
		if err := l.Scan(after+1, func(idx uint64, e Event) error {
			data, err := Encode(e)
			fromDisk = append(fromDisk, fmt.Sprintf("%d %s", idx, data))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(fromMem) != fmt.Sprint(fromDisk) {
			t.Fatalf("after %d:\nmemory %v\nPebble %v", after, fromMem, fromDisk)
		}
		return true
	}
	appendN(1)
	appendN(5)
	appendN(2)
	last := l.LastIndex()
	for after := range last + 2 {
		if !same(after) {
			t.Fatalf("records after %d of %d not in memory", after, last)
		}
	}
	l.forgetRecent(4)
	if same(3) {
		t.Fatal("record 4 still in memory after forgetRecent(4)")
	}
	for after := uint64(4); after <= last; after++ {
		if !same(after) {
			t.Fatalf("records after %d not in memory", after)
		}
	}
	// All published: none stays, and what comes next is kept again.
	l.forgetRecent(last)
	if same(last - 1) {
		t.Fatalf("record %d still in memory after forgetRecent(%d)", last, last)
	}
	appendN(2)
	if !same(last) || !same(l.LastIndex()-1) {
		t.Fatal("records appended after all were forgotten not in memory")
	}
	last = l.LastIndex()
	appendN(maxRecent + 1) // too many to keep
	if same(last) {
		t.Fatal("a batch of more than maxRecent kept in memory")
	}
	last = l.LastIndex()
	for range maxRecent + 10 {
		appendN(1)
	}
	if same(last) {
		t.Fatalf("more than %d records in memory", maxRecent)
	}
	if !same(l.LastIndex()-maxRecent) || !same(l.LastIndex()-1) {
		t.Fatalf("the newest %d records not in memory", maxRecent)
	}
	if got := len(l.recent); got != maxRecent {
		t.Fatalf("%d records in memory, want %d", got, maxRecent)
	}
}

// A long scan (read and decoded ahead on a goroutine of its own) that
// meets a record that does not decode gives every record before it, in
// order, and then the error, naming the record.
func TestLongScanStopsAtBadRecord(t *testing.T) {
	l := openTestLog(t, filepath.Join(t.TempDir(), "log"))
	defer l.Close()
	n := scanBatchLen*3 + 5
	var in []Event
	for i := range n {
		in = append(in, New("JobSubmitted", nil).ForJob("schedd", JobID{i + 1, 0}))
	}
	if _, err := l.Append(in); err != nil {
		t.Fatal(err)
	}
	bad := uint64(scanBatchLen + 10)
	if err := l.db.Set(l.eventKey(bad), []byte(`{"v":1,"src":`), nil); err != nil {
		t.Fatal(err)
	}
	var seen uint64
	err := l.Scan(1, func(idx uint64, e Event) error {
		if idx != seen+1 || e.Cluster != int(idx) {
			return fmt.Errorf("record %d (cluster %d) after %d", idx, e.Cluster, seen)
		}
		seen = idx
		return nil
	})
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), fmt.Sprintf("record %d", bad)) || seen != bad-1 {
		t.Fatalf("scan returned %v after record %d; want ErrMalformed naming record %d after %d", err, seen, bad, bad-1)
	}
}
