package events

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble"
)

// Log is a daemon's append-only event log in Pebble: the source of truth
// every projection of the daemon (its queue, its claims) is rebuilt from.
//
// A log holds records in index order. A record is either one of the
// daemon's own events (Source is the log's source; Seq is stamped gapless
// at append) or an input event another daemon published that this daemon
// chose to keep verbatim for replay. Beside the records the log keeps, for
// each source this daemon consumes, the Window of sequence numbers already
// applied, written in the same batch as what was derived from them.
//
// # Concurrency
//
// Append, Consume and SetMeta must be called from one goroutine (the
// daemon's loop). Scan, LastIndex, Wait and Meta are safe from any
// goroutine.
//
// # Layout
//
//	'e' idx(8, big endian)  -> encoded Event
//	'w' source              -> Window
//	'm' name                -> meta value (e.g. the outbox's published index)
//
// In a shared Store every key starts with the log's source and a zero
// byte, so that thousands of simulated startds can share one Pebble.
type Log struct {
	db      *pebble.DB
	dir     string
	source  string
	prefix  []byte // key namespace in a shared Store ("" for a log's own DB)
	shared  bool
	lastIdx atomic.Uint64
	lastSeq atomic.Uint64 // newest own sequence on disk
	nextSeq uint64        // newest own sequence stamped (>= lastSeq)
	windows map[string]*Window
	dirty   map[string]bool
	tooOld  map[string]uint64 // per source: events dropped below the window
	logger  *slog.Logger
	// disk is the free-space reading of the log's disk, shared by every
	// log of a Store (loops read it through freeSpace).
	disk *diskReading

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every append
	// recent holds the records appended since the outbox last published
	// (at most maxRecent, the newest), as appended: the outbox reads its
	// events from here, not back from Pebble, and publishes the bytes
	// Append wrote. Guarded by mu.
	recent []record
}

// record is one appended record: its index, event and encoding.
type record struct {
	idx  uint64
	e    Event
	data []byte
}

// maxRecent bounds Log.recent; an outbox further behind reads Pebble.
// A schedd's commit of one consumer batch (1,024 events in, its own out)
// or a negotiator's cycle easily holds over a thousand records: 1,024
// sent those to Pebble and back (1.3% of a full-size match's CPU). The
// outbox forgets records once published, so only a backlog fills it.
const maxRecent = 8192

// LogOptions configures OpenLog.
type LogOptions struct {
	Logger *slog.Logger
	// ReadOnly opens the log for replay tools while no daemon runs.
	ReadOnly bool
}

const (
	prefixEvent  = 'e'
	prefixWindow = 'w'
	prefixMeta   = 'm'
)

// ErrLogClosed is returned by Wait when the log was closed.
var ErrLogClosed = errors.New("events: log closed")

// OpenLog opens (creating it if needed) the log of daemon source in dir.
func OpenLog(dir, source string, opt LogOptions) (*Log, error) {
	if err := CheckName("daemon", source); err != nil {
		return nil, fmt.Errorf("open event log %s: %w", dir, err)
	}
	logger := opt.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if !opt.ReadOnly {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open event log %s: %w", dir, err)
		}
	}
	db, err := openPebble(dir, opt, 0, logger)
	if err != nil {
		return nil, fmt.Errorf("open event log %s: %w", dir, err)
	}
	l := newLog(db, dir, source, nil, &diskReading{dir: dir}, logger)
	if err := l.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open event log %s: %w", dir, err)
	}
	return l, nil
}

// openPebble opens a log's Pebble; memTable sizes its memtables (0:
// Pebble's default, 4 MiB).
func openPebble(dir string, opt LogOptions, memTable uint64, logger *slog.Logger) (*pebble.DB, error) {
	o := &pebble.Options{
		Logger:           pebbleLogger{logger},
		ReadOnly:         opt.ReadOnly,
		ErrorIfNotExists: opt.ReadOnly,
		MemTableSize:     memTable,
	}
	// Blocks of 32 KiB where Pebble's default is 4: a log is read front
	// to back (a replay, an outbox), and each block read costs a cache
	// allocation and a decompression call of its own. Tables written
	// before keep their blocks; Pebble reads both.
	o.Levels = make([]pebble.LevelOptions, 7)
	for i := range o.Levels {
		o.Levels[i].BlockSize = 32 << 10
	}
	db, err := pebble.Open(dir, o)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, fmt.Errorf("it is in use by another process (the daemon of this log is running: a vmpool up on this home, "+
			"or a vmpool schedd, negotiator or startd with this --home and name): stop that one, "+
			"or give this one a home of its own (--home) or a name of its own (--name): %w", err)
	}
	return db, err
}

func newLog(db *pebble.DB, dir, source string, prefix []byte, disk *diskReading, logger *slog.Logger) *Log {
	return &Log{db: db, dir: dir, source: source, prefix: prefix, shared: prefix != nil, disk: disk,
		windows: map[string]*Window{}, dirty: map[string]bool{}, logger: logger, changed: make(chan struct{})}
}

// Store is one Pebble database holding the logs of many daemons, each
// under its own key prefix: for simulated startds by the thousand, where a
// Pebble each would cost too much memory. Appends of different logs are
// group-committed by Pebble.
type Store struct {
	db     *pebble.DB
	dir    string
	logger *slog.Logger
	disk   *diskReading // its logs' loops share one reading of the free space
}

// storeMemTable sizes a Store's memtables. Its logs' keys interleave
// (each begins with its daemon's name), so every table a memtable flushes
// overlaps every other, and Pebble rewrites them all as they compact: with
// the default 4 MiB, compactions were 4.6% of a full-size match
// benchmark's CPU. Pebble grows a memtable to this size from 256 KiB, so a
// store that takes few writes does not hold it.
const storeMemTable = 64 << 20

// OpenStore opens (creating it if needed) a shared store in dir.
func OpenStore(dir string, opt LogOptions) (*Store, error) {
	logger := opt.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if !opt.ReadOnly {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open event store %s: %w", dir, err)
		}
	}
	db, err := openPebble(dir, opt, storeMemTable, logger)
	if err != nil {
		return nil, fmt.Errorf("open event store %s: %w", dir, err)
	}
	return &Store{db: db, dir: dir, logger: logger, disk: &diskReading{dir: dir}}, nil
}

// Log opens the log of daemon source in the store. Closing the log leaves
// the store open.
func (s *Store) Log(source string) (*Log, error) {
	if err := CheckName("daemon", source); err != nil {
		return nil, fmt.Errorf("open event log %s in %s: %w", source, s.dir, err)
	}
	l := newLog(s.db, s.dir+"#"+source, source, append([]byte(source), 0), s.disk, s.logger)
	if err := l.load(); err != nil {
		return nil, fmt.Errorf("open event log %s in %s: %w", source, s.dir, err)
	}
	return l, nil
}

// Sources lists the daemons whose logs the store holds, in key order.
func (s *Store) Sources() ([]string, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("list the logs of event store %s: %w", s.dir, err)
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; {
		k := it.Key()
		i := bytes.IndexByte(k, 0)
		if i <= 0 {
			ok = it.Next()
			continue
		}
		out = append(out, string(k[:i]))
		// Past every key of this source: its name, then a byte above 0.
		ok = it.SeekGE(append(append([]byte(nil), k[:i]...), 1))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("list the logs of event store %s: %w", s.dir, err)
	}
	return out, nil
}

// Close closes the store; its logs must be closed first.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close event store %s: %w", s.dir, err)
	}
	return nil
}

// key builds a key of the log's namespace: prefix, kind, rest.
func (l *Log) key(kind byte, rest []byte) []byte {
	k := make([]byte, 0, len(l.prefix)+1+len(rest))
	k = append(k, l.prefix...)
	k = append(k, kind)
	return append(k, rest...)
}

// bounds are the iterator bounds of one kind of key.
func (l *Log) bounds(kind byte) *pebble.IterOptions {
	return &pebble.IterOptions{LowerBound: l.key(kind, nil), UpperBound: l.key(kind+1, nil)}
}

func (l *Log) eventKey(idx uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], idx)
	return l.key(prefixEvent, b[:])
}

// idxOf reads the index from an event key.
func (l *Log) idxOf(k []byte) (uint64, bool) {
	if len(k) != len(l.prefix)+9 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[len(l.prefix)+1:]), true
}

func (l *Log) load() error {
	it, err := l.db.NewIter(l.bounds(prefixEvent))
	if err != nil {
		return err
	}
	if it.Last() {
		idx, ok := l.idxOf(it.Key())
		if !ok {
			it.Close()
			return fmt.Errorf("record key %x: %w", it.Key(), ErrMalformed)
		}
		l.lastIdx.Store(idx)
	}
	// The last own sequence is in the newest own record; walk back to it.
	for ok := it.Last(); ok; ok = it.Prev() {
		e, err := Decode(it.Value())
		if err != nil {
			it.Close()
			return fmt.Errorf("record %x: %w", it.Key(), err)
		}
		if e.Source == l.source {
			l.lastSeq.Store(e.Seq)
			break
		}
	}
	l.nextSeq = l.lastSeq.Load()
	if err := it.Close(); err != nil {
		return err
	}
	wit, err := l.db.NewIter(l.bounds(prefixWindow))
	if err != nil {
		return err
	}
	for ok := wit.First(); ok; ok = wit.Next() {
		src := string(wit.Key()[len(l.prefix)+1:])
		w := new(Window)
		if err := w.UnmarshalBinary(wit.Value()); err != nil {
			wit.Close()
			return fmt.Errorf("window of %s: %w", src, err)
		}
		l.windows[src] = w
	}
	return wit.Close()
}

// Source is the name of the daemon whose log this is.
func (l *Log) Source() string { return l.source }

// Dir is where the log lives.
func (l *Log) Dir() string { return l.dir }

// LastIndex is the index of the newest record (0 when empty).
func (l *Log) LastIndex() uint64 { return l.lastIdx.Load() }

// LastSeq is the sequence of the newest own event (0 when none).
func (l *Log) LastSeq() uint64 { return l.lastSeq.Load() }

// Consume reports whether the event seq of source is new to this daemon,
// and if so marks it applied. The mark reaches disk with the next Append,
// which the caller must make before it acknowledges the message.
func (l *Log) Consume(source string, seq uint64) bool {
	w := l.windows[source]
	if w == nil {
		w = new(Window)
		l.windows[source] = w
	}
	if w.Seen(seq) {
		if w.High-seq >= WindowSize {
			// Too old to tell whether it was applied: taken as applied.
			// Events published again after a bus lost them are; one
			// redelivered late (its first delivery lost) would not be,
			// and what it said is lost here: say so.
			if l.tooOld == nil {
				l.tooOld = map[string]uint64{}
			}
			l.tooOld[source]++
			if n := l.tooOld[source]; n == 1 || n%1000 == 0 {
				l.logger.Warn("dropped an event older than the window of events applied (taken as applied before)", "source", source,
					"seq", seq, "newest_applied", w.High, "window", WindowSize, "dropped_so_far", n)
			}
		}
		return false
	}
	w.Mark(seq)
	l.dirty[source] = true
	return true
}

// Applied reports the highest sequence of source applied so far.
func (l *Log) Applied(source string) uint64 {
	if w := l.windows[source]; w != nil {
		return w.High
	}
	return 0
}

// Stamp makes e one of this log's own events: it sets the source, the
// next sequence number and the schema version. Events of another source
// are left alone (they are input records).
func (l *Log) Stamp(e *Event) {
	if e.V == 0 {
		e.V = Version
	}
	if (e.Source == "" || e.Source == l.source) && e.Seq == 0 {
		l.nextSeq++
		e.Source, e.Seq = l.source, l.nextSeq
	}
}

// Append writes evs and every window changed since the last Append in one
// synced batch. Own events not yet stamped are stamped (see Stamp); other
// events are kept as input records. It returns the events as stored. An
// error leaves the daemon's in-memory state ahead of its log: the caller
// must stop.
func (l *Log) Append(evs []Event) ([]Event, error) {
	if len(evs) == 0 && len(l.dirty) == 0 {
		return nil, nil
	}
	b := l.db.NewBatch()
	defer b.Close()
	// recs: the records for recent, unless they are too many to keep.
	var recs []record
	keep := len(evs) <= maxRecent
	if keep {
		recs = make([]record, 0, len(evs))
	}
	idx := l.lastIdx.Load()
	seq := l.lastSeq.Load()
	for i := range evs {
		e := &evs[i]
		l.Stamp(e)
		if e.Source == l.source {
			seq = max(seq, e.Seq)
		}
		data, err := Encode(*e)
		if err != nil {
			return nil, fmt.Errorf("append to %s: %w", l.dir, err)
		}
		idx++
		if err := b.Set(l.eventKey(idx), data, nil); err != nil {
			return nil, fmt.Errorf("append to %s: %w", l.dir, err)
		}
		if keep {
			recs = append(recs, record{idx, *e, data})
		}
	}
	for src := range l.dirty {
		v, _ := l.windows[src].MarshalBinary()
		if err := b.Set(l.key(prefixWindow, []byte(src)), v, nil); err != nil {
			return nil, fmt.Errorf("append to %s: %w", l.dir, err)
		}
	}
	if err := l.db.Apply(b, pebble.Sync); err != nil {
		return nil, fmt.Errorf("append %d events to %s: %w", len(evs), l.dir, err)
	}
	clear(l.dirty)
	l.lastSeq.Store(seq)
	l.lastIdx.Store(idx)
	l.mu.Lock()
	switch {
	case !keep:
		l.recent = nil // all too new to keep: the outbox reads Pebble
	case len(l.recent)+len(recs) > maxRecent:
		l.recent = append(l.recent[len(l.recent)+len(recs)-maxRecent:], recs...)
	default:
		l.recent = append(l.recent, recs...)
	}
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	return evs, nil
}

// scanRecent calls fn with each record after index after, in order, with
// the bytes Append stored, if the log still holds them all in memory; it
// reports false, having called nothing, if not (Scan reads them then).
// The records' events share their payloads with the log: fn must not
// change them.
func (l *Log) scanRecent(after uint64, fn func(idx uint64, e Event, data []byte) error) (bool, error) {
	l.mu.Lock()
	last := l.lastIdx.Load()
	if after >= last {
		l.mu.Unlock()
		return true, nil
	}
	if len(l.recent) == 0 || l.recent[0].idx > after+1 {
		l.mu.Unlock()
		return false, nil
	}
	recs := l.recent[after+1-l.recent[0].idx:]
	l.mu.Unlock()
	for _, r := range recs {
		if err := fn(r.idx, r.e, r.data); err != nil {
			if errors.Is(err, ErrStop) {
				return true, nil
			}
			return true, err
		}
	}
	return true, nil
}

// forgetRecent drops the records up to index upTo from memory (the
// outbox published them).
func (l *Log) forgetRecent(upTo uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recent) == 0 || l.recent[0].idx > upTo {
		return
	}
	n := int(min(upTo-l.recent[0].idx+1, uint64(len(l.recent))))
	if n == len(l.recent) {
		l.recent = nil // the array goes with the records
		return
	}
	// The same array, from the first record kept: a scanRecent reading
	// the records after upTo keeps its view (Append only ever writes
	// past the end), and no copy per publish of up to maxRecent records.
	l.recent = l.recent[n:]
}

// Wait blocks until the log holds a record after index after, ctx is done,
// or the log is closed.
func (l *Log) Wait(ctx context.Context, after uint64) error {
	for {
		l.mu.Lock()
		ch := l.changed
		l.mu.Unlock()
		if ch == nil {
			return ErrLogClosed
		}
		if l.lastIdx.Load() > after {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Scan calls fn for each record with index from..LastIndex, in order; fn
// returning a non-nil error stops the scan with that error. ErrStop stops it
// without error.
//
// A goroutine of its own reads Pebble and decodes the records, a batch
// ahead of fn: a replay (Pebble's iterator and decoding on one side,
// applying on the other) then runs on two CPUs.
func (l *Log) Scan(from uint64, fn func(idx uint64, e Event) error) error {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: l.eventKey(from), UpperBound: l.key(prefixEvent+1, nil)})
	if err != nil {
		return fmt.Errorf("scan %s: %w", l.dir, err)
	}
	// deliver hands a batch's records to fn; end: the scan is over (fn
	// stopped it, a record did not decode, or no batch follows).
	deliver := func(b scanBatch) (end bool, err error) {
		for i, e := range b.evs {
			if err := fn(b.idx[i], e); err != nil {
				if errors.Is(err, ErrStop) {
					return true, nil
				}
				return true, err
			}
		}
		return b.last, b.err
	}
	if last := l.LastIndex(); last < from || last-from < scanBatchLen {
		// A short scan (an outbox's newest events) is read here, in
		// batches sized to it: a goroutine would cost more than it saves.
		defer it.Close()
		size := 0
		if last >= from {
			size = int(last - from + 1)
		}
		for ok := it.First(); ; {
			var b scanBatch
			b, ok = l.readBatch(it, ok, size, nil)
			if end, err := deliver(b); end || err != nil {
				return err
			}
		}
	}
	batches := make(chan scanBatch, scanAhead)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(batches)
		defer it.Close()
		ns := newNames()
		for ok := it.First(); ; {
			var b scanBatch
			b, ok = l.readBatch(it, ok, scanBatchLen, ns)
			select {
			case batches <- b:
			case <-stop:
				return
			}
			if b.last {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	for b := range batches {
		if end, err := deliver(b); end || err != nil {
			return err
		}
	}
	return nil
}

// scanAhead is the batches Scan's reader may decode ahead of fn; scanBatchLen
// the records in one.
const (
	scanAhead    = 4
	scanBatchLen = 256
)

type scanBatch struct {
	idx  []uint64
	evs  []Event
	err  error // after the records: the scan ends with it
	last bool  // no batch follows
}

// record decodes the record at it, its names from ns (see decodeNamed).
func (l *Log) record(it *pebble.Iterator, ns *names) (uint64, Event, error) {
	idx, _ := l.idxOf(it.Key())
	e, err := decodeNamed(it.Value(), ns, true)
	if err != nil {
		return idx, e, fmt.Errorf("scan %s: record %d: %w", l.dir, idx, err)
	}
	return idx, e, nil
}

// readBatch reads and decodes up to scanBatchLen records from it, starting
// at its current position (ok: it has one), into a batch made for size
// records, the events' names from ns (nil: copied); ok after is the same
// for the next batch.
func (l *Log) readBatch(it *pebble.Iterator, ok bool, size int, ns *names) (scanBatch, bool) {
	size = min(size, scanBatchLen)
	b := scanBatch{idx: make([]uint64, 0, size), evs: make([]Event, 0, size)}
	for ; ok; ok = it.Next() {
		idx, e, err := l.record(it, ns)
		if err != nil {
			b.err, b.last = err, true
			return b, false
		}
		b.idx, b.evs = append(b.idx, idx), append(b.evs, e)
		if len(b.evs) == scanBatchLen {
			return b, it.Next()
		}
	}
	if err := it.Error(); err != nil {
		b.err = fmt.Errorf("scan %s: %w", l.dir, err)
	}
	b.last = true
	return b, false
}

// ErrStop ends a Scan early without error.
var ErrStop = errors.New("events: stop scan")

// Meta reads a meta value; ok is false when it was never set.
func (l *Log) Meta(name string) (val []byte, ok bool, err error) {
	v, closer, err := l.db.Get(l.key(prefixMeta, []byte(name)))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s meta %s: %w", l.dir, name, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), true, nil
}

// SetMeta writes a meta value. With sync false the write may be lost in a
// crash, which is fine for hints such as the outbox's published index.
func (l *Log) SetMeta(name string, val []byte, sync bool) error {
	opt := pebble.NoSync
	if sync {
		opt = pebble.Sync
	}
	if err := l.db.Set(l.key(prefixMeta, []byte(name)), val, opt); err != nil {
		return fmt.Errorf("write %s meta %s: %w", l.dir, name, err)
	}
	return nil
}

// MetaUint reads a meta value written by SetMetaUint (0 when unset).
func (l *Log) MetaUint(name string) (uint64, error) {
	v, ok, err := l.Meta(name)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("read %s meta %s: %d bytes: %w", l.dir, name, len(v), ErrMalformed)
	}
	return binary.BigEndian.Uint64(v), nil
}

// SetMetaUint writes an unsigned meta value.
func (l *Log) SetMetaUint(name string, v uint64, sync bool) error {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return l.SetMeta(name, b, sync)
}

// Close closes the log; closing it again is a no-op. Wait calls return
// ErrLogClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.changed == nil {
		l.mu.Unlock()
		return nil
	}
	close(l.changed)
	l.changed = nil
	l.mu.Unlock()
	if l.shared {
		return nil
	}
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("close event log %s: %w", l.dir, err)
	}
	return nil
}

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is Pebble's last word: it cannot go on (a write failed, most
// often because the disk is full). Say so plainly, wherever the daemon's
// logs go, and stop: a restart recovers from the write-ahead log.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble")
	fmt.Fprintf(os.Stderr, "vmpool: fatal error in an event log, stopping: %s\n(if the disk is full: free space, then restart; the log recovers everything it acknowledged)\n", msg)
	os.Exit(1)
}

// ownBack calls fn with each own event from index upTo (0: the newest)
// back to the oldest, until fn returns false.
func (l *Log) ownBack(upTo uint64, fn func(idx uint64, e Event) bool) error {
	opts := l.bounds(prefixEvent)
	if upTo > 0 {
		opts = &pebble.IterOptions{LowerBound: l.key(prefixEvent, nil), UpperBound: l.eventKey(upTo + 1)}
	}
	it, err := l.db.NewIter(opts)
	if err != nil {
		return fmt.Errorf("read %s: %w", l.dir, err)
	}
	defer it.Close()
	for ok := it.Last(); ok; ok = it.Prev() {
		e, err := Decode(it.Value())
		if err != nil {
			return fmt.Errorf("read %s: %w", l.dir, err)
		}
		if e.Source != l.source {
			continue
		}
		idx, _ := l.idxOf(it.Key())
		if !fn(idx, e) {
			break
		}
	}
	return it.Error()
}

// LastOwnAtOrBefore returns the sequence of the newest own event at or
// before index idx (0 if none).
func (l *Log) LastOwnAtOrBefore(idx uint64) (uint64, error) {
	if idx == 0 {
		return 0, nil
	}
	var seq uint64
	err := l.ownBack(idx, func(_ uint64, e Event) bool { seq = e.Seq; return false })
	return seq, err
}

// OldestOwnBetween returns the index of the oldest own event whose
// sequence is below before and whose time is after after (unix
// nanoseconds), reading back from the newest record (0 if none). It
// reads the records from the newest down to the first own event older
// than after.
func (l *Log) OldestOwnBetween(before uint64, after int64) (uint64, error) {
	var found uint64
	err := l.ownBack(0, func(idx uint64, e Event) bool {
		if e.Seq >= before {
			return true
		}
		if e.Time <= after {
			return false
		}
		found = idx
		return true
	})
	return found, err
}

// IndexOfSeq returns the index of own event seq (0 if seq is 0 or absent).
func (l *Log) IndexOfSeq(seq uint64) (uint64, error) {
	idx, _, err := l.OwnEvent(seq)
	return idx, err
}

// OwnEvent returns own event seq and its index (index 0 if seq is 0 or
// absent). It reads from the newest record back: the events asked for
// are recent.
func (l *Log) OwnEvent(seq uint64) (uint64, Event, error) {
	var found uint64
	var ev Event
	if seq == 0 {
		return 0, ev, nil
	}
	err := l.ownBack(0, func(idx uint64, e Event) bool {
		if e.Seq == seq {
			found, ev = idx, e
		}
		return e.Seq > seq
	})
	return found, ev, err
}
