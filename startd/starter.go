package startd

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
	"sync/atomic"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/startd/hypervisor"
)

// A starter (HTCondor's word) runs one claim: it brings the job's disks
// from the object store into a scratch directory, boots the VM (or resumes
// its checkpoint, or reattaches to it after a startd restart), waits for
// the guest to power off or for a stop request, sends the modified disks
// or the checkpoint back, and reports each step as an event.

// Hold codes and subcodes the startd gives (HTCondor's numbering).
const (
	holdFailedToCreate = 6  // FailedToCreateProcess: the job's VM cannot run
	holdOutputTransfer = 12 // TransferOutputError
	holdInputTransfer  = 13 // TransferInputError
	vacateVMError      = 1020
	// subVMCrashed is vmpool's subcode of code 6 for a VM that stopped
	// without the guest powering off (QEMU crashed or was killed).
	subVMCrashed = 100
)

// gahpSubcodes maps VMGAHP error names to HTCondor's code-6 subcodes.
var gahpSubcodes = map[string]int{
	"JOBCLASSAD_NO_VM_MEMORY_PARAM": 0, "XEN_NO_KERNEL_PARAM": 1, "MISMATCHED_HARDWARE_VT": 2,
	"XEN_KERNEL_NOT_FOUND": 3, "XEN_INITRD_NOT_FOUND": 4, "XEN_NO_ROOT_DEVICE_PARAM": 5,
	"XEN_NO_DISK_PARAM": 6, "XEN_INVALID_DISK_PARAM": 7, "XEN_MISMATCHED_CHECKPOINT": 8,
	"KVM_NO_DISK_PARAM": 9, "KVM_INVALID_DISK_PARAM": 10, "KVM_MISMATCHED_CHECKPOINT": 11,
	"BAD_IMAGE": 12, "NO_VMWARE_VMX_PARAM": 13, "VMWARE_NO_VMX_PARAM": 13,
	// vmpool's own, past HTCondor's list: networking the machine does not
	// give (the job overrode its Requirements).
	"JOBCLASSAD_MISMATCHED_NETWORKING": 101, "JOBCLASSAD_MISMATCHED_NETWORKING_TYPE": 102,
	// and the drivers' errors HTCondor's list has no entry for (0 is
	// JOBCLASSAD_NO_VM_MEMORY_PARAM's, not a default).
	"VMWARE_VMX_ERROR": 103, "VMWARE_MISMATCHED_CHECKPOINT": 104,
	"KVM_INVALID_NETWORK_PARAM": 105, "XEN_INVALID_NETWORK_PARAM": 105, "VMWARE_INVALID_NETWORK_PARAM": 105,
	"INVALID_NAME": 106,
}

// subOtherVMGAHP is the subcode of a VMGAHP error gahpSubcodes lacks.
const subOtherVMGAHP = 199

// jobClassAdErrors are the errors HTCondor names VMGAHP_ERR_JOBCLASSAD_*
// (every one of its starter's list but BAD_IMAGE), which the drivers'
// codes give without the JOBCLASSAD_.
var jobClassAdErrors = map[string]bool{
	"MISMATCHED_HARDWARE_VT": true, "XEN_NO_KERNEL_PARAM": true, "XEN_KERNEL_NOT_FOUND": true,
	"XEN_INITRD_NOT_FOUND": true, "XEN_NO_ROOT_DEVICE_PARAM": true, "XEN_NO_DISK_PARAM": true,
	"XEN_INVALID_DISK_PARAM": true, "XEN_MISMATCHED_CHECKPOINT": true, "KVM_NO_DISK_PARAM": true,
	"KVM_INVALID_DISK_PARAM": true, "KVM_MISMATCHED_CHECKPOINT": true, "NO_VMWARE_VMX_PARAM": true,
}

type waitResult struct {
	exit hypervisor.Exit
	err  error
}

func (d *Startd) runClaim(ctx context.Context, c *Claim, stop <-chan string) {
	id := c.Req.ClaimID
	log := d.logger.With("job", c.Req.Schedd+"/"+c.Req.Job.String(), "slot", c.Slot)
	scratch := filepath.Join(d.executeDir(), "dir_"+shortID(id))
	// emit records a VM event. What happened to a VM must reach the log:
	// an event the log refuses (its disk nearly full, ErrDiskFull) is
	// retried every second until it is recorded or the startd stops, so
	// that a guest that powered off meanwhile is not taken for running
	// (its job stuck) nor, after a restart, for lost (its job run again).
	emit := func(typ string, payload any) bool {
		for attempt := 0; ; attempt++ {
			_, err := d.loop.DoEvents(ctx, func(time.Time) ([]events.Event, error) {
				cur := d.st.Claims[id]
				if cur == nil {
					return nil, nil // the claim already ended
				}
				if p, ok := payload.(events.VMEventPayload); ok {
					return []events.Event{VMEvent(cur, typ, p)}, nil
				}
				return []events.Event{events.New(typ, payload).ForJob(cur.Req.Schedd, cur.Req.Job)}, nil
			})
			if err == nil {
				if attempt > 0 {
					log.Info("VM event recorded after retrying", "type", typ, "attempts", attempt+1)
				}
				return true
			}
			if ctx.Err() != nil {
				log.Error("record VM event", "type", typ, "err", err)
				return false
			}
			if attempt%30 == 0 {
				log.Error("cannot record VM event; retrying every second", "type", typ, "err", err)
			}
			select {
			case <-ctx.Done():
				return false
			case <-time.After(time.Second):
			}
		}
	}
	finish := func(typ string, p events.VMEventPayload) {
		if emit(typ, p) {
			if err := os.RemoveAll(scratch); err != nil {
				log.Warn("remove scratch directory", "dir", scratch, "err", err)
			}
		}
	}
	slotName := "Error from " + c.Slot + ": "

	d.mu.Lock()
	job := d.jobAds[id]
	delete(d.jobAds, id)
	d.mu.Unlock()
	var err error
	if job == nil {
		job, err = d.sharedAds.parseJobAd(c.Req)
	}
	if err != nil {
		finish(events.VMFailed, events.VMEventPayload{Hold: true, Code: holdFailedToCreate, Reason: slotName + "job ad does not parse: " + err.Error()})
		return
	}
	// The job's network is one of the types the machine advertises, not
	// of all those configured: a configured bridge the machine cannot
	// give (not root, its bridge missing) was chosen for untyped jobs
	// when it was the default, and each such start failed and disabled
	// the machine's VMs.
	var ncfg Config
	d.loop.View(func() { ncfg = d.cfg }) // SetPolicy changes it under the loop's lock
	ncfg.NetworkingTypes = netTypes(&d.cfg, d.fingerprint())
	spec, outs, specErr := jobSpec(&ncfg, job, id, scratch, c.Req.Inputs)
	// What the run reads of the job ad later, read now: the ad is not
	// kept while the VM runs (a startd of many slots held kilobytes of
	// parsed ad per VM, all scanned by every garbage collection).
	wantCkpt, _ := job.EvalBool("JobVMCheckpoint")
	ckptSecs, _ := job.EvalInt("JobVMCheckpointInterval")
	noOutput, _ := job.EvalBool("VMPARAM_No_Output_VM")

	var vm hypervisor.VM
	var bytesIn int64
	started := time.Now()
	// sendBack ends a run whose guest powered off (off: the exit as its
	// VMPoweredOff recorded it): the changed writable disks go back to the
	// owner's bucket, then the VMExited says the job is done.
	sendBack := func(off events.VMEventPayload) {
		var refs []events.FileRef
		var bytesOut int64
		outStart := time.Now()
		if !noOutput {
			for _, o := range outs {
				ref, changed, err := storeIfChanged(ctx, d.xferFor(c), o)
				if err != nil {
					finish(events.VMFailed, events.VMEventPayload{Hold: true, Code: holdOutputTransfer, Reason: slotName + "send back " + o.name + ": " + err.Error()})
					return
				}
				if changed {
					refs = append(refs, ref)
					bytesOut += ref.Size
				}
			}
		}
		if len(refs) > 0 {
			d.metrics.transferred(transferOutput, bytesOut, time.Since(outStart))
		}
		log.Info("guest powered off", "returned", len(refs), "bytes", bytesOut, "run", time.Duration(off.RunNanos).Round(time.Millisecond))
		off.PoweredOff, off.Outputs, off.BytesIn, off.BytesOut = true, refs, bytesIn, bytesOut
		finish(events.VMExited, off)
	}
	var poweredOff *events.VMEventPayload
	if c.Handle != nil {
		d.loop.View(func() {
			if cur := d.st.Claims[id]; cur != nil {
				poweredOff, bytesIn = cur.PoweredOff, cur.BytesIn
			}
		})
	}
	if poweredOff != nil {
		// The guest powered off before the startd restarted, and its
		// disks had not all gone back: send them now. The VM is gone.
		log.Info("the guest had powered off before the startd restarted; sending its disks back")
		sendBack(*poweredOff)
		return
	}
	if c.Handle != nil {
		vm, err = d.cfg.Driver.Reattach(ctx, *c.Handle)
		if err != nil {
			log.Warn("VM gone after startd restart; the job goes back to the queue", "err", err)
			// The run fetched its inputs before the restart, as the log's
			// VMStarted recorded: say so, as a VMEvicted would.
			d.loop.View(func() {
				if cur := d.st.Claims[id]; cur != nil {
					bytesIn = cur.BytesIn
				}
			})
			finish(events.VMFailed, events.VMEventPayload{Code: vacateVMError, Reason: "the VM was lost while its startd was down: " + err.Error(),
				BytesIn: bytesIn})
			return
		}
		log.Info("reattached to running VM")
		if !c.Started {
			emit(events.VMStarted, events.VMEventPayload{Host: slotHost(c.Slot)})
		}
		// The run began before the restart, and its inputs were fetched
		// then: its end reports the whole run's wall time and bytes as
		// the log recorded them (the VMStarted), not the part since this
		// process reattached. The time elapsed on the daemon's clock,
		// which stamped the VMStarted, becomes a start on this process's
		// monotonic clock.
		d.loop.View(func() {
			if cur := d.st.Claims[id]; cur != nil {
				bytesIn = cur.BytesIn
				if cur.RunStart > 0 {
					if before := d.cfg.Clock().Sub(time.Unix(0, cur.RunStart)); before > 0 {
						started = time.Now().Add(-before)
					}
				}
			}
		})
	} else {
		// The VM of an earlier start of this claim, if the startd stopped
		// before it recorded its handle, would otherwise run (or wait,
		// paused) for ever beside the new one.
		if lc, ok := d.cfg.Driver.(hypervisor.LeftoverClearer); ok {
			if err := lc.ClearLeftover(ctx, scratch); err != nil {
				log.Warn("end the VM an earlier start left", "dir", scratch, "err", err)
			}
		}
		select {
		case mode := <-stop:
			typ := events.VMEvicted
			if mode == events.ModeKill {
				typ = events.VMStopped
			}
			finish(typ, events.VMEventPayload{Reason: "stopped before the VM started"})
			return
		default:
		}
		if specErr != nil {
			finish(events.VMFailed, failure(slotName, specErr))
			return
		}
		if err := makeScratch(scratch, &d.execReady, log); err != nil {
			finish(events.VMFailed, events.VMEventPayload{Code: vacateVMError, Reason: slotName + "create scratch directory: " + err.Error()})
			return
		}
		// A stop (condor_rm, vacate, the claim's end) while the input
		// files come in ends their transfer: it used to run to its end,
		// minutes for a large disk or a stalled one, and the VM (with its
		// network) was then started only to be killed.
		inStart := time.Now()
		xctx, xcancel := context.WithCancel(ctx)
		stopped := make(chan string, 1)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			select {
			case m := <-stop:
				stopped <- m
				xcancel()
			case <-xctx.Done():
			}
		}()
		var inErr error
		var inName string
		for _, in := range c.Req.Inputs {
			if inErr = d.xferFor(c).get(xctx, events.TransferInput, in, filepath.Join(scratch, in.Name)); inErr != nil {
				inName = in.Name
				break
			}
			bytesIn += in.Size
		}
		xcancel()
		<-watched
		select {
		case mode := <-stopped:
			typ := events.VMEvicted
			if mode == events.ModeKill {
				typ = events.VMStopped
			}
			log.Info("stopped while its input files came in; the VM was not started", "mode", mode)
			finish(typ, events.VMEventPayload{Reason: "stopped while its input files were transferred, before the VM started"})
			return
		default:
		}
		if inErr != nil {
			finish(events.VMFailed, events.VMEventPayload{Hold: true, Code: holdInputTransfer, Reason: slotName + "transfer input file " + inName + ": " + inErr.Error()})
			return
		}
		if len(c.Req.Inputs) > 0 {
			d.metrics.transferred(transferInput, bytesIn, time.Since(inStart))
		}
		if spec.RunAs, err = d.runAs(c.Req.Owner); err != nil {
			d.vmFailed(err)
			finish(events.VMFailed, events.VMEventPayload{Code: vacateVMError, Reason: slotName + err.Error()})
			return
		}
		var resumedFrom int
		var notes []string
		vm, resumedFrom, notes, err = d.startOrResume(ctx, d.xferFor(c), spec, c.Req.Checkpoints, scratch)
		if err != nil {
			log.Warn("VM did not start", "err", err)
			p := failure(slotName, err)
			if !p.Hold && ctx.Err() == nil {
				d.vmFailed(err) // the machine's fault, not the job's
			}
			finish(events.VMFailed, p)
			return
		}
		d.cfg.Failpoints.Hit("vm-after-start")
		// The checkpoint resumed from came to this machine as the inputs
		// did, and counts with them as bytes the job received (HTCondor's
		// vm universe transfers it with the input files).
		for i := range c.Req.Checkpoints {
			if cp := &c.Req.Checkpoints[i]; resumedFrom > 0 && cp.Seq == resumedFrom {
				bytesIn += checkpointBytes(cp)
			}
		}
		note := strings.Join(notes, "; ")
		if len(c.Req.Checkpoints) > 0 && resumedFrom == 0 {
			note += "; restarted from the original disks"
		} else if len(notes) > 0 {
			note += fmt.Sprintf("; resumed from checkpoint %d", resumedFrom)
		}
		// The handle goes with the VMStarted, by which a restarted startd
		// reattaches to the VM.
		handle, err := json.Marshal(vm.Handle())
		if err != nil {
			log.Error("encode VM handle", "err", err) // a restart will not find this VM
		}
		// So do the bytes the run brought in and how long it took to start:
		// a restarted startd reports the run from them (Claim.RunStart).
		emit(events.VMStarted, events.VMEventPayload{Host: slotHost(c.Slot), Resumed: resumedFrom > 0, ResumedFrom: resumedFrom, ResumeNote: strings.TrimPrefix(note, "; "), Handle: handle,
			BytesIn: bytesIn, RunNanos: time.Since(started).Nanoseconds()})
		log.Info("VM started", "resumed_from", resumedFrom, "note", note)
	}
	// The VM's end: a VM that says so on a channel (hypervisor.Doner) is
	// watched by the select below; another by a goroutine in Wait.
	var waitCh <-chan waitResult
	var vmDone, ctxDone <-chan struct{}
	if dv, ok := vm.(hypervisor.Doner); ok {
		vmDone, ctxDone = dv.Done(), ctx.Done()
	} else {
		wctx, wcancel := context.WithCancel(ctx)
		ch := make(chan waitResult, 1)
		waitDone := make(chan struct{})
		go func() {
			defer close(waitDone)
			ex, err := vm.Wait(wctx)
			ch <- waitResult{ex, err}
		}()
		defer func() {
			wcancel()
			<-waitDone
		}()
		waitCh = ch
	}

	// Periodic checkpoints (vm_checkpoint_interval, vmpool's extension):
	// pause, save, continue, ship; a lost machine then costs at most one
	// interval.
	var tick <-chan time.Time
	cp, canCkpt := vm.(hypervisor.Checkpointer)
	if wantCkpt && canCkpt && ckptSecs > 0 {
		t := time.NewTicker(time.Duration(ckptSecs) * time.Second)
		defer t.Stop()
		tick = t.C
	}
	var r waitResult
	for n := 1; ; n++ {
		select {
		case r = <-waitCh:
		case <-vmDone:
			r.exit, r.err = vm.Wait(ctx)
		case <-ctxDone:
			r.err = fmt.Errorf("watch VM: %w", ctx.Err())
		case mode := <-stop:
			d.stopVM(ctx, log, vm, wantCkpt, mode, scratch, c, bytesIn, finish, stop)
			return
		case <-tick:
			d.periodicCheckpoint(ctx, log, cp, scratch, n, c, emit)
			continue
		}
		break
	}
	run := time.Since(started).Nanoseconds()
	switch {
	case r.err != nil && ctx.Err() != nil:
		// The startd is going away without a graceful vacate: leave the
		// VM running; a restarted startd reattaches to it.
		if det, ok := vm.(hypervisor.Detacher); ok {
			_ = det.Detach()
		}
		return
	case r.err != nil:
		finish(events.VMFailed, events.VMEventPayload{Code: vacateVMError, Reason: slotName + "watch VM: " + r.err.Error()})
	case !r.exit.PoweredOff:
		finish(events.VMFailed, events.VMEventPayload{Hold: true, Code: holdFailedToCreate, SubCode: subVMCrashed,
			Reason: slotName + "VM stopped without the guest powering off: " + r.exit.Reason})
	default:
		// The disks are final: say so before sending them back, which
		// can take minutes, so that a startd restarted meanwhile sends
		// them back instead of taking the VM for lost and the job for one
		// to run again.
		off := events.VMEventPayload{Reason: r.exit.Reason, RunNanos: run,
			UserCPUNanos: r.exit.UserCPU.Nanoseconds(), SysCPUNanos: r.exit.SysCPU.Nanoseconds()}
		if !emit(VMPoweredOff, off) {
			return // the startd is going away; a restart takes it from here
		}
		d.cfg.Failpoints.Hit("vm-after-poweroff")
		sendBack(off)
	}
}

// stopVM ends a running VM on request: kill at once, or vacate, saving a
// checkpoint first when the job asked for one (vm_checkpoint). A kill that
// arrives on stop while the vacate is under way (KILL, or condor_rm of a
// job being vacated) cuts it short: the VM is killed and no checkpoint is
// kept. bytesIn is what the run brought to the machine.
func (d *Startd) stopVM(ctx context.Context, log *slog.Logger, vm hypervisor.VM, wantCkpt bool, mode, scratch string, c *Claim, bytesIn int64,
	finish func(string, events.VMEventPayload), stop <-chan string) {
	if mode == events.ModeKill {
		if err := vm.Stop(ctx, 0); err != nil {
			log.Warn("kill VM", "err", err)
		}
		// Its run counts as any other: the CPU its VM used and the bytes
		// it brought in go to the job's totals.
		user, sys := usedCPU(ctx, vm)
		// Why goes with it: a kill the startd decided on (a schedd silent
		// for the job lease) reaches the user log through it.
		reason := "killed on request"
		d.loop.View(func() {
			if cur := d.st.Claims[c.Req.ClaimID]; cur != nil && cur.StopReason != "" {
				reason += " (" + cur.StopReason + ")"
			}
		})
		finish(events.VMStopped, events.VMEventPayload{Reason: reason, BytesIn: bytesIn, UserCPUNanos: user, SysCPUNanos: sys})
		return
	}
	// An evicted VM's event says what CPU it used and what bytes its run
	// moved: its inputs in, its checkpoint (if any) out (the 004's usage
	// and bytes).
	evicted := func(p events.VMEventPayload) {
		p.UserCPUNanos, p.SysCPUNanos = usedCPU(ctx, vm)
		p.BytesIn, p.BytesOut = bytesIn, checkpointBytes(p.Checkpoint)
		finish(events.VMEvicted, p)
	}
	// Why the VM leaves (a drain, PREEMPT, a preempting job) goes with it
	// into the eviction event and the user log.
	why := func() string {
		w := ""
		d.loop.View(func() {
			if cur := d.st.Claims[c.Req.ClaimID]; cur != nil && cur.StopReason != "" {
				w = " (" + cur.StopReason + ")"
			}
		})
		if w == "" && d.stopping.Load() {
			w = " (the startd is shutting down)"
		}
		return w
	}
	vctx, cancel := context.WithCancel(ctx)
	defer cancel()
	killed := make(chan struct{})
	go func() {
		for {
			select {
			case m := <-stop:
				if m == events.ModeKill || m == modeFast {
					close(killed)
					cancel()
					return
				}
			case <-vctx.Done():
				return
			}
		}
	}()
	cutShort := func() bool {
		select {
		case <-killed:
			log.Warn("vacate cut short by a kill; no checkpoint kept")
			if err := vm.Stop(ctx, 0); err != nil {
				log.Warn("kill VM", "err", err)
			}
			evicted(events.VMEventPayload{Reason: "killed while vacating" + why()})
			return true
		default:
			return false
		}
	}
	if mode == modeFast {
		// vacate-job -fast: at once, no checkpoint, no grace; the job
		// goes back to the queue.
		if err := vm.Stop(ctx, 0); err != nil {
			log.Warn("stop VM", "err", err)
		}
		evicted(events.VMEventPayload{Reason: "vacated at once, without a checkpoint (vacate-job -fast)" + why()})
		return
	}
	if cp, ok := vm.(hypervisor.Checkpointer); ok && wantCkpt {
		dir := filepath.Join(scratch, "checkpoint-out")
		start := time.Now()
		ck, err := cp.Checkpoint(vctx, dir, hypervisor.CheckpointOptions{})
		if err == nil {
			var shipped *events.Checkpoint
			shipStart := time.Now()
			shipped, err = shipCheckpoint(vctx, d.xferFor(c), dir, ck, c.Slot, d.cfg.Clock())
			if err == nil && !isClosed(killed) {
				d.metrics.checkpointed("vacate", time.Since(start), shipped, time.Since(shipStart))
				log.Info("VM checkpointed and vacated", "files", len(shipped.Files), "bytes", checkpointBytes(shipped), "took", time.Since(start).Round(time.Millisecond))
				_ = vm.Stop(ctx, 0)
				evicted(events.VMEventPayload{Checkpoint: shipped, Reason: "vacated with a checkpoint" + why()})
				return
			}
		}
		if cutShort() {
			return
		}
		log.Warn("checkpoint failed; vacating without one", "err", err)
		_ = vm.Stop(ctx, 0)
		evicted(events.VMEventPayload{Reason: "checkpoint failed: " + err.Error()})
		return
	}
	if err := vm.Stop(vctx, d.cfg.VacateGrace); err != nil && !isClosed(killed) {
		log.Warn("stop VM", "err", err)
	}
	if cutShort() {
		return
	}
	evicted(events.VMEventPayload{Reason: "vacated" + why()})
}

// usedCPU is the CPU a stopped VM's hypervisor process used, in
// nanoseconds of user and kernel time: 0 when its driver cannot tell, or
// when the VM has not ended within a few seconds of being stopped.
func usedCPU(ctx context.Context, vm hypervisor.VM) (user, sys int64) {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ex, err := vm.Wait(wctx)
	if err != nil {
		return 0, 0
	}
	return ex.UserCPU.Nanoseconds(), ex.SysCPU.Nanoseconds()
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// failure turns a start error into a VMFailed payload: the job's fault
// (a SpecError) holds it with code 6 and the VMGAHP subcode; anything
// else is the machine's and requeues it (1020).
func failure(prefix string, err error) events.VMEventPayload {
	var se *hypervisor.SpecError
	if errors.As(err, &se) {
		sub, ok := gahpSubcodes[se.Code]
		if !ok {
			sub = subOtherVMGAHP
		}
		name := se.Code
		if jobClassAdErrors[name] {
			name = "JOBCLASSAD_" + name
		}
		return events.VMEventPayload{Hold: true, Code: holdFailedToCreate, SubCode: sub,
			Reason: prefix + "VMGAHP_ERR_" + name + ": " + se.Msg}
	}
	return events.VMEventPayload{Code: vacateVMError, Reason: prefix + err.Error()}
}

// xfer moves one claim's files through the owner's bucket, reporting each
// transfer on the owner's progress subject (vmpool watch shows it).
type xfer struct {
	bus    *events.Bus
	owner  string
	schedd string
	job    events.JobID
	by     string // the startd
}

func (d *Startd) xferFor(c *Claim) xfer {
	return xfer{bus: d.cfg.Bus, owner: c.Req.Owner, schedd: c.Req.Schedd, job: c.Req.Job, by: d.cfg.Name}
}

// put stores the file at path as name (see events.Bus.PutFile).
func (x xfer) put(ctx context.Context, kind, path, name string) (events.FileRef, error) {
	var total int64
	if fi, err := os.Stat(path); err == nil {
		total = fi.Size()
	}
	pctx, done := x.bus.ReportTransfer(ctx, x.owner, events.TransferProgress{Schedd: x.schedd, Job: x.job, Kind: kind, File: name, Total: total, By: x.by})
	ref, err := x.bus.PutFile(pctx, x.owner, path, name)
	done(err)
	return ref, err
}

// get fetches ref into dst (see events.Bus.GetFile).
func (x xfer) get(ctx context.Context, kind string, ref events.FileRef, dst string) error {
	pctx, done := x.bus.ReportTransfer(ctx, x.owner, events.TransferProgress{Schedd: x.schedd, Job: x.job, Kind: kind, File: ref.Name, Total: ref.Size, By: x.by})
	err := x.bus.GetFile(pctx, ref, dst)
	done(err)
	return err
}

// storeIfChanged sends a writable disk back when its content differs from
// what the job sent.
func storeIfChanged(ctx context.Context, x xfer, o outputDisk) (events.FileRef, bool, error) {
	sum, _, err := events.HashFile(o.path)
	if err != nil {
		return events.FileRef{}, false, err
	}
	if sum == o.in.SHA256 {
		return events.FileRef{}, false, nil
	}
	ref, err := x.put(ctx, events.TransferOutput, o.path, o.name)
	return ref, err == nil, err
}

// shipCheckpoint stores a checkpoint's files in the owner's bucket.
func shipCheckpoint(ctx context.Context, x xfer, dir string, ck hypervisor.Checkpoint, slot string, now time.Time) (*events.Checkpoint, error) {
	files := ck.Files
	if len(files) == 0 {
		err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := &events.Checkpoint{Taken: now.UnixNano(), Slot: slot}
	for _, f := range files {
		if strings.Contains(f, string(filepath.Separator)) {
			return nil, fmt.Errorf("checkpoint file %q is in a subdirectory", f)
		}
		ref, err := x.put(ctx, events.TransferCheckpoint, filepath.Join(dir, f), f)
		if err != nil {
			return nil, fmt.Errorf("ship checkpoint: %w", err)
		}
		out.Files = append(out.Files, ref)
	}
	return out, nil
}

// fetchCheckpoint brings a checkpoint's files into dir, verified.
func fetchCheckpoint(ctx context.Context, x xfer, cp *events.Checkpoint, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range cp.Files {
		if filepath.Base(f.Name) != f.Name {
			return fmt.Errorf("checkpoint file name %q", f.Name)
		}
		if err := x.get(ctx, events.TransferResume, f, filepath.Join(dir, f.Name)); err != nil {
			return err
		}
	}
	return nil
}

// startOrResume boots the VM, resuming from the first of the checkpoints
// (newest first) that can be fetched whole and resumed. A corrupt or
// partial checkpoint (a checksum that does not match, an object that is
// gone) or one the hypervisor refuses is skipped with a note; if none
// works the VM boots its original disks. It returns the Seq of the
// checkpoint resumed from (0: booted).
func (d *Startd) startOrResume(ctx context.Context, x xfer, spec hypervisor.Spec, cps []events.Checkpoint, scratch string) (hypervisor.VM, int, []string, error) {
	var notes []string
	for i, cp := range cps {
		dir := filepath.Join(scratch, fmt.Sprintf("checkpoint-in-%d", i))
		fetchStart := time.Now()
		if err := fetchCheckpoint(ctx, x, &cp, dir); err != nil {
			notes = append(notes, fmt.Sprintf("checkpoint %d unusable (%v)", cp.Seq, err))
			os.RemoveAll(dir)
			continue
		}
		d.metrics.transferred(transferCheckpointIn, checkpointBytes(&cp), time.Since(fetchStart))
		spec.Resume = dir
		bootStart := time.Now()
		vm, err := d.cfg.Driver.Start(ctx, spec)
		if err == nil {
			d.metrics.booted(time.Since(bootStart), true)
			return vm, cp.Seq, notes, nil
		}
		if !errors.Is(err, hypervisor.ErrBadSpec) {
			return nil, 0, notes, err
		}
		notes = append(notes, fmt.Sprintf("checkpoint %d does not resume (%v)", cp.Seq, err))
		os.RemoveAll(dir)
	}
	spec.Resume = ""
	bootStart := time.Now()
	vm, err := d.cfg.Driver.Start(ctx, spec)
	if err == nil {
		d.metrics.booted(time.Since(bootStart), false)
	}
	return vm, 0, notes, err
}

// periodicCheckpoint saves a running VM without stopping it for long and
// ships the checkpoint; a failure is logged and the VM runs on.
func (d *Startd) periodicCheckpoint(ctx context.Context, log *slog.Logger, cp hypervisor.Checkpointer, scratch string, n int, c *Claim, emit func(string, any) bool) {
	dir := filepath.Join(scratch, fmt.Sprintf("checkpoint-%d", n))
	start := time.Now()
	ck, err := cp.Checkpoint(ctx, dir, hypervisor.CheckpointOptions{Continue: true})
	if err == nil {
		var shipped *events.Checkpoint
		shipStart := time.Now()
		shipped, err = shipCheckpoint(ctx, d.xferFor(c), dir, ck, c.Slot, d.cfg.Clock())
		if err == nil {
			d.metrics.checkpointed("periodic", time.Since(start), shipped, time.Since(shipStart))
			emit(events.VMCheckpointed, events.VMEventPayload{Checkpoint: shipped})
			log.Info("periodic checkpoint shipped", "n", n, "files", len(shipped.Files), "bytes", checkpointBytes(shipped), "took", time.Since(start).Round(time.Millisecond))
		}
	}
	os.RemoveAll(dir)
	if err != nil {
		log.Warn("periodic checkpoint failed; the VM runs on", "err", err)
	}
}

// makeScratch creates a VM's scratch directory, empty: what an earlier
// run of the claim left there (a crash) is removed first. The execute
// directory above it is created when missing and made traversable by the
// accounts VMs run as (at the startd's first VM, and whenever it is found
// missing); each scratch directory belongs to its VM alone. The usual case
// costs one mkdir: removing, creating and chmodding the whole path for
// every VM was 2.5% of a full-size match benchmark's CPU.
func makeScratch(scratch string, execReady *atomic.Bool, log *slog.Logger) error {
	parent := filepath.Dir(scratch)
	prepare := func() {
		if err := os.MkdirAll(parent, 0o711); err != nil {
			log.Warn("create execute directory", "dir", parent, "err", err)
		} else if err := os.Chmod(parent, 0o711); err != nil {
			log.Warn("make execute directory traversable", "dir", parent, "err", err)
		} else {
			execReady.Store(true)
		}
	}
	if !execReady.Load() {
		prepare()
	}
	err := os.Mkdir(scratch, 0o700)
	if errors.Is(err, fs.ErrExist) {
		if err := os.RemoveAll(scratch); err != nil {
			log.Warn("clean scratch directory", "dir", scratch, "err", err)
		}
		err = os.Mkdir(scratch, 0o700)
	}
	if errors.Is(err, fs.ErrNotExist) {
		prepare()
		err = os.Mkdir(scratch, 0o700)
	}
	return err
}
