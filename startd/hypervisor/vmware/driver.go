package vmware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/toolvm"
	"github.com/vmpool/vmpool/startd/hypervisor/vmware/vmformat"
)

// Defaults for Config's zero values.
const (
	DefaultVMRun    = "vmrun"
	DefaultHostType = "ws" // VMware Workstation (and Player)
)

// recordFile, in a VM's Dir, says what the driver did to the VM.
const recordFile = "vmware-vm.json"

// Config configures a Driver. The zero value runs `vmrun -T ws` from PATH.
type Config struct {
	// VMRun is the vmrun tool, by path or by name on PATH (the VMRUN knob).
	VMRun string
	// HostType is vmrun's -T: ws, player, fusion; "" is ws.
	HostType string
	// StatusInterval is how often each VM is looked for in `vmrun list`
	// (VM_STATUS_INTERVAL).
	StatusInterval time.Duration
	// Logger receives the driver's records; nil discards them.
	Logger *slog.Logger
}

// Driver runs vm_type "vmware" VMs through vmrun. It is safe for
// concurrent use and keeps no state of its own.
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
	if cfg.VMRun == "" {
		cfg.VMRun = DefaultVMRun
	}
	if cfg.HostType == "" {
		cfg.HostType = DefaultHostType
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = toolvm.DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Driver{cfg: cfg, log: cfg.Logger.With("vm_type", "vmware")}
}

// Type is "vmware".
func (d *Driver) Type() string { return "vmware" }

// vmrun runs a vmrun command against the configured host type.
func (d *Driver) vmrun(ctx context.Context, args ...string) (string, error) {
	return toolvm.Run(ctx, d.cfg.VMRun, append([]string{"-T", d.cfg.HostType}, args...)...)
}

// Probe reads vmrun's version (its help) and runs `vmrun list`. A missing
// or failing vmrun is Detected false with the reason; an error only when
// ctx ends.
func (d *Driver) Probe(ctx context.Context) (hypervisor.Fingerprint, error) {
	fp := hypervisor.Fingerprint{Type: d.Type()}
	bin, err := exec.LookPath(d.cfg.VMRun)
	if err != nil {
		fp.Reason = fmt.Sprintf("%s not found: %v; install VMware Workstation or Player (vmrun comes with the VIX API), or set VMRUN", d.cfg.VMRun, err)
		return fp, nil
	}
	// vmrun without a command prints its help, version first, and fails.
	help, _ := exec.CommandContext(ctx, bin).Output()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fp, fmt.Errorf("probe %s: %w", bin, ctxErr)
	}
	version := ""
	for _, line := range strings.Split(string(help), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "vmrun version "); ok {
			version = v
			break
		}
	}
	if version == "" {
		fp.Reason = fmt.Sprintf("%s printed no \"vmrun version\" line: is it VMware's vmrun?", bin)
		return fp, nil
	}
	out, err := toolvm.Run(ctx, bin, "-T", d.cfg.HostType, "list")
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fp, fmt.Errorf("probe %s: %w", bin, ctxErr)
	}
	if err == nil {
		_, err = parseList(out)
	}
	if err != nil {
		fp.Reason = fmt.Sprintf("%s -T %s list failed: %v", bin, d.cfg.HostType, err)
		return fp, nil
	}
	fp.Detected, fp.Healthy = true, true
	fp.Version = "VMware vmrun " + version
	fp.Networking = []string{"nat", "bridge"}
	fp.Attrs = map[string]string{"vmrun": bin, "host_type": d.cfg.HostType}
	return fp, nil
}

// parseList reads `vmrun list`: "Total running VMs: N", then one .vmx
// path per line.
func parseList(out string) (map[string]bool, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(lines[0], "Total running VMs:")))
	if !strings.HasPrefix(lines[0], "Total running VMs:") || err != nil {
		return nil, fmt.Errorf("vmrun list printed %q, not \"Total running VMs: N\"", clip(out))
	}
	vms := map[string]bool{}
	for _, l := range lines[1:] {
		if l = strings.TrimSpace(l); l != "" {
			vms[filepath.Clean(l)] = true
		}
	}
	if len(vms) != n {
		return nil, fmt.Errorf("vmrun list counts %d VMs but lists %d", n, len(vms))
	}
	return vms, nil
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// vmState looks for the VM in `vmrun list`.
func (d *Driver) vmState(ctx context.Context, vmx string) (toolvm.Observation, error) {
	out, err := d.vmrun(ctx, "list")
	if err != nil {
		return 0, err
	}
	vms, err := parseList(out)
	if err != nil {
		return 0, err
	}
	if vms[filepath.Clean(vmx)] {
		return toolvm.Running, nil
	}
	return toolvm.Vanished, nil
}

// record is what the driver did to a VM's files.
type record struct {
	VMX       string `json:"vmx"`      // absolute
	Snapshot  string `json:"snapshot"` // the driver's snapshot, "" without one
	Shared    bool   `json:"shared"`   // some disk is used in place from vmware_dir
	MemoryMiB int    `json:"memory_mib"`
	VCPUs     int    `json:"vcpus"`
	Network   bool   `json:"network,omitempty"`
}

func specErr(code, format string, args ...any) error {
	return &hypervisor.SpecError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// safeName accepts VM names usable as a file name and a snapshot name.
func safeName(name string) error {
	if name == "" || len(name) > 64 || name[0] == '-' || name[0] == '.' {
		return specErr("INVALID_NAME", "vm name %q: empty, too long or starting with '-' or '.'", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return specErr("INVALID_NAME", "vm name %q: contains %q", name, r)
		}
	}
	return nil
}

// Start prepares the job's .vmx (and a snapshot) and runs `vmrun start`,
// or resumes the checkpoint in spec.Resume. It returns once vmrun has
// started the VM. A problem with the job's files is a
// *hypervisor.SpecError.
func (d *Driver) Start(ctx context.Context, spec hypervisor.Spec) (hypervisor.VM, error) {
	vm, err := d.start(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("start vmware vm %s: %w", spec.Name, err)
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
	if spec.VMX == "" {
		return nil, specErr("NO_VMWARE_VMX_PARAM", "the job names no .vmx file")
	}
	if !filepath.IsAbs(spec.VMX) {
		return nil, specErr("NO_VMWARE_VMX_PARAM", "the .vmx %q is not an absolute path", spec.VMX)
	}
	spec.VMX = filepath.Clean(spec.VMX)
	var rec record
	var replaced []replacedFile
	defer func() { settleReplaced(replaced, err == nil) }()
	if spec.Resume != "" {
		rec, err = d.prepareResume(spec, &replaced)
	} else {
		rec, err = d.prepare(ctx, spec)
	}
	if err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(spec.Dir, recordFile), rec); err != nil {
		return nil, fmt.Errorf("record vm: %w", err)
	}
	if _, err := d.vmrun(ctx, "start", rec.VMX, "nogui"); err != nil {
		if ctx.Err() != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
			d.vmrun(sctx, "stop", rec.VMX, "hard")
			cancel()
		}
		if spec.Resume != "" {
			return nil, resumeRefused(ctx, spec.Resume, err)
		}
		return nil, err
	}
	h := hypervisor.Handle{Type: d.Type(), Name: spec.Name, Dir: spec.Dir, Data: map[string]string{"vmx": rec.VMX}}
	v := d.newVM(h, &rec)
	if spec.Resume != "" {
		v.log.Info("vm resumed", "dir", spec.Resume, "memory_mib", rec.MemoryMiB)
	} else {
		v.log.Info("vm started", "memory_mib", rec.MemoryMiB, "snapshot", rec.Snapshot != "", "shared_disks", rec.Shared)
	}
	v.w.Start()
	return v, nil
}

// prepare edits the job's .vmx as HTCondor does and takes the snapshot.
func (d *Driver) prepare(ctx context.Context, spec hypervisor.Spec) (record, error) {
	rec := record{VMX: spec.VMX, MemoryMiB: spec.MemoryMiB, VCPUs: max(spec.VCPUs, 1), Network: spec.Network.Enabled}
	if spec.MemoryMiB <= 0 {
		return rec, specErr("JOBCLASSAD_NO_VM_MEMORY_PARAM", "vm_memory %d MiB: must be positive", spec.MemoryMiB)
	}
	if spec.MemoryMiB%4 != 0 {
		return rec, specErr("VMWARE_VMX_ERROR", "vm_memory %d MiB: VMware needs a multiple of 4 MiB", spec.MemoryMiB)
	}
	b, err := os.ReadFile(spec.VMX)
	if err != nil {
		return rec, specErr("NO_VMWARE_VMX_PARAM", "the .vmx %s cannot be read: %v", spec.VMX, err)
	}
	v, err := vmformat.ParseVMX(b)
	if err != nil {
		return rec, specErr("VMWARE_VMX_ERROR", "%s: %v", filepath.Base(spec.VMX), err)
	}
	v.Set("memsize", strconv.Itoa(spec.MemoryMiB))
	v.Set("numvcpus", strconv.Itoa(rec.VCPUs))
	v.Set("displayName", spec.Name)
	v.Set("uuid.action", "keep")
	v.Set("disk.locking", "FALSE")
	if err := setNetwork(v, spec.Network); err != nil {
		return rec, err
	}
	disconnectHostDevices(v)
	// The disks: transferred ones are in Dir, beside the .vmx; the others
	// are used in place from vmware_dir.
	for _, n := range v.Disks() {
		p, shared, err := locate(spec, n.File)
		if err != nil {
			return rec, err
		}
		if shared {
			rec.Shared = true
			v.Set(n.Node+".fileName", p)
			if strings.HasPrefix(n.Mode, "independent") {
				// Independent disks stay out of snapshots; a disk
				// other jobs share must not be written.
				v.Set(n.Node+".mode", "persistent")
			}
		}
	}
	if rec.Shared && !spec.SnapshotDisk {
		return rec, specErr("VMWARE_VMX_ERROR", "disks used in place from vmware_dir need snapshot disks (vmware_snapshot_disk = true)")
	}
	if err := writeFile(spec.VMX, v.Bytes()); err != nil {
		return rec, fmt.Errorf("write %s: %w", spec.VMX, err)
	}
	if spec.SnapshotDisk || rec.Shared {
		if _, err := d.vmrun(ctx, "snapshot", spec.VMX, spec.Name); err != nil {
			return rec, fmt.Errorf("take the snapshot: %w", err)
		}
		rec.Snapshot = spec.Name
	}
	return rec, nil
}

// locate finds a disk file named in the .vmx: among the transferred files
// (beside the .vmx) or, for a relative name not transferred, in
// vmware_dir. shared says it is used in place.
func locate(spec hypervisor.Spec, name string) (path string, shared bool, err error) {
	dir := filepath.Dir(spec.VMX)
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err != nil {
			return "", false, specErr("VMWARE_VMX_ERROR", "disk %s of %s: %v", name, filepath.Base(spec.VMX), err)
		}
		rel, rerr := filepath.Rel(dir, name)
		return name, rerr != nil || strings.HasPrefix(rel, ".."), nil
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
		return name, false, nil
	}
	if spec.VMwareDir != "" {
		p := filepath.Join(spec.VMwareDir, name)
		if _, err := os.Stat(p); err == nil {
			return p, true, nil
		}
	}
	return "", false, specErr("VMWARE_VMX_ERROR", "disk %s of %s is neither among the job's files nor in vmware_dir %q", name, filepath.Base(spec.VMX), spec.VMwareDir)
}

// setNetwork writes the job's networking into ethernet0, or disconnects
// every network adapter.
func setNetwork(v *vmformat.VMX, n hypervisor.Network) error {
	if !n.Enabled {
		for _, dev := range v.Devices() {
			if strings.HasPrefix(dev, "ethernet") {
				v.Set(dev+".present", "FALSE")
			}
		}
		return nil
	}
	v.Set("ethernet0.present", "TRUE")
	switch n.Type {
	case "", "nat":
		v.Set("ethernet0.connectionType", "nat")
	case "bridge":
		v.Set("ethernet0.connectionType", "bridged")
	default:
		return specErr("VMWARE_INVALID_NETWORK_PARAM", "networking type %q is neither nat nor bridge", n.Type)
	}
	hw, err := net.ParseMAC(n.MAC)
	if n.MAC != "" && (err != nil || len(hw) != 6) {
		return specErr("VMWARE_INVALID_NETWORK_PARAM", "vm_macaddr %q is not a 6-byte MAC address", n.MAC)
	}
	// VMware takes static addresses only from its own range; any other
	// is one the startd generated (QEMU-style: submit refuses a job's
	// vm_macaddr outside the range), left to VMware to choose.
	if n.MAC != "" && hw[0] == 0x00 && hw[1] == 0x50 && hw[2] == 0x56 && hw[3] <= 0x3f {
		v.Set("ethernet0.addressType", "static")
		v.Set("ethernet0.address", hw.String())
	} else {
		v.Set("ethernet0.addressType", "generated")
		v.Delete("ethernet0.address")
	}
	return nil
}

// disconnectHostDevices removes what ties a VM to its original host:
// physical CD-ROM drives, floppy drives and serial and parallel ports.
func disconnectHostDevices(v *vmformat.VMX) {
	for _, dev := range v.Devices() {
		dt, _ := v.Get(dev + ".deviceType")
		ft, _ := v.Get(dev + ".fileType")
		fn, _ := v.Get(dev + ".fileName")
		switch {
		case strings.EqualFold(dt, "atapi-cdrom") || strings.EqualFold(dt, "cdrom-raw"):
			v.Set(dev+".present", "FALSE")
		case (strings.HasPrefix(dev, "floppy") || strings.HasPrefix(dev, "serial") || strings.HasPrefix(dev, "parallel")) &&
			(strings.EqualFold(ft, "device") || strings.HasPrefix(fn, "/dev/") || v.Bool(dev+".autodetect", false)):
			v.Set(dev+".present", "FALSE")
		}
	}
}

// Reattach finds a VM started earlier from its Handle: its .vmx must be in
// `vmrun list`. It returns an error wrapping hypervisor.ErrGone otherwise.
func (d *Driver) Reattach(ctx context.Context, h hypervisor.Handle) (hypervisor.VM, error) {
	vm, err := d.reattach(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("reattach vmware vm %s: %w", h.Name, err)
	}
	return vm, nil
}

func (d *Driver) reattach(ctx context.Context, h hypervisor.Handle) (*VM, error) {
	if h.Type != d.Type() {
		return nil, fmt.Errorf("handle is for vm_type %q", h.Type)
	}
	vmx := h.Data["vmx"]
	if !filepath.IsAbs(vmx) {
		return nil, fmt.Errorf("handle names no .vmx: %w", hypervisor.ErrGone)
	}
	obs, err := d.vmState(ctx, vmx)
	if err != nil {
		return nil, err
	}
	if obs != toolvm.Running {
		return nil, fmt.Errorf("%s is not in vmrun list: %w", vmx, hypervisor.ErrGone)
	}
	rec := record{VMX: vmx}
	if err := readJSON(filepath.Join(h.Dir, recordFile), &rec); err != nil {
		d.log.Warn("vm record unreadable; no snapshot will be consolidated", "vm", h.Name, "err", err)
	}
	v := d.newVM(h, &rec)
	v.log.Info("reattached to vm")
	v.w.Start()
	return v, nil
}

func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(b, '\n'))
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", filepath.Base(path), err)
	}
	return nil
}

// ClearLeftover stops, hard, the VM an earlier Start recorded in dir, if
// `vmrun list` still shows it: a startd killed between `vmrun start` and
// recording the handle left it running, and nothing would ever stop it.
func (d *Driver) ClearLeftover(ctx context.Context, dir string) error {
	var rec record
	if err := readJSON(filepath.Join(dir, recordFile), &rec); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("clear leftover vm: %w", err)
	}
	if rec.VMX == "" || !filepath.IsAbs(rec.VMX) {
		return nil
	}
	obs, err := d.vmState(ctx, rec.VMX)
	if err != nil {
		return fmt.Errorf("clear leftover vm %s: %w", rec.VMX, err)
	}
	if obs == toolvm.Vanished {
		return nil
	}
	d.log.Warn("stopping a vm an earlier start left running (the startd stopped before recording it)", "vmx", rec.VMX, "dir", dir)
	if _, err := d.vmrun(ctx, "stop", rec.VMX, "hard"); err != nil {
		return fmt.Errorf("clear leftover vm %s: %w", rec.VMX, err)
	}
	return nil
}
