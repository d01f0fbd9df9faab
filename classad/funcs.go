package classad

import (
	"math"
	"math/rand/v2"
)

// fnID identifies a built-in function. Calls are dispatched with a switch,
// not through function values, so that evaluation state stays on the
// stack.
type fnID uint8

const (
	fnUnknown fnID = iota
	fnIfThenElse
	fnIsUndefined
	fnIsError
	fnIsString
	fnIsInteger
	fnIsReal
	fnIsBoolean
	fnIsList
	fnIsClassAd
	fnIsAbsTime
	fnIsRelTime
	fnInt
	fnReal
	fnString
	fnBool
	fnFloor
	fnCeiling
	fnRound
	fnPow
	fnQuantize
	fnRandom
	fnStrcat
	fnJoin
	fnSplit
	fnSplitUserName
	fnSplitSlotName
	fnSubstr
	fnSize
	fnToUpper
	fnToLower
	fnStrcmp
	fnStricmp
	fnRegexp
	fnRegexps
	fnReplace
	fnReplaceAll
	fnRegexpMember
	fnStringListRegexpMember
	fnStringListMember
	fnStringListIMember
	fnStringListSize
	fnStringListSum
	fnStringListAvg
	fnStringListMin
	fnStringListMax
	fnStringListsIntersect
	fnStringListSubsetMatch
	fnStringListISubsetMatch
	fnMember
	fnIdenticalMember
	fnAnyCompare
	fnAllCompare
	fnSum
	fnAvg
	fnMin
	fnMax
	fnTime
	fnCurrentTime
	fnAbsTime
	fnRelTime
	fnFormatTime
	fnInterval
	fnDebug
	fnUnparse
	fnEval
	fnVersionCmp
	fnVersionGT
	fnVersionGE
	fnVersionLT
	fnVersionLE
	fnVersionEQ
	fnVersionInRange
)

// lookupFunc maps a function name (any case) to its fnID.
func lookupFunc(name string) fnID {
	switch asciiLower(name) {
	case "ifthenelse":
		return fnIfThenElse
	case "isundefined":
		return fnIsUndefined
	case "iserror":
		return fnIsError
	case "isstring":
		return fnIsString
	case "isinteger":
		return fnIsInteger
	case "isreal":
		return fnIsReal
	case "isboolean":
		return fnIsBoolean
	case "islist":
		return fnIsList
	case "isclassad":
		return fnIsClassAd
	case "isabstime":
		return fnIsAbsTime
	case "isreltime":
		return fnIsRelTime
	case "int":
		return fnInt
	case "real":
		return fnReal
	case "string":
		return fnString
	case "bool":
		return fnBool
	case "floor":
		return fnFloor
	case "ceiling", "ceil":
		return fnCeiling
	case "round":
		return fnRound
	case "pow":
		return fnPow
	case "quantize":
		return fnQuantize
	case "random":
		return fnRandom
	case "strcat":
		return fnStrcat
	case "join":
		return fnJoin
	case "split":
		return fnSplit
	case "splitusername":
		return fnSplitUserName
	case "splitslotname":
		return fnSplitSlotName
	case "substr":
		return fnSubstr
	case "size":
		return fnSize
	case "toupper":
		return fnToUpper
	case "tolower":
		return fnToLower
	case "strcmp":
		return fnStrcmp
	case "stricmp":
		return fnStricmp
	case "regexp":
		return fnRegexp
	case "regexps":
		return fnRegexps
	case "replace":
		return fnReplace
	case "replaceall":
		return fnReplaceAll
	case "regexpmember":
		return fnRegexpMember
	case "stringlist_regexpmember":
		return fnStringListRegexpMember
	case "stringlistmember":
		return fnStringListMember
	case "stringlistimember":
		return fnStringListIMember
	case "stringlistsize":
		return fnStringListSize
	case "stringlistsum":
		return fnStringListSum
	case "stringlistavg":
		return fnStringListAvg
	case "stringlistmin":
		return fnStringListMin
	case "stringlistmax":
		return fnStringListMax
	case "stringlistsintersect":
		return fnStringListsIntersect
	case "stringlistsubsetmatch":
		return fnStringListSubsetMatch
	case "stringlistisubsetmatch":
		return fnStringListISubsetMatch
	case "member":
		return fnMember
	case "identicalmember":
		return fnIdenticalMember
	case "anycompare":
		return fnAnyCompare
	case "allcompare":
		return fnAllCompare
	case "sum":
		return fnSum
	case "avg":
		return fnAvg
	case "min":
		return fnMin
	case "max":
		return fnMax
	case "time":
		return fnTime
	case "currenttime":
		return fnCurrentTime
	case "abstime":
		return fnAbsTime
	case "reltime":
		return fnRelTime
	case "formattime":
		return fnFormatTime
	case "interval":
		return fnInterval
	case "debug":
		return fnDebug
	case "unparse":
		return fnUnparse
	case "eval":
		return fnEval
	case "versioncmp":
		return fnVersionCmp
	case "versiongt":
		return fnVersionGT
	case "versionge":
		return fnVersionGE
	case "versionlt":
		return fnVersionLT
	case "versionle":
		return fnVersionLE
	case "versioneq":
		return fnVersionEQ
	case "version_in_range":
		return fnVersionInRange
	}
	return fnUnknown
}

// call evaluates a function call. Each function checks its own argument
// count; a wrong count is error, as in HTCondor.
func (c *evalCtx) call(n *node, f *frame) Value {
	args := n.args
	switch n.fn {
	case fnIfThenElse:
		if len(args) != 3 {
			return Error()
		}
		cond := c.eval(args[0], f)
		if cond.k == UndefinedKind {
			return cond
		}
		b, ok := cond.boolEquiv()
		if !ok {
			return Error()
		}
		if b {
			return c.eval(args[1], f)
		}
		return c.eval(args[2], f)
	case fnIsUndefined, fnIsError, fnIsString, fnIsInteger, fnIsReal, fnIsBoolean,
		fnIsList, fnIsClassAd, fnIsAbsTime, fnIsRelTime:
		if len(args) != 1 {
			return Error()
		}
		return Bool(c.eval(args[0], f).k == isKind[n.fn-fnIsUndefined])
	case fnInt, fnReal, fnString, fnBool, fnFloor, fnCeiling, fnRound, fnSize,
		fnToUpper, fnToLower, fnSplitUserName, fnSplitSlotName, fnInterval, fnSum, fnAvg, fnMin, fnMax:
		if len(args) != 1 {
			return Error()
		}
		return c.unaryFunc(n.fn, c.eval(args[0], f))
	case fnPow, fnQuantize:
		if len(args) != 2 {
			return Error()
		}
		a, b := c.eval(args[0], f), c.eval(args[1], f)
		if n.fn == fnPow {
			return pow(a, b)
		}
		return quantize(a, b)
	case fnRandom:
		return c.random(n, f)
	case fnStrcat, fnJoin:
		return c.strcat(n, f)
	case fnSplit:
		return c.split(n, f)
	case fnSubstr:
		return c.substr(n, f)
	case fnStrcmp, fnStricmp:
		if len(args) != 2 {
			return Error()
		}
		return strcmpFunc(n.fn == fnStricmp, c.eval(args[0], f), c.eval(args[1], f))
	case fnRegexp, fnRegexps, fnReplace, fnReplaceAll, fnRegexpMember, fnStringListRegexpMember:
		return c.regexFunc(n, f)
	case fnStringListMember, fnStringListIMember, fnStringListSubsetMatch, fnStringListISubsetMatch:
		return c.stringListMember(n, f)
	case fnStringListSize, fnStringListSum, fnStringListAvg, fnStringListMin, fnStringListMax:
		return c.stringListSummary(n, f)
	case fnStringListsIntersect:
		return c.stringListsIntersect(n, f)
	case fnMember, fnIdenticalMember:
		return c.member(n, f)
	case fnAnyCompare, fnAllCompare:
		return c.listCompare(n, f)
	case fnTime:
		if len(args) != 0 {
			return Error()
		}
		return c.now()
	case fnCurrentTime:
		if len(args) != 0 {
			return Error()
		}
		return c.absNow()
	case fnAbsTime:
		return c.absTimeFunc(n, f)
	case fnRelTime:
		if len(args) != 1 {
			return Error()
		}
		return relTimeOf(c.eval(args[0], f))
	case fnFormatTime:
		return c.formatTime(n, f)
	case fnDebug:
		if len(args) != 1 {
			return Error()
		}
		v := c.eval(args[0], f)
		if c.opts.Debug != nil {
			c.opts.Debug((&Expr{root: args[0]}).String(), v)
		}
		return v
	case fnUnparse:
		return c.unparse(n, f)
	case fnEval:
		return c.evalFunc(n, f)
	case fnVersionCmp, fnVersionGT, fnVersionGE, fnVersionLT, fnVersionLE, fnVersionEQ:
		if len(args) != 2 {
			return Error()
		}
		return versionFunc(n.fn, c.eval(args[0], f), c.eval(args[1], f))
	case fnVersionInRange:
		if len(args) != 3 {
			return Error()
		}
		return versionInRange(c.eval(args[0], f), c.eval(args[1], f), c.eval(args[2], f))
	}
	return Error() // unknown function
}

// isKind is the kind each is*() function tests for.
var isKind = [...]Kind{
	UndefinedKind, ErrorKind, StringKind, IntKind, RealKind, BoolKind, ListKind, AdKind, AbsTimeKind, RelTimeKind,
}

// unaryFunc applies a one-argument function to its evaluated argument.
func (c *evalCtx) unaryFunc(fn fnID, v Value) Value {
	switch fn {
	case fnInt:
		return toInt(v)
	case fnReal:
		return toReal(v)
	case fnString:
		return toString(v)
	case fnBool:
		return toBool(v)
	case fnFloor, fnCeiling, fnRound:
		return roundFunc(fn, v)
	case fnSize:
		switch v.k {
		case UndefinedKind:
			return v
		case StringKind:
			return Int(int64(len(v.str())))
		case ListKind:
			return Int(int64(len(v.comp().list)))
		case AdKind:
			n := 0
			v.comp().ad.each(true, func(*attr) { n++ })
			return Int(int64(n))
		}
		return Error()
	case fnToUpper, fnToLower:
		s := toString(v)
		if s.k != StringKind {
			return s
		}
		return String(changeCase(s.str(), fn == fnToUpper))
	case fnSplitUserName, fnSplitSlotName:
		return splitAt(fn, v)
	case fnInterval:
		i := toInt(v)
		if i.k != IntKind {
			return Error()
		}
		return String(formatInterval(i.n))
	case fnSum, fnAvg:
		return sumAvg(fn == fnAvg, v)
	case fnMin, fnMax:
		return minMax(fn == fnMax, v)
	}
	return Error()
}

// toInt is int(): integers as they are, reals truncated toward zero,
// booleans 1 and 0, strings read like C's strtod and truncated, times as
// seconds; undefined stays undefined; anything else, or a number out of
// range, is error.
func toInt(v Value) Value {
	switch v.k {
	case UndefinedKind, IntKind:
		return v
	case BoolKind:
		return Int(v.n)
	case RealKind, RelTimeKind:
		return truncInt(v.real())
	case AbsTimeKind:
		return Int(v.secs())
	case StringKind:
		f, ok := parseNumberPrefix(v.str())
		if !ok {
			return Error()
		}
		return truncInt(f)
	}
	return Error()
}

func truncInt(f float64) Value {
	if math.IsNaN(f) || f >= 9.223372036854775807e18 || f < -9.223372036854775808e18 {
		return Error()
	}
	return Int(int64(f))
}

// toReal is real(): numbers and booleans as reals, strings read like C's
// strtod, times as seconds; undefined stays undefined; anything else is
// error.
func toReal(v Value) Value {
	switch v.k {
	case UndefinedKind, RealKind:
		return v
	case BoolKind, IntKind:
		return Real(float64(v.n))
	case AbsTimeKind:
		return Real(float64(v.secs()))
	case RelTimeKind:
		return Real(v.real())
	case StringKind:
		f, ok := parseNumberPrefix(v.str())
		if !ok {
			return Error()
		}
		return Real(f)
	}
	return Error()
}

// toString is string(): strings as they are, other values as they print
// (times in their string form); undefined stays undefined.
func toString(v Value) Value {
	switch v.k {
	case UndefinedKind, ErrorKind, StringKind:
		return v
	case AbsTimeKind:
		return String(formatAbsTime(v.secs(), v.zone()))
	case RelTimeKind:
		return String(formatRelTime(v.real()))
	}
	return String(v.String())
}

// toBool is bool(): booleans as they are, numbers compared with zero, the
// strings "true" and "false" in any case; other strings are undefined.
func toBool(v Value) Value {
	switch v.k {
	case UndefinedKind, BoolKind:
		return v
	case IntKind, RealKind:
		b, _ := v.boolEquiv()
		return Bool(b)
	case RelTimeKind:
		return Bool(v.real() != 0)
	case StringKind:
		switch {
		case foldEqual(v.str(), "true"):
			return Bool(true)
		case foldEqual(v.str(), "false"):
			return Bool(false)
		}
		return Value{}
	}
	return Error()
}

// roundFunc is floor(), ceiling() and round() (half to even): an integer
// stays itself; anything else goes through real(), and a failure there
// (undefined included) is error.
func roundFunc(fn fnID, v Value) Value {
	if v.k == IntKind {
		return v
	}
	r := toReal(v)
	if r.k != RealKind {
		return Error()
	}
	x := r.real()
	switch fn {
	case fnFloor:
		x = math.Floor(x)
	case fnCeiling:
		x = math.Ceil(x)
	default:
		x = math.RoundToEven(x)
	}
	return truncInt(x)
}

// pow: an integer to a non-negative integer power is an integer; any
// other pair of numbers gives a real. Arguments go through real(), so
// numeric strings are accepted as HTCondor accepts them.
func pow(a, b Value) Value {
	if a.k == IntKind && b.k == IntKind && b.n >= 0 {
		base, exp, r := a.n, b.n, int64(1)
		for exp > 0 {
			if exp&1 == 1 {
				r *= base
			}
			base *= base
			exp >>= 1
		}
		return Int(r)
	}
	x, y := toReal(a), toReal(b)
	if x.k != RealKind || y.k != RealKind {
		return Error()
	}
	return Real(math.Pow(x.real(), y.real()))
}

// quantize(a, b) rounds a up to a multiple of b, or with a list b picks
// the first element at least a (else a multiple of the last element).
// The result has b's type.
func quantize(a, b Value) Value {
	av := toReal(a)
	if av.k != RealKind {
		return Error()
	}
	x := av.real()
	if b.k == ListKind {
		last := Real(0)
		for _, e := range b.comp().list {
			ev := toReal(e)
			if ev.k != RealKind {
				return Error()
			}
			if ev.real() >= x {
				return e
			}
			last = e
		}
		b = last
	}
	bv := toReal(b)
	if bv.k != RealKind {
		return Error()
	}
	if b.k == IntKind {
		q := b.n
		if q == 0 {
			return a
		}
		if a.k == IntKind {
			return Int(ceilDiv(a.n, q) * q)
		}
		return Real(math.Ceil(x/float64(q)) * float64(q))
	}
	q := bv.real()
	if math.Abs(q) <= 1e-8 {
		return a
	}
	return Real(math.Ceil(x/q) * q)
}

// ceilDiv divides rounding toward positive infinity... as HTCondor's
// ((a + b - 1) / b) does for positive operands.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a > 0) == (b > 0)) {
		q++
	}
	return q
}

// random([x]): an integer in [0, x) for an integer x > 0, a real in
// [0, x) for a real x > 0, random(1.0) without an argument. It needs
// EvalOptions.Rand.
func (c *evalCtx) random(n *node, f *frame) Value {
	var x Value
	switch len(n.args) {
	case 0:
		x = Real(1)
	case 1:
		x = c.eval(n.args[0], f)
	default:
		return Error()
	}
	if c.opts.Rand == nil {
		return Error()
	}
	r := rand.New(c.opts.Rand)
	switch x.k {
	case IntKind:
		if x.n <= 0 {
			return Error()
		}
		return Int(r.Int64N(x.n))
	case RealKind:
		if !(x.real() > 0) || math.IsInf(x.real(), 0) {
			return Error()
		}
		return Real(x.real() * r.Float64())
	}
	return Error()
}
