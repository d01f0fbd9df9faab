package events

import (
	"encoding/json"
	"reflect"
	"testing"
)

// submitSamples are submits as json.Marshal writes them, and the shapes
// that must fall back to encoding/json.
func submitSamples() [][]byte {
	full := ClusterSubmittedPayload{SubmitID: "s-1", Owner: "alice", SubmitHost: "host", File: "job.sub", Iwd: "/home/alice",
		UserLog: "job.log", NumProcs: 2, Hold: true,
		Attrs:  []Attr{{Name: "JobVMType", Expr: `"kvm"`}, {Name: "Req", Expr: "a < 1 && b \u00e9 \x01"}},
		Inputs: []FileRef{{Name: "disk.img", Bucket: "user-alice", Object: "sha256-ab", Size: 1 << 40, SHA256: "ab"}},
		Procs:  []ProcSpec{{}, {Attrs: []Attr{{Name: "X", Expr: "1"}}, Inputs: []FileRef{{Name: "b"}}, Iwd: "/w", UserLog: "p.log"}},
	}
	fb, _ := json.Marshal(full)
	eb, _ := json.Marshal(ClusterSubmittedPayload{})
	return [][]byte{fb, eb,
		[]byte(`{}`), []byte(`null`), []byte(`{"owner":null}`), []byte(`{"Owner":"bob"}`), []byte(`{"owner":"a","owner":"b"}`),
		[]byte(`{"attrs":[],"procs":[{}],"num_procs":1}`), []byte(`{"num_procs":1.0}`), []byte(`{"num_procs":99999999999999999999}`),
		[]byte(`{"owner":"\ud800x"}`), []byte("{\"owner\":\"\xff\"}"), []byte(`{"owner":"a"} `), []byte(`{"owner":"a",}`),
		[]byte(`{"procs":[{"attrs":[{"n":"a","e":"b","x":1}]}]}`), []byte(`{"hold":1}`), []byte(`{"inputs":[{"size":-0}]}`),
	}
}

// TestFastSubmitDecodeIsUnmarshal: the fast path reads what json.Marshal
// writes (it is not merely falling back) and gives json.Unmarshal's result.
func TestFastSubmitDecodeIsUnmarshal(t *testing.T) {
	for i, b := range submitSamples() {
		checkFastSubmit(t, b)
		var p ClusterSubmittedPayload
		if i < 2 && !p.decodeFast(b) {
			t.Errorf("the fast path refused json.Marshal's %s", b)
		}
	}
}

func checkFastSubmit(t *testing.T, b []byte) {
	t.Helper()
	var fast, slow ClusterSubmittedPayload
	if !fast.decodeFast(b) {
		if !reflect.DeepEqual(fast, ClusterSubmittedPayload{}) {
			t.Fatalf("a refused %q changed the payload", b)
		}
		return
	}
	if err := json.Unmarshal(b, &slow); err != nil {
		t.Fatalf("the fast path took %q, which json.Unmarshal refuses: %v", b, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast %#v, json.Unmarshal %#v", b, fast, slow)
	}
}

func FuzzFastPayload(f *testing.F) {
	for _, b := range submitSamples() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkFastSubmit(t, b) })
}
