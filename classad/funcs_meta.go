package classad

// unparse(attr) returns the text of the expression bound to the attribute
// reference attr, without evaluating it; "" if there is no such
// attribute. Any other argument is error.
func (c *evalCtx) unparse(n *node, f *frame) Value {
	if len(n.args) != 1 {
		return Error()
	}
	a := n.args[0]
	var at *attr
	switch a.op {
	case opRef:
		at = f.my.lookup(a.key, a.hash)
		for l := f.lex; at == nil && l != nil; l = l.up {
			at = l.ad.lookup(a.key, a.hash)
		}
		if at == nil && !c.opts.Strict {
			at = f.target.lookup(a.key, a.hash)
		}
	case opScoped:
		switch a.scope {
		case scopeMy:
			at = f.my.lookup(a.key, a.hash)
		case scopeTarget:
			at = f.target.lookup(a.key, a.hash)
		case scopeRoot:
			at = f.root.lookup(a.key, a.hash)
		default:
			p, _ := parentOf(f)
			at = p.lookup(a.key, a.hash)
		}
	case opSelect:
		base := c.eval(a.a, f)
		if base.k != AdKind {
			return Error()
		}
		at = base.comp().ad.lookup(a.key, a.hash)
	default:
		return Error()
	}
	if at == nil {
		return String("")
	}
	return String(at.expr.String())
}

// eval(s) parses the string s (after string()) as an expression and
// evaluates it where the call stands. A string that does not parse is
// error.
func (c *evalCtx) evalFunc(n *node, f *frame) Value {
	if len(n.args) != 1 {
		return Error()
	}
	s := toString(c.eval(n.args[0], f))
	if s.k != StringKind {
		return Error()
	}
	if !c.spend(len(s.str())) {
		return Error()
	}
	e, err := ParseExpr(s.str())
	if err != nil {
		return Error()
	}
	return c.eval(e.root, f)
}
