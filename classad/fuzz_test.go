package classad

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/, so a plain "go test"
// runs them; "go test -fuzz FuzzParseExpr" explores further.

var fuzzSeeds = []string{
	vmRequirements,
	`1 + 2 * 3 - 4 / 5 % 6`,
	`a.b.c[1] ?: "x" =?= undefined`,
	`strcat("a", split("b c")[0], string({1, [x = 2]}))`,
	`regexps("(a+)b", "xaab", "<\\1>", "fg")`,
	`absTime("2024-01-02T03:04:05+01:00") + relTime("1+02:03:04")`,
	`formatTime(0, "%c %a %b %Z %z %%")`,
	`member(1, {1, 2}) && stringListMember("b", "a, b") || !c ? -1 : ~2 << 3`,
	`[a = b; b = a].a`,
	`{ 1,"two",3.0,{ 4 },[ n = 5 ] }`,
	`'odd name' + MY.x + TARGET.y + PARENT.z + .w`,
	`"\101\n\t\\\"" "joined"`,
	`1e308 * 10 + -9223372036854775808 / -1`,
	`quantize(2.7, {1, 2, 0.5}) + pow(2, 62) + round(2.5)`,
	`eval("1 + " + unparse(x))`,
	`x is y isnt z`,
	`((((((((((1))))))))))`,
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := ParseExpr(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Col < 1 || se.Msg == "" {
				t.Fatalf("ParseExpr(%q): error %v is not a located *SyntaxError", src, err)
			}
			return
		}
		printed := e.String()
		again, err := ParseExpr(printed)
		if err != nil {
			t.Fatalf("ParseExpr(%q) printed %q which does not parse: %v", src, printed, err)
		}
		if !again.Equal(e) {
			t.Fatalf("ParseExpr(%q) printed %q which reads back as %q", src, printed, again)
		}
		if again.String() != printed {
			t.Fatalf("printing is not stable: %q then %q", printed, again)
		}
		_ = References(e)
		_ = Conjuncts(e)
		e.EvalWith(nil, nil, &EvalOptions{MaxSteps: 10000})
	})
}

func FuzzParseAd(f *testing.F) {
	for _, s := range roundTripAds {
		f.Add(s)
	}
	f.Add(jobAdText)
	f.Add(machineAdText)
	f.Add("A = 1\nB = \"x\"\n")
	f.Add(`{"A": 1, "B": "\/Expr(a + 1)\/", "C": [1, {"d": null}]}`)
	f.Fuzz(func(t *testing.T, src string) {
		// Whatever the syntax, parsing must not panic.
		ParseOldAds(src)
		ParseJSONAds([]byte(src))
		ParseAds(src)

		ad, err := ParseAd(src)
		checkSharedParse(t, src, ad, err)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Col < 1 {
				t.Fatalf("ParseAd(%q): error %v is not a located *SyntaxError", src, err)
			}
			return
		}
		again, err := ParseAd(ad.String())
		if err != nil || !again.Equal(ad) {
			t.Fatalf("new syntax round trip of %q via %q: %v", src, ad.String(), err)
		}
		data, err := json.Marshal(ad)
		if err != nil {
			t.Fatal(err)
		}
		fromJSON := NewAd()
		if err := json.Unmarshal(data, fromJSON); err != nil || !fromJSON.Equal(ad) {
			t.Fatalf("JSON round trip of %q via %s: %v", src, data, err)
		}
		if oldSyntaxCanCarry(ad) {
			old, err := ParseOldAd(ad.LongString())
			if err != nil || !old.Equal(ad) {
				t.Fatalf("old syntax round trip of %q via %q: %v", src, ad.LongString(), err)
			}
		}
		for _, name := range ad.Names() {
			ad.EvalWith(name, ad, &EvalOptions{MaxSteps: 10000})
		}
	})
}

// oldSyntaxCanCarry reports whether the old syntax can write ad: its
// quoting (a backslash escapes only a quote) cannot write a string that
// ends in a backslash, nor a quote followed by a line break.
func oldSyntaxCanCarry(ad *Ad) bool {
	ok := true
	check := func(s string) {
		if strings.HasSuffix(s, `\`) || strings.Contains(s, "\"\n") || strings.Contains(s, "\"\r") ||
			strings.Contains(s, "'\n") || strings.Contains(s, "'\r") {
			ok = false
		}
	}
	ad.each(true, func(at *attr) {
		check(at.name)
		walk(at.expr.root, func(n *node) {
			check(n.name)
			if n.op == opLit {
				checkValueStrings(n.val, check)
			}
			if n.ad != nil {
				for i := range n.ad.attrs {
					check(n.ad.attrs[i].name)
				}
			}
		})
	})
	return ok
}

func checkValueStrings(v Value, check func(string)) {
	switch v.k {
	case StringKind:
		check(v.str())
	case ListKind:
		for _, e := range v.comp().list {
			checkValueStrings(e, check)
		}
	}
}

func FuzzEval(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, jobAdText)
	}
	f.Add("TARGET.Memory >= MY.RequestMemory", machineAdText)
	f.Add("a", "[a = b; b = {a, a}]")
	f.Fuzz(func(t *testing.T, src, adsrc string) {
		e, err := ParseExpr(src)
		if err != nil {
			return
		}
		ad, err := ParseAd(adsrc)
		if err != nil {
			ad = NewAd()
		}
		opts := testOptions()
		opts.MaxSteps = 20000
		v := e.EvalWith(ad, ad, opts)
		_ = v.String()
		ad.Set("Requirements", e)
		MatchWith(ad, ad, opts)
		RankWith(ad, ad, opts)
		ExplainWith(ad, ad, opts)
		_, _ = ad.MarshalJSON()
		_ = ad.LongString()
	})
}

// FuzzUnmarshalJSONOnly: an ad read keeping some attributes holds exactly
// those of the whole ad's, with their values; keeping all of them, it is
// the whole ad. Whatever the input, it does not panic, and it rejects no
// JSON ad UnmarshalJSON reads.
func FuzzUnmarshalJSONOnly(f *testing.F) {
	f.Add(`{"A": 1, "B": "\/Expr(a + 1)\/", "C": [1, {"d": null}], "D": "x\"y", "e\u0041": true}`)
	f.Add(`{"Name": "slot1@a", "Rank": "\/Expr(0)\/", "Requirements": "\/Expr(START && (TARGET.x == \"}\"))\/", "L": [[1], [2, [3]]]}`)
	f.Add(`{"A": {"B": {"C": [}}}`)
	f.Add(`{"A": "unterminated}`)
	f.Add(`{"A": , "B": 1}`)
	if m, err := ParseAd(machineAdText); err == nil {
		if b, err := m.MarshalJSON(); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		keepOdd := func(name string) bool { return len(name)%2 == 1 }
		part, perr := UnmarshalJSONOnly([]byte(src), keepOdd)
		all, aerr := UnmarshalJSONOnly([]byte(src), func(string) bool { return true })
		var whole Ad
		if err := whole.UnmarshalJSON([]byte(src)); err != nil {
			return
		}
		if aerr != nil || perr != nil {
			t.Fatalf("UnmarshalJSON reads %q, UnmarshalJSONOnly fails: %v, %v", src, aerr, perr)
		}
		if !all.Equal(&whole) {
			t.Fatalf("keeping every attribute of %q: %s, want %s", src, all, &whole)
		}
		want := NewAd()
		for _, name := range whole.Names() {
			if keepOdd(name) {
				e, _ := whole.Lookup(name)
				want.Set(name, e)
			}
		}
		if !part.Equal(want) {
			t.Fatalf("keeping names of odd length of %q: %s, want %s", src, part, want)
		}
	})
}
