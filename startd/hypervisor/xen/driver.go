package xen

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/toolvm"
)

// Defaults for Config's zero values.
const (
	DefaultXL     = "xl"
	DefaultBridge = "xenbr0"
)

// Config configures a Driver. The zero value runs `xl` from PATH.
type Config struct {
	// XL is the xl tool, by path or by name on PATH (the XL knob).
	XL string
	// Bootloader boots xen_kernel = included domains from their disk
	// (XEN_BOOTLOADER, e.g. "pygrub", which xl finds in Xen's libexec
	// directory). Without one the machine is not offered, as HTCondor's
	// vm-gahp refuses to start without it.
	Bootloader string
	// Bridge is the dom0 bridge of bridged vifs when the job's network
	// names none; "" is xenbr0.
	Bridge string
	// StatusInterval is how often each VM's domain is looked for in `xl
	// list` (VM_STATUS_INTERVAL).
	StatusInterval time.Duration
	// Logger receives the driver's records; nil discards them.
	Logger *slog.Logger
}

// Driver runs vm_type "xen" VMs as Xen domains through xl. It is safe for
// concurrent use and keeps no state of its own: VMs started by one Driver
// can be reattached by another.
type Driver struct {
	cfg Config
	log *slog.Logger
}

var (
	_ hypervisor.Driver          = (*Driver)(nil)
	_ hypervisor.LeftoverClearer = (*Driver)(nil)
)

// New returns a Driver for cfg. It runs nothing; Probe does.
func New(cfg Config) *Driver {
	if cfg.XL == "" {
		cfg.XL = DefaultXL
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = toolvm.DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Driver{cfg: cfg, log: cfg.Logger.With("vm_type", "xen")}
}

// Type is "xen".
func (d *Driver) Type() string { return "xen" }

// Probe runs `xl info`. A missing or failing xl is Detected false with the
// reason; an error only when ctx ends.
func (d *Driver) Probe(ctx context.Context) (hypervisor.Fingerprint, error) {
	fp := hypervisor.Fingerprint{Type: d.Type()}
	bin, err := exec.LookPath(d.cfg.XL)
	if err != nil {
		fp.Reason = fmt.Sprintf("%s not found: %v; install the Xen tools (Debian: apt-get install xen-utils) and run on a Xen dom0, or set XL", d.cfg.XL, err)
		return fp, nil
	}
	out, err := toolvm.Run(ctx, bin, "info")
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fp, fmt.Errorf("probe %s: %w", bin, ctxErr)
	}
	if err != nil {
		fp.Reason = fmt.Sprintf("%s info failed (is this a Xen dom0, and may vmpool run xl?): %v", bin, err)
		return fp, nil
	}
	info := parseInfo(out)
	if info["xen_version"] == "" {
		fp.Reason = fmt.Sprintf("%s info printed no xen_version", bin)
		return fp, nil
	}
	fp.Detected, fp.Healthy = true, true
	if d.cfg.Bootloader == "" {
		fp.Healthy = false
		fp.Reason = "XEN_BOOTLOADER is not set: domains of xen_kernel = included jobs could not boot; set it, e.g. XEN_BOOTLOADER = pygrub"
	}
	fp.Version = "Xen " + info["xen_version"]
	fp.Networking = []string{"nat", "bridge"}
	fp.Attrs = map[string]string{"xl": bin}
	for _, k := range []string{"xen_caps", "total_memory", "free_memory"} {
		if v := info[k]; v != "" {
			fp.Attrs[k] = v
		}
	}
	return fp, nil
}

// parseInfo reads `xl info`'s "key : value" lines.
func parseInfo(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// Start writes the domain configuration for spec and runs `xl create`, or
// resumes the checkpoint in spec.Resume with `xl restore`. It returns once
// xl has created the domain. A problem with the spec is a
// *hypervisor.SpecError.
func (d *Driver) Start(ctx context.Context, spec hypervisor.Spec) (hypervisor.VM, error) {
	vm, err := d.start(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("start xen domain %s: %w", spec.Name, err)
	}
	return vm, nil
}

func (d *Driver) start(ctx context.Context, spec hypervisor.Spec) (_ *VM, err error) {
	if err := safeName(spec.Name); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(spec.Dir) {
		return nil, fmt.Errorf("scratch dir %q is not absolute", spec.Dir)
	}
	if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
		return nil, err
	}
	var dom domain
	var memFile string
	var replaced []string
	defer func() { hypervisor.SettleReplaced(replaced, err == nil) }()
	if spec.Resume != "" {
		dom, memFile, err = d.prepareResume(spec, &replaced)
	} else {
		dom, err = buildDomain(spec, d.cfg.Bootloader, d.cfg.Bridge)
	}
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(spec.Dir, configFile)
	if err := writeFile(cfgPath, []byte(dom.config())); err != nil {
		return nil, fmt.Errorf("write domain configuration: %w", err)
	}
	if err := writeJSON(filepath.Join(spec.Dir, recordFile), dom); err != nil {
		return nil, fmt.Errorf("record domain: %w", err)
	}
	if memFile != "" {
		_, err = toolvm.Run(ctx, d.cfg.XL, "restore", cfgPath, memFile)
	} else {
		_, err = toolvm.Run(ctx, d.cfg.XL, "create", cfgPath)
	}
	if err != nil {
		// A domain half made before ctx ended must not linger.
		if ctx.Err() != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
			toolvm.Run(dctx, d.cfg.XL, "destroy", spec.Name)
			cancel()
		}
		if memFile != "" {
			return nil, restoreRefused(ctx, spec.Resume, err)
		}
		return nil, err
	}
	h := hypervisor.Handle{Type: d.Type(), Name: spec.Name, Dir: spec.Dir,
		Data: map[string]string{"config": cfgPath, "xl": d.cfg.XL}}
	v := d.newVM(h, &dom)
	if memFile != "" {
		v.log.Info("domain restored", "memory_mib", dom.MemoryMiB, "dir", spec.Resume)
	} else {
		v.log.Info("domain created", "memory_mib", dom.MemoryMiB, "domain_type", dom.Type)
	}
	v.w.Start()
	return v, nil
}

// Reattach finds a domain started earlier from its Handle: it must be in
// `xl list`. A domain listed as crashed is destroyed. It returns an error
// wrapping hypervisor.ErrGone when the domain no longer exists.
func (d *Driver) Reattach(ctx context.Context, h hypervisor.Handle) (hypervisor.VM, error) {
	vm, err := d.reattach(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("reattach xen domain %s: %w", h.Name, err)
	}
	return vm, nil
}

func (d *Driver) reattach(ctx context.Context, h hypervisor.Handle) (*VM, error) {
	if h.Type != d.Type() {
		return nil, fmt.Errorf("handle is for vm_type %q", h.Type)
	}
	if err := safeName(h.Name); err != nil {
		return nil, fmt.Errorf("%w: %w", hypervisor.ErrGone, err)
	}
	obs, err := d.domainState(ctx, h.Name)
	if err != nil {
		return nil, err
	}
	switch obs {
	case toolvm.Vanished:
		return nil, fmt.Errorf("not in xl list: %w", hypervisor.ErrGone)
	case toolvm.Crashed:
		toolvm.Run(ctx, d.cfg.XL, "destroy", h.Name)
		return nil, fmt.Errorf("crashed while the startd was away: %w", hypervisor.ErrGone)
	}
	var dom *domain
	var rec domain
	if err := readJSON(filepath.Join(h.Dir, recordFile), &rec); err == nil {
		dom = &rec
	} else {
		d.log.Warn("domain record unreadable; checkpoints unavailable", "vm", h.Name, "err", err)
	}
	v := d.newVM(h, dom)
	v.log.Info("reattached to domain")
	v.w.Start()
	return v, nil
}

// errNoDom0 guards against an xl that prints nothing useful: without
// Domain-0 in the list, no domain's absence can be trusted.
var errNoDom0 = errors.New("xl list printed no Domain-0 line")

// domainState looks for the domain in `xl list`.
func (d *Driver) domainState(ctx context.Context, name string) (toolvm.Observation, error) {
	out, err := toolvm.Run(ctx, d.cfg.XL, "list")
	if err != nil {
		return 0, err
	}
	doms, err := parseList(out)
	if err != nil {
		return 0, err
	}
	flags, ok := doms[name]
	switch {
	case !ok:
		return toolvm.Vanished, nil
	case strings.Contains(flags, "c"):
		return toolvm.Crashed, nil
	case strings.Contains(flags, "p"):
		return toolvm.Paused, nil
	}
	// r, b, and the passing s (shutting down) and d (dying): the domain
	// is there until it leaves the list.
	return toolvm.Running, nil
}

// parseList reads `xl list`: a header, then name, id, memory, vcpus, state
// flags and cpu time per domain.
func parseList(out string) (map[string]string, error) {
	doms := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[0] == "Name" {
			continue
		}
		doms[f[0]] = f[4]
	}
	if _, ok := doms["Domain-0"]; !ok {
		return nil, fmt.Errorf("%w: %q", errNoDom0, clip(out))
	}
	return doms, nil
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// ClearLeftover destroys the domain an earlier Start recorded in dir, if
// `xl list` still shows it: a startd killed between `xl create` and
// recording the handle left it running, and nothing would ever stop it.
func (d *Driver) ClearLeftover(ctx context.Context, dir string) error {
	var dom domain
	if err := readJSON(filepath.Join(dir, recordFile), &dom); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("clear leftover domain: %w", err)
	}
	if safeName(dom.Name) != nil {
		return nil
	}
	obs, err := d.domainState(ctx, dom.Name)
	if err != nil {
		return fmt.Errorf("clear leftover domain %s: %w", dom.Name, err)
	}
	if obs == toolvm.Vanished {
		return nil
	}
	d.log.Warn("destroying a domain an earlier start left running (the startd stopped before recording it)", "vm", dom.Name, "dir", dir)
	if _, err := toolvm.Run(ctx, d.cfg.XL, "destroy", dom.Name); err != nil {
		return fmt.Errorf("clear leftover domain %s: %w", dom.Name, err)
	}
	return nil
}
