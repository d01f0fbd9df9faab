package classad

import (
	"errors"
	"strings"
	"testing"
)

func TestLiterals(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"integer", "42", "42"},
		{"negative integer", "-42", "-42"},
		{"real", "3.25", "3.25"},
		{"real leading dot", ".5", "0.5"},
		{"real exponent", "1e3", "1000.0"},
		{"real negative exponent", "25E-1", "2.5"},
		{"real exponent with sign", "1.5e+2", "150.0"},
		{"true", "TRUE", "true"},
		{"false", "False", "false"},
		{"undefined", "UNDEFINED", "undefined"},
		{"error", "Error", "error"},
		{"string", `"hello"`, `"hello"`},
		{"string escapes", `"a\tb\nc\\d\"e"`, `"a\tb\nc\\d\"e"`},
		{"string octal escape", `"\101\102"`, `"AB"`},
		{"string unknown escape keeps the character", `"\q"`, `"q"`},
		{"adjacent strings join", `"ab" "cd"`, `"abcd"`},
		{"string utf8", `"héllo"`, `"héllo"`},
		{"string control char prints octal", `"\001"`, `"\001"`},
		{"comment", "1 + /* two */ 2 // end", "3"},
		{"quoted attribute name", "'my attr' ?: 1", "1"},
	})
}

func TestSyntaxErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		col  int
		msg  string
	}{
		{"trailing operator", "Memory >= ", 11, "unexpected end of expression, expected an operand"},
		{"missing close paren", "(1 + 2", 7, "expected ')' to close the '(' at column 1"},
		{"extra close paren", "1 + 2)", 6, "unexpected ')' after the end of the expression"},
		{"single equals", "a = 1", 3, "use '==' to compare"},
		{"unterminated string", `x == "abc`, 6, "unterminated string literal"},
		{"bad character", "a @ b", 3, "unexpected character '@'"},
		{"octal refused", "017", 1, "leading zeros"},
		{"hex refused", "0x1F", 1, "hexadecimal"},
		{"integer out of range", "99999999999999999999", 1, "out of range"},
		{"dot without digits", "1.", 1, "a digit must follow the decimal point"},
		{"missing colon", "a ? b", 6, "':' to complete the '?' at column 3"},
		{"selection needs a name", "a.+", 3, "expected an attribute name after '.'"},
		{"dot digit is a number", "a.1", 2, "unexpected number after the end of the expression"},
		{"unclosed list", "{1, 2", 6, "'}' to close the '{' at column 1"},
		{"bad absTime", `absTime("nope")`, 8, "invalid time"},
		{"empty", "", 1, "unexpected end of expression"},
		{"unterminated comment", "1 /* x", 3, "unterminated comment"},
		{"nul in string", "\"a\\0b\"", 1, "NUL"},
		{"column counts characters", `"é" + `, 7, "expected an operand"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseExpr(tc.src)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("ParseExpr(%q) error = %v, want a *SyntaxError", tc.src, err)
			}
			if se.Col != tc.col || !strings.Contains(se.Msg, tc.msg) || se.Expr != tc.src {
				t.Errorf("got Expr=%q Col=%d Msg=%q, want Col=%d and a message containing %q", se.Expr, se.Col, se.Msg, tc.col, tc.msg)
			}
		})
	}
}

func TestSyntaxErrorText(t *testing.T) {
	_, err := ParseExpr("Memory >= ")
	want := `expression "Memory >= ": column 11: unexpected end of expression, expected an operand`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
	_, err = ParseAd("[\n  A = 1;\n  B = (2\n]")
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 4 || se.Col != 1 || se.Expr != "]" {
		t.Errorf("multi-line error = %#v", se)
	}
	if !strings.HasPrefix(err.Error(), "line 4: ") {
		t.Errorf("multi-line error text = %q", err)
	}
	// A huge expression (a 100,000-deep nesting in a submit file) is
	// quoted around the error only, not whole.
	deep := strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000)
	_, err = ParseExpr(deep)
	if !errors.As(err, &se) || len(err.Error()) > 400 || !strings.Contains(err.Error(), `expression of 200001 characters, columns 441 to 560 "((((`) ||
		!strings.Contains(err.Error(), "column 501: expression is nested too deeply") {
		t.Errorf("huge expression's error (%d bytes) = %.400s", len(err.Error()), err)
	}
	ad := NewAd()
	err = ad.SetExpr("Requirements", "Memory >")
	var ae *AttrError
	if !errors.As(err, &ae) || ae.Attr != "Requirements" || !errors.As(err, &se) || se.Col != 9 {
		t.Errorf("SetExpr error = %v", err)
	}
}

func TestNestingLimit(t *testing.T) {
	deep := strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000)
	if _, err := ParseExpr(deep); err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Errorf("deep parentheses: %v", err)
	}
	long := strings.Repeat("1 + ", 5000) + "1"
	if _, err := ParseExpr(long); err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Errorf("long chain: %v", err)
	}
	unary := strings.Repeat("!", 5000) + "true"
	if _, err := ParseExpr(unary); err == nil {
		t.Errorf("deep unary chain parsed")
	}
	ads := strings.Repeat("[a = ", 3000) + "1" + strings.Repeat("]", 3000)
	if _, err := ParseExpr(ads); err == nil {
		t.Errorf("deep ads parsed")
	}
	ok := strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200)
	if _, err := ParseExpr(ok); err != nil {
		t.Errorf("200 parentheses: %v", err)
	}
	and := strings.Repeat("true && ", 900) + "true"
	if v := MustParseExpr(and).Eval(nil, nil); !v.IsTrue() {
		t.Errorf("900 && = %v", v)
	}
}

func TestCanonicalPrinting(t *testing.T) {
	cases := []struct{ src, want string }{
		{"a+b*c", "a + b * c"},
		{"(a+b)*c", "(a + b) * c"},
		{"((a))", "((a))"},
		{"a is b", "a =?= b"},
		{"a isnt b", "a =!= b"},
		{"!a&&-b", "!a && -b"},
		{"- 5", "- 5"},
		{"-5", "-5"},
		{"- -5", "--5"},
		{"-(5)", "-(5)"},
		{"a- -5", "a - -5"},
		{"f( 1 , 2 )", "f(1,2)"},
		{"{1, 2}", "{ 1,2 }"},
		{"{ }", "{  }"},
		{"[a=1;b=2]", "[ a = 1; b = 2 ]"},
		{"[ ]", "[  ]"},
		{"MY.a + target.B", "MY.a + target.B"},
		{".a", ".a"},
		{"x.y.z", "x.y.z"},
		{"l[1][2]", "l[1][2]"},
		{"c?a:b", "c ? a : b"},
		{"a?:b", "a ?: b"},
		{"'a b'", "'a b'"},
		{"'is'", "'is'"},
		{"'my'.x", "'my'.x"},
		{"(MY).x", "(MY).x"},
		{`"a\"b"`, `"a\"b"`},
		{"3.0", "3.0"},
		{"1e300", "1E+300"},
		{`absTime("2024-01-02T03:04:05+01:00")`, `absTime("2024-01-02T03:04:05+01:00")`},
		{"x >>> 2", "x >>> 2"},
		{"0.0.A", "0.0.A"},
		{"(5).x", "(5).x"},
		{"5 .x", "5 .x"},
		{"TARGET.Memory >= MY.RequestMemory", "TARGET.Memory >= MY.RequestMemory"},
	}
	for _, c := range cases {
		e, err := ParseExpr(c.src)
		if err != nil {
			t.Errorf("ParseExpr(%q): %v", c.src, err)
			continue
		}
		if got := e.String(); got != c.want {
			t.Errorf("ParseExpr(%q).String() = %q, want %q", c.src, got, c.want)
		}
		again, err := ParseExpr(e.String())
		if err != nil || !again.Equal(e) {
			t.Errorf("%q does not read back as itself: %v", e.String(), err)
		}
	}
}

func TestPrintingAddsNeededParentheses(t *testing.T) {
	// Trees built without the parser (here: Conjuncts of a parse, and
	// hand-made nodes) still print so that they read back the same.
	a := &node{op: opRef, name: "a", key: "a", hash: hashString("a"), height: 1}
	b := &node{op: opRef, name: "b", key: "b", hash: hashString("b"), height: 1}
	c := &node{op: opRef, name: "c", key: "c", hash: hashString("c"), height: 1}
	for _, n := range []*node{a, b, c} {
		n.sig = nodeSig(n)
	}
	mk := func(op opcode, x, y *node) *node {
		n := &node{op: op, a: x, b: y, height: 2}
		linkChain(n)
		n.sig = nodeSig(n)
		return n
	}
	cases := []struct {
		e    *node
		want string
	}{
		{mk(opMul, mk(opAdd, a, b), c), "(a + b) * c"},
		{mk(opSub, a, mk(opSub, b, c)), "a - (b - c)"},
		{mk(opSub, mk(opSub, a, b), c), "a - b - c"},
		{mk(opAnd, a, mk(opOr, b, c)), "a && (b || c)"},
	}
	for _, tc := range cases {
		e := &Expr{root: tc.e}
		if got := e.String(); got != tc.want {
			t.Errorf("printed %q, want %q", got, tc.want)
		}
		if again := MustParseExpr(e.String()); again.String() != tc.want {
			t.Errorf("%q reads back as %q", tc.want, again)
		}
	}
}

func TestUnknownFunctions(t *testing.T) {
	e := MustParseExpr(`strcat(a) + frobnicate(1) + Frob2()`)
	got := e.UnknownFunctions()
	if len(got) != 2 || got[0] != "frobnicate" || got[1] != "Frob2" {
		t.Errorf("UnknownFunctions = %q", got)
	}
}
