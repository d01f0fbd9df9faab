package userlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

const defaultDedupWindow = 64 << 10

// ErrClosed is returned by a Writer's methods after Close.
var ErrClosed = errors.New("userlog: writer is closed")

// Writer appends events to one job event log file.
//
// # Ownership and concurrency
//
// A Writer assumes it is the only writer of its file (the schedd writes
// each user log from one place); its methods are safe for concurrent use
// by goroutines. Other processes may read the file at any time: every
// event reaches the file in one write, and a reader sees at worst a torn
// last event, which Parse drops.
//
// # Torn events
//
// If the file ends in an event cut short (a crash during a write),
// OpenWriter, and the next call after a failed write, cut that event off
// so that the next one starts on a line of its own. Text at the end of
// the file that does not begin like an event is never cut; the Writer
// starts a new line after it.
//
// # Idempotent appends
//
// The schedd writes user log events as it applies its own event log, and
// may crash after writing an event but before recording that it did; on
// restart it replays the events from the last position it recorded.
// AppendOnce makes that replay harmless: an event whose exact text (code,
// job id, time to the second or to the millisecond with SubSecond, and body)
// already appears among the complete events in the last window of the file
// is not written again. The window is FormatOptions.DedupWindow (64 KiB by
// default) and never smaller than the text being appended, so a replay of
// the batch that was being written when the writer crashed is always
// recognised. Identical texts are counted: if the window holds one copy
// and the call brings two, one is written.
//
// The contract for the caller: replay events in the order they were first
// appended, with the same fields (above all the same Time), starting no
// earlier than DedupWindow bytes' worth of events before the end of the
// file. Two distinct events with identical text are indistinguishable;
// since the text carries the job id and the time, that means the same kind
// of event for the same job within the same second.
type Writer struct {
	mu   sync.Mutex
	f    *os.File
	path string
	opt  FormatOptions

	size    int64    // file size after our last write; -1 when unknown
	recent  []string // complete events at the end of the file, oldest first
	covered int64    // bytes at the end of the file that recent describes
	closed  bool
}

// OpenWriter opens (creating it if need be) the log at path for appending,
// and repairs a torn last event.
func OpenWriter(path string, opt FormatOptions) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open user log: %w", err)
	}
	w := &Writer{f: f, path: path, opt: opt, size: -1}
	if err := w.load(w.window(0)); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

func (w *Writer) window(need int) int64 {
	n := w.opt.DedupWindow
	if n <= 0 {
		n = defaultDedupWindow
	}
	return int64(max(n, need))
}

// Append writes the events, in order, in one write, and syncs the file.
func (w *Writer) Append(events ...Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	texts, err := w.format(events)
	if err != nil {
		return err
	}
	if w.size < 0 {
		if err := w.load(w.window(0)); err != nil {
			return err
		}
	}
	return w.write(texts)
}

// AppendOnce writes, in order and in one synced write, the events whose
// text is not already at the end of the file (see Writer), and returns how
// many it wrote.
func (w *Writer) AppendOnce(events ...Event) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, ErrClosed
	}
	texts, err := w.format(events)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, t := range texts {
		total += len(t)
	}
	win := w.window(total)
	fi, err := w.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat user log %s: %w", w.path, err)
	}
	// Reload unless what we remember is the whole truth: nobody else
	// wrote, and it reaches back far enough.
	if w.size != fi.Size() || (w.covered < win && w.covered < w.size) {
		if err := w.load(win); err != nil {
			return 0, err
		}
	}
	// Count the events that lie wholly within the last win bytes.
	have := map[string]int{}
	var span int64
	for i := len(w.recent) - 1; i >= 0; i-- {
		span += int64(len(w.recent[i]))
		if span > win {
			break
		}
		have[w.recent[i]]++
	}
	var todo []string
	for _, t := range texts {
		if have[t] > 0 {
			have[t]--
			continue
		}
		todo = append(todo, t)
	}
	if len(todo) == 0 {
		return 0, nil
	}
	if err := w.write(todo); err != nil {
		return 0, err
	}
	return len(todo), nil
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close user log %s: %w", w.path, err)
	}
	return nil
}

func (w *Writer) format(events []Event) ([]string, error) {
	texts := make([]string, len(events))
	for i, e := range events {
		if e.Code < 0 || e.Cluster < 0 || e.Proc < 0 || e.Sub < 0 {
			return nil, fmt.Errorf("user log event %d (%d.%d.%d): negative code or job id", e.Code, e.Cluster, e.Proc, e.Sub)
		}
		texts[i] = string(Format(e, w.opt))
	}
	return texts, nil
}

// write appends texts in one write and syncs; on failure the file's state
// is unknown and the next call repairs it.
func (w *Writer) write(texts []string) error {
	var buf bytes.Buffer
	for _, t := range texts {
		buf.WriteString(t)
	}
	n, err := w.f.Write(buf.Bytes())
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil {
		w.size = -1
		return fmt.Errorf("append %d events to user log %s: %w", len(texts), w.path, err)
	}
	w.size += int64(n)
	w.covered += int64(n)
	w.recent = append(w.recent, texts...)
	w.trim()
	return nil
}

// trim forgets events beyond the window.
func (w *Writer) trim() {
	win := w.window(0)
	for len(w.recent) > 1 && w.covered-int64(len(w.recent[0])) >= win {
		w.covered -= int64(len(w.recent[0]))
		w.recent = w.recent[1:]
	}
}

// load reads the last win bytes of the file, cuts off a torn last event and
// remembers the complete events found there.
func (w *Writer) load(win int64) error {
	fi, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("stat user log %s: %w", w.path, err)
	}
	size := fi.Size()
	start := max(0, size-win)
	data := make([]byte, size-start)
	if _, err := w.f.ReadAt(data, start); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read user log %s: %w", w.path, err)
	}
	// Complete events begin after a "...\n" line (or at the start of the
	// file); skip the partial event the window may begin in.
	off := 0
	if start > 0 {
		i := bytes.Index(data, []byte("\n...\n"))
		if i < 0 {
			off = len(data)
		} else {
			off = i + len("\n...\n")
		}
	}
	blocks, end := splitEvents(data[off:])
	end += off
	if end < len(data) {
		tail := data[end:]
		if tornHeader(string(firstLine(tail))) {
			// A torn event: cut it off.
			if err := w.f.Truncate(start + int64(end)); err != nil {
				return fmt.Errorf("cut torn event from user log %s: %w", w.path, err)
			}
			if err := w.f.Sync(); err != nil {
				return fmt.Errorf("sync user log %s: %w", w.path, err)
			}
			size = start + int64(end)
		} else if tail[len(tail)-1] != '\n' {
			// Foreign text: leave it, but start our events on a new line.
			if _, err := w.f.Write([]byte("\n")); err != nil {
				return fmt.Errorf("append to user log %s: %w", w.path, err)
			}
			size++
		}
	}
	w.recent = blocks
	w.size = size
	w.covered = size - (start + int64(off))
	return nil
}

// splitEvents splits data into events, each ending with a "...\n" line, and
// returns them and the offset after the last one.
func splitEvents(data []byte) ([]string, int) {
	var out []string
	start, pos := 0, 0
	for pos < len(data) {
		nl := bytes.IndexByte(data[pos:], '\n')
		if nl < 0 {
			break
		}
		line := data[pos : pos+nl]
		pos += nl + 1
		if isSync(string(line)) {
			// Blank lines before an event belong to no event.
			ev := bytes.TrimLeft(data[start:pos], "\n")
			if len(ev) > 0 {
				out = append(out, string(ev))
			}
			start = pos
		}
	}
	return out, start
}

func firstLine(b []byte) []byte {
	b = bytes.TrimLeft(b, "\n")
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}

// tornHeader reports whether a line is an event header or the beginning of
// one ("0", "012 (", "012 (044.0"...).
func tornHeader(l string) bool {
	i := 0
	for i < len(l) && l[i] >= '0' && l[i] <= '9' {
		i++
	}
	if i == 0 {
		return false
	}
	rest := l[i:]
	return rest == "" || strings.HasPrefix(" (", rest) || strings.HasPrefix(rest, " (")
}
