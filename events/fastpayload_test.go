package events

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// fastKinds are the payloads with a fast decoder, each with a full value
// (every field set, strings that need escapes) for json.Marshal to write.
var fastKinds = []struct {
	name string
	new  func() fastDecoder
	full any
}{
	{"ClusterSubmitted", func() fastDecoder { return new(ClusterSubmittedPayload) }, ClusterSubmittedPayload{SubmitID: "s-1", Owner: "alice",
		SubmitHost: "host", File: "job.sub", Iwd: "/home/alice", UserLog: "job.log", NumProcs: 2, Hold: true,
		Attrs:  []Attr{{Name: "JobVMType", Expr: `"kvm"`}, {Name: "Req", Expr: "a < 1 && b >= \"\\\\\" \u00e9 \x01 \t/"}},
		Inputs: []FileRef{{Name: "disk.img", Bucket: "user-alice", Object: "sha256-ab", Size: 1 << 40, SHA256: "ab"}},
		Procs:  []ProcSpec{{}, {Attrs: []Attr{{Name: "X", Expr: "1"}}, Inputs: []FileRef{{Name: "b"}}, Iwd: "/w", UserLog: "p.log"}},
	}},
	{"SubmitRequest", func() fastDecoder { return new(SubmitRequest) }, SubmitRequest{Cluster: 7, Payload: ClusterSubmittedPayload{SubmitID: "s-1",
		Owner: "alice", Iwd: "/home/alice", NumProcs: 1, Attrs: []Attr{{Name: "Cmd", Expr: `"x\ty"`}}, Procs: []ProcSpec{{Iwd: "/w"}}}}},
	{"JobMatched", func() fastDecoder { return new(JobMatchedPayload) }, JobMatchedPayload{ClaimID: "n#1", Negotiator: "n", Startd: "s",
		Slot: "slot1@s", Machine: "host<1>"}},
	{"JobStarted", func() fastDecoder { return new(JobStartedPayload) }, JobStartedPayload{ClaimID: "n#1", Slot: "slot1@s", Host: "<1.2.3.4:5>",
		Resumed: true, ResumedFrom: 3, ResumeNote: "checkpoint 4 \"unusable\""}},
	{"JobCompleted", func() fastDecoder { return new(JobCompletedPayload) }, JobCompletedPayload{ClaimID: "n#1", ExitCode: -1,
		Outputs: []FileRef{{Name: "out"}}, BytesSent: 1, BytesRecv: 2, RunNanos: 3, UserCPUNanos: 4, SysCPUNanos: 5,
		TotalUserCPUNanos: 6, TotalSysCPUNanos: 7, TotalBytesSent: 8, TotalBytesRecv: 9}},
	{"VMEvent", func() fastDecoder { return new(VMEventPayload) }, VMEventPayload{ClaimID: "n#1", Slot: "slot1@s", Host: "h", Resumed: true,
		PoweredOff: true, Outputs: []FileRef{{Name: "o", Size: 5}}, Reason: "it & that", ResumedFrom: 1, ResumeNote: "n", Hold: true,
		Code: 6, SubCode: 7, BytesIn: 8, BytesOut: 9, RunNanos: 10, UserCPUNanos: 11, SysCPUNanos: 12,
		Handle: json.RawMessage(`{"type":"kvm","name":"vm<1>","dir":"/x","pid":42,"data":{"qmp":"/x/q \"s\"","e":{}}}`)}},
	{"ClaimRequest", func() fastDecoder { return new(ClaimRequest) }, fullClaimRequest},
	{"ClaimAccepted", func() fastDecoder { return new(ClaimAcceptedPayload) }, ClaimAcceptedPayload{Req: fullClaimRequest, MemoryMiB: 512,
		Rank: -2.5e-7, Preempts: "n#0", LeaseSeconds: 1 << 40}},
	{"Matched", func() fastDecoder { return new(MatchedPayload) }, MatchedPayload{MatchID: "n#1", Startd: "s", Slot: "slot1@s", Machine: "h",
		SlotAd: "[ Name = \"slot1@s\"; Start = Memory >= 16 && true ]", Claims: 3, AdRevision: 1 << 62, Preempting: true}},
}

// fullClaimRequest has every field set; its job ad holds what json.Marshal
// escapes (quotes, <, >, &, a backslash, a tab, a letter outside ASCII).
var fullClaimRequest = ClaimRequest{ClaimID: "n#1", Schedd: "schedd", Job: JobID{Cluster: 3, Proc: -1}, Slot: "slot1@s",
	JobAd:       "[ Cmd = \"a\\tb\"; Requirements = Memory >= 16 && Arch == \"X86_64\" || x < 1; Owner = \"é\"\t]",
	Inputs:      []FileRef{{Name: "disk.img", Bucket: "user-alice", Object: "sha256-ab", Size: 1 << 33, SHA256: "ab"}},
	Checkpoints: []Checkpoint{{Files: []FileRef{{Name: "mem"}}, Taken: 1 << 60, Slot: "slot2@s", Seq: 4}, {}},
	Owner:       "alice", StaticAt: 12}

// payloadSamples are the payloads as json.Marshal writes them (full and
// zero), and shapes that must fall back to encoding/json or give its
// result.
func payloadSamples() [][]byte {
	var out [][]byte
	for _, k := range fastKinds {
		fb, _ := json.Marshal(k.full)
		zb, _ := json.Marshal(reflect.New(reflect.TypeOf(k.full)).Elem().Interface())
		out = append(out, fb, zb)
	}
	return append(out,
		[]byte(`{}`), []byte(`null`), []byte(`{"owner":null}`), []byte(`{"Owner":"bob"}`), []byte(`{"owner":"a","owner":"b"}`),
		[]byte(`{"attrs":[],"procs":[{}],"num_procs":1}`), []byte(`{"num_procs":1.0}`), []byte(`{"num_procs":99999999999999999999}`),
		[]byte(`{"owner":"\ud800x"}`), []byte("{\"owner\":\"\xff\"}"), []byte(`{"owner":"a"} `), []byte(`{"owner":"a",}`),
		[]byte(`{"owner":"\u00e9\u0041\/\b\f\n\r\t\"\\"}`), []byte(`{"owner":"\x"}`), []byte(`{"owner":"\u12"}`),
		[]byte(`{"procs":[{"attrs":[{"n":"a","e":"b","x":1}]}]}`), []byte(`{"hold":1}`), []byte(`{"inputs":[{"size":-0}]}`),
		[]byte(`{"cluster":3,"payload":null}`), []byte(`{"cluster":-1,"payload":{"owner":"a","attrs":null}}`), []byte(`{"payload":{},"payload":{}}`),
		[]byte(`{"payload":{"owner":"a"},"cluster":"3"}`), []byte(`{"payload":{"x":1}}`), []byte(`{"cluster":1e2}`),
		[]byte(`{"checkpoint":null,"slot":"s"}`), []byte(`{"exit_code":-3,"outputs":null}`), []byte(`{"resumed":true,"resumed_from":2}`),
		[]byte(`{"rank":-0}`), []byte(`{"rank":1.5E+3}`), []byte(`{"rank":1e400}`), []byte(`{"rank":01}`), []byte(`{"rank":1.}`),
		[]byte(`{"rank":.5}`), []byte(`{"rank":"1"}`), []byte(`{"rank":-}`), []byte(`{"rank":`), []byte(`{"rank":null,"req":null}`),
		[]byte(`{"ad_rev":-0}`), []byte(`{"ad_rev":9223372036854775807}`), []byte(`{"ad_rev":18446744073709551615}`), []byte(`{"claims":1e2}`),
		[]byte(`{"req":{"job":{"cluster":1,"proc":2},"checkpoints":[null,{"files":null,"seq":1}]}}`), []byte(`{"job":null,"inputs":[]}`),
		[]byte(`{"req":{"job":{"cluster":1,"cluster":2}}}`), []byte(`{"req":{"job":{"Cluster":1}}}`), []byte(`{"job":{"proc":1.5}}`),
		[]byte(`{"handle":null}`), []byte(`{"handle":{}}`), []byte(`{"handle":[1]}`), []byte(`{"handle":"h"}`), []byte(`{"handle":{"a":}}`),
		// A list given twice: encoding/json decodes the second into the
		// first's elements (size 1 stays), which only refusing the
		// duplicate name matches.
		[]byte(`{"inputs":[{"name":"a","size":1}],"inputs":[{"name":"b"}]}`),
		[]byte(`{"req":{"slot":"s","inputs":[{"name":"a","size":1}],"inputs":[{"name":"b"}]}}`),
		[]byte(`{"handle":{"a":1},"handle":{}}`), []byte(`{"handle": {"a" : [1, {"b":null}]} ,"slot":"s"}`), []byte(`{"handle":{"a":"\ud800"}}`),
	)
}

// TestFastDecodeIsUnmarshal: each fast path reads what json.Marshal
// writes (it does not merely fall back) and gives json.Unmarshal's result.
func TestFastDecodeIsUnmarshal(t *testing.T) {
	for _, k := range fastKinds {
		for _, v := range []any{k.full, reflect.New(reflect.TypeOf(k.full)).Elem().Interface()} {
			b, _ := json.Marshal(v)
			if !k.new().decodeFast(b) {
				t.Errorf("%s: the fast path refused json.Marshal's %s", k.name, b)
			}
		}
	}
	for _, b := range payloadSamples() {
		checkFast(t, b)
	}
}

// checkFast holds every fast decoder to json.Unmarshal on b.
func checkFast(t *testing.T, b []byte) {
	t.Helper()
	for _, k := range fastKinds {
		fast := k.new()
		zero := reflect.ValueOf(k.new()).Elem().Interface()
		if !fast.decodeFast(b) {
			if got := reflect.ValueOf(fast).Elem().Interface(); !reflect.DeepEqual(got, zero) {
				t.Fatalf("%s: a refused %q changed the payload", k.name, b)
			}
			continue
		}
		slow := k.new()
		if err := json.Unmarshal(b, slow); err != nil {
			t.Fatalf("%s: the fast path took %q, which json.Unmarshal refuses: %v", k.name, b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s: %q: fast %#v, json.Unmarshal %#v", k.name, b, fast, slow)
		}
	}
	checkDecodeSubmit(t, b)
	checkClaimAcceptedWithoutAd(t, b)
}

// checkClaimAcceptedWithoutAd holds DecodeClaimAcceptedWithoutAd to
// json.Unmarshal on b: the same payload but for the empty job ad, or the
// same refusal.
func checkClaimAcceptedWithoutAd(t *testing.T, b []byte) {
	t.Helper()
	var slow ClaimAcceptedPayload
	slowErr := json.Unmarshal(b, &slow)
	p, err := Event{Type: ClaimAccepted, Payload: b}.DecodeClaimAcceptedWithoutAd()
	if (err != nil) != (slowErr != nil) {
		t.Fatalf("DecodeClaimAcceptedWithoutAd(%q): error %v, json.Unmarshal's %v", b, err, slowErr)
	}
	if err != nil {
		return
	}
	if p.Req.JobAd != "" {
		t.Fatalf("DecodeClaimAcceptedWithoutAd(%q) kept the job ad", b)
	}
	slow.Req.JobAd = ""
	if !reflect.DeepEqual(p, slow) {
		t.Fatalf("DecodeClaimAcceptedWithoutAd(%q): %#v, json.Unmarshal %#v", b, p, slow)
	}
}

// checkDecodeSubmit holds DecodeSubmit, with DecodeAttrs of the attributes
// it leaves as JSON, to json.Unmarshal on b: the same payload, or the same
// refusal.
func checkDecodeSubmit(t *testing.T, b []byte) {
	t.Helper()
	var slow ClusterSubmittedPayload
	slowErr := json.Unmarshal(b, &slow)
	p, raw, err := Event{Type: ClusterSubmitted, Payload: b}.DecodeSubmit()
	if (err != nil) != (slowErr != nil) {
		t.Fatalf("DecodeSubmit(%q): error %v, json.Unmarshal's %v", b, err, slowErr)
	}
	if err != nil {
		return
	}
	if raw != nil {
		if p.Attrs != nil {
			t.Fatalf("DecodeSubmit(%q) returned the attributes both decoded and as JSON", b)
		}
		if p.Attrs, err = DecodeAttrs(raw); err != nil {
			t.Fatalf("DecodeSubmit(%q) left attributes %q that DecodeAttrs refuses: %v", b, raw, err)
		}
	}
	if !reflect.DeepEqual(p, slow) {
		t.Fatalf("DecodeSubmit(%q): %#v, json.Unmarshal %#v", b, p, slow)
	}
}

// The fast path of DecodeSubmit takes what json.Marshal writes, leaving
// the attributes as JSON.
func TestDecodeSubmitLeavesAttrs(t *testing.T) {
	b, _ := json.Marshal(fastKinds[0].full)
	p, raw, err := Event{Type: ClusterSubmitted, Payload: b}.DecodeSubmit()
	if err != nil || raw == nil || p.Attrs != nil || p.Owner != "alice" {
		t.Fatalf("DecodeSubmit: owner %q, attrs %v, raw %q, err %v", p.Owner, p.Attrs, raw, err)
	}
	for _, bad := range []string{`{"attrs":[{"n":1}]}`, `{"attrs":"x"}`, `{"attrs":[{"n":"a","n":"b"}]}`, `{"attrs":[{"n":"\ud800"}]}`} {
		checkDecodeSubmit(t, []byte(bad))
	}
}

func FuzzFastPayload(f *testing.F) {
	for _, b := range payloadSamples() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkFast(t, b) })
}

// TestInternSharesOneString: a name read twice is one string, so a
// replay's million events hold each slot and machine name once; a name
// that displaces another in the table is still read right, and so is
// one too long to intern.
func TestInternSharesOneString(t *testing.T) {
	read := func(b string) JobMatchedPayload {
		var p JobMatchedPayload
		if !p.decodeFast([]byte(b)) {
			t.Fatalf("fast path refused %s", b)
		}
		return p
	}
	// A slot and a machine in places of their own (the table is lossy:
	// the machine, read second, would take the slot's place).
	k := 7
	for internSlot(fmt.Appendf(nil, "slot1@sim%d", k)) == internSlot(fmt.Appendf(nil, "sim%d", k)) {
		k++
	}
	a := read(fmt.Sprintf(`{"claim_id":"n#1","slot":"slot1@sim%d","machine":"sim%d"}`, k, k))
	b := read(fmt.Sprintf(`{"claim_id":"n#2","slot":"slot1@sim%d","machine":"sim%d"}`, k, k))
	if unsafe.StringData(a.Slot) != unsafe.StringData(b.Slot) || unsafe.StringData(a.Machine) != unsafe.StringData(b.Machine) {
		t.Fatal("the same slot read twice is two strings")
	}
	if unsafe.StringData(a.ClaimID) == unsafe.StringData(b.ClaimID) {
		t.Fatal("claim ids are not names")
	}
	// Thousands of names, more than the table's places: each read right.
	for i := range 3 * len(interned) {
		slot := fmt.Sprintf("slot%d@machine-%d.example.org", i%7, i)
		if p := read(`{"slot":"` + slot + `"}`); p.Slot != slot {
			t.Fatalf("read %q, want %q", p.Slot, slot)
		}
	}
	long := strings.Repeat("m", maxInterned+1)
	if p := read(`{"machine":"` + long + `"}`); p.Machine != long {
		t.Fatalf("long name read as %q", p.Machine)
	}
}

// TestInternConcurrent: decoders on many goroutines share the table (run
// under -race).
func TestInternConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				name := fmt.Sprintf("slot1@sim%d", (i*7+g)%50)
				var p JobStartedPayload
				if !p.decodeFast([]byte(`{"slot":"`+name+`","host":"h"}`)) || p.Slot != name {
					t.Errorf("read %q, want %q", p.Slot, name)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkDecodeClaimRequest decodes a claim request whose job ad is
// about the size of a VM job's (2.5 KB of ClassAd text, which json.Marshal
// writes with many escapes: quotes, &&, <, >).
func BenchmarkDecodeClaimRequest(b *testing.B) {
	var ad strings.Builder
	for i := 0; ad.Len() < 2500; i++ {
		fmt.Fprintf(&ad, "Attr%d = \"value %d\"; Req%d = (TARGET.Memory >= %d) && (TARGET.Arch == \"X86_64\"); ", i, i, i, i)
	}
	data, err := json.Marshal(ClaimRequest{ClaimID: "negotiator#4242", Schedd: "schedd", Job: JobID{Cluster: 42, Proc: 7},
		Slot: "slot3@startd7", JobAd: "[ " + ad.String() + "]", StaticAt: 120, Owner: "alice",
		Inputs: []FileRef{{Name: "hello.img", Bucket: "user-alice", Object: "sha256-0123", Size: 1 << 20, SHA256: "0123"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var req ClaimRequest
		if !req.decodeFast(data) {
			b.Fatal("not decoded")
		}
	}
}
