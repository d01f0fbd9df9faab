package events

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

var jsonCases = []string{
	`{}`, `[]`, `{ }`, `[ ]`, ` 1 `, `0`, `-0`, `-0.5e+10`, `1E5`, `12.25`, `"a\"b\\c\/\u00e9\n"`,
	`true`, `false`, `null`, `{"a":1,"b":[1,2,{"c":null}],"d":{}}`,
	"{\n  \"a\" : [ 1 , 2 ] ,\t\"b\":\"x\"\r}\n  ", `[[[[]]]]`, `{"a":{"b":{"c":[]}}}`,
	`{"<>":"\u003c\u2028"}`, `"é ü"`, `[1,"two",3.0,true,null,{"k":"v"}]`,
	// Invalid, each for a different reason.
	``, ` `, `{`, `}`, `[1,]`, `[,1]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{a:1}`, `{"a" 1}`,
	`01`, `-`, `1.`, `.5`, `1e`, `1e+`, `+1`, `tru`, `nul`, `falsey`, `"abc`, `"a\x"`, `"\u12g4"`,
	"\"a\tb\"", `[1 2]`, `{"a":1 "b":2}`, `1 2`, `[}`, `{]`, `"\`, `[1,2`, `{"a":[}`,
	`{"a":1}}`, `[]]`, "\x00", `nulll`, `[-]`, `{"":""}`,
}

// JSONValueEnd accepts what json.Valid accepts, and ends where the value ends.
func TestJSONValueEndIsValid(t *testing.T) {
	deep := strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	tooDeep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	for _, c := range append(jsonCases, deep, tooDeep) {
		checkValueEnd(t, []byte(c))
	}
}

// endsPlain says of a word what jsonPlain says of its bytes: exhaustively
// for one byte among plain ones, at every place, and for random words.
func TestEndsPlainIsBytewise(t *testing.T) {
	bytewise := func(w []byte) bool {
		for _, c := range w {
			if !jsonPlain[c] {
				return true
			}
		}
		return false
	}
	check := func(w []byte) {
		t.Helper()
		if got, want := endsPlain(binary.LittleEndian.Uint64(w)), bytewise(w); got != want {
			t.Fatalf("%q: endsPlain %v, byte by byte %v", w, got, want)
		}
	}
	for p := range 8 {
		for c := range 256 {
			for _, fill := range []byte{'a', 0x7f, 0x80, 0xff, ' '} {
				w := bytes.Repeat([]byte{fill}, 8)
				w[p] = byte(c)
				check(w)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	w := make([]byte, 8)
	for range 1 << 20 {
		binary.LittleEndian.PutUint64(w, r.Uint64())
		for i := range w { // bias towards the bytes that matter
			switch r.IntN(8) {
			case 0:
				w[i] = '"'
			case 1:
				w[i] = '\\'
			case 2:
				w[i] = byte(r.IntN(0x21))
			case 3, 4:
				w[i] = 'a' + byte(r.IntN(26))
			}
		}
		check(w)
	}
	// And strings long enough to be read by the word, the end at each place.
	for n := range 40 {
		for _, end := range []string{`"`, `\"`, `\n"`, "\t\"", "\x01\""} {
			checkValueEnd(t, []byte(`"`+strings.Repeat("é", n%3)+strings.Repeat("x", n)+end))
		}
	}
}

func checkValueEnd(t *testing.T, b []byte) {
	t.Helper()
	end, ok := JSONValueEnd(b, 0)
	whole := ok && skipJSONSpace(b, end) == len(b)
	if want := json.Valid(b); whole != want {
		t.Fatalf("%.60q: JSONValueEnd says valid %v, json.Valid %v", b, whole, want)
	}
	if ok && !json.Valid(b[:end]) {
		t.Fatalf("%.60q: JSONValueEnd ends at %d, and %.60q is not a value", b, end, b[:end])
	}
}

// AppendIndentJSON gives json.Indent's bytes, and nothing for invalid
// input; AppendIndentValidJSON gives the same for valid input and, for
// invalid, returns (it neither fails nor runs on).
func TestAppendIndentJSONIsIndent(t *testing.T) {
	for _, c := range jsonCases {
		checkIndent(t, []byte(c))
	}
}

func checkIndent(t *testing.T, b []byte) {
	t.Helper()
	got, ok := AppendIndentJSON([]byte("x"), b, "  ")
	var want bytes.Buffer
	err := json.Indent(&want, b, "", "  ")
	if ok != (err == nil) {
		t.Fatalf("%.60q: AppendIndentJSON ok %v, json.Indent error %v", b, ok, err)
	}
	trusted := AppendIndentValidJSON([]byte("x"), b, "  ")
	if !ok {
		if string(got) != "x" {
			t.Fatalf("%.60q: invalid input appended %q", b, got)
		}
		return
	}
	if string(got) != "x"+want.String() {
		t.Fatalf("%.60q:\nAppendIndentJSON %q\njson.Indent      %q", b, got[1:], want.String())
	}
	if !bytes.Equal(trusted, got) {
		t.Fatalf("%.60q:\nAppendIndentValidJSON %q\nAppendIndentJSON      %q", b, trusted[1:], got[1:])
	}
}

func FuzzJSONValueEnd(f *testing.F) {
	for _, c := range jsonCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkValueEnd(t, b)
		checkIndent(t, b)
	})
}

// decodeReply decodes what json.Unmarshal decodes, on the layouts its fast
// path takes and on those it must leave to encoding/json.
func TestDecodeReplyIsUnmarshal(t *testing.T) {
	for _, c := range []string{
		`{"data":{"ads":[{"a":1}],"totals":{"jobs":1}},"more":true}`,
		`{"data":[1,2]}`,
		`{"data": "x" }`,
		`{"data":"x"}`,
		`{"data":1,"error":{"code":"bad-request","msg":"no"}}`,
		`{"data":1,"more":true,"more":false}`,
		`{"data":{"a":1}},"more":true}`,
		`{"data":{"a":1},"more":true}x`,
		`{"data":null}`,
		`{"error":{"code":"x","msg":"y"}}`,
		`{}`,
		`{"data":[1,}`,
		`not json`,
	} {
		got, gerr := decodeReply([]byte(c))
		var want Reply
		werr := json.Unmarshal([]byte(c), &want)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%s: decodeReply error %v, json.Unmarshal error %v", c, gerr, werr)
		}
		if gerr != nil {
			continue
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if !bytes.Equal(gb, wb) {
			t.Fatalf("%s: decodeReply %s, json.Unmarshal %s", c, gb, wb)
		}
	}
}

func BenchmarkJSONValueEnd(b *testing.B) {
	ad := []byte(`{"MyType":"Job","Owner":"alice","Cmd":"bench","Iwd":"/home/alice/some/long/path/to/the/job","Requirements":"\/Expr(TARGET.Memory >= 16 \u0026\u0026 TARGET.HasVM)\/","JobStatus":1,"QDate":1700000000,"Weights":[1,2.5,"x"],"Nested":{"a":true,"b":null}}`)
	b.SetBytes(int64(len(ad)))
	for b.Loop() {
		if _, ok := JSONValueEnd(ad, 0); !ok {
			b.Fatal("invalid")
		}
	}
}
