package vmware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/toolvm"
	"github.com/vmpool/vmpool/startd/hypervisor/vmware/vmformat"
)

// Exit reasons.
const (
	ReasonPoweredOff   = "guest-shutdown" // the VM left vmrun list by itself: the guest powered off
	ReasonSuspended    = "suspended outside vmpool"
	ReasonStopped      = "stopped on request"
	ReasonKilled       = "killed: vmrun stop hard"
	ReasonCheckpointed = "checkpointed"
)

const stopTimeout = 2 * time.Minute // for vmrun stop hard, bounding a Stop whose ctx ended

// VM is one VMware VM. Its methods are safe for concurrent use. It owns
// one goroutine (a toolvm.Watcher asking `vmrun list` every
// StatusInterval) from Start or Reattach until the VM is gone or Detach.
type VM struct {
	d      *Driver
	log    *slog.Logger
	handle hypervisor.Handle
	rec    *record
	w      *toolvm.Watcher

	ckptMu sync.Mutex // one Checkpoint at a time
}

var (
	_ hypervisor.VM           = (*VM)(nil)
	_ hypervisor.Checkpointer = (*VM)(nil)
	_ hypervisor.Detacher     = (*VM)(nil)
)

func (d *Driver) newVM(h hypervisor.Handle, rec *record) *VM {
	v := &VM{d: d, log: d.log.With("vm", h.Name), handle: h, rec: rec}
	v.w = toolvm.NewWatcher(toolvm.WatchConfig{
		Interval: d.cfg.StatusInterval,
		Poll:     func(ctx context.Context) (toolvm.Observation, error) { return d.vmState(ctx, rec.VMX) },
		Ended:    v.ended,
		Logger:   v.log,
	})
	return v
}

// ended runs when the VM left vmrun list by itself: the guest powered off,
// unless someone suspended it. The driver's snapshot is consolidated into
// the job's disks (not over shared disks).
func (v *VM) ended(ctx context.Context, _ toolvm.Observation) (hypervisor.Exit, error) {
	if b, err := os.ReadFile(v.rec.VMX); err == nil {
		if vmx, err := vmformat.ParseVMX(b); err == nil {
			if s, _ := vmx.Get("checkpoint.vmState"); s != "" {
				v.log.Warn("vm suspended behind vmpool's back")
				return hypervisor.Exit{Reason: ReasonSuspended}, nil
			}
		}
	}
	if v.rec.Snapshot != "" && !v.rec.Shared {
		if _, err := v.d.vmrun(ctx, "deleteSnapshot", v.rec.VMX, v.rec.Snapshot); err != nil {
			return hypervisor.Exit{}, fmt.Errorf("consolidate the snapshot disks after the power-off: %w", err)
		}
		rec := *v.rec
		rec.Snapshot = ""
		if err := writeJSON(filepath.Join(v.handle.Dir, recordFile), rec); err != nil {
			v.log.Warn("record consolidated snapshot", "err", err)
		}
	}
	v.log.Info("vm powered off")
	return hypervisor.Exit{PoweredOff: true, Reason: ReasonPoweredOff}, nil
}

// Handle is what Reattach needs: the .vmx and the scratch dir.
func (v *VM) Handle() hypervisor.Handle {
	h := v.handle
	h.Data = make(map[string]string, len(v.handle.Data))
	for k, val := range v.handle.Data {
		h.Data[k] = val
	}
	return h
}

// Wait blocks until the VM is gone and tells how.
func (v *VM) Wait(ctx context.Context) (hypervisor.Exit, error) {
	exit, err := v.w.Wait(ctx)
	if err != nil {
		return exit, fmt.Errorf("wait for %s: %w", v.handle.Name, err)
	}
	return exit, nil
}

// Status asks vmrun whether the VM runs.
func (v *VM) Status(ctx context.Context) (hypervisor.State, error) {
	if exit, ok := v.w.Exit(); ok {
		if exit.PoweredOff {
			return hypervisor.StateStopped, nil
		}
		return hypervisor.StateGone, nil
	}
	if v.w.Detached() {
		return "", fmt.Errorf("status of %s: %w", v.handle.Name, hypervisor.ErrDetached)
	}
	obs, err := v.d.vmState(ctx, v.rec.VMX)
	if err != nil {
		return "", fmt.Errorf("status of %s: %w", v.handle.Name, err)
	}
	if obs == toolvm.Running {
		return hypervisor.StateRunning, nil
	}
	v.w.Hurry(0) // let the watcher settle the exit now
	if v.w.IsStopping() {
		return hypervisor.StateGone, nil
	}
	return hypervisor.StateStopped, nil
}

// Stop asks the guest to power off (`vmrun stop soft`) within grace, then
// stops the VM hard. grace 0 stops it hard at once. When ctx ends Stop
// skips to the hard stop, bounded by its own timeout. Stop returns once
// the VM is off; on a gone VM it is a no-op. The Exit of a stopped VM
// never has PoweredOff.
func (v *VM) Stop(ctx context.Context, grace time.Duration) error {
	select {
	case <-v.w.Done():
		return nil
	default:
	}
	if v.w.Detached() {
		return fmt.Errorf("stop %s: %w", v.handle.Name, hypervisor.ErrDetached)
	}
	v.w.Stopping(ReasonStopped)
	v.log.Info("stopping vm", "duration", grace)
	if grace > 0 && ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, grace)
		_, err := v.d.vmrun(sctx, "stop", v.rec.VMX, "soft")
		cancel()
		if err == nil {
			v.w.Settle(hypervisor.Exit{Reason: ReasonStopped})
			return nil
		}
		v.log.Debug("vmrun stop soft", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	if _, err := v.d.vmrun(sctx, "stop", v.rec.VMX, "hard"); err != nil {
		// Already off is as good as stopped.
		if obs, lerr := v.d.vmState(sctx, v.rec.VMX); lerr != nil || obs != toolvm.Vanished {
			return fmt.Errorf("stop %s: %w", v.handle.Name, err)
		}
	}
	v.w.Settle(hypervisor.Exit{Reason: ReasonKilled})
	return nil
}

// Detach stops watching the VM; it runs on and can be reattached.
func (v *VM) Detach() error {
	v.w.Detach()
	v.log.Info("detached from vm")
	return nil
}

// A checkpoint dir holds the VM's files as they are after `vmrun suspend`:
//
//	vmware-checkpoint.json  the manifest: the files, the .vmx, the record
//	JOB.vmx                 with checkpoint.vmState naming the .vmss
//	JOB.vmss, JOB.vmem      the suspended state and memory
//	JOB.vmsd, *.vmsn        the snapshot database, when there is one
//	disks                   the snapshot deltas, or every disk file without snapshots
const manifestFile = "vmware-checkpoint.json"

type manifest struct {
	VMX   string   `json:"vmx"` // base name
	Files []string `json:"files"`
	Rec   record   `json:"record"`
}

// Checkpoint suspends the VM (`vmrun suspend hard`) and copies its files
// into dir. With opt.Continue the VM is started again, which resumes it;
// otherwise it is off when Checkpoint returns, its Exit reason
// "checkpointed". If the suspend fails the VM runs on and the error is
// returned.
func (v *VM) Checkpoint(ctx context.Context, dir string, opt hypervisor.CheckpointOptions) (hypervisor.Checkpoint, error) {
	ck, err := v.checkpoint(ctx, dir, opt)
	if err != nil {
		return hypervisor.Checkpoint{}, fmt.Errorf("checkpoint %s to %s: %w", v.handle.Name, dir, err)
	}
	return ck, nil
}

func (v *VM) checkpoint(ctx context.Context, dir string, opt hypervisor.CheckpointOptions) (hypervisor.Checkpoint, error) {
	v.ckptMu.Lock()
	defer v.ckptMu.Unlock()
	if v.w.Detached() {
		return hypervisor.Checkpoint{}, hypervisor.ErrDetached
	}
	select {
	case <-v.w.Done():
		return hypervisor.Checkpoint{}, hypervisor.ErrGone
	default:
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return hypervisor.Checkpoint{}, err
	}
	began := time.Now()
	// The VM leaves vmrun list while suspended: not a power-off.
	release := v.w.Hold()
	defer release()
	if _, err := v.d.vmrun(ctx, "suspend", v.rec.VMX, "hard"); err != nil {
		return hypervisor.Checkpoint{}, err
	}
	if !opt.Continue {
		v.w.Stopping(ReasonCheckpointed)
	}
	files, err := v.suspendedFiles()
	if err == nil {
		for _, f := range files {
			if err = toolvm.CopyFile(filepath.Join(dir, filepath.Base(f)), f); err != nil {
				break
			}
		}
	}
	m := manifest{VMX: filepath.Base(v.rec.VMX), Rec: *v.rec}
	for _, f := range files {
		m.Files = append(m.Files, filepath.Base(f))
	}
	if err == nil {
		err = writeJSON(filepath.Join(dir, manifestFile), m)
	}
	if opt.Continue || err != nil {
		// Resume the VM: vmrun start on a suspended VM continues it.
		if _, serr := v.d.vmrun(ctx, "start", v.rec.VMX, "nogui"); serr != nil {
			v.w.Settle(hypervisor.Exit{Reason: "suspended for a checkpoint and not resumed: " + serr.Error()})
			if err == nil {
				err = fmt.Errorf("resume after the checkpoint: %w", serr)
			}
		}
		v.w.Stopping("")
		if err != nil {
			return hypervisor.Checkpoint{}, err
		}
		v.log.Info("vm checkpointed; it runs on", "dir", dir, "duration", time.Since(began))
	} else {
		v.w.Settle(hypervisor.Exit{Reason: ReasonCheckpointed})
		v.log.Info("vm checkpointed; it is off", "dir", dir, "duration", time.Since(began))
	}
	return hypervisor.Checkpoint{Files: append(m.Files, manifestFile)}, nil
}

// suspendedFiles lists the files a checkpoint of the suspended VM needs:
// the .vmx and what it names (the suspended state, the snapshot database)
// and its disks' files that are in its directory: only the snapshot
// deltas when the VM writes to a snapshot, every disk file otherwise.
func (v *VM) suspendedFiles() ([]string, error) {
	vmxPath := v.rec.VMX
	dir := filepath.Dir(vmxPath)
	b, err := os.ReadFile(vmxPath)
	if err != nil {
		return nil, err
	}
	vmx, err := vmformat.ParseVMX(b)
	if err != nil {
		return nil, err
	}
	files := []string{vmxPath}
	add := func(p string) {
		if filepath.Dir(p) != dir {
			return // shared, or elsewhere: not the VM's own
		}
		for _, f := range files {
			if f == p {
				return
			}
		}
		files = append(files, p)
	}
	state, _ := vmx.Get("checkpoint.vmState")
	if state == "" {
		return nil, fmt.Errorf("the .vmx names no suspended state after vmrun suspend")
	}
	vmss := resolve(vmxPath, state)
	add(vmss)
	stem := strings.TrimSuffix(vmxPath, filepath.Ext(vmxPath))
	for _, p := range []string{strings.TrimSuffix(vmss, ".vmss") + ".vmem", stem + ".vmsd", stem + ".nvram"} {
		if _, err := os.Stat(p); err == nil {
			add(p)
		}
	}
	vmsn, _ := filepath.Glob(stem + "-Snapshot*.vmsn")
	for _, p := range vmsn {
		add(p)
	}
	for _, n := range vmx.Disks() {
		p := resolve(vmxPath, n.File)
		if n.CDROM() {
			continue
		}
		chain, err := vmformat.Chain(p)
		if err != nil {
			return nil, err
		}
		for i, d := range chain {
			if v.rec.Snapshot != "" && i > 0 {
				break // below the snapshot: the job's own files, unchanged
			}
			for _, f := range d.Files() {
				add(f)
			}
		}
	}
	return files, nil
}

func resolve(vmx, name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(filepath.Dir(vmx), name)
}

// prepareResume checks the checkpoint in spec.Resume against the spec and
// copies its files over the job's, and returns the VM's record. The
// job's files it replaces are kept beside them (hypervisor.KeptPath), and every
// file it writes is listed in *replaced, for settleReplaced.
func (d *Driver) prepareResume(spec hypervisor.Spec, replaced *[]replacedFile) (record, error) {
	mismatch := func(format string, args ...any) error {
		return specErr("VMWARE_MISMATCHED_CHECKPOINT", "checkpoint %s: "+format, append([]any{spec.Resume}, args...)...)
	}
	if !filepath.IsAbs(spec.Resume) {
		return record{}, mismatch("path is not absolute")
	}
	var m manifest
	if err := readJSON(filepath.Join(spec.Resume, manifestFile), &m); err != nil {
		return record{}, mismatch("%v", err)
	}
	if m.VMX != filepath.Base(spec.VMX) {
		return record{}, mismatch("saved from %s, the job runs %s", m.VMX, filepath.Base(spec.VMX))
	}
	if spec.MemoryMiB != 0 && spec.MemoryMiB != m.Rec.MemoryMiB {
		return record{}, mismatch("saved with %d MiB of memory, the job asks for %d", m.Rec.MemoryMiB, spec.MemoryMiB)
	}
	if spec.VCPUs != 0 && spec.VCPUs != m.Rec.VCPUs {
		return record{}, mismatch("saved with %d vcpus, the job asks for %d", m.Rec.VCPUs, spec.VCPUs)
	}
	if spec.Network.Enabled != m.Rec.Network {
		return record{}, mismatch("saved with networking %v, the job asks for %v", m.Rec.Network, spec.Network.Enabled)
	}
	hasVMX := false
	for _, f := range m.Files {
		if filepath.Base(f) != f || f == "" || f == "." || f == ".." {
			return record{}, mismatch("file name %q", f)
		}
		if _, err := os.Stat(filepath.Join(spec.Resume, f)); err != nil {
			return record{}, mismatch("%v", err)
		}
		hasVMX = hasVMX || f == m.VMX
	}
	if !hasVMX {
		return record{}, mismatch("no %s", m.VMX)
	}
	// Everything checked: only now overwrite the job's files, so that a
	// refused checkpoint leaves them for a fresh boot.
	dir := filepath.Dir(spec.VMX)
	for _, f := range m.Files {
		path := filepath.Join(dir, f)
		r := replacedFile{path: path}
		if _, err := os.Lstat(path); err == nil {
			if err := os.Rename(path, hypervisor.KeptPath(path)); err != nil {
				return record{}, fmt.Errorf("restore %s: %w", f, err)
			}
			r.kept = true
		}
		*replaced = append(*replaced, r)
		if err := toolvm.CopyFile(path, filepath.Join(spec.Resume, f)); err != nil {
			return record{}, fmt.Errorf("restore %s: %w", f, err)
		}
	}
	rec := m.Rec
	rec.VMX = spec.VMX
	return rec, nil
}

// replacedFile is a file of the job's VM a resume wrote from the
// checkpoint; kept: the job had its own, kept at hypervisor.KeptPath(path).
type replacedFile struct {
	path string
	kept bool
}

// settleReplaced ends a resume's replacement of the job's files: a VM
// that resumed keeps the checkpoint's; a resume that failed puts the
// job's own back and removes the others (the suspended state above all,
// which vmrun would resume again), so that what the startd does next (an
// older checkpoint, or a boot of the job's files) starts from them.
func settleReplaced(files []replacedFile, resumed bool) {
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		switch {
		case resumed && f.kept:
			os.Remove(hypervisor.KeptPath(f.path))
		case resumed:
		case f.kept:
			os.Rename(hypervisor.KeptPath(f.path), f.path)
		default:
			os.Remove(f.path)
		}
	}
}

// resumeRefused is err, a vmrun start of a resumed VM that failed: the
// checkpoint's fault (VMWARE_MISMATCHED_CHECKPOINT: a suspended state
// vmrun cannot read), so that the startd tries an older checkpoint or
// boots the job's files, unless the start was cancelled or vmrun's
// message says the machine lacks memory, space or access.
func resumeRefused(ctx context.Context, dir string, err error) error {
	if ctx.Err() != nil || errors.Is(err, hypervisor.ErrBadSpec) {
		return err
	}
	for _, e := range []string{"Cannot allocate memory", "Insufficient memory", "No space left on device", "Permission denied", "Input/output error"} {
		if strings.Contains(err.Error(), e) {
			return err
		}
	}
	return specErr("VMWARE_MISMATCHED_CHECKPOINT", "checkpoint %s: vmrun cannot resume it: %v", dir, err)
}
