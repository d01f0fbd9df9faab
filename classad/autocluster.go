package classad

import (
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
	memo := map[*Expr]Refs{}
	refs := func(e *Expr) Refs {
		r, ok := memo[e]
		if !ok {
			r = ReferencesByScope(e)
			memo[e] = r
		}
		return r
	}
	for _, m := range machines {
		seen := map[string]bool{}
		var visit func(e *Expr)
		visit = func(e *Expr) {
			r := refs(e)
			for _, t := range r.Target {
				sig[asciiLower(t)] = true
			}
			for i, l := range [][]string{r.My, r.Bare} {
				for _, x := range l {
					k := asciiLower(x)
					if ex, ok := m.Lookup(k); ok {
						if !seen[k] {
							seen[k] = true
							visit(ex)
						}
					} else if i == 1 {
						sig[k] = true // a bare name the machine lacks is looked up in the job
					}
				}
			}
		}
		for _, name := range []string{"requirements", "rank"} {
			if e, ok := m.Lookup(name); ok && !seen[name] {
				seen[name] = true
				visit(e)
			}
		}
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
	attrs  []string
	groups map[uint64][]int
	reps   []clusterRep
	refs   map[uint64][]refMemo
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
	keys []string
}

// NewAutocluster returns an empty grouping over the given significant
// attributes, usually SignificantAttrs of the machine ads.
func NewAutocluster(significant []string) *Autocluster {
	attrs := make([]string, len(significant))
	for i, s := range significant {
		attrs[i] = asciiLower(s)
	}
	return &Autocluster{attrs: attrs, groups: map[uint64][]int{}, refs: map[uint64][]refMemo{}}
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
	c.reps = append(c.reps, clusterRep{ad: job, closure: cl})
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
// sorted by name.
func (c *Autocluster) closure(job *Ad) []closureAttr {
	cl := make([]closureAttr, 0, len(c.attrs)+8)
	has := func(k string) bool {
		for i := range cl {
			if cl[i].key == k {
				return true
			}
		}
		return false
	}
	var add func(k string)
	add = func(k string) {
		if has(k) {
			return
		}
		h := hashString(k)
		at := job.lookup(k, h)
		ca := closureAttr{key: k, hash: h}
		if at != nil {
			ca.expr = at.expr
		}
		cl = append(cl, ca)
		if at != nil {
			for _, r := range c.jobRefs(at.expr) {
				add(r)
			}
		}
	}
	for _, k := range c.attrs {
		add(k)
	}
	sort.Slice(cl, func(i, j int) bool { return cl[i].key < cl[j].key })
	return cl
}

// jobRefs returns the lower-case MY-side and bare references of e,
// memoized by structure.
func (c *Autocluster) jobRefs(e *Expr) []string {
	sig := e.root.sig
	for _, m := range c.refs[sig] {
		if m.expr.Equal(e) {
			return m.keys
		}
	}
	r := ReferencesByScope(e)
	keys := make([]string, 0, len(r.My)+len(r.Bare))
	for _, l := range [][]string{r.My, r.Bare} {
		for _, x := range l {
			keys = append(keys, asciiLower(x))
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
