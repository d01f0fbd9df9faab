package events

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"sync"
	"time"
)

// Transfer progress: while a daemon moves a job's file through the object
// store (an input disk to the startd, a returned disk or a checkpoint to
// the spool, the returned disk into the submitter's directory), it
// reports how far it got on the job owner's progress subject. Reports are
// plain NATS messages, not stored events: a watcher that misses one
// loses nothing but a redraw, and no daemon waits for watchers. vmpool
// watch shows them as progress bars.

// Kinds of transfer a TransferProgress reports.
const (
	TransferInput      = "input"      // an input disk fetched by the startd
	TransferOutput     = "output"     // a returned disk sent to the spool by the startd
	TransferReturn     = "return"     // a returned disk written into the job's Iwd by the schedd
	TransferCheckpoint = "checkpoint" // a checkpoint's file sent to the spool
	TransferResume     = "resume"     // a checkpoint's file fetched to resume from
)

// TransferProgress is one report on a file moving for a job.
type TransferProgress struct {
	Schedd string `json:"schedd"`
	Job    JobID  `json:"job"`
	Kind   string `json:"kind"`
	File   string `json:"file"`
	Done   int64  `json:"done"`  // bytes moved so far (of this try)
	Total  int64  `json:"total"` // bytes in all
	By     string `json:"by"`    // the daemon moving it
	// Final marks the last report of the transfer; Err says why it failed,
	// when it did.
	Final bool   `json:"final,omitempty"`
	Err   string `json:"err,omitempty"`
	// ElapsedNanos is how long the transfer has taken so far.
	ElapsedNanos int64 `json:"elapsed_ns"`
}

// ProgressSubject is where the transfers of owner's job at schedd are
// reported; a user may subscribe to their own only.
func ProgressSubject(owner, schedd string, job JobID) string {
	return "vmpool.progress." + owner + "." + schedd + "." + strconv.Itoa(job.Cluster) + "." + strconv.Itoa(job.Proc)
}

// ProgressSubjects is every transfer of owner's jobs at schedd.
func ProgressSubjects(owner, schedd string) string {
	return "vmpool.progress." + owner + "." + schedd + ".>"
}

// progressInterval is the least time between two reports of a transfer.
const progressInterval = 250 * time.Millisecond

type progressKey struct{}

// progressFunc is told the bytes moved so far.
type progressFunc func(done int64)

// withProgress returns ctx carrying fn, which PutFile and GetFile call as
// bytes move.
func withProgress(ctx context.Context, fn progressFunc) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

func progressOf(ctx context.Context) progressFunc {
	fn, _ := ctx.Value(progressKey{}).(progressFunc)
	return fn
}

// countingReader tells fn how many bytes were read.
type countingReader struct {
	r  io.Reader
	n  int64
	fn progressFunc
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.fn(c.n)
	return n, err
}

// counted wraps r so that ctx's progress function, if any, hears of every
// byte read.
func counted(ctx context.Context, r io.Reader) io.Reader {
	if fn := progressOf(ctx); fn != nil {
		return &countingReader{r: r, fn: fn}
	}
	return r
}

// ReportTransfer starts reporting a transfer on its owner's progress
// subject: it returns a context to pass to PutFile or GetFile (whose
// bytes it counts, at most one report per quarter second) and a function
// that sends the final report (err: nil when the file arrived). The
// owner's name makes the subject; a nil bus reports nothing.
func (b *Bus) ReportTransfer(ctx context.Context, owner string, p TransferProgress) (context.Context, func(err error)) {
	if b == nil || b.NC == nil || owner == "" || p.Schedd == "" {
		return ctx, func(error) {}
	}
	subject := ProgressSubject(owner, p.Schedd, p.Job)
	start := time.Now()
	var mu sync.Mutex
	var last time.Time
	send := func(p TransferProgress) {
		p.ElapsedNanos = time.Since(start).Nanoseconds()
		if data, err := json.Marshal(p); err == nil {
			_ = b.NC.Publish(subject, data) // a report lost costs a redraw
		}
	}
	send(p) // started
	fn := func(done int64) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < progressInterval {
			return
		}
		last = time.Now()
		q := p
		q.Done = done
		send(q)
	}
	return withProgress(ctx, fn), func(err error) {
		mu.Lock()
		defer mu.Unlock()
		q := p
		q.Final = true
		if err != nil {
			q.Err = err.Error()
		} else {
			q.Done = p.Total
		}
		send(q)
	}
}
