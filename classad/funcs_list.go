package classad

// member(x, list) is true when an element == x; identicalMember uses =?=.
// An undefined list is undefined, and so is an undefined x for member;
// a list or ad as x, a non-list list, or an error x for member is error.
func (c *evalCtx) member(n *node, f *frame) Value {
	if len(n.args) != 2 {
		return Error()
	}
	x, l := c.eval(n.args[0], f), c.eval(n.args[1], f)
	identicalOp := n.fn == fnIdenticalMember
	if l.k == UndefinedKind || (!identicalOp && x.k == UndefinedKind) {
		return Value{}
	}
	if l.k != ListKind || x.k == ListKind || x.k == AdKind {
		return Error()
	}
	if !identicalOp && x.k == ErrorKind {
		return Error()
	}
	for _, e := range l.comp().list {
		var r Value
		if identicalOp {
			r = identical(opMetaEQ, e, x)
		} else {
			r = compare(opEQ, e, x)
		}
		if r.k == BoolKind && r.n != 0 {
			return Bool(true)
		}
	}
	return Bool(false)
}

// anyCompare(op, list, x) and allCompare(op, list, x) compare each
// element with x using op, one of "<", "<=", "==", "!=", ">", ">=", "is",
// "isnt". A comparison that is undefined counts as not true; one that is
// error makes the result error.
func (c *evalCtx) listCompare(n *node, f *frame) Value {
	if len(n.args) != 3 {
		return Error()
	}
	opv := c.eval(n.args[0], f)
	if opv.k == UndefinedKind {
		return Value{}
	}
	if opv.k != StringKind {
		return Error()
	}
	var op opcode
	switch opv.str() {
	case "<":
		op = opLT
	case "<=":
		op = opLE
	case "==":
		op = opEQ
	case "!=":
		op = opNE
	case ">":
		op = opGT
	case ">=":
		op = opGE
	case "is":
		op = opMetaEQ
	case "isnt":
		op = opMetaNE
	default:
		return Error()
	}
	l := c.eval(n.args[1], f)
	if l.k == UndefinedKind {
		return Value{}
	}
	if l.k != ListKind {
		return Error()
	}
	x := c.eval(n.args[2], f)
	all := n.fn == fnAllCompare
	for _, e := range l.comp().list {
		var r Value
		if op == opMetaEQ || op == opMetaNE {
			r = identical(op, e, x)
		} else {
			r = compare(op, e, x)
		}
		switch {
		case r.k == BoolKind && r.n != 0:
			if !all {
				return Bool(true)
			}
		case r.k == BoolKind || r.k == UndefinedKind:
			if all {
				return Bool(false)
			}
		default:
			return Error()
		}
	}
	return Bool(all)
}

// numbersOf collects the elements of list value l for sum, avg, min and
// max: undefined elements are dropped, any element that is not a number
// (booleans count as 1 and 0) makes the call error. empty says the list
// had no elements at all.
func numbersOf(l Value) (nums []Value, empty bool, v Value, ok bool) {
	switch l.k {
	case UndefinedKind:
		return nil, false, l, false
	case ListKind:
	default:
		return nil, false, Error(), false
	}
	for _, e := range l.comp().list {
		switch e.k {
		case UndefinedKind:
			continue
		case IntKind, RealKind:
			nums = append(nums, e)
		case BoolKind:
			nums = append(nums, Int(e.n))
		default:
			return nil, false, Error(), false
		}
	}
	return nums, len(l.comp().list) == 0, Value{}, true
}

// sumAvg is sum(list) and avg(list): an integer sum of integers, a real
// when any element is real, a real average; 0 for an empty list,
// undefined when every element is undefined.
func sumAvg(avg bool, l Value) Value {
	nums, empty, v, ok := numbersOf(l)
	if !ok {
		return v
	}
	if len(nums) == 0 {
		if empty {
			return Int(0)
		}
		return Value{}
	}
	sum := nums[0]
	for _, x := range nums[1:] {
		sum = arith(opAdd, sum, x)
	}
	if !avg || sum.k == ErrorKind {
		return sum
	}
	return arith(opDiv, toReal(sum), Real(float64(len(nums))))
}

// minMax is min(list) and max(list): undefined for an empty list (or one
// of undefined elements only), a real when any element is real.
func minMax(isMax bool, l Value) Value {
	nums, _, v, ok := numbersOf(l)
	if !ok {
		return v
	}
	if len(nums) == 0 {
		return Value{}
	}
	best, anyReal := nums[0], false
	for _, x := range nums {
		if x.k == RealKind {
			anyReal = true
		}
		op := opLT
		if isMax {
			op = opGT
		}
		if r := compare(op, x, best); r.n != 0 {
			best = x
		}
	}
	if anyReal {
		return toReal(best)
	}
	return best
}
