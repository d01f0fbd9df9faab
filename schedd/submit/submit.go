package submit

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Attr is one job attribute: its name and its value as ClassAd expression
// source text (`"hello_vm_job"`, `16`, `true`, `(TARGET.Arch == "X86_64")`).
type Attr struct {
	Name string
	Expr string
}

// Proc is one job of a cluster, as far as it differs from the cluster.
// A proc that does not differ has nil slices and empty strings, so that a
// cluster of 100,000 identical jobs stays small. Slices may be shared
// between procs: treat them as read-only.
type Proc struct {
	Attrs   []Attr   // attributes that differ from Cluster.Attrs (by macro expansion per queue item)
	Inputs  []string // absolute local paths this proc transfers beyond Cluster.Inputs
	Iwd     string   // initial working directory when it differs from Cluster.Iwd
	UserLog string   // user log when it differs from Cluster.UserLog
}

// Cluster is a parsed submit description: one cluster of vm universe jobs.
// ClusterId, ProcId, QDate and GlobalJobId are the schedd's to assign.
type Cluster struct {
	File     string   // submit file path as given
	Iwd      string   // absolute initial working directory of the first proc
	Attrs    []Attr   // attributes common to every proc, in a stable order
	Procs    []Proc   // one per job queued
	Inputs   []string // absolute local paths every proc transfers
	UserLog  string   // absolute path of the first proc's log, "" if none
	Warnings []string // "file:line: text"
}

// Options parameterise Parse. The zero value works: defaults are noted.
type Options struct {
	// ClusterID is the value of $(Cluster) and $(ClusterId); 0 means not
	// yet known, and Parse returns ErrNeedClusterID if the file uses it.
	ClusterID int
	// Owner becomes the Owner attribute ("" leaves it out).
	Owner string
	// SubmitHost names the submitting machine; it is the FileSystemDomain
	// of jobs that rely on a shared file system unless FileSystemDomain
	// is set.
	SubmitHost       string
	FileSystemDomain string
	// Arch is the submit host's Arch for the default Requirements and
	// $(ARCH); default from the Go runtime (amd64: "X86_64").
	Arch string
	// Append are extra lines, as from condor_submit -append, applied
	// before every queue statement.
	Append []string
	// Queue is a queue statement's arguments, as from condor_submit
	// -queue, used when the file has no queue statement.
	Queue string
	// AppendRequirements is the pool's APPEND_REQ_VM (or
	// APPEND_REQUIREMENTS), appended to the user's requirements.
	AppendRequirements string
	// CheckExpr validates a ClassAd expression (the caller wires it to the
	// ClassAd parser); nil checks only string literals.
	CheckExpr func(src string) error
	// Getenv resolves $ENV(NAME); default os.LookupEnv.
	Getenv func(name string) (string, bool)
	// Paths decides which files may be named; see PathPolicy.
	Paths PathPolicy
	// MaxProcs bounds the jobs one file may queue; default 1,000,000.
	MaxProcs int
	// CheckLog checks that a user log can be written (condor_submit opens
	// it); nil checks only that its directory exists.
	CheckLog func(path string) error
}

const defaultMaxProcs = 1_000_000

func (o *Options) arch() string {
	if o.Arch != "" {
		return o.Arch
	}
	switch runtime.GOARCH {
	case "amd64":
		return "X86_64"
	case "386":
		return "INTEL"
	case "arm64":
		return "aarch64"
	default:
		return strings.ToUpper(runtime.GOARCH)
	}
}

// ParseFile parses the submit description at path.
func ParseFile(path string, opt Options) (*Cluster, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open submit description: %w", err)
	}
	defer f.Close()
	return Parse(path, f, opt)
}

// Parse parses a submit description read from src. file is its path as
// given (relative paths in it resolve against its directory); "" or "-"
// means standard input, resolved against the working directory.
//
// It returns the cluster, or nil and Errors listing every problem (each a
// *Error), or ErrNeedClusterID, or an error reading src.
func Parse(file string, src io.Reader, opt Options) (*Cluster, error) {
	o := opt
	if o.MaxProcs <= 0 {
		o.MaxProcs = defaultMaxProcs
	}
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	name := file
	var dir string
	var err error
	if file == "" || file == "-" {
		name = "<stdin>"
		dir, err = os.Getwd()
	} else {
		dir, err = filepath.Abs(filepath.Dir(file))
	}
	if err != nil {
		return nil, fmt.Errorf("locate submit directory of %s: %w", name, err)
	}
	data, err := io.ReadAll(io.LimitReader(src, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read submit description %s: %w", name, err)
	}
	ps := &parser{opt: &o, file: file, name: name, dir: dir, fs: newFSCache()}
	return ps.run(data)
}

type parser struct {
	opt  *Options
	file string // as given
	name string // for messages
	dir  string // absolute submit directory
	fs   *fsCache
	p    problems

	defaults map[string]string // $(ARCH) and friends; read-only once made

	needCluster bool
	// stop ends job building: the report is full, or macros are out of
	// bounds, and building more jobs would only repeat the same errors.
	stop bool
}

type queued struct {
	s   stmt
	tbl *macroTable
}

func (ps *parser) run(data []byte) (*Cluster, error) {
	p := &ps.p
	if len(data) > maxFileSize {
		p.add(&Error{File: ps.name, Line: 1, Code: "file-too-large", Msg: fmt.Sprintf("the submit file is larger than %d bytes", maxFileSize)})
		return nil, p.result()
	}
	if !checkText(ps.name, data, p) {
		return nil, p.result()
	}
	stmts := lex(ps.name, string(data), p)
	lastLine := bytes.Count(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) + 1

	var appendStmts []stmt
	if len(ps.opt.Append) > 0 {
		at := strings.Join(ps.opt.Append, "\n")
		if checkText("-append", []byte(at), p) {
			for _, s := range lex("-append", at, p) {
				if s.kind == stmtQueue {
					p.add(&Error{File: "-append", Line: s.line, Command: "queue", Code: "line-syntax",
						Msg: "a queue statement cannot be appended", Fix: "give it with -queue (condor_submit -queue 3 FILE), or write it at the end of the file"})
					continue
				}
				appendStmts = append(appendStmts, s)
			}
		}
	}

	tbl := newMacroTable()
	var queues []queued
	for _, s := range stmts {
		switch s.kind {
		case stmtAssign:
			tbl.define(s)
		case stmtQueue:
			for _, a := range appendStmts {
				tbl.define(a)
			}
			queues = append(queues, queued{s: s, tbl: tbl.clone()})
		}
	}
	if ps.opt.Queue != "" {
		if len(queues) > 0 {
			p.add(&Error{File: queues[0].s.file, Line: queues[0].s.line, Command: "queue", Code: "queue-conflict",
				Msg: "the file has a queue statement and a queue statement was given on the command line"})
		} else {
			for _, a := range appendStmts {
				tbl.define(a)
			}
			args := strings.TrimSpace(ps.opt.Queue)
			if qa, ok := queueArgs(args); ok {
				args = qa
			}
			s := stmt{kind: stmtQueue, file: "-queue", line: 1, args: args}
			if queueOpensList(args) {
				p.add(&Error{File: "-queue", Line: 1, Command: "queue", Code: "queue-list-unterminated",
					Msg: "a command-line queue statement cannot continue on further lines", Fix: "close the item list with ) on the same line"})
			} else {
				queues = append(queues, queued{s: s, tbl: tbl.clone()})
			}
		}
	}
	if len(queues) == 0 && ps.opt.Queue == "" && !p.has("queue-list-unterminated") {
		// (A queue statement left open is one, and says so itself.)
		p.add(&Error{File: ps.name, Line: max(1, lastLine), Command: "queue", Code: "queue-missing",
			Msg: "the submit description has no queue statement, so it queues no job"})
	}
	ps.fileWarnings(stmts, appendStmts, queues)

	var jobs []*job
	for _, q := range queues {
		jobs = ps.queue(q, jobs)
	}
	if len(p.errs) == 0 && len(jobs) == 0 && len(queues) > 0 {
		q := queues[len(queues)-1].s
		p.add(&Error{File: q.file, Line: q.line, Command: "queue", Code: "queue-no-jobs",
			Msg: "the queue statements produce no job"})
	}
	if err := p.result(); err != nil {
		return nil, err
	}
	if ps.needCluster && ps.opt.ClusterID == 0 {
		return nil, ErrNeedClusterID
	}
	ps.sharedMACs(jobs)
	return ps.assemble(jobs), nil
}

// sharedMACs warns of a vm_macaddr that several jobs of the cluster get
// (queue 2, or a vm_macaddr that does not vary with $(Process)): their VMs
// running at once on one bridged network would answer for the same
// address, and each would lose some of its traffic to the other.
func (ps *parser) sharedMACs(jobs []*job) {
	n := map[string]int{}
	first := map[string]*job{}
	for _, j := range jobs {
		if j.mac == "" {
			continue
		}
		if n[j.mac]++; first[j.mac] == nil {
			first[j.mac] = j
		}
	}
	for _, j := range jobs {
		if c := n[j.mac]; c > 1 && first[j.mac] == j {
			file, line := "", 0
			if j.macAt != nil {
				file, line = j.macAt.file, j.macAt.line
			}
			ps.p.warn(file, line, "vm_macaddr %s is the MAC of %d jobs of this cluster: VMs with one MAC running at once on a bridged network lose traffic to each other; leave vm_macaddr out (each run then gets a MAC of its own) or give each job its own", j.mac, c)
		}
	}
}

// fileWarnings reports what is legal but probably not meant.
func (ps *parser) fileWarnings(stmts, appendStmts []stmt, queues []queued) {
	p := &ps.p
	// Everything a macro reference could appear in, lower-cased.
	var all strings.Builder
	for _, group := range [][]stmt{stmts, appendStmts} {
		for _, s := range group {
			all.WriteString(strings.ToLower(s.value))
			all.WriteString(strings.ToLower(s.args))
			for _, l := range s.items {
				all.WriteString(strings.ToLower(l.text))
			}
			all.WriteByte('\n')
		}
	}
	all.WriteString(strings.ToLower(ps.opt.Queue))
	refd := referencedNames(all.String())
	used := func(n string) bool { return refd[n] }
	lastQueue := 0
	for _, q := range queues {
		if q.s.file == ps.name {
			lastQueue = q.s.line
		}
	}
	afterQueue := false
	for _, group := range [][]stmt{stmts, appendStmts} {
		for _, s := range group {
			if s.kind != stmtAssign {
				continue
			}
			n := strings.ToLower(s.name)
			if strings.HasPrefix(n, "+") || strings.HasPrefix(n, "my.") {
				continue
			}
			switch {
			case n == "xen_transfer_files":
				p.warn(s.file, s.line, "xen_transfer_files is deprecated (gone from HTCondor since 7.6): use transfer_input_files")
			case ignoredCommands[n]:
				p.warn(s.file, s.line, "%s has no effect on vm universe jobs; ignored", s.name)
			case !knownCommand(n) && !used(n):
				if c := suggest(n); c != "" {
					p.warn(s.file, s.line, "%s is not a submit command (it only defines a macro); did you mean %s?", s.name, c)
				}
			}
			if s.file == ps.name && lastQueue > 0 && s.line > lastQueue && !afterQueue {
				afterQueue = true
				p.warn(s.file, s.line, "commands after the last queue statement have no effect")
			}
		}
	}
}

// expander returns an expander for one job.
func (ps *parser) expander(tbl *macroTable, proc int, live map[string]string) *expander {
	if ps.defaults == nil {
		ps.defaults = map[string]string{
			"arch":        ps.opt.arch(),
			"opsys":       strings.ToUpper(runtime.GOOS),
			"islinux":     boolExpr(runtime.GOOS == "linux"),
			"iswindows":   boolExpr(runtime.GOOS == "windows"),
			"submit_file": ps.submitFile(),
			"node":        "",
			"dollar":      "$",
		}
	}
	return &expander{
		macros:    tbl,
		live:      live,
		cluster:   ps.opt.ClusterID,
		proc:      proc,
		getenv:    ps.opt.Getenv,
		submitDir: ps.dir,
		defaults:  ps.defaults,
	}
}

func (ps *parser) submitFile() string {
	if ps.file == "" || ps.file == "-" {
		return ""
	}
	if filepath.IsAbs(ps.file) {
		return ps.file
	}
	return filepath.Join(ps.dir, filepath.Base(ps.file))
}

func (ps *parser) queueErr(q stmt, e *Error) {
	e.File, e.Line, e.Command = q.file, q.line, "queue"
	ps.p.add(e)
}

// queue expands one queue statement into jobs appended to jobs.
func (ps *parser) queue(q queued, jobs []*job) []*job {
	x := ps.expander(q.tbl, len(jobs), nil)
	args, err := x.expand(q.s.args)
	if x.usedCluster {
		ps.needCluster = true
	}
	if err != nil {
		code := "macro-undefined"
		if ee, ok := err.(*expandError); ok {
			code = ee.code
		}
		ps.queueErr(q.s, &Error{Code: code, Msg: err.Error()})
		return jobs
	}
	spec, e := parseQueue(args, q.s.items)
	if e != nil {
		ps.queueErr(q.s, e)
		return jobs
	}
	items, e := spec.loadItems(ps.dir, ps.opt.Paths)
	if e != nil {
		ps.queueErr(q.s, e)
		return jobs
	}
	n := int64(spec.count)
	if spec.mode != foreachNone {
		n *= int64(len(items))
	}
	if int64(len(jobs))+n > int64(ps.opt.MaxProcs) {
		ps.queueErr(q.s, &Error{Code: "queue-too-many",
			Msg: fmt.Sprintf("this queue statement would bring the cluster to %d jobs; at most %d are allowed", int64(len(jobs))+n, ps.opt.MaxProcs)})
		return jobs
	}
	if spec.mode == foreachNone {
		var shared *job
		for step := 0; step < spec.count; step++ {
			if ps.stop {
				return jobs
			}
			if shared == nil {
				j := ps.build(q, len(jobs), map[string]string{"step": fmt.Sprint(step), "itemindex": "0", "row": "0"})
				if !j.usedProc {
					shared = j
				}
				jobs = append(jobs, j)
				continue
			}
			jobs = append(jobs, shared)
		}
		return jobs
	}
	var sharedAll *job
	for ii, it := range items {
		var sharedItem *job
		for step := 0; step < spec.count; step++ {
			if ps.stop {
				return jobs
			}
			switch {
			case sharedAll != nil:
				jobs = append(jobs, sharedAll)
			case sharedItem != nil:
				jobs = append(jobs, sharedItem)
			default:
				live := map[string]string{
					"step":      fmt.Sprint(step),
					"itemindex": fmt.Sprint(it.index),
					"row":       fmt.Sprint(it.index),
				}
				for vi, v := range spec.vars {
					live[strings.ToLower(v)] = it.values[vi]
				}
				j := ps.build(q, len(jobs), live)
				if !j.usedProc {
					sharedItem = j
					if !j.usedItem && ii == 0 && step == 0 {
						sharedAll = j
					}
				}
				jobs = append(jobs, j)
			}
		}
	}
	return jobs
}

// build builds one job and records its problems.
func (ps *parser) build(q queued, proc int, live map[string]string) *job {
	x := ps.expander(q.tbl, proc, live)
	b := &builder{
		opt: ps.opt, fs: ps.fs, x: x, tbl: q.tbl, qfile: q.s.file, qline: q.s.line, submitDir: ps.dir,
		j: &job{}, idx: map[string]int{}, placeholder: map[string]bool{},
	}
	b.build()
	b.sortAttrs()
	j := b.j
	j.usedCluster, j.usedProc, j.usedItem = x.usedCluster, x.usedProc, x.usedItem
	if j.usedCluster {
		ps.needCluster = true
	}
	for _, e := range j.errs {
		// Checks of values built with a placeholder cluster id are
		// repeated once the id is known.
		if ps.opt.ClusterID == 0 && b.placeholder[strings.ToLower(e.Command)] && !strings.HasPrefix(e.Code, "macro-") {
			continue
		}
		ps.p.add(e)
		if e.Code == "macro-too-large" || e.Code == "macro-recursive" {
			ps.stop = true
		}
	}
	if len(ps.p.errs) >= maxErrors {
		ps.stop = true
	}
	j.errs = nil
	for _, w := range j.p.warnings {
		ps.p.warn("", 0, "%s", w)
	}
	j.p = problems{}
	return j
}

// assemble splits the jobs' attributes into the cluster's and the procs'.
func (ps *parser) assemble(jobs []*job) *Cluster {
	first := jobs[0]
	c := &Cluster{File: ps.file, Iwd: first.iwd, UserLog: first.userLog, Warnings: ps.p.warnings}
	var distinct []*job
	seen := map[*job]bool{}
	for _, j := range jobs {
		if !seen[j] {
			seen[j] = true
			distinct = append(distinct, j)
		}
	}
	// An attribute (an input) is common when every distinct job has it
	// with the first job's value.
	pos := make(map[string]int, len(first.attrs))
	for i, a := range first.attrs {
		pos[a.Name] = i
	}
	same := make([]int, len(first.attrs))
	inPos := make(map[string]int, len(first.inputs))
	for i, in := range first.inputs {
		inPos[in] = i
	}
	sameIn := make([]int, len(first.inputs))
	for _, j := range distinct[1:] {
		for _, a := range j.attrs {
			if i, ok := pos[a.Name]; ok && first.attrs[i].Expr == a.Expr {
				same[i]++
			}
		}
		for _, in := range j.inputs {
			if i, ok := inPos[in]; ok {
				sameIn[i]++
			}
		}
	}
	others := len(distinct) - 1
	common := map[string]bool{}
	for i, a := range first.attrs {
		if same[i] == others {
			common[a.Name] = true
			c.Attrs = append(c.Attrs, a)
		}
	}
	commonIn := map[string]bool{}
	for i, in := range first.inputs {
		if sameIn[i] == others {
			commonIn[in] = true
			c.Inputs = append(c.Inputs, in)
		}
	}
	diffs := make(map[*job]Proc, len(distinct))
	for _, j := range distinct {
		var d Proc
		for _, a := range j.attrs {
			if !common[a.Name] {
				d.Attrs = append(d.Attrs, a)
			}
		}
		for _, in := range j.inputs {
			if !commonIn[in] {
				d.Inputs = append(d.Inputs, in)
			}
		}
		d.Attrs = d.Attrs[:len(d.Attrs):len(d.Attrs)]
		d.Inputs = d.Inputs[:len(d.Inputs):len(d.Inputs)]
		if j.iwd != c.Iwd {
			d.Iwd = j.iwd
		}
		if j.userLog != c.UserLog {
			d.UserLog = j.userLog
		}
		diffs[j] = d
	}
	c.Procs = make([]Proc, len(jobs))
	for i, j := range jobs {
		c.Procs[i] = diffs[j]
	}
	return c
}

// referencedNames collects the names that follow an opening parenthesis:
// every $(name), $FUNC(name, ...) and $(name:default).
func referencedNames(text string) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < len(text); i++ {
		if text[i] != '(' {
			continue
		}
		j := i + 1
		for j < len(text) && (isIdent(text[j]) || text[j] == '.') {
			j++
		}
		if j > i+1 {
			out[text[i+1:j]] = true
		}
	}
	return out
}
