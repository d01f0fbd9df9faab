package xen

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
)

// Exit reasons.
const (
	ReasonPoweredOff   = "guest-shutdown" // the domain left xl list by itself: the guest powered off
	ReasonCrashed      = "crashed: xl list shows the domain crashed"
	ReasonStopped      = "stopped on request"
	ReasonKilled       = "killed: xl destroy"
	ReasonCheckpointed = "checkpointed"
)

const (
	stopTimeout = 2 * time.Minute        // for xl destroy, bounding a Stop whose ctx ended
	stopPoll    = 200 * time.Millisecond // how often a Stop looks for the domain to go
)

// VM is one Xen domain. Its methods are safe for concurrent use. It owns
// one goroutine (a toolvm.Watcher asking `xl list` every StatusInterval)
// from Start or Reattach until the domain is gone or Detach is called.
type VM struct {
	d      *Driver
	log    *slog.Logger
	handle hypervisor.Handle
	dom    *domain // nil when reattached without a record
	w      *toolvm.Watcher

	ckptMu sync.Mutex // one Checkpoint at a time
}

var (
	_ hypervisor.VM           = (*VM)(nil)
	_ hypervisor.Checkpointer = (*VM)(nil)
	_ hypervisor.Detacher     = (*VM)(nil)
)

func (d *Driver) newVM(h hypervisor.Handle, dom *domain) *VM {
	v := &VM{d: d, log: d.log.With("vm", h.Name), handle: h, dom: dom}
	v.w = toolvm.NewWatcher(toolvm.WatchConfig{
		Interval: d.cfg.StatusInterval,
		Poll:     func(ctx context.Context) (toolvm.Observation, error) { return d.domainState(ctx, h.Name) },
		Ended:    v.ended,
		Logger:   v.log,
	})
	return v
}

// ended decides how a domain that left by itself ended.
func (v *VM) ended(ctx context.Context, o toolvm.Observation) (hypervisor.Exit, error) {
	if o == toolvm.Crashed {
		if _, err := toolvm.Run(ctx, v.d.cfg.XL, "destroy", v.handle.Name); err != nil {
			v.log.Warn("destroy crashed domain", "err", err)
		}
		v.log.Warn("domain crashed")
		return hypervisor.Exit{Reason: ReasonCrashed}, nil
	}
	v.log.Info("domain powered off")
	return hypervisor.Exit{PoweredOff: true, Reason: ReasonPoweredOff}, nil
}

// Handle is what Reattach needs: the domain name and the scratch dir.
func (v *VM) Handle() hypervisor.Handle {
	h := v.handle
	h.Data = make(map[string]string, len(v.handle.Data))
	for k, val := range v.handle.Data {
		h.Data[k] = val
	}
	return h
}

// Wait blocks until the domain is gone and tells how.
func (v *VM) Wait(ctx context.Context) (hypervisor.Exit, error) {
	exit, err := v.w.Wait(ctx)
	if err != nil {
		return exit, fmt.Errorf("wait for %s: %w", v.handle.Name, err)
	}
	return exit, nil
}

// Status asks xl for the domain's state now.
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
	obs, err := v.d.domainState(ctx, v.handle.Name)
	if err != nil {
		return "", fmt.Errorf("status of %s: %w", v.handle.Name, err)
	}
	switch obs {
	case toolvm.Running:
		return hypervisor.StateRunning, nil
	case toolvm.Paused:
		return hypervisor.StatePaused, nil
	case toolvm.Crashed:
		v.w.Hurry(0)
		return hypervisor.StateGone, nil
	}
	v.w.Hurry(0) // let the watcher settle the exit now
	if v.w.IsStopping() {
		return hypervisor.StateGone, nil
	}
	return hypervisor.StateStopped, nil
}

// Stop asks the guest to power off (`xl shutdown -F`: the ACPI power
// button for HVM guests, a shutdown request for PV ones), waits up to
// grace for the domain to go, then destroys it. grace 0 destroys at once.
// When ctx ends Stop skips to the destroy, bounded by its own timeout.
// Stop returns once the domain is gone; on a gone VM it is a no-op. The
// Exit of a stopped VM never has PoweredOff.
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
	v.log.Info("stopping domain", "duration", grace)
	if grace > 0 && ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, grace)
		_, err := toolvm.Run(sctx, v.d.cfg.XL, "shutdown", "-F", v.handle.Name)
		cancel()
		if err != nil {
			v.log.Debug("xl shutdown", "err", err)
		}
		v.w.Hurry(min(stopPoll, grace))
		t := time.NewTimer(grace)
		select {
		case <-v.w.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return v.destroy(ctx, ReasonKilled)
}

// destroy runs `xl destroy` and settles the VM's exit with reason.
func (v *VM) destroy(ctx context.Context, reason string) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	if _, err := toolvm.Run(dctx, v.d.cfg.XL, "destroy", v.handle.Name); err != nil {
		// Already gone is as good as destroyed.
		if obs, lerr := v.d.domainState(dctx, v.handle.Name); lerr != nil || obs != toolvm.Vanished {
			return fmt.Errorf("stop %s: %w", v.handle.Name, err)
		}
	}
	v.w.Settle(hypervisor.Exit{Reason: reason})
	return nil
}

// Detach stops watching the domain; it runs on and can be reattached.
func (v *VM) Detach() error {
	v.w.Detach()
	v.log.Info("detached from domain")
	return nil
}

// A checkpoint dir holds:
//
//	xen-checkpoint.json   the manifest: memory, vcpus, networking, disks
//	xen.mem.ckpt          what `xl save` wrote (HTCondor's name for it)
//	disk-<vdev>.<format>  a copy of each writable disk
//
// `xl save` keeps only the domain's memory and device state; Xen expects
// the disks to stay where they are. A vm universe checkpoint must travel
// to another machine, so the driver copies the disks while the domain is
// paused, before saving it.
const (
	manifestFile = "xen-checkpoint.json"
	memFile      = "xen.mem.ckpt"
)

// Checkpoint pauses the domain, copies its writable disks into dir, and
// saves it with `xl save` (-c with opt.Continue, after which it runs on;
// otherwise the domain is gone when Checkpoint returns, its Exit reason
// "checkpointed"). If the checkpoint fails, a domain that was running is
// unpaused and the error returned.
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
	if v.w.Detached() {
		return hypervisor.Checkpoint{}, hypervisor.ErrDetached
	}
	select {
	case <-v.w.Done():
		return hypervisor.Checkpoint{}, hypervisor.ErrGone
	default:
	}
	if v.dom == nil {
		return hypervisor.Checkpoint{}, fmt.Errorf("no %s in %s: the domain's disks are unknown", recordFile, v.handle.Dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return hypervisor.Checkpoint{}, err
	}
	began := time.Now()
	xl, name := v.d.cfg.XL, v.handle.Name
	// The domain runs (nobody else pauses a job's domain); xl pause
	// fails if it is gone.
	if _, err := toolvm.Run(ctx, xl, "pause", name); err != nil {
		return hypervisor.Checkpoint{}, err
	}
	saved := false
	defer func() {
		if err != nil && !saved {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
			if _, uerr := toolvm.Run(cctx, xl, "unpause", name); uerr != nil {
				v.log.Warn("unpause domain after failed checkpoint", "err", uerr)
			}
			cancel()
		}
	}()
	m := *v.dom
	m.Disks = append([]domainDisk(nil), v.dom.Disks...)
	files := []string{memFile}
	for i, dd := range m.Disks {
		if !dd.Writable {
			continue
		}
		f := "disk-" + dd.Device + "." + dd.Format
		if err := toolvm.CopyFile(filepath.Join(dir, f), dd.Path); err != nil {
			return hypervisor.Checkpoint{}, fmt.Errorf("save disk %s: %w", dd.Device, err)
		}
		m.Disks[i].File = f
		files = append(files, f)
	}
	args := []string{"save"}
	if opt.Continue {
		args = append(args, "-c")
	} else {
		// The domain leaves xl list during the save: not a power-off.
		v.w.Stopping(ReasonCheckpointed)
	}
	args = append(args, name, filepath.Join(dir, memFile))
	if _, err := toolvm.Run(ctx, xl, args...); err != nil {
		if !opt.Continue {
			if obs, lerr := v.d.domainState(ctx, name); lerr == nil && obs != toolvm.Vanished {
				v.w.Stopping("")
			}
		}
		return hypervisor.Checkpoint{}, err
	}
	saved = true
	if !opt.Continue {
		v.w.Settle(hypervisor.Exit{Reason: ReasonCheckpointed})
	} else {
		if _, err := toolvm.Run(ctx, xl, "unpause", name); err != nil {
			return hypervisor.Checkpoint{}, fmt.Errorf("unpause after the save: %w", err)
		}
	}
	if err := writeJSON(filepath.Join(dir, manifestFile), m); err != nil {
		return hypervisor.Checkpoint{}, fmt.Errorf("write manifest: %w", err)
	}
	files = append(files, manifestFile)
	if opt.Continue {
		v.log.Info("domain checkpointed; it runs on", "dir", dir, "duration", time.Since(began))
	} else {
		v.log.Info("domain checkpointed; it is gone", "dir", dir, "duration", time.Since(began))
	}
	return hypervisor.Checkpoint{Files: files}, nil
}

// prepareResume reads the checkpoint in spec.Resume, checks it against the
// spec, and puts the checkpoint's disk copies in place of the spec's disks.
// It returns the domain to restore and the save file.
// The job's disks it replaces are kept beside them (hypervisor.KeptPath)
// and listed in *replaced, for hypervisor.SettleReplaced.
func (d *Driver) prepareResume(spec hypervisor.Spec, replaced *[]string) (domain, string, error) {
	mismatch := func(format string, args ...any) error {
		return specErr("XEN_MISMATCHED_CHECKPOINT", "checkpoint %s: "+format, append([]any{spec.Resume}, args...)...)
	}
	if !filepath.IsAbs(spec.Resume) {
		return domain{}, "", mismatch("path is not absolute")
	}
	var m domain
	if err := readJSON(filepath.Join(spec.Resume, manifestFile), &m); err != nil {
		return domain{}, "", mismatch("%v", err)
	}
	mem := filepath.Join(spec.Resume, memFile)
	if err := regular(mem); err != nil {
		return domain{}, "", mismatch("no saved domain: %v", err)
	}
	if spec.MemoryMiB == 0 {
		spec.MemoryMiB = m.MemoryMiB
	}
	dom, err := buildDomain(spec, d.cfg.Bootloader, d.cfg.Bridge)
	if err != nil {
		return domain{}, "", err
	}
	if dom.MemoryMiB != m.MemoryMiB {
		return domain{}, "", mismatch("saved with %d MiB of memory, the job asks for %d", m.MemoryMiB, dom.MemoryMiB)
	}
	if spec.VCPUs != 0 && dom.VCPUs != m.VCPUs {
		return domain{}, "", mismatch("saved with %d vcpus, the job asks for %d", m.VCPUs, dom.VCPUs)
	}
	if dom.Network != m.Network || dom.Type != m.Type {
		return domain{}, "", mismatch("saved as a %s domain with networking %v, the job asks for %s with %v", m.Type, m.Network, dom.Type, dom.Network)
	}
	if len(dom.Disks) != len(m.Disks) {
		return domain{}, "", mismatch("saved with %d disks, the job has %d", len(m.Disks), len(dom.Disks))
	}
	byDev := map[string]domainDisk{}
	for _, dd := range dom.Disks {
		byDev[dd.Device] = dd
	}
	for _, md := range m.Disks {
		dd, ok := byDev[md.Device]
		if !ok {
			return domain{}, "", mismatch("saved with disk %s, which the job lacks", md.Device)
		}
		if dd.Writable != md.Writable || dd.CDROM != md.CDROM {
			return domain{}, "", mismatch("disk %s is attached differently than when saved", md.Device)
		}
		if md.File != "" {
			if err := regular(filepath.Join(spec.Resume, md.File)); err != nil {
				return domain{}, "", mismatch("disk %s: %v", md.Device, err)
			}
		}
	}
	// Everything checked: only now touch the job's disks, so that a
	// refused checkpoint leaves them for a fresh boot.
	for _, md := range m.Disks {
		if md.File == "" {
			continue
		}
		path := byDev[md.Device].Path
		if err := os.Rename(path, hypervisor.KeptPath(path)); err != nil {
			return domain{}, "", fmt.Errorf("restore disk %s: %w", md.Device, err)
		}
		*replaced = append(*replaced, path)
		if err := toolvm.CopyFile(path, filepath.Join(spec.Resume, md.File)); err != nil {
			return domain{}, "", fmt.Errorf("restore disk %s: %w", md.Device, err)
		}
	}
	dom.FromCheckpnt = true
	return dom, mem, nil
}

// restoreRefused is err, an xl restore that failed: the checkpoint's
// fault (XEN_MISMATCHED_CHECKPOINT: a save file xl cannot read), so that
// the startd tries an older checkpoint or boots the original disks,
// unless the start was cancelled or xl's message says the machine lacks
// memory, space or access.
func restoreRefused(ctx context.Context, dir string, err error) error {
	if ctx.Err() != nil || errors.Is(err, hypervisor.ErrBadSpec) {
		return err
	}
	for _, e := range []string{"Cannot allocate memory", "failed to free memory", "No space left on device", "Permission denied", "Input/output error"} {
		if strings.Contains(err.Error(), e) {
			return err
		}
	}
	return specErr("XEN_MISMATCHED_CHECKPOINT", "checkpoint %s: xl restore refused it: %v", dir, err)
}
