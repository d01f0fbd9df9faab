package classad

import (
	"sort"
)

// Refs lists the attributes an expression refers to, by scope. Names are
// spelled as first written, each listed once (ignoring case), sorted
// ignoring case.
type Refs struct {
	My     []string // MY.x, .x and PARENT.x: only the evaluating ad (and its parents)
	Target []string // TARGET.x: only the other ad
	Bare   []string // x: the evaluating ad first, then the other ad
}

// References returns the names of all attributes e refers to, whatever
// the scope (see ReferencesByScope). For a.b only a counts: b names a
// field of a's value. Names used inside a nested ad literal that the
// literal defines itself are not references. Attributes reached through
// eval() or unparse() cannot be known and are not listed.
func References(e *Expr) []string {
	r := ReferencesByScope(e)
	var all nameSet
	for _, l := range [][]string{r.My, r.Target, r.Bare} {
		for _, n := range l {
			all.add(n)
		}
	}
	return all.sorted()
}

// ReferencesByScope returns the attributes e refers to, split by scope.
func ReferencesByScope(e *Expr) Refs {
	var my, target, bare nameSet
	var visit func(n *node, inner []*Ad)
	visit = func(n *node, inner []*Ad) {
		if n == nil {
			return
		}
		switch n.op {
		case opRef:
			for _, a := range inner {
				if a.own(n.key, n.hash) != nil {
					return
				}
			}
			bare.add(n.name)
			return
		case opScoped:
			if n.scope == scopeTarget {
				target.add(n.name)
			} else if len(inner) == 0 || n.scope == scopeRoot {
				my.add(n.name)
			}
			return
		case opAdLit:
			inner = append(append([]*Ad(nil), inner...), n.ad)
			for i := range n.ad.attrs {
				visit(n.ad.attrs[i].expr.root, inner)
			}
			return
		}
		visit(n.a, inner)
		visit(n.b, inner)
		visit(n.c, inner)
		for _, x := range n.args {
			visit(x, inner)
		}
	}
	if e != nil {
		visit(e.root, nil)
	}
	return Refs{My: my.sorted(), Target: target.sorted(), Bare: bare.sorted()}
}

// nameSet collects names case-insensitively, keeping the first spelling.
type nameSet struct {
	keys  map[string]bool
	names []string
}

func (s *nameSet) add(name string) {
	k := asciiLower(name)
	if s.keys[k] {
		return
	}
	if s.keys == nil {
		s.keys = make(map[string]bool)
	}
	s.keys[k] = true
	s.names = append(s.names, name)
}

func (s *nameSet) sorted() []string {
	sort.Slice(s.names, func(i, j int) bool {
		a, b := asciiLower(s.names[i]), asciiLower(s.names[j])
		if a != b {
			return a < b
		}
		return s.names[i] < s.names[j]
	})
	return s.names
}
