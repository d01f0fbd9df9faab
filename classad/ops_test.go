package classad

import "testing"

// The expected values below come from the ClassAd semantics in the
// HTCondor manual ("ClassAd Evaluation Semantics", the == and =?= tables)
// and REFERENCE.md §9; where those are silent, from HTCondor's
// implementation (operators.cpp), as noted.

func TestArithmetic(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"int add", "1 + 2", "3"},
		{"int sub", "1 - 2", "-1"},
		{"int mul", "6 * 7", "42"},
		{"int div truncates", "7 / 2", "3"},
		{"negative div truncates toward zero", "-7 / 2", "-3"},
		{"div negative divisor", "7 / -2", "-3"},
		{"mod", "7 % 3", "1"},
		{"mod sign follows dividend", "-7 % 3", "-1"},
		{"div by zero", "5 / 0", "error"},
		{"mod by zero", "5 % 0", "error"},
		{"real div by zero", "5.0 / 0", "error"},
		{"real div by real zero", "5 / 0.0", "error"},
		{"int real promotion", "1 + 2.5", "3.5"},
		{"real div", "7.0 / 2", "3.5"},
		{"real mod is error (no real modulus)", "7.5 % 2", "error"},
		{"int mod real is error", "7 % 2.0", "error"},
		{"precedence mul over add", "1 + 2 * 3", "7"},
		{"parentheses", "(1 + 2) * 3", "9"},
		{"left associative sub", "10 - 4 - 3", "3"},
		{"left associative div", "100 / 10 / 5", "2"},
		{"unary minus", "-(3)", "-3"},
		{"unary minus real", "-(2.5)", "-2.5"},
		{"unary plus", "+3", "3"},
		{"double negation", "- -3", "3"},
		{"minus binds tighter than mul", "-2 * 3", "-6"},
		{"string plus int is error", `"a" + 1`, "error"},
		{"string plus string is error", `"a" + "b"`, "error"},
		{"undefined plus int", "undefined + 1", "undefined"},
		{"int plus undefined", "1 + undefined", "undefined"},
		{"error plus int", "error + 1", "error"},
		{"error beats undefined", "undefined + error", "error"},
		{"bool is 1 in arithmetic", "true + 1", "2"},
		{"bool false is 0", "false * 5", "0"},
		{"bool times real", "true * 2.5", "2.5"},
		{"list plus int is error", "{1} + 1", "error"},
		{"ad plus int is error", "[a=1] + 1", "error"},
		{"unary minus of string is error", `-"a"`, "error"},
		{"unary minus of bool is error (HTCondor)", "-true", "error"},
		{"unary plus of bool is error (HTCondor)", "+true", "error"},
		{"unary minus undefined", "-undefined", "undefined"},
		{"int overflow wraps", "9223372036854775807 + 1", "-9223372036854775808"},
		{"min int literal", "-9223372036854775808", "-9223372036854775808"},
		{"min int div -1 saturates (HTCondor)", "-9223372036854775808 / -1", "9223372036854775807"},
		{"real overflow is error", "1e308 * 10", "error"},
		{"exponent literal", "1.5e3", "1500.0"},
		{"real prints with .0", "2.0 * 3", "6.0"},
	})
}

func TestComparison(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"int eq", "10 == 10", "true"},
		{"int ne", "10 == 5", "false"},
		{"int vs string is error", `10 == "ABC"`, "error"},
		{"strings ignore case", `"abc" == "ABC"`, "true"},
		{"strings ne ignore case", `"ABC" != "abc"`, "false"},
		{"int promoted to real", "1 == 1.0", "true"},
		{"int vs undefined", "10 == undefined", "undefined"},
		{"undefined vs undefined", "undefined == undefined", "undefined"},
		{"ne undefined", "10 != undefined", "undefined"},
		{"error operand", "error == 1", "error"},
		{"less", "1 < 2", "true"},
		{"less equal", "2 <= 2", "true"},
		{"greater", "3 > 2.5", "true"},
		{"greater equal", "2 >= 3", "false"},
		{"string less ignores case", `"abc" < "ABD"`, "true"},
		{"string greater", `"b" > "A"`, "true"},
		{"string prefix is less", `"ab" < "abc"`, "true"},
		{"bool vs int (bool is 1)", "true == 1", "true"},
		{"bool vs bool", "true == true", "true"},
		{"bool order", "false < true", "true"},
		{"bool vs string is error", `true == "true"`, "error"},
		{"list compare is error", "{1} == {1}", "error"},
		{"ad compare is error", "[a=1] == [a=1]", "error"},
		{"comparison chain left assoc", "1 < 2 == true", "true"},
		{"relational above equality", "2 == 1 < 2", "false"},
	})
}

func TestIdentity(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"same int", "10 =?= 10", "true"},
		{"different int", "10 =?= 5", "false"},
		{"int vs string", `10 =?= "ABC"`, "false"},
		{"case matters", `"ABC" =?= "abc"`, "false"},
		{"same string", `"abc" =?= "abc"`, "true"},
		{"lower vs upper", `"abc" =?= "ABC"`, "false"},
		{"int vs undefined", "10 =?= undefined", "false"},
		{"undefined is undefined", "undefined =?= undefined", "true"},
		{"error is error", "error =?= error", "true"},
		{"no promotion", "1 =?= 1.0", "false"},
		{"bool vs int", "true =?= 1", "false"},
		{"bool vs bool", "true =?= true", "true"},
		{"not identical int", "10 =!= 10", "false"},
		{"not identical 5", "10 =!= 5", "true"},
		{"not identical string", `10 =!= "ABC"`, "true"},
		{"not identical case", `"ABC" =!= "abc"`, "true"},
		{"not identical undefined", "10 =!= undefined", "true"},
		{"undefined isnt undefined", "undefined =!= undefined", "false"},
		{"is keyword", "undefined is undefined", "true"},
		{"isnt keyword", "1 isnt 1.0", "true"},
		{"IS upper case keyword", "2 IS 2", "true"},
		{"lists cannot be compared (HTCondor)", "{1} =?= {1}", "error"},
		{"list vs int", "{1} =?= 1", "false"},
	})
}

func TestLogic(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"true and true", "true && true", "true"},
		{"true and false", "true && false", "false"},
		{"undefined and false", "undefined && false", "false"},
		{"false and undefined", "false && undefined", "false"},
		{"undefined and true", "undefined && true", "undefined"},
		{"true and undefined", "true && undefined", "undefined"},
		{"undefined and undefined", "undefined && undefined", "undefined"},
		{"error and false", "error && false", "error"},
		{"false and error", "false && error", "false"},
		{"true and error", "true && error", "error"},
		{"undefined and error", "undefined && error", "error"},
		{"string and true", `"foobar" && true`, "error"},
		{"true and string", `true && "foobar"`, "error"},
		{"false and string short circuits", `false && "foobar"`, "false"},
		{"numbers are booleans", "1 && 2", "true"},
		{"zero is false", "0 && true", "false"},
		{"real zero is false", "0.0 || false", "false"},
		{"true or x", "true || error", "true"},
		{"false or true", "false || true", "true"},
		{"undefined or true", "undefined || true", "true"},
		{"undefined or false", "undefined || false", "undefined"},
		{"false or undefined", "false || undefined", "undefined"},
		{"error or true", "error || true", "error"},
		{"false or error", "false || error", "error"},
		{"or string", `false || "x"`, "error"},
		{"and above or", "true || false && false", "true"},
		{"chain and", "true && true && false && true", "false"},
		{"chain and undefined", "true && undefined && true", "undefined"},
		{"chain and undefined then false", "undefined && true && false", "false"},
		{"chain or", "false || false || true", "true"},
		{"not true", "!true", "false"},
		{"not number", "!0", "true"},
		{"not undefined", "!undefined", "undefined"},
		{"not error", "!error", "error"},
		{"not string", `!"a"`, "error"},
		{"short circuit skips division by zero", "false && (1/0 == 1)", "false"},
	})
}

func TestConditional(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"ternary true", "true ? 1 : 2", "1"},
		{"ternary false", "false ? 1 : 2", "2"},
		{"ternary number", "5 ? 1 : 2", "1"},
		{"ternary real zero", "0.0 ? 1 : 2", "2"},
		{"ternary undefined", "undefined ? 1 : 2", "undefined"},
		{"ternary error", "error ? 1 : 2", "error"},
		{"ternary string is error", `"a" ? 1 : 2`, "error"},
		{"ternary is lazy", "true ? 1 : 1/0", "1"},
		{"ternary right assoc", "false ? 1 : true ? 2 : 3", "2"},
		{"ternary below or", "false || true ? 1 : 2", "1"},
		{"elvis defined", "1 ?: 2", "1"},
		{"elvis undefined", "undefined ?: 2", "2"},
		{"elvis missing attribute", "NoSuchAttr ?: 7", "7"},
		{"elvis keeps error", "error ?: 2", "error"},
		{"elvis keeps false", "false ?: true", "false"},
		{"elvis binds tighter than plus", "undefined ?: 1 + 10", "11"},
		{"elvis chain", "undefined ?: undefined ?: 3", "3"},
		{"elvis with blank", "undefined ? : 4", "4"},
	})
}

func TestBitwise(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"and", "12 & 10", "8"},
		{"or", "12 | 10", "14"},
		{"xor", "12 ^ 10", "6"},
		{"not", "~0", "-1"},
		{"shift left", "1 << 4", "16"},
		{"shift right", "256 >> 4", "16"},
		{"arithmetic shift keeps sign", "-16 >> 2", "-4"},
		{"unsigned shift", "-1 >>> 60", "15"},
		{"shift by 64 empties", "1 << 64", "0"},
		{"negative shift count", "1 << -1", "error"},
		{"bool is not an integer here", "true & 1", "error"},
		{"real is error", "1.5 | 1", "error"},
		{"undefined", "undefined & 1", "undefined"},
		{"precedence & over ^ over |", "1 | 2 ^ 3 & 1", "3"},
		{"bitwise below equality (6 & true)", "6 & 3 == 3", "error"},
		{"shift below additive", "1 << 1 + 1", "4"},
	})
}

func TestListsAndRecords(t *testing.T) {
	runEvalCases(t, nil, nil, []evalCase{
		{"list literal", "{1, 2}", "{ 1,2 }"},
		{"empty list", "{}", "{  }"},
		{"subscript", "{10, 20, 30}[1]", "20"},
		{"subscript out of range", "{10}[1]", "error"},
		{"subscript negative", "{10}[-1]", "error"},
		{"subscript real index", "{10}[0.0]", "error"},
		{"subscript undefined", "{10}[undefined]", "undefined"},
		{"record select", "[a = 1; b = 2].b", "2"},
		{"record select missing", "[a = 1].c", "undefined"},
		{"record subscript by name", `[a = 1; B = 2]["b"]`, "2"},
		{"record refers to own attribute", "[a = 3; b = a * 2].b", "6"},
		{"nested record", "[a = [b = [c = 4]]].a.b.c", "4"},
		{"inner record sees outer", "[x = 5; r = [y = x + 1]].r.y", "6"},
		{"select from list of records", "{[a = 1], [a = 2]}.a", "{ 1,2 }"},
		{"select from int is error", "(5).a", "error"},
		{"list of mixed", `{1, "a", true, undefined}`, `{ 1,"a",true,undefined }`},
		{"trailing comma allowed", "{1, 2,}", "{ 1,2 }"},
		{"record value prints", "[a = 1; b = a]", "[ a = 1; b = a ]"},
	})
}

func TestRealPrinting(t *testing.T) {
	cases := []struct {
		f    float64
		want string
	}{
		{3.5, "3.5"}, {3, "3.0"}, {0, "0.0"}, {-0.5, "-0.5"}, {1e30, "1E+30"}, {1.5e-7, "1.5E-07"},
		{0.1, "0.1"}, {1.0 / 3, "0.3333333333333333"}, {123456789012345.0, "123456789012345.0"},
		{1e16, "1E+16"},
	}
	for _, c := range cases {
		if got := Real(c.f).String(); got != c.want {
			t.Errorf("Real(%v) prints %s, want %s", c.f, got, c.want)
		}
		e, err := ParseExpr(Real(c.f).String())
		if err != nil {
			t.Fatal(err)
		}
		if v := e.Eval(nil, nil); !v.Equal(Real(c.f)) {
			t.Errorf("%s reads back as %v", Real(c.f), v)
		}
	}
}
