package events

import (
	"bytes"
	"encoding/json"
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

// AppendIndentJSON gives json.Indent's bytes, and nothing for invalid input.
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
	if !ok {
		if string(got) != "x" {
			t.Fatalf("%.60q: invalid input appended %q", b, got)
		}
		return
	}
	if string(got) != "x"+want.String() {
		t.Fatalf("%.60q:\nAppendIndentJSON %q\njson.Indent      %q", b, got[1:], want.String())
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
