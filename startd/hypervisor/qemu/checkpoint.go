package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/qemu/qmp"
)

// A checkpoint dir holds:
//
//	checkpoint.json   the manifest: machine shape, disks, QEMU version
//	memory.state      QEMU's migration stream: RAM and device state
//	disk-<dev>.<fmt>  a copy of each disk QEMU writes to (sparse, or a reflink)
//
// The memory part is a migration to a file: QEMU 7.2 has no file: URI and
// exec: would run a shell, so the driver opens the file itself and hands
// QEMU the descriptor (getfd, then migrate to fd:NAME). The disk part is a
// copy taken while the guest is stopped and after the migration completed,
// which flushes every disk; copying (rather than chaining qcow2 overlays)
// keeps a checkpoint self-contained, so it can travel to another machine
// and be resumed there, and leaves the running disks as they were.
const (
	manifestFile = "checkpoint.json"
	stateFile    = "memory.state"
	ckptFDName   = "vmpool-ckpt"
	incomingFD   = "vmpool-incoming"
	migratePoll  = 200 * time.Millisecond // query-migrate, between MIGRATION events
)

// Checkpoint saves the VM's memory and disks into dir (created if needed):
// it pauses the guest, migrates its state to dir/memory.state, copies the
// disks QEMU writes to, and writes the manifest. With opt.Continue the
// guest runs on afterwards; otherwise QEMU is quit and Checkpoint returns
// once it is gone, with the VM's Exit reason "checkpointed". If the
// checkpoint fails, a guest that was running is resumed and the error
// returned; the files in dir are then incomplete.
func (v *VM) Checkpoint(ctx context.Context, dir string, opt hypervisor.CheckpointOptions) (hypervisor.Checkpoint, error) {
	ck, err := v.checkpoint(ctx, dir, opt)
	if err != nil {
		return hypervisor.Checkpoint{}, fmt.Errorf("checkpoint %s to %s: %w", v.handle.Name, dir, err)
	}
	return ck, nil
}

func (v *VM) checkpoint(ctx context.Context, dir string, opt hypervisor.CheckpointOptions) (_ hypervisor.Checkpoint, err error) {
	v.ckptMu.Lock()
	defer v.ckptMu.Unlock()
	if v.isDetached() {
		return hypervisor.Checkpoint{}, hypervisor.ErrDetached
	}
	select {
	case <-v.done:
		return hypervisor.Checkpoint{}, hypervisor.ErrGone
	default:
	}
	if v.rec == nil {
		return hypervisor.Checkpoint{}, fmt.Errorf("no %s in %s: the vm's disks are unknown", recordFile, v.handle.Dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return hypervisor.Checkpoint{}, err
	}
	began := time.Now()
	st, err := v.queryStatus(ctx)
	if err != nil {
		return hypervisor.Checkpoint{}, err
	}
	if st == "shutdown" {
		return hypervisor.Checkpoint{}, fmt.Errorf("the guest has powered off")
	}
	wasRunning := st == "running"
	if err := v.qmp.Execute(ctx, "stop", nil, nil); err != nil {
		return hypervisor.Checkpoint{}, err
	}
	defer func() {
		if err != nil && wasRunning {
			cctx, cancel := context.WithTimeout(context.Background(), qmpTimeout)
			if cerr := v.qmp.Execute(cctx, "cont", nil, nil); cerr != nil {
				v.log.Warn("resume guest after failed checkpoint", "err", cerr)
			}
			cancel()
		}
	}()

	m := *v.rec
	m.Disks = append([]recordDisk(nil), v.rec.Disks...)
	m.Version = v.qmp.Version().String()
	m.State = stateFile
	m.Machine = v.resolveMachine(ctx, m.Machine)
	if err := v.saveState(ctx, filepath.Join(dir, stateFile)); err != nil {
		return hypervisor.Checkpoint{}, err
	}
	files := []string{stateFile}
	for i, rd := range m.Disks {
		p := rd.plan()
		if !p.writable() {
			continue
		}
		name := "disk-" + rd.Device + "." + p.attachFormat()
		if err := copyFile(filepath.Join(dir, name), p.attachPath()); err != nil {
			return hypervisor.Checkpoint{}, fmt.Errorf("save disk %s: %w", rd.Device, err)
		}
		m.Disks[i].File = name
		files = append(files, name)
	}
	if err := writeJSON(filepath.Join(dir, manifestFile), m); err != nil {
		return hypervisor.Checkpoint{}, fmt.Errorf("write manifest: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return hypervisor.Checkpoint{}, err
	}
	files = append(files, manifestFile)
	if opt.Continue {
		v.log.Info("vm checkpointed; it runs on", "dir", dir, "duration", time.Since(began))
	} else {
		v.log.Info("vm checkpointed; stopping it", "dir", dir, "duration", time.Since(began))
	}

	if opt.Continue {
		if wasRunning {
			if err := v.qmp.Execute(ctx, "cont", nil, nil); err != nil {
				return hypervisor.Checkpoint{}, fmt.Errorf("resume guest: %w", err)
			}
		}
		return hypervisor.Checkpoint{Files: files}, nil
	}
	v.mu.Lock()
	v.evicting = true
	v.mu.Unlock()
	if err := v.end(ctx); err != nil {
		// The checkpoint is complete; only the eviction failed.
		return hypervisor.Checkpoint{Files: files}, err
	}
	return hypervisor.Checkpoint{Files: files}, nil
}

// end quits QEMU and waits for it to be gone, killing it if it lingers.
func (v *VM) end(ctx context.Context) error {
	v.sampleCPU() // the last reading of a QEMU that is not our child
	qctx, cancel := context.WithTimeout(ctx, quitWait)
	defer cancel()
	if err := v.qmp.Execute(qctx, "quit", nil, nil); err != nil {
		v.log.Debug("quit", "err", err)
	}
	select {
	case <-v.done:
		return nil
	case <-qctx.Done():
	}
	return v.kill()
}

// saveState migrates the paused VM into the file at path.
func (v *VM) saveState(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := v.qmp.ExecuteWithFile(ctx, "getfd", map[string]string{"fdname": ckptFDName}, f, nil); err != nil {
		return fmt.Errorf("save memory state: %w", err)
	}
	if err := v.qmp.Execute(ctx, "migrate", map[string]string{"uri": "fd:" + ckptFDName}, nil); err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), qmpTimeout)
		v.qmp.Execute(cctx, "closefd", map[string]string{"fdname": ckptFDName}, nil)
		cancel()
		return fmt.Errorf("save memory state: %w", err)
	}
	if err := waitMigration(ctx, v.qmp, v.migration, nil); err != nil {
		if ctx.Err() != nil {
			cctx, cancel := context.WithTimeout(context.Background(), qmpTimeout)
			v.qmp.Execute(cctx, "migrate_cancel", nil, nil)
			cancel()
		}
		return fmt.Errorf("save memory state: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save memory state: %w", err)
	}
	return f.Close()
}

// waitMigration waits until query-migrate reports the migration completed
// or failed. kick has a value after each MIGRATION event; query-migrate is
// also asked every migratePoll in case an event is missed. drain, if not
// nil, is called after each kick (to empty the client's event queue when
// no monitor does).
func waitMigration(ctx context.Context, c *qmp.Client, kick <-chan struct{}, drain func()) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		var info struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := c.Execute(ctx, "query-migrate", nil, &info); err != nil {
			return err
		}
		switch info.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("migration %s: %s", info.Status, info.ErrorDesc)
		}
		t.Reset(migratePoll)
		select {
		case <-kick:
			if drain != nil {
				drain()
			}
		case <-t.C:
		case <-c.Done():
			return c.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// resolveMachine turns an alias such as "pc" into the versioned machine
// type it stands for ("pc-i440fx-7.2"), so that a resume on a newer QEMU
// builds the same hardware.
func (v *VM) resolveMachine(ctx context.Context, machine string) string {
	var list []struct {
		Name  string `json:"name"`
		Alias string `json:"alias"`
	}
	if err := v.qmp.Execute(ctx, "query-machines", nil, &list); err != nil {
		v.log.Debug("query-machines", "err", err)
		return machine
	}
	for _, m := range list {
		if m.Alias == machine {
			return m.Name
		}
	}
	return machine
}

// prepareResume reads the checkpoint in spec.Resume, checks it against the
// spec, puts the checkpoint's disks in place and fills l to launch QEMU
// waiting for the memory state. The writable disks of the spec are
// replaced by the checkpoint's copies (so the job's disk files end up with
// the VM's final content, as after a plain boot); the checkpoint dir is
// only read.
func (d *Driver) prepareResume(ctx context.Context, spec hypervisor.Spec, l *launch) (record, error) {
	mismatch := func(format string, args ...any) error {
		return specErr("KVM_MISMATCHED_CHECKPOINT", "checkpoint %s: "+format, append([]any{spec.Resume}, args...)...)
	}
	if !filepath.IsAbs(spec.Resume) {
		return record{}, mismatch("path is not absolute")
	}
	m, err := readRecord(filepath.Join(spec.Resume, manifestFile))
	if err != nil {
		return record{}, mismatch("%v", err)
	}
	if _, err := os.Stat(filepath.Join(spec.Resume, m.State)); m.State == "" || err != nil {
		return record{}, mismatch("no memory state: %v", err)
	}
	if spec.MemoryMiB != 0 && spec.MemoryMiB != m.MemoryMiB {
		return record{}, mismatch("saved with %d MiB of memory, the job asks for %d", m.MemoryMiB, spec.MemoryMiB)
	}
	if spec.VCPUs != 0 && spec.VCPUs != m.VCPUs {
		return record{}, mismatch("saved with %d vcpus, the job asks for %d", m.VCPUs, spec.VCPUs)
	}
	if spec.Network.Enabled != m.Network {
		return record{}, mismatch("saved with networking %v, the job asks for %v", m.Network, spec.Network.Enabled)
	}
	plans, err := planDisks(spec.Disks)
	if err != nil {
		return record{}, err
	}
	byDev := make(map[string]diskPlan, len(plans))
	for _, p := range plans {
		byDev[p.device] = p
	}
	if len(plans) != len(m.Disks) {
		return record{}, mismatch("saved with %d disks, the job has %d", len(m.Disks), len(plans))
	}
	l.disks = nil
	for _, md := range m.Disks {
		p, ok := byDev[md.Device]
		if !ok {
			return record{}, mismatch("saved with disk %s, which the job lacks", md.Device)
		}
		if p.bus != md.Bus || p.cdrom != md.CDROM || p.readOnly != md.ReadOnly {
			return record{}, mismatch("disk %s is attached differently than when saved", md.Device)
		}
		if md.File != "" {
			src := filepath.Join(spec.Resume, md.File)
			if md.Overlay != "" {
				p.overlay = filepath.Join(spec.Dir, p.device+".overlay.qcow2")
				p.delta = md.Delta
				if err := copyFile(p.overlay, src); err != nil {
					return record{}, fmt.Errorf("restore disk %s: %w", md.Device, err)
				}
				// The overlay still names the base it had where it was
				// saved; point it at this job's copy (same content).
				if err := d.qemuImg(ctx, "rebase", "-u", "-f", "qcow2", "-b", p.Path, "-F", p.format, p.overlay); err != nil {
					return record{}, fmt.Errorf("restore disk %s: %w", md.Device, err)
				}
			} else {
				if err := os.Rename(p.Path, hypervisor.KeptPath(p.Path)); err != nil {
					return record{}, fmt.Errorf("restore disk %s: %w", md.Device, err)
				}
				l.replaced = append(l.replaced, p.Path)
				if err := copyFile(p.Path, src); err != nil {
					return record{}, fmt.Errorf("restore disk %s: %w", md.Device, err)
				}
				p.format = md.Format
			}
		}
		l.disks = append(l.disks, p)
	}
	// A kernel-booted guest resumes with the same kernel command line
	// (the kernel and initrd are this job's copies of the same files).
	if (m.Kernel != "") != (spec.Kernel != "") {
		return record{}, mismatch("saved booted from %q, the job boots %q", m.Kernel, spec.Kernel)
	}
	if m.Kernel != "" {
		if err := kernelBoot(spec, l); err != nil {
			return record{}, err
		}
		if l.cmdline != m.Append {
			return record{}, mismatch("saved with kernel command line %q, the job gives %q", m.Append, l.cmdline)
		}
	}
	l.machine, l.memoryMiB, l.vcpus, l.vnc = m.Machine, m.MemoryMiB, m.VCPUs, m.VNC
	l.incoming = true
	return m, nil
}

// stateRefused is err, a resume whose memory state QEMU did not load: the
// checkpoint's fault (KVM_MISMATCHED_CHECKPOINT: corrupt, or saved by a
// QEMU this one cannot read), so that the startd tries an older
// checkpoint or boots the original disks, unless the start was cancelled
// or QEMU's message carries an errno of the machine's.
func stateRefused(ctx context.Context, dir string, err error) error {
	if ctx.Err() != nil || errors.Is(err, hypervisor.ErrBadSpec) || machineErrno(err.Error()) {
		return err
	}
	return specErr("KVM_MISMATCHED_CHECKPOINT", "checkpoint %s: QEMU cannot load its memory state: %v", dir, err)
}

// incoming feeds the saved memory state to a QEMU started with -incoming
// defer and waits until it is loaded; the guest is then paused (-S).
func (d *Driver) incoming(ctx context.Context, c *qmp.Client, dir string, m record) error {
	f, err := os.Open(filepath.Join(dir, m.State))
	if err != nil {
		return fmt.Errorf("load memory state: %w", err)
	}
	defer f.Close()
	if err := c.ExecuteWithFile(ctx, "getfd", map[string]string{"fdname": incomingFD}, f, nil); err != nil {
		return fmt.Errorf("load memory state: %w", err)
	}
	if err := c.Execute(ctx, "migrate-incoming", map[string]string{"uri": "fd:" + incomingFD}, nil); err != nil {
		return fmt.Errorf("load memory state: %w", err)
	}
	// No monitor runs yet; the events before cont (MIGRATION, STOP) only
	// pace this wait.
	if err := waitMigration(ctx, c, c.EventsReady(), func() { c.TakeEvents() }); err != nil {
		// A QEMU that cannot load the state exits.
		return fmt.Errorf("load memory state: %w", err)
	}
	return nil
}
