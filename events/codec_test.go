package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestSubject(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"job", Event{Source: "startd1", Type: "VMStarted", Schedd: "schedd", Cluster: 12, Proc: 0}, "vmpool.ev.startd.startd1.job.schedd.12.0.VMStarted"},
		{"cluster", Event{Source: "schedd", Type: "ClusterSubmitted", Schedd: "schedd", Cluster: 3, Proc: -1}, "vmpool.ev.startd.schedd.cluster.schedd.3.ClusterSubmitted"},
		{"machine", Event{Source: "startd1", Type: "SlotChanged", Proc: -1, Machine: "slot1@startd1"}, "vmpool.ev.startd.startd1.machine.slot1@startd1.SlotChanged"},
		{"daemon", Event{Source: "neg", Type: "Started", Proc: -1}, "vmpool.ev.startd.neg.daemon.Started"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Subject(RoleStartd, tc.e); got != tc.want {
				t.Fatalf("Subject = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"not json", `{"v":1,`, ErrMalformed},
		{"newer version", `{"v":99,"src":"a","seq":1,"type":"X"}`, ErrNewerVersion},
		{"no version", `{"src":"a","seq":1,"type":"X"}`, ErrMalformed},
		{"no source", `{"v":1,"seq":1,"type":"X"}`, ErrMalformed},
		{"forged source with dots", `{"v":1,"src":"a.b","seq":1,"type":"X"}`, ErrMalformed},
		{"no seq", `{"v":1,"src":"a","type":"X"}`, ErrMalformed},
		{"bad type", `{"v":1,"src":"a","seq":1,"type":"a.>"}`, ErrMalformed},
		{"bad schedd", `{"v":1,"src":"a","seq":1,"type":"X","schedd":"*"}`, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(%s) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
	big := make([]byte, MaxEventSize+1)
	if _, err := Decode(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	e := New("JobSubmitted", map[string]int{"n": 3}).ForJob("schedd", JobID{7, 2})
	e.Source, e.Seq, e.Time = "schedd", 9, 123
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != e.String() || string(got.Payload) != string(e.Payload) || got.Time != 123 {
		t.Fatalf("round trip: got %+v want %+v", got, e)
	}
	var p map[string]int
	if err := got.Decode(&p); err != nil || p["n"] != 3 {
		t.Fatalf("payload: %v %v", p, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"src":"schedd","seq":1,"type":"JobSubmitted","t":1,"schedd":"schedd","cluster":1,"p":{"a":1}}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`[]`))
	ns := newNames() // shared by the inputs, as by a scan's events
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast, slow Event
		if decodeEnvelope(b, &fast, ns, false) {
			if err := json.Unmarshal(b, &slow); err != nil {
				t.Fatalf("decodeEnvelope took what json.Unmarshal refuses: %v", err)
			}
			fb, _ := json.Marshal(fast)
			sb, _ := json.Marshal(slow)
			if !bytes.Equal(fb, sb) {
				t.Fatalf("decodeEnvelope %s, json.Unmarshal %s", fb, sb)
			}
		}
		e, err := Decode(b)
		if err != nil {
			return
		}
		// A decoded event re-encodes and decodes to the same envelope.
		b2, err := Encode(e)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		e2, err := Decode(b2)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if e2.String() != e.String() || e2.Time != e.Time {
			t.Fatalf("round trip changed %v to %v", e, e2)
		}
		// Read as a stored record (what Encode wrote), it is the same
		// event, payload and all, without the payload's check.
		e3, err := decodeNamed(b2, ns, true)
		if err != nil {
			t.Fatalf("stored record %s refused: %v", b2, err)
		}
		if j2, j3 := mustJSON(t, e2), mustJSON(t, e3); j2 != j3 {
			t.Fatalf("stored record read as %s, Decode %s", j3, j2)
		}
		var any Event
		decodeEnvelope(b, &any, ns, true) // any input: no panic
		_ = Subject(RoleSchedd, e)
	})
}

func mustJSON(t *testing.T, e Event) string {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("marshal %v: %v", e, err)
	}
	return string(b)
}

// TestStoredPayloadNotChecked: a record the log stored is read with its
// payload taken as written when the payload is its last member, and only
// then; Decode, which reads what comes off the bus, checks every payload.
func TestStoredPayloadNotChecked(t *testing.T) {
	bad := []byte(`{"v":1,"src":"schedd","seq":1,"type":"JobSubmitted","t":1,"p":{"a":}}`)
	if _, err := Decode(bad); err == nil {
		t.Fatal("Decode took a payload that is not JSON")
	}
	e, err := decodeNamed(bad, nil, true)
	if err != nil || string(e.Payload) != `{"a":}` {
		t.Fatalf("stored record: payload %q, err %v; want it as written", e.Payload, err)
	}
	good, err := Encode(Event{V: 1, Source: "schedd", Seq: 2, Type: "JobSubmitted", Payload: json.RawMessage(`{"a":[1,"}"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	e, err = decodeNamed(good, nil, true)
	if err != nil || string(e.Payload) != `{"a":[1,"}"]}` || e.Seq != 2 {
		t.Fatalf("stored record %s: %+v, %v", good, e, err)
	}
	for _, b := range []string{
		`{"v":1,"src":"schedd","seq":1,"type":"JobSubmitted","p":}`,
		`{"v":1,"src":"schedd","seq":1,"type":"JobSubmitted","p": {}}`,
	} {
		var x Event
		if decodeEnvelope([]byte(b), &x, nil, true) {
			t.Errorf("stored record %s taken: payload %q", b, x.Payload)
		}
	}
}

func TestParseJobID(t *testing.T) {
	for in, want := range map[string]bool{"1.0": true, "12.3": true, "0.0": false, "1": false, "a.b": false, "1.-1": false} {
		if _, ok := ParseJobID(in); ok != want {
			t.Errorf("ParseJobID(%q) ok = %v, want %v", in, ok, want)
		}
	}
}

func TestCheckSubject(t *testing.T) {
	e := New("Matched", nil).ForJob("schedd", JobID{3, 1})
	e.Source, e.Seq = "negotiator", 9
	if err := CheckSubject(Subject(RoleNegotiator, e), e); err != nil {
		t.Fatalf("genuine event refused: %v", err)
	}
	for _, subject := range []string{
		"vmpool.ev.negotiator.other.job.schedd.3.1.Matched", // another source
		"vmpool.ev.negotiator.negotiator.job.schedd.4.1.Matched",
		"vmpool.ev.negotiator.negotiator.job.schedd.3.1.Removed",
		"vmpool.ev",
		"other.subject",
	} {
		if err := CheckSubject(subject, e); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", subject, err)
		}
	}
}

// decodeEnvelope, where it takes an event, decodes it as json.Unmarshal
// does; what it leaves, encoding/json decodes.
func TestDecodeEnvelopeIsUnmarshal(t *testing.T) {
	e := New("JobSubmitted", map[string]any{"n": 3, "s": "a\"b"}).ForJob("schedd", JobID{7, -1})
	e.V, e.Source, e.Seq, e.Time, e.Machine = Version, "schedd", 42, 1_700_000_000_123_456_789, "slot1@m"
	enc, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	cases := []string{string(enc),
		`{"v":1,"src":"schedd","seq":1,"type":"T","t":1}`,
		`{"v":1,"src":"s","seq":1,"type":"T","t":-5,"proc":-1,"p":null}`,
		`{"v":1,"src":"s","seq":1,"type":"T","t":1,"p":[1,2]}`,
		`{"v":1,"src":"s","seq":18446744073709551615,"type":"T","t":1}`,
		`{"v":1,"src":"s","seq":1,"type":"T","t":99999999999999999999}`,
		`{"v":1,"src":"s\u0041","seq":1,"type":"T","t":1}`,
		`{"v":1,"SRC":"s","seq":1,"type":"T","t":1}`,
		`{"src":"s","v":1,"seq":1,"type":"T","t":1}`,
		`{"v":1,"v":2,"src":"s","seq":1,"type":"T","t":1}`,
		`{"v":1.0,"src":"s","seq":1,"type":"T","t":1}`,
		`{"v":01,"src":"s","seq":1,"type":"T","t":1}`,
		`{"v":1, "src":"s","seq":1,"type":"T","t":1}`,
		`{"v":1,"src":"s","seq":1,"type":"T","t":1,"p":{"a":}}`,
		`{"v":1,"src":"s","seq":1,"type":"T","t":1,"x":2}`,
		`{"v":1,"src":"s","seq":1,"type":"T","t":1,}`,
		`{"v":1,"src":"s","seq":1,"type":"T","t":1}}`,
		`{"v":1,"src":"s","seq":-1,"type":"T","t":1}`,
		`{"v":1,"src":"s","seq":1,"type":"T","t":1,"p":{}}`,
		`{}`, `{`, `}`, `{"v"}`, `{"v":}`, `{"v":-}`, `{"":1}`,
	}
	ns := newNames()
	for _, c := range cases {
		var fast Event
		if !decodeEnvelope([]byte(c), &fast, ns, false) {
			continue
		}
		var slow Event
		if err := json.Unmarshal([]byte(c), &slow); err != nil {
			t.Fatalf("%s: decodeEnvelope took it, json.Unmarshal refuses it: %v", c, err)
		}
		fb, _ := json.Marshal(fast)
		sb, _ := json.Marshal(slow)
		if !bytes.Equal(fb, sb) {
			t.Fatalf("%s:\ndecodeEnvelope %s\njson.Unmarshal %s", c, fb, sb)
		}
	}
	var got Event
	if !decodeEnvelope(enc, &got, nil, false) {
		t.Fatalf("Encode's own layout left to encoding/json: %s", enc)
	}
}

// checkEncode holds encodeEnvelope to json.Marshal: when it takes an event
// it writes the same bytes.
func checkEncode(t *testing.T, e Event) (took bool) {
	t.Helper()
	fast, ok := encodeEnvelope(&e)
	if !ok {
		return false
	}
	slow, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("encodeEnvelope took %#v, which json.Marshal refuses: %v", e, err)
	}
	if string(fast) != string(slow) {
		t.Fatalf("encodeEnvelope wrote %s, json.Marshal %s", fast, slow)
	}
	return true
}

// TestEncodeIsMarshal: the events daemons write take the fast path, and
// what it writes is json.Marshal's.
func TestEncodeIsMarshal(t *testing.T) {
	for _, k := range fastKinds {
		e := New(k.name, k.full).ForJob("schedd", JobID{Cluster: 12, Proc: 3})
		e.Source, e.Seq, e.Time = "schedd", 99, -5
		if !checkEncode(t, e) {
			t.Errorf("%s: the fast path refused json.Marshal's own payload %s", k.name, e.Payload)
		}
	}
	for _, e := range []Event{{}, {V: 1, Source: "s", Seq: 1, Type: "T", Machine: "slot1@m", Proc: -1}, {Payload: json.RawMessage(`null`)}} {
		if !checkEncode(t, e) {
			t.Errorf("the fast path refused %#v", e)
		}
	}
	for _, p := range []string{`{"a": 1}`, `{"a":"<"}`, `{"a":1`, `{"a":"x"} `, "{\"a\":\"\xe2\x80\xa8\"}"} {
		if checkEncode(t, Event{V: 1, Source: "s", Type: "T", Payload: json.RawMessage(p)}) {
			t.Errorf("the fast path took payload %q, which json.Marshal rewrites or refuses", p)
		}
	}
	for _, s := range []string{"a<b", "q\"", "é", "\x01"} {
		if checkEncode(t, Event{V: 1, Source: s, Type: "T"}) {
			t.Errorf("the fast path took source %q, which json.Marshal escapes", s)
		}
	}
}

func FuzzEncode(f *testing.F) {
	f.Add("schedd", "JobMatched", "schedd", "", 12, 0, []byte(`{"claim_id":"n#1"}`))
	f.Add("startd1", "VMStarted", "", "slot1@h", -1, 3, []byte(`{"a":[1,2.5e3,"x\"y",null,true]}`))
	f.Add("s", "T", "q", "m", 0, 0, []byte(`"a b"`))
	f.Fuzz(func(t *testing.T, src, typ, sd, machine string, cluster, proc int, payload []byte) {
		e := Event{V: 1, Source: src, Seq: uint64(cluster) * 7, Type: typ, Time: int64(proc) << 20, Schedd: sd, Cluster: cluster, Proc: proc, Machine: machine}
		if len(payload) > 0 {
			e.Payload = payload
		}
		checkEncode(t, e)
	})
}
