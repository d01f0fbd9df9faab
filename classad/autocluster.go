package classad

import (
	"slices"
	"sort"
	"strings"
)

// SignificantAttrs returns the job attributes that can change whether a
// job matches, or how it ranks, against the given machine ads: the
// attributes the machines' Requirements and Rank refer to on the TARGET
// side (directly, through bare names the machine does not define, or
// through machine attributes those expressions use), plus Requirements
// and Rank themselves. Names are lower-case and sorted.
//
// Jobs that agree on these attributes, and on everything their own
// Requirements and Rank refer to (see Autocluster), match the same
// machines, so a matchmaker evaluates one of them for all (HTCondor's
// autoclustering).
func SignificantAttrs(machines ...*Ad) []string {
	sig := map[string]bool{"requirements": true, "rank": true}
	type memo struct {
		expr *Expr
		refs Refs // lower-case
	}
	memos := map[uint64][]memo{} // machines mostly share their expressions
	lower := func(l []string) []string {
		out := make([]string, len(l))
		for i, x := range l {
			out[i] = asciiLower(x)
		}
		return out
	}
	refs := func(e *Expr) Refs {
		for _, m := range memos[e.root.sig] {
			if m.expr.Equal(e) {
				return m.refs
			}
		}
		r := ReferencesByScope(e)
		r = Refs{My: lower(r.My), Target: lower(r.Target), Bare: lower(r.Bare)}
		memos[e.root.sig] = append(memos[e.root.sig], memo{e, r})
		return r
	}
	var m *Ad
	seen := map[string]bool{}
	var visit func(e *Expr)
	var follow func(k string) bool
	visit = func(e *Expr) {
		r := refs(e)
		for _, t := range r.Target {
			sig[t] = true
		}
		for _, k := range r.My {
			follow(k)
		}
		for _, k := range r.Bare {
			if !follow(k) {
				sig[k] = true // a bare name the machine lacks is looked up in the job
			}
		}
	}
	// follow visits machine attribute k, reporting whether m has it.
	follow = func(k string) bool {
		ex, ok := m.Lookup(k)
		if ok && !seen[k] {
			seen[k] = true
			visit(ex)
		}
		return ok
	}
	for _, m = range machines {
		clear(seen)
		follow("requirements")
		follow("rank")
	}
	out := make([]string, 0, len(sig))
	for k := range sig {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Autocluster groups job ads that are identical in everything matching
// can see, so that a matchmaker evaluates one representative per group.
// Two jobs share a group when they bind the same expressions (or nothing)
// to every significant attribute and to every job attribute that those
// expressions refer to, transitively.
//
// An Autocluster is not safe for concurrent use.
type Autocluster struct {
	attrs   []closureAttr // the significant attributes (expr unset)
	groups  map[uint64][]int
	reps    []clusterRep
	refs    map[uint64][]refMemo
	scratch []closureAttr
}

type clusterRep struct {
	ad      *Ad
	closure []closureAttr
}

type closureAttr struct {
	key  string
	hash uint64
	expr *Expr // nil: the job has no such attribute
}

type refMemo struct {
	expr *Expr
	keys []closureAttr // lower-case MY-side and bare references (expr unset)
}

// NewAutocluster returns an empty grouping over the given significant
// attributes, usually SignificantAttrs of the machine ads.
func NewAutocluster(significant []string) *Autocluster {
	c := &Autocluster{groups: map[uint64][]int{}, refs: map[uint64][]refMemo{}}
	for _, s := range significant {
		k := asciiLower(s)
		c.attrs = append(c.attrs, closureAttr{key: k, hash: hashString(k)})
	}
	return c
}

// ID returns the group of job, creating a new group (with job as its
// representative) when job matches no existing one. IDs count from 0.
func (c *Autocluster) ID(job *Ad) int {
	cl := c.closure(job)
	h := uint64(fnvOffset)
	for _, a := range cl {
		h = mix(h, a.hash)
		if a.expr != nil {
			h = mix(h, a.expr.root.sig)
		}
	}
	for _, id := range c.groups[h] {
		if sameClosure(c.reps[id].closure, cl) {
			return id
		}
	}
	id := len(c.reps)
	c.reps = append(c.reps, clusterRep{ad: job, closure: append([]closureAttr(nil), cl...)})
	c.groups[h] = append(c.groups[h], id)
	return id
}

// Len is the number of groups.
func (c *Autocluster) Len() int { return len(c.reps) }

// Representative returns the first job put in group id.
func (c *Autocluster) Representative(id int) *Ad { return c.reps[id].ad }

// Attrs returns the lower-case attributes that decide group id: the
// significant ones and those they lead to.
func (c *Autocluster) Attrs(id int) []string {
	out := make([]string, len(c.reps[id].closure))
	for i, a := range c.reps[id].closure {
		out[i] = a.key
	}
	return out
}

func sameClosure(a, b []closureAttr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].key != b[i].key || !a[i].expr.Equal(b[i].expr) {
			return false
		}
	}
	return true
}

// closure collects the significant attributes of job and, transitively,
// the job attributes their expressions refer to (MY-side and bare names),
// sorted by name. The result is scratch space, valid until the next call.
func (c *Autocluster) closure(job *Ad) []closureAttr {
	cl := c.scratch[:0]
	for _, a := range c.attrs {
		cl = c.add(cl, job, a)
	}
	slices.SortFunc(cl, func(x, y closureAttr) int { return strings.Compare(x.key, y.key) })
	c.scratch = cl
	return cl
}

func (c *Autocluster) add(cl []closureAttr, job *Ad, a closureAttr) []closureAttr {
	for i := range cl {
		if cl[i].hash == a.hash && cl[i].key == a.key {
			return cl
		}
	}
	at := job.lookup(a.key, a.hash)
	if at != nil {
		a.expr = at.expr
	}
	cl = append(cl, a)
	if at != nil && !at.isLit {
		for _, r := range c.jobRefs(at.expr) {
			cl = c.add(cl, job, r)
		}
	}
	return cl
}

// jobRefs returns the MY-side and bare references of e, memoized by
// structure.
func (c *Autocluster) jobRefs(e *Expr) []closureAttr {
	sig := e.root.sig
	for _, m := range c.refs[sig] {
		if m.expr.Equal(e) {
			return m.keys
		}
	}
	r := ReferencesByScope(e)
	var keys []closureAttr
	for _, l := range [][]string{r.My, r.Bare} {
		for _, x := range l {
			k := asciiLower(x)
			keys = append(keys, closureAttr{key: k, hash: hashString(k)})
		}
	}
	c.refs[sig] = append(c.refs[sig], refMemo{expr: e, keys: keys})
	return keys
}

// Signature returns a key that is equal for two jobs exactly when they
// bind the same expressions to attrs and to the job attributes those
// expressions refer to. It is the text form of what Autocluster compares.
func Signature(job *Ad, attrs []string) string {
	c := NewAutocluster(attrs)
	var b strings.Builder
	for _, a := range c.closure(job) {
		b.WriteString(a.key)
		if a.expr == nil {
			b.WriteString("\x00\n")
			continue
		}
		b.WriteString("=")
		b.WriteString(a.expr.String())
		b.WriteByte('\n')
	}
	return b.String()
}
