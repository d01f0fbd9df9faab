package schedd

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/vmpool/vmpool/events"
)

// checkSnapJobLine holds snapJob's fast decoder to json.Unmarshal on b:
// what it takes it reads as encoding/json does, and what it refuses it
// leaves untouched.
func checkSnapJobLine(t *testing.T, b []byte) (fast bool) {
	t.Helper()
	var got snapJob
	if !got.decodeFast(b) {
		if !reflect.DeepEqual(got, snapJob{}) {
			t.Fatalf("a refused line changed the job: %q", b)
		}
		return false
	}
	var want snapJob
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("the fast decoder took %q, which json.Unmarshal refuses: %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\nfast %#v\njson %#v", b, got, want)
	}
	return true
}

// checkSnapshotJobLines: every job line of a snapshot MarshalSnapshot
// wrote goes by the fast decoder, with encoding/json's result.
func checkSnapshotJobLines(t *testing.T, data []byte) {
	t.Helper()
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	var s snapshot
	if err := json.Unmarshal(lines[0], &s); err != nil {
		t.Fatal(err)
	}
	for _, l := range lines[1+s.NClusters:] {
		if !checkSnapJobLine(t, l) && !bytes.Contains(l, []byte(`"checkpoint":`)) {
			t.Fatalf("the fast decoder refused MarshalSnapshot's line %s", l)
		}
	}
}

func snapLineSamples() [][]byte {
	full := snapJob{Job: &Job{ID: events.JobID{Cluster: 3, Proc: 1}, Inputs: []events.FileRef{{Name: "d.img", Bucket: "b", Object: "o", Size: 7, SHA256: "ab"}},
		OwnIwd: "/w", OwnLog: "l<og>", Status: 5, EnteredCurrentStatus: 1 << 40, HoldCode: 6, HoldSub: 100, HoldReason: "qemu \"died\"",
		LastHoldReason: "x & y", NumHolds: 2, ReleaseReason: "r", RemoveReason: "rm", RemoteHost: "slot1@h", LastRemoteHost: "slot2@h",
		JobStartDate: 1, JobCurrentStartDate: 2, CompletionDate: 3, NumJobStarts: 4, NumRestarts: 5, NumCkpts: 6, LastCkptTime: 9, ExitCode: -1,
		LastVacateTime: 7, Checkpoints: []events.Checkpoint{{Files: []events.FileRef{{Name: "m"}}, Taken: 9, Slot: "s", Seq: 6}},
		Outputs: []events.FileRef{{Name: "out"}}, BytesSent: 8, BytesRecv: 9, RemoteWallClock: 10,
		Claim: &Claim{ID: "n#1", Negotiator: "n", Startd: "s", Slot: "slot1@s", Machine: "h", State: ClaimExited, StopMode: events.ModeKill, StopFast: true,
			Outputs: []events.FileRef{{Name: "o2"}}, Exit: &events.VMEventPayload{ClaimID: "n#1", PoweredOff: true, RunNanos: 5}}},
		ClusterID: 3}
	own := "[ ProcId = 1 ]"
	full.OwnAd = &own
	fb, _ := json.Marshal(full)
	zb, _ := json.Marshal(snapJob{Job: &Job{}})
	return [][]byte{fb, zb,
		[]byte(`{}`), []byte(`null`), []byte(`{"cluster_id":1}`), []byte(`{"cluster_id":1,"own_ad":null}`), []byte(`{"OwnIwd":null}`),
		[]byte(`{"Claim":null}`), []byte(`{"Claim":{}}`), []byte(`{"Claim":{"Exit":null,"State":2}}`), []byte(`{"id":{"cluster":1}}`),
		[]byte(`{"Claim":{"Exit":{"checkpoint":{"files":[]}}}}`), []byte(`{"Claim":{"Exit":{"claim_id":"x"} }}`), []byte(`{"Status":1.5}`),
		[]byte(`{"ID":{"cluster":1,"proc":2},"ID":{"cluster":1}}`), []byte(`{"own_ad":"[ a = \"b\" ]","cluster_id":-1,"Outputs":[]}`),
		[]byte(`{"Claim":{"Exit":{"claim_id":"x"},"Exit":null}}`), []byte(`{"Claim":{"Exit":{"claim_id":"x"}}}`), []byte(`{"Claim":{"Exit":{`),
	}
}

// TestSnapJobLineIsUnmarshal: the fast decoder reads what json.Marshal
// writes of a job with every field set, and of one with none.
func TestSnapJobLineIsUnmarshal(t *testing.T) {
	for i, b := range snapLineSamples() {
		if fast := checkSnapJobLine(t, b); i < 2 && !fast {
			t.Fatalf("the fast decoder refused json.Marshal's %s", b)
		}
	}
}

func FuzzSnapJobLine(f *testing.F) {
	for _, b := range snapLineSamples() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkSnapJobLine(t, b) })
}
