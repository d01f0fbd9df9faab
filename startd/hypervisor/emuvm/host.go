package emuvm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/qemu"
	"github.com/vmpool/vmpool/startd/hypervisor/qemu/qmp"
)

// Errors callers branch on.
var (
	// ErrNoGuest: the host has no guest with that key.
	ErrNoGuest = errors.New("emuvm: no such guest")
	// ErrExists: a guest with that key already exists.
	ErrExists = errors.New("emuvm: guest exists")
)

const (
	lockPoll   = 10 * time.Millisecond
	qmpTimeout = 30 * time.Second
	// firstID is the first guest id; Xen's domain 0 is the host itself.
	firstID = 1
)

// Config configures a Host.
type Config struct {
	// Dir is the emulated machine's state directory; it is created.
	Dir string
	// QEMU and QEMUImg are the binaries the qemu driver runs ("" for
	// its defaults).
	QEMU, QEMUImg string
	// Logger receives the qemu driver's records; nil discards them.
	Logger *slog.Logger
}

// Host is one emulated machine's guests. It holds no state in memory
// beyond its configuration: every method reads and writes the state
// directory, under its locks, so several processes may use one Host's
// directory at once.
type Host struct {
	dir string
	drv *qemu.Driver
	log *slog.Logger
}

// Guest is a guest's record.
type Guest struct {
	Key     string            `json:"key"`
	ID      int               `json:"id"`
	Handle  hypervisor.Handle `json:"handle"`            // the qemu driver's
	Created int64             `json:"created"`           // unix seconds
	Meta    json.RawMessage   `json:"meta,omitempty"`    // the emulator's own
	Memory  int               `json:"memory_mib"`        // as started
	VCPUs   int               `json:"vcpus"`             // as started
	Resumed bool              `json:"resumed,omitempty"` // started from a checkpoint
}

// State is a guest's state as a command sees it.
type State string

// Guest states.
const (
	Running State = "running"
	Paused  State = "paused"
	// Off: the guest powered off; its QEMU is gone and its record removed.
	Off State = "off"
	// Gone: QEMU vanished without the guest powering off (a crash, or a
	// kill behind the emulator's back); the record stays until Kill.
	Gone State = "gone"
)

// Open returns the Host whose state is in cfg.Dir, creating the directory.
func Open(cfg Config) (*Host, error) {
	if cfg.Dir == "" {
		return nil, errors.New("emuvm: no state directory")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("emuvm: state directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "guests"), 0o700); err != nil {
		return nil, fmt.Errorf("emuvm: create state directory: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	drv := qemu.New(qemu.Config{
		Binary: cfg.QEMU, ImgBinary: cfg.QEMUImg, Logger: logger,
		// Nobody watches a guest between commands; the status check
		// of the driver's monitor would only run while a command holds
		// the guest.
		StatusInterval: time.Hour,
	})
	return &Host{dir: dir, drv: drv, log: logger}, nil
}

// Dir is the state directory.
func (h *Host) Dir() string { return h.dir }

// Probe reports whether QEMU works here, as the qemu driver sees it.
func (h *Host) Probe(ctx context.Context) (hypervisor.Fingerprint, error) {
	return h.drv.Probe(ctx)
}

// ValidKey reports whether key can name a guest: it becomes a file name.
func ValidKey(key string) bool {
	if key == "" || len(key) > 128 || key[0] == '.' || key[0] == '-' {
		return false
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func (h *Host) recordPath(key string) string { return filepath.Join(h.dir, "guests", key+".json") }
func (h *Host) guestDir(key string) string   { return filepath.Join(h.dir, "guests", key) }

// lock takes an exclusive flock on path, waiting while another process
// holds it, until ctx ends.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("emuvm: lock %s: %w", path, err)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("emuvm: lock %s: %w", path, err)
		}
		t.Reset(lockPoll)
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("emuvm: lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
	}
}

func (h *Host) lockHost(ctx context.Context) (func(), error) {
	return lock(ctx, filepath.Join(h.dir, "host.lock"))
}

func (h *Host) lockGuest(ctx context.Context, key string) (func(), error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("%w: %q", ErrNoGuest, key)
	}
	return lock(ctx, filepath.Join(h.dir, "guests", key+".lock"))
}

// Guest reads the record of the guest key.
func (h *Host) Guest(key string) (Guest, error) {
	if !ValidKey(key) {
		return Guest{}, fmt.Errorf("%w: %q", ErrNoGuest, key)
	}
	b, err := os.ReadFile(h.recordPath(key))
	if errors.Is(err, os.ErrNotExist) {
		return Guest{}, fmt.Errorf("%w: %q", ErrNoGuest, key)
	}
	if err != nil {
		return Guest{}, fmt.Errorf("emuvm: read guest %s: %w", key, err)
	}
	var g Guest
	if err := json.Unmarshal(b, &g); err != nil {
		return Guest{}, fmt.Errorf("emuvm: decode guest %s: %w", key, err)
	}
	return g, nil
}

// Guests lists every guest's record, by id.
func (h *Host) Guests() ([]Guest, error) {
	names, err := filepath.Glob(filepath.Join(h.dir, "guests", "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Guest
	for _, n := range names {
		key := strings.TrimSuffix(filepath.Base(n), ".json")
		g, err := h.Guest(key)
		if errors.Is(err, ErrNoGuest) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Start boots spec (or resumes spec.Resume) as the guest key and leaves it
// running. spec.Name and spec.Dir are the Host's to set. meta is stored
// with the record (JSON). A spec the qemu driver refuses is a
// *hypervisor.SpecError.
func (h *Host) Start(ctx context.Context, key string, spec hypervisor.Spec, meta any) (Guest, error) {
	if !ValidKey(key) {
		return Guest{}, fmt.Errorf("emuvm: guest name %q: use letters, digits, '.', '-' and '_'", key)
	}
	m, err := json.Marshal(meta)
	if err != nil {
		return Guest{}, fmt.Errorf("emuvm: encode guest metadata: %w", err)
	}
	unlock, err := h.lockHost(ctx)
	if err != nil {
		return Guest{}, err
	}
	defer unlock()
	if _, err := os.Stat(h.recordPath(key)); err == nil {
		return Guest{}, fmt.Errorf("%w: %q", ErrExists, key)
	}
	id, err := h.nextID()
	if err != nil {
		return Guest{}, err
	}
	spec.Name, spec.Dir = key, h.guestDir(key)
	if err := os.RemoveAll(spec.Dir); err != nil {
		return Guest{}, fmt.Errorf("emuvm: clear guest dir: %w", err)
	}
	vm, err := h.drv.Start(ctx, spec)
	if err != nil {
		return Guest{}, err
	}
	g := Guest{Key: key, ID: id, Handle: vm.Handle(), Created: time.Now().Unix(), Meta: m,
		Memory: spec.MemoryMiB, VCPUs: max(spec.VCPUs, 1), Resumed: spec.Resume != ""}
	if err := writeJSON(h.recordPath(key), g); err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), qmpTimeout)
		vm.Stop(sctx, 0)
		cancel()
		return Guest{}, fmt.Errorf("emuvm: record guest %s: %w", key, err)
	}
	if err := vm.(hypervisor.Detacher).Detach(); err != nil {
		return Guest{}, fmt.Errorf("emuvm: let go of guest %s: %w", key, err)
	}
	return g, nil
}

// nextID allocates a guest id; the host lock is held.
func (h *Host) nextID() (int, error) {
	p := filepath.Join(h.dir, "next-id")
	id := firstID
	if b, err := os.ReadFile(p); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= firstID {
			id = n
		}
	}
	if err := os.WriteFile(p, []byte(strconv.Itoa(id+1)+"\n"), 0o600); err != nil {
		return 0, fmt.Errorf("emuvm: allocate guest id: %w", err)
	}
	return id, nil
}

// remove deletes a guest's record and runtime dir.
func (h *Host) remove(ctx context.Context, key string) error {
	unlock, err := h.lockHost(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(h.recordPath(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("emuvm: remove guest %s: %w", key, err)
	}
	return os.RemoveAll(h.guestDir(key))
}

// attach reattaches to the guest's QEMU under the guest lock. It returns
// the record and the VM, or vm nil when QEMU is gone.
func (h *Host) attach(ctx context.Context, key string) (Guest, hypervisor.VM, error) {
	g, err := h.Guest(key)
	if err != nil {
		return g, nil, err
	}
	vm, err := h.drv.Reattach(ctx, g.Handle)
	if errors.Is(err, hypervisor.ErrGone) {
		return g, nil, nil
	}
	if err != nil {
		return g, nil, err
	}
	return g, vm, nil
}

func detach(vm hypervisor.VM) {
	if d, ok := vm.(hypervisor.Detacher); ok {
		d.Detach()
	}
}

// State looks at the guest key now. A guest found powered off is reaped
// and its record removed (State Off); the record of a guest whose QEMU
// vanished stays (State Gone).
func (h *Host) State(ctx context.Context, key string) (State, error) {
	unlock, err := h.lockGuest(ctx, key)
	if err != nil {
		return "", err
	}
	defer unlock()
	_, vm, err := h.attach(ctx, key)
	if err != nil {
		return "", err
	}
	if vm == nil {
		return Gone, nil
	}
	st, err := vm.Status(ctx)
	if err != nil {
		detach(vm)
		return "", fmt.Errorf("emuvm: status of %s: %w", key, err)
	}
	switch st {
	case hypervisor.StateRunning:
		detach(vm)
		return Running, nil
	case hypervisor.StatePaused:
		detach(vm)
		return Paused, nil
	}
	// Powered off (or on its way out): the reattached driver quits QEMU;
	// wait for that, then forget the guest.
	exit, err := vm.Wait(ctx)
	if err != nil {
		return "", fmt.Errorf("emuvm: reap %s: %w", key, err)
	}
	if !exit.PoweredOff {
		return Gone, nil
	}
	if err := h.remove(ctx, key); err != nil {
		return "", err
	}
	return Off, nil
}

// Kill ends the guest at once (SIGKILL to its QEMU) and removes it.
func (h *Host) Kill(ctx context.Context, key string) error {
	unlock, err := h.lockGuest(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	_, vm, err := h.attach(ctx, key)
	if err != nil {
		return err
	}
	if vm != nil {
		if err := vm.Stop(ctx, 0); err != nil {
			return fmt.Errorf("emuvm: kill %s: %w", key, err)
		}
	}
	return h.remove(ctx, key)
}

// qmpCommand runs one QMP command on the guest's QEMU under the guest
// lock. A QEMU that is gone gives an error wrapping hypervisor.ErrGone.
func (h *Host) qmpCommand(ctx context.Context, key, command string) error {
	unlock, err := h.lockGuest(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	g, err := h.Guest(key)
	if err != nil {
		return err
	}
	sock := g.Handle.Data["qmp"]
	if sock == "" {
		return fmt.Errorf("emuvm: guest %s has no monitor socket", key)
	}
	dctx, cancel := context.WithTimeout(ctx, qmpTimeout)
	defer cancel()
	c, err := qmp.Dial(dctx, sock)
	if err != nil {
		return fmt.Errorf("emuvm: %s: %w: %w", key, hypervisor.ErrGone, err)
	}
	defer c.Close()
	if err := c.Execute(dctx, command, nil, nil); err != nil {
		return fmt.Errorf("emuvm: %s on %s: %w", command, key, err)
	}
	return nil
}

// Powerdown presses the guest's ACPI power button and returns; the guest
// decides whether to power off.
func (h *Host) Powerdown(ctx context.Context, key string) error {
	return h.qmpCommand(ctx, key, "system_powerdown")
}

// Pause stops the guest's vcpus; Unpause lets them run again.
func (h *Host) Pause(ctx context.Context, key string) error { return h.qmpCommand(ctx, key, "stop") }

// Unpause lets a paused guest run again.
func (h *Host) Unpause(ctx context.Context, key string) error { return h.qmpCommand(ctx, key, "cont") }

// Checkpoint saves the guest's memory and disks into dir (the qemu
// driver's checkpoint format). With cont the guest keeps its state
// (running or paused) afterwards; otherwise it is ended and removed.
func (h *Host) Checkpoint(ctx context.Context, key, dir string, cont bool) (hypervisor.Checkpoint, error) {
	unlock, err := h.lockGuest(ctx, key)
	if err != nil {
		return hypervisor.Checkpoint{}, err
	}
	defer unlock()
	_, vm, err := h.attach(ctx, key)
	if err != nil {
		return hypervisor.Checkpoint{}, err
	}
	if vm == nil {
		return hypervisor.Checkpoint{}, fmt.Errorf("emuvm: checkpoint %s: %w", key, hypervisor.ErrGone)
	}
	ck, err := vm.(hypervisor.Checkpointer).Checkpoint(ctx, dir, hypervisor.CheckpointOptions{Continue: cont})
	if cont || err != nil {
		if st, serr := vm.Status(ctx); serr == nil && (st == hypervisor.StateRunning || st == hypervisor.StatePaused) {
			detach(vm)
		} else if !cont {
			vm.Stop(ctx, 0)
		}
		if err != nil {
			return hypervisor.Checkpoint{}, err
		}
		return ck, nil
	}
	if err := h.remove(ctx, key); err != nil {
		return ck, err
	}
	return ck, nil
}

// writeJSON writes v to path atomically.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
