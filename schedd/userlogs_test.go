package schedd

import (
	"encoding/json"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/schedd/userlog"
)

// A crash after writing a batch of user log events but before recording
// it: the restart cuts the files back to where the batch began, so that
// writing the batch again leaves every event there exactly once.
func TestUserLogRollback(t *testing.T) {
	dir := t.TempDir()
	l, err := events.OpenLog(filepath.Join(dir, "log"), "schedd", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := &Schedd{log: l, logger: slog.New(slog.DiscardHandler)}
	existing := filepath.Join(dir, "a.log")
	fresh := filepath.Join(dir, "b.log")
	os.WriteFile(existing, []byte("000 (001.000.000) 2026-01-01 00:00:00 Job submitted from host: <h>\n...\n"), 0o644)
	before := fileSize(existing)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(userLogIntent{Last: 7, Sizes: map[string]int64{existing: before, fresh: -1},
		Owners: map[string]string{existing: me.Username, fresh: me.Username}})
	if err := l.SetMeta(metaUserLogIntent, in, true); err != nil {
		t.Fatal(err)
	}
	// The interrupted batch reached both files.
	f, _ := os.OpenFile(existing, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("001 (001.000.000) 2026-01-01 00:00:01 Job executing on host: <s>\n...\n")
	f.Close()
	os.WriteFile(fresh, []byte("000 (002.000.000) 2026-01-01 00:00:01 Job submitted from host: <h>\n"), 0o644)

	if err := s.rollbackUserLogs(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(existing); got != before {
		t.Fatalf("existing log is %d bytes, want %d", got, before)
	}
	if got := fileSize(fresh); got != 0 {
		t.Fatalf("new log is %d bytes, want 0", got)
	}
	if b, ok, _ := l.Meta(metaUserLogIntent); ok && len(b) > 0 {
		t.Fatal("intent not cleared")
	}
	// Once the position passed the batch, an intent left behind is stale:
	// nothing is cut.
	os.WriteFile(fresh, []byte("x"), 0o644)
	in, _ = json.Marshal(userLogIntent{Last: 7, Sizes: map[string]int64{fresh: -1}, Owners: map[string]string{fresh: me.Username}})
	l.SetMeta(metaUserLogIntent, in, true)
	l.SetMetaUint(metaUserLogDone, 7, true)
	if err := s.rollbackUserLogs(); err != nil {
		t.Fatal(err)
	}
	if fileSize(fresh) != 1 {
		t.Fatal("a completed batch was rolled back")
	}
}

// The CPU a startd reports goes into the 004's Run Remote Usage and the
// 005's Run and Total Remote Usage.
func TestUserLogCPUUsage(t *testing.T) {
	s := &Schedd{}
	ev := func(typ string, p any) events.Event {
		e := events.New(typ, p).ForJob("schedd", events.JobID{Cluster: 3})
		e.Time = 1_700_000_000e9
		return e
	}
	text := func(e events.Event) string {
		var b strings.Builder
		for _, u := range s.userlogEvents(e) {
			b.Write(userlog.Format(u, userlog.FormatOptions{}))
		}
		return b.String()
	}
	evicted := text(ev(events.JobEvicted, events.JobEvictedPayload{ClaimID: "n#1", UserCPUNanos: 61e9, SysCPUNanos: 2e9}))
	if want := "Usr 0 00:01:01, Sys 0 00:00:02  -  Run Remote Usage"; !strings.Contains(evicted, want) {
		t.Errorf("004 without %q:\n%s", want, evicted)
	}
	done := text(ev(events.JobCompleted, events.JobCompletedPayload{ClaimID: "n#2", UserCPUNanos: 3e9, SysCPUNanos: 1e9,
		TotalUserCPUNanos: 3661e9 + 64e9, TotalSysCPUNanos: 3e9}))
	for _, want := range []string{"Usr 0 00:00:03, Sys 0 00:00:01  -  Run Remote Usage", "Usr 0 01:02:05, Sys 0 00:00:03  -  Total Remote Usage"} {
		if !strings.Contains(done, want) {
			t.Errorf("005 without %q:\n%s", want, done)
		}
	}
}

// The bytes a run moved go into its 004 and its 005 from the job's side
// (Received: inputs to its machine; Sent: what came back), and the 005's
// totals are every run's. A checkpointed job, worked out by hand: run 1
// receives a 1 MiB input disk and is vacated with a checkpoint of
// 3,393,216 bytes; run 2 receives the disk again and the checkpoint it
// resumes from (4,441,792 bytes) and sends back its 1 MiB disk.
func TestUserLogBytes(t *testing.T) {
	s := &Schedd{}
	text := func(typ string, p any) string {
		e := events.New(typ, p).ForJob("schedd", events.JobID{Cluster: 3})
		e.Time = 1_700_000_000e9
		var b strings.Builder
		for _, u := range s.userlogEvents(e) {
			b.Write(userlog.Format(u, userlog.FormatOptions{}))
		}
		return b.String()
	}
	check := func(what, got string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(got, "\t"+w+"\n") {
				t.Errorf("%s without %q:\n%s", what, w, got)
			}
		}
	}
	const disk, ckpt = 1 << 20, 3_000_000 + 393_216
	cp := &events.Checkpoint{Files: []events.FileRef{{Name: "memory.state", Size: 3_000_000}, {Name: "disk.img.overlay.qcow2", Size: 393_216}}, Seq: 1}
	check("004", text(events.JobEvicted, events.JobEvictedPayload{ClaimID: "n#1", Checkpoint: cp, BytesSent: disk, BytesRecv: ckpt}),
		"(1) Job was checkpointed.", "3393216  -  Run Bytes Sent By Job", "1048576  -  Run Bytes Received By Job")
	check("005", text(events.JobCompleted, events.JobCompletedPayload{ClaimID: "n#2", BytesSent: disk + ckpt, BytesRecv: disk,
		TotalBytesSent: disk + disk + ckpt, TotalBytesRecv: ckpt + disk}),
		"1048576  -  Run Bytes Sent By Job", "4441792  -  Run Bytes Received By Job",
		"4441792  -  Total Bytes Sent By Job", "5490368  -  Total Bytes Received By Job")
	// A JobCompleted recorded before the totals were: they are its run's,
	// as that log printed them.
	check("old 005", text(events.JobCompleted, events.JobCompletedPayload{ClaimID: "n#2", BytesSent: 512, BytesRecv: 256}),
		"256  -  Run Bytes Sent By Job", "512  -  Run Bytes Received By Job",
		"256  -  Total Bytes Sent By Job", "512  -  Total Bytes Received By Job")
	// An eviction recorded before its bytes were says 0, as it did.
	check("old 004", text(events.JobEvicted, events.JobEvictedPayload{ClaimID: "n#1"}),
		"0  -  Run Bytes Sent By Job", "0  -  Run Bytes Received By Job")
	// A periodic checkpoint's 003 gives its size.
	check("003", text(events.JobCheckpointed, events.JobCheckpointedPayload{ClaimID: "n#1", Checkpoint: *cp}),
		"3393216  -  Run Bytes Sent By Job For Checkpoint")
}

// A VM that could not run for its machine's reason (a VMFailed without a
// hold) is a 007, as HTCondor's shadow logs a starter's failure, naming
// the slot and the error; the job is not said to have been evicted.
func TestUserLogFailedStartIsShadowException(t *testing.T) {
	s := &Schedd{}
	text := func(p events.JobEvictedPayload) string {
		e := events.New(events.JobEvicted, p).ForJob("schedd", events.JobID{Cluster: 3})
		e.Time = 1_700_000_000e9
		var b strings.Builder
		for _, u := range s.userlogEvents(e) {
			b.Write(userlog.Format(u, userlog.FormatOptions{}))
		}
		return b.String()
	}
	// The starter's reasons begin "Error from SLOT: ".
	got := text(events.JobEvictedPayload{ClaimID: "n#1", Code: 1020, Failed: true, Slot: "slot1@e1",
		Reason: "Error from slot1@e1: create scratch directory: no space left on device", BytesSent: 4096})
	want := "007 (003.000.000) " + time.Unix(1_700_000_000, 0).Format("2006-01-02 15:04:05") + " Shadow exception!\n" +
		"\tError from slot1@e1: create scratch directory: no space left on device\n" +
		"\t0  -  Run Bytes Sent By Job\n\t4096  -  Run Bytes Received By Job\n...\n"
	if got != want {
		t.Errorf("failed start:\n%s\nwant:\n%s", got, want)
	}
	// One that does not gets the slot named.
	got = text(events.JobEvictedPayload{ClaimID: "n#1", Code: 1020, Failed: true, Slot: "slot2@e1", Reason: "the VM was lost while its startd was down"})
	if !strings.Contains(got, "\tError from slot2@e1: the VM was lost while its startd was down\n") || strings.Contains(got, "evicted") {
		t.Errorf("failed start without the slot in its reason:\n%s", got)
	}
	// An eviction is still a 004.
	if got := text(events.JobEvictedPayload{ClaimID: "n#1", Code: 1020, Reason: "vacated"}); !strings.HasPrefix(got, "004 ") {
		t.Errorf("eviction:\n%s", got)
	}
}
