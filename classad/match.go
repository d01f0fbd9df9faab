package classad

// Match reports whether job and machine match: each ad's Requirements
// evaluates to true (or a non-zero number) with the ad as MY and the
// other as TARGET. A missing Requirements, undefined or error is no
// match. No clock or random source is available (see MatchWith).
func Match(job, machine *Ad) bool { return MatchWith(job, machine, nil) }

// MatchWith is Match under opts.
func MatchWith(job, machine *Ad, opts *EvalOptions) bool {
	return evalAttrIn(job, "requirements", machine, opts).IsTrue() &&
		evalAttrIn(machine, "requirements", job, opts).IsTrue()
}

// Rank evaluates ranker's Rank with other as TARGET. A value that is not a
// number (booleans count as 1 and 0), or a missing Rank, counts as 0.
func Rank(ranker, other *Ad) float64 { return RankWith(ranker, other, nil) }

// RankWith is Rank under opts.
func RankWith(ranker, other *Ad, opts *EvalOptions) float64 {
	f, ok := evalAttrIn(ranker, "rank", other, opts).NumberValue()
	if !ok || f != f {
		return 0
	}
	return f
}

// Clause is one top-level conjunct of a Requirements expression with its
// value in a match.
type Clause struct {
	Expr  *Expr
	Value Value
}

// OK reports whether the clause is satisfied (true, or a non-zero number).
func (c Clause) OK() bool { return c.Value.IsTrue() }

// Explain splits owner's Requirements into its top-level && clauses and
// evaluates each with owner as MY and other as TARGET, so that a user can
// see which clause keeps a match from happening. It returns nil when
// owner has no Requirements.
func Explain(owner, other *Ad) []Clause { return ExplainWith(owner, other, nil) }

// ExplainWith is Explain under opts.
func ExplainWith(owner, other *Ad, opts *EvalOptions) []Clause {
	req, ok := owner.Lookup("requirements")
	if !ok {
		return nil
	}
	parts := Conjuncts(req)
	out := make([]Clause, len(parts))
	for i, p := range parts {
		out[i] = Clause{Expr: p, Value: p.EvalWith(owner, other, opts)}
	}
	return out
}

// Conjuncts splits e at its top-level && operators, looking through
// parentheses: (A && B) && C gives A, B and C. Each part keeps the text it
// was written with.
func Conjuncts(e *Expr) []*Expr {
	var out []*Expr
	var split func(n *node)
	split = func(n *node) {
		if n.op == opAnd {
			split(n.a)
			split(n.b)
			return
		}
		out = append(out, &Expr{root: n})
	}
	if e != nil {
		split(e.root)
	}
	return out
}
