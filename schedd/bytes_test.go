package schedd

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/schedd/userlog"
)

// TestBytesSumOverRuns: the job ad's BytesSent and BytesRecvd sum the
// bytes of every run, the evicted ones' too, as HTCondor's do, and a
// snapshot taken anywhere keeps them. The job, worked out by hand: run 1
// receives its 1 MiB input disk and is vacated with a checkpoint of
// 3,393,216 bytes; run 2 receives the disk and that checkpoint
// (4,441,792 bytes) and sends back its 1 MiB disk. From the schedd's side
// 1,048,576 + 4,441,792 = 5,490,368 bytes went out (BytesSent) and
// 3,393,216 + 1,048,576 = 4,441,792 came back (BytesRecvd).
func TestBytesSumOverRuns(t *testing.T) {
	const disk, ckpt = 1 << 20, 3_000_000 + 393_216
	h := newHarness()
	sum := strings.Repeat("ab", 32)
	ps, err := PrepareSubmit(SubmitCmd{Payload: events.ClusterSubmittedPayload{SubmitID: "s1", Owner: "alice", Iwd: "/home/alice",
		NumProcs: 1, Attrs: []events.Attr{{Name: "Cmd", Expr: `"x"`}, {Name: "JobVMCheckpoint", Expr: "true"}},
		Inputs: []events.FileRef{{Name: "disk.img", Bucket: events.UserBucket("alice"), Object: events.ObjectName(sum), Size: disk, SHA256: sum}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, evs, err := DecidePreparedSubmit(h.q, ps)
	if err != nil {
		t.Fatal(err)
	}
	h.commit(evs)
	id := events.JobID{Cluster: 1}
	// The events the core records for the two runs (a JobEvicted with the
	// bytes its startd's VMEvicted counted; a JobCompleted with its run's
	// bytes and the totals).
	ev := func(typ string, p any) []events.Event { return []events.Event{events.New(typ, p).ForJob("schedd", id)} }
	cp := events.Checkpoint{Files: []events.FileRef{{Name: "memory.state", Size: 3_000_000}, {Name: "disk.img.overlay.qcow2", Size: 393_216}}, Slot: "slot1@startd1"}
	completed := events.JobCompletedPayload{ClaimID: "n#2", BytesSent: disk + ckpt, BytesRecv: disk,
		TotalBytesSent: disk + disk + ckpt, TotalBytesRecv: ckpt + disk}
	steps := []struct {
		evs             []events.Event
		sent, recvd     int64  // the ad's BytesSent and BytesRecvd after them
		ulogSent, ulogR string // the Run Bytes Sent/Received By Job the last one's user log entry gives
	}{
		{evs: ev(events.JobMatched, events.JobMatchedPayload{ClaimID: "n#1", Startd: "startd1", Slot: "slot1@startd1"})},
		{evs: ev(events.JobStarted, events.JobStartedPayload{ClaimID: "n#1", Slot: "slot1@startd1", Host: "<h>"})},
		{evs: ev(events.JobEvicted, events.JobEvictedPayload{ClaimID: "n#1", Checkpoint: &cp, Reason: "vacated with a checkpoint",
			BytesSent: disk, BytesRecv: ckpt}), sent: disk, recvd: ckpt, ulogSent: "3393216", ulogR: "1048576"},
		{evs: ev(events.JobMatched, events.JobMatchedPayload{ClaimID: "n#2", Startd: "startd2", Slot: "slot1@startd2"}), sent: disk, recvd: ckpt},
		{evs: ev(events.JobStarted, events.JobStartedPayload{ClaimID: "n#2", Slot: "slot1@startd2", Host: "<h>", Resumed: true, ResumedFrom: 1}),
			sent: disk, recvd: ckpt},
		// The exit's bytes count once, with the JobCompleted.
		{evs: ev(events.JobExited, events.VMEventPayload{ClaimID: "n#2", Slot: "slot1@startd2", PoweredOff: true, BytesIn: disk + ckpt, BytesOut: disk,
			Outputs: []events.FileRef{{Name: "disk.img", Size: disk}}}), sent: disk, recvd: ckpt},
		{evs: ev(events.JobCompleted, completed), sent: disk + disk + ckpt, recvd: ckpt + disk, ulogSent: "1048576", ulogR: "4441792"},
	}
	// figures is the job's BytesSent and BytesRecvd, queued or in the
	// history.
	figures := func(q *Queue) string {
		j := q.Jobs[id]
		if j == nil {
			j = q.History[len(q.History)-1]
		}
		ad := j.Ad(q.Name)
		return ad.Eval("BytesSent").String() + " " + ad.Eval("BytesRecvd").String()
	}
	for i, st := range steps {
		h.commit(st.evs)
		e := h.log[len(h.log)-1]
		got := figures(h.q)
		if want := fmt.Sprint(st.sent, " ", st.recvd); got != want {
			t.Errorf("after %s (step %d): BytesSent BytesRecvd %s, want %s", e.Type, i, got, want)
		}
		// A snapshot here, restored, is the same job.
		data, err := MarshalSnapshot(h.q, uint64(len(h.log)))
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := UnmarshalSnapshot(data)
		if err != nil {
			t.Fatal(err)
		}
		if b := figures(back); b != got {
			t.Errorf("after %s: the snapshot gives BytesSent BytesRecvd %s, the queue %s", e.Type, b, got)
		}
		if st.ulogSent == "" {
			continue
		}
		var b bytes.Buffer
		for _, u := range (&Schedd{}).userlogEvents(e) {
			b.Write(userlog.Format(u, userlog.FormatOptions{}))
		}
		for _, w := range []string{st.ulogSent + "  -  Run Bytes Sent By Job", st.ulogR + "  -  Run Bytes Received By Job"} {
			if !strings.Contains(b.String(), "\t"+w+"\n") {
				t.Errorf("%s's user log entry without %q:\n%s", e.Type, w, b.String())
			}
		}
	}
	// Replay from zero gives the same figures.
	r := NewQueue("schedd")
	for _, e := range h.log {
		Apply(r, e)
	}
	if got, want := figures(r), fmt.Sprint(disk+disk+ckpt, " ", ckpt+disk); got != want {
		t.Errorf("replayed: BytesSent BytesRecvd %s, want %s", got, want)
	}
}
