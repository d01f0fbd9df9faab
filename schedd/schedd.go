package schedd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// Config configures a Schedd.
type Config struct {
	Name   string      // schedd name (a daemon name); default "schedd"
	Dir    string      // where its event log and spool live
	Bus    *events.Bus // the pool's bus, opened by the caller
	Logger *slog.Logger
	Clock  func() time.Time
	// SuperUsers may act on every job (QUEUE_SUPER_USERS); root always may.
	SuperUsers []string
	// MaxJobs bounds the queue (MAX_JOBS_SUBMITTED; 0 = unlimited).
	MaxJobs int
	// RetryInterval is how often unfinished work (claims, deactivations,
	// fetches) is retried (default 2s).
	RetryInterval time.Duration
	// ClaimTimeout bounds one claim request to a startd (default 20s).
	ClaimTimeout time.Duration
	// ClaimedGrace is how long an accepted claim waits for its VM's start
	// before JobClaimed is recorded (default 30s; see settle.go).
	ClaimedGrace time.Duration
	// AdInterval is how often the schedd refreshes its collector ad.
	AdInterval time.Duration
	// PolicyInterval is how often periodic_hold, periodic_release and
	// periodic_remove are evaluated (PERIODIC_EXPR_INTERVAL, default 60s).
	PolicyInterval time.Duration
	// Address is what the user log shows as the submit host.
	Address string
	// Failpoints arms crash points for fault-injection tests (nil: none).
	Failpoints *events.Failpoints
	// SnapshotEvery (QUEUE_SNAPSHOT_EVENTS, default 10000; negative: never)
	// is how many log records may pass before the queue is snapshotted
	// again, and at least as many as it has jobs (snapshot.go); one is also
	// taken at a clean shutdown.
	SnapshotEvery int
	// MaxHistory (MAX_HISTORY_JOBS, default 20000; negative: no bound) is
	// how many jobs that left the queue the history keeps: every
	// PolicyInterval the oldest beyond it are forgotten (HistoryTrimmed).
	MaxHistory int
	// MinFreeBytes is the free disk the event log keeps (LOG_MIN_FREE_MB):
	// below it commands are refused rather than the log run out of space.
	MinFreeBytes int64
	// Metrics is where the schedd registers its Prometheus collectors
	// (see Metrics); nil: no metrics.
	Metrics prometheus.Registerer
}

// Schedd is the I/O shell around the queue: it serves the users' commands,
// consumes the negotiator's matches and the startds' reports, claims slots,
// fetches returned disks and writes user logs.
type Schedd struct {
	cfg    Config
	logger *slog.Logger
	log    *events.Log
	loop   *events.Loop
	outbox *events.Outbox
	q      *Queue

	work    *workQueue
	mu      sync.Mutex
	running map[workItem]bool
	alive   map[string]*aliveClaim // claim id -> its keepalives and lease
	scans   uint64                 // scanWork's passes so far

	// Accepted claims whose JobClaimed waits (settle.go); amu is taken
	// after the loop's lock, never before it.
	amu        sync.Mutex
	accepted   map[string]bool // claim ids in acceptQ
	acceptQ    []acceptance    // by due time
	acceptKick chan struct{}
	claimTexts claimTexts // printed cluster ads for claim requests
	logProbes  logProbes  // whether user logs can be written, as of late

	ready   chan struct{}
	metrics *Metrics
	// userLogDone is the log index up to which every user log event has
	// been written (writeUserLogs).
	userLogDone atomic.Uint64
	// snapIndex is the log index of the newest snapshot (snapshots
	// goroutine and shutdown only, one after the other).
	snapIndex uint64
	// toldNoList: the pool has no list of schedds, and the log says so
	// (Run, then the advertise goroutine only, one after the other).
	toldNoList bool
}

// New builds a schedd; Run starts it.
func New(cfg Config) (*Schedd, error) {
	if cfg.Name == "" {
		cfg.Name = "schedd"
	}
	if err := events.CheckName("schedd", cfg.Name); err != nil {
		return nil, err
	}
	if cfg.Dir == "" || cfg.Bus == nil {
		return nil, errors.New("schedd: Dir and Bus are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 2 * time.Second
	}
	if cfg.ClaimedGrace <= 0 {
		cfg.ClaimedGrace = defaultClaimedGrace
	}
	if cfg.ClaimTimeout <= 0 {
		cfg.ClaimTimeout = 20 * time.Second
	}
	if cfg.AdInterval <= 0 {
		cfg.AdInterval = 15 * time.Second
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 10000
	}
	if cfg.PolicyInterval <= 0 {
		cfg.PolicyInterval = 60 * time.Second
	}
	if cfg.MaxHistory == 0 {
		cfg.MaxHistory = DefaultMaxHistory
	}
	if cfg.Address == "" {
		host, _ := os.Hostname()
		cfg.Address = host
	}
	s := &Schedd{
		cfg:        cfg,
		logger:     cfg.Logger.With("daemon", "schedd", "schedd", cfg.Name),
		work:       newWorkQueue(),
		running:    map[workItem]bool{},
		accepted:   map[string]bool{},
		acceptKick: make(chan struct{}, 1),
		alive:      map[string]*aliveClaim{},
		ready:      make(chan struct{}),
	}
	var err error
	if s.metrics, err = newMetrics(cfg.Metrics, s); err != nil {
		return nil, fmt.Errorf("schedd %s metrics: %w", cfg.Name, err)
	}
	return s, nil
}

// Name is the schedd's name.
func (s *Schedd) Name() string { return s.cfg.Name }

// Ready is closed once the schedd serves requests.
func (s *Schedd) Ready() <-chan struct{} { return s.ready }

// LogDir is where the schedd's event log lives under dir.
func LogDir(dir string) string { return filepath.Join(dir, "log") }

// Replay rebuilds a schedd's queue from its log alone, through Apply.
func Replay(l *events.Log, name string, until uint64) (*Queue, error) {
	defer events.RaiseGC()()
	q := NewQueue(name)
	err := l.Scan(1, func(idx uint64, e events.Event) error {
		if until > 0 && idx > until {
			return events.ErrStop
		}
		Apply(q, e)
		return nil
	})
	return q, err
}

// Run opens the log, rebuilds the queue, and serves until ctx is done.
func (s *Schedd) Run(ctx context.Context) error {
	l, err := events.OpenLog(LogDir(s.cfg.Dir), s.cfg.Name, events.LogOptions{Logger: s.logger})
	if err != nil {
		return err
	}
	defer l.Close()
	s.log = l
	start := time.Now()
	var fromSnap bool
	var note string
	s.q, fromSnap, note, err = Restore(l, s.cfg.Name, SnapshotPath(s.cfg.Dir))
	if err != nil {
		return fmt.Errorf("rebuild queue of %s: %w", s.cfg.Name, err)
	}
	if note != "" {
		s.logger.Warn("snapshot not used; the queue was replayed from the whole log", "why", note)
	}
	s.logger.Info("queue rebuilt from log", "jobs", len(s.q.Jobs), "history", len(s.q.History), "events", l.LastIndex(),
		"from_snapshot", fromSnap, "took", time.Since(start).Round(time.Millisecond))
	s.snapIndex = l.LastIndex()
	if !fromSnap {
		s.snapIndex = 0
	}
	s.loop = events.NewLoop(events.LoopConfig{
		Log:        l,
		Apply:      func(e events.Event) { Apply(s.q, e) },
		After:      s.afterCommit,
		Clock:      s.cfg.Clock,
		Failpoints: s.cfg.Failpoints,
		MinFree:    s.cfg.MinFreeBytes,
	})
	s.outbox, err = events.NewOutbox(events.OutboxConfig{Log: l, JS: s.cfg.Bus.JS, Role: events.RoleSchedd, Logger: s.logger, Failpoints: s.cfg.Failpoints})
	if err != nil {
		return err
	}
	// A log behind the bus stops the schedd before it records anything.
	if err := s.outbox.CheckBus(ctx); err != nil {
		return err
	}
	s.metrics.attach()
	defer s.metrics.detach()
	srv := events.NewServer(s.cfg.Bus.NC, s.logger, 64)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.loop.Run(gctx) })
	// The outbox outlives the other goroutines so that it can flush. One
	// that stops on its own (the bus is ahead of the log) stops the
	// schedd: serving on would queue jobs nothing ever hears of.
	ob := s.outbox.Start()
	g.Go(func() error { return ob.Watch(gctx) })
	// Users' verbs end in the user's name (their identity on a pool with
	// credentials); the startds' keepalive does not.
	for verb, h := range map[string]events.UserHandler{
		"submit":  s.handleSubmit,
		"reserve": s.handleReserve,
		"act":     s.handleAct,
		"query":   s.handleQuery,
		"history": s.handleHistory,
	} {
		if err := srv.HandleUser(gctx, events.CmdSubject(events.RoleSchedd, s.cfg.Name, verb), h); err != nil {
			ob.Cancel()
			return err
		}
	}
	if err := srv.Handle(gctx, events.CmdSubject(events.RoleSchedd, s.cfg.Name, "alive"), s.handleAlive); err != nil {
		ob.Cancel()
		return err
	}
	if err := s.cfg.Bus.NC.Flush(); err != nil {
		ob.Cancel()
		return fmt.Errorf("subscribe: %w", err)
	}
	g.Go(func() error {
		return events.Consume(gctx, s.cfg.Bus.JS, events.ConsumerConfig{
			Durable: events.DaemonConsumer(events.RoleSchedd, s.cfg.Name),
			Filters: append([]events.SubjectFilter{events.JobsOfSchedd(events.RoleNegotiator, s.cfg.Name)},
				events.JobEventsOfSchedd(events.RoleStartd, s.cfg.Name, startdTypes...)...),
			Logger:     s.logger,
			Handle:     s.handleForeign,
			Failpoints: s.cfg.Failpoints,
			// Every placement sends the schedd two events (the match and
			// the VM's start). Taking 256 at a time, its consumer fell
			// tens of thousands of events behind in the full-size match
			// benchmark while its handler was busy a fifth of the time;
			// and a consumer blocks behind the stream's tail makes the
			// server walk the stream's whole subject index for its
			// filters at every block. 1,024 at a time (2,048 pulled)
			// keeps it at the tail.
			MaxBatch: 1024,
		})
	})
	g.Go(func() error { return s.reconcile(gctx) })
	g.Go(func() error { return s.settleClaims(gctx) })
	g.Go(func() error { return s.writeUserLogs(gctx) })
	// Ready means findable: a tool run right after the schedd starts asks
	// the collector for its ad (it used to find none now and then).
	actx, acancel := context.WithTimeout(gctx, 5*time.Second)
	s.register(actx)
	s.putAd(actx)
	acancel()
	g.Go(func() error { return s.advertise(gctx) })
	g.Go(func() error { return s.policy(gctx) })
	g.Go(func() error { return s.snapshots(gctx) })
	close(s.ready)
	s.logger.Info("schedd serving", "subject", events.CmdSubject(events.RoleSchedd, s.cfg.Name, "*"))
	err = g.Wait()
	srv.Close()
	if err == nil && s.cfg.SnapshotEvery >= 0 {
		// Every record is applied now that the loop is done.
		if serr := s.snapshot(); serr != nil {
			s.logger.Warn("snapshot at shutdown", "err", serr)
		}
	}
	if oerr := ob.Stop(); err == nil {
		err = oerr
	}
	return err
}

// snapshot writes the queue's snapshot, as of the log's last index.
func (s *Schedd) snapshot() error {
	var data []byte
	var idx uint64
	var err error
	start := time.Now()
	s.View(func(q *Queue) {
		idx = s.log.LastIndex()
		data, err = MarshalSnapshot(q, idx)
	})
	if err != nil {
		return err
	}
	if err := writeSnapshot(SnapshotPath(s.cfg.Dir), data); err != nil {
		return err
	}
	s.snapIndex = idx
	s.logger.Debug("queue snapshot written", "index", idx, "bytes", len(data), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// snapshots writes a snapshot whenever SnapshotEvery records, and at
// least as many as the queue has jobs, have passed since the last one. A
// snapshot costs in proportion to the queue (and holds it read-locked
// while it is encoded): with 100,000 jobs placed at once, one every 10,000
// records was a snapshot of the whole queue every few seconds. A restart
// replays at most one record per queued job after the snapshot, a fraction
// of reading the snapshot itself.
func (s *Schedd) snapshots(ctx context.Context) error {
	if s.cfg.SnapshotEvery < 0 {
		return nil
	}
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var queued int
		s.View(func(q *Queue) { queued = len(q.Jobs) })
		if !snapshotDue(s.log.LastIndex()-s.snapIndex, s.cfg.SnapshotEvery, queued) {
			continue
		}
		if err := s.snapshot(); err != nil {
			s.logger.Warn("snapshot", "err", err)
		}
	}
}

// snapshotDue reports whether a snapshot is due after records records
// since the last, every SnapshotEvery, with queued jobs in the queue.
func snapshotDue(records uint64, every, queued int) bool {
	return every >= 0 && records >= uint64(max(every, queued))
}

// View runs fn with the queue read-locked (durable state only).
func (s *Schedd) View(fn func(q *Queue)) { s.loop.View(func() { fn(s.q) }) }

// afterCommit schedules the side effects of newly durable events.
func (s *Schedd) afterCommit(evs []events.Event) {
	s.metrics.committed(s.q, evs)
	for _, e := range evs {
		if e.Source != s.cfg.Name {
			continue
		}
		switch e.Type {
		case events.JobMatched:
			s.schedule(workItem{kind: workClaim, job: e.Job()})
		case events.JobHeld, events.JobRemoved, events.JobVacating:
			s.schedule(workItem{kind: workDeactivate, job: e.Job()})
		case events.JobExited:
			s.schedule(workItem{kind: workFetch, job: e.Job()})
		}
	}
}

// startdTypes are the startd events the schedd is sent: those
// DecideForeign turns into its own. Not ClaimAccepted: the startd's answer
// to the claim request says the same, and when it is lost the claim is
// sent again (the startd answers a claim it holds as accepted), while the
// VM's start (VMStarted) moves the job on meanwhile; at one event of five
// per placement, not receiving it spared the schedd and the server a
// delivery each.
var startdTypes = []string{events.VMStarted, events.VMCheckpointed, events.VMEvicted, events.VMExited, events.VMFailed, events.VMStopped}

// handleForeign applies a batch of other daemons' events about our jobs.
func (s *Schedd) handleForeign(ctx context.Context, evs []events.Event) error {
	var strays []events.Event
	_, err := s.loop.Do(ctx, func(tx *events.Tx) error {
		for _, e := range evs {
			if e.Schedd != s.cfg.Name || !s.log.Consume(e.Source, e.Seq) {
				continue
			}
			derived := DecideForeign(s.q, e)
			if len(derived) == 0 && e.Type == events.VMStarted {
				strays = append(strays, e)
			}
			tx.Emit(derived...)
		}
		return nil
	})
	// A VM runs for a claim this schedd does not hold (a stale match): ask
	// its startd to stop it, so a job never runs twice.
	for _, e := range strays {
		var p events.VMEventPayload
		if e.Decode(&p) == nil {
			go s.killStray(ctx, e.Source, p.ClaimID)
		}
	}
	return err
}

func (s *Schedd) killStray(ctx context.Context, startd, claimID string) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ClaimTimeout)
	defer cancel()
	var r events.DeactivateReply
	err := events.Call(ctx, s.cfg.Bus.NC, events.CmdSubject(events.RoleStartd, startd, "deactivate"),
		events.DeactivateRequest{ClaimID: claimID, Mode: events.ModeKill, Reason: "claim unknown to schedd " + s.cfg.Name}, &r)
	if err != nil {
		s.logger.Warn("stop stray VM", "startd", startd, "claim", claimID, "err", err)
	}
}

// handleAlive takes a startd's keepalive: it renews the leases of the
// claims the schedd still holds on that startd and names those it does
// not, whose VMs the startd must stop.
func (s *Schedd) handleAlive(ctx context.Context, data []byte) (any, error) {
	var req events.AliveRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("alive: %w: %w", err, ErrBadRequest)
	}
	var reply events.AliveReply
	var known []string
	s.View(func(q *Queue) {
		for _, id := range req.Claims {
			jid, ok := q.Claims[id]
			j := q.Jobs[jid]
			if !ok || j == nil || j.Claim == nil || j.Claim.Startd != req.Startd {
				reply.Unknown = append(reply.Unknown, id)
				continue
			}
			known = append(known, id)
		}
	})
	now := s.cfg.Clock()
	s.mu.Lock()
	for _, id := range known {
		if a := s.alive[id]; a != nil {
			a.last = now
		} else {
			s.alive[id] = &aliveClaim{last: now}
		}
	}
	s.mu.Unlock()
	return reply, nil
}

// SubmitRequest is the body of the submit verb.
type SubmitRequest = events.SubmitRequest

// SubmitReply answers it.
type SubmitReply struct {
	Cluster int `json:"cluster"`
	Procs   int `json:"procs"`
}

func (s *Schedd) handleSubmit(ctx context.Context, user string, data []byte) (any, error) {
	start := time.Now()
	var req SubmitRequest
	if err := events.DecodeJSON(data, &req); err != nil {
		return nil, fmt.Errorf("submit: %w: %w", err, ErrBadRequest)
	}
	if req.Payload.Owner != user {
		return nil, fmt.Errorf("you are %s: you may queue only jobs of your own, not of %q: %w", user, req.Payload.Owner, ErrPermissionDenied)
	}
	// Checked and encoded here, in parallel with other submits; the loop
	// only decides it against the queue.
	ps, err := PrepareSubmit(SubmitCmd{Payload: req.Payload, Cluster: req.Cluster, MaxJobs: s.cfg.MaxJobs})
	if err != nil {
		return nil, err
	}
	var cluster int
	_, err = s.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
		var evs []events.Event
		var err error
		cluster, evs, err = DecidePreparedSubmit(s.q, ps)
		return evs, err
	})
	if err != nil {
		return nil, err
	}
	s.metrics.submitted(time.Since(start))
	s.logger.Info("cluster submitted", "cluster", cluster, "procs", req.Payload.NumProcs, "owner", req.Payload.Owner)
	return SubmitReply{Cluster: cluster, Procs: req.Payload.NumProcs}, nil
}

// ReserveRequest is the body of the reserve verb.
type ReserveRequest struct {
	SubmitID string `json:"submit_id"`
}

func (s *Schedd) handleReserve(ctx context.Context, user string, data []byte) (any, error) {
	var req ReserveRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("reserve: %w: %w", err, ErrBadRequest)
	}
	var cluster int
	_, err := s.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
		var evs []events.Event
		var err error
		cluster, evs, err = DecideReserve(s.q, req.SubmitID)
		return evs, err
	})
	if err != nil {
		return nil, err
	}
	return SubmitReply{Cluster: cluster}, nil
}

// ActReply answers the act verb.
type ActReply struct {
	Results []ActionResult `json:"results"`
}

func (s *Schedd) handleAct(ctx context.Context, user string, data []byte) (any, error) {
	var cmd ActionCmd
	if err := json.Unmarshal(data, &cmd); err != nil {
		return nil, fmt.Errorf("act: %w: %w", err, ErrBadRequest)
	}
	cmd.By = user // who asks is who the subject says, not what the body claims
	cmd.Super = cmd.By == "root" || slices.Contains(s.cfg.SuperUsers, cmd.By)
	var results []ActionResult
	_, err := s.loop.DoEvents(ctx, func(now time.Time) ([]events.Event, error) {
		cmd.Now = now
		evs, res, err := DecideAction(s.q, cmd)
		results = res
		return evs, err
	})
	if err != nil {
		return nil, err
	}
	return ActReply{Results: results}, nil
}

// QueryRequest is the body of the query and history verbs.
type QueryRequest struct {
	Constraint string   `json:"constraint,omitempty"`
	Owner      string   `json:"owner,omitempty"` // only this user's jobs
	Jobs       []string `json:"jobs,omitempty"`  // "C" or "C.P"
	Attrs      []string `json:"attrs,omitempty"` // projection (nil: whole ads)
	Totals     bool     `json:"totals,omitempty"`
	Limit      int      `json:"limit,omitempty"` // history: most recent N
	// Snapshot asks for the selected jobs of the queue (and, when Jobs
	// names some, of the history) as a queue snapshot (MarshalSnapshot)
	// whose index is the schedd's last own event: a watcher restores it
	// and applies the schedd's events after it, however old the jobs.
	Snapshot bool `json:"snapshot,omitempty"`
}

// Totals counts jobs by status, for condor_q's footer.
type Totals struct {
	Jobs      int `json:"jobs"`
	Idle      int `json:"idle"`
	Running   int `json:"running"`
	Removed   int `json:"removed"`
	Completed int `json:"completed"`
	Held      int `json:"held"`
	Suspended int `json:"suspended"`
}

// Add counts one job.
func (t *Totals) Add(status int) {
	t.Jobs++
	switch status {
	case Idle:
		t.Idle++
	case Running:
		t.Running++
	case Removed:
		t.Removed++
	case Completed:
		t.Completed++
	case Held:
		t.Held++
	case 7:
		t.Suspended++
	}
}

// QueryChunk is one chunk of a query reply: job ads in JSON form, and on
// the last chunk the totals.
type QueryChunk struct {
	Ads    []json.RawMessage `json:"ads,omitempty"`
	Totals *Totals           `json:"totals,omitempty"`
	Schedd string            `json:"schedd,omitempty"`
	// LogSeq is the schedd's last own event sequence the answer reflects:
	// a watcher that applies the schedd's events after it sees exactly
	// what follows the answer.
	LogSeq uint64 `json:"log_seq,omitempty"`
	// Snapshot is a piece of the answer to a QueryRequest.Snapshot; the
	// pieces concatenated in order are the snapshot.
	Snapshot []byte `json:"snapshot,omitempty"`
}

// snapshotChunk is how much of a snapshot one reply message carries.
const snapshotChunk = 256 << 10

const queryChunkSize = 500

func (s *Schedd) handleQuery(ctx context.Context, _ string, data []byte) (any, error) {
	return s.query(data, false)
}

func (s *Schedd) handleHistory(ctx context.Context, _ string, data []byte) (any, error) {
	return s.query(data, true)
}

func (s *Schedd) query(data []byte, history bool) (any, error) {
	var req QueryRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("query: %w: %w", err, ErrBadRequest)
	}
	var constraint *classad.Expr
	if req.Constraint != "" {
		var err error
		if constraint, err = classad.ParseExpr(req.Constraint); err != nil {
			return nil, fmt.Errorf("constraint: %w: %w", err, ErrBadRequest)
		}
	}
	sel, err := parseJobArgs(req.Jobs)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock()
	opts := &classad.EvalOptions{Now: func() time.Time { return now }}
	if req.Snapshot && !history {
		return s.querySnapshot(req, sel, constraint, opts), nil
	}
	return events.Chunks(func(emit func(any) error) error {
		// The ads are written under the read lock while the chunks already
		// written go out: the client decodes one chunk while the next is
		// built.
		pipe := &chunkPipe{Pipe: events.NewPipe[json.RawMessage]()}
		go func() {
			pipe.Close(s.queryAds(req, sel, constraint, opts, history, pipe))
		}()
		defer pipe.stop()
		for {
			b, ok, err := pipe.Next(context.Background())
			if !ok {
				return err
			}
			if err := emit(b); err != nil {
				return err
			}
		}
	}), nil
}

// queryAds writes the answer to a query (or history) request into pipe,
// chunk by chunk, the totals in the last.
func (s *Schedd) queryAds(req QueryRequest, sel jobSel, constraint *classad.Expr, opts *classad.EvalOptions, history bool, pipe *chunkPipe) error {
	var tot Totals
	var seq uint64
	var cur QueryChunk
	var err error
	s.View(func(q *Queue) {
		seq = s.log.LastSeq()
		var jobs []*Job
		if history {
			for i := len(q.History) - 1; i >= 0; i-- {
				jobs = append(jobs, q.History[i])
			}
		} else if req.Totals {
			// Counting needs no order: skip sorting the whole queue.
			jobs = make([]*Job, 0, len(q.Jobs))
			for _, j := range q.Jobs {
				jobs = append(jobs, j)
			}
		} else {
			jobs = q.Sorted()
		}
		cache := JSONCache{}
		var buf []byte // one allocation holds a chunk's ads
		for _, j := range jobs {
			if pipe.stopped() {
				return
			}
			if req.Owner != "" && j.Owner() != req.Owner || !sel.match(j.ID) {
				continue
			}
			var ad *classad.Ad
			if constraint != nil || len(req.Attrs) > 0 && !req.Totals {
				ad = j.Ad(q.Name)
			}
			if constraint != nil && !constraint.EvalWith(ad, nil, opts).IsTrue() {
				continue
			}
			tot.Add(j.Status)
			if req.Totals {
				continue
			}
			if history && req.Limit > 0 && tot.Jobs > req.Limit {
				tot.Jobs--
				break
			}
			if len(req.Attrs) > 0 {
				out := classad.NewAd()
				for _, name := range req.Attrs {
					if e, ok := ad.Lookup(name); ok {
						out.Set(name, e)
					}
				}
				b, _ := out.MarshalJSON()
				cur.Ads = append(cur.Ads, b)
			} else {
				// The bytes of j.Ad(...).MarshalJSON(), which are
				// json.Marshal's, without building the ad.
				n := len(buf)
				buf = j.AppendJSON(buf, q.Name, cache)
				cur.Ads = append(cur.Ads, buf[n:len(buf):len(buf)])
			}
			if len(cur.Ads) >= queryChunkSize {
				var b json.RawMessage
				if b, err = cur.encode(); err != nil {
					return
				}
				pipe.Put(b)
				// encode copied the ads: their buffer is free again.
				cur, buf = QueryChunk{}, buf[:0]
			}
		}
	})
	if err != nil {
		return err
	}
	cur.Totals, cur.Schedd, cur.LogSeq = &tot, s.cfg.Name, seq
	b, err := cur.encode()
	if err != nil {
		return err
	}
	pipe.Put(b)
	return nil
}

// chunkPipe hands encoded reply chunks from the goroutine that writes them
// (holding the queue's read lock, so it must never block) to the one that
// sends them; stop tells the writer that nobody sends any more.
type chunkPipe struct {
	*events.Pipe[json.RawMessage]
	halt atomic.Bool
}

func (p *chunkPipe) stop() { p.halt.Store(true) }

func (p *chunkPipe) stopped() bool { return p.halt.Load() }

// encode is json.Marshal(c) without scanning the ads, which are JSON
// already, once more: at 100,000 jobs that pass is a good part of a
// query's cost.
func (c QueryChunk) encode() (json.RawMessage, error) {
	ads := c.Ads
	c.Ads = nil
	rest, err := json.Marshal(c)
	if err != nil || len(ads) == 0 {
		return rest, err
	}
	n := len(rest) + 8
	for _, a := range ads {
		n += len(a) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"ads":[`...)
	for i, a := range ads {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, a...)
	}
	b = append(b, ']')
	if len(rest) > 2 { // more than {}
		b = append(append(b, ','), rest[1:]...)
	} else {
		b = append(b, '}')
	}
	return b, nil
}

// DecodeQueryChunk is json.Unmarshal of a QueryChunk, with a fast path for
// the layout encode writes: each ad is checked once and not copied.
func DecodeQueryChunk(b []byte) (QueryChunk, error) {
	var c QueryChunk
	const head = `{"ads":[`
	if !bytes.HasPrefix(b, []byte(head)) {
		err := json.Unmarshal(b, &c)
		return c, err
	}
	i := len(head)
	for i < len(b) && b[i] > ' ' { // white space before an ad: not encode's layout
		end, ok := events.JSONValueEnd(b, i)
		if !ok || end >= len(b) {
			break
		}
		c.Ads = append(c.Ads, b[i:end])
		switch b[end] {
		case ',':
			i = end + 1
			continue
		case ']':
			if end+1 < len(b) && b[end+1] == '}' && end+2 == len(b) {
				return c, nil
			}
			if end+2 < len(b) && b[end+1] == ',' && b[end+2] == '"' {
				// The other members: small, and left to encoding/json.
				var rest QueryChunk
				if err := json.Unmarshal(append([]byte{'{'}, b[end+2:]...), &rest); err != nil {
					return QueryChunk{}, err
				}
				if rest.Ads == nil {
					rest.Ads = c.Ads
				}
				return rest, nil
			}
		}
		break
	}
	// Not the layout encode writes: encoding/json decides.
	c = QueryChunk{}
	err := json.Unmarshal(b, &c)
	return c, err
}

// querySnapshot answers a QueryRequest.Snapshot: a queue holding the
// selected jobs, their clusters and nothing else of the schedd's (no
// other user's jobs, submit ids, claims or user log paths).
func (s *Schedd) querySnapshot(req QueryRequest, sel jobSel, constraint *classad.Expr, opts *classad.EvalOptions) any {
	return events.Chunks(func(emit func(any) error) error {
		var data []byte
		var seq uint64
		var err error
		s.View(func(q *Queue) {
			seq = s.log.LastSeq()
			fq := NewQueue(q.Name)
			fq.LastCluster = q.LastCluster
			keep := func(j *Job) bool {
				return (req.Owner == "" || j.Owner() == req.Owner) && sel.match(j.ID) &&
					(constraint == nil || constraint.EvalWith(j.Ad(q.Name), nil, opts).IsTrue())
			}
			for _, j := range q.Jobs {
				if keep(j) {
					fq.Jobs[j.ID] = j
					if c := q.Clusters[j.Cluster.ID]; c == j.Cluster {
						fq.Clusters[c.ID] = c
					}
				}
			}
			if len(req.Jobs) > 0 {
				for _, j := range q.History {
					if keep(j) {
						fq.History = append(fq.History, j)
					}
				}
			}
			data, err = MarshalSnapshot(fq, seq)
		})
		if err != nil {
			return err
		}
		for len(data) > snapshotChunk {
			if err := emit(QueryChunk{Snapshot: data[:snapshotChunk]}); err != nil {
				return err
			}
			data = data[snapshotChunk:]
		}
		return emit(QueryChunk{Snapshot: data, Schedd: s.cfg.Name, LogSeq: seq})
	})
}

type jobSel struct {
	clusters map[int]bool
	jobs     map[events.JobID]bool
}

func (s jobSel) match(id events.JobID) bool {
	if s.clusters == nil && s.jobs == nil {
		return true
	}
	return s.clusters[id.Cluster] || s.jobs[id]
}

func parseJobArgs(args []string) (jobSel, error) {
	var sel jobSel
	for _, a := range args {
		if id, ok := events.ParseJobID(a); ok {
			if sel.jobs == nil {
				sel.jobs = map[events.JobID]bool{}
			}
			sel.jobs[id] = true
			continue
		}
		var c int
		if _, err := fmt.Sscanf(a, "%d", &c); err != nil || c <= 0 || fmt.Sprint(c) != a {
			return sel, fmt.Errorf("job %q: want CLUSTER or CLUSTER.PROC: %w", a, ErrBadRequest)
		}
		if sel.clusters == nil {
			sel.clusters = map[int]bool{}
		}
		sel.clusters[c] = true
	}
	return sel, nil
}

// DefaultMaxHistory is MAX_HISTORY_JOBS's default.
const DefaultMaxHistory = 20000

// policy evaluates the jobs' periodic expressions every PolicyInterval,
// and keeps the history within MaxHistory.
func (s *Schedd) policy(ctx context.Context) error {
	t := time.NewTicker(s.cfg.PolicyInterval)
	defer t.Stop()
	// The history's length and the log's last index at the previous
	// tick: once the user logs are written up to that index, the jobs
	// that had left the queue by then may be forgotten.
	var hist int
	var last uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		evs, err := s.loop.DoEvents(ctx, func(now time.Time) ([]events.Event, error) {
			written := 0
			if s.userLogDone.Load() >= last {
				written = hist
			}
			return append(DecidePolicy(s.q, now), DecideHistoryTrim(s.q, s.cfg.MaxHistory, written)...), nil
		})
		// The state read is durable, and at most the log's last index
		// read after it.
		s.View(func(q *Queue) { hist = len(q.History) })
		last = s.log.LastIndex()
		if errors.Is(err, events.ErrDiskFull) {
			s.logger.Warn("periodic expressions not evaluated", "err", err) // next interval tries again
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, e := range evs {
			if e.Type == events.HistoryTrimmed {
				// Routine in a busy pool (each interval), so at debug level.
				var p events.HistoryTrimmedPayload
				_ = e.Decode(&p) // our own event
				s.logger.Debug("oldest jobs of the history forgotten (MAX_HISTORY_JOBS)", "jobs", p.Jobs, "history", hist)
				continue
			}
			s.logger.Info("job policy", "job", e.Job().String(), "action", e.Type)
		}
	}
}

// advertise keeps the schedd's ad in the collector so tools can find it
// (Run put it first), and the schedd in the pool's list of schedds (a
// bus that lost its store has lost the list too).
func (s *Schedd) advertise(ctx context.Context) error {
	t := time.NewTicker(s.cfg.AdInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.register(ctx)
			s.putAd(ctx)
		}
	}
}

// register lists the schedd in the pool's list of schedds, which lasts
// after its ad has left the collector: a tool given no schedd name then
// knows that the pool has had more than one, and asks which. Listed
// already, it costs a refused put and a get. A pool without the list (a
// bus vmpool does not run, set up by an older vmpool) is told of once;
// the schedd runs on.
func (s *Schedd) register(ctx context.Context) {
	err := s.cfg.Bus.RegisterSchedd(ctx, s.cfg.Name)
	switch {
	case err == nil:
	case errors.Is(err, events.ErrNoScheddList):
		if s.toldNoList {
			return
		}
		s.toldNoList = true
		s.logger.Warn("the pool keeps no list of its schedds: tools without -name may take another schedd for this one once its ad expires; run 'vmpool nats --init' on the pool (or restart its vmpool nats) to create it", "err", err)
	case ctx.Err() == nil:
		s.logger.Warn("list this schedd among the pool's schedds; will retry", "err", err)
	}
}

// putAd puts the schedd's ad in the collector.
func (s *Schedd) putAd(ctx context.Context) {
	ad := classad.NewAd()
	ad.SetString("MyType", "Scheduler")
	ad.SetString("Name", s.cfg.Name)
	ad.SetString("MyAddress", s.cfg.Address)
	var tot Totals
	s.View(func(q *Queue) {
		for _, j := range q.Jobs {
			tot.Add(j.Status)
		}
	})
	ad.SetInt("TotalIdleJobs", int64(tot.Idle))
	ad.SetInt("TotalRunningJobs", int64(tot.Running))
	ad.SetInt("TotalHeldJobs", int64(tot.Held))
	b, err := json.Marshal(ad)
	if err != nil {
		return
	}
	if _, err := s.cfg.Bus.PutAd(ctx, events.ScheddKey(s.cfg.Name), b); err != nil && !errors.Is(ctx.Err(), context.Canceled) {
		s.logger.Warn("advertise schedd; will retry", "err", err)
	}
}
