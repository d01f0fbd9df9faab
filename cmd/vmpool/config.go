package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/schedd/submit"
	"github.com/vmpool/vmpool/startd"
)

//go:generate sh -c "go run . config -markdown > ../../docs/config.md"

// Knob is one configuration setting, named as HTCondor names it. This
// table is the one place knobs are defined; `vmpool config` prints it and
// docs/config.md is generated from it (`vmpool config -markdown`, or
// `go generate ./cmd/vmpool`; TestConfigMarkdownCurrent fails when the
// file is stale).
type Knob struct {
	Name    string
	Default string
	Daemon  string // who reads it: startd, schedd, negotiator, pool, client
	Doc     string
}

// Knobs lists every setting vmpool reads.
var Knobs = []Knob{
	{"VM_TYPE", "kvm", "startd", "The vm_type this execute machine runs: kvm, xen or vmware (one per startd)."},
	{"VM_MEMORY", "1024", "startd", "MiB of memory all VMs of the machine may use together; advertised as VM_Memory (what is left)."},
	{"VM_MAX_NUMBER", "$(NUM_SLOTS)", "startd", "How many VMs may run at once; VM_AvailNum advertises what is left."},
	{"NUM_SLOTS", "1", "startd", "Slots of the machine; each is a machine ad named slotN@STARTD_NAME."},
	{"VM_NETWORKING", "false", "startd", "Whether guests may have a network; advertised as VM_Networking."},
	{"VM_NETWORKING_TYPE", "nat", "startd", "Networking offered to guests: nat, bridge, or both (comma separated); advertised as VM_Networking_Types."},
	{"VM_NETWORKING_DEFAULT_TYPE", "nat", "startd", "Networking a job gets when it sets vm_networking but no vm_networking_type; left unset on a machine that does not offer nat, the first of VM_NETWORKING_TYPE."},
	{"VM_NETWORKING_BRIDGE_INTERFACE", "", "startd", "Host bridge that bridged guests' tap devices join."},
	{"VM_HARDWARE_VT", "false", "startd", "Advertise VM_HardwareVT (hardware virtualisation for xen_kernel = vmx)."},
	{"VM_STATUS_INTERVAL", "60", "startd", "Seconds between status checks of each VM, besides the hypervisor's power-off event; a kvm guest found halted (every vCPU stopped with interrupts off, as /sbin/halt leaves it) at two checks in a row is taken for powered off."},
	{"VM_CHECKPOINT_OVERLAYS", "true", "startd", "Whether the kvm driver keeps a vm_checkpoint job's disk writes in qcow2 overlays over its raw or qcow2 disks, so that a checkpoint ships only the changed blocks (merged back into the disks when the guest powers off); false copies the whole disks into every checkpoint."},
	{"VM_RECHECK_INTERVAL", "600", "startd", "Seconds VMs stay disabled (HasVM = false, VMOfflineReason saying why) after one failed to start for a reason of the machine's, or the hypervisor or execute directory was unusable, before the startd checks again; also how often it checks again while it cannot give a type of VM_NETWORKING_TYPE (a missing bridge), advertising the type once it can."},
	{"VM_SOFT_SUSPEND", "false", "startd", "Accepted for compatibility; vmpool does not suspend VMs."},
	{"START", "true", "startd", "ClassAd expression: the slot accepts a job when it is true with the job as TARGET. A SIGHUP applies a change at once (condor_reconfig)."},
	{"RANK", "0", "startd", "ClassAd expression: the slot's preference among jobs. A SIGHUP applies a change at once (condor_reconfig)."},
	{"PREEMPT", "false", "startd", "ClassAd expression, evaluated every UPDATE_INTERVAL for each running VM (MY = slot, TARGET = job): true vacates the VM, checkpointing it when the job set vm_checkpoint. A SIGHUP applies a change at once (condor_reconfig)."},
	{"KILL", "false", "startd", "ClassAd expression, evaluated every UPDATE_INTERVAL for each VM being vacated (its checkpoint being saved, or its guest given 10 seconds to power off; MY = slot, TARGET = job): true kills the VM at once, and the job goes back to the queue without a checkpoint. A SIGHUP applies a change at once (condor_reconfig)."},
	{"ALIVE_INTERVAL", "60", "startd", "Seconds between a startd's keepalives to the schedds of its claims, or a third of the shortest JobLeaseDuration of its claims if that is shorter; a schedd requeues a job whose startd was silent for the job's JobLeaseDuration."},
	{"UPDATE_INTERVAL", "10", "startd", "Seconds between refreshes of all the machine ads in the collector; in between, a change puts the ads it changed, and only those. A claim changes VM_Memory, VM_AvailNum and VmpoolClaims on every slot of its machine: the other slots show it at the refresh, or, the unclaimed ones, at once when VMs end, when none is left, or when a claim is refused on their stale figures. A claimed slot's ad waits up to a second for its VM to start, so that the claim and the start go out as one put."},
	{"STARTD_NAME", "startd1", "startd", "Name of the startd (a daemon name: letters, digits, '_' and '-')."},
	{"EXECUTE", "$(LOCAL_DIR)/$(STARTD_NAME)", "startd", "Where a startd keeps its event log and the VMs' scratch directories."},
	{"QEMU", "qemu-system-x86_64", "startd", "The QEMU binary the kvm driver runs."},
	{"QEMU_ACCEL", "auto", "startd", "The kvm driver's accelerator: kvm, tcg, or auto (kvm when /dev/kvm opens and is hardware virtualisation, tcg otherwise; a PVM /dev/kvm, which boots only PVM guest kernels, counts as tcg). The machine ad's VM_accel says which one VMs get, VM_accel_reason why."},
	{"VM_UNIV_NOBODY_USER", "nobody", "startd", "The unprivileged account a startd running as root runs a VM as when the job's owner has no account on the machine (or is root). Accounts are looked up once a minute at most, as HTCondor's passwd cache does: an account added or removed is seen within the minute."},
	{"ALWAYS_VM_UNIV_USE_NOBODY", "false", "startd", "Run every VM as VM_UNIV_NOBODY_USER, even when the job's owner has an account on the machine."},
	{"XL", "xl", "startd", "The xl tool the xen driver runs: Xen's, or a link named xl to vmpool for its emulator (vmpool up --emulate makes one)."},
	{"XEN_BOOTLOADER", "", "startd", "Bootloader of xen_kernel = included domains, e.g. pygrub; a xen startd without one advertises no VM (as HTCondor's vm-gahp)."},
	{"VMRUN", "vmrun", "startd", "The vmrun tool the vmware driver runs: VMware's, or a link named vmrun to vmpool for its emulator (vmpool up --emulate makes one)."},
	{"EMULATE", "", "pool", "vm_types vmpool up adds one emulated startd of (xen1, vmware1): xen, vmware or both; their xl and vmrun are vmpool's emulators, which run guests under QEMU (also --emulate)."},
	{"SIM_STARTDS", "0", "pool", "Simulated startds (VM_TYPE sim, named sim1...) vmpool up runs besides the real ones, or vmpool startd runs instead of its one, for scale tests; their logs share one Pebble (also --sim-startds)."},
	{"SIM_EXECUTE", "$(LOCAL_DIR)/sim-startds", "pool", "Where the simulated startds keep their VMs' scratch directories (each startd in a directory of its own below execute/); vmpool bench puts them on a tmpfs when /dev/shm is one."},
	{"SCHEDD_NAME", "schedd", "schedd", "Name of the schedd (a daemon name)."},
	{"QUEUE_SUPER_USERS", "root", "schedd", "Users who may act on every job (comma separated)."},
	{"MAX_JOBS_SUBMITTED", "0", "schedd", "Largest number of jobs in the queue (0: no limit)."},
	{"LOG_MIN_FREE_MB", "64", "pool", "Free disk (MiB) each daemon keeps for its event log: below it the daemon refuses commands with a clear error (and applies nothing) until space is freed."},
	{"QUEUE_SNAPSHOT_EVENTS", "10000", "schedd", "Log records after which the schedd writes a snapshot of its queue beside its log (and at least as many as the queue has jobs, since a snapshot costs in proportion to the queue; also at a clean shutdown), so that a restart replays only what came after it; 0 never snapshots. Replay from zero gives the same queue (vmpool replay --check)."},
	{"MAX_HISTORY_JOBS", "20000", "schedd", "Jobs that left the queue (completed or removed) the schedd keeps in its history (vmpool history, and in memory and in its snapshot): every PERIODIC_EXPR_INTERVAL the oldest beyond it are forgotten, as HTCondor's MAX_HISTORY_LOG and MAX_HISTORY_ROTATIONS bound its history files; their events stay in the event log (vmpool replay --job). 0: no limit."},
	{"PERIODIC_EXPR_INTERVAL", "60", "schedd", "Seconds between evaluations of the jobs' periodic_hold, periodic_release and periodic_remove expressions."},
	{"SPOOL", "$(LOCAL_DIR)/$(SCHEDD_NAME)", "schedd", "Where the schedd keeps its event log."},
	{"NEGOTIATOR_NAME", "negotiator", "negotiator", "Name of the negotiator."},
	{"NEGOTIATOR_INTERVAL", "60", "negotiator", "Most seconds between negotiation cycles; cycles also run whenever a job becomes idle or a slot frees up."},
	{"MATCH_TIMEOUT", "120", "negotiator", "Seconds a match reserves its slot before the schedd claims it, and the longest a slot whose claim was refused waits for a newer ad of it before it is matched again."},
	{"CLASSAD_LIFETIME", "60", "pool", "Seconds a daemon ad lives in the collector without a refresh."},
	{"LOCAL_DIR", "./pool", "pool", "The pool's home: event logs, JetStream storage, scratch directories."},
	{"JETSTREAM_SYNC_ALWAYS", "true", "pool", "Whether vmpool up's embedded NATS server fsyncs every JetStream write before acknowledging it; false is faster, but an acknowledged event can be lost in a power loss (for benchmarks: vmpool bench --nats-nosync)."},
	{"POOL_AUTH", "true", "pool", "Whether the pool's NATS server admits only holders of the pool's credentials (LOCAL_DIR/creds), each with its role's subjects."},
	{"POOL_USERS", "", "pool", "Users (besides the one running vmpool up and QUEUE_SUPER_USERS) who get credentials and a file bucket."},
	{"CREDS_DIR", "$(LOCAL_DIR)/creds", "pool", "Where the pool's credentials live; every server of a NATS cluster, and every host of its daemons, needs the same ones."},
	{"NATS_REPLICAS", "1", "pool", "Copies JetStream keeps of the pool's stream and buckets: 1 on one machine, 3 on a cluster of three servers (survives the loss of one)."},
	{"NATS_TLS_CERT", "", "pool", "PEM certificate of the pool's NATS server (vmpool up, vmpool nats): clients then connect with TLS (tls://). Identities stay the nkeys of CREDS_DIR."},
	{"NATS_TLS_KEY", "", "pool", "PEM private key of NATS_TLS_CERT."},
	{"NATS_TLS_CA", "", "pool", "PEM CA certificate that daemons trust the NATS server's certificate by (empty: the system's roots); users set $VMPOOL_TLS_CA."},
	{"NATS_CLUSTER", "", "pool", "vmpool nats: the NATS cluster this server joins (the same name on every server); empty for a lone server."},
	{"NATS_SERVER_NAME", "", "pool", "vmpool nats: this server's name, unique in the cluster."},
	{"NATS_CLUSTER_LISTEN", "", "pool", "vmpool nats: host:port the other servers' routes connect to."},
	{"NATS_ROUTES", "", "pool", "vmpool nats: the other servers' route URLs (nats://host:port), comma separated."},
	{"POOL_DAEMONS", "", "pool", "Daemons that run as separate processes and get credentials of their own: ROLE-NAME entries, e.g. startd-node7, schedd-submit2."},
	{"SUBMIT_PATHS", "default", "client", "Which files a submit description may name (transfer_input_files, vm_disk, xen_*, vmware_dir): default (absolute paths allowed, as in HTCondor; relative ones may not leave the submit directory through .. or a symbolic link), confined (every path inside the submit directory) or unrestricted; from $VMPOOL_SUBMIT_PATHS."},
	{"VMPOOL_URL", "nats://127.0.0.1:4222", "client", "Where clients and daemons find the pool's NATS server(s) (also --pool / -pool)."},
	{"METRICS_ADDRESS", "", "pool", "host:port where the daemons of a process serve Prometheus metrics at /metrics (also --metrics); off disables them. vmpool up serves them at 127.0.0.1:9464 unless this is set (on a free port, with a warning, when another process holds 9464); a daemon run alone (vmpool schedd, negotiator, startd) only when it is set."},
	{"VMPOOL_FAILPOINTS", "", "pool", "For fault-injection tests only: crash points to arm, name[@N],... (loop-after-append, outbox-after-publish, consumer-before-ack, userlog-after-write, userlog-after-done, vm-after-start, vm-after-poweroff); also $VMPOOL_FAILPOINTS."},
}

// knobSections orders and titles the configuration reference by who reads
// the knobs.
var knobSections = []struct{ daemon, title string }{
	{"pool", "The pool: vmpool up, vmpool nats and every daemon"},
	{"client", "Clients (the user tools)"},
	{"schedd", "schedd (the job queue)"},
	{"negotiator", "negotiator (matchmaking)"},
	{"startd", "startd (execute machines)"},
}

// writeConfigMarkdown prints the configuration reference, docs/config.md,
// from the Knobs table.
func writeConfigMarkdown(w io.Writer) {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	// "^" stands for a backquote, which a raw string cannot hold.
	fmt.Fprint(w, strings.ReplaceAll(`# Configuration reference

<!-- Generated from the Knobs table in cmd/vmpool/config.go by
     "vmpool config -markdown > docs/config.md" (or "go generate ./cmd/vmpool").
     Do not edit by hand: TestConfigMarkdownCurrent fails when this file is stale. -->

vmpool uses HTCondor's knob names. A daemon command (vmpool up, nats, schedd,
negotiator, startd, config) reads them, later ones winning, from:

1. the defaults below;
2. ^--config FILE^ (repeatable, later files winning; a directory, as HTCondor's
   LOCAL_CONFIG_DIR, has its files read in name order): ^NAME = value^ lines, ^#^ comments, a final ^\^ continues a
   line, names are case-insensitive and values may use ^$(NAME)^ (a knob's own,
   as in ^START = $(START) && ...^, is the value it had before the line),
   ^$(NAME:default)^, ^$ENV(VARIABLE)^ and the predefined ^$(DETECTED_CPUS)^ and
   ^$(DETECTED_MEMORY)^ (MiB); a whole-number knob may be an expression
   (^VM_MEMORY = $(DETECTED_MEMORY) / 2^); ^include : FILE^ reads another file
   (^use^, ^if^ and ^@=^ are not supported);
3. the environment: ^$VMPOOL_URL^, ^$VMPOOL_FAILPOINTS^, ^$VMPOOL_SUBMIT_PATHS^, ^$VMPOOL_TLS_CA^;
4. the command line: ^--set NAME=VALUE^ and the flags that stand for knobs
   (^--home^ LOCAL_DIR, ^--pool^ VMPOOL_URL, ^--name^, ^--vm-memory^, ^--vm-type^,
   ^--metrics^ METRICS_ADDRESS, ...).

^vmpool config^ (condor_config_val) prints the effective value of every knob, or
of the knobs named; ^-v^ adds where each value came from and what it does.
`, "^", "`"))
	printed := map[string]bool{}
	section := func(daemon, title string) {
		var rows []Knob
		for _, k := range Knobs {
			if k.Daemon == daemon {
				rows = append(rows, k)
			}
		}
		if len(rows) == 0 {
			return
		}
		printed[daemon] = true
		fmt.Fprintf(w, "\n## %s\n\n| knob | default | meaning |\n|---|---|---|\n", title)
		for _, k := range rows {
			def := "–"
			if k.Default != "" {
				def = "`" + cell(k.Default) + "`"
			}
			fmt.Fprintf(w, "| `%s` | %s | %s |\n", k.Name, def, cell(k.Doc))
		}
	}
	for _, s := range knobSections {
		section(s.daemon, s.title)
	}
	for _, k := range Knobs {
		if !printed[k.Daemon] {
			section(k.Daemon, k.Daemon)
		}
	}
}

// Config is the effective configuration: knob values with where each came
// from.
type Config struct {
	values map[string]string
	origin map[string]string
	getenv func(string) string // what $ENV(NAME) reads
}

// NewConfig returns the defaults.
func NewConfig() *Config {
	c := &Config{values: map[string]string{}, origin: map[string]string{}, getenv: os.Getenv}
	for _, k := range Knobs {
		c.values[k.Name] = k.Default
		c.origin[k.Name] = "<default>"
	}
	// HTCondor's predefined macros of the machine, for values such as
	// VM_MEMORY = $(DETECTED_MEMORY) / 2.
	c.Set("DETECTED_CPUS", strconv.Itoa(runtime.NumCPU()), detected)
	c.Set("DETECTED_MEMORY", strconv.Itoa(startd.HostMemoryMiB()), detected)
	return c
}

// detected is the origin of the predefined macros (DETECTED_CPUS, ...).
const detected = "<detected>"

// Set sets a knob from origin (e.g. "--vm-memory"). As in HTCondor, a
// value's references to the knob itself ("START = $(START) && ...") stand
// for the value it had before (its default if nothing set it).
func (c *Config) Set(name, value, origin string) {
	name = strings.ToUpper(name)
	value = macroRE.ReplaceAllStringFunc(value, func(m string) string {
		sub := macroRE.FindStringSubmatch(m)
		if sub[1] != "" || strings.ToUpper(sub[2]) != name {
			return m
		}
		if v := c.values[name]; v != "" || sub[3] == "" {
			return v
		}
		return sub[4] // $(NAME:default) with nothing set before
	})
	c.values[name] = value
	c.origin[name] = origin
}

// Origin says where a knob's value came from.
func (c *Config) Origin(name string) string { return c.origin[strings.ToUpper(name)] }

// macroRE matches HTCondor's macro references: $(NAME), $(NAME:default),
// $ENV(NAME) and $ENV(NAME:default). Submatches: 1 "ENV" or "", 2 the
// name, 3 ":" when a default is given, 4 the default.
var macroRE = regexp.MustCompile(`\$(ENV)?\(([A-Za-z0-9_.]+)(:([^)]*))?\)`)

// Get returns a knob's value with $(NAME) references expanded.
func (c *Config) Get(name string) string {
	return c.expand(c.values[strings.ToUpper(name)], 0)
}

func (c *Config) expand(v string, depth int) string {
	if depth > 16 {
		return v
	}
	return macroRE.ReplaceAllStringFunc(v, func(m string) string {
		sub := macroRE.FindStringSubmatch(m)
		var val string
		if sub[1] != "" {
			val = c.getenv(sub[2])
		} else {
			val = c.expand(c.values[strings.ToUpper(sub[2])], depth+1)
		}
		if val == "" && sub[3] != "" {
			return c.expand(sub[4], depth+1)
		}
		return val
	})
}

// Cycles reports knobs whose $(NAME) references lead back to themselves
// (A = $(B), B = $(A)): such a value never expands (it was cut off after
// 16 rounds and read as its literal text, a confusing error about
// another knob). A knob's reference to itself in its own definition is
// not one (Set has already put the earlier value in its place).
func (c *Config) Cycles() error {
	refs := func(name string) []string {
		var out []string
		for _, m := range macroRE.FindAllStringSubmatch(c.values[name], -1) {
			if m[1] == "" {
				out = append(out, strings.ToUpper(m[2]))
			}
		}
		return out
	}
	const (
		unseen = iota
		visiting
		done
	)
	state := map[string]int{}
	var path []string
	var found []string
	var visit func(n string)
	visit = func(n string) {
		switch state[n] {
		case visiting:
			i := slices.Index(path, n)
			found = append(found, strings.Join(append(slices.Clone(path[i:]), n), " -> "))
			return
		case done:
			return
		}
		state[n] = visiting
		path = append(path, n)
		for _, r := range refs(n) {
			visit(r)
		}
		path = path[:len(path)-1]
		state[n] = done
	}
	for _, n := range c.Names() {
		visit(n)
	}
	if len(found) == 0 {
		return nil
	}
	var msgs []string
	for _, f := range found {
		first, _, _ := strings.Cut(f, " -> ")
		msgs = append(msgs, fmt.Sprintf("%s (from %s): its $(...) references go round in a circle (%s), so it has no value; "+
			"write a value in one of them", first, c.Origin(first), f))
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Has reports whether the knob is known or was set.
func (c *Config) Has(name string) bool { _, ok := c.values[strings.ToUpper(name)]; return ok }

// Int reads an integer knob: a whole number or, as in HTCondor, a
// ClassAd expression giving one ($(DETECTED_MEMORY) / 2); problems are
// appended to errs.
func (c *Config) Int(name string, errs *[]string) int {
	v := strings.TrimSpace(c.Get(name))
	n, err := strconv.Atoi(v)
	if err != nil {
		if e, perr := classad.ParseExpr(v); perr == nil && v != "" {
			if i, ok := e.Eval(nil, nil).IntValue(); ok && int64(int(i)) == i {
				return int(i)
			}
		}
		*errs = append(*errs, fmt.Sprintf("%s = %q (from %s): not a whole number%s", name, v, c.Origin(name), commentHint(v)))
	}
	return n
}

// NonNegative reads an integer knob that may not be below 0 (zero says
// what zeroMeans): a negative one was taken silently as if 0.
func (c *Config) NonNegative(name, zeroMeans string, errs *[]string) int {
	n0 := len(*errs)
	n := c.Int(name, errs)
	if n < 0 && len(*errs) == n0 {
		*errs = append(*errs, fmt.Sprintf("%s = %d (from %s): may not be negative (%s)", name, n, c.Origin(name), zeroMeans))
		n = 0
	}
	return n
}

// commentHint explains a value with a # in it that did not read: as in
// HTCondor, # starts a comment only at the start of a line.
func commentHint(v string) string {
	if !strings.Contains(v, "#") {
		return ""
	}
	return " (a # comment must be on a line of its own: after a value it is part of the value)"
}

// Positive reads an integer knob that must be at least 1: a count or a
// period, for which 0 or less would otherwise be taken silently as the
// daemon's default.
func (c *Config) Positive(name string, errs *[]string) int {
	before := len(*errs)
	n := c.Int(name, errs)
	if len(*errs) == before && n < 1 {
		*errs = append(*errs, fmt.Sprintf("%s = %d (from %s): want a whole number of at least 1", name, n, c.Origin(name)))
	}
	return n
}

// PositiveSeconds reads a period in seconds of at least one second.
func (c *Config) PositiveSeconds(name string, errs *[]string) time.Duration {
	return time.Duration(c.Positive(name, errs)) * time.Second
}

// Bool reads a boolean knob (true/false/yes/no/1/0).
func (c *Config) Bool(name string, errs *[]string) bool {
	v := strings.ToLower(strings.TrimSpace(c.Get(name)))
	switch v {
	case "true", "yes", "1", "t", "y":
		return true
	case "false", "no", "0", "f", "n", "":
		return false
	}
	*errs = append(*errs, fmt.Sprintf("%s = %q (from %s): want true or false%s", name, v, c.Origin(name), commentHint(v)))
	return false
}

// Seconds reads a duration knob given in seconds.
func (c *Config) Seconds(name string, errs *[]string) time.Duration {
	return time.Duration(c.Int(name, errs)) * time.Second
}

// List reads a comma/space separated knob.
func (c *Config) List(name string) []string {
	out := c.ListAsWritten(name)
	for i, f := range out {
		out[i] = strings.ToLower(f)
	}
	return out
}

// ListAsWritten is a knob's value as a list, as List, but as written: daemon names
// are case-sensitive (a startd named EXEC01 has subjects of its own).
func (c *Config) ListAsWritten(name string) []string {
	return strings.FieldsFunc(c.Get(name), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// notRead are HTCondor's vm universe knobs vmpool has no use for, with
// why: Unknown says so instead of calling them unknown names.
var notRead = func() map[string]string {
	m := map[string]string{}
	for reason, knobs := range map[string][]string{
		"there is no vm-gahp (the startd drives QEMU, xl and vmrun itself)":                 {"VM_GAHP_SERVER", "VM_GAHP_LOG", "VM_GAHP_REQ_TIMEOUT", "VM_STATUS_MAX_ERROR"},
		"there is no libvirt (the kvm driver builds QEMU's command line from the job)":      {"LIBVIRT_XML_SCRIPT", "LIBVIRT_XML_SCRIPT_ARGS"},
		"there is no condor_vm_vmware script (the vmware driver runs vmrun, VMRUN, itself)": {"VMWARE_PERL", "VMWARE_SCRIPT"},
		"the vmware driver sets ethernet0.connectionType to nat or bridged from the job's networking type (VM_NETWORKING_TYPE) and adds no local settings to the .vmx": {
			"VMWARE_NETWORKING_TYPE", "VMWARE_NAT_NETWORKING_TYPE", "VMWARE_BRIDGE_NETWORKING_TYPE", "VMWARE_LOCAL_SETTINGS_FILE"},
		"vmpool does not suspend VMs (PREEMPT vacates them)":                                    {"SUSPEND", "CONTINUE", "WANT_SUSPEND"},
		"a vacate is always graceful (a vm_checkpoint job is checkpointed); KILL makes it hard": {"WANT_VACATE"},
	} {
		for _, k := range knobs {
			m[k] = reason
		}
	}
	return m
}()

// Unknown says, for each name set that is no vmpool knob and that no
// value references as $(NAME) (a macro of the user's own), that it does
// nothing, with the knob it is likely a misspelling of: HTCondor's
// configuration takes any name, so VM_MEMROY = 2048 went unnoticed.
func (c *Config) Unknown() []string {
	known := map[string]bool{}
	for _, k := range Knobs {
		known[k.Name] = true
	}
	used := map[string]bool{}
	for _, v := range c.values {
		for _, m := range macroRE.FindAllStringSubmatch(v, -1) {
			if m[1] == "" {
				used[strings.ToUpper(m[2])] = true
			}
		}
	}
	var out []string
	for _, n := range c.Names() {
		if known[n] || used[n] || c.origin[n] == detected {
			continue
		}
		if _, base, ok := strings.Cut(n, "."); ok && known[base] {
			out = append(out, fmt.Sprintf("%s (from %s): vmpool has no SUBSYS.KNOB or LOCALNAME.KNOB settings; write %s = %s "+
				"(each daemon reads only its own knobs; give a machine values of its own in a file of its own)", n, c.Origin(n), base, c.values[n]))
			continue
		}
		if why, ok := notRead[n]; ok {
			out = append(out, fmt.Sprintf("%s (from %s) is HTCondor's, but vmpool does not read it: %s", n, c.Origin(n), why))
			continue
		}
		msg := fmt.Sprintf("%s (from %s) is not a vmpool knob and no $(%s) uses it: it does nothing", n, c.Origin(n), n)
		best, bestD := "", 3
		for _, k := range Knobs {
			if d := submit.EditDistance(n, k.Name, bestD); d < bestD {
				best, bestD = k.Name, d
			}
		}
		if best != "" {
			msg += "; did you mean " + best + "?"
		}
		out = append(out, msg)
	}
	return out
}

// Names lists every knob set or known, sorted.
func (c *Config) Names() []string {
	out := make([]string, 0, len(c.values))
	for n := range c.values {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// configDirSkip matches the names of a configuration directory's files
// that are not read: HTCondor's LOCAL_CONFIG_DIR_EXCLUDE_REGEXP default
// (hidden files, editor backups, package managers' leftovers).
var configDirSkip = regexp.MustCompile(`^((\..*)|(.*~)|(#.*)|(.*\.rpmsave)|(.*\.rpmnew))$`)

// LoadFile reads an HTCondor-style configuration file: `NAME = value`
// lines, `#` comments, `\` continuations; names are case-insensitive and
// values may reference other knobs as $(NAME). Every problem is reported
// with the file and line. A directory (HTCondor's LOCAL_CONFIG_DIR) has
// its files read in name order, but for those configDirSkip matches.
//
// `include : FILE` and `include ifexist : FILE` read FILE (relative to
// the including file's directory) there; HTCondor's other statements
// (use, include command, if/elif/else/endif, NAME @= values) are errors
// saying vmpool does not have them.
func (c *Config) LoadFile(path string) error { return c.loadFile(path, 0) }

// maxIncludeDepth bounds nested includes (an include loop ends there).
const maxIncludeDepth = 10

// configError is a configuration file's problems, each with its file and
// line; an included file's join the including one's.
type configError struct{ problems []string }

func (e *configError) Error() string {
	return "configuration errors:\n  " + strings.Join(e.problems, "\n  ")
}

// statement handles a line that is one of HTCondor's configuration
// statements rather than a setting, returning whether it was one, the
// problem with it ("" for none) and an included file's own problems.
func (c *Config) statement(path, text string, depth int) (ok bool, problem string, included []string) {
	word, _, _ := strings.Cut(strings.ToLower(text), " ")
	word, _, _ = strings.Cut(word, ":")
	word = strings.TrimSpace(word)
	if name, _, ok := strings.Cut(text, "="); ok && !strings.ContainsAny(strings.TrimSpace(name), " \t:") {
		return false, "", nil // NAME = value, even for a knob named IF or USE
	}
	switch word {
	case "include":
		head, file, ok := strings.Cut(text, ":")
		mode := strings.ToLower(strings.Join(strings.Fields(head)[1:], " "))
		file = strings.TrimSpace(file)
		switch {
		case !ok || file == "" || mode != "" && mode != "ifexist" && !strings.HasPrefix(mode, "command"):
			return true, "write include : FILE or include ifexist : FILE", nil
		case strings.HasPrefix(mode, "command"):
			return true, "vmpool does not run commands for its configuration; write their output to a file and include it", nil
		case depth >= maxIncludeDepth:
			return true, fmt.Sprintf("includes nest deeper than %d (an include loop?)", maxIncludeDepth), nil
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(filepath.Dir(path), file)
		}
		if _, err := os.Stat(file); err != nil && mode == "ifexist" && errors.Is(err, os.ErrNotExist) {
			return true, "", nil
		}
		err := c.loadFile(file, depth+1)
		var ce *configError
		if errors.As(err, &ce) {
			return true, "", ce.problems
		}
		if err != nil {
			return true, err.Error(), nil
		}
		return true, "", nil
	case "use":
		return true, "vmpool has no metaknobs (use); set the knobs it stands for, e.g. START = true", nil
	case "if", "elif", "else", "endif":
		return true, "vmpool has no if/elif/else/endif; keep the settings for each machine in a file of its own", nil
	}
	return false, "", nil
}

func (c *Config) loadFile(path string, depth int) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		entries, err := f.ReadDir(-1)
		if err != nil {
			return fmt.Errorf("read configuration directory %s: %w", path, err)
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			if e.IsDir() || configDirSkip.MatchString(e.Name()) {
				continue
			}
			if err := c.loadFile(filepath.Join(path, e.Name()), depth); err != nil {
				return err
			}
		}
		return nil
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var problems []string
	lineNo, start := 0, 0
	var pending strings.Builder
	endTag := "" // inside a NAME @=TAG value: the line that ends it
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if endTag != "" {
			if strings.TrimSpace(line) == endTag {
				endTag = ""
			}
			continue
		}
		if pending.Len() == 0 {
			start = lineNo
		}
		if strings.HasSuffix(line, "\\") {
			pending.WriteString(strings.TrimSuffix(line, "\\"))
			continue
		}
		pending.WriteString(line)
		text := strings.TrimSpace(pending.String())
		pending.Reset()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if ok, problem, included := c.statement(path, text, depth); ok {
			if problem != "" {
				problems = append(problems, fmt.Sprintf("%s:%d: %s: %s", path, start, text, problem))
			}
			problems = append(problems, included...)
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		name = strings.TrimSpace(name)
		if n, ok := strings.CutSuffix(name, "@"); ok && !strings.ContainsAny(strings.TrimSpace(n), " \t") {
			problems = append(problems, fmt.Sprintf("%s:%d: %s: vmpool has no @= multi-line values; end each line but the last with \\", path, start, text))
			endTag = "@" + strings.TrimSpace(value)
			continue
		}
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			problems = append(problems, fmt.Sprintf("%s:%d: %q is not a setting: write NAME = value", path, start, text))
			continue
		}
		c.Set(name, strings.TrimSpace(value), fmt.Sprintf("%s:%d", path, start))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read configuration %s: %w", path, err)
	}
	if len(problems) > 0 {
		return &configError{problems}
	}
	return nil
}
