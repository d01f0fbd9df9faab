package classad

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestAdBasics(t *testing.T) {
	ad := NewAd()
	ad.SetInt("Memory", 1024)
	ad.SetString("Name", "slot1")
	ad.SetBool("HasVM", true)
	ad.SetReal("LoadAvg", 0.5)
	if err := ad.SetExpr("Free", "Memory - 24"); err != nil {
		t.Fatal(err)
	}
	if got := ad.Names(); !reflect.DeepEqual(got, []string{"Memory", "Name", "HasVM", "LoadAvg", "Free"}) {
		t.Errorf("Names = %q", got)
	}
	if ad.Len() != 5 {
		t.Errorf("Len = %d", ad.Len())
	}
	if v := ad.Eval("FREE"); v.String() != "1000" {
		t.Errorf("Eval(FREE) = %v", v)
	}
	if e, ok := ad.Lookup("memory"); !ok || e.String() != "1024" {
		t.Errorf("Lookup(memory) = %v, %v", e, ok)
	}
	ad.SetInt("MEMORY", 2048) // replaces in place, takes the new spelling
	if got := ad.Names(); got[0] != "MEMORY" || len(got) != 5 {
		t.Errorf("after replace Names = %q", got)
	}
	if n, ok := ad.EvalInt("Free"); !ok || n != 2024 {
		t.Errorf("EvalInt(Free) = %d, %v", n, ok)
	}
	if s, ok := ad.EvalString("name"); !ok || s != "slot1" {
		t.Errorf("EvalString = %q", s)
	}
	if b, ok := ad.EvalBool("HasVM"); !ok || !b {
		t.Errorf("EvalBool = %v %v", b, ok)
	}
	ad.Delete("name")
	if _, ok := ad.Lookup("Name"); ok || ad.Len() != 4 || ad.Has("Name") {
		t.Errorf("Delete left %v", ad)
	}
	ad.Delete("nothing")
	ad.Set("HasVM", nil)
	if ad.Has("HasVM") {
		t.Errorf("Set(nil) did not delete")
	}
	if got := ad.String(); got != "[ MEMORY = 2048; LoadAvg = 0.5; Free = Memory - 24 ]" {
		t.Errorf("String = %s", got)
	}
	if v := ad.Eval("Missing"); !v.IsUndefined() {
		t.Errorf("missing = %v", v)
	}
}

func TestAdManyAttributes(t *testing.T) {
	ad := NewAd()
	for i := 0; i < 1000; i++ {
		ad.SetInt("A"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+itoa(i), int64(i))
	}
	for i := 0; i < 1000; i += 3 {
		ad.Delete("A" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i))
	}
	for i := 0; i < 1000; i++ {
		name := "a" + strings.Repeat("X", i%7) + string(rune('A'+i%26)) + itoa(i)
		v := ad.Eval(name)
		if i%3 == 0 {
			if !v.IsUndefined() {
				t.Fatalf("%s = %v after delete", name, v)
			}
		} else if n, _ := v.IntValue(); n != int64(i) {
			t.Fatalf("%s = %v", name, v)
		}
	}
}

func itoa(i int) string { return Int(int64(i)).String() }

func TestChainedAds(t *testing.T) {
	cluster := mustAd(t, `[ Owner = "alice"; Cmd = "vm"; RequestMemory = JobVMMemory; JobVMMemory = 512 ]`)
	proc := mustAd(t, `[ ProcId = 3; JobVMMemory = 1024 ]`)
	proc.SetParent(cluster)
	if proc.Parent() != cluster {
		t.Fatal("Parent")
	}
	// Inherited expressions are evaluated with the proc ad as MY.
	if v := proc.Eval("RequestMemory"); v.String() != "1024" {
		t.Errorf("RequestMemory = %v, want the proc's 1024", v)
	}
	if v := proc.Eval("Owner"); v.String() != `"alice"` {
		t.Errorf("Owner = %v", v)
	}
	if v := MustParseExpr("PARENT.JobVMMemory").Eval(proc, nil); v.String() != "512" {
		t.Errorf("PARENT.JobVMMemory = %v", v)
	}
	if got := proc.Names(); !reflect.DeepEqual(got, []string{"ProcId", "JobVMMemory"}) {
		t.Errorf("Names = %q (own only)", got)
	}
	flat := proc.Flatten()
	if flat.Parent() != nil || flat.Len() != 5 {
		t.Errorf("Flatten = %s", flat)
	}
	if got, want := proc.FlatNames(), flat.Names(); !reflect.DeepEqual(got, want) || len(got) != 5 {
		t.Errorf("FlatNames = %q, Flatten's names %q", got, want)
	}
	if got := proc.String(); got != `[ ProcId = 3; JobVMMemory = 1024; Owner = "alice"; Cmd = "vm"; RequestMemory = JobVMMemory ]` {
		t.Errorf("String = %s", got)
	}
	if !strings.Contains(proc.LongString(), "Owner = \"alice\"\n") {
		t.Errorf("LongString lacks inherited attributes:\n%s", proc.LongString())
	}
	// A parent loop is refused.
	cluster.SetParent(proc)
	if cluster.Parent() != nil {
		t.Errorf("SetParent accepted a loop")
	}
	// Deleting the override shows the parent's value.
	proc.Delete("JobVMMemory")
	if v := proc.Eval("RequestMemory"); v.String() != "512" {
		t.Errorf("after delete RequestMemory = %v", v)
	}
	cp := proc.Copy()
	cp.SetInt("ProcId", 4)
	if v := proc.Eval("ProcId"); v.String() != "3" || cp.Parent() != cluster {
		t.Errorf("Copy is not independent: %v", v)
	}
}

func TestScoping(t *testing.T) {
	job := mustAd(t, `[ Memory = 100; Want = 2048; Both = "job"; OnlyJob = 1; Self = MY.Memory; Req = TARGET.Memory >= Want ]`)
	machine := mustAd(t, `[ Memory = 4096; Both = "machine"; OnlyMachine = 7; Loop = TARGET.Want + Memory ]`)
	runEvalCases(t, job, machine, []evalCase{
		{"bare prefers MY", "Both", `"job"`},
		{"bare falls back to TARGET", "OnlyMachine", "7"},
		{"bare missing", "Nowhere", "undefined"},
		{"MY only", "MY.OnlyMachine", "undefined"},
		{"TARGET only", "TARGET.OnlyJob", "undefined"},
		{"TARGET", "TARGET.Memory", "4096"},
		{"MY", "MY.Memory", "100"},
		{"scope keywords ignore case", "target.memory + my.memory", "4196"},
		{"attribute of TARGET evaluated in TARGET's scope", "TARGET.Loop", "6144"},
		{"MY attribute referring to TARGET", "Req", "true"},
		{"nested MY", "Self", "100"},
		{"MY as an ad", "size(MY)", "6"},
		{"TARGET as an ad", "TARGET.Both", `"machine"`},
		{"absolute reference", ".Memory", "100"},
		{"CurrentTime fallback", "CurrentTime", "1709296496"},
	})
	// With one ad, TARGET is undefined.
	runEvalCases(t, job, nil, []evalCase{
		{"no target", "TARGET.Memory", "undefined"},
		{"no target bare", "OnlyMachine", "undefined"},
		{"requirement without target", "Req", "undefined"},
	})
	strict := &EvalOptions{Strict: true}
	if v := MustParseExpr("OnlyMachine").EvalWith(job, machine, strict); !v.IsUndefined() {
		t.Errorf("strict bare name reached TARGET: %v", v)
	}
}

func TestNestedScopes(t *testing.T) {
	ad := mustAd(t, `[ x = 1; inner = [ y = x + 10; z = [ w = y + x ] ]; sel = inner.z.w; p = inner.q; q = 5 ]`)
	runEvalCases(t, ad, nil, []evalCase{
		{"inner sees outer", "inner.y", "11"},
		{"two levels", "inner.z.w", "12"},
		{"via attribute", "sel", "12"},
		{"inner missing falls to outer", "p", "undefined"},
		{"parent of nested", "inner.z.w + 0", "12"},
	})
	ad2 := mustAd(t, `[ v = 3; r = [ v = 4; up = parent.v; me = MY.v ] ]`)
	runEvalCases(t, ad2, nil, []evalCase{
		{"parent keyword", "r.up", "3"},
		{"MY inside nested is the nested ad", "r.me", "4"},
	})
}

func TestCycles(t *testing.T) {
	ad := mustAd(t, `[ a = b; b = a; c = c + 1; d = e; e = [ f = d ].f; ok = 1; g = ok + ok ]`)
	for _, name := range []string{"a", "b", "c", "d"} {
		if v := ad.Eval(name); !v.IsError() {
			t.Errorf("%s = %v, want error (cycle)", name, v)
		}
	}
	if v := ad.Eval("g"); v.String() != "2" {
		t.Errorf("g = %v: referring twice is not a cycle", v)
	}
	// A cycle across two ads.
	job := mustAd(t, `[ x = TARGET.y ]`)
	machine := mustAd(t, `[ y = TARGET.x ]`)
	if v := job.EvalIn("x", machine); !v.IsError() {
		t.Errorf("cross-ad cycle = %v", v)
	}
	// A long chain is fine; an over-long one ends in error, not a crash.
	var b strings.Builder
	b.WriteString("[ ")
	for i := 0; i < 6000; i++ {
		b.WriteString("a" + itoa(i) + " = a" + itoa(i+1) + " + 1; ")
	}
	b.WriteString("a6000 = 0 ]")
	long := mustAd(t, b.String())
	if v := long.Eval("a3000"); v.String() != "3000" {
		t.Errorf("a3000 = %v", v)
	}
	if v := long.Eval("a0"); !v.IsError() {
		t.Errorf("a0 = %v, want error past the depth limit", v)
	}
}

func TestWorkIsBounded(t *testing.T) {
	// Each level doubles the work; without a bound this would not end.
	var b strings.Builder
	b.WriteString("[ x0 = \"ab\"; ")
	for i := 1; i <= 64; i++ {
		b.WriteString("x" + itoa(i) + " = strcat(x" + itoa(i-1) + ", x" + itoa(i-1) + "); ")
		b.WriteString("l" + itoa(i) + " = { l" + itoa(i-1) + ", l" + itoa(i-1) + " }; ")
	}
	b.WriteString("l0 = 1 ]")
	ad := mustAd(t, b.String())
	for _, name := range []string{"x64", "l64"} {
		if v := ad.Eval(name); !v.IsError() {
			t.Errorf("%s = %.40s..., want error", name, v)
		}
	}
	if v := ad.Eval("x10"); len(v.str()) != 2048 {
		t.Errorf("x10 has %d bytes", len(v.str()))
	}
	small := &EvalOptions{MaxSteps: 10}
	if v := MustParseExpr("1+1+1+1+1+1+1+1+1+1+1+1+1").EvalWith(nil, nil, small); !v.IsError() {
		t.Errorf("MaxSteps not applied: %v", v)
	}
}

// roundTripAds are ads covering every kind of literal and expression.
var roundTripAds = []string{
	`[ A = 1; B = "x"; C = 2.5; D = true; E = undefined; F = error ]`,
	`[ Requirements = (TARGET.Arch == "X86_64") && (TARGET.Memory >= MY.RequestMemory) || x =?= undefined; Rank = TARGET.Memory * 2.0 ]`,
	`[ L = { 1,"two",3.0,{ 4 },[ n = 5 ] }; N = [ a = 1; b = [ c = a ] ] ]`,
	`[ S = "quote \" backslash \\ tab \t newline \n bell \a nul-free \001 utf8 é"; 'odd name' = 1; 'is' = 2 ]`,
	`[ Neg = -5; Un = - 5; Real = -0.0; Big = 1E+300; Small = 1.5E-07; Exp = 123456.789 ]`,
	`[ T = absTime("2024-01-02T03:04:05+01:00"); R = relTime("1+02:03:04"); F = formatTime(T, "%Y") ]`,
	`[ E1 = a ?: b; E2 = c ? d : e; E3 = f(1,2)[0].x; E4 = !a && ~b | c ^ d & e << 1 >> 2 >>> 3; E5 = (((x))) ]`,
	`[ Empty = {  }; EmptyAd = [  ]; Str = "" ]`,
	`[ Win = "C:\\path\\to\\file"; Q = "say \"hi\""; Last = "ends with backslash \\" ]`,
}

func TestRoundTripNewSyntax(t *testing.T) {
	for _, src := range roundTripAds {
		ad := mustAd(t, src)
		again, err := ParseAd(ad.String())
		if err != nil {
			t.Fatalf("%s\nprinted %s\nreparse: %v", src, ad, err)
		}
		if !again.Equal(ad) {
			t.Errorf("new syntax round trip changed the ad:\n%s\n%s", ad, again)
		}
		if again.String() != ad.String() {
			t.Errorf("print not stable:\n%s\n%s", ad, again)
		}
	}
}

func TestRoundTripOldSyntax(t *testing.T) {
	for _, src := range append(roundTripAds, `[ ML = "line one
line two"; Next = 1 ]`) {
		ad := mustAd(t, src)
		long := ad.LongString()
		again, err := ParseOldAd(long)
		if err != nil {
			t.Fatalf("%s\nprinted\n%s\nreparse: %v", src, long, err)
		}
		if !again.Equal(ad) {
			t.Errorf("old syntax round trip changed the ad:\n%s\n%s", long, again.LongString())
		}
	}
}

func TestRoundTripJSON(t *testing.T) {
	for _, src := range roundTripAds {
		ad := mustAd(t, src)
		data, err := json.Marshal(ad)
		if err != nil {
			t.Fatal(err)
		}
		again := NewAd()
		if err := json.Unmarshal(data, again); err != nil {
			t.Fatalf("%s\n%s\n%v", src, data, err)
		}
		if !again.Equal(ad) {
			t.Errorf("JSON round trip changed the ad:\n%s\n%s\n%s", ad, data, again)
		}
		ads, err := ParseJSONAds(FormatJSONAds([]*Ad{ad, ad}))
		if err != nil || len(ads) != 2 || !ads[1].Equal(ad) {
			t.Errorf("FormatJSONAds round trip: %v", err)
		}
	}
}

func TestOldSyntax(t *testing.T) {
	src := `# a job ad
MyType = "Job"
Cmd = "C:\temp\vm"
Quote = "a \"b\" c"
TrailingBackslash = "dir\"
Requirements = (TARGET.Arch == "X86_64") &&
  (TARGET.Memory > 0)

  Spaced   =   1
'odd name' = 2
`
	_, err := ParseOldAd(src)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 6 {
		t.Fatalf("an expression continued on the next line should fail on line 6: %v", err)
	}
	src = strings.Replace(src, "&&\n  (TARGET.Memory > 0)", "&& (TARGET.Memory > 0)", 1)
	ad, err := ParseOldAd(src)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]string{
		"MyType":            `"Job"`,
		"Cmd":               `"C:\\temp\\vm"`,
		"Quote":             `"a \"b\" c"`,
		"TrailingBackslash": `"dir\\"`,
		"Spaced":            "1",
		"odd name":          "2",
	}
	for name, want := range checks {
		if v := ad.Eval(name); v.String() != want {
			t.Errorf("%s = %s, want %s", name, v, want)
		}
	}
	if got := ad.LongString(); !strings.Contains(got, "Cmd = \"C:\\temp\\vm\"\n") || !strings.Contains(got, `Quote = "a \"b\" c"`) {
		t.Errorf("LongString uses old quoting:\n%s", got)
	}
	two, err := ParseOldAds("A = 1\nB = 2\n\nA = 3\n")
	if err != nil || len(two) != 2 || two[1].Eval("A").String() != "3" {
		t.Errorf("ParseOldAds = %v, %v", two, err)
	}
	_, err = ParseOldAd("A = 1\nB = (2\n")
	if !errors.As(err, &se) || se.Line != 2 || se.Expr != "B = (2" || se.Col != 7 {
		t.Errorf("old syntax error = %#v", se)
	}
	_, err = ParseOldAd("just words\n")
	if !errors.As(err, &se) || se.Line != 1 {
		t.Errorf("missing '=': %v", err)
	}
}

func TestJSON(t *testing.T) {
	ad := mustAd(t, `[ A = 1; B = "x\"y"; C = 2.5; D = true; E = undefined; F = error; G = { 1,x }; H = [ i = 1 ]; R = a + 1; Big = 1e30 ]`)
	data, _ := ad.MarshalJSON()
	want := `{"A":1,"B":"x\"y","C":2.5,"D":true,"E":null,"F":"\/Expr(error)\/","G":[1,"\/Expr(x)\/"],"H":{"i":1},"R":"\/Expr(a + 1)\/","Big":1E+30}`
	if string(data) != want {
		t.Errorf("MarshalJSON =\n%s\nwant\n%s", data, want)
	}
	if !json.Valid(data) {
		t.Errorf("not valid JSON: %s", data)
	}
	pretty := string(FormatJSONAds([]*Ad{mustAd(t, `[ A = 1; L = { 1,2 } ]`), mustAd(t, `[ B = "b" ]`)}))
	wantPretty := "[\n{\n  \"A\": 1,\n  \"L\": [\n    1,\n    2\n  ]\n}\n,\n{\n  \"B\": \"b\"\n}\n]\n"
	if pretty != wantPretty {
		t.Errorf("FormatJSONAds =\n%q\nwant\n%q", pretty, wantPretty)
	}
	var any []map[string]interface{}
	if err := json.Unmarshal([]byte(pretty), &any); err != nil {
		t.Errorf("condor_q -json form is not valid JSON: %v", err)
	}
	// An unescaped "/Expr(...)/" is an ordinary string, as in HTCondor.
	ads, err := ParseJSONAds([]byte(`{"S": "/Expr(1)/", "X": "\/Expr(1 + 1)\/", "U": "\u00e9\n"}`))
	if err != nil {
		t.Fatal(err)
	}
	if v := ads[0].Eval("S"); v.String() != `"/Expr(1)/"` {
		t.Errorf("S = %v", v)
	}
	if v := ads[0].Eval("X"); v.String() != "2" {
		t.Errorf("X = %v", v)
	}
	if v := ads[0].Eval("U"); v.String() != `"é\n"` {
		t.Errorf("U = %v", v)
	}
	_, err = ParseJSONAds([]byte("[{\"A\": 1},\n {\"B\": \"\\/Expr(1 +)\\/\"}]"))
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 2 || !strings.Contains(se.Msg, `attribute "B"`) {
		t.Errorf("bad JSON expression error = %v", err)
	}
	if _, err := ParseJSONAds([]byte(`{"A": }`)); !errors.As(err, &se) {
		t.Errorf("bad JSON: %v", err)
	}
}

func TestParseAdsDetectsFormat(t *testing.T) {
	cases := []struct {
		src    string
		format Format
		n      int
	}{
		{`[ A = 1 ]`, FormatNew, 1},
		{"[ A = 1 ] [ A = 2 ]", FormatNew, 2},
		{"{ [ A = 1 ], [ A = 2 ] }", FormatNew, 2},
		{"[]", FormatNew, 1},
		{`{"A": 1}`, FormatJSON, 1},
		{`[{"A": 1}, {"A": 2}]`, FormatJSON, 2},
		{"A = 1\nB = 2\n", FormatOld, 1},
		{"# comment\nA = 1\n\nA = 2\n", FormatOld, 2},
		{"// comment\n[ A = 1 ]", FormatNew, 1},
	}
	for _, c := range cases {
		ads, f, err := ParseAds(c.src)
		if err != nil || f != c.format || len(ads) != c.n {
			t.Errorf("ParseAds(%q) = %d ads, %v, %v; want %d, %v", c.src, len(ads), f, err, c.n, c.format)
		}
	}
}

func TestConcurrentEvaluation(t *testing.T) {
	job, machine := benchAds(t)
	req := MustParseExpr(vmRequirements)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				if !req.Eval(job, machine).IsTrue() || !Match(job, machine) {
					t.Error("concurrent evaluation disagreed")
					return
				}
				_ = job.String()
				_ = Explain(job, machine)
				_ = job.Eval("RequestMemory")
			}
		}()
	}
	wg.Wait()
}

func TestValueAccessors(t *testing.T) {
	if b, ok := Bool(true).BoolValue(); !b || !ok {
		t.Error("BoolValue")
	}
	if _, ok := Bool(true).IntValue(); ok {
		t.Error("IntValue of a boolean")
	}
	if f, ok := Int(3).RealValue(); !ok || f != 3 {
		t.Error("RealValue of an integer")
	}
	if f, ok := Bool(true).NumberValue(); !ok || f != 1 {
		t.Error("NumberValue of true")
	}
	if s, ok := String("x").StringValue(); !ok || s != "x" {
		t.Error("StringValue")
	}
	l := List(Int(1), Int(2))
	if vs, ok := l.ListValue(); !ok || len(vs) != 2 || l.String() != "{ 1,2 }" {
		t.Error("ListValue")
	}
	ad := mustAd(t, "[ a = 1 ]")
	if a, ok := AdValue(ad).AdValue(); !ok || a != ad {
		t.Error("AdValue")
	}
	if !AdValue(nil).IsUndefined() {
		t.Error("AdValue(nil)")
	}
	for _, c := range []struct {
		v    Value
		true bool
	}{{Bool(true), true}, {Bool(false), false}, {Int(2), true}, {Int(0), false}, {Real(0.1), true},
		{String("true"), false}, {Undefined(), false}, {Error(), false}} {
		if c.v.IsTrue() != c.true {
			t.Errorf("IsTrue(%v) = %v", c.v, !c.true)
		}
	}
	if Undefined().Kind() != UndefinedKind || Error().Kind().String() != "error" || RealKind.String() != "real" {
		t.Error("Kind")
	}
	if !List(Real(1)).Equal(List(Real(1))) || List(Int(1)).Equal(List(Real(1))) {
		t.Error("Equal of lists")
	}
	tm := AbsTime(testNow)
	if got, ok := tm.TimeValue(); !ok || !got.Equal(testNow) {
		t.Errorf("TimeValue = %v", got)
	}
	if d, ok := RelTime(90e9).DurationValue(); !ok || d != 90e9 {
		t.Errorf("DurationValue = %v", d)
	}
}

func TestSetValueRoundTrip(t *testing.T) {
	ad := NewAd()
	ad.SetValue("L", List(Int(1), String("a"), List(Real(2.5)), AdValue(mustAd(t, "[ x = 1 ]"))))
	ad.SetValue("N", AdValue(mustAd(t, "[ y = \"z\"; w = y ]")))
	ad.SetValue("T", AbsTime(testNow))
	ad.SetValue("D", RelTime(90e9))
	ad.SetValue("Inf", Real(math.Inf(1)))
	ad.SetValue("E", Error())
	again, err := ParseAd(ad.String())
	if err != nil || !again.Equal(ad) {
		t.Fatalf("%s reads back as %v (%v)", ad, again, err)
	}
	old, err := ParseOldAd(ad.LongString())
	if err != nil || !old.Equal(ad) {
		t.Fatalf("%s reads back as %v (%v)", ad.LongString(), old, err)
	}
	data, _ := ad.MarshalJSON()
	fromJSON := NewAd()
	if err := fromJSON.UnmarshalJSON(data); err != nil || !fromJSON.Equal(ad) {
		t.Fatalf("%s reads back as %v (%v)", data, fromJSON, err)
	}
	if v := ad.Eval("L"); v.String() != `{ 1,"a",{ 2.5 },[ x = 1 ] }` {
		t.Errorf("L = %v", v)
	}
}

// TextAttrs and AppendString write what String writes: the attributes of
// every round-trip ad, also chained below a child that shadows some of
// them, and each of their string values.
func TestTextAttrsAreString(t *testing.T) {
	checked := 0
	for _, src := range roundTripAds {
		parent := mustAd(t, src)
		child := NewAd()
		child.SetParent(parent)
		child.SetString("Own", "child\t\"x\"")
		for _, n := range parent.Names()[:min(2, len(parent.Names()))] {
			child.SetString(strings.ToUpper(n), "shadow")
		}
		for _, ad := range []*Ad{parent, child, NewAd()} {
			var texts []string
			for _, at := range ad.TextAttrs() {
				texts = append(texts, at.Text)
			}
			if got, want := "[ "+strings.Join(texts, "; ")+" ]", ad.String(); got != want {
				t.Errorf("TextAttrs joined give\n%s\nString gives\n%s", got, want)
			}
			for _, n := range ad.FlatNames() {
				v := ad.Eval(n)
				s, ok := v.StringValue()
				if !ok {
					continue
				}
				one := NewAd()
				one.SetString("S", s)
				if got, want := "[ S = "+string(AppendString(nil, s))+" ]", one.String(); got != want {
					t.Errorf("AppendString gives %s, String %s", got, want)
				}
				checked++
			}
		}
	}
	if checked == 0 {
		t.Fatal("no string value checked")
	}
}

// An ad built again after Reset is the ad built afresh: no attribute or
// parent of the one before shows through, and building it again in the
// same room allocates nothing for the table.
func TestResetBuildsAfresh(t *testing.T) {
	parent := mustAd(t, `[ Inherited = 1 ]`)
	build := func(a *Ad, i int) *Ad {
		for n := range 40 {
			a.SetInt("Attr"+itoa(n), int64(i*n))
		}
		a.SetString("Name", "slot"+itoa(i))
		return a
	}
	ad := build(NewAd(), 1)
	ad.SetInt("OnlyFirst", 7)
	ad.SetParent(parent)
	for i := 2; i < 5; i++ {
		ad.Reset()
		build(ad, i)
		if want := build(NewAd(), i); !ad.Equal(want) || ad.String() != want.String() {
			t.Fatalf("round %d: rebuilt\n%s\nfresh\n%s", i, ad, want)
		}
		if ad.Has("OnlyFirst") || ad.Has("Inherited") || ad.Parent() != nil {
			t.Fatalf("round %d: the ad before shows through: %s", i, ad)
		}
	}
	if n := testing.AllocsPerRun(20, func() { ad.Reset(); ad.SetInt("Attr1", 1); ad.SetInt("Attr2", 2) }); n > 2 {
		t.Errorf("Reset and two Sets: %.0f allocations, want at most the two literals", n)
	}
}

// TestUnmarshalJSONOnly: the attributes kept are read as UnmarshalJSON
// reads them, the others are left out, and a malformed value that is
// skipped is still found.
func TestUnmarshalJSONOnly(t *testing.T) {
	src := `{"Name": "slot1@a", "State": "Claimed", "Requirements": "\/Expr(START && TARGET.x == \"}\")\/", "L": [[1, "]"], {"a": 2}], "VmpoolClaims": 3, "Esc\u0061ped": 1}`
	ad, err := UnmarshalJSONOnly([]byte(src), func(n string) bool { return n == "Name" || n == "VmpoolClaims" || n == "State" })
	if err != nil {
		t.Fatal(err)
	}
	if got := ad.String(); got != `[ Name = "slot1@a"; State = "Claimed"; VmpoolClaims = 3 ]` {
		t.Errorf("kept %s", got)
	}
	// A name with escapes is unescaped before keep sees it.
	ad, err = UnmarshalJSONOnly([]byte(src), func(n string) bool { return n == "Escaped" })
	if err != nil || ad.String() != `[ Escaped = 1 ]` {
		t.Errorf("escaped name: %v, %v", ad, err)
	}
	for _, bad := range []string{
		`{"Name": "x", "L": [1, 2}`,
		`{"Name": "x", "S": "unterminated}`,
		`{"Name": "x", "E": , "F": 1}`,
		`{"Name": "x", "E": 1 2}`,
		`{"Name": "x"} trailing`,
	} {
		if _, err := UnmarshalJSONOnly([]byte(bad), func(n string) bool { return n == "Name" }); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestFlatNamesWhere: FlatNames, filtered, in the same order, a parent's
// attribute shadowed by a nearer one listed once.
func TestFlatNamesWhere(t *testing.T) {
	grand, _ := ParseAd(`[ SimA = 1; Other = 2; simC = 3 ]`)
	parent, _ := ParseAd(`[ SIMA = 4; SimB = 5; X = 6 ]`)
	child, _ := ParseAd(`[ simb = 7; Y = 8; SimD = 9 ]`)
	parent.SetParent(grand)
	child.SetParent(parent)
	keep := func(n string) bool { return len(n) >= 3 && strings.EqualFold(n[:3], "sim") }
	var want []string
	for _, n := range child.FlatNames() {
		if keep(n) {
			want = append(want, n)
		}
	}
	got := child.FlatNamesWhere(keep)
	if strings.Join(got, ",") != strings.Join(want, ",") || len(got) != 4 {
		t.Errorf("FlatNamesWhere %v, FlatNames filtered %v", got, want)
	}
}
