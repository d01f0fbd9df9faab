package classad

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// Expected values follow the HTCondor manual ("Predefined Functions");
// where the manual and HTCondor's implementation disagree, the
// implementation wins and the case says so ("impl").

func TestTypeFunctions(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"ifThenElse true", "ifThenElse(true, 1, 2)", "1"},
		{"ifThenElse false", "ifThenElse(false, 1, 2)", "2"},
		{"ifThenElse undefined", "ifThenElse(undefined, 1, 2)", "undefined"},
		{"ifThenElse error", "ifThenElse(error, 1, 2)", "error"},
		{"ifThenElse real zero", "ifThenElse(0.0, 1, 2)", "2"},
		{"ifThenElse nonzero real", "ifThenElse(0.5, 1, 2)", "1"},
		{"ifThenElse string is error", `ifThenElse("x", 1, 2)`, "error"},
		{"ifThenElse is lazy", "ifThenElse(true, 1, 1/0)", "1"},
		{"ifThenElse wrong arity", "ifThenElse(true, 1)", "error"},
		{"isUndefined", "isUndefined(undefined)", "true"},
		{"isUndefined missing attr", "isUndefined(Nope)", "true"},
		{"isUndefined of value", "isUndefined(1)", "false"},
		{"isUndefined arity", "isUndefined(1, 2)", "error"},
		{"isError", "isError(1/0)", "true"},
		{"isError not", "isError(1)", "false"},
		{"isString", `isString("a")`, "true"},
		{"isString int", "isString(1)", "false"},
		{"isInteger", "isInteger(1)", "true"},
		{"isInteger real", "isInteger(1.0)", "false"},
		{"isReal", "isReal(1.0)", "true"},
		{"isBoolean", "isBoolean(true)", "true"},
		{"isBoolean int (impl: booleans only)", "isBoolean(1)", "false"},
		{"isList", "isList({})", "true"},
		{"isClassAd", "isClassAd([a=1])", "true"},
		{"isClassAd list", "isClassAd({})", "false"},
		{"isAbsTime", `isAbsTime(absTime("2024-01-01T00:00:00Z"))`, "true"},
		{"isRelTime", "isRelTime(relTime(5))", "true"},
		{"function names ignore case", "ISINTEGER(1)", "true"},
		{"unknown function", "noSuchFunction(1)", "error"},
	})
}

func TestConversionFunctions(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"int of real truncates", "int(3.7)", "3"},
		{"int of negative real", "int(-3.7)", "-3"},
		{"int of string", `int("42")`, "42"},
		{"int of string like atoi", `int("  12abc")`, "12"},
		{"int of real string", `int("3.9")`, "3"},
		{"int of bad string", `int("abc")`, "error"},
		{"int of bool", "int(true)", "1"},
		{"int of undefined (impl)", "int(undefined)", "undefined"},
		{"int of error", "int(error)", "error"},
		{"int of list", "int({1})", "error"},
		{"int arity", "int()", "error"},
		{"real of int", "real(3)", "3.0"},
		{"real of string", `real("2.5e1")`, "25.0"},
		{"real of bad string", `real("x")`, "error"},
		{"real of bool", "real(false)", "0.0"},
		{"real of NaN string", `isReal(real("NaN"))`, "true"},
		{"string of int", "string(42)", `"42"`},
		{"string of real", "string(2.5)", `"2.5"`},
		{"string of bool", "string(true)", `"true"`},
		{"string of string", `string("x")`, `"x"`},
		{"string of list", "string({1,2})", `"{ 1,2 }"`},
		{"string of undefined (impl)", "string(undefined)", "undefined"},
		{"string of error", "string(error)", "error"},
		{"bool of int", "bool(2)", "true"},
		{"bool of zero", "bool(0)", "false"},
		{"bool of string true", `bool("TRUE")`, "true"},
		{"bool of string false", `bool("false")`, "false"},
		{"bool of other string", `bool("yes")`, "undefined"},
		{"bool of list", "bool({})", "error"},
		{"floor", "floor(3.7)", "3"},
		{"floor negative", "floor(-3.2)", "-4"},
		{"floor int", "floor(5)", "5"},
		{"floor string", `floor("2.5")`, "2"},
		{"floor undefined", "floor(undefined)", "error"},
		{"ceiling", "ceiling(3.2)", "4"},
		{"ceiling negative", "ceiling(-3.7)", "-3"},
		{"ceil alias", "ceil(1.1)", "2"},
		{"round", "round(2.6)", "3"},
		{"round half to even", "round(2.5)", "2"},
		{"round half to even up", "round(3.5)", "4"},
		{"round huge is error", "round(1e300)", "error"},
		{"pow ints", "pow(2, 10)", "1024"},
		{"pow negative base", "pow(-2, 3)", "-8"},
		{"pow zero exponent", "pow(0, 0)", "1"},
		{"pow real zero exponent", "pow(2.5, 0.0)", "1.0"},
		{"pow negative exponent", "pow(2, -1)", "0.5"},
		{"pow reals", "pow(4.0, 0.5)", "2.0"},
		{"pow string is error", `pow("x", 2)`, "error"},
		{"quantize up", "quantize(3, 8)", "8"},
		{"quantize multiple", "quantize(3, 2)", "4"},
		{"quantize zero", "quantize(0, 4)", "0"},
		{"quantize real", "quantize(1.5, 6.8)", "6.8"},
		{"quantize real multiple", "quantize(10, 5.1)", "10.2"},
		{"quantize list single", "quantize(0, {4})", "4"},
		{"quantize list first fit", `quantize(2, {1, 2, "A"})`, "2"},
		{"quantize list multiple of last", "quantize(3, {1, 2, 0.5})", "3.0"},
		{"quantize list real", "quantize(2.7, {1, 2, 0.5})", "3.0"},
		{"quantize list bad member", `quantize(3, {1, 2, "A"})`, "error"},
		{"quantize string", `quantize("x", 2)`, "error"},
		{"quantize negative rounds up (manual)", "quantize(-4, 3)", "-3"},
	})
}

func TestStringFunctions(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"strcat", `strcat("a", "b", "c")`, `"abc"`},
		{"strcat converts", `strcat("x", 1, 2.5, true)`, `"x12.5true"`},
		{"strcat none", `strcat()`, `""`},
		{"strcat undefined (impl)", `strcat("a", undefined)`, "undefined"},
		{"strcat error", `strcat("a", error)`, "error"},
		{"join", `join(", ", "a", "b", "c")`, `"a, b, c"`},
		{"join split", `join(split("a b c"))`, `"abc"`},
		{"join sep list", `join(";", split("a b c"))`, `"a;b;c"`},
		{"join skips undefined", `join("-", "a", undefined, "b")`, `"a-b"`},
		{"join only undefined", `join("-", undefined)`, "undefined"},
		{"join numbers", `join("+", 1, 2)`, `"1+2"`},
		{"join error", `join("-", error)`, "error"},
		{"split default", `split("a b,c")`, `{ "a","b","c" }`},
		{"split comma space", `split("a, b")`, `{ "a","b" }`},
		{"split double comma keeps empty", `split("a,,b")`, `{ "a","","b" }`},
		{"split leading trailing", `split(" a ")`, `{ "a" }`},
		{"split custom", `split("a:b::c", ":")`, `{ "a","b","","c" }`},
		{"split blank before separator", `split("a,b ,c")`, `{ "a","b","c" }`},
		{"split empty", `split("")`, "{  }"},
		{"split non string", `split(1)`, "error"},
		{"splitUserName", `splitUserName("user@domain")`, `{ "user","domain" }`},
		{"splitUserName no at", `splitUserName("user")`, `{ "user","" }`},
		{"splitSlotName", `splitSlotName("slot1@host")`, `{ "slot1","host" }`},
		{"splitSlotName no at", `splitSlotName("host")`, `{ "","host" }`},
		{"substr", `substr("abcdef", 2)`, `"cdef"`},
		{"substr length", `substr("abcdef", 1, 3)`, `"bcd"`},
		{"substr negative offset", `substr("abcdef", -2)`, `"ef"`},
		{"substr negative length", `substr("abcdef", 1, -2)`, `"bcd"`},
		{"substr zero length", `substr("abcdef", 1, 0)`, `""`},
		{"substr past end", `substr("abc", 5)`, `""`},
		{"substr length past end", `substr("abc", 1, 99)`, `"bc"`},
		{"substr offset before start", `substr("abc", -9)`, `"abc"`},
		{"substr undefined", `substr(undefined, 1)`, "undefined"},
		{"substr real offset", `substr("abc", 1.0)`, "error"},
		{"substr arity", `substr("abc")`, "error"},
		{"size string", `size("abc")`, "3"},
		{"size list", `size({1,2,3})`, "3"},
		{"size ad", `size([a=1;b=2])`, "2"},
		{"size int", `size(3)`, "error"},
		{"size undefined", `size(undefined)`, "undefined"},
		{"toUpper", `toUpper("aBc1")`, `"ABC1"`},
		{"toLower", `toLower("aBc1")`, `"abc1"`},
		{"toUpper converts", `toUpper(true)`, `"TRUE"`},
		{"toUpper undefined (impl)", `toUpper(undefined)`, "undefined"},
		{"toLower error", `toLower(error)`, "error"},
		{"strcmp less", `strcmp("a", "b")`, "-1"},
		{"strcmp equal", `strcmp("a", "a")`, "0"},
		{"strcmp case matters", `strcmp("a", "A")`, "1"},
		{"strcmp converts", `strcmp(1, "1")`, "0"},
		{"strcmp undefined (impl)", `strcmp(undefined, "a")`, "undefined"},
		{"stricmp", `stricmp("ABC", "abc")`, "0"},
		{"stricmp order", `stricmp("a", "B")`, "-1"},
		{"versioncmp", `versioncmp("7.9", "7.10")`, "-1"},
		{"versionGT", `versionGT("8.10.0", "8.9.4")`, "true"},
		{"versionLE", `versionLE("1.0", "1.0")`, "true"},
		{"versionEQ", `versionEQ("1.0", "1.00")`, "false"},
		{"version zeros", `versionLT("09", "0")`, "true"},
		{"version in range", `version_in_range("8.5", "8.0", "9.0")`, "true"},
		{"version out of range", `version_in_range("9.1", "8.0", "9.0")`, "false"},
		{"version undefined", `versionGE(undefined, "1")`, "undefined"},
		{"interval minutes", `interval(67)`, `"1:07"`},
		{"interval days", `interval(1472523)`, `"17+01:02:03"`},
		{"interval seconds", `interval(5)`, `"5"`},
		{"interval hours", `interval(3600)`, `"1:00:00"`},
		{"interval undefined", `interval(undefined)`, "error"},
	})
}

func TestStringListFunctions(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"member", `stringListMember("b", "a, b")`, "true"},
		{"member absent", `stringListMember("c", "a, b")`, "false"},
		{"member is case sensitive", `stringListMember("B", "a, b")`, "false"},
		{"imember", `stringListIMember("B", "a, b")`, "true"},
		{"member delimiter", `stringListMember("b", "a;b", ";")`, "true"},
		{"member trims", `stringListMember("b", "a ,  b  ")`, "true"},
		{"member undefined item is false", `stringListMember(undefined, "a")`, "false"},
		{"member both undefined", `stringListMember(undefined, undefined)`, "undefined"},
		{"member non string", `stringListMember(1, "1")`, "error"},
		{"member arity", `stringListMember("a")`, "error"},
		{"size", `stringListSize("a, b, c")`, "3"},
		{"size empty items dropped", `stringListSize("a,,b")`, "2"},
		{"size delimiter", `stringListSize("a:b", ":")`, "2"},
		{"size undefined", `stringListSize(undefined)`, "error"},
		{"sum ints", `stringListSum("1, 2, 3")`, "6"},
		{"sum reals", `stringListSum("1, 2.5")`, "3.5"},
		{"sum empty", `stringListSum("")`, "0.0"},
		{"sum bad item", `stringListSum("1, x")`, "error"},
		{"avg", `stringListAvg("1, 2")`, "1.5"},
		{"avg empty", `stringListAvg("")`, "0.0"},
		{"min", `stringListMin("3, 1, 2")`, "1"},
		{"min empty", `stringListMin("")`, "undefined"},
		{"max", `stringListMax("3, 1.5, 2")`, "3.0"},
		{"max negatives", `stringListMax("-5, -3")`, "-3"},
		{"intersect", `stringListsIntersect("a, b", "c, b")`, "true"},
		{"intersect none", `stringListsIntersect("a, b", "c, d")`, "false"},
		{"intersect delimiter", `stringListsIntersect("a;b", "b", ";")`, "true"},
		{"intersect undefined", `stringListsIntersect(undefined, "a")`, "undefined"},
		{"intersect non string", `stringListsIntersect(1, "a")`, "error"},
		{"subset", `stringListSubsetMatch("a, b", "b, c, a")`, "true"},
		{"subset not", `stringListSubsetMatch("a, d", "b, c, a")`, "false"},
		{"subset empty", `stringListSubsetMatch("", "b")`, "true"},
		{"isubset", `stringListISubsetMatch("A", "a")`, "true"},
		{"regexp member", `stringList_regexpMember("^b", "a, bc")`, "true"},
		{"regexp member none", `stringList_regexpMember("^z", "a, bc")`, "false"},
		{"regexp member empty", `stringList_regexpMember("^z", "")`, "undefined"},
	})
}

func TestListFunctions(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"member", "member(1, {1, 2})", "true"},
		{"member absent", "member(3, {1, 2})", "false"},
		{"member uses ==", `member("A", {"a"})`, "true"},
		{"member promotes", "member(1, {1.0})", "true"},
		{"member skips type errors", `member(1, {"a", 1})`, "true"},
		{"member undefined list", "member(1, undefined)", "undefined"},
		{"member undefined item", "member(undefined, {1})", "undefined"},
		{"member error item", "member(error, {1})", "error"},
		{"member not a list", "member(1, 1)", "error"},
		{"member list item", "member({1}, {{1}})", "error"},
		{"identicalMember", `identicalMember("a", {"a"})`, "true"},
		{"identicalMember case", `identicalMember("A", {"a"})`, "false"},
		{"identicalMember no promotion", "identicalMember(1, {1.0})", "false"},
		{"identicalMember undefined", "identicalMember(undefined, {undefined})", "true"},
		{"anyCompare", `anyCompare("<", {1, 5}, 3)`, "true"},
		{"anyCompare none", `anyCompare(">", {1, 2}, 3)`, "false"},
		{"anyCompare is", `anyCompare("is", {1, undefined}, undefined)`, "true"},
		{"anyCompare skips undefined", `anyCompare("==", {undefined, 3}, 3)`, "true"},
		{"allCompare", `allCompare(">=", {3, 5}, 3)`, "true"},
		{"allCompare fails", `allCompare(">", {3, 5}, 3)`, "false"},
		{"allCompare undefined element", `allCompare("<", {1, undefined}, 3)`, "false"},
		{"allCompare empty", `allCompare("<", {}, 3)`, "true"},
		{"anyCompare bad op", `anyCompare("<>", {1}, 3)`, "error"},
		{"anyCompare type error", `anyCompare("<", {"a"}, 3)`, "error"},
		{"anyCompare not a list", `anyCompare("<", 1, 3)`, "error"},
		{"sum", "sum({1, 2, 3})", "6"},
		{"sum real", "sum({1, 2.5})", "3.5"},
		{"sum empty", "sum({})", "0"},
		{"sum skips undefined", "sum({1, undefined, 2})", "3"},
		{"sum only undefined (manual)", "sum({undefined})", "undefined"},
		{"sum booleans", "sum({true, true})", "2"},
		{"sum string", `sum({1, "a"})`, "error"},
		{"sum not list", "sum(1)", "error"},
		{"avg", "avg({1, 2})", "1.5"},
		{"avg empty", "avg({})", "0"},
		{"min", "min({3, 1, 2})", "1"},
		{"min real", "min({3, 1.5})", "1.5"},
		{"min mixed returns real", "min({1, 2.5})", "1.0"},
		{"min empty", "min({})", "undefined"},
		{"max", "max({3, 1, 2})", "3"},
		{"max undefined skipped", "max({undefined, 4})", "4"},
		{"max string", `max({"a"})`, "error"},
	})
}

func TestRegexFunctions(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"regexp", `regexp("^a.c$", "abc")`, "true"},
		{"regexp no match", `regexp("^a.c$", "abd")`, "false"},
		{"regexp unanchored", `regexp("b", "abc")`, "true"},
		{"regexp case", `regexp("ABC", "abc")`, "false"},
		{"regexp i", `regexp("ABC", "abc", "i")`, "true"},
		{"regexp I", `regexp("ABC", "abc", "I")`, "true"},
		{"regexp m", `regexp("^b$", "a\nb\nc", "m")`, "true"},
		{"regexp without m", `regexp("^b$", "a\nb\nc")`, "false"},
		{"regexp s", `regexp("a.b", "a\nb", "s")`, "true"},
		{"regexp without s", `regexp("a.b", "a\nb")`, "false"},
		{"regexp x", `regexp("a b c # comment", "abc", "x")`, "true"},
		{"regexp x keeps class", `regexp("a[ ]b", "a b", "x")`, "true"},
		{"regexp unknown option ignored", `regexp("a", "a", "q")`, "true"},
		{"regexp bad pattern", `regexp("(", "a")`, "error"},
		{"regexp backreference unsupported", `regexp("(a)\\1", "aa")`, "error"},
		{"regexp undefined", `regexp(undefined, "a")`, "undefined"},
		{"regexp non string", `regexp("a", 1)`, "error"},
		{"regexp computed pattern", `regexp(strcat("^", "a"), "abc")`, "true"},
		{"regexps", `regexps("(a+)b", "xaab", "[\\1]")`, `"[aa]"`},
		{"regexps no match", `regexps("z", "abc", "y")`, `""`},
		{"regexps full", `regexps("b", "abcb", "X", "f")`, `"aXcb"`},
		{"regexps global", `regexps("b", "abcb", "X", "fg")`, `"aXcX"`},
		{"regexps group 0", `regexps("b+", "abbc", "<\\0>")`, `"<bb>"`},
		{"regexps bad group", `regexps("b", "abc", "\\2")`, "error"},
		{"regexps other backslash kept", `regexps("b", "abc", "\\n")`, `"\\n"`},
		{"replace", `replace("o", "foo", "0")`, `"f0o"`},
		{"replaceall", `replaceAll("o", "foo", "0")`, `"f00"`},
		{"replaceall no match", `replaceAll("z", "foo", "0")`, `"foo"`},
		{"replace case option", `replace("O", "foo", "0", "i")`, `"f0o"`},
		{"regexpMember", `regexpMember("^b", {"a", "bc"})`, "true"},
		{"regexpMember none", `regexpMember("^z", {"a", "bc"})`, "false"},
		{"regexpMember undefined element", `regexpMember("^z", {"a", undefined})`, "undefined"},
		{"regexpMember match beats undefined", `regexpMember("^a", {undefined, "a"})`, "true"},
		{"regexpMember bad element", `regexpMember("^z", {1})`, "error"},
		{"regexpMember not a list", `regexpMember("^z", "a")`, "error"},
	})
}

func TestTimeFunctions(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"time", "time()", "1709296496"},
		{"time arity", "time(1)", "error"},
		{"CurrentTime", "CurrentTime", "1709296496"},
		{"absTime literal", `absTime("2024-01-02T03:04:05+01:00")`, `absTime("2024-01-02T03:04:05+01:00")`},
		{"absTime literal Z", `absTime("2024-01-02T03:04:05Z")`, `absTime("2024-01-02T03:04:05+00:00")`},
		{"absTime literal compact zone", `absTime("2024-01-02 03:04:05 -0230")`, `absTime("2024-01-02T03:04:05-02:30")`},
		{"absTime of seconds", "absTime(0)", `absTime("1970-01-01T00:00:00+00:00")`},
		{"absTime with zone", "absTime(0, 3600)", `absTime("1970-01-01T01:00:00+01:00")`},
		{"absTime now", "absTime()", `absTime("2024-03-01T12:34:56+00:00")`},
		{"absTime undefined", "absTime(undefined)", "undefined"},
		{"absTime string at run time", `absTime(strcat("2024-01-02", "T00:00:00Z"))`, `absTime("2024-01-02T00:00:00+00:00")`},
		{"int of absTime", `int(absTime("1970-01-02T00:00:00Z"))`, "86400"},
		{"absTime compare", `absTime(10) < absTime(20)`, "true"},
		{"absTime minus absTime", `absTime(100) - absTime(40)`, `relTime("01:00")`},
		{"absTime plus relTime", `absTime(0) + relTime(60)`, `absTime("1970-01-01T00:01:00+00:00")`},
		{"relTime of seconds", "relTime(3725)", `relTime("01:02:05")`},
		{"relTime days", `relTime("1+02:03:04")`, `relTime("1+02:03:04")`},
		{"relTime units", `relTime("1d2h3m4s")`, `relTime("1+02:03:04")`},
		{"relTime negative", "relTime(-90)", `relTime("-01:30")`},
		{"relTime small", "relTime(5)", `relTime("05")`},
		{"relTime fraction", "relTime(1.5)", `relTime("01.5")`},
		{"relTime scaled", "relTime(60) * 2", `relTime("02:00")`},
		{"real of relTime", "real(relTime(90))", "90.0"},
		{"relTime bad string", `relTime(strcat("x", "y"))`, "error"},
		{"formatTime", `formatTime(0, "%Y-%m-%d %H:%M:%S")`, `"1970-01-01 00:00:00"`},
		{"formatTime %c", `formatTime(0)`, `"Thu Jan  1 00:00:00 1970"`},
		{"formatTime names", `formatTime(86400 * 31, "%a %A %b %B %j %p %I")`, `"Sun Sunday Feb February 032 AM 12"`},
		{"formatTime percent", `formatTime(0, "100%%")`, `"100%"`},
		{"formatTime now", `formatTime()`, `"Fri Mar  1 12:34:56 2024"`},
		{"formatTime absTime keeps its zone", `formatTime(absTime(0, 7200), "%H %z")`, `"02 +0200"`},
		{"formatTime relTime is error", `formatTime(relTime(5))`, "error"},
		{"formatTime undefined", `formatTime(undefined)`, "error"},
		{"formatTime bad format", `formatTime(0, 5)`, "error"},
	})
}

func TestMiscFunctions(t *testing.T) {
	ad := mustAd(t, `[ A = 1 + 2; B = "x" ]`)
	runEvalCases(t, ad, nil, []evalCase{
		{"debug returns its argument", "debug(1 + 1)", "2"},
		{"unparse", "unparse(A)", `"1 + 2"`},
		{"unparse missing", "unparse(Nope)", `""`},
		{"unparse not a reference", "unparse(1)", "error"},
		{"eval", `eval(strcat("A", " * 2"))`, "6"},
		{"eval bad syntax", `eval("1 +")`, "error"},
		{"eval undefined", `eval(undefined)`, "error"},
	})
}

func TestClockAndRandomNeedOptions(t *testing.T) {
	for _, src := range []string{"time()", "CurrentTime", "random()", "absTime()", "formatTime()"} {
		if v := MustParseExpr(src).Eval(nil, nil); !v.IsError() {
			t.Errorf("%s without options = %v, want error", src, v)
		}
	}
	strict := &EvalOptions{Strict: true, Now: func() time.Time { return testNow }}
	if v := MustParseExpr("CurrentTime").EvalWith(nil, nil, strict); !v.IsUndefined() {
		t.Errorf("CurrentTime under Strict = %v, want undefined", v)
	}
}

func TestRandom(t *testing.T) {
	opts := &EvalOptions{Rand: rand.NewPCG(7, 7)}
	for i := 0; i < 100; i++ {
		v := MustParseExpr("random(10)").EvalWith(nil, nil, opts)
		if n, ok := v.IntValue(); !ok || n < 0 || n >= 10 {
			t.Fatalf("random(10) = %v", v)
		}
		v = MustParseExpr("random()").EvalWith(nil, nil, opts)
		if f, ok := v.RealValue(); !ok || f < 0 || f >= 1 || v.Kind() != RealKind {
			t.Fatalf("random() = %v", v)
		}
		v = MustParseExpr("random(2.5)").EvalWith(nil, nil, opts)
		if f, ok := v.RealValue(); !ok || f < 0 || f >= 2.5 {
			t.Fatalf("random(2.5) = %v", v)
		}
	}
	for _, src := range []string{"random(0)", "random(-1)", `random("x")`, "random(1, 2)"} {
		if v := MustParseExpr(src).EvalWith(nil, nil, opts); !v.IsError() {
			t.Errorf("%s = %v, want error", src, v)
		}
	}
	// The same seed gives the same sequence.
	a := MustParseExpr("random(1000000)").EvalWith(nil, nil, &EvalOptions{Rand: rand.NewPCG(3, 4)})
	b := MustParseExpr("random(1000000)").EvalWith(nil, nil, &EvalOptions{Rand: rand.NewPCG(3, 4)})
	if !a.Equal(b) {
		t.Errorf("random with the same seed: %v then %v", a, b)
	}
}

func TestDebugHook(t *testing.T) {
	var got []string
	opts := &EvalOptions{Debug: func(expr string, v Value) { got = append(got, expr+" => "+v.String()) }}
	MustParseExpr("debug(1 + 2) * 2").EvalWith(nil, nil, opts)
	if len(got) != 1 || got[0] != "1 + 2 => 3" {
		t.Errorf("debug hook saw %q", got)
	}
}

func TestLargeJoinWithinBudget(t *testing.T) {
	// 200,000 short items: linear work, well within the default budget.
	ad := NewAd()
	ad.SetExpr("L", `split(S)`)
	ad.SetString("S", strings.Repeat("ab,", 200_000))
	v := MustParseExpr(`size(join("-", L))`).Eval(ad, nil)
	if v.String() != "599999" {
		t.Errorf("size of the join = %v", v)
	}
}

func TestRegexSizeLimit(t *testing.T) {
	start := time.Now()
	big := `regexp("` + strings.Repeat("a{1000}", 100) + `", "a")`
	if v := MustParseExpr(big).Eval(nil, nil); !v.IsError() {
		t.Errorf("huge pattern = %v, want error", v)
	}
	computed := `regexp(strcat("` + strings.Repeat("(a{900})", 20) + `"), "a")`
	if v := MustParseExpr(computed).Eval(nil, nil); !v.IsError() {
		t.Errorf("huge computed pattern = %v, want error", v)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusing huge patterns took %v", d)
	}
	if v := MustParseExpr(`regexp("^a{500}$", strcat("`+strings.Repeat("a", 500)+`"))`).Eval(nil, nil); !v.IsTrue() {
		t.Errorf("a{500} = %v", v)
	}
}

// TestMarshalJSONIsJSONMarshal: an ad's MarshalJSON bytes are what
// json.Marshal makes of it (which escapes <, >, & and U+2028/9 and
// compacts), so a server may send them as they are.
func TestMarshalJSONIsJSONMarshal(t *testing.T) {
	ad, err := ParseAd("[ A = \"a<b & c>d \u2028 \u2029 été \\\"q\\\" \\\\ \t\"; B = {1, 2.5, \"x&y\"}; C = [ D = \"<>\"; E = undefined ]; F = X + 1 ]")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ad.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	via, err := json.Marshal(ad)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != string(via) {
		t.Fatalf("MarshalJSON %s\njson.Marshal %s", raw, via)
	}
	var back Ad
	if err := json.Unmarshal(raw, &back); err != nil || !back.Equal(ad) {
		t.Fatalf("round trip: %v\n%s\n%s", err, back.String(), ad.String())
	}
}
