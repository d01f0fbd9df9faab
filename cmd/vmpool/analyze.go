package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/schedd"
)

// analyze is condor_q -better-analyze (and -analyze): why doesn't my job
// run? For each idle job it evaluates every top-level clause of the job's
// Requirements against every machine ad in the collector, shows how many
// machines satisfy each, says which machines turn the job down through
// their own Requirements (START), and suggests a fix for each clause no
// machine satisfies.
//
//	vmpool q -better-analyze [-pool URL] [-name SCHEDD] [CLUSTER|CLUSTER.PROC|OWNER]...
func (c *cli) analyze(ctx context.Context, args []string) int {
	const cmd = "q"
	var qf queryFlags
	if code := c.parseQueryFlags(cmd, args, &qf); code >= 0 {
		return code
	}
	pc, err := c.dial(ctx, c.poolURL(qf.pool))
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	defer pc.close()
	sched, err := c.schedd(ctx, pc, qf.name)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	req := schedd.QueryRequest{Constraint: qf.constraint, Jobs: qf.jobs}
	switch {
	case qf.ownerGiven:
		req.Owner = qf.owner
	case !qf.allusers && len(qf.jobs) == 0 && qf.constraint == "":
		req.Owner = pc.user
	}
	jobs, _, err := c.fetch(ctx, pc, sched, "query", req)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	if len(jobs) == 0 {
		if len(qf.jobs) > 0 {
			return c.errorf(cmd, "no job %s in the queue of schedd %s (vmpool history shows jobs that left it)", strings.Join(qf.jobs, ", "), sched)
		}
		fmt.Fprintf(c.stdout, "-- Schedd: %s : <%s>\nNo jobs to analyze.\n", sched, busAddr(pc.url))
		return 0
	}
	machines, err := pc.ads(ctx, "slot.")
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	sort.SliceStable(machines, func(i, j int) bool { return strAttr(machines[i], "Name") < strAttr(machines[j], "Name") })
	fmt.Fprintf(c.stdout, "\n-- Schedd: %s : <%s>\n", sched, busAddr(pc.url))
	for _, job := range jobs {
		analyzeJob(c.stdout, job, machines)
	}
	return 0
}

// analyzeJob explains where one job stands and, if it waits for a
// machine, why no machine takes it.
func analyzeJob(w io.Writer, job *classad.Ad, machines []*classad.Ad) {
	id := jobID(job)
	fmt.Fprintln(w)
	switch int(intAttr(job, "JobStatus")) {
	case schedd.Held:
		fmt.Fprintf(w, "Job %s is held.\nHold reason: %s (code %d/%d)\nRelease it with 'vmpool release %s' once the cause is fixed.\n",
			id, strAttr(job, "HoldReason"), intAttr(job, "HoldReasonCode"), intAttr(job, "HoldReasonSubCode"), id)
		return
	case schedd.Running:
		fmt.Fprintf(w, "Job %s is running on %s.\n", id, strAttr(job, "RemoteHost"))
		return
	case schedd.Removed:
		fmt.Fprintf(w, "Job %s is being removed.\n", id)
		return
	case schedd.Completed:
		fmt.Fprintf(w, "Job %s has completed.\n", id)
		return
	}
	if st := strAttr(job, "VmpoolClaimState"); st != "" {
		fmt.Fprintf(w, "Job %s has a match (claim %s) and should start shortly.\n", id, st)
		return
	}
	reqExpr, ok := job.Lookup("Requirements")
	if !ok {
		fmt.Fprintf(w, "Job %s has no Requirements expression, so no machine can match it.\n", id)
		return
	}
	fmt.Fprintf(w, "The Requirements expression for job %s is\n\n    %s\n\n", id, reqExpr)
	refs := classad.ReferencesByScope(reqExpr)
	var defs []string
	for _, name := range append(append([]string(nil), refs.My...), refs.Bare...) {
		if e, ok := job.Lookup(name); ok {
			defs = append(defs, fmt.Sprintf("    %s = %s", name, e))
		}
	}
	if len(defs) > 0 {
		sort.Strings(defs)
		fmt.Fprintf(w, "Job %s defines the following attributes:\n\n%s\n\n", id, strings.Join(dedupe(defs), "\n"))
	}
	if len(machines) == 0 {
		fmt.Fprintf(w, "There are no machines in the pool: no startd advertises a slot (is a startd running? 'vmpool status' lists them).\n")
		return
	}
	clauses := classad.Conjuncts(reqExpr)
	matched := make([]int, len(clauses))
	fails := make([][]int, len(machines)) // per machine, the clauses it fails
	for m, mach := range machines {
		for i, cl := range classad.Explain(job, mach) {
			if cl.OK() {
				matched[i]++
			} else {
				fails[m] = append(fails[m], i)
			}
		}
	}
	fmt.Fprintf(w, "The Requirements expression for job %s reduces to these conditions:\n\n", id)
	fmt.Fprintf(w, "         Slots\nStep    Matched  Condition\n-----  --------  ---------\n")
	for i, cl := range clauses {
		fmt.Fprintf(w, "%-6s %8d  %s\n", "["+strconv.Itoa(i)+"]", matched[i], stripParens(cl.String()))
	}
	var suggestions []string
	for i, cl := range clauses {
		if matched[i] == 0 {
			suggestions = append(suggestions, fmt.Sprintf("    [%d] %s", i, suggest(cl, job, machines)))
		}
	}
	rejectedByJob, rejectByOwn, claimed, drained, able := 0, 0, 0, 0, 0
	var ownReasons []string
	for _, mach := range machines {
		if !job.EvalIn("Requirements", mach).IsTrue() {
			rejectedByJob++
			continue
		}
		if !mach.EvalIn("Requirements", job).IsTrue() {
			rejectByOwn++
			ownReasons = append(ownReasons, "    "+strAttr(mach, "Name")+": "+whyMachineRejects(mach, job))
			continue
		}
		switch strAttr(mach, "State") {
		case "Unclaimed":
			able++
		case "Drained":
			drained++
		default:
			claimed++
		}
	}
	if len(suggestions) == 0 && rejectedByJob == len(machines) {
		var per []string
		for m, mach := range machines {
			var steps []string
			for _, i := range fails[m] {
				steps = append(steps, "["+strconv.Itoa(i)+"]")
			}
			per = append(per, fmt.Sprintf("%s fails %s", strAttr(mach, "Name"), strings.Join(steps, " ")))
		}
		suggestions = append(suggestions, "    every condition is met by some machine, but no machine meets them all: "+strings.Join(per, "; "))
	}
	if len(suggestions) > 0 {
		fmt.Fprintf(w, "\nSuggestions:\n\n%s\n", strings.Join(suggestions, "\n"))
	}
	if len(ownReasons) > 0 {
		fmt.Fprintf(w, "\nMachines that reject job %s through their own Requirements (START):\n\n%s\n", id, strings.Join(ownReasons, "\n"))
	}
	fmt.Fprintf(w, "\n%s:  Run analysis summary.  Of %d machines,\n", id, len(machines))
	fmt.Fprintf(w, "%6d are rejected by your job's requirements\n", rejectedByJob)
	fmt.Fprintf(w, "%6d reject your job because of their own requirements\n", rejectByOwn)
	fmt.Fprintf(w, "%6d match but are already claimed\n", claimed)
	if drained > 0 {
		fmt.Fprintf(w, "%6d match but are drained (condor_drain): vmpool drain -cancel NAME lets them take jobs again\n", drained)
	}
	fmt.Fprintf(w, "%6d are able to run your job\n", able)
	if able > 0 {
		fmt.Fprintf(w, "\nJob %s should be matched in the next negotiation cycle.\n", id)
	}
}

func dedupe(sorted []string) []string {
	var out []string
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// whyMachineRejects explains a machine's own Requirements turning a job
// down: the slot's Requirements is START, so START's failing clauses are
// shown.
func whyMachineRejects(mach, job *classad.Ad) string {
	req, _ := mach.Lookup("Requirements")
	start, ok := mach.Lookup("Start")
	if req == nil || !ok || !strings.EqualFold(strings.TrimSpace(req.String()), "START") {
		return fmt.Sprintf("Requirements = %s is %s", req, mach.EvalIn("Requirements", job))
	}
	var failing []string
	for _, cl := range classad.Conjuncts(start) {
		if v := cl.Eval(mach, job); !v.IsTrue() {
			failing = append(failing, fmt.Sprintf("%s is %s", stripParens(cl.String()), v))
		}
	}
	return fmt.Sprintf("START = %s; %s", start, strings.Join(failing, "; "))
}

// stripParens removes one pair of parentheses around a whole clause.
func stripParens(s string) string {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '(' || s[len(s)-1] != ')' {
		return s
	}
	depth := 0
	inStr := false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case inStr:
			if ch == '\\' {
				i++
			} else if ch == '"' {
				inStr = false
			}
		case ch == '"':
			inStr = true
		case ch == '(':
			depth++
		case ch == ')':
			depth--
			if depth == 0 && i != len(s)-1 {
				return s // "(a) && (b)": the first paren closes early
			}
		}
	}
	return strings.TrimSpace(s[1 : len(s)-1])
}

var (
	comparisonOps = []string{"=?=", "=!=", ">=", "<=", "==", "!=", ">", "<"}
	attrRef       = regexp.MustCompile(`^(?i:(TARGET)\.)?([A-Za-z_][A-Za-z0-9_]*)$`)
)

// splitComparison splits "a OP b" at its one top-level comparison.
func splitComparison(s string) (lhs, op, rhs string, ok bool) {
	depth := 0
	inStr := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case inStr:
			if ch == '\\' {
				i++
			} else if ch == '"' {
				inStr = false
			}
			continue
		case ch == '"':
			inStr = true
			continue
		case ch == '(' || ch == '[' || ch == '{':
			depth++
			continue
		case ch == ')' || ch == ']' || ch == '}':
			depth--
			continue
		}
		if depth != 0 {
			continue
		}
		for _, o := range comparisonOps {
			if strings.HasPrefix(s[i:], o) {
				return strings.TrimSpace(s[:i]), o, strings.TrimSpace(s[i+len(o):]), true
			}
		}
	}
	return "", "", "", false
}

// machineAttr reports whether side names a machine attribute (TARGET.x,
// or a bare x the job does not define).
func machineAttr(side string, job *classad.Ad) (string, bool) {
	m := attrRef.FindStringSubmatch(side)
	if m == nil {
		return "", false
	}
	if m[1] != "" {
		return m[2], true
	}
	if _, ok := job.Lookup(m[2]); ok || strings.EqualFold(m[2], "true") || strings.EqualFold(m[2], "false") ||
		strings.EqualFold(m[2], "undefined") || strings.EqualFold(m[2], "error") {
		return "", false
	}
	return m[2], true
}

var flipped = map[string]string{">=": "<=", "<=": ">=", ">": "<", "<": ">", "==": "==", "!=": "!=", "=?=": "=?=", "=!=": "=!="}

// suggest says why no machine satisfies clause cl of job's Requirements
// and what would change that, e.g. "no machine offers VM_Memory >= 4096;
// the largest VM_Memory is 2048 (slot1@startd1): lower vm_memory ...".
func suggest(cl *classad.Expr, job *classad.Ad, machines []*classad.Ad) string {
	text := stripParens(cl.String())
	attr, op, other := "", "", ""
	if l, o, r, ok := splitComparison(text); ok {
		if a, ok := machineAttr(l, job); ok {
			attr, op, other = a, o, r
		} else if a, ok := machineAttr(r, job); ok {
			attr, op, other = a, flipped[o], l
		}
	} else if a, ok := machineAttr(text, job); ok {
		attr, op, other = a, "==", "true" // a bare machine attribute must be true
	}
	if attr == "" {
		return fmt.Sprintf("no machine satisfies %s; %s", text, machineValues(classad.ReferencesByScope(cl).Target, machines))
	}
	var want classad.Value
	if e, err := classad.ParseExpr(other); err == nil {
		want = e.Eval(job, nil)
	}
	if want.IsUndefined() || want.IsError() {
		return fmt.Sprintf("no machine satisfies %s: %s is %s in the job; %s", text, other, want, machineValues([]string{attr}, machines))
	}
	if strings.EqualFold(attr, "VM_AvailNum") && !anyHasVM(machines) {
		// A machine that cannot run VMs offers none: that is the cause,
		// not VM_MAX_NUMBER.
		return fmt.Sprintf("no machine has %s %s %s%s", attr, op, want, offline("HasVM", machines))
	}
	defined := 0
	for _, m := range machines {
		if !m.Eval(attr).IsUndefined() {
			defined++
		}
	}
	if defined == 0 {
		return fmt.Sprintf("no machine defines %s%s", attr, fixFor(attr, want, classad.Undefined()))
	}
	switch op {
	case ">=", ">", "<=", "<":
		if _, ok := want.NumberValue(); !ok {
			break
		}
		bestName, best, found := "", 0.0, false
		for _, m := range machines {
			f, ok := m.Eval(attr).NumberValue()
			if !ok {
				continue
			}
			better := f > best
			if op == "<=" || op == "<" {
				better = f < best
			}
			if !found || better {
				bestName, best, found = strAttr(m, "Name"), f, true
			}
		}
		if !found {
			break
		}
		word := "largest"
		if op == "<=" || op == "<" {
			word = "smallest"
		}
		bestV := classad.Real(best)
		if best == float64(int64(best)) {
			bestV = classad.Int(int64(best))
		}
		return fmt.Sprintf("no machine offers %s %s %s; the %s %s is %s (%s)%s", attr, op, want, word, attr, bestV, bestName, fixFor(attr, want, bestV))
	}
	switch op {
	case "==", "=?=":
		if b, ok := want.BoolValue(); ok && b {
			return fmt.Sprintf("no machine has %s true; %s%s", attr, machineValues([]string{attr}, machines), offline(attr, machines))
		}
		return fmt.Sprintf("no machine has %s %s %s; %s%s", attr, op, want, machineValues([]string{attr}, machines), fixFor(attr, want, classad.Undefined()))
	}
	return fmt.Sprintf("no machine satisfies %s; %s", text, machineValues([]string{attr}, machines))
}

// machineValues summarises what the machines have for attrs:
// "machines have VM_Type "kvm" (2)".
func machineValues(attrs []string, machines []*classad.Ad) string {
	if len(attrs) == 0 {
		return "it does not depend on the machine"
	}
	var parts []string
	for _, a := range attrs {
		counts := map[string]int{}
		var order []string
		for _, m := range machines {
			v := m.Eval(a).String()
			if counts[v] == 0 {
				order = append(order, v)
			}
			counts[v]++
		}
		sort.Strings(order)
		var vs []string
		for _, v := range order {
			vs = append(vs, fmt.Sprintf("%s (%d)", v, counts[v]))
		}
		parts = append(parts, a+" = "+strings.Join(vs, ", "))
	}
	return "machines have " + strings.Join(parts, "; ")
}

// anyHasVM reports whether some machine advertises HasVM true.
func anyHasVM(machines []*classad.Ad) bool {
	for _, m := range machines {
		if b, _ := m.EvalBool("HasVM"); b {
			return true
		}
	}
	return false
}

// offline adds the machines' VMOfflineReason when HasVM is what fails.
func offline(attr string, machines []*classad.Ad) string {
	if !strings.EqualFold(attr, "HasVM") {
		return ""
	}
	var rs []string
	for _, m := range machines {
		if r := strAttr(m, "VMOfflineReason"); r != "" {
			rs = append(rs, strAttr(m, "Name")+": "+r)
		}
	}
	if len(rs) == 0 {
		return ": no execute machine can run VMs now"
	}
	return ": no execute machine can run VMs now (" + strings.Join(rs, "; ") + ")"
}

// fixFor says what to change for the common vm-universe attributes.
func fixFor(attr string, want, have classad.Value) string {
	switch strings.ToLower(attr) {
	case "vm_memory", "totalmemory":
		if !have.IsUndefined() {
			return fmt.Sprintf(": lower vm_memory to at most %s, or give an execute machine more VM_MEMORY", have)
		}
		return ": no machine advertises VM memory (is its hypervisor working?)"
	case "vm_type":
		return fmt.Sprintf(": set vm_type to a type the pool offers, or run a startd with VM_TYPE = %s", strings.Trim(want.String(), `"`))
	case "vm_availnum":
		return ": every machine already runs as many VMs as VM_MAX_NUMBER allows; the job runs when one finishes"
	case "disk":
		return ": lower request_disk, or free disk on an execute machine"
	case "cpus":
		return ": lower request_cpus (or vm_vcpus)"
	case "vm_networking":
		return ": drop vm_networking, or set VM_NETWORKING = true on an execute machine"
	case "vm_hardwarevt":
		return ": set VM_HARDWARE_VT = true on a machine with hardware virtualisation, or do not ask for xen_kernel = vmx"
	}
	return ""
}
