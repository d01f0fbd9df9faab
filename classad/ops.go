package classad

import (
	"math"
)

// strict2 applies the rule shared by the strict operators: error wins,
// then undefined.
func strict2(a, b Value) (Value, bool) {
	if a.k == ErrorKind || b.k == ErrorKind {
		return Error(), true
	}
	if a.k == UndefinedKind || b.k == UndefinedKind {
		return Value{}, true
	}
	return Value{}, false
}

// isIntLike reports integers and booleans, which arithmetic and
// comparison treat as the integers 1 and 0.
func isIntLike(v Value) bool { return v.k == IntKind || v.k == BoolKind }

func isNumber(v Value) bool { return v.k == IntKind || v.k == BoolKind || v.k == RealKind }

// num returns a number (integer, boolean or real) as a float64.
func num(v Value) float64 {
	if v.k == RealKind {
		return v.real()
	}
	return float64(v.n)
}

// arith implements + - * / %. Integers stay integers (division truncates
// toward zero, as in C); an integer meets a real as a real; booleans count
// as 1 and 0; division or modulus by zero, modulus of reals, and real
// overflow are errors; strings, lists and ads are errors.
func arith(op opcode, a, b Value) Value {
	if v, done := strict2(a, b); done {
		return v
	}
	if isIntLike(a) && isIntLike(b) {
		x, y := a.n, b.n
		switch op {
		case opAdd:
			return Int(x + y)
		case opSub:
			return Int(x - y)
		case opMul:
			return Int(x * y)
		case opDiv:
			if y == 0 {
				return Error()
			}
			if x == math.MinInt64 && y == -1 {
				return Int(math.MaxInt64) // as HTCondor: no trap
			}
			return Int(x / y)
		default: // opMod
			if y == 0 {
				return Error()
			}
			if y == -1 {
				return Int(0)
			}
			return Int(x % y)
		}
	}
	if isNumber(a) && isNumber(b) {
		x, y := num(a), num(b)
		var r float64
		switch op {
		case opAdd:
			r = x + y
		case opSub:
			r = x - y
		case opMul:
			r = x * y
		case opDiv:
			if y == 0 {
				return Error()
			}
			r = x / y
		default:
			return Error() // HTCondor has no modulus of reals
		}
		if math.IsInf(r, 0) && !math.IsInf(x, 0) && !math.IsInf(y, 0) {
			return Error() // overflow
		}
		return Real(r)
	}
	return timeArith(op, a, b)
}

// timeArith is arithmetic involving absolute and relative times:
// abs+rel, rel+abs, rel+rel, abs-abs (rel), abs-rel, rel-rel, and a
// relative time scaled by a number.
func timeArith(op opcode, a, b Value) Value {
	switch op {
	case opAdd:
		switch {
		case a.k == AbsTimeKind && b.k == RelTimeKind:
			return mkAbs(a.secs()+int64(b.real()), a.zone())
		case a.k == RelTimeKind && b.k == AbsTimeKind:
			return mkAbs(b.secs()+int64(a.real()), b.zone())
		case a.k == RelTimeKind && b.k == RelTimeKind:
			return mkRel(a.real() + b.real())
		}
	case opSub:
		switch {
		case a.k == AbsTimeKind && b.k == AbsTimeKind:
			return mkRel(float64(a.secs() - b.secs()))
		case a.k == AbsTimeKind && b.k == RelTimeKind:
			return mkAbs(a.secs()-int64(b.real()), a.zone())
		case a.k == RelTimeKind && b.k == RelTimeKind:
			return mkRel(a.real() - b.real())
		}
	case opMul:
		switch {
		case a.k == RelTimeKind && (b.k == IntKind || b.k == RealKind):
			return mkRel(a.real() * num(b))
		case b.k == RelTimeKind && (a.k == IntKind || a.k == RealKind):
			return mkRel(b.real() * num(a))
		}
	case opDiv:
		if a.k == RelTimeKind && (b.k == IntKind || b.k == RealKind) {
			if num(b) == 0 {
				return Error()
			}
			return mkRel(a.real() / num(b))
		}
	}
	return Error()
}

// maxRelSecs bounds relative times so that they always print and parse.
const maxRelSecs = 1e15

func mkRel(secs float64) Value {
	if math.IsNaN(secs) || math.Abs(secs) > maxRelSecs {
		return Error()
	}
	return relTime(secs)
}

// compare implements == != < <= > >=: strict; strings compare with each
// other only, ignoring case; numbers (booleans as 1 and 0) compare after
// promoting an integer to real; times compare with times of their kind;
// anything else is an error.
func compare(op opcode, a, b Value) Value {
	if v, done := strict2(a, b); done {
		return v
	}
	var c int
	switch {
	case a.k == StringKind && b.k == StringKind:
		if op == opEQ || op == opNE {
			return Bool(foldEqual(a.str(), b.str()) == (op == opEQ))
		}
		c = foldCompare(a.str(), b.str())
	case isIntLike(a) && isIntLike(b):
		switch {
		case a.n < b.n:
			c = -1
		case a.n > b.n:
			c = 1
		}
	case isNumber(a) && isNumber(b):
		return compareReals(op, num(a), num(b))
	case a.k == AbsTimeKind && b.k == AbsTimeKind:
		switch {
		case a.secs() < b.secs():
			c = -1
		case a.secs() > b.secs():
			c = 1
		}
	case a.k == RelTimeKind && b.k == RelTimeKind:
		return compareReals(op, a.real(), b.real())
	default:
		return Error()
	}
	switch op {
	case opEQ:
		return Bool(c == 0)
	case opNE:
		return Bool(c != 0)
	case opLT:
		return Bool(c < 0)
	case opLE:
		return Bool(c <= 0)
	case opGT:
		return Bool(c > 0)
	default:
		return Bool(c >= 0)
	}
}

// compareReals compares like C: every comparison with NaN is false
// except !=.
func compareReals(op opcode, x, y float64) Value {
	switch op {
	case opEQ:
		return Bool(x == y)
	case opNE:
		return Bool(x != y)
	case opLT:
		return Bool(x < y)
	case opLE:
		return Bool(x <= y)
	case opGT:
		return Bool(x > y)
	default:
		return Bool(x >= y)
	}
}

// identical implements =?= (is) and =!= (isnt): never undefined; true
// when both sides have the same type and value, strings compared with
// case; no promotion between integers and reals. As in HTCondor, lists
// and ads cannot be compared and give error.
func identical(op opcode, a, b Value) Value {
	same := false
	switch {
	case a.k != b.k:
	case a.k == UndefinedKind || a.k == ErrorKind:
		same = true
	case a.k == StringKind:
		same = a.str() == b.str()
	case a.k == BoolKind || a.k == IntKind:
		same = a.n == b.n
	case a.k == AbsTimeKind:
		same = a.secs() == b.secs()
	case a.k == RealKind || a.k == RelTimeKind:
		same = a.real() == b.real()
	default:
		return Error()
	}
	return Bool(same == (op == opMetaEQ))
}

// bitwise implements & | ^ << >> >>> on integers only. Shifting by a
// negative count is an error; shifting by 64 or more shifts everything
// out.
func bitwise(op opcode, a, b Value) Value {
	if v, done := strict2(a, b); done {
		return v
	}
	if a.k != IntKind || b.k != IntKind {
		return Error()
	}
	x, y := a.n, b.n
	switch op {
	case opBitAnd:
		return Int(x & y)
	case opBitOr:
		return Int(x | y)
	case opBitXor:
		return Int(x ^ y)
	}
	if y < 0 {
		return Error()
	}
	if y > 63 {
		y = 64
	}
	switch op {
	case opShl:
		return Int(x << uint(y))
	case opShr:
		return Int(x >> uint(y))
	default: // opUShr
		return Int(int64(uint64(x) >> uint(y)))
	}
}

// unary implements - + ! ~. They are strict; - applies to numbers and
// relative times (not booleans), + likewise, ! to booleans and numbers,
// ~ to integers.
func unary(op opcode, a Value) Value {
	if a.k == ErrorKind || a.k == UndefinedKind {
		return a
	}
	switch op {
	case opNeg:
		switch a.k {
		case IntKind:
			return Int(-a.n)
		case RealKind:
			return Real(-a.real())
		case RelTimeKind:
			return relTime(-a.real())
		}
	case opPos:
		switch a.k {
		case IntKind, RealKind, RelTimeKind:
			return a
		}
	case opNot:
		if b, ok := a.boolEquiv(); ok {
			return Bool(!b)
		}
	case opBitNot:
		if a.k == IntKind {
			return Int(^a.n)
		}
	}
	return Error()
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// foldEqual reports whether a and b are equal ignoring ASCII case, like
// strcasecmp(a, b) == 0. It does not allocate.
func foldEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] && lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

// foldCompare orders a and b ignoring ASCII case, like strcasecmp.
func foldCompare(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		x, y := lowerASCII(a[i]), lowerASCII(b[i])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}
