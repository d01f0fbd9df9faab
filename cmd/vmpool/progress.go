package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"

	"github.com/vmpool/vmpool/events"
)

// Progress of the transfers a user waits for: vmpool submit sending its
// input disks to the pool's object store. On a terminal each large file
// gets a progress bar with its rate and time left (on standard error, so
// that condor_submit's standard output stays as scripts parse it);
// elsewhere one plain line per large file says what was sent, how fast.
// Small files show nothing. Returned disks and checkpoints are moved by the
// daemons, which have no terminal: they report their transfers on the
// owner's progress subject, and vmpool watch draws those (watch.go).

// progressMinBytes is the size from which a transfer shows progress.
const progressMinBytes = 1 << 20

// transfer shows the progress of one file.
type transfer struct {
	out   io.Writer
	label string // e.g. "send disk.img"
	name  string
	size  int64
	bar   *progressbar.ProgressBar // nil when not a terminal
	start time.Time
	moved bool // any byte went over the wire (false: already stored)
}

// newTransfer starts showing a transfer of size bytes to out, as a bar
// when tty.
func newTransfer(out io.Writer, tty bool, verb, name string, size int64) *transfer {
	t := &transfer{out: out, label: verb + " " + name, name: name, size: size, start: time.Now()}
	if tty {
		t.bar = progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(out),
			progressbar.OptionSetDescription(t.label),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }),
		)
	}
	return t
}

// reader counts what r delivers as transferred.
func (t *transfer) reader(r io.Reader) io.Reader {
	t.moved = true
	if t.bar == nil {
		return r
	}
	pr := progressbar.NewReader(r, t.bar)
	return &pr
}

// finish ends the bar, or prints the transfer's line.
func (t *transfer) finish(err error) {
	took := time.Since(t.start)
	switch {
	case t.bar != nil && err == nil && t.moved:
		_ = t.bar.Finish()
	case t.bar != nil:
		_ = t.bar.Exit()
		fmt.Fprintln(t.out)
	}
	switch {
	case err != nil:
		fmt.Fprintf(t.out, "vmpool: %s failed after %s\n", t.label, took.Round(time.Millisecond))
	case !t.moved:
		fmt.Fprintf(t.out, "vmpool: %s (%s) is already in the pool; not sent again\n", t.name, humanBytes(t.size))
	case t.bar == nil:
		fmt.Fprintf(t.out, "vmpool: %s: %s in %s (%s/s)\n", t.label, humanBytes(t.size), took.Round(time.Millisecond),
			humanBytes(int64(float64(t.size)/max(took.Seconds(), 1e-3))))
	}
}

// humanBytes prints a size in IEC units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// progressStore is an object store whose Put shows a transfer's progress;
// events.PutFile stores through it.
type progressStore struct {
	jetstream.ObjectStore
	t *transfer
}

func (s progressStore) Put(ctx context.Context, meta jetstream.ObjectMeta, r io.Reader) (*jetstream.ObjectInfo, error) {
	return s.ObjectStore.Put(ctx, meta, s.t.reader(r))
}

// putInput stores an input file in owner's bucket as events.Bus.PutFile
// does, showing its progress on the user's standard error when it is
// large.
func (c *cli) putInput(ctx context.Context, pc *client, owner, path, name string) (events.FileRef, error) {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() < progressMinBytes {
		return pc.bus.PutFile(ctx, owner, path, name)
	}
	bucket := events.UserBucket(owner)
	st, err := pc.bus.FileStore(ctx, bucket)
	if err != nil {
		return events.FileRef{}, err
	}
	t := newTransfer(c.stderr, isTerminal(c.stderr), "send", name, fi.Size())
	ref, err := events.PutFile(ctx, progressStore{st, t}, path, name)
	ref.Bucket = bucket
	t.finish(err)
	return ref, err
}
