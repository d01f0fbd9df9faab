package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/vmimage"
)

// config prints the effective configuration, or one knob's value
// (condor_config_val NAME); -v says where each value came from, -dump is
// accepted (every knob is printed when none is named), and -markdown
// prints the configuration reference (docs/config.md) from the Knobs
// table. The daemon flags (--config FILE, --set NAME=VALUE, ...) say which
// configuration to show.
func (c *cli) config(ctx context.Context, args []string) int {
	var df daemonFlags
	var names []string
	verbose := false
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		n, _, has, ok := opt(a)
		switch {
		case !ok:
			names = append(names, a)
		case n == "v" || n == "verbose":
			verbose = true
		case n == "dump" || n == "d":
		case n == "markdown":
			writeConfigMarkdown(c.stdout)
			return 0
		case has || n == "h" || n == "help" || i == len(args)-1:
			rest = append(rest, a)
		default: // a daemon flag; its value follows
			rest = append(rest, a, args[i+1])
			i++
		}
	}
	if code := c.parseDaemonFlags("config", rest, &df); code >= 0 {
		return code
	}
	cfg, err := c.loadConfig(&df)
	if err != nil {
		return c.errorf("config", "%v", err)
	}
	if len(names) == 0 {
		for _, k := range Knobs {
			fmt.Fprintf(c.stdout, "%s = %s\n", k.Name, cfg.Get(k.Name))
			if verbose {
				fmt.Fprintf(c.stdout, " # at: %s\n # %s\n", cfg.Origin(k.Name), k.Doc)
			}
		}
		return 0
	}
	code := 0
	for _, n := range names {
		if !cfg.Has(n) {
			fmt.Fprintf(c.stderr, "Not defined: %s\n", strings.ToUpper(n))
			code = 1
			continue
		}
		if verbose {
			fmt.Fprintf(c.stdout, "%s = %s\n # at: %s\n", strings.ToUpper(n), cfg.Get(n), cfg.Origin(n))
			continue
		}
		fmt.Fprintln(c.stdout, cfg.Get(n))
	}
	return code
}

// image writes the example guest images and reads their data sector:
//
//	vmpool image hello FILE            the counter guest: counts its runs, powers off
//	vmpool image count FILE DURATION   the checkpoint guest: counts for DURATION, powers off
//	vmpool image read FILE             what a guest recorded on its disk
func (c *cli) image(ctx context.Context, args []string) int {
	const usage = "usage: vmpool image hello FILE | vmpool image count FILE DURATION | vmpool image read FILE"
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprintln(c.stdout, usage)
		return 0
	}
	if len(args) < 2 || len(args) != 2 && args[0] != "count" {
		return c.usageErr("image", usage)
	}
	path, _ := filepath.Abs(args[1])
	switch args[0] {
	case "hello":
		if err := vmimage.WriteHello(path); err != nil {
			return c.errorf("image", "%v", err)
		}
		fmt.Fprintf(c.stdout, "wrote %s: a boot-sector guest that adds one to the counter on its disk and powers off\n", path)
	case "count":
		if len(args) != 3 {
			return c.usageErr("image", "count: how long the guest counts is missing (e.g. vmpool image count %s 60s); %s", args[1], usage)
		}
		d, err := time.ParseDuration(args[2])
		if err != nil || d <= 0 || d > maxCountGuest {
			return c.usageErr("image", "count: %q is not a positive duration of at most 24h (e.g. 60s, 10m)", args[2])
		}
		if err := vmimage.StampCounter(vmimage.TicksFor(d)).WriteRaw(path, 0); err != nil {
			return c.errorf("image", "%v", err)
		}
		fmt.Fprintf(c.stdout, "wrote %s: a boot-sector guest that stamps its first boot, counts %v of guest time on its disk and powers off;\n"+
			"resumed from a checkpoint it goes on counting and keeps its first boot's stamp (vmpool image read shows both)\n", path, d)
	case "read":
		d, err := vmimage.ReadData(path)
		if err != nil {
			return c.errorf("image", "%v", err)
		}
		fmt.Fprintf(c.stdout, "%s: guest %v, counter %d, boots %d, ticks %d/%d", path, d.Kind, d.Counter, d.Boots, d.Ticks, d.Target)
		if d.Stamped {
			fmt.Fprintf(c.stdout, ", first boot %s", d.Stamp)
		}
		fmt.Fprintln(c.stdout)
	default:
		return c.usageErr("image", usage)
	}
	return 0
}

// maxCountGuest bounds how long the count guest counts (its BIOS tick
// target is 32 bits; a day is far below that and far above any test).
const maxCountGuest = 24 * time.Hour

// nats runs the pool's bus alone: an embedded NATS server with JetStream,
// syncing every write, for pools whose daemons run as separate processes
// (see the Procfile). A production pool uses a NATS cluster instead.
func (c *cli) nats(ctx context.Context, args []string) int {
	df := daemonFlags{listen: "127.0.0.1:4222", home: "./pool"}
	if code := c.parseDaemonFlags("nats", args, &df); code >= 0 {
		return code
	}
	cfg, err := c.loadConfig(&df)
	if err != nil {
		return c.errorf("nats", "%v", err)
	}
	logger, err := newLogger(c, df.logLevel)
	if err != nil {
		return c.usageErr("nats", "%v", err)
	}
	onHangup(ctx, logger, cfg, func() (*Config, error) { return c.loadConfig(&df) })
	var kerrs []string
	auth := cfg.Bool("POOL_AUTH", &kerrs)
	if len(kerrs) > 0 {
		return c.errorf("nats", "%s", strings.Join(kerrs, "; "))
	}
	var creds []events.Credentials
	if auth {
		if creds, err = ensureCredentials(cfg, ""); err != nil {
			return c.errorf("nats", "%v", err)
		}
	}
	if df.printConfig {
		// For a bus vmpool does not run: a nats-server configuration
		// admitting the same identities with the same permissions.
		if !auth {
			return c.errorf("nats", "--print-config writes the pool's identities, but POOL_AUTH is false: there are none")
		}
		if err := events.WriteServerConfig(c.stdout, creds, filepath.Join(cfg.Get("LOCAL_DIR"), "nats")); err != nil {
			return c.errorf("nats", "%v", err)
		}
		return 0
	}
	if df.init {
		// A bus vmpool does not run: create the pool's stream and buckets
		// there (with the pool's identity), as vmpool nats does on its own.
		if df.pool == "" {
			return c.usageErr("nats", "--init creates the pool's stream and buckets on a NATS server vmpool does not run: name it with --pool URL")
		}
		users, _ := poolUsers(cfg, "")
		bctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		bus, err := connectBus(bctx, df.pool, "vmpool-nats-init", cfg, logger, findCredentials(creds, events.RolePool, poolIdentity), users)
		if err != nil {
			return c.errorf("nats", "%v", err)
		}
		bus.NC.Close()
		fmt.Fprintf(c.stdout, "the pool's stream and buckets are ready at %s (NATS_REPLICAS = %s)\n", df.pool, cfg.Get("NATS_REPLICAS"))
		return 0
	}
	ncfg := events.NATSConfig{Listen: df.listen, StoreDir: filepath.Join(cfg.Get("LOCAL_DIR"), "nats"), Logger: logger, Credentials: creds,
		TLS: serverTLS(cfg)}
	if name := cfg.Get("NATS_CLUSTER"); name != "" {
		ncfg.Cluster = &events.ClusterConfig{Name: name, ServerName: cfg.Get("NATS_SERVER_NAME"), Listen: cfg.Get("NATS_CLUSTER_LISTEN"),
			Routes: cfg.List("NATS_ROUTES")}
		if ncfg.Cluster.ServerName == "" {
			return c.usageErr("nats", "a cluster member needs --server-name (NATS_SERVER_NAME), unique in the cluster")
		}
		if ncfg.Cluster.Listen == "" {
			return c.usageErr("nats", "a cluster member needs --cluster-listen HOST:PORT (NATS_CLUSTER_LISTEN) for the other servers' routes")
		}
	}
	ns, err := events.StartNATS(ncfg)
	if err != nil {
		return c.errorf("nats", "%v", err)
	}
	defer ns.Stop()
	fmt.Fprintf(c.stdout, "NATS with JetStream at %s (store %s)\n", ns.URL(), filepath.Join(cfg.Get("LOCAL_DIR"), "nats"))
	if auth {
		fmt.Fprintf(c.stdout, "  credentials of the users (POOL_USERS, QUEUE_SUPER_USERS) and daemons (POOL_DAEMONS) are in %s\n", credsDir(cfg))
	}
	// Create the stream and buckets (a daemon with credentials of its own
	// may only bind them). In a cluster that works once the servers have
	// elected a meta leader (a request sent before is not answered) and
	// enough are up to place NATS_REPLICAS copies: keep trying until then.
	if ncfg.Cluster != nil {
		if !ns.JetStreamIsCurrent() {
			logger.Info("waiting for the JetStream cluster's meta leader (a majority of its servers must be up and reach one another)")
		}
		start := time.Now()
		if ns.WaitJetStream(ctx) != nil {
			return 0
		}
		logger.Info("the JetStream cluster has a meta leader", "took", time.Since(start).Round(time.Millisecond))
	}
	users, _ := poolUsers(cfg, "")
	for attempt := 0; ; attempt++ {
		bctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		bus, err := connectBus(bctx, ns.URL(), "vmpool-nats", cfg, logger, findCredentials(creds, events.RolePool, poolIdentity), users)
		cancel()
		if err == nil {
			bus.NC.Close()
			fmt.Fprintf(c.stdout, "  the pool's stream and buckets are ready (NATS_REPLICAS = %s)\n", cfg.Get("NATS_REPLICAS"))
			break
		}
		if ctx.Err() != nil {
			return 0
		}
		if attempt%5 == 0 {
			logger.Info("waiting for the JetStream cluster to create the pool's stream", "err", err)
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return 0
		}
	}
	<-ctx.Done()
	return 0
}
