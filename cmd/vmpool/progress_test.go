package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/vmimage"
)

// TestProgressBar: on a terminal a transfer draws a bar with its bytes, its
// rate and the time left, redrawn in place, and ends it with a newline.
func TestProgressBar(t *testing.T) {
	var out bytes.Buffer
	const size = 4 << 20
	tr := newTransfer(&out, true, "send", "disk.img", size)
	r := tr.reader(io.LimitReader(zeros{}, size))
	buf := make([]byte, 64<<10)
	for {
		if _, err := r.Read(buf); err != nil {
			break
		}
	}
	tr.finish(nil)
	s := out.String()
	for _, want := range []string{"send disk.img", "100%", "4.0/4.0 MiB", "iB/s)", "\r"} {
		if !strings.Contains(s, want) {
			t.Errorf("bar output lacks %q:\n%q", want, s)
		}
	}
	if !regexp.MustCompile(`\[[0-9hms.]+:[0-9hms.]+\]`).MatchString(s) {
		t.Errorf("bar shows no [elapsed:left] time:\n%q", s)
	}
	if !strings.HasSuffix(s, "\n") {
		t.Errorf("bar not ended with a newline: %q", s)
	}
}

// TestProgressLines: elsewhere a transfer prints one plain line (no
// carriage returns or escapes): sent, already stored, or failed.
func TestProgressLines(t *testing.T) {
	for _, tc := range []struct {
		name  string
		moved bool
		err   error
		want  string
	}{
		{"sent", true, nil, "vmpool: send disk.img: 2.0 MiB in "},
		{"stored", false, nil, "vmpool: disk.img (2.0 MiB) is already in the pool; not sent again\n"},
		{"failed", true, errors.New("boom"), "vmpool: send disk.img failed after "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			tr := newTransfer(&out, false, "send", "disk.img", 2<<20)
			if tc.moved {
				_, _ = io.Copy(io.Discard, tr.reader(io.LimitReader(zeros{}, 2<<20)))
			}
			tr.finish(tc.err)
			s := out.String()
			if !strings.HasPrefix(s, tc.want) || strings.Count(s, "\n") != 1 || strings.ContainsAny(s, "\r\x1b") {
				t.Errorf("got %q, want one clean line starting %q", s, tc.want)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestSubmitShowsTransfer: vmpool submit of a large input file says on
// standard error what it sent (not a terminal here: one line), and the
// second time that the file is already in the pool; small files show
// nothing; standard output stays condor_submit's; the object stored is
// the whole file.
func TestSubmitShowsTransfer(t *testing.T) {
	tp := newTestPool(t, 0) // no execute machine: the jobs stay queued
	big := tp.write("big.img", strings.Repeat("\x00", 3<<20))
	tp.write("small.img", "x")
	sub := tp.write("big.sub", strings.NewReplacer(
		"vm_disk = hello.img:hda:w:raw", "vm_disk = big.img:hda:w:raw,small.img:hdb:r:raw",
		"transfer_input_files = hello.img", "transfer_input_files = big.img, small.img").Replace(helloSub))
	out, errOut, code := tp.vmpool("submit", sub)
	if code != 0 || !strings.HasSuffix(out, "1 job(s) submitted to cluster 1.\n") || strings.Contains(out, "big.img") {
		t.Fatalf("submit: exit %d, %q %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "vmpool: send big.img: 3.0 MiB in ") || strings.Contains(errOut, "small.img") {
		t.Errorf("submit's standard error: %q", errOut)
	}
	if _, errOut, _ = tp.vmpool("submit", sub); !strings.Contains(errOut, "vmpool: big.img (3.0 MiB) is already in the pool; not sent again") {
		t.Errorf("second submit's standard error: %q", errOut)
	}
	sum, size, err := events.HashFile(big)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := (&cli{getenv: tp.env}).identity(tp.URL)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tp.Bus.FileStore(t.Context(), events.UserBucket(owner))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.GetInfo(t.Context(), events.ObjectName(sum))
	if err != nil || int64(info.Size) != size {
		t.Fatalf("stored big.img: %+v, %v; want %d bytes", info, err, size)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestTransfersAreReported: a job's transfers through the pool (its input
// disk to the startd, the changed disk back to the spool, and into the
// submit directory) are reported on its owner's progress subject, each
// ending in a final report of the whole size; another user may not listen.
func TestTransfersAreReported(t *testing.T) {
	tp := newTestPool(t, 1, "POOL_USERS=bob")
	const size = 16 << 20
	if err := vmimage.Counter().WriteRaw(filepath.Join(tp.dir, "big.img"), size); err != nil {
		t.Fatal(err)
	}
	c := &cli{stdout: io.Discard, stderr: io.Discard, getenv: testEnv(tp.URL)}
	pc, err := c.dial(context.Background(), tp.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.close()
	reports := make(chan events.TransferProgress, 256)
	sub, err := pc.nc.Subscribe(events.ProgressSubjects(pc.user, "schedd"), func(m *nats.Msg) {
		var p events.TransferProgress
		if json.Unmarshal(m.Data, &p) == nil {
			reports <- p
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := pc.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("big.sub", strings.ReplaceAll(helloSub, "hello.img", "big.img")))
	tp.jobEvent(1, 0, events.JobCompleted, 90*time.Second)
	want := map[string]string{events.TransferInput: "startd1", events.TransferOutput: "startd1", events.TransferReturn: "schedd"}
	finals := map[string]events.TransferProgress{}
	deadline := time.After(20 * time.Second)
	for len(finals) < len(want) {
		select {
		case p := <-reports:
			if p.Final {
				finals[p.Kind] = p
			}
		case <-deadline:
			t.Fatalf("final reports %+v, want %v", finals, want)
		}
	}
	for kind, by := range want {
		p := finals[kind]
		if p.Job != (events.JobID{Cluster: 1}) || p.File != "big.img" || p.Done != size || p.Total != size || p.By != by || p.Err != "" {
			t.Errorf("final %s report %+v", kind, p)
		}
	}
	// bob may not listen to another user's transfers.
	bob := tp.connectAs(events.CredentialsFile(events.RoleUser, "bob"))
	subject := events.ProgressSubjects(pc.user, "schedd")
	if _, err := bob.nc.Subscribe(subject, func(*nats.Msg) {}); err == nil {
		bob.nc.Flush()
	}
	select {
	case <-bob.deniedCh(subject):
	case <-time.After(5 * time.Second):
		t.Errorf("bob could subscribe to %s", subject)
	}
}
