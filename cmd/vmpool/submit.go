package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/schedd"
	"github.com/vmpool/vmpool/schedd/submit"
)

// scheddOwned are attributes the schedd sets itself; a submit's values for
// them are dropped (the job's status comes from `hold`).
var scheddOwned = map[string]bool{
	"clusterid": true, "procid": true, "qdate": true, "jobstatus": true, "enteredcurrentstatus": true,
	"holdreason": true, "holdreasoncode": true, "holdreasonsubcode": true, "globaljobid": true,
}

func (c *cli) submit(ctx context.Context, args []string) int {
	const cmd = "submit"
	var file, pool, name, dryRun, queueArgs string
	var appends []string
	verbose := false
	a := &argList{args: args, cmd: cmd}
	for {
		arg, ok := a.next()
		if !ok {
			break
		}
		o, val, has, isOpt := opt(arg)
		if !isOpt {
			if file != "" {
				return c.usageErr(cmd, "more than one submit file (%s and %s)", file, arg)
			}
			file = arg
			continue
		}
		switch o {
		case "pool":
			pool = a.value(o, val, has)
		case "name", "remote":
			name = a.value(o, val, has)
		case "append", "a":
			appends = append(appends, a.value(o, val, has))
		case "dry-run", "dry":
			dryRun = a.value(o, val, has)
		case "verbose", "v":
			verbose = true
		case "queue":
			queueArgs = a.value(o, val, has) // for a file without a queue statement
		case "batch-name", "batch_name":
			appends = append(appends, "batch_name = "+a.value(o, val, has))
		case "h", "help":
			fmt.Fprintln(c.stdout, "usage: vmpool submit [-pool URL] [-name SCHEDD] [-a|-append LINE]... [-batch-name NAME] [-queue ARGS] [-dry-run FILE] [-verbose] [FILE]   (no FILE: the description is read from standard input)")
			return 0
		default:
			return c.usageErr(cmd, "unknown option %s", arg)
		}
		if a.err != nil {
			return c.usageErr(cmd, "%v", a.err)
		}
	}
	if file == "" {
		// As condor_submit: no file reads the description from standard
		// input, unless that is a terminal.
		if f, ok := c.stdin.(*os.File); !ok || isCharDevice(f) {
			return c.usageErr(cmd, "no submit file given: vmpool submit FILE")
		}
		file = "-"
	}
	var stdinData []byte // a description from standard input, read once
	if file == "-" {
		b, err := io.ReadAll(c.stdin)
		if err != nil {
			return c.errorf(cmd, "read the submit description from standard input: %v", err)
		}
		stdinData = b
	}
	host, _ := os.Hostname()
	owner, err := c.identity(c.poolURL(pool))
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	paths, err := submitPaths(c.getenv("VMPOOL_SUBMIT_PATHS"))
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	opts := submit.Options{
		Paths:      paths,
		Owner:      owner,
		SubmitHost: host,
		Append:     appends,
		Queue:      queueArgs,
		CheckExpr: func(src string) error {
			_, err := classad.ParseExpr(src)
			return err
		},
	}
	// queued: the schedd took the cluster, or may have (no answer).
	queued := false
	if dryRun == "" {
		// As condor_submit: a log the schedd could not write would leave
		// the job without one (and condor_wait with nothing to read).
		var created []string
		opts.CheckLog = func(path string) error {
			made, err := openUserLog(path)
			if made {
				created = append(created, path)
			}
			return err
		}
		// A submit that queued nothing leaves no log it made behind.
		defer func() {
			if !queued {
				removeEmptyFiles(created)
			}
		}()
	}
	parse := func() (*submit.Cluster, error) {
		if file == "-" {
			return submit.Parse("-", bytes.NewReader(stdinData), opts)
		}
		return submit.ParseFile(file, opts)
	}
	cl, err := parse()
	needID := errors.Is(err, submit.ErrNeedClusterID)
	if err != nil && !needID {
		return c.submitFailed(err)
	}
	if dryRun != "" {
		if needID {
			opts.ClusterID = 1
			if cl, err = parse(); err != nil {
				return c.submitFailed(err)
			}
		}
		for _, w := range cl.Warnings {
			fmt.Fprintf(c.stderr, "WARNING: %s\n", w)
		}
		return c.dryRun(cl, dryRun, opts.Owner)
	}

	pc, err := c.dial(ctx, c.poolURL(pool))
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	defer pc.close()
	sched, err := c.schedd(ctx, pc, name)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	// A schedd named with -name (or $VMPOOL_SCHEDD) must be there before
	// the input files go up: a misspelt name cost the whole upload. (One
	// found in the collector, without a name given, is there.)
	if name != "" || c.getenv("VMPOOL_SCHEDD") != "" {
		if err := waitAdvertised(ctx, pc, sched); err != nil {
			return c.errorf(cmd, "%v; nothing was queued", err)
		}
	}
	submitID := newSubmitID()
	reserved := 0
	if needID {
		var r schedd.SubmitReply
		if err := callRetry(ctx, pc, events.UserCmdSubject(sched, "reserve", pc.user), schedd.ReserveRequest{SubmitID: submitID}, &r); err != nil {
			return c.errorf(cmd, "reserve a cluster id at schedd %s: %v", sched, err)
		}
		reserved = r.Cluster
		opts.ClusterID = reserved
		if cl, err = parse(); err != nil {
			return c.submitFailed(err)
		}
	}
	for _, w := range cl.Warnings {
		fmt.Fprintf(c.stderr, "WARNING: %s\n", w)
	}
	payload, err := c.buildPayload(ctx, pc, cl, submitID, opts.Owner, host, file)
	if err != nil {
		return c.errorf(cmd, "%v", err)
	}
	fmt.Fprint(c.stdout, "Submitting job(s)")
	var reply schedd.SubmitReply
	err = callRetry(ctx, pc, events.UserCmdSubject(sched, "submit", pc.user), schedd.SubmitRequest{Cluster: reserved, Payload: payload}, &reply)
	queued = err == nil || errors.Is(err, errUnanswered) || errors.Is(err, context.DeadlineExceeded)
	if err != nil {
		fmt.Fprintln(c.stdout)
		if queued {
			// It may have queued the cluster: a second submit would run
			// the jobs twice.
			return c.errorf(cmd, "schedd %s did not answer; it may have queued the cluster before it stopped: "+
				"once it is back, look with vmpool q (and vmpool history) before you submit again: %v", sched, err)
		}
		if errors.Is(err, events.ErrNoResponders) {
			return c.errorf(cmd, "schedd %s does not answer (is it running?); nothing was queued: %v", sched, err)
		}
		return c.errorf(cmd, "schedd %s refused the submit; nothing was queued: %v", sched, err)
	}
	fmt.Fprintln(c.stdout, strings.Repeat(".", min(payload.NumProcs, 1000)))
	if verbose { // the ads as queued: condor_submit -verbose
		for i := 0; i < payload.NumProcs; i++ {
			fmt.Fprintf(c.stdout, "** Proc %d.%d:\n%s\n", reply.Cluster, i, strings.TrimSuffix(procAd(cl, i, reply.Cluster, opts.Owner).LongString(), "\n"))
			fmt.Fprintln(c.stdout)
		}
	}
	fmt.Fprintf(c.stdout, "%d job(s) submitted to cluster %d.\n", reply.Procs, reply.Cluster)
	return 0
}

// submitFailed prints every problem of a rejected submit description.
func (c *cli) submitFailed(err error) int {
	var es submit.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			fmt.Fprintf(c.stderr, "ERROR: %s\n", e)
		}
		fmt.Fprintf(c.stderr, "ERROR: %d problem(s) in the submit description; nothing was queued.\n", len(es))
		return 1
	}
	var e *submit.Error
	if errors.As(err, &e) {
		fmt.Fprintf(c.stderr, "ERROR: %s\nERROR: nothing was queued.\n", e)
		return 1
	}
	fmt.Fprintf(c.stderr, "ERROR: %v\nERROR: nothing was queued.\n", err)
	return 1
}

// waitAdvertised waits briefly (a pool still starting) for schedd sched's
// ad in the collector, and says which schedds there are if it does not
// come.
func waitAdvertised(ctx context.Context, pc *client, sched string) error {
	var names []string
	for attempt := 0; ; attempt++ {
		var err error
		if names, err = pc.scheddNames(ctx); err != nil {
			return err
		}
		if slices.Contains(names, sched) {
			return nil
		}
		if attempt == 4 {
			break
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("no schedd named %s is advertised at %s, nor any other (is the pool's schedd running?)", sched, pc.url)
	}
	return fmt.Errorf("no schedd named %s is advertised at %s (the pool's schedds: %s)", sched, pc.url, strings.Join(names, ", "))
}

// callTimeout is how long one try of callRetry waits for an answer.
var callTimeout = 60 * time.Second

// callRetry sends a request, retrying briefly when no schedd answers yet
// (a pool that is still starting). Retries are safe: submits carry an id.
// A try that went unanswered reached a daemon that may have acted on it
// before it stopped: callRetry's error then wraps errUnanswered.
func callRetry(ctx context.Context, pc *client, subject string, req, resp any) (err error) {
	unanswered := false
	defer func() {
		if err != nil && unanswered && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w; %w", errUnanswered, err)
		}
	}()
	for attempt := 0; attempt < 5; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		err = pc.call(cctx, subject, req, resp)
		cancel()
		if err == nil || !(errors.Is(err, events.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded)) {
			return err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			unanswered = true
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
	return err
}

// errUnanswered: see callRetry.
var errUnanswered = errors.New("a try went unanswered (the daemon may have taken it and stopped before it answered)")

func newSubmitID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// buildPayload uploads the input files (content-addressed, once each) and
// assembles the submit payload.
func (c *cli) buildPayload(ctx context.Context, pc *client, cl *submit.Cluster, submitID, owner, host, file string) (events.ClusterSubmittedPayload, error) {
	p := events.ClusterSubmittedPayload{SubmitID: submitID, Owner: owner, SubmitHost: host, File: file,
		Iwd: cl.Iwd, UserLog: cl.UserLog, NumProcs: len(cl.Procs)}
	for _, at := range cl.Attrs {
		if at.Name == "JobStatus" && strings.TrimSpace(at.Expr) == "5" {
			p.Hold = true
		}
		if !scheddOwned[strings.ToLower(at.Name)] {
			p.Attrs = append(p.Attrs, events.Attr{Name: at.Name, Expr: at.Expr})
		}
	}
	uploaded := map[string]events.FileRef{}
	upload := func(paths []string) ([]events.FileRef, error) {
		var refs []events.FileRef
		names := map[string]string{}
		for _, path := range paths {
			base := filepath.Base(path)
			if other, dup := names[base]; dup && other != path {
				return nil, fmt.Errorf("two input files are both named %s (%s and %s): a job's files share one directory; rename one", base, other, path)
			}
			names[base] = path
			ref, ok := uploaded[path]
			if !ok {
				var err error
				ref, err = c.putInput(ctx, pc, owner, path, base)
				if err != nil {
					return nil, fmt.Errorf("send input file %s to the pool: %w", path, err)
				}
				uploaded[path] = ref
			}
			refs = append(refs, ref)
		}
		return refs, nil
	}
	var err error
	if p.Inputs, err = upload(cl.Inputs); err != nil {
		return p, err
	}
	differ := false
	specs := make([]events.ProcSpec, len(cl.Procs))
	for i, pr := range cl.Procs {
		if len(pr.Attrs) == 0 && len(pr.Inputs) == 0 && pr.Iwd == "" && pr.UserLog == "" {
			continue
		}
		differ = true
		for _, at := range pr.Attrs {
			if at.Name == "JobStatus" && strings.TrimSpace(at.Expr) == "5" {
				specs[i].Hold = true
			}
			if !scheddOwned[strings.ToLower(at.Name)] {
				specs[i].Attrs = append(specs[i].Attrs, events.Attr{Name: at.Name, Expr: at.Expr})
			}
		}
		if specs[i].Inputs, err = upload(pr.Inputs); err != nil {
			return p, err
		}
		specs[i].Iwd, specs[i].UserLog = pr.Iwd, pr.UserLog
	}
	if differ {
		p.Procs = specs
	}
	return p, nil
}

// procAd is the job ad of proc i as submit sees it (for -verbose and
// -dry-run): the cluster's attributes, the proc's, and the ids.
func procAd(cl *submit.Cluster, i, cluster int, owner string) *classad.Ad {
	ad := classad.NewAd()
	ad.SetInt("ClusterId", int64(cluster))
	ad.SetInt("ProcId", int64(i))
	for _, at := range cl.Attrs {
		if err := ad.SetExpr(at.Name, at.Expr); err != nil {
			ad.SetValue(at.Name, classad.Error())
		}
	}
	for _, at := range cl.Procs[i].Attrs {
		if err := ad.SetExpr(at.Name, at.Expr); err != nil {
			ad.SetValue(at.Name, classad.Error())
		}
	}
	if owner != "" {
		ad.SetString("Owner", owner)
	}
	return ad
}

// dryRun writes the job ads instead of queueing them (condor_submit
// -dry-run FILE; "-" is standard output), as cluster 1, an ad per job
// separated by blank lines; nothing is sent to the pool.
func (c *cli) dryRun(cl *submit.Cluster, dst, owner string) int {
	var b strings.Builder
	for i := range cl.Procs {
		b.WriteString(strings.TrimSuffix(procAd(cl, i, 1, owner).LongString(), "\n"))
		b.WriteString("\n\n")
	}
	fmt.Fprintln(c.stdout, "Dry-Run job(s).")
	if dst == "-" {
		fmt.Fprint(c.stdout, b.String())
	} else if err := os.WriteFile(dst, []byte(b.String()), 0o644); err != nil {
		return c.errorf("submit", "write dry run: %v", err)
	}
	fmt.Fprintf(c.stdout, "%d job(s) dry-run to cluster 1.\n", len(cl.Procs))
	return 0
}

// isCharDevice reports whether f is a terminal (or another character
// device), from which condor_submit does not read a description.
func isCharDevice(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// submitPaths reads SUBMIT_PATHS ($VMPOOL_SUBMIT_PATHS).
func submitPaths(v string) (submit.PathPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "default":
		return submit.PathsDefault, nil
	case "confined":
		return submit.PathsConfined, nil
	case "unrestricted":
		return submit.PathsUnrestricted, nil
	}
	return 0, fmt.Errorf("VMPOOL_SUBMIT_PATHS = %q: use default, confined or unrestricted", v)
}

// openUserLog opens (creating it if need be) a user log for appending, as
// condor_submit does, says why it cannot, and whether it made the file.
func openUserLog(path string) (made bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o644)
	made = err == nil
	if errors.Is(err, fs.ErrExist) {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return made, pe.Err
		}
		return made, err
	}
	return made, f.Close()
}

// removeEmptyFiles removes those of paths that are still empty.
func removeEmptyFiles(paths []string) {
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
			_ = os.Remove(p)
		}
	}
}
