package userlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// zone is a fixed local zone so that golden texts do not depend on the machine.
var zone = time.FixedZone("test", 2*3600)

var opt = FormatOptions{Location: zone}

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, zone)
	if err != nil {
		panic(err)
	}
	return t
}

// referenceEvents are the events of REFERENCE §6's example
// (testdata/reference.log).
func referenceEvents() []Event {
	return []Event{
		{Code: JobSubmitted, Cluster: 42, Time: at("2024-05-14 10:01:07"), Host: "<10.0.0.5:9618>"},
		{Code: JobExecuting, Cluster: 42, Time: at("2024-05-14 10:01:30"), Host: "<10.0.0.9:9618>", SlotName: "slot1@exec09"},
		{Code: JobEvicted, Cluster: 42, Time: at("2024-05-14 11:15:02"), Checkpointed: true, BytesSent: 3221225472, BytesReceived: 2147483648},
		{Code: JobTerminated, Cluster: 42, Time: at("2024-05-14 12:40:55"), BytesSent: 2147483648, BytesReceived: 3221225472, TotalBytesSent: 5368709120, TotalBytesReceived: 5368709120},
		{Code: JobAborted, Cluster: 43, Time: at("2024-05-14 10:05:00"), Reason: "via condor_rm (by user alice)"},
		{Code: JobHeld, Cluster: 44, Time: at("2024-05-14 10:06:12"), Reason: "Error from slot1@exec09: VMGAHP_ERR_JOBCLASSAD_KVM_INVALID_DISK_PARAM", HoldCode: 6, HoldSubCode: 10},
		{Code: JobReleased, Cluster: 44, Time: at("2024-05-14 10:30:00"), Reason: "via condor_release (by user alice)"},
	}
}

func TestReferenceLog(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "reference.log"))
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, e := range referenceEvents() {
		got = append(got, Format(e, opt)...)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("format\n%s\nwant\n%s", got, want)
	}
	events, err := ParseWith(bytes.NewReader(want), ParseOptions{Location: zone})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normal(events), normal(referenceEvents())) {
		t.Errorf("parse\n%+v\nwant\n%+v", events, referenceEvents())
	}
}

// normal makes times comparable with DeepEqual.
func normal(es []Event) []Event {
	out := append([]Event(nil), es...)
	for i := range out {
		out[i].Time = out[i].Time.UTC()
	}
	return out
}

// golden are the other event kinds, after HTCondor's formats.
var golden = []struct {
	name string
	e    Event
	text string
}{
	{"submitted with notes", Event{Code: JobSubmitted, Cluster: 7, Proc: 3, Time: at("2024-05-14 10:01:07"), Host: "<10.0.0.5:9618>", Text: "DAG Node: a"},
		"000 (007.003.000) 2024-05-14 10:01:07 Job submitted from host: <10.0.0.5:9618>\n    DAG Node: a\n...\n"},
	{"executing without slot", Event{Code: JobExecuting, Cluster: 1234, Proc: 1000, Time: at("2024-05-14 10:01:07"), Host: "<10.0.0.9:9618>"},
		"001 (1234.1000.000) 2024-05-14 10:01:07 Job executing on host: <10.0.0.9:9618>\n...\n"},
	{"checkpointed", Event{Code: JobCheckpointed, Cluster: 42, Time: at("2024-05-14 11:00:00"), RunRemote: Usage{User: 90 * time.Second, Sys: 26*time.Hour + 61*time.Second}, BytesSent: 1073741824},
		"003 (042.000.000) 2024-05-14 11:00:00 Job was checkpointed.\n\tUsr 0 00:01:30, Sys 1 02:01:01  -  Run Remote Usage\n\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n\t1073741824  -  Run Bytes Sent By Job For Checkpoint\n...\n"},
	{"evicted, not checkpointed, code and reason", Event{Code: JobEvicted, Cluster: 42, Time: at("2024-05-14 11:15:02"), EvictCode: 1020, EvictSubCode: 2, Reason: "VM GAHP stopped answering"},
		"004 (042.000.000) 2024-05-14 11:15:02 Job was evicted. Code 1020 Subcode 2\n\t(0) Job was not checkpointed.\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n\t0  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n\tVM GAHP stopped answering\n...\n"},
	{"terminated abnormally", Event{Code: JobTerminated, Cluster: 42, Time: at("2024-05-14 12:40:55"), Signal: 9},
		"005 (042.000.000) 2024-05-14 12:40:55 Job terminated.\n\t(0) Abnormal termination (signal 9)\n\t(0) No core file\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Remote Usage\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage\n\t0  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n\t0  -  Total Bytes Sent By Job\n\t0  -  Total Bytes Received By Job\n...\n"},
	{"terminated with core", Event{Code: JobTerminated, Cluster: 42, Time: at("2024-05-14 12:40:55"), Signal: 11, CoreFile: "/tmp/core.1"},
		"005 (042.000.000) 2024-05-14 12:40:55 Job terminated.\n\t(0) Abnormal termination (signal 11)\n\t(1) Corefile in: /tmp/core.1\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Remote Usage\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage\n\t0  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n\t0  -  Total Bytes Sent By Job\n\t0  -  Total Bytes Received By Job\n...\n"},
	{"image size", Event{Code: ImageSizeUpdated, Cluster: 42, Time: at("2024-05-14 10:02:00"), ImageSizeKB: 524288, MemoryUsageMB: 512, ResidentSetSizeKB: 500000},
		"006 (042.000.000) 2024-05-14 10:02:00 Image size of job updated: 524288\n\t512  -  MemoryUsage of job (MB)\n\t500000  -  ResidentSetSize of job (KB)\n...\n"},
	{"shadow exception", Event{Code: ShadowException, Cluster: 42, Time: at("2024-05-14 10:02:00"), Text: "Lost connection\nto starter", BytesSent: 10},
		"007 (042.000.000) 2024-05-14 10:02:00 Shadow exception!\n\tLost connection to starter\n\t10  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n...\n"},
	{"generic", Event{Code: Generic, Cluster: 42, Time: at("2024-05-14 10:02:00"), Text: "vmpool: checkpoint kept 3 generations"},
		"008 (042.000.000) 2024-05-14 10:02:00 vmpool: checkpoint kept 3 generations\n...\n"},
	{"aborted without reason", Event{Code: JobAborted, Cluster: 42, Time: at("2024-05-14 10:02:00")},
		"009 (042.000.000) 2024-05-14 10:02:00 Job was aborted.\n...\n"},
	{"suspended", Event{Code: JobSuspended, Cluster: 42, Time: at("2024-05-14 10:02:00"), NumPids: 1},
		"010 (042.000.000) 2024-05-14 10:02:00 Job was suspended.\n\tNumber of processes actually suspended: 1\n...\n"},
	{"unsuspended", Event{Code: JobUnsuspended, Cluster: 42, Time: at("2024-05-14 10:02:00")},
		"011 (042.000.000) 2024-05-14 10:02:00 Job was unsuspended.\n...\n"},
	{"held, submitted on hold", Event{Code: JobHeld, Cluster: 42, Time: at("2024-05-14 10:02:00"), Reason: "submitted on hold at user's request", HoldCode: 15},
		"012 (042.000.000) 2024-05-14 10:02:00 Job was held.\n\tsubmitted on hold at user's request\n\tCode 15 Subcode 0\n...\n"},
	{"held without reason", Event{Code: JobHeld, Cluster: 42, Time: at("2024-05-14 10:02:00"), HoldCode: 1},
		"012 (042.000.000) 2024-05-14 10:02:00 Job was held.\n\tReason unspecified\n\tCode 1 Subcode 0\n...\n"},
	{"error from starter", Event{Code: RemoteError, Cluster: 42, Time: at("2024-05-14 10:02:00"), Host: "slot1@exec09", Text: "VMGAHP_ERR_BAD_IMAGE\nqemu: could not open disk.img", HoldCode: 6, HoldSubCode: 12},
		"021 (042.000.000) 2024-05-14 10:02:00 Error from starter on slot1@exec09:\n\tVMGAHP_ERR_BAD_IMAGE\n\tqemu: could not open disk.img\n\tCode 6 Subcode 12\n...\n"},
	{"message from startd", Event{Code: RemoteError, Cluster: 42, Time: at("2024-05-14 10:02:00"), Host: "exec09", Daemon: "startd", NotCritical: true, Text: "low disk"},
		"021 (042.000.000) 2024-05-14 10:02:00 Message from startd on exec09:\n\tlow disk\n...\n"},
	{"disconnected", Event{Code: JobDisconnected, Cluster: 42, Time: at("2024-05-14 10:02:00"), Reason: "Socket between submit and execute hosts closed unexpectedly", SlotName: "slot1@exec09", Host: "<10.0.0.9:9618>"},
		"022 (042.000.000) 2024-05-14 10:02:00 Job disconnected, attempting to reconnect\n    Socket between submit and execute hosts closed unexpectedly\n    Trying to reconnect to slot1@exec09 <10.0.0.9:9618>\n...\n"},
	{"reconnected", Event{Code: JobReconnected, Cluster: 42, Time: at("2024-05-14 10:02:00"), SlotName: "slot1@exec09", Host: "<10.0.0.9:9618>", StarterAddr: "<10.0.0.9:40000>"},
		"023 (042.000.000) 2024-05-14 10:02:00 Job reconnected to slot1@exec09\n    startd address: <10.0.0.9:9618>\n    starter address: <10.0.0.9:40000>\n...\n"},
	{"reconnect failed", Event{Code: JobReconnectFailed, Cluster: 42, Time: at("2024-05-14 10:02:00"), Reason: "Job lease expired", SlotName: "slot1@exec09"},
		"024 (042.000.000) 2024-05-14 10:02:00 Job reconnection failed\n    Job lease expired\n    Can not reconnect to slot1@exec09, rescheduling job\n...\n"},
	{"job ad information", Event{Code: JobAdInformation, Cluster: 42, Time: at("2024-05-14 10:02:00"), Attrs: []Attr{{"JobStatus", "2"}, {"VMName", `"alice_42.0"`}}},
		"028 (042.000.000) 2024-05-14 10:02:00 Job ad information event triggered.\nJobStatus = 2\nVMName = \"alice_42.0\"\n...\n"},
	{"file transfer started", Event{Code: FileTransfer, Cluster: 42, Time: at("2024-05-14 10:02:00"), Transfer: TransferInputStarted, QueueDelay: 3, Host: "<10.0.0.9:9618>"},
		"040 (042.000.000) 2024-05-14 10:02:00 Started transferring input files\n\tSeconds spent in queue: 3\n\tTransferring to host: <10.0.0.9:9618>\n...\n"},
	{"file transfer finished", Event{Code: FileTransfer, Cluster: 42, Time: at("2024-05-14 10:02:00"), Transfer: TransferOutputFinished},
		"040 (042.000.000) 2024-05-14 10:02:00 Finished transferring output files\n...\n"},
	{"unknown code", Event{Code: 35, Cluster: 42, Time: at("2024-05-14 10:02:00"), Text: "Cluster submitted from host: <10.0.0.5:9618>\n\tSubmitting 3 jobs"},
		"035 (042.000.000) 2024-05-14 10:02:00 Cluster submitted from host: <10.0.0.5:9618>\n\tSubmitting 3 jobs\n...\n"},
}

func TestGolden(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			if got := string(Format(g.e, opt)); got != g.text {
				t.Errorf("format\n%q\nwant\n%q", got, g.text)
			}
			es, err := ParseWith(strings.NewReader(g.text), ParseOptions{Location: zone})
			if err != nil || len(es) != 1 {
				t.Fatalf("parse: %v %v", es, err)
			}
			// Round trip: what Parse reads formats to the same text.
			if again := string(Format(es[0], opt)); again != g.text {
				t.Errorf("round trip\n%q\nwant\n%q", again, g.text)
			}
		})
	}
}

// TestEvictReasonOldForm reads the reason line vmpool wrote before it
// took HTCondor's form ("\tReason: TEXT" instead of "\tTEXT").
func TestEvictReasonOldForm(t *testing.T) {
	text := "004 (042.000.000) 2024-05-14 11:15:02 Job was evicted.\n\t(1) Job was checkpointed.\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n\t5  -  Run Bytes Sent By Job\n\t7  -  Run Bytes Received By Job\n\tReason: vacated with a checkpoint (job vacated)\n...\n"
	es, err := ParseWith(strings.NewReader(text), ParseOptions{Location: zone})
	if err != nil || len(es) != 1 {
		t.Fatalf("parse: %v %v", es, err)
	}
	if e := es[0]; e.Reason != "vacated with a checkpoint (job vacated)" || !e.Checkpointed || e.BytesSent != 5 || e.BytesReceived != 7 {
		t.Errorf("parsed %+v", e)
	}
}

func TestDates(t *testing.T) {
	e := Event{Code: JobSubmitted, Cluster: 1, Time: time.Date(2024, 5, 14, 8, 1, 7, 250e6, time.UTC), Host: "h"}
	cases := []struct {
		o    FormatOptions
		want string
	}{
		{FormatOptions{Location: zone}, "000 (001.000.000) 2024-05-14 10:01:07 Job"},
		{FormatOptions{UTC: true}, "000 (001.000.000) 2024-05-14 08:01:07Z Job"},
		{FormatOptions{Location: zone, Legacy: true}, "000 (001.000.000) 05/14 10:01:07 Job"},
		{FormatOptions{UTC: true, SubSecond: true}, "000 (001.000.000) 2024-05-14 08:01:07.250Z Job"},
	}
	for _, c := range cases {
		text := Format(e, c.o)
		if !strings.HasPrefix(string(text), c.want) {
			t.Errorf("%+v: %q", c.o, text)
			continue
		}
		es, err := ParseWith(bytes.NewReader(text), ParseOptions{Location: zone, Year: 2024})
		if err != nil || len(es) != 1 {
			t.Fatalf("parse %q: %v", text, err)
		}
		want := e.Time.Truncate(time.Second)
		if c.o.SubSecond {
			want = e.Time
		}
		if !es[0].Time.Equal(want) {
			t.Errorf("%+v: time %v, want %v", c.o, es[0].Time, want)
		}
	}
}

func TestFormatCannotForgeEvents(t *testing.T) {
	evil := "x\n...\n001 (001.000.000) 2024-05-14 10:01:07 Job executing on host: evil"
	for _, e := range []Event{
		{Code: JobAborted, Reason: evil},
		{Code: JobHeld, Reason: evil},
		{Code: Generic, Text: evil},
		{Code: RemoteError, Text: evil},
		{Code: JobSubmitted, Host: evil, Text: evil},
		{Code: JobAdInformation, Attrs: []Attr{{evil, evil}}},
		{Code: 99, Text: evil},
	} {
		es, err := Parse(bytes.NewReader(Format(e, opt)))
		if err != nil || len(es) != 1 || es[0].Code != e.Code {
			t.Errorf("code %d: %q parses as %+v, %v", e.Code, Format(e, opt), es, err)
		}
	}
}

func TestParseTornAndBroken(t *testing.T) {
	full, _ := os.ReadFile(filepath.Join("testdata", "reference.log"))
	n := len(referenceEvents())
	// Every prefix of the log parses to the events complete in it.
	ends := map[int]int{} // byte offset after an event -> events before it
	count := 0
	for i := 0; i+4 <= len(full); i++ {
		if (i == 0 || full[i-1] == '\n') && string(full[i:i+4]) == "...\n" {
			count++
			ends[i+4] = count
		}
	}
	for cut := 0; cut <= len(full); cut++ {
		want := 0
		for off, c := range ends {
			if off <= cut && c > want {
				want = c
			}
		}
		es, err := Parse(bytes.NewReader(full[:cut]))
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if len(es) != want {
			t.Fatalf("cut at %d: %d events, want %d", cut, len(es), want)
		}
	}
	if len(ends) != n {
		t.Fatalf("reference has %d events", len(ends))
	}
	// A malformed header is skipped and reported; the rest is read.
	broken := "garbage line\nmore\n...\n" + string(full)
	es, err := Parse(strings.NewReader(broken))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 1 || len(es) != n {
		t.Errorf("broken: %d events, %v", len(es), err)
	}
}

func readAll(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAppendOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "job.log")
	w, err := OpenWriter(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	evs := referenceEvents()
	if n, err := w.AppendOnce(evs...); err != nil || n != len(evs) {
		t.Fatalf("first: %d %v", n, err)
	}
	if n, err := w.AppendOnce(evs...); err != nil || n != 0 {
		t.Fatalf("replay: %d %v", n, err)
	}
	want, _ := os.ReadFile(filepath.Join("testdata", "reference.log"))
	if got := readAll(t, path); got != string(want) {
		t.Errorf("file\n%s\nwant\n%s", got, want)
	}
	// A replay of a partly written batch writes the rest only.
	more := []Event{
		{Code: JobExecuting, Cluster: 45, Time: at("2024-05-14 13:00:00"), Host: "<h>"},
		{Code: JobTerminated, Cluster: 45, Time: at("2024-05-14 14:00:00")},
	}
	if err := w.Append(more[0]); err != nil {
		t.Fatal(err)
	}
	if n, err := w.AppendOnce(append(evs[5:], more...)...); err != nil || n != 1 {
		t.Fatalf("partial replay: %d %v", n, err)
	}
	w.Close()
	// After a restart too.
	w, err = OpenWriter(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if n, err := w.AppendOnce(append(evs, more...)...); err != nil || n != 0 {
		t.Fatalf("replay after reopen: %d %v", n, err)
	}
	es, err := ParseWith(strings.NewReader(readAll(t, path)), ParseOptions{Location: zone})
	if err != nil || len(es) != len(evs)+2 {
		t.Fatalf("%d events, %v", len(es), err)
	}
	// Identical texts are counted: two copies in one call, one on file.
	dup := Event{Code: ImageSizeUpdated, Cluster: 46, Time: at("2024-05-14 15:00:00"), ImageSizeKB: 1}
	if n, err := w.AppendOnce(dup); err != nil || n != 1 {
		t.Fatal(n, err)
	}
	if n, err := w.AppendOnce(dup, dup); err != nil || n != 1 {
		t.Fatalf("two copies with one on file: wrote %d, %v", n, err)
	}
	if n, err := w.AppendOnce(dup, dup); err != nil || n != 0 {
		t.Fatalf("two copies with two on file: wrote %d, %v", n, err)
	}
	if _, err := w.AppendOnce(Event{Code: JobHeld, Cluster: -1}); err == nil {
		t.Error("negative cluster accepted")
	}
}

func TestAppendOnceSeesOtherWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "job.log")
	w, err := OpenWriter(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e := referenceEvents()[0]
	// Someone else wrote the event (another Writer on the same file).
	if err := os.WriteFile(path, Format(e, opt), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := w.AppendOnce(e); err != nil || n != 0 {
		t.Fatalf("wrote %d, %v", n, err)
	}
}

func TestWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "job.log")
	small := FormatOptions{Location: zone, DedupWindow: 200}
	w, err := OpenWriter(path, small)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for i := 0; i < 50; i++ {
		evs = append(evs, Event{Code: Generic, Cluster: 1, Proc: i, Time: at("2024-05-14 10:00:00"), Text: "tick"})
	}
	if n, err := w.AppendOnce(evs...); err != nil || n != 50 {
		t.Fatal(n, err)
	}
	w.Close()
	// The window grows to the batch: a replay of all 50 is recognised
	// even though they span far more than 200 bytes.
	w, err = OpenWriter(path, small)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if n, err := w.AppendOnce(evs...); err != nil || n != 0 {
		t.Fatalf("replay wrote %d, %v", n, err)
	}
	// An event beyond the window is not looked for.
	if n, err := w.AppendOnce(evs[0]); err != nil || n != 1 {
		t.Fatalf("old event: wrote %d, %v", n, err)
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	full, _ := os.ReadFile(filepath.Join("testdata", "reference.log"))
	evs := referenceEvents()
	last := Format(evs[len(evs)-1], opt)
	good := full[:len(full)-len(last)]
	for cut := 1; cut < len(last); cut++ {
		path := filepath.Join(dir, fmt.Sprintf("torn%d.log", cut))
		if err := os.WriteFile(path, append(append([]byte(nil), good...), last[:cut]...), 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := OpenWriter(path, opt)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := w.AppendOnce(evs...); err != nil || n != 1 {
			t.Fatalf("cut %d: wrote %d, %v", cut, n, err)
		}
		w.Close()
		if got := readAll(t, path); got != string(full) {
			t.Fatalf("cut %d: file\n%q\nwant\n%q", cut, got, full)
		}
	}
	// Foreign text is kept; events start on their own line.
	path := filepath.Join(dir, "foreign.log")
	os.WriteFile(path, []byte("notes by hand, no newline"), 0o644)
	w, err := OpenWriter(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(evs[0]); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := readAll(t, path); got != "notes by hand, no newline\n"+string(Format(evs[0], opt)) {
		t.Errorf("foreign: %q", got)
	}
	if err := w.Append(evs[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: %v", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	const files, perFile = 8, 50
	for f := 0; f < files; f++ {
		path := filepath.Join(dir, fmt.Sprintf("job%d.log", f))
		w, err := OpenWriter(path, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		// Two goroutines per file share its Writer; each file is separate.
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func(f, g int) {
				defer wg.Done()
				for i := 0; i < perFile; i++ {
					e := Event{Code: Generic, Cluster: f, Proc: g*perFile + i, Time: at("2024-05-14 10:00:00"), Text: "x"}
					if _, err := w.AppendOnce(e, e); err != nil {
						t.Error(err)
						return
					}
				}
			}(f, g)
		}
	}
	wg.Wait()
	for f := 0; f < files; f++ {
		es, err := Parse(strings.NewReader(readAll(t, filepath.Join(dir, fmt.Sprintf("job%d.log", f)))))
		if err != nil || len(es) != 2*perFile*2 {
			t.Errorf("file %d: %d events, %v", f, len(es), err)
		}
	}
}
