package qemu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

// Defaults for Config's zero values.
const (
	DefaultBinary         = "qemu-system-x86_64"
	DefaultImgBinary      = "qemu-img"
	DefaultStatusInterval = 60 * time.Second // HTCondor's VM_STATUS_INTERVAL
	machineType           = "pc"             // i440FX + PIIX: IDE channels, ACPI PM at 0x600
)

// Config configures a Driver. The zero value works: QEMU from PATH, KVM
// when /dev/kvm is usable, TCG otherwise.
type Config struct {
	// Binary is qemu-system-x86_64, by path or by name on PATH.
	Binary string
	// ImgBinary is qemu-img, used for the overlays of read-only IDE and
	// SATA disks and when resuming them from a checkpoint.
	ImgBinary string
	// StatusInterval is how often each VM's state is asked for
	// (query-status) besides watching QMP events, as HTCondor's
	// VM_STATUS_INTERVAL does, so a lost event never hangs a job.
	StatusInterval time.Duration
	// Logger receives the driver's records; nil discards them.
	Logger *slog.Logger
	// Accel is "kvm" or "tcg"; "" or "auto" picks one with ChooseAccel:
	// kvm when /dev/kvm is usable hardware virtualisation, tcg otherwise.
	Accel string
	// Bridge is VM_NETWORKING_BRIDGE_INTERFACE, the host bridge bridged
	// VMs' taps join: Probe offers bridge only when it is a bridge.
	Bridge string
	// RuntimeDir holds QMP sockets whose path under Spec.Dir would be too
	// long for a unix socket address; "" is os.TempDir().
	RuntimeDir string
}

// Driver runs vm_type "kvm" VMs: one qemu-system-x86_64 process each,
// driven over QMP. It is safe for concurrent use; it holds no state of its
// own beyond its configuration, so VMs started by one Driver can be
// reattached by another.
type Driver struct {
	cfg Config
	log *slog.Logger
}

var (
	_ hypervisor.Driver          = (*Driver)(nil)
	_ hypervisor.LeftoverClearer = (*Driver)(nil)
)

// New returns a Driver for cfg. It starts nothing and checks nothing;
// Probe does.
func New(cfg Config) *Driver {
	if cfg.Binary == "" {
		cfg.Binary = DefaultBinary
	}
	if cfg.ImgBinary == "" {
		cfg.ImgBinary = DefaultImgBinary
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = DefaultStatusInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RuntimeDir == "" {
		cfg.RuntimeDir = os.TempDir()
	}
	return &Driver{cfg: cfg, log: cfg.Logger.With("vm_type", "kvm")}
}

// Type is "kvm".
func (d *Driver) Type() string { return "kvm" }

// accel is the accelerator VMs get.
func (d *Driver) accel() string {
	if d.cfg.Accel != "" && d.cfg.Accel != AccelAuto {
		return d.cfg.Accel
	}
	accel, _ := ChooseAccel()
	return accel
}

// Probe runs "qemu-system-x86_64 --version". A missing binary is reported
// as Detected false with the reason; an error only when ctx ends.
func (d *Driver) Probe(ctx context.Context) (hypervisor.Fingerprint, error) {
	fp := hypervisor.Fingerprint{Type: d.Type()}
	bin, err := exec.LookPath(d.cfg.Binary)
	if err != nil {
		fp.Reason = fmt.Sprintf("%s not found: %v; install QEMU (Debian: apt-get install qemu-system-x86) or set the binary's path", d.cfg.Binary, err)
		return fp, nil
	}
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fp, fmt.Errorf("probe %s: %w", bin, ctxErr)
	}
	if err != nil {
		fp.Reason = fmt.Sprintf("%s --version: %v", bin, err)
		return fp, nil
	}
	fp.Detected = true
	fp.Version = parseVersion(string(out))
	accel := d.accel()
	fp.Attrs = map[string]string{"accel": accel, "binary": bin, "machine": machineType}
	if d.cfg.Accel == "" || d.cfg.Accel == AccelAuto {
		_, why := ChooseAccel()
		fp.Attrs["accel_reason"] = why
	}
	fp.Networking = []string{"nat"}
	if note := d.bridgeProblem(); note == "" {
		fp.Networking = append(fp.Networking, "bridge")
	} else {
		fp.NetworkingNote = note
	}
	switch {
	case accel != "kvm" && accel != "tcg":
		fp.Reason = fmt.Sprintf("accelerator %q is neither kvm nor tcg", accel)
	case accel == "kvm" && !kvmUsable():
		fp.Reason = "accel kvm configured but /dev/kvm cannot be opened for reading and writing"
	default:
		fp.Healthy = true
	}
	return fp, nil
}

// parseVersion turns "QEMU emulator version 7.2.22 (Debian ...)" into
// "QEMU 7.2.22".
func parseVersion(out string) string {
	line, _, _ := strings.Cut(out, "\n")
	const prefix = "QEMU emulator version "
	if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
		v, _, _ = strings.Cut(v, " ")
		return "QEMU " + v
	}
	return strings.TrimSpace(line)
}

// tail returns the last n lines of the file at path, trimmed, or "".
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		f.Seek(fi.Size()-max, 0)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "; ")
}

// startFailure is err, a QEMU that did not start, with the tail of its
// log appended: a *hypervisor.SpecError when QEMU refused one of the job's
// disks (its message names the -drive option, or the device a drive is
// attached to: a corrupt image, one that is not in the format the job
// gave, a file the job's user may not read or write), so that the startd holds the job rather than take the machine's VMs
// offline for it. A drive error in the scratch directory dir (transferred
// inputs, overlays) that is an errno of the machine's (a permission, a
// full or failing disk, memory) stays the machine's.
func startFailure(err error, logPath, dir string) error {
	t := tail(logPath, 5)
	if t == "" {
		return err
	}
	if driveError(t) && (!machineErrno(t) || !allInDir(t, dir)) {
		return &hypervisor.SpecError{Code: "BAD_IMAGE", Msg: "QEMU refused a disk of the job: " + t}
	}
	return fmt.Errorf("%w: qemu said: %s", err, t)
}

// driveError reports whether QEMU's message is about one of the VM's
// disks: it names the -drive option, or the device a drive is attached to
// (QEMU opens a drive read-only first and reopens it writable when the
// guest's device takes it, so a disk it may read but not write is
// refused at -device ...,drive=diskN).
func driveError(msg string) bool {
	if strings.Contains(msg, ": -drive ") {
		return true
	}
	_, dev, ok := strings.Cut(msg, ": -device ")
	if !ok {
		return false
	}
	opts, _, _ := strings.Cut(dev, ": ")
	return strings.Contains(opts, ",drive=disk")
}

// drivePath is the file of the -drive option QEMU's message names ("":
// none), its doubled commas undone.
func drivePath(msg string) string {
	_, rest, ok := strings.Cut(msg, "-drive file=")
	if !ok {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		if rest[i] == ',' {
			if i+1 < len(rest) && rest[i+1] == ',' {
				b.WriteByte(',')
				i++
				continue
			}
			break
		}
		b.WriteByte(rest[i])
	}
	return b.String()
}

// allInDir reports whether every file QEMU's message names (the -drive
// option's, and those it quotes: 'PATH', as a backing file's) lies in
// dir: a file outside it is one the job named.
func allInDir(msg, dir string) bool {
	if p := drivePath(msg); p != "" && !inDir(p, dir) {
		return false
	}
	for rest := msg; ; {
		_, after, ok := strings.Cut(rest, "'")
		if !ok {
			return true
		}
		quoted, tail, ok := strings.Cut(after, "'")
		if !ok {
			return true
		}
		if filepath.IsAbs(quoted) && !inDir(quoted, dir) {
			return false
		}
		rest = tail
	}
}

// inDir reports whether path lies in dir.
func inDir(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return path != "" && err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// machineErrno reports whether QEMU's message carries an error of the
// machine's rather than of an image.
func machineErrno(msg string) bool {
	for _, e := range []string{"Permission denied", "No space left on device", "Cannot allocate memory", "Too many open files", "Input/output error", "Read-only file system"} {
		if strings.Contains(msg, e) {
			return true
		}
	}
	return false
}

var errStartup = errors.New("qemu exited during start-up")
