package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd"
)

// writeConf writes a configuration file in a temporary directory.
func writeConf(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigSelfReference: `START = $(START) && ...`, the way HTCondor
// administrators add to a policy, takes the value START had before the
// line (the default when no line set it before); it used to expand
// $(START) into the new value itself, over and over, leaving a START of
// sixteen copies of the clause and a literal "$(START)" that did not parse.
func TestConfigSelfReference(t *testing.T) {
	path := writeConf(t, t.TempDir(), "pool.conf", `START = $(START) && (TARGET.JobVMMemory < 512)
start = $(Start) && (TARGET.Owner == "alice")
VM_MEMORY = 2048
VM_MEMORY = $(VM_MEMORY)
`)
	cfg := NewConfig()
	if err := cfg.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Get("START"), `true && (TARGET.JobVMMemory < 512) && (TARGET.Owner == "alice")`; got != want {
		t.Errorf("START = %s\nwant %s", got, want)
	}
	if got := cfg.Get("VM_MEMORY"); got != "2048" {
		t.Errorf("VM_MEMORY = %s, want 2048", got)
	}
	if got, want := cfg.Origin("START"), path+":2"; got != want {
		t.Errorf("START from %s, want %s", got, want)
	}
	cfg.Set("START", "$(START) && MY.Cpus > 0", "--set")
	if got, want := cfg.Get("START"), `true && (TARGET.JobVMMemory < 512) && (TARGET.Owner == "alice") && MY.Cpus > 0`; got != want {
		t.Errorf("--set START = %s\nwant %s", got, want)
	}
}

// TestConfigSeveralFilesAndDirectory: --config may be given more than
// once, and may name a directory (HTCondor's LOCAL_CONFIG_DIR, e.g.
// /etc/condor/config.d), whose files are read in name order skipping
// editor and package-manager leftovers; a knob set in two of them takes
// the later. A second --config used to replace the first silently: the
// knobs of the first file were never read.
func TestConfigSeveralFilesAndDirectory(t *testing.T) {
	dir := t.TempDir()
	base := writeConf(t, dir, "condor_config", "VM_MEMORY = 1000\nNUM_SLOTS = 2\nVM_TYPE = kvm\n")
	confd := filepath.Join(dir, "config.d")
	if err := os.Mkdir(confd, 0o755); err != nil {
		t.Fatal(err)
	}
	writeConf(t, confd, "20-memory.conf", "VM_MEMORY = 3000\n")
	writeConf(t, confd, "10-memory.conf", "VM_MEMORY = 2000\nVM_MAX_NUMBER = 3\n")
	writeConf(t, confd, "30-memory.conf~", "VM_MEMORY = 9999\n")
	writeConf(t, confd, ".40-hidden.conf", "VM_MEMORY = 9998\n")
	writeConf(t, confd, "50-old.conf.rpmsave", "VM_MEMORY = 9997\n")
	local := writeConf(t, dir, "local.conf", "NUM_SLOTS = 4\n")

	var out, errb strings.Builder
	c := &cli{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := c.main(t.Context(), []string{"condor_config_val", "-v", "--config", base, "--config", confd, "--config", local, "VM_MEMORY", "NUM_SLOTS", "VM_TYPE", "VM_MAX_NUMBER"})
	want := "VM_MEMORY = 3000\n # at: " + filepath.Join(confd, "20-memory.conf") + ":1\n" +
		"NUM_SLOTS = 4\n # at: " + local + ":1\n" +
		"VM_TYPE = kvm\n # at: " + base + ":3\n" +
		"VM_MAX_NUMBER = 3\n # at: " + filepath.Join(confd, "10-memory.conf") + ":2\n"
	if code != 0 || out.String() != want {
		t.Errorf("condor_config_val with three --config: exit %d, stderr %q\n%s\nwant\n%s", code, errb.String(), out.String(), want)
	}
}

// TestConfigMacroDefaultAndEnv: HTCondor's $(NAME:default) (the default
// when NAME is unset or empty) and $ENV(NAME) (an environment variable,
// $ENV(NAME:default) too) expand; both used to stay in the value
// literally, so EXECUTE = $ENV(HOME)/vms made a directory named
// "$ENV(HOME)" and PREEMPT = $(MY_PREEMPT:False) did not parse.
func TestConfigMacroDefaultAndEnv(t *testing.T) {
	path := writeConf(t, t.TempDir(), "pool.conf", `EXECUTE = $ENV(VMHOME)/vms
PREEMPT = $(MY_PREEMPT:False)
KILL = $(MY_KILL:False)
MY_KILL = TARGET.JobVMMemory > 100
SCHEDD_NAME = $ENV(NO_SUCH_VARIABLE:sched1)
START = $(START:false) && $(UNSET_THING:true)
NEGOTIATOR_NAME = neg$ENV(NO_SUCH_VARIABLE)
`)
	cfg := NewConfig()
	cfg.getenv = func(k string) string {
		if k == "VMHOME" {
			return "/srv/pool"
		}
		return ""
	}
	if err := cfg.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ knob, want string }{
		{"EXECUTE", "/srv/pool/vms"},
		{"PREEMPT", "False"},
		{"KILL", "TARGET.JobVMMemory > 100"},
		{"SCHEDD_NAME", "sched1"},
		{"START", "true && true"},
		{"NEGOTIATOR_NAME", "neg"},
	} {
		if got := cfg.Get(c.knob); got != c.want {
			t.Errorf("%s = %q, want %q", c.knob, got, c.want)
		}
	}
	if u := cfg.Unknown(); len(u) != 0 {
		t.Errorf("MY_KILL is used as $(MY_KILL:False), yet: %q", u)
	}
}

// TestConfigIncludeAndUnsupportedStatements: `include : FILE` (relative
// to the including file's directory) and `include ifexist : FILE` read
// the file there, as in HTCondor; a missing include and an include loop
// name the file and line. The statements vmpool does not have (use
// metaknobs, include command, if/elif/else/endif, NAME @= multi-line
// values) are errors that say so and what to write instead; they used
// to be "... is not a setting: write NAME = value", as if the line were
// a typo.
func TestConfigIncludeAndUnsupportedStatements(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	writeConf(t, sub, "memory.conf", "VM_MEMORY = 3072\n")
	main := writeConf(t, dir, "pool.conf", "VM_MEMORY = 1000\ninclude : sub/memory.conf\nINCLUDE IFEXIST : sub/absent.conf\nNUM_SLOTS = 2\n")
	cfg := NewConfig()
	if err := cfg.LoadFile(main); err != nil {
		t.Fatal(err)
	}
	if got, from := cfg.Get("VM_MEMORY"), cfg.Origin("VM_MEMORY"); got != "3072" || from != filepath.Join(sub, "memory.conf")+":1" {
		t.Errorf("VM_MEMORY = %s from %s, want 3072 from sub/memory.conf:1", got, from)
	}
	if got := cfg.Get("NUM_SLOTS"); got != "2" {
		t.Errorf("NUM_SLOTS = %s after the includes, want 2", got)
	}

	for _, c := range []struct{ text, want string }{
		{"NUM_SLOTS = 1\ninclude : absent.conf\n", ":2: include : absent.conf: "},
		{"include : loop.conf\n", ":1: include : loop.conf: includes nest deeper than 10 (an include loop?)"},
		{"use ROLE : Execute\n", ":1: use ROLE : Execute: vmpool has no metaknobs (use); set the knobs it stands for, e.g. START = true"},
		{"include command : /usr/bin/gen\n", ":1: include command : /usr/bin/gen: vmpool does not run commands for its configuration; write their output to a file and include it"},
		{"if defined FOO\nNUM_SLOTS = 1\nendif\n", ":1: if defined FOO: vmpool has no if/elif/else/endif; keep the settings for each machine in a file of its own"},
		{"START @=end\n  true\n@end\n", ":1: START @=end: vmpool has no @= multi-line values; end each line but the last with \\"},
	} {
		path := writeConf(t, dir, "loop.conf", c.text)
		err := NewConfig().LoadFile(path)
		if err == nil || !strings.Contains(err.Error(), path+c.want) {
			t.Errorf("%q: %v\nwant %q", c.text, err, path+c.want)
		}
	}
}

// chanHandler sends each log record's message to a channel.
type chanHandler struct{ msgs chan string }

func (h chanHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h chanHandler) Handle(_ context.Context, r slog.Record) error {
	h.msgs <- r.Message
	return nil
}
func (h chanHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h chanHandler) WithGroup(string) slog.Handler      { return h }

// TestHangupDoesNotKillDaemons: SIGHUP, which HTCondor's daemons take as
// condor_reconfig (and systemctl reload sends), reads the configuration
// again and the daemon runs on; Go's default for it killed the process at
// once, without vacating VMs or closing logs. A configuration that no
// longer reads changes nothing and says so.
func TestHangupDoesNotKillDaemons(t *testing.T) {
	msgs := make(chan string, 4)
	cfg := NewConfig()
	loads := 0
	onHangup(t.Context(), slog.New(chanHandler{msgs}), cfg, func() (*Config, error) {
		if loads++; loads == 2 {
			return nil, errors.New("vmpool.conf line 3: no = in the line")
		}
		return NewConfig(), nil
	})
	for _, want := range []string{"nothing changed", "does not read"} {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-msgs:
			if !strings.Contains(m, want) {
				t.Errorf("logged %q; want it to say %q", m, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("nothing logged for SIGHUP")
		}
	}
}

// TestNetworkingKnobs: a bridge-only machine (VM_NETWORKING_TYPE = bridge,
// the usual HTCondor setting) with VM_NETWORKING_DEFAULT_TYPE left unset
// gives untyped jobs bridge, as networking.md says; the startd used to
// refuse to start, "VM_NETWORKING_DEFAULT_TYPE "nat" is not among
// VM_NETWORKING_TYPE [bridge]", over a knob the administrator never set.
// The networking knobs' errors name where each was set.
func TestNetworkingKnobs(t *testing.T) {
	load := func(lines ...string) (*Config, error) {
		cfg := NewConfig()
		cfg.Set("LOCAL_DIR", t.TempDir(), "test")
		for i, l := range lines {
			k, v, _ := strings.Cut(l, "=")
			cfg.Set(k, v, fmt.Sprintf("pool.conf:%d", i+1))
		}
		return cfg, nil
	}
	cfg, _ := load("VM_NETWORKING=true", "VM_NETWORKING_TYPE=bridge", "VM_NETWORKING_BRIDGE_INTERFACE=br0")
	sc, err := startdConfig(cfg, "s1", nil, nil)
	if err != nil {
		t.Fatalf("bridge-only machine: %v", err)
	}
	if sc.DefaultNetworkingType != "bridge" {
		t.Errorf("bridge-only machine: default networking type %q, want bridge", sc.DefaultNetworkingType)
	}
	cfg, _ = load("VM_NETWORKING=true", "VM_NETWORKING_TYPE=nat, bridge", "VM_NETWORKING_BRIDGE_INTERFACE=br0")
	if sc, _ := startdConfig(cfg, "s1", nil, nil); sc.DefaultNetworkingType != "nat" {
		t.Errorf("nat, bridge machine: default networking type %q, want nat", sc.DefaultNetworkingType)
	}
	for _, c := range []struct {
		lines []string
		want  string
	}{
		{[]string{"VM_NETWORKING=true", "VM_NETWORKING_TYPE=bridge", "VM_NETWORKING_DEFAULT_TYPE=nat", "VM_NETWORKING_BRIDGE_INTERFACE=br0"},
			"VM_NETWORKING_DEFAULT_TYPE = nat (from pool.conf:3) is not among VM_NETWORKING_TYPE = bridge (from pool.conf:2): make it one of them, or leave it unset for the first"},
		{[]string{"VM_NETWORKING=true", "VM_NETWORKING_TYPE=nat, user"},
			`VM_NETWORKING_TYPE = nat, user (from pool.conf:2): "user" is not a networking type of vmpool's: use nat, bridge or both (nat, bridge)`},
		{[]string{"VM_NETWORKING=true", "VM_NETWORKING_TYPE=bridge"},
			"VM_NETWORKING_TYPE = bridge (from pool.conf:2) offers bridge but VM_NETWORKING_BRIDGE_INTERFACE is empty (from <default>): name the host bridge guests join, e.g. VM_NETWORKING_BRIDGE_INTERFACE = br0"},
	} {
		cfg, _ := load(c.lines...)
		_, err := startdConfig(cfg, "s1", nil, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v\nwant %q", c.lines, err, c.want)
		}
	}
}

// TestIntegerKnobExpressions: as HTCondor's integer knobs, vmpool's take
// a ClassAd expression of whole numbers, and DETECTED_CPUS and
// DETECTED_MEMORY (MiB) are predefined, so VM_MEMORY = $(DETECTED_MEMORY)
// / 2 and NUM_SLOTS = $(DETECTED_CPUS) work; both used to be "not a whole
// number" (the second after expanding to nothing).
func TestIntegerKnobExpressions(t *testing.T) {
	cfg := NewConfig()
	cfg.Set("LOCAL_DIR", t.TempDir(), "test")
	cfg.Set("VM_MEMORY", "$(DETECTED_MEMORY) / 2", "pool.conf:1")
	cfg.Set("NUM_SLOTS", "$(DETECTED_CPUS)", "pool.conf:2")
	cfg.Set("VM_MAX_NUMBER", "2 * 3", "pool.conf:3")
	sc, err := startdConfig(cfg, "s1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := startd.HostMemoryMiB() / 2; sc.VMMemory != want || want == 0 {
		t.Errorf("VM_MEMORY = $(DETECTED_MEMORY) / 2 gave %d, want %d", sc.VMMemory, want)
	}
	if sc.NumSlots != runtime.NumCPU() || sc.VMMaxNumber != 6 {
		t.Errorf("NUM_SLOTS %d (want %d), VM_MAX_NUMBER %d (want 6)", sc.NumSlots, runtime.NumCPU(), sc.VMMaxNumber)
	}
	if u := cfg.Unknown(); len(u) != 0 {
		t.Errorf("the detected macros are warned of: %q", u)
	}
	cfg.Set("VM_MAX_NUMBER", "-1", "pool.conf:5")
	_, err = startdConfig(cfg, "s1", nil, nil)
	if want := `VM_MAX_NUMBER = -1 (from pool.conf:5): may not be negative (0 lets every slot run a VM)`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("VM_MAX_NUMBER = -1: %v, want %q", err, want)
	}
	cfg.Set("VM_MAX_NUMBER", "0", "pool.conf:5")
	cfg.Set("VM_MEMORY", "1.5 * 1024", "pool.conf:4")
	_, err = startdConfig(cfg, "s1", nil, nil)
	if want := `VM_MEMORY = "1.5 * 1024" (from pool.conf:4): not a whole number`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("VM_MEMORY = 1.5 * 1024: %v, want %q", err, want)
	}
}

// TestHTCondorKnobsVmpoolDoesNotRead: a knob of HTCondor's vm universe
// that vmpool has no use for is warned of as such, with why, rather than
// as an unknown name (which left an administrator wondering whether
// VM_GAHP_REQ_TIMEOUT was misspelt).
func TestHTCondorKnobsVmpoolDoesNotRead(t *testing.T) {
	cfg := NewConfig()
	for _, k := range []string{"VM_GAHP_REQ_TIMEOUT", "VM_STATUS_MAX_ERROR", "VM_GAHP_SERVER", "VM_GAHP_LOG", "LIBVIRT_XML_SCRIPT", "LIBVIRT_XML_SCRIPT_ARGS",
		"VMWARE_PERL", "VMWARE_SCRIPT", "VMWARE_NETWORKING_TYPE", "VMWARE_NAT_NETWORKING_TYPE", "VMWARE_BRIDGE_NETWORKING_TYPE", "VMWARE_LOCAL_SETTINGS_FILE",
		"SUSPEND", "CONTINUE", "WANT_SUSPEND", "WANT_VACATE"} {
		cfg.Set(k, "x", "condor_config:9")
	}
	got := cfg.Unknown()
	if len(got) != 16 {
		t.Fatalf("%d warnings, want 16:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, w := range got {
		if !strings.Contains(w, " (from condor_config:9) is HTCondor's, but vmpool does not read it: ") || strings.Contains(w, "did you mean") {
			t.Errorf("warning %q", w)
		}
	}
	if want := "VM_GAHP_REQ_TIMEOUT (from condor_config:9) is HTCondor's, but vmpool does not read it: there is no vm-gahp (the startd drives QEMU, xl and vmrun itself)"; !strings.Contains(strings.Join(got, "\n"), want) {
		t.Errorf("no %q in\n%s", want, strings.Join(got, "\n"))
	}
}

// TestTrailingCommentHint: HTCondor takes # as a comment only at the
// start of a line, so VM_MEMORY = 2048 # MiB is a value with "# MiB" in
// it; the error now says that, where it only said "not a whole number"
// and left the administrator staring at a plain 2048.
func TestTrailingCommentHint(t *testing.T) {
	const hint = "a # comment must be on a line of its own"
	for _, kv := range []string{"VM_MEMORY=2048 # MiB", "VM_NETWORKING=true # for the web jobs", `START=TARGET.Owner == "alice" # only her`, "UPDATE_INTERVAL=5 #s"} {
		cfg := NewConfig()
		cfg.Set("LOCAL_DIR", t.TempDir(), "test")
		k, v, _ := strings.Cut(kv, "=")
		cfg.Set(k, v, "pool.conf:2")
		_, err := startdConfig(cfg, "s1", nil, nil)
		if err == nil || !strings.Contains(err.Error(), "(from pool.conf:2)") || !strings.Contains(err.Error(), hint) {
			t.Errorf("%s: %v, want the place and %q", kv, err, hint)
		}
	}
}

// TestSubsystemPrefixedKnobs: HTCondor's SUBSYS.KNOB and LOCALNAME.KNOB
// settings (STARTD.START = ...) are not vmpool's; the warning says so and
// what to write, where it called STARTD.START an unknown name with no
// suggestion, and the administrator's START silently did nothing.
func TestSubsystemPrefixedKnobs(t *testing.T) {
	cfg := NewConfig()
	cfg.Set("STARTD.START", "false", "condor_config:4")
	cfg.Set("node7.VM_MEMORY", "4096", "condor_config:5")
	got := strings.Join(cfg.Unknown(), "\n")
	for _, want := range []string{
		"STARTD.START (from condor_config:4): vmpool has no SUBSYS.KNOB or LOCALNAME.KNOB settings; write START = false (each daemon reads only its own knobs; give a machine values of its own in a file of its own)",
		"NODE7.VM_MEMORY (from condor_config:5): vmpool has no SUBSYS.KNOB or LOCALNAME.KNOB settings; write VM_MEMORY = 4096",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
}

// TestConfigCycles: knobs whose $(...) references lead back to themselves
// have no value; they were cut off after 16 rounds and read as their
// literal text (VM_MEMORY = "$(B)" is not a whole number, naming
// neither the circle nor where it was written). Loading them is an error
// that names the circle and the file and line; a knob that refers to its
// own earlier value is not a circle.
func TestConfigCycles(t *testing.T) {
	if err := NewConfig().Cycles(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "pool.conf")
	if err := os.WriteFile(path, []byte("START = $(START) && (TARGET.Owner != \"mallory\")\nMEM_A = $(MEM_B)\nMEM_B = $(MEM_A)\nVM_MEMORY = $(MEM_A)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(context.Background(), "", "config", "--config", path, "VM_MEMORY")
	want := "MEM_A (from " + path + ":2): its $(...) references go round in a circle (MEM_A -> MEM_B -> MEM_A)"
	if code == 0 || !strings.Contains(errOut, want) {
		t.Fatalf("vmpool config with a circle: exit %d, %q; want %q", code, errOut, want)
	}
	if err := os.WriteFile(path, []byte("START = $(START) && (TARGET.Owner != \"mallory\")\nSTART = $(START) && true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runCLI(context.Background(), "", "config", "--config", path, "START"); code != 0 || !strings.Contains(out, "mallory") {
		t.Fatalf("a knob that refers to its own earlier value: exit %d, %q %q", code, out, errOut)
	}
}

// TestDaemonOptionsNotTaken: one parser reads every daemon command's
// options, and an option of another daemon was taken without a word and
// did nothing (vmpool up --name NAME, --pool URL, --creds FILE; vmpool
// nats --metrics, --name). Each command now refuses what its usage does
// not name, and takes what it does.
func TestDaemonOptionsNotTaken(t *testing.T) {
	for _, c := range [][]string{
		{"up", "--name", "x"}, {"up", "--pool", "nats://127.0.0.1:1"}, {"up", "--creds", "/x"},
		{"nats", "--metrics", "off"}, {"nats", "--name", "x"},
		{"schedd", "--listen", "127.0.0.1:1"}, {"negotiator", "--vm-memory", "512"},
	} {
		_, errOut, code := runCLI(context.Background(), "", c...)
		if want := "--" + strings.TrimPrefix(c[1], "--") + " is not an option of vmpool " + c[0]; code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("vmpool %s: exit %d, %q; want exit 2 and %q", strings.Join(c, " "), code, errOut, want)
		}
	}
	for _, cmd := range []string{"up", "nats", "schedd", "negotiator", "startd"} {
		for _, m := range usageOption.FindAllStringSubmatch(daemonUsage(cmd), -1) {
			if !daemonTakes(cmd, m[1]) {
				t.Errorf("vmpool %s refuses --%s, which its usage names", cmd, m[1])
			}
		}
	}
	if !daemonTakes("nats", "nats") || !daemonTakes("startd", "local-dir") || !daemonTakes("config", "sim-startds") {
		t.Error("an alias (--nats, --local-dir) or config's options refused")
	}
}

// TestHostPort: a bus URL's HOST:PORT whatever its scheme (a TLS pool on
// port 4222 was told by vmpool up that it was not on the default port).
func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{"nats://127.0.0.1:4222": "127.0.0.1:4222", "tls://h:4222": "h:4222", "h:1": "h:1"} {
		if got := hostPort(in); got != want {
			t.Errorf("hostPort(%q) = %q, want %q", in, got, want)
		}
	}
	// The banners' <addr>: every URL of a cluster's list, not the first.
	if got := busAddr("nats://a:4222,nats://b:4222, tls://c:4222"); got != "a:4222,b:4222,c:4222" {
		t.Errorf("busAddr = %q", got)
	}
}
