package startd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/startd/hypervisor"
)

// Config configures a Startd. Field comments give the HTCondor knob each
// field stands for.
type Config struct {
	Name string // STARTD_NAME; a daemon name, e.g. "startd1"
	Dir  string // its event log and execute directory live here
	// Store, when set, holds the startd's event log in a shared Pebble
	// (for thousands of simulated startds) instead of Dir/log.
	Store *events.Store
	// Publisher, when set, publishes the startd's events together with
	// other startds' (events.Publisher; the simulated startds share one).
	Publisher *events.Publisher
	Bus       *events.Bus
	Driver    hypervisor.Driver
	Logger    *slog.Logger
	Clock     func() time.Time
	// VerifyInterval is how often the startd's outbox checks that the bus
	// still holds its events (0: events.OutboxConfig's default).
	VerifyInterval time.Duration

	VMType                string   // VM_TYPE: must be the driver's type
	VMMemory              int      // VM_MEMORY: MiB for all VMs together
	VMMaxNumber           int      // VM_MAX_NUMBER (0: one per slot)
	NumSlots              int      // NUM_SLOTS (default 1)
	Networking            bool     // VM_NETWORKING
	NetworkingTypes       []string // VM_NETWORKING_TYPE: "nat", "bridge"
	DefaultNetworkingType string   // VM_NETWORKING_DEFAULT_TYPE (default "nat")
	BridgeInterface       string   // VM_NETWORKING_BRIDGE_INTERFACE
	HardwareVT            bool     // VM_HARDWARE_VT
	Start                 string   // START (default "true")
	Rank                  string   // RANK (default "0")
	// Preempt (PREEMPT) is evaluated every UpdateInterval for each running
	// VM, with the slot as MY and the job as TARGET; true vacates the VM
	// (checkpointing it when the job asked for that). Default "false".
	Preempt string
	// Kill (KILL) is evaluated every UpdateInterval for each VM being
	// vacated (a checkpoint being saved and shipped, or a guest given
	// VacateGrace to power off); true kills it at once, and the job goes
	// back to the queue without a checkpoint. Default "false".
	Kill string
	// AliveInterval is how often the startd sends each schedd a keepalive
	// for the claims it runs for it (HTCondor's ALIVE_INTERVAL); a claim
	// the schedd no longer holds has its VM stopped, and one whose schedd
	// has not answered for the job's JobLeaseDuration too.
	AliveInterval time.Duration
	// UpdateInterval is how often the slot ads are refreshed in the
	// collector (UPDATE_INTERVAL); they also go out on every change.
	UpdateInterval time.Duration
	// VacateGrace is how long a vacated guest without a checkpoint gets to
	// power off after an ACPI request before it is killed.
	VacateGrace time.Duration
	// ShutdownGrace bounds the graceful vacate of every VM when the startd
	// stops.
	ShutdownGrace time.Duration
	Host          string // host name for the Machine attribute
	// Failpoints arms crash points for fault-injection tests (nil: none).
	Failpoints *events.Failpoints
	// MinFreeBytes is the free disk the event log keeps (LOG_MIN_FREE_MB).
	MinFreeBytes int64
	// NobodyUser (VM_UNIV_NOBODY_USER, default "nobody") is the account a
	// root startd runs VMs as when the job's owner has no account here (or
	// is root), and always when AlwaysUseNobody (ALWAYS_VM_UNIV_USE_NOBODY).
	NobodyUser      string
	AlwaysUseNobody bool
	// WholeDiskCheckpoints (VM_CHECKPOINT_OVERLAYS = false) makes the
	// checkpoints of kvm jobs carry whole copies of the writable disks
	// instead of qcow2 overlays of what the guest changed.
	WholeDiskCheckpoints bool
	// RecheckInterval (VM_RECHECK_INTERVAL, default 600s) is how long VMs
	// stay disabled after one failed to start for a reason of the
	// machine's, before the startd probes again.
	RecheckInterval time.Duration
	// Metrics is where the startd registers its Prometheus collectors
	// (see Metrics); nil: no metrics.
	Metrics prometheus.Registerer

	// START and RANK compiled once by New (MachineAd renders them into
	// every ad; expressions are immutable and shared); PREEMPT and KILL
	// too (DecidePolicy evaluates them against the slot's ad).
	startExpr, rankExpr, preemptExpr, killExpr *classad.Expr
}

// Policy is what a running startd's SetPolicy changes: START, RANK,
// PREEMPT and KILL (empty: their defaults, true, 0, false and false).
type Policy struct {
	Start, Rank, Preempt, Kill string
}

// policyDefaults gives the policy knobs left empty their defaults.
func (cfg *Config) policyDefaults() {
	for _, k := range []struct {
		v   *string
		def string
	}{
		{&cfg.Start, "true"}, {&cfg.Rank, "0"}, {&cfg.Preempt, "false"}, {&cfg.Kill, "false"},
	} {
		if strings.TrimSpace(*k.v) == "" {
			*k.v = k.def
		}
	}
}

// policyOn reports whether PREEMPT or KILL can ever be true.
func (cfg *Config) policyOn() bool { return cfg.Preempt != "false" || cfg.Kill != "false" }

// compilePolicy parses START, RANK, PREEMPT and KILL once; it returns
// what does not parse, knob by knob.
func (cfg *Config) compilePolicy() []string {
	var problems []string
	for _, k := range []struct {
		knob, src string
		to        **classad.Expr
	}{
		{"START", cfg.Start, &cfg.startExpr},
		{"RANK", cfg.Rank, &cfg.rankExpr},
		{"PREEMPT", cfg.Preempt, &cfg.preemptExpr},
		{"KILL", cfg.Kill, &cfg.killExpr},
	} {
		e, err := classad.ParseExpr(k.src)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", k.knob, err))
		}
		*k.to = e
	}
	return problems
}

// Startd is the I/O shell of one execute machine.
type Startd struct {
	cfg    Config
	logger *slog.Logger
	log    *events.Log
	loop   *events.Loop
	st     *State
	start  int64
	// stopping: the startd is shutting down and vacating its VMs (the
	// reason their evictions give).
	stopping atomic.Bool

	healthMu   sync.Mutex
	fp         hypervisor.Fingerprint // the last probe (health.go)
	offline    string                 // why VMs are disabled until the recheck
	recheckNow chan struct{}

	mu       sync.Mutex
	starters map[string]chan string // claim id -> stop requests
	// jobAds holds the job ad handleClaim parsed for a claim it accepted,
	// until the claim's starter takes it.
	jobAds  map[string]*classad.Ad
	wg      sync.WaitGroup
	runCtx  context.Context
	changed chan struct{}
	// claimed wakes the keepalive when a claim is accepted: its lease may
	// be shorter than the keepalive's wait (aliveEvery).
	claimed chan struct{}
	ready   chan struct{}
	metrics *Metrics

	// measured caches what facts reads from the machine (/proc and
	// statfs), for a second: every claim and every ad asks for it.
	measuredMu sync.Mutex
	measured   measurement
	// The advertise goroutine's own: each slot's ad as last put, rendered
	// with the volatile facts (load, disk, time) of the last full refresh
	// (adRef), so that an ad that did not change is not put again.
	adRef   Facts
	adsSent map[string][]byte
	putAd   *classad.Ad // the room each slot's ad is rendered in, in turn
	adJSON  []byte      // and the buffer it is printed in to compare
	// claimAd: the room a claim's decision renders the slot's ad in
	// (under the loop's lock).
	claimAd *classad.Ad
	// sharedAds: parsed cluster parts of claims' job ads.
	sharedAds sharedAds
	// sharedSent: the shared attributes (sharedAttrs) the other slots'
	// ads were last put with; forceShared asks the next put to bring
	// them up to date (a claim was refused).
	// slotShared: each slot's as its ad was last put.
	sharedSent  sharedAttrs
	slotShared  map[string]sharedAttrs
	forceShared atomic.Bool
	// forceFull asks the next put for every ad (SetPolicy changed them).
	forceFull atomic.Bool
	// policyOn: PREEMPT or KILL can be true (cfg's, which SetPolicy
	// changes under the loop's lock), read without the lock.
	policyOn atomic.Bool
	// execReady: the execute directory has been made traversable
	// (makeScratch).
	execReady atomic.Bool
	// adKeys: what each slot's ad was last put from, and keyFacts the
	// machine facts then, so that an unchanged slot is not rendered.
	adKeys   map[string]adKey
	keyFacts struct {
		set bool
		f   Facts
	}
	// startSeen: when each claim whose slot's ad waits for its VM to
	// start (adStartGrace) was first seen waiting; startRecheck: when a
	// change signal is due for them, zero if none is.
	startSeen    map[string]time.Time
	startRecheck time.Time
}

// measurement is what the machine measured at one time.
type measurement struct {
	at          time.Time
	totalMemory int
	loadAvg     float64
	diskKiB     int64
}

// New validates cfg and builds a startd; Run starts it.
func New(cfg Config) (*Startd, error) {
	var problems []string
	if err := events.CheckName("startd", cfg.Name); err != nil {
		problems = append(problems, err.Error())
	}
	if cfg.Dir == "" || cfg.Bus == nil || cfg.Driver == nil {
		problems = append(problems, "Dir, Bus and Driver are required")
	}
	if cfg.VMType == "" && cfg.Driver != nil {
		cfg.VMType = cfg.Driver.Type()
	}
	if cfg.Driver != nil && cfg.VMType != cfg.Driver.Type() {
		problems = append(problems, fmt.Sprintf("VM_TYPE = %s but the driver runs %s", cfg.VMType, cfg.Driver.Type()))
	}
	if cfg.VMMemory <= 0 {
		problems = append(problems, fmt.Sprintf("VM_MEMORY = %d: set it to the MiB all VMs of this machine may use, e.g. VM_MEMORY = 1024", cfg.VMMemory))
	}
	if cfg.NumSlots <= 0 {
		cfg.NumSlots = 1
	}
	if cfg.VMMaxNumber == 0 {
		cfg.VMMaxNumber = cfg.NumSlots
	}
	if cfg.DefaultNetworkingType == "" {
		cfg.DefaultNetworkingType = "nat"
	}
	cfg.DefaultNetworkingType = strings.ToLower(strings.TrimSpace(cfg.DefaultNetworkingType))
	for i, t := range cfg.NetworkingTypes {
		t = strings.ToLower(strings.TrimSpace(t))
		cfg.NetworkingTypes[i] = t
		if t != "nat" && t != "bridge" {
			problems = append(problems, fmt.Sprintf("VM_NETWORKING_TYPE %q: use nat, bridge or both (nat, bridge)", t))
		}
	}
	if cfg.Networking && len(cfg.NetworkingTypes) == 0 {
		cfg.NetworkingTypes = []string{"nat"}
	}
	if cfg.Networking {
		if slices.Contains(cfg.NetworkingTypes, "bridge") && cfg.BridgeInterface == "" {
			problems = append(problems, "VM_NETWORKING_TYPE offers bridge but VM_NETWORKING_BRIDGE_INTERFACE is empty: name the host bridge guests join, e.g. VM_NETWORKING_BRIDGE_INTERFACE = br0")
		}
		if !slices.Contains(cfg.NetworkingTypes, cfg.DefaultNetworkingType) {
			problems = append(problems, fmt.Sprintf("VM_NETWORKING_DEFAULT_TYPE %q is not among VM_NETWORKING_TYPE %v: make it one of them", cfg.DefaultNetworkingType, cfg.NetworkingTypes))
		}
	}
	cfg.policyDefaults()
	problems = append(problems, cfg.compilePolicy()...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("startd %s configuration: %s", cfg.Name, strings.Join(problems, "; "))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.UpdateInterval <= 0 {
		cfg.UpdateInterval = 10 * time.Second
	}
	if cfg.VacateGrace <= 0 {
		cfg.VacateGrace = 10 * time.Second
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 60 * time.Second
	}
	if cfg.AliveInterval <= 0 {
		cfg.AliveInterval = 60 * time.Second
	}
	if cfg.NobodyUser == "" {
		cfg.NobodyUser = "nobody"
	}
	if cfg.RecheckInterval <= 0 {
		cfg.RecheckInterval = 600 * time.Second
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	d := &Startd{cfg: cfg, logger: cfg.Logger.With("daemon", "startd", "startd", cfg.Name, "vm_type", cfg.VMType),
		starters: map[string]chan string{}, jobAds: map[string]*classad.Ad{}, changed: make(chan struct{}, 1), claimed: make(chan struct{}, 1), ready: make(chan struct{}), recheckNow: make(chan struct{}, 1)}
	d.policyOn.Store(cfg.policyOn())
	var err error
	if d.metrics, err = newMetrics(cfg.Metrics, d); err != nil {
		return nil, fmt.Errorf("startd %s metrics: %w", cfg.Name, err)
	}
	return d, nil
}

// SetPolicy changes START, RANK, PREEMPT and KILL while the startd runs
// (HTCondor's condor_reconfig): every slot ad goes out again with the new
// Start and Rank at once, and that put evaluates the new PREEMPT and KILL
// against the running VMs (as every UPDATE_INTERVAL does after); claims
// are decided by the new START from now on, and claims already accepted
// keep running unless PREEMPT or KILL stops them. An
// expression that does not parse changes nothing: the error names it.
func (d *Startd) SetPolicy(ctx context.Context, p Policy) error {
	c := Config{Start: p.Start, Rank: p.Rank, Preempt: p.Preempt, Kill: p.Kill}
	c.policyDefaults()
	if problems := c.compilePolicy(); len(problems) > 0 {
		return fmt.Errorf("startd %s policy not changed: %s", d.cfg.Name, strings.Join(problems, "; "))
	}
	select {
	case <-d.ready:
	case <-ctx.Done():
		return fmt.Errorf("startd %s policy not changed: %w", d.cfg.Name, ctx.Err())
	}
	_, err := d.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
		d.cfg.Start, d.cfg.Rank, d.cfg.Preempt, d.cfg.Kill = c.Start, c.Rank, c.Preempt, c.Kill
		d.cfg.startExpr, d.cfg.rankExpr, d.cfg.preemptExpr, d.cfg.killExpr = c.startExpr, c.rankExpr, c.preemptExpr, c.killExpr
		d.policyOn.Store(c.policyOn())
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("startd %s policy: %w", d.cfg.Name, err)
	}
	d.forceFull.Store(true)
	d.signalChanged()
	return nil
}

// Ready is closed once the startd serves claims.
func (d *Startd) Ready() <-chan struct{} { return d.ready }

// Name is the startd's name.
func (d *Startd) Name() string { return d.cfg.Name }

// Replay rebuilds a startd's state from its log.
func Replay(l *events.Log, name string, slots int, until uint64) (*State, error) {
	defer events.RaiseGC()()
	st := NewState(name, slots)
	err := l.Scan(1, func(idx uint64, e events.Event) error {
		if until > 0 && idx > until {
			return events.ErrStop
		}
		Apply(st, e)
		return nil
	})
	return st, err
}

// Run serves until ctx is done, then vacates its VMs (checkpointing those
// that asked for it) within ShutdownGrace and stops.
func (d *Startd) Run(ctx context.Context) error {
	var l *events.Log
	var err error
	if d.cfg.Store != nil {
		l, err = d.cfg.Store.Log(d.cfg.Name)
	} else {
		l, err = events.OpenLog(filepath.Join(d.cfg.Dir, "log"), d.cfg.Name, events.LogOptions{Logger: d.logger})
	}
	if err != nil {
		return err
	}
	defer l.Close()
	d.log = l
	if d.st, err = Replay(l, d.cfg.Name, d.cfg.NumSlots, 0); err != nil {
		return fmt.Errorf("rebuild startd %s: %w", d.cfg.Name, err)
	}
	d.start = d.cfg.Clock().Unix()
	fp := d.probe(ctx)
	d.healthMu.Lock()
	d.fp = fp
	d.healthMu.Unlock()
	if !fp.Detected || !fp.Healthy {
		d.logger.Warn("hypervisor unavailable; advertising HasVM = false", "reason", fp.Reason)
	} else {
		d.logger.Info("hypervisor ready", "version", fp.Version, "attrs", fp.Attrs)
	}
	if d.cfg.Networking && fp.Detected {
		for _, t := range d.cfg.NetworkingTypes {
			if !slices.Contains(fp.Networking, t) {
				// Offered by the configuration, not by the machine: the
				// ads leave it out (netTypes), which should not go unsaid.
				why := fp.NetworkingNote
				if why == "" {
					why = "the " + d.cfg.VMType + " driver does not give it"
				}
				d.logger.Warn("VM_NETWORKING_TYPE offers a networking type this machine cannot give; not advertised", "type", t,
					"can", strings.Join(fp.Networking, ", "), "why", why)
			}
		}
	}
	// The loop, outbox and starters outlive ctx: shutdown vacates VMs and
	// must record and publish what happened to them.
	bg, stopAll := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAll()
	d.runCtx = bg
	d.loop = events.NewLoop(events.LoopConfig{Log: l, Apply: func(e events.Event) { Apply(d.st, e) }, After: d.afterCommit, Clock: d.cfg.Clock,
		Failpoints: d.cfg.Failpoints, MinFree: d.cfg.MinFreeBytes})
	outbox, err := events.NewOutbox(events.OutboxConfig{Log: l, JS: d.cfg.Bus.JS, Role: events.RoleStartd, Logger: d.logger, Failpoints: d.cfg.Failpoints,
		Publisher: d.cfg.Publisher, VerifyInterval: d.cfg.VerifyInterval})
	if err != nil {
		return err
	}
	// A log behind the bus stops the startd before it records anything.
	if err := outbox.CheckBus(ctx); err != nil {
		return err
	}
	d.metrics.attach(outbox)
	defer d.metrics.detach()
	var bgWG sync.WaitGroup
	loopErr := make(chan error, 1)
	outboxErr := make(chan error, 1)
	bgWG.Add(2)
	go func() { defer bgWG.Done(); loopErr <- d.loop.Run(bg) }()
	go func() { defer bgWG.Done(); outboxErr <- outbox.Run(bg) }()

	// Claims open in the log: their VMs may still run (reattach) or must
	// be started again.
	var open []*Claim
	d.loop.View(func() { open = d.st.SortedClaims() })
	for _, c := range open {
		if !c.Waiting { // a preempting claim starts when its slot is free
			d.launch(c)
		}
	}

	srv := events.NewServer(d.cfg.Bus.NC, d.logger, 32)
	g, gctx := errgroup.WithContext(ctx)
	for verb, h := range map[string]events.Handler{"claim": d.handleClaim, "deactivate": d.handleDeactivate} {
		if err := srv.Handle(gctx, events.CmdSubject(events.RoleStartd, d.cfg.Name, verb), h); err != nil {
			return err
		}
	}
	// Drain is an administrator's verb: on a pool with credentials only
	// the queue super users may publish it (events.RoleAdmin).
	if err := srv.HandleUser(gctx, events.CmdSubject(events.RoleStartd, d.cfg.Name, "drain"), d.handleDrain); err != nil {
		return err
	}
	if err := d.cfg.Bus.NC.Flush(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	// The first ads are in the collector before the startd says it is
	// ready: a `vmpool status` right after `vmpool up` sees every slot.
	d.putAds(gctx, true)
	g.Go(func() error { return d.advertise(gctx) })
	g.Go(func() error { return d.keepalive(gctx) })
	g.Go(func() error { return d.recheck(gctx) })
	g.Go(func() error {
		select {
		case err := <-loopErr:
			return err
		case err := <-outboxErr:
			// Stopped on its own (the bus is ahead of the log): what
			// the startd records would reach no schedd.
			return err
		case <-gctx.Done():
			return nil
		}
	})
	close(d.ready)
	d.logger.Info("startd serving", "slots", d.cfg.NumSlots, "vm_memory", d.cfg.VMMemory)
	err = g.Wait()
	srv.Close()

	// Graceful shutdown: vacate every VM, wait for the starters.
	d.stopping.Store(true)
	d.mu.Lock()
	for _, ch := range d.starters {
		select {
		case ch <- events.ModeVacate:
		default:
		}
	}
	d.mu.Unlock()
	waited := make(chan struct{})
	go func() { d.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(d.cfg.ShutdownGrace):
		d.logger.Warn("VMs did not vacate within the shutdown grace; leaving them to be reattached", "grace", d.cfg.ShutdownGrace)
	}
	d.unadvertise()
	fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
	if ferr := outbox.Flush(fctx); ferr != nil {
		d.logger.Warn("outbox not flushed at shutdown; it republishes on restart", "err", ferr)
	}
	fcancel()
	stopAll()
	<-waited
	bgWG.Wait()
	return err
}

func (d *Startd) afterCommit(evs []events.Event) {
	d.metrics.committed(evs)
	d.signalChanged()
	for _, e := range evs {
		switch e.Type {
		case events.ClaimAccepted:
			p, err := e.DecodeClaimAcceptedWithoutAd() // the claim is in the state, whole
			if err != nil {
				continue
			}
			// After runs on the loop goroutine, the state's only writer.
			if c := d.st.Claims[p.Req.ClaimID]; c != nil && !c.Waiting {
				cc := *c
				d.launch(&cc)
			}
		case events.VMExited, events.VMEvicted, events.VMFailed, events.VMStopped:
			var p events.VMEventPayload
			if e.Decode(&p) == nil {
				d.mu.Lock()
				delete(d.jobAds, p.ClaimID) // a claim that ended before its starter ran
				d.mu.Unlock()
			}
			// A preempted VM is gone: the claim that waited for its slot
			// starts now.
			for _, sl := range d.st.Slots {
				if c := d.st.Claims[sl.Claim]; c != nil && !c.Started && c.Handle == nil && !d.running(c.Req.ClaimID) {
					cc := *c
					d.launch(&cc)
				}
			}
		case StopRequested:
			var p StopRequestedPayload
			if e.Decode(&p) != nil {
				continue
			}
			d.mu.Lock()
			if ch := d.starters[p.ClaimID]; ch != nil {
				m := p.Mode
				if p.Fast && m == events.ModeVacate {
					m = modeFast
				}
				select {
				case ch <- m:
				default:
				}
			}
			d.mu.Unlock()
		}
	}
}

func (d *Startd) signalChanged() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// running reports whether claim id has a starter goroutine.
func (d *Startd) running(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.starters[id]
	return ok
}

// launch starts the starter goroutine of claim c (once).
func (d *Startd) launch(c *Claim) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.starters[c.Req.ClaimID]; ok {
		return
	}
	stop := make(chan string, 4)
	if c.StopMode != "" {
		m := c.StopMode
		if c.StopFast && m == events.ModeVacate {
			m = modeFast
		}
		stop <- m
	}
	d.starters[c.Req.ClaimID] = stop
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() {
			d.mu.Lock()
			delete(d.starters, c.Req.ClaimID)
			d.mu.Unlock()
		}()
		d.runClaim(d.runCtx, c, stop)
	}()
}

func (d *Startd) handleClaim(ctx context.Context, data []byte) (any, error) {
	var req events.ClaimRequest
	if err := events.DecodeJSON(data, &req); err != nil {
		return nil, fmt.Errorf("claim: %w: %w", err, ErrBadRequest)
	}
	facts := d.facts()
	job, parseErr := d.sharedAds.parseJobAd(req)
	var reason string
	_, err := d.loop.DoEvents(ctx, func(now time.Time) ([]events.Event, error) {
		s := d.st.Slot(req.Slot)
		if s == nil {
			reason = fmt.Sprintf("no slot %q on startd %s", req.Slot, d.cfg.Name)
			return nil, nil
		}
		if fp := facts.Fingerprint; !fp.Detected || !fp.Healthy {
			reason = "the hypervisor is unavailable: " + fp.Reason
			return nil, nil
		}
		var evs []events.Event
		// The slot's ad is only read by the decision; decisions take
		// turns (the loop's lock), and each renders it in the same room.
		d.claimAd = machineAdIn(d.claimAd, &d.cfg, d.st, s, facts)
		evs, reason = DecideClaimAd(d.st, req, job, parseErr, d.claimAd, d.cfg.VMMemory, d.cfg.VMMaxNumber, now)
		if len(evs) > 0 && parseErr == nil {
			// Its starter reads the ad parsed here rather than again.
			d.mu.Lock()
			d.jobAds[req.ClaimID] = job
			d.mu.Unlock()
		}
		return evs, nil
	})
	if err != nil {
		return nil, err
	}
	if reason != "" {
		// The negotiator matched on an ad that no longer says what the
		// machine has (its shared attributes go out lazily): put them.
		d.forceShared.Store(true)
		d.signalChanged()
		return events.ClaimReply{Accepted: false, Reason: reason}, nil
	}
	d.logger.Info("claim accepted", "job", req.Job.String(), "schedd", req.Schedd, "slot", req.Slot)
	select {
	case d.claimed <- struct{}{}:
	default:
	}
	return events.ClaimReply{Accepted: true}, nil
}

func (d *Startd) handleDeactivate(ctx context.Context, data []byte) (any, error) {
	var req events.DeactivateRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("deactivate: %w: %w", err, ErrBadRequest)
	}
	var known bool
	_, err := d.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
		var evs []events.Event
		evs, known = DecideStop(d.st, req)
		return evs, nil
	})
	if err != nil {
		return nil, err
	}
	return events.DeactivateReply{Known: known}, nil
}

// ErrBadRequest rejects a malformed request.
var ErrBadRequest = events.NewError("bad-request", "bad request")

// facts measures the machine for its ads. The host's memory is read
// once; its load and free disk at most once a second.
func (d *Startd) facts() Facts {
	now := d.cfg.Clock()
	f := Facts{Host: d.cfg.Host, Arch: "X86_64", OpSys: "LINUX", Cpus: runtime.NumCPU(),
		Fingerprint: d.fingerprint(), StartTime: d.start, LastHeardFrom: now.Unix()}
	if runtime.GOARCH != "amd64" {
		f.Arch = strings.ToUpper(runtime.GOARCH)
	}
	d.measuredMu.Lock()
	defer d.measuredMu.Unlock()
	m := &d.measured
	if m.at.IsZero() || now.Sub(m.at) >= time.Second || now.Before(m.at) {
		if m.at.IsZero() {
			m.totalMemory = hostMemoryMiB()
		}
		m.at = now
		m.diskKiB = 0
		var sfs syscall.Statfs_t
		if err := syscall.Statfs(d.cfg.Dir, &sfs); err == nil {
			m.diskKiB = int64(sfs.Bavail) * int64(sfs.Bsize) / 1024
		}
		m.loadAvg = hostLoadAvg()
	}
	f.TotalMemory, f.DiskKiB, f.LoadAvg = m.totalMemory, m.diskKiB, m.loadAvg
	return f
}

// hostLoad is the host's one-minute load average, read at most once a
// second for all the startds of a process (a pool of simulated startds
// has thousands, and each read it every second it changed an ad).
var hostLoad struct {
	mu  sync.Mutex
	at  time.Time
	avg float64
}

func hostLoadAvg() float64 {
	hostLoad.mu.Lock()
	defer hostLoad.mu.Unlock()
	if now := time.Now(); hostLoad.at.IsZero() || now.Sub(hostLoad.at) >= time.Second || now.Before(hostLoad.at) {
		hostLoad.at, hostLoad.avg = now, 0
		if b, err := os.ReadFile("/proc/loadavg"); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				hostLoad.avg, _ = strconv.ParseFloat(f[0], 64)
			}
		}
	}
	return hostLoad.avg
}

// HostMemoryMiB is the machine's memory in MiB (MemTotal; 0 if unknown),
// the configuration's DETECTED_MEMORY.
func HostMemoryMiB() int { return hostMemoryMiB() }

func hostMemoryMiB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb int
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "MemTotal:") {
			fmt.Sscanf(strings.TrimPrefix(line, "MemTotal:"), "%d", &kb)
		}
	}
	return kb / 1024
}

// adSettle is how long a change waits for others before its ads are put.
const adSettle = 10 * time.Millisecond

// adStartGrace is how long the ad of a slot just claimed waits for its
// VM to start: a claim and its VM's start then go out as one put (Busy)
// instead of two (Claimed/Idle, then Busy), half the collector's writes
// of a pool filling up. A VM slower to start (inputs to fetch, a long
// boot) has its Claimed/Idle put when the grace ends. Matching does not
// wait for it: the negotiator keeps a slot it matched reserved until its
// ad shows the claim.
const adStartGrace = time.Second

// startWait is how much longer the ad of slot s waits for its claim's VM
// to start (adStartGrace), or 0 if it goes out now, and when the claim was
// first seen waiting.
func (d *Startd) startWait(s *Slot, now time.Time) (wait time.Duration, seen time.Time) {
	if s.State != Claimed || s.Activity != ActIdle {
		return 0, now
	}
	c := d.st.Claims[s.Claim]
	if c == nil || c.Started || c.StopMode != "" || c.Waiting {
		return 0, now
	}
	seen, ok := d.startSeen[s.Claim]
	if !ok {
		seen = now
	}
	return max(0, seen.Add(adStartGrace).Sub(now)), seen
}

// advertise puts the slot ads in the collector on every change and every
// UpdateInterval (the bucket's TTL drops them if the startd dies). A
// change puts only the ads it changed; the refresh puts them all.
func (d *Startd) advertise(ctx context.Context) error {
	t := time.NewTicker(d.cfg.UpdateInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			d.putAds(ctx, true)
		case <-d.changed:
			// Changes that come together (a claim and its VM's start, the
			// negotiator filling several slots at once) go out in one put.
			select {
			case <-time.After(adSettle):
			case <-ctx.Done():
				return nil
			}
			d.putAds(ctx, d.forceFull.Swap(false))
		}
	}
}

// sameMachine reports whether two measurements render the same ads apart
// from the volatile facts (load, disk, time).
// Field by field: reflect.DeepEqual boxed both at every put.
func sameMachine(a, b Facts) bool {
	fa, fb := a.Fingerprint, b.Fingerprint
	return a.Host == b.Host && a.Arch == b.Arch && a.OpSys == b.OpSys && a.TotalMemory == b.TotalMemory &&
		a.Cpus == b.Cpus && a.StartTime == b.StartTime &&
		fa.Type == fb.Type && fa.Detected == fb.Detected && fa.Healthy == fb.Healthy && fa.Reason == fb.Reason &&
		fa.Version == fb.Version && fa.NoFiles == fb.NoFiles && fa.NetworkingNote == fb.NetworkingNote &&
		slices.Equal(fa.Networking, fb.Networking) && maps.Equal(fa.Attrs, fb.Attrs)
}

// putAds puts the slot ads in the collector: all of them when full, else
// those that differ from what was last put, apart from the volatile facts
// (load, free disk, LastHeardFrom), which only the full refresh updates.
func (d *Startd) putAds(ctx context.Context, full bool) {
	f := d.facts()
	d.applyPolicy(ctx, f)
	if d.adsSent == nil {
		d.adsSent, d.slotShared, d.adKeys = map[string][]byte{}, map[string]sharedAttrs{}, map[string]adKey{}
	}
	ref := f
	if full {
		d.adRef = f
	} else {
		ref.LoadAvg, ref.DiskKiB, ref.LastHeardFrom = d.adRef.LoadAvg, d.adRef.DiskKiB, d.adRef.LastHeardFrom
	}
	forced := d.forceShared.Swap(false)
	type put struct {
		id       string
		val, cmp []byte
	}
	var puts []put
	var cur sharedAttrs
	keys := make(map[string]adKey, len(d.adKeys))
	sameFacts := d.keyFacts.set && sameMachine(d.keyFacts.f, f)
	now := time.Now()
	var recheck time.Duration // the soonest a waiting slot's grace ends
	var waiting map[string]time.Time
	d.loop.View(func() {
		// The shared attributes (VM_Memory, VM_AvailNum, VmpoolClaims)
		// are alike on every slot ad, and every claim changes them. A
		// change that only takes from them waits for the refresh (or a
		// claim refused for it), as HTCondor's startd leaves the other
		// slots' ads to UPDATE_INTERVAL; one that gives back, or that
		// leaves nothing, goes out at once, to the slots the negotiator
		// may match: a claimed slot is matched only to preempt its
		// claim, and its shared part waits (a claim refused for it puts
		// them all). The last claim of a full machine, which leaves
		// nothing, puts its own slot's ad, not every slot's again.
		cur = sharedNow(&d.cfg, d.st, ref)
		mayWait := !full && !forced && d.sharedSent.set
		allWait := mayWait && !cur.mustGoOut(d.sharedSent)
		if !allWait {
			d.sharedSent = cur
		}
		for _, s := range d.st.Slots {
			lazy := allWait || mayWait && s.State != Unclaimed
			if !full {
				if w, seen := d.startWait(s, now); w > 0 {
					if waiting == nil {
						waiting = map[string]time.Time{}
					}
					waiting[s.Claim] = seen
					if recheck == 0 || w < recheck {
						recheck = w
					}
					continue
				}
			}
			sh, had := d.slotShared[s.ID]
			// What the ad is made of: unchanged since it was put, it is
			// not even rendered.
			key := adKey{slot: *s, shared: cur}
			if lazy && had {
				key.shared = sh
			}
			if c := d.st.Claims[s.Claim]; c != nil && s.State == Claimed {
				key.claimed, key.rank, key.mem = true, c.Rank, c.MemoryMiB
			}
			if !full && sameFacts && d.adKeys[s.ID] == key {
				continue
			}
			keys[s.ID] = key
			// Marshalled and dropped: one ad's room serves them all.
			ad := machineAdIn(d.putAd, &d.cfg, d.st, s, ref)
			d.putAd = ad
			if lazy && had {
				sh.apply(ad) // as it was last put: has the slot's own part changed?
			}
			// Compared in a buffer that is reused, and copied only when
			// it goes out: most renderings are dropped.
			d.adJSON = ad.AppendJSON(d.adJSON[:0])
			if lazy && had && !bytes.Equal(d.adJSON, d.adsSent[s.ID]) {
				cur.apply(ad) // it goes out, with the shared part as it is now
				key.shared = cur
				keys[s.ID] = key
				d.adJSON = ad.AppendJSON(d.adJSON[:0])
			}
			if !full && bytes.Equal(d.adJSON, d.adsSent[s.ID]) {
				d.adKeys[s.ID] = key
				continue
			}
			cmp := bytes.Clone(d.adJSON)
			val := cmp
			if !full {
				// What goes out says when it was heard from: now.
				setVolatile(ad, len(d.st.Slots), f)
				val = ad.AppendJSON(make([]byte, 0, len(cmp)+64))
			}
			puts = append(puts, put{s.ID, val, cmp})
		}
	})
	if !full {
		d.startSeen = waiting
	}
	if recheck > 0 && (d.startRecheck.IsZero() || !now.Before(d.startRecheck)) {
		// No signal pending: one at the end of the soonest grace, which
		// puts the ads of the VMs still starting then.
		d.startRecheck = now.Add(recheck)
		time.AfterFunc(recheck, d.signalChanged)
	}
	retry := false
	for _, p := range puts {
		recreated, err := d.cfg.Bus.PutAd(ctx, events.SlotKey(d.cfg.Name, p.id), p.val)
		if err != nil {
			delete(d.adsSent, p.id) // put it again at the next change
			delete(d.adKeys, p.id)
			if ctx.Err() == nil {
				d.logger.Warn("advertise slot", "slot", p.id, "err", err)
				if !retry {
					retry = true
					time.AfterFunc(time.Second, d.signalChanged) // or sooner
				}
			}
			continue
		}
		if recreated {
			// A new, empty collector: every ad goes out again.
			clear(d.adsSent)
			clear(d.adKeys)
			d.signalChanged()
		}
		d.adsSent[p.id] = p.cmp
		d.slotShared[p.id] = cur
		d.adKeys[p.id] = keys[p.id]
	}
	d.keyFacts.set, d.keyFacts.f = true, f
}

// unadvertise removes the slot ads when the startd stops, so that the
// negotiator stops matching them at once.
func (d *Startd) unadvertise() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range d.st.Slots {
		if err := d.cfg.Bus.Collector.Delete(ctx, events.SlotKey(d.cfg.Name, s.ID)); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			d.logger.Debug("remove slot ad", "slot", s.ID, "err", err)
		}
	}
}

// DrainRequest is the body of the drain verb (condor_drain).
type DrainRequest struct {
	Cancel bool   `json:"cancel,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// DrainReply answers it.
type DrainReply struct {
	Vacating int `json:"vacating"` // VMs asked to leave
}

func (d *Startd) handleDrain(ctx context.Context, user string, data []byte) (any, error) {
	var req DrainRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("drain: %w: %w", err, ErrBadRequest)
	}
	if req.Reason == "" {
		req.Reason = "by condor_drain (user " + user + ")"
	}
	evs, err := d.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
		return DecideDrain(d.st, !req.Cancel, req.Reason), nil
	})
	if err != nil {
		return nil, err
	}
	n := 0
	for _, e := range evs {
		if e.Type == StopRequested {
			n++
		}
	}
	d.logger.Info("drain", "on", !req.Cancel, "vacating", n)
	return DrainReply{Vacating: n}, nil
}

// stopClaims records the startd's own decision to end claims.
func (d *Startd) stopClaims(ctx context.Context, ids []string, mode, reason string) {
	if len(ids) == 0 {
		return
	}
	_, err := d.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
		var out []events.Event
		for _, id := range ids {
			evs, _ := DecideStop(d.st, events.DeactivateRequest{ClaimID: id, Mode: mode, Reason: reason})
			out = append(out, evs...)
		}
		return out, nil
	})
	if err != nil && ctx.Err() == nil {
		d.logger.Error("record stop", "err", err)
	}
}

// applyPolicy records what PREEMPT and KILL decide now (DecidePolicy).
func (d *Startd) applyPolicy(ctx context.Context, f Facts) {
	if !d.policyOn.Load() {
		return
	}
	_, err := d.loop.DoEvents(ctx, func(now time.Time) ([]events.Event, error) {
		return DecidePolicy(&d.cfg, d.st, f, now), nil
	})
	if err != nil && ctx.Err() == nil {
		d.logger.Error("record PREEMPT/KILL", "err", err)
	}
}

// jobLease is the JobLeaseDuration of a claim's job ad (HTCondor's
// default, 2400 s, when it has none).
func jobLease(jobAd string) time.Duration {
	if job, err := classad.ParseAd(jobAd); err == nil {
		return time.Duration(jobLeaseOf(job)) * time.Second
	}
	return defaultLease * time.Second
}

// jobLeaseOf is the job's JobLeaseDuration in seconds, or HTCondor's
// default for a job without one.
func jobLeaseOf(job *classad.Ad) int64 {
	if v, ok := job.EvalInt("JobLeaseDuration"); ok {
		return v
	}
	return defaultLease
}

// defaultLease is HTCondor's JOB_DEFAULT_LEASE_DURATION, in seconds.
const defaultLease = 2400

// keepalive renews the leases of the startd's claims with their schedds.
// A claim a schedd no longer holds has its VM killed at once (it may run
// elsewhere by now); a claim whose schedd has not answered for the job's
// JobLeaseDuration too, since the schedd will have given up on it. Claims
// whose VM ended are renewed until their schedd no longer holds them: the
// end event may reach the schedd late, and the job must not be taken for
// lost meanwhile.
func (d *Startd) keepalive(ctx context.Context) error {
	lastOK := map[string]time.Time{} // schedd -> last answer
	// settled: ended claims their schedd no longer holds (it has recorded
	// the end); no more keepalives for them.
	settled := map[string]bool{}
	// quiet: schedds told of only ended claims that have not answered since
	// the startd said so once: a schedd stopped for good is not warned of
	// at every round for as long as its ended claims are kept (an hour).
	quiet := map[string]bool{}
	// leases: each claim's JobLeaseDuration, read from its job ad once
	// (the ad a claim came with never changes); parsing every claim's ad
	// at every keepalive was a tenth of a full pool's CPU.
	leases := map[string]time.Duration{}
	t := time.NewTimer(d.cfg.AliveInterval)
	defer t.Stop()
	var next time.Time // when t fires
	// leaseOf is claim c's lease, read once (under a View).
	leaseOf := func(c *Claim) time.Duration {
		lease, ok := leases[c.Req.ClaimID]
		if !ok {
			if c.LeaseSeconds != 0 {
				lease = time.Duration(c.LeaseSeconds) * time.Second
			} else {
				lease = jobLease(c.Req.JobAd) // recorded before LeaseSeconds
			}
			leases[c.Req.ClaimID] = lease
		}
		return lease
	}
	// shortest is the shortest lease of the claims held, as a round
	// counts them (not those being killed).
	shortest := func() time.Duration {
		var least time.Duration
		d.loop.View(func() {
			for _, c := range d.st.Claims {
				if lease := leaseOf(c); c.StopMode != events.ModeKill && lease > 0 && (least == 0 || lease < least) {
					least = lease
				}
			}
		})
		return least
	}
	for {
		type claim struct {
			id    string
			lease time.Duration
		}
		bySchedd := map[string][]claim{}
		ended := map[string][]string{} // schedd -> ended claims it may not know of yet
		d.loop.View(func() {
			for id, ec := range d.st.Ended {
				if !settled[id] {
					ended[ec.Schedd] = append(ended[ec.Schedd], id)
				}
			}
			for id := range settled {
				if _, ok := d.st.Ended[id]; !ok {
					delete(settled, id)
				}
			}
			for id := range leases {
				if _, ok := d.st.Claims[id]; !ok {
					delete(leases, id)
				}
			}
			for _, c := range d.st.Claims {
				if c.StopMode == events.ModeKill {
					continue
				}
				bySchedd[c.Req.Schedd] = append(bySchedd[c.Req.Schedd], claim{c.Req.ClaimID, leaseOf(c)})
			}
		})
		now := d.cfg.Clock()
		for schedd := range ended {
			if _, ok := bySchedd[schedd]; !ok {
				bySchedd[schedd] = nil
			}
		}
		for schedd, claims := range bySchedd {
			req := events.AliveRequest{Startd: d.cfg.Name}
			for _, c := range claims {
				req.Claims = append(req.Claims, c.id)
			}
			req.Claims = append(req.Claims, ended[schedd]...)
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			var reply events.AliveReply
			err := events.Call(cctx, d.cfg.Bus.NC, events.CmdSubject(events.RoleSchedd, schedd, "alive"), req, &reply)
			cancel()
			if err == nil {
				lastOK[schedd] = now
				delete(quiet, schedd)
				isEnded := map[string]bool{}
				for _, id := range ended[schedd] {
					isEnded[id] = true
				}
				var stop []string
				for _, id := range reply.Unknown {
					if isEnded[id] {
						settled[id] = true // the schedd has recorded the end
					} else {
						stop = append(stop, id)
					}
				}
				if len(stop) > 0 {
					d.logger.Warn("schedd no longer holds these claims; stopping their VMs", "schedd", schedd, "claims", stop)
				}
				d.stopClaims(ctx, stop, events.ModeKill, "the schedd no longer holds the claim")
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			if _, ok := lastOK[schedd]; !ok {
				lastOK[schedd] = now
			}
			var expired []string
			for _, c := range claims {
				if c.lease > 0 && now.Sub(lastOK[schedd]) > c.lease {
					expired = append(expired, c.id)
				}
			}
			switch {
			case len(claims) > 0:
				d.logger.Warn("keepalive to schedd failed", "schedd", schedd, "err", err, "expired", len(expired))
			case !quiet[schedd]:
				quiet[schedd] = true
				d.logger.Warn("keepalive to schedd failed; it holds no running claims of this startd, only ended ones, which are reported to it (without more warnings) when it answers again",
					"schedd", schedd, "err", err, "ended", len(ended[schedd]))
			default:
				d.logger.Debug("keepalive to schedd failed", "schedd", schedd, "err", err, "ended", len(ended[schedd]))
			}
			d.stopClaims(ctx, expired, events.ModeKill, "no answer from schedd "+schedd+" within the job lease")
		}
		wait := aliveEvery(d.cfg.AliveInterval, shortest())
		t.Reset(wait)
		next = d.cfg.Clock().Add(wait)
	sleep:
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.claimed:
			// A new claim's lease may end before the round planned:
			// bring the round forward, never put it off.
			if wait := aliveEvery(d.cfg.AliveInterval, shortest()); d.cfg.Clock().Add(wait).Before(next) {
				t.Reset(wait) // (go 1.23 timers: no stale tick to drain)
				next = d.cfg.Clock().Add(wait)
			}
			goto sleep
		}
	}
}

// aliveEvery is how long the keepalive waits before its next round:
// ALIVE_INTERVAL, or a third of the shortest job lease the startd holds
// a claim under, whichever is shorter (at least a second); a claim
// accepted meanwhile brings the round forward (Startd.claimed).
// Keepalives every ALIVE_INTERVAL (60 s) let the schedd declare the claims
// of jobs with job_lease_duration = 20 lost while their VMs ran, and match
// them again elsewhere: for a few seconds the job ran twice.
func aliveEvery(interval, shortestLease time.Duration) time.Duration {
	if shortestLease > 0 {
		interval = min(interval, max(shortestLease/3, time.Second))
	}
	return interval
}

// accounts caches the host's accounts by name for accountTTL, as
// HTCondor's passwd cache does: a startd looked its job's owner up in the
// account database at every claim, and the simulated startds of one
// process claim thousands of times a second. An account added or removed
// is seen within accountTTL.
var accounts struct {
	mu sync.Mutex
	m  map[string]accountEntry
}

type accountEntry struct {
	u   *user.User
	err error
	at  time.Time
}

const accountTTL = time.Minute

// lookupAccount is user.Lookup, through accounts (an account found, or
// known not to exist).
func lookupAccount(name string) (*user.User, error) {
	now := time.Now()
	accounts.mu.Lock()
	e, ok := accounts.m[name]
	accounts.mu.Unlock()
	if ok && now.Sub(e.at) < accountTTL && !now.Before(e.at) {
		return e.u, e.err
	}
	u, err := user.Lookup(name)
	if err != nil && !errors.As(err, new(user.UnknownUserError)) {
		return u, err // a failing account database: ask again next time
	}
	accounts.mu.Lock()
	defer accounts.mu.Unlock()
	if accounts.m == nil || len(accounts.m) >= 4096 {
		accounts.m = map[string]accountEntry{} // owners are few; a flood of names starts it afresh
	}
	accounts.m[name] = accountEntry{u: u, err: err, at: now}
	return u, err
}

// runAs picks the account a job's VM runs as: none unless the startd is
// root; then the job's owner if that account exists here and is not root
// (by name or by uid 0) and AlwaysUseNobody is off, else NobodyUser. The group of /dev/kvm is
// added so that KVM works for it.
func (d *Startd) runAs(owner string) (*hypervisor.Account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	name := d.cfg.NobodyUser
	var u *user.User
	if !d.cfg.AlwaysUseNobody && owner != "root" {
		// One lookup, not one to see that the account exists and another
		// for its ids; an account of uid 0 under another name is root too.
		if ou, err := lookupAccount(owner); err == nil && ou.Uid != "0" {
			u, name = ou, owner
		}
	}
	if u == nil {
		var err error
		if u, err = lookupAccount(name); err != nil {
			return nil, fmt.Errorf("VM_UNIV_NOBODY_USER %q: %w", name, err)
		}
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	a := &hypervisor.Account{Name: name, UID: uint32(uid), GID: uint32(gid)}
	var st syscall.Stat_t
	if err := syscall.Stat("/dev/kvm", &st); err == nil {
		a.Groups = append(a.Groups, st.Gid)
	}
	return a, nil
}
