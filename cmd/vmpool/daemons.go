package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/negotiator"
	"github.com/vmpool/vmpool/schedd"
	"github.com/vmpool/vmpool/startd"
)

// daemonFlags are the options every daemon command takes.
type daemonFlags struct {
	home, listen, pool, name, logLevel, creds string
	startds                                   int
	configs                                   []string // --config files and directories, in order
	sets                                      []string // NAME=VALUE overrides
	printConfig, init                         bool     // vmpool nats --print-config, --init
}

func (c *cli) parseDaemonFlags(cmd string, args []string, df *daemonFlags) int {
	a := &argList{args: args, cmd: cmd}
	for {
		arg, ok := a.next()
		if !ok {
			break
		}
		name, val, has, isOpt := opt(arg)
		if !isOpt {
			return c.usageErr(cmd, "unexpected argument %q", arg)
		}
		switch name {
		case "home", "local-dir":
			df.home = a.value(name, val, has)
		case "listen":
			df.listen = a.value(name, val, has)
		case "pool", "nats":
			df.pool = a.value(name, val, has)
		case "config", "c":
			df.configs = append(df.configs, a.value(name, val, has))
		case "name":
			df.name = a.value(name, val, has)
		case "log-level":
			df.logLevel = a.value(name, val, has)
		case "creds":
			df.creds = a.value(name, val, has)
		case "startds":
			if cmd != "up" {
				return c.usageErr(cmd, "--startds is an option of vmpool up (run a vmpool startd for each execute machine, or --sim-startds N for simulated ones)")
			}
			v := a.value(name, val, has)
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1000 {
				return c.usageErr(cmd, "--startds %q: want a number of startds from 0 to 1000", v)
			}
			df.startds = n
		case "sim-startds":
			if cmd != "up" && cmd != "startd" {
				return c.usageErr(cmd, "--sim-startds is an option of vmpool up and vmpool startd")
			}
			v := a.value(name, val, has)
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100000 {
				return c.usageErr(cmd, "--sim-startds %q: want a number of simulated startds from 0 to 100000", v)
			}
			df.sets = append(df.sets, "SIM_STARTDS="+v)
		case "emulate":
			df.sets = append(df.sets, "EMULATE="+a.value(name, val, has))
		case "set":
			df.sets = append(df.sets, a.value(name, val, has))
		case "cluster", "server-name", "cluster-listen", "routes", "replicas":
			knob := "NATS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
			df.sets = append(df.sets, knob+"="+a.value(name, val, has))
		case "print-config":
			if cmd != "nats" {
				return c.usageErr(cmd, "--print-config is an option of vmpool nats")
			}
			df.printConfig = true
		case "init":
			if cmd != "nats" {
				return c.usageErr(cmd, "--init is an option of vmpool nats")
			}
			df.init = true
		case "vm-memory":
			df.sets = append(df.sets, "VM_MEMORY="+a.value(name, val, has))
		case "vm-type":
			df.sets = append(df.sets, "VM_TYPE="+a.value(name, val, has))
		case "metrics":
			df.sets = append(df.sets, "METRICS_ADDRESS="+a.value(name, val, has))
		case "h", "help":
			fmt.Fprint(c.stdout, daemonUsage(cmd))
			if cmd != "config" {
				fmt.Fprintln(c.stdout, "  SIGTERM or Ctrl-C stops it (a startd vacates its VMs first); SIGHUP reads the configuration again")
				fmt.Fprintln(c.stdout, "  (condor_reconfig): START, RANK, PREEMPT and KILL apply to running startds at once, other knobs at a restart.")
			}
			return 0
		default:
			return c.usageErr(cmd, "unknown option %s (try --help)", arg)
		}
		if a.err != nil {
			return c.usageErr(cmd, "%v", a.err)
		}
		if !daemonTakes(cmd, name) {
			return c.usageErr(cmd, "--%s is not an option of vmpool %s: it would do nothing here (try --help)", name, cmd)
		}
	}
	return -1
}

// optionAliases are other spellings of daemon options.
var optionAliases = map[string]string{"local-dir": "home", "nats": "pool", "c": "config"}

var usageOption = regexp.MustCompile(`--([a-z][a-z-]*)`)

// daemonTakes reports whether the daemon command cmd reads option name:
// whether its usage names it. One parser reads every daemon command's
// options, and vmpool up took --name, --pool and --creds, and vmpool nats
// --metrics and --name, without a word, and did nothing with them.
// vmpool config takes every option (to show what a daemon would read).
func daemonTakes(cmd, name string) bool {
	if cmd == "config" {
		return true
	}
	if n, ok := optionAliases[name]; ok {
		name = n
	}
	for _, m := range usageOption.FindAllStringSubmatch(daemonUsage(cmd), -1) {
		if m[1] == name {
			return true
		}
	}
	return false
}

// daemonUsage is the -h text of a daemon command (and of config): the
// options that command reads.
func daemonUsage(cmd string) string {
	const common = "[--config FILE|DIR]... [--set KNOB=VALUE]... [--log-level debug|info|warn|error]"
	const daemon = "[--pool URL] [--home DIR] [--name NAME] [--creds FILE] [--metrics HOST:PORT|off] " + common
	switch cmd {
	case "up":
		return "usage: vmpool up [--home DIR] [--listen HOST:PORT] [--startds N] [--sim-startds N] [--emulate xen,vmware] [--vm-memory MIB] [--vm-type TYPE] [--metrics HOST:PORT|off] " + common + "\n"
	case "startd":
		return "usage: vmpool startd " + daemon + " [--vm-memory MIB] [--vm-type TYPE] [--sim-startds N]\n"
	case "nats":
		return "usage: vmpool nats [--home DIR] [--listen HOST:PORT] " + common + `
       vmpool nats ... --server-name NAME --cluster NAME --cluster-listen HOST:PORT --routes URL,... [--replicas N]   one server of a NATS cluster (docs/cluster.md)
       vmpool nats --print-config [--home DIR] [--set KNOB=VALUE]   a nats-server configuration admitting the pool's identities
       vmpool nats --init --pool URL [--home DIR] [--set KNOB=VALUE]  create the pool's stream and buckets on that server
`
	case "config":
		return "usage: vmpool config [-v] [-markdown] [--config FILE|DIR]... [--set KNOB=VALUE]... [--home DIR] [--name NAME] [--vm-memory MIB] [--vm-type TYPE] ... [NAME...]   (condor_config_val)\n" +
			"  -v         where each value came from (and, with no NAME, what each knob does)\n" +
			"  -markdown  the configuration reference, docs/config.md\n"
	}
	return "usage: vmpool " + cmd + " " + daemon + "\n"
}

// loadConfig builds the effective configuration for a daemon command.
func (c *cli) loadConfig(df *daemonFlags) (*Config, error) {
	cfg := NewConfig()
	if c.getenv != nil {
		cfg.getenv = c.getenv
	}
	if df.home != "" {
		abs, err := filepath.Abs(df.home)
		if err != nil {
			return nil, err
		}
		cfg.Set("LOCAL_DIR", abs, "--home")
	} else {
		abs, _ := filepath.Abs(cfg.Get("LOCAL_DIR"))
		cfg.Set("LOCAL_DIR", abs, "<default>")
	}
	for _, path := range df.configs {
		if err := cfg.LoadFile(path); err != nil {
			return nil, err
		}
	}
	if v := c.getenv("VMPOOL_URL"); v != "" {
		cfg.Set("VMPOOL_URL", v, "$VMPOOL_URL")
	}
	if v := c.getenv("VMPOOL_FAILPOINTS"); v != "" {
		cfg.Set("VMPOOL_FAILPOINTS", v, "$VMPOOL_FAILPOINTS")
	}
	if df.pool != "" {
		cfg.Set("VMPOOL_URL", c.poolURL(df.pool), "--pool")
	}
	for _, s := range df.sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--set %q: write KNOB=VALUE, e.g. --set VM_MEMORY=2048", s)
		}
		cfg.Set(strings.TrimSpace(k), strings.TrimSpace(v), "--set")
	}
	if err := cfg.Cycles(); err != nil {
		return nil, err
	}
	for _, w := range cfg.Unknown() {
		fmt.Fprintf(c.stderr, "vmpool: WARNING: %s\n", w)
	}
	return cfg, nil
}

func newLogger(c *cli, level string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "", "info":
		l = slog.LevelInfo
	case "debug":
		l = slog.LevelDebug
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: l})), nil
}

// serverTLS is the embedded NATS server's TLS (nil: none).
func serverTLS(cfg *Config) *events.TLSFiles {
	if cfg.Get("NATS_TLS_CERT") == "" {
		return nil
	}
	return &events.TLSFiles{Cert: cfg.Get("NATS_TLS_CERT"), Key: cfg.Get("NATS_TLS_KEY"), CA: cfg.Get("NATS_TLS_CA")}
}

// connectBus connects a daemon to the pool as creds (nil: without
// credentials) and opens the pool's stream and buckets: creating them as
// the pool identity or on a pool without credentials, binding them as a
// daemon of its own (which creates only the collector again, should its
// server have lost it).
func connectBus(ctx context.Context, url, name string, cfg *Config, logger *slog.Logger, creds *events.Credentials, users []string) (*events.Bus, error) {
	var errs []string
	ttl := cfg.PositiveSeconds("CLASSAD_LIFETIME", &errs)
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	opts := events.ConnectOptions{Name: name, Logger: logger, Credentials: creds}
	if ca := cfg.Get("NATS_TLS_CA"); ca != "" {
		opts.TLS = &events.TLSFiles{CA: ca}
	}
	nc, js, err := events.Connect(ctx, url, opts)
	if errors.Is(err, events.ErrTLS) {
		return nil, fmt.Errorf("%v (the pool's NATS server speaks TLS: set NATS_TLS_CA to the CA certificate its certificate is signed by)", err)
	}
	if errors.Is(err, events.ErrNotAuthorized) {
		return nil, err // the server runs; the caller says which credentials
	}
	if err != nil {
		return nil, fmt.Errorf("%v (is the pool's NATS server running? 'vmpool up' starts one)", err)
	}
	replicas := cfg.Int("NATS_REPLICAS", &errs)
	if len(errs) > 0 {
		nc.Close()
		return nil, errors.New(strings.Join(errs, "; "))
	}
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var bus *events.Bus
	if creds == nil || creds.Role == events.RolePool {
		bus, err = events.OpenBus(bctx, nc, js, events.BusConfig{AdTTL: ttl, Users: users, Replicas: replicas})
	} else {
		bus, err = events.BindBus(bctx, nc, js, &events.BusConfig{AdTTL: ttl, Replicas: replicas})
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	bus.Logger = logger
	return bus, nil
}

func scheddConfig(cfg *Config, bus *events.Bus, logger *slog.Logger, address string) (schedd.Config, error) {
	var errs []string
	name := cfg.Get("SCHEDD_NAME")
	sc := schedd.Config{
		Name:       name,
		Dir:        cfg.Get("SPOOL"),
		Bus:        bus,
		Logger:     logger,
		SuperUsers: cfg.List("QUEUE_SUPER_USERS"),
		MaxJobs:    cfg.Int("MAX_JOBS_SUBMITTED", &errs),
		Address:    address,
	}
	sc.PolicyInterval = cfg.PositiveSeconds("PERIODIC_EXPR_INTERVAL", &errs)
	// The ad is put again well within its lifetime: every 15 s (the
	// schedd's default) left it out of the collector most of the time
	// under a CLASSAD_LIFETIME below that, and tools found no schedd.
	if life := cfg.PositiveSeconds("CLASSAD_LIFETIME", &errs); life > 0 {
		sc.AdInterval = min(15*time.Second, life/3)
	}
	sc.SnapshotEvery = cfg.Int("QUEUE_SNAPSHOT_EVENTS", &errs)
	if sc.SnapshotEvery == 0 {
		sc.SnapshotEvery = -1 // 0 in the configuration: never
	}
	sc.MaxHistory = cfg.NonNegative("MAX_HISTORY_JOBS", "0 keeps every job", &errs)
	if sc.MaxHistory == 0 {
		sc.MaxHistory = -1 // 0 in the configuration: no limit
	}
	sc.MinFreeBytes = int64(cfg.NonNegative("LOG_MIN_FREE_MB", "0 turns the check off", &errs)) << 20
	sc.Failpoints = failpoints(cfg, name, &errs)
	if err := events.CheckName("SCHEDD_NAME", name); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return sc, fmt.Errorf("schedd configuration: %s", strings.Join(errs, "; "))
	}
	return sc, nil
}

func negotiatorConfig(cfg *Config, bus *events.Bus, logger *slog.Logger) (negotiator.Config, error) {
	var errs []string
	nc := negotiator.Config{
		Name:         cfg.Get("NEGOTIATOR_NAME"),
		Dir:          filepath.Join(cfg.Get("LOCAL_DIR"), cfg.Get("NEGOTIATOR_NAME")),
		Bus:          bus,
		Logger:       logger,
		Interval:     cfg.PositiveSeconds("NEGOTIATOR_INTERVAL", &errs),
		MatchTimeout: cfg.PositiveSeconds("MATCH_TIMEOUT", &errs),
		AdLifetime:   cfg.PositiveSeconds("CLASSAD_LIFETIME", &errs),
	}
	nc.Failpoints = failpoints(cfg, nc.Name, &errs)
	nc.MinFreeBytes = int64(cfg.NonNegative("LOG_MIN_FREE_MB", "0 turns the check off", &errs)) << 20
	if len(errs) > 0 {
		return nc, fmt.Errorf("negotiator configuration: %s", strings.Join(errs, "; "))
	}
	return nc, nil
}

// failpoints arms the crash points VMPOOL_FAILPOINTS names for daemon
// (tests only).
func failpoints(cfg *Config, daemon string, errs *[]string) *events.Failpoints {
	fp, err := events.ParseFailpoints(cfg.Get("VMPOOL_FAILPOINTS"), daemon)
	if err != nil {
		*errs = append(*errs, fmt.Sprintf("VMPOOL_FAILPOINTS: %v", err))
	}
	return fp
}

// startdConfig builds a startd's configuration from the knobs, with the
// hypervisor driver VM_TYPE names.
func startdConfig(cfg *Config, name string, bus *events.Bus, logger *slog.Logger) (startd.Config, error) {
	var errs []string
	vmType := strings.ToLower(strings.TrimSpace(cfg.Get("VM_TYPE")))
	// The driver's lines ("vm shut down") carry the startd's keys, as
	// its own do (vm_type the driver adds itself).
	drvLogger := logger
	if drvLogger != nil {
		drvLogger = drvLogger.With("daemon", "startd", "startd", name)
	}
	drv, err := newDriver(vmType, cfg, drvLogger)
	if err != nil {
		errs = append(errs, err.Error())
	}
	sc := startd.Config{
		Name:                  name,
		Dir:                   filepath.Join(cfg.Get("LOCAL_DIR"), name),
		Bus:                   bus,
		Driver:                drv,
		Logger:                logger,
		VMType:                vmType,
		NumSlots:              cfg.Positive("NUM_SLOTS", &errs),
		Networking:            cfg.Bool("VM_NETWORKING", &errs),
		NetworkingTypes:       cfg.List("VM_NETWORKING_TYPE"),
		DefaultNetworkingType: strings.ToLower(cfg.Get("VM_NETWORKING_DEFAULT_TYPE")),
		BridgeInterface:       cfg.Get("VM_NETWORKING_BRIDGE_INTERFACE"),
		HardwareVT:            cfg.Bool("VM_HARDWARE_VT", &errs),
		Start:                 cfg.Get("START"),
		Rank:                  cfg.Get("RANK"),
		Preempt:               cfg.Get("PREEMPT"),
		Kill:                  cfg.Get("KILL"),
		AliveInterval:         cfg.PositiveSeconds("ALIVE_INTERVAL", &errs),
		UpdateInterval:        cfg.PositiveSeconds("UPDATE_INTERVAL", &errs),
	}
	nerrs := len(errs)
	sc.VMMemory = cfg.Int("VM_MEMORY", &errs)
	if sc.VMMemory <= 0 && len(errs) == nerrs {
		errs = append(errs, fmt.Sprintf("VM_MEMORY = %d (from %s): set it to the MiB all VMs of this machine may use, e.g. VM_MEMORY = 1024",
			sc.VMMemory, cfg.Origin("VM_MEMORY")))
	}
	errs = append(errs, policyProblems(cfg)...)
	errs = append(errs, networkingKnobs(cfg, &sc)...)
	sc.VMMaxNumber = cfg.NonNegative("VM_MAX_NUMBER", "0 lets every slot run a VM", &errs)
	sc.MinFreeBytes = int64(cfg.NonNegative("LOG_MIN_FREE_MB", "0 turns the check off", &errs)) << 20
	sc.NobodyUser = cfg.Get("VM_UNIV_NOBODY_USER")
	sc.RecheckInterval = cfg.PositiveSeconds("VM_RECHECK_INTERVAL", &errs)
	sc.WholeDiskCheckpoints = !cfg.Bool("VM_CHECKPOINT_OVERLAYS", &errs)
	sc.AlwaysUseNobody = cfg.Bool("ALWAYS_VM_UNIV_USE_NOBODY", &errs)
	sc.Failpoints = failpoints(cfg, name, &errs)
	if cfg.Origin("EXECUTE") != "<default>" {
		sc.Dir = cfg.Get("EXECUTE")
	}
	if len(errs) > 0 {
		return sc, fmt.Errorf("startd configuration: %s", strings.Join(errs, "; "))
	}
	return sc, nil
}

// networkingKnobs checks VM_NETWORKING_TYPE and its companions, naming
// where each was set (startd.New checks them too, but cannot), and gives
// a machine whose VM_NETWORKING_DEFAULT_TYPE is unset and not offered its
// first type as the default, as networking.md says: a bridge-only machine
// needs no VM_NETWORKING_DEFAULT_TYPE = bridge.
func networkingKnobs(cfg *Config, sc *startd.Config) []string {
	var errs []string
	typesAt := fmt.Sprintf("VM_NETWORKING_TYPE = %s (from %s)", cfg.Get("VM_NETWORKING_TYPE"), cfg.Origin("VM_NETWORKING_TYPE"))
	for _, t := range sc.NetworkingTypes {
		if t != "nat" && t != "bridge" {
			errs = append(errs, fmt.Sprintf("%s: %q is not a networking type of vmpool's: use nat, bridge or both (nat, bridge)", typesAt, t))
		}
	}
	if !sc.Networking || len(sc.NetworkingTypes) == 0 || len(errs) > 0 {
		return errs
	}
	if slices.Contains(sc.NetworkingTypes, "bridge") && strings.TrimSpace(sc.BridgeInterface) == "" {
		errs = append(errs, fmt.Sprintf("%s offers bridge but VM_NETWORKING_BRIDGE_INTERFACE is empty (from %s): name the host bridge guests join, e.g. VM_NETWORKING_BRIDGE_INTERFACE = br0",
			typesAt, cfg.Origin("VM_NETWORKING_BRIDGE_INTERFACE")))
	}
	def := strings.TrimSpace(sc.DefaultNetworkingType)
	switch {
	case slices.Contains(sc.NetworkingTypes, def):
	case cfg.Origin("VM_NETWORKING_DEFAULT_TYPE") == "<default>":
		sc.DefaultNetworkingType = sc.NetworkingTypes[0]
	default:
		errs = append(errs, fmt.Sprintf("VM_NETWORKING_DEFAULT_TYPE = %s (from %s) is not among %s: make it one of them, or leave it unset for the first",
			def, cfg.Origin("VM_NETWORKING_DEFAULT_TYPE"), typesAt))
	}
	return errs
}

// personalPool is a whole pool in one process: an embedded NATS server,
// a schedd, a negotiator and startds. `vmpool up`, the tests and `vmpool
// bench` start one.
type personalPool struct {
	URL      string
	Home     string
	Schedd   *schedd.Schedd
	Startds  []*startd.Startd
	Bus      *events.Bus
	nats     *events.NATSServer
	simStore *events.Store     // the sim startds' logs (SIM_STARTDS), one Pebble
	simBus   *events.Bus       // the sim startds' connection
	simPub   *events.Publisher // the sim startds' events go out through it
	negBus   *events.Bus       // the negotiator's connection
	// Credentials are the pool's identities (none when POOL_AUTH is off).
	Credentials []events.Credentials
	errs        chan error
	coreWG      sync.WaitGroup
	execWG      sync.WaitGroup
	stopCore    context.CancelFunc
	stopExec    context.CancelFunc

	// Metrics serves the daemons' metrics (nil: METRICS_ADDRESS is off);
	// metricsReg is the registry they join (nil then too).
	Metrics    *metricsServer
	metricsReg prometheus.Registerer
}

// startPool starts a personal pool configured by cfg (LOCAL_DIR is its
// home) with n startds, and SIM_STARTDS simulated ones, listening on
// listen. It returns once the schedd and the startds serve.
func startPool(ctx context.Context, cfg *Config, listen string, n int, logger *slog.Logger) (*personalPool, error) {
	home := cfg.Get("LOCAL_DIR")
	var kerrs []string
	simN := cfg.Int("SIM_STARTDS", &kerrs)
	syncAlways := cfg.Bool("JETSTREAM_SYNC_ALWAYS", &kerrs)
	auth := cfg.Bool("POOL_AUTH", &kerrs)
	if simN < 0 {
		kerrs = append(kerrs, fmt.Sprintf("SIM_STARTDS = %d (from %s): want a number of simulated startds", simN, cfg.Origin("SIM_STARTDS")))
	}
	emulated, err := emulatedKinds(cfg)
	if err != nil {
		kerrs = append(kerrs, err.Error())
	}
	if len(kerrs) > 0 {
		return nil, fmt.Errorf("pool configuration: %s", strings.Join(kerrs, "; "))
	}
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, fmt.Errorf("create pool home: %w", err)
	}
	var creds []events.Credentials
	var poolCreds *events.Credentials
	var users []string
	if auth {
		if creds, err = ensureCredentials(cfg, currentUser()); err != nil {
			return nil, err
		}
		poolCreds = findCredentials(creds, events.RolePool, poolIdentity)
		users, _ = poolUsers(cfg, currentUser())
	}
	ns, err := events.StartNATS(events.NATSConfig{Listen: listen, StoreDir: filepath.Join(home, "nats"), Logger: logger, NoSync: !syncAlways, Credentials: creds,
		DaemonConsumers: []string{events.DaemonConsumer(events.RoleSchedd, cfg.Get("SCHEDD_NAME")), events.DaemonConsumer(events.RoleNegotiator, cfg.Get("NEGOTIATOR_NAME"))},
		TLS:             serverTLS(cfg)})
	if err != nil {
		return nil, err
	}
	p := &personalPool{URL: ns.URL(), Home: home, nats: ns, errs: make(chan error, 3+n+simN+len(emulated)), Credentials: creds}
	cfg.Set("VMPOOL_URL", p.URL, "vmpool up")
	fail := func(err error) (*personalPool, error) {
		p.Stop()
		return nil, err
	}
	if addr := metricsAddress(cfg); addr != "" {
		reg := newRegistry()
		p.Metrics, err = startMetrics(addr, reg, logger)
		if err != nil && addr == defaultMetricsAddress && cfg.Origin("METRICS_ADDRESS") == "vmpool up" && errors.Is(err, syscall.EADDRINUSE) {
			// The default port, not one asked for, is taken (another
			// personal pool on this machine): serve on a free one.
			logger.Warn("the default metrics port is in use (another pool on this machine?); serving metrics on a free port instead; METRICS_ADDRESS or --metrics chooses one", "address", addr)
			p.Metrics, err = startMetrics("127.0.0.1:0", reg, logger)
		}
		if err != nil {
			return fail(err)
		}
		p.metricsReg = reg
	}
	if p.Bus, err = connectBus(ctx, p.URL, "vmpool-up", cfg, logger, poolCreds, users); err != nil {
		return fail(err)
	}
	host, _ := os.Hostname()
	sc, err := scheddConfig(cfg, p.Bus, logger, host)
	if err != nil {
		return fail(err)
	}
	sc.Metrics = p.metricsReg
	if p.Schedd, err = schedd.New(sc); err != nil {
		return fail(err)
	}
	// The negotiator has a connection of its own: at full scale (10,000
	// sim startds) a subscription of the connection it shared with the
	// schedd fell behind, and NATS dropped its messages (to come back only
	// after AckWait).
	if p.negBus, err = connectBus(ctx, p.URL, "vmpool-negotiator", cfg, logger, poolCreds, users); err != nil {
		return fail(err)
	}
	nc, err := negotiatorConfig(cfg, p.negBus, logger)
	if err != nil {
		return fail(err)
	}
	nc.Metrics = p.metricsReg
	neg, err := negotiator.New(nc)
	if err != nil {
		return fail(err)
	}
	for i := 1; i <= n; i++ {
		stc, err := startdConfig(cfg, fmt.Sprintf("startd%d", i), p.Bus, logger)
		if err != nil {
			return fail(err)
		}
		stc.Metrics = p.metricsReg
		st, err := startd.New(stc)
		if err != nil {
			return fail(err)
		}
		p.Startds = append(p.Startds, st)
	}
	if err := p.addSimStartds(ctx, cfg, simN, logger, poolCreds, users); err != nil {
		return fail(err)
	}
	if err := p.addEmulatedStartds(cfg, emulated, logger); err != nil {
		return fail(err)
	}
	// Two groups with their own lifetimes: the execute machines stop first
	// (vacating their VMs and reporting it while the schedd still
	// listens), then the schedd and negotiator; NATS stops last.
	coreCtx, stopCore := context.WithCancel(context.WithoutCancel(ctx))
	execCtx, stopExec := context.WithCancel(context.WithoutCancel(ctx))
	p.stopCore, p.stopExec = stopCore, stopExec
	run := func(ctx context.Context, wg *sync.WaitGroup, what string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				p.errs <- fmt.Errorf("%s: %w", what, err)
			}
		}()
	}
	run(coreCtx, &p.coreWG, "schedd", p.Schedd.Run)
	run(coreCtx, &p.coreWG, "negotiator", neg.Run)
	for _, st := range p.Startds {
		run(execCtx, &p.execWG, "startd "+st.Name(), st.Run)
	}
	// The pool is up once its schedd and negotiator serve (a daemon whose
	// log is behind the bus stops before it does, and the start fails).
	for _, ready := range []<-chan struct{}{p.Schedd.Ready(), neg.Ready()} {
		select {
		case <-ready:
		case err := <-p.errs:
			return fail(err)
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	for _, st := range p.Startds {
		select {
		case <-st.Ready():
		case err := <-p.errs:
			return fail(err)
		}
	}
	return p, nil
}

// addSimStartds builds n simulated startds (VM_TYPE sim), named sim1...
// They share one Pebble for their event logs and one execute directory,
// so that thousands fit in one process.
func (p *personalPool) addSimStartds(ctx context.Context, cfg *Config, n int, logger *slog.Logger, creds *events.Credentials, users []string) error {
	if n == 0 {
		return nil
	}
	// A connection of their own: thousands of startds' ads, claims and
	// acknowledgements on the schedd's connection made NATS drop the
	// schedd's messages as a slow consumer's.
	bus, err := connectBus(ctx, p.URL, "vmpool-sim", cfg, logger, creds, users)
	if err != nil {
		return err
	}
	p.simBus = bus
	sims, err := newSimStartds(cfg, bus, filepath.Join(p.Home, "sim-startds"), n, logger)
	if err != nil {
		return err
	}
	p.simPub, p.simStore = sims.pub, sims.store
	p.Startds = append(p.Startds, sims.startds...)
	return nil
}

// simStartds are simulated startds (VM_TYPE sim), named sim1..., that
// share one publisher for their events, so that what thousands of them
// have waiting goes to the stream in batches, one Pebble for their event
// logs (in dir) and one execute directory (SIM_EXECUTE), so that
// thousands fit in one process.
type simStartds struct {
	pub     *events.Publisher
	store   *events.Store
	startds []*startd.Startd
}

func newSimStartds(cfg *Config, bus *events.Bus, dir string, n int, logger *slog.Logger) (*simStartds, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create sim startds' directory: %w", err)
	}
	store, err := events.OpenStore(filepath.Join(dir, "log"), events.LogOptions{Logger: logger})
	if err != nil {
		return nil, err
	}
	s := &simStartds{pub: events.NewPublisher(bus.JS, logger), store: store}
	fail := func(err error) (*simStartds, error) {
		s.close()
		return nil, err
	}
	if err := os.MkdirAll(cfg.Get("SIM_EXECUTE"), 0o755); err != nil {
		return fail(fmt.Errorf("create the sim startds' execute directory (SIM_EXECUTE): %w", err))
	}
	simCfg := &Config{values: maps.Clone(cfg.values), origin: maps.Clone(cfg.origin)}
	simCfg.Set("VM_TYPE", "sim", "SIM_STARTDS")
	for i := 1; i <= n; i++ {
		stc, err := startdConfig(simCfg, fmt.Sprintf("sim%d", i), bus, logger)
		if err != nil {
			return fail(err)
		}
		stc.Dir, stc.Store, stc.Publisher = cfg.Get("SIM_EXECUTE"), store, s.pub
		stc.VerifyInterval = simVerifyInterval(n)
		st, err := startd.New(stc)
		if err != nil {
			return fail(err)
		}
		s.startds = append(s.startds, st)
	}
	return s, nil
}

// close closes the publisher (after the startds have stopped: their
// outboxes flush through it), then the store.
func (s *simStartds) close() error {
	s.pub.Close()
	return s.store.Close()
}

// run runs every sim startd until ctx is done, and returns the first error
// one stopped with.
func (s *simStartds) run(ctx context.Context) error {
	errs := make(chan error, len(s.startds))
	for _, st := range s.startds {
		go func() { errs <- st.Run(ctx) }()
	}
	var first error
	for range s.startds {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// simVerifyInterval is how often each of n sim startds checks that the bus
// still holds its events: every 30 s (the outbox's default) for a hundred
// of them or fewer, less often for more, up to every 10 minutes. Ten
// thousand startds checking every 30 s asked the server 333 times a
// second, 3% of a full-size match benchmark's CPU.
func simVerifyInterval(n int) time.Duration {
	return min(max(30*time.Second, time.Duration(n)*300*time.Millisecond), 10*time.Minute)
}

// Errs reports a daemon that stopped with an error.
func (p *personalPool) Errs() <-chan error { return p.errs }

// Stop shuts the pool down in order: startds (vacating their VMs), then
// the schedd and negotiator, then NATS. It returns the first daemon error.
func (p *personalPool) Stop() error {
	if err := p.Metrics.Stop(); err != nil {
		select {
		case p.errs <- err:
		default:
		}
	}
	p.Metrics = nil
	if p.stopExec != nil {
		p.stopExec()
		p.execWG.Wait()
		p.stopCore()
		p.coreWG.Wait()
	}
	if p.simPub != nil {
		p.simPub.Close() // after the startds: their outboxes flushed through it
		p.simPub = nil
	}
	if p.simStore != nil {
		err := p.simStore.Close()
		p.simStore = nil
		if err != nil {
			select {
			case p.errs <- err:
			default:
			}
		}
	}
	for _, b := range []*events.Bus{p.simBus, p.negBus} {
		if b != nil {
			b.NC.Close()
		}
	}
	if p.Bus != nil {
		p.Bus.NC.Close()
	}
	if p.nats != nil {
		p.nats.Stop()
	}
	select {
	case err := <-p.errs:
		return err
	default:
		return nil
	}
}

// up runs a whole personal pool in one process.
func (c *cli) up(ctx context.Context, args []string) int {
	df := daemonFlags{listen: "127.0.0.1:4222", home: "./pool", startds: 1}
	if code := c.parseDaemonFlags("up", args, &df); code >= 0 {
		return code
	}
	cfg, err := c.loadConfig(&df)
	if err != nil {
		return c.errorf("up", "%v", err)
	}
	logger, err := newLogger(c, df.logLevel)
	if err != nil {
		return c.usageErr("up", "%v", err)
	}
	upDefaults := func(cfg *Config) {
		if cfg.Origin("METRICS_ADDRESS") == "<default>" {
			cfg.Set("METRICS_ADDRESS", defaultMetricsAddress, "vmpool up")
		}
	}
	upDefaults(cfg)
	rc := onHangup(ctx, logger, cfg, func() (*Config, error) {
		next, err := c.loadConfig(&df)
		if err == nil {
			upDefaults(next)
			next.Set("VMPOOL_URL", cfg.Get("VMPOOL_URL"), "vmpool up") // startPool's, where it listens
		}
		return next, err
	})
	p, err := startPool(ctx, cfg, df.listen, df.startds, logger)
	if err != nil {
		return c.errorf("up", "%v", err)
	}
	rc.add(p.Startds...)
	_, port, _ := net.SplitHostPort(hostPort(p.URL))
	fmt.Fprintf(c.stdout, "vmpool is up: NATS at %s, home %s\n", p.URL, p.Home)
	if mine := findCredentials(p.Credentials, events.RoleUser, currentUser()); mine != nil {
		path, err := giveUserCredentials(*mine, p.URL)
		if err != nil {
			fmt.Fprintf(c.stderr, "vmpool up: %v; your credentials are in %s\n", err, credsDir(cfg))
		} else {
			fmt.Fprintf(c.stdout, "  your credentials: %s (other users': %s)\n", path, credsDir(cfg))
		}
	}
	fmt.Fprintf(c.stdout, "  schedd %q, negotiator %q, %d startd(s) of type %s\n", cfg.Get("SCHEDD_NAME"), cfg.Get("NEGOTIATOR_NAME"), df.startds, cfg.Get("VM_TYPE"))
	if sims := cfg.Get("SIM_STARTDS"); sims != "0" {
		fmt.Fprintf(c.stdout, "  and %s simulated startd(s) of type sim (sim1...)\n", sims)
	}
	if kinds, _ := emulatedKinds(cfg); len(kinds) > 0 {
		fmt.Fprintf(c.stdout, "  and emulated startd(s) %s1 driving vmpool's xl/vmrun emulators (guests under QEMU; see docs/xen-vmware.md)\n", strings.Join(kinds, "1, "))
	}
	for _, d := range p.Startds {
		if ok, why := d.VMsAvailable(); !ok {
			fmt.Fprintf(c.stdout, "  WARNING: startd %s runs no VMs (HasVM = false): %s\n", d.Name(), why)
		}
	}
	if p.Metrics != nil {
		fmt.Fprintf(c.stdout, "  metrics: %s   (--metrics off disables them)\n", p.Metrics.URL())
	}
	fmt.Fprintf(c.stdout, "  clients: export VMPOOL_URL=%s   (then: vmpool submit FILE; vmpool q; vmpool status)\n", p.URL)
	if ca := cfg.Get("NATS_TLS_CA"); ca != "" && cfg.Get("NATS_TLS_CERT") != "" {
		fmt.Fprintf(c.stdout, "  TLS: clients also export VMPOOL_TLS_CA=%s\n", ca)
	}
	if port != "4222" {
		fmt.Fprintf(c.stdout, "  (not the default port: clients need VMPOOL_URL or -pool)\n")
	}
	var failure error
	select {
	case <-ctx.Done():
		fmt.Fprintln(c.stdout, "vmpool: shutting down (vacating running VMs)...")
	case failure = <-p.Errs():
	}
	if err := p.Stop(); failure == nil {
		failure = err
	}
	if failure != nil {
		return c.errorf("up", "%v", failure)
	}
	return 0
}

func (c *cli) runSchedd(ctx context.Context, args []string) int {
	return c.runDaemon(ctx, "schedd", args, func(cfg *Config, bus *events.Bus, logger *slog.Logger, reg prometheus.Registerer, rc *reconfig) (func(context.Context) error, error) {
		host, _ := os.Hostname()
		sc, err := scheddConfig(cfg, bus, logger, host)
		if err != nil {
			return nil, err
		}
		sc.Metrics = reg
		sd, err := schedd.New(sc)
		if err != nil {
			return nil, err
		}
		return sd.Run, nil
	})
}

func (c *cli) runNegotiator(ctx context.Context, args []string) int {
	return c.runDaemon(ctx, "negotiator", args, func(cfg *Config, bus *events.Bus, logger *slog.Logger, reg prometheus.Registerer, rc *reconfig) (func(context.Context) error, error) {
		nc, err := negotiatorConfig(cfg, bus, logger)
		if err != nil {
			return nil, err
		}
		nc.Metrics = reg
		n, err := negotiator.New(nc)
		if err != nil {
			return nil, err
		}
		return n.Run, nil
	})
}

func (c *cli) runStartd(ctx context.Context, args []string) int {
	return c.runDaemon(ctx, "startd", args, func(cfg *Config, bus *events.Bus, logger *slog.Logger, reg prometheus.Registerer, rc *reconfig) (func(context.Context) error, error) {
		// --sim-startds N: that many simulated startds instead, in this
		// process (for scale tests with the execute side apart from the
		// central daemons).
		if n, _ := strconv.Atoi(cfg.Get("SIM_STARTDS")); n > 0 {
			sims, err := newSimStartds(cfg, bus, filepath.Join(cfg.Get("LOCAL_DIR"), "sim-startds"), n, logger)
			if err != nil {
				return nil, err
			}
			rc.add(sims.startds...)
			return func(ctx context.Context) error {
				if dir := c.getenv(profileDirEnv); dir != "" {
					profileOnSignals(ctx, dir, "match-startds", logger)
				}
				err := sims.run(ctx)
				if cerr := sims.close(); err == nil {
					err = cerr
				}
				return err
			}, nil
		}
		sc, err := startdConfig(cfg, cfg.Get("STARTD_NAME"), bus, logger)
		if err != nil {
			return nil, err
		}
		sc.Metrics = reg
		st, err := startd.New(sc)
		if err != nil {
			return nil, err
		}
		rc.add(st)
		return st.Run, nil
	})
}

// runDaemon runs one daemon as its own process against an existing pool,
// with a metrics registry of its own when METRICS_ADDRESS (--metrics) is
// set.
func (c *cli) runDaemon(ctx context.Context, role string, args []string, build func(*Config, *events.Bus, *slog.Logger, prometheus.Registerer, *reconfig) (func(context.Context) error, error)) int {
	var df daemonFlags
	if code := c.parseDaemonFlags(role, args, &df); code >= 0 {
		return code
	}
	knob := map[string]string{"schedd": "SCHEDD_NAME", "negotiator": "NEGOTIATOR_NAME", "startd": "STARTD_NAME"}[role]
	if df.name != "" {
		df.sets = append(df.sets, knob+"="+df.name)
	}
	cfg, err := c.loadConfig(&df)
	if err != nil {
		return c.errorf(role, "%v", err)
	}
	logger, err := newLogger(c, df.logLevel)
	if err != nil {
		return c.usageErr(role, "%v", err)
	}
	rc := onHangup(ctx, logger, cfg, func() (*Config, error) { return c.loadConfig(&df) })
	creds, err := daemonCredentials(cfg, df.creds, role, cfg.Get(knob))
	if err != nil {
		return c.errorf(role, "%v", err)
	}
	bus, err := connectBus(ctx, cfg.Get("VMPOOL_URL"), "vmpool-"+role, cfg, logger, creds, nil)
	if errors.Is(err, events.ErrNotAuthorized) {
		// Say which credentials, or where none were found.
		if creds == nil {
			return c.errorf(role, "%v; this %s has no credentials (none at %s): list it in the pool's POOL_DAEMONS, where vmpool up writes its file, or give one with --creds",
				err, role, filepath.Join(credsDir(cfg), events.CredentialsFile(role, cfg.Get(knob))))
		}
		return c.errorf(role, "%v; the pool does not know %s %s's credentials (a file of another pool, or replaced since?): use the one the pool's vmpool up wrote in its CREDS_DIR",
			err, creds.Role, creds.Name)
	}
	if err != nil {
		return c.errorf(role, "%v", err)
	}
	defer bus.NC.Close()
	var reg prometheus.Registerer // nil: no metrics
	var ms *metricsServer
	if addr := metricsAddress(cfg); addr != "" {
		r := newRegistry()
		if ms, err = startMetrics(addr, r, logger); err != nil {
			return c.errorf(role, "%v", err)
		}
		reg = r
	}
	run, err := build(cfg, bus, logger, reg, rc)
	if err == nil {
		err = run(ctx)
	}
	if serr := ms.Stop(); err == nil {
		err = serr
	}
	if err != nil {
		return c.errorf(role, "%v", err)
	}
	return 0
}

// hostPort is a bus URL's HOST:PORT, whatever its scheme (nats://,
// tls://): a TLS pool on the default port was told it was not on it.
func hostPort(url string) string {
	if _, rest, ok := strings.Cut(url, "://"); ok {
		return rest
	}
	return url
}

// busAddr is how a banner shows the bus (condor_q's <addr>): each of its
// URLs' HOST:PORT ("a:4222,b:4222"); only the first lost its nats://.
func busAddr(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		parts[i] = hostPort(strings.TrimSpace(u))
	}
	return strings.Join(parts, ",")
}
