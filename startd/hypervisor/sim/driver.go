package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

// Version is what Probe reports as the hypervisor's version.
const Version = "vmpool-sim 1"

// recordFile, in a VM's Dir, is a detached VM: Reattach reads it.
const recordFile = "sim-vm.json"

// Config configures a Driver. The zero value works.
type Config struct {
	// Logger receives the driver's records (per-VM records at Debug, as a
	// process may run a hundred thousand VMs); nil discards them.
	Logger *slog.Logger
	// Networking lists the networking types Probe offers (default "nat").
	Networking []string
}

// Driver runs vm_type "sim" VMs. It holds nothing but its configuration,
// so VMs one Driver started can be reattached by another; it is safe for
// concurrent use.
type Driver struct {
	cfg Config
	log *slog.Logger
}

var _ hypervisor.Driver = (*Driver)(nil)

// New returns a Driver for cfg; it starts nothing.
func New(cfg Config) *Driver {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Networking) == 0 {
		cfg.Networking = []string{"nat"}
	}
	return &Driver{cfg: cfg, log: cfg.Logger.With("vm_type", "sim")}
}

// Type is "sim".
func (d *Driver) Type() string { return "sim" }

// Probe always finds the simulator healthy.
func (d *Driver) Probe(ctx context.Context) (hypervisor.Fingerprint, error) {
	if err := ctx.Err(); err != nil {
		return hypervisor.Fingerprint{Type: d.Type()}, fmt.Errorf("probe sim: %w", err)
	}
	return hypervisor.Fingerprint{
		Type: d.Type(), Detected: true, Healthy: true, Version: Version,
		Networking: append([]string(nil), d.cfg.Networking...),
		Attrs:      map[string]string{"accel": "sim"},
		NoFiles:    true,
	}, nil
}

// record is a running VM as written to its Dir.
type record struct {
	Name            string   `json:"name"`
	MemoryMiB       int      `json:"memory_mib"`
	VCPUs           int      `json:"vcpus"`
	Exit            string   `json:"exit"`
	Deadline        int64    `json:"deadline,omitempty"` // unix nanos when the run ends; 0 with exit "never"
	CheckpointBytes int64    `json:"checkpoint_bytes,omitempty"`
	Devices         []string `json:"devices,omitempty"` // the disks' devices, in order
	Resumed         bool     `json:"resumed,omitempty"`
}

// Start validates spec and starts the simulated VM: its guest runs for
// SimRunSeconds (or what a checkpoint left of it) and then does what
// SimExit says. Faults of the job are hypervisor.SpecErrors.
func (d *Driver) Start(ctx context.Context, spec hypervisor.Spec) (hypervisor.VM, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start sim vm %s: %w", spec.Name, err)
	}
	rec, err := d.plan(spec)
	if err != nil {
		return nil, fmt.Errorf("start sim vm %s: %w", spec.Name, err)
	}
	if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("start sim vm %s: %w", spec.Name, err)
	}
	v := newVM(d, hypervisor.Handle{Type: d.Type(), Name: spec.Name, Dir: spec.Dir}, rec, false)
	v.log.Debug("sim vm started", "exit", rec.Exit, "resumed", rec.Resumed)
	v.arm(time.Now())
	return v, nil
}

// plan checks spec and returns the record of the VM it describes.
func (d *Driver) plan(spec hypervisor.Spec) (record, error) {
	if spec.Name == "" || strings.ContainsAny(spec.Name, "/\x00") || spec.Dir == "" {
		return record{}, fmt.Errorf("spec needs a Name that is a file name and a Dir (got %q, %q)", spec.Name, spec.Dir)
	}
	if spec.MemoryMiB <= 0 {
		return record{}, &hypervisor.SpecError{Code: CodeNoMemory, Msg: fmt.Sprintf("vm_memory %d MiB: the VM needs memory", spec.MemoryMiB)}
	}
	p, err := parseParams(spec.Params)
	if err != nil {
		return record{}, err
	}
	rec := record{Name: spec.Name, MemoryMiB: spec.MemoryMiB, VCPUs: max(spec.VCPUs, 1), Exit: p.exit, CheckpointBytes: p.checkpointBytes}
	for _, disk := range spec.Disks {
		if _, err := os.Stat(disk.Path); err != nil {
			return record{}, &hypervisor.SpecError{Code: CodeInvalidDisk, Msg: fmt.Sprintf("disk %s (%s): %v", disk.Path, disk.Device, err)}
		}
		rec.Devices = append(rec.Devices, disk.Device)
	}
	run := p.run
	if spec.Resume != "" {
		m, err := readManifest(spec.Resume, rec.Devices)
		if err != nil {
			return record{}, err
		}
		run, rec.Exit, rec.Resumed = time.Duration(m.Left), m.Exit, true
	}
	if rec.Exit != ExitNever {
		rec.Deadline = time.Now().Add(run).UnixNano()
	}
	return rec, nil
}

// Reattach finds a VM from its Handle: it runs on if its run time is not
// up, and has powered off (or crashed) at its deadline otherwise.
func (d *Driver) Reattach(ctx context.Context, h hypervisor.Handle) (hypervisor.VM, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reattach sim vm %s: %w", h.Name, err)
	}
	if h.Type != d.Type() {
		return nil, fmt.Errorf("reattach %s: a %q handle given to the sim driver", h.Name, h.Type)
	}
	rec, err := readRecord(h.Dir)
	if errors.Is(err, fs.ErrNotExist) || err == nil && rec.Name != h.Name {
		return nil, fmt.Errorf("reattach sim vm %s in %s: %w", h.Name, h.Dir, hypervisor.ErrGone)
	}
	if err != nil {
		return nil, fmt.Errorf("reattach sim vm %s: %w", h.Name, err)
	}
	v := newVM(d, hypervisor.Handle{Type: d.Type(), Name: h.Name, Dir: h.Dir}, rec, true)
	v.log.Debug("sim vm reattached")
	v.arm(time.Now())
	return v, nil
}

// writeRecord writes the record, unsynced: losing it in a crash only
// makes Reattach report the VM gone, which a startd handles (and a sim VM
// does not survive its process anyway).
func writeRecord(dir string, rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, recordFile), b, 0o600)
}

func readRecord(dir string) (record, error) {
	var rec record
	b, err := os.ReadFile(filepath.Join(dir, recordFile))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("decode %s: %w", recordFile, err)
	}
	return rec, nil
}
