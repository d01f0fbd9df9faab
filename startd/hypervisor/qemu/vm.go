package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/qemu/qmp"
)

// Timeouts of the driver's own QMP housekeeping. They bound waits on a
// QEMU that misbehaves; a healthy one answers in milliseconds.
const (
	qmpTimeout  = 30 * time.Second // one command (status check, quit, ...)
	quitWait    = 10 * time.Second // for QEMU to exit after quit
	killWait    = 30 * time.Second // for the process to vanish after SIGKILL
	goneTimeout = 10 * time.Second // after the QMP connection ends, for the process to exit
	pollGone    = 20 * time.Millisecond
)

// Exit reasons besides QEMU's own shutdown causes (host-qmp-quit,
// host-signal, ...), which are passed through.
const (
	ReasonGuestShutdown = "guest-shutdown"                        // the guest powered off by itself: the job is done
	ReasonPowerdown     = "guest-shutdown after system_powerdown" // Stop's ACPI request was honoured
	ReasonCheckpointed  = "checkpointed"                          // a Checkpoint without Continue ended the VM
	ReasonKilled        = "killed"                                // SIGKILL
)

// VM is one QEMU process. Its methods are safe for concurrent use.
//
// A VM owns one goroutine (and its QMP client's reader) from Start or
// Reattach until QEMU is gone or Detach is called: the monitor, which
// consumes QMP events, checks query-status every StatusInterval, quits
// QEMU after a guest shutdown (it runs with -no-shutdown), and reaps the
// process. Wait, Stop and Detach all return only after the monitor has
// finished its part, so nothing outlives the VM's last method call.
type VM struct {
	d       *Driver
	log     *slog.Logger
	handle  hypervisor.Handle
	pid     int
	proc    *os.Process // our child; nil when reattached
	qmp     *qmp.Client
	rec     *record // nil when reattached to a VM without a record
	logPath string  // QEMU's stderr
	sock    string

	ckptMu sync.Mutex // one Checkpoint at a time

	mu       sync.Mutex
	stopping bool             // Stop asked: a guest shutdown now does not complete the job
	evicting bool             // Checkpoint without Continue is ending the VM
	killed   bool             // we sent SIGKILL
	detached bool             // Detach ended the monitor; QEMU runs on
	shutdown *hypervisor.Exit // from the first SHUTDOWN event or a "shutdown" status
	exit     hypervisor.Exit  // final once done is closed
	// cpu is QEMU's CPU use as last read from /proc, for a VM that is not
	// our child (reattached): its exit status, which has it, is not ours.
	cpu struct{ user, sys time.Duration }

	// haltSeen counts the status checks in a row that found every vCPU
	// halted with interrupts off. The monitor's alone: not under mu.
	haltSeen int

	migration chan struct{} // has a value after a MIGRATION event
	detachReq chan struct{}
	detachOne sync.Once
	done      chan struct{} // closed when QEMU is gone and exit is final
	monDone   chan struct{} // closed when the monitor has returned
}

var (
	_ hypervisor.VM           = (*VM)(nil)
	_ hypervisor.Checkpointer = (*VM)(nil)
	_ hypervisor.Detacher     = (*VM)(nil)
)

func newVM(d *Driver, h hypervisor.Handle, proc *os.Process, c *qmp.Client, rec *record) *VM {
	v := &VM{
		d:         d,
		log:       d.log.With("vm", h.Name, "pid", h.PID),
		handle:    h,
		pid:       h.PID,
		proc:      proc,
		qmp:       c,
		rec:       rec,
		logPath:   h.Data["log"],
		sock:      h.Data["qmp"],
		migration: make(chan struct{}, 1),
		detachReq: make(chan struct{}),
		done:      make(chan struct{}),
		monDone:   make(chan struct{}),
	}
	return v
}

// watch starts the monitor; newVM does not, so that Reattach can settle
// the VM's state first.
func (v *VM) watch() { go v.monitor() }

// Handle is what Reattach needs: pid, QMP socket and file paths.
func (v *VM) Handle() hypervisor.Handle {
	h := v.handle
	h.Data = make(map[string]string, len(v.handle.Data))
	for k, val := range v.handle.Data {
		h.Data[k] = val
	}
	return h
}

func (v *VM) isDetached() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.detached
}

// Wait blocks until QEMU is gone and tells how the VM ended.
func (v *VM) Wait(ctx context.Context) (hypervisor.Exit, error) {
	select {
	case <-v.done:
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.exit, nil
	case <-v.monDone:
		// The monitor returns without closing done only on Detach.
		select {
		case <-v.done:
			return v.Wait(ctx)
		default:
		}
		return hypervisor.Exit{}, fmt.Errorf("wait for %s: %w", v.handle.Name, hypervisor.ErrDetached)
	case <-ctx.Done():
		return hypervisor.Exit{}, fmt.Errorf("wait for %s: %w", v.handle.Name, ctx.Err())
	}
}

// Status asks QEMU for the VM's state (query-status).
func (v *VM) Status(ctx context.Context) (hypervisor.State, error) {
	select {
	case <-v.done:
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.exit.PoweredOff {
			return hypervisor.StateStopped, nil
		}
		return hypervisor.StateGone, nil
	default:
	}
	if v.isDetached() {
		return "", fmt.Errorf("status of %s: %w", v.handle.Name, hypervisor.ErrDetached)
	}
	st, err := v.queryStatus(ctx)
	if errors.Is(err, qmp.ErrClosed) {
		return hypervisor.StateGone, nil
	}
	if err != nil {
		return "", fmt.Errorf("status of %s: %w", v.handle.Name, err)
	}
	return stateOf(st), nil
}

// stateOf maps QEMU's run states to ours.
func stateOf(status string) hypervisor.State {
	switch status {
	case "running":
		return hypervisor.StateRunning
	case "shutdown":
		return hypervisor.StateStopped
	default: // paused, prelaunch, inmigrate, postmigrate, finish-migrate, suspended, ...
		return hypervisor.StatePaused
	}
}

func (v *VM) queryStatus(ctx context.Context) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	if err := v.qmp.Execute(ctx, "query-status", nil, &st); err != nil {
		return "", err
	}
	return st.Status, nil
}

// Stop asks the guest to power off (system_powerdown, an ACPI power
// button press), waits up to grace, then quits QEMU, and kills its process
// group if it is still there. grace 0 kills at once. When ctx ends, Stop
// skips ahead to the kill: it always returns with QEMU gone (or an error
// saying it could not be killed). The Exit of such a VM has PoweredOff
// false even if the guest powered off on request.
func (v *VM) Stop(ctx context.Context, grace time.Duration) error {
	select {
	case <-v.done:
		return nil
	default:
	}
	if v.isDetached() {
		return fmt.Errorf("stop %s: %w", v.handle.Name, hypervisor.ErrDetached)
	}
	v.mu.Lock()
	v.stopping = true
	v.mu.Unlock()
	v.log.Info("stopping vm", "duration", grace)

	if grace > 0 && ctx.Err() == nil {
		// Bounded by grace too: a wedged QEMU must not hold Stop up.
		pctx, cancel := context.WithTimeout(ctx, grace)
		err := v.qmp.Execute(pctx, "system_powerdown", nil, nil)
		cancel()
		if err != nil {
			v.log.Debug("system_powerdown", "err", err)
		}
		t := time.NewTimer(grace)
		select {
		case <-v.done:
			t.Stop()
			return nil
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		if ctx.Err() == nil {
			v.sampleCPU() // the last reading of a QEMU that is not our child
			qctx, cancel := context.WithTimeout(ctx, quitWait)
			if err := v.qmp.Execute(qctx, "quit", nil, nil); err != nil {
				v.log.Debug("quit", "err", err)
			}
			select {
			case <-v.done:
				cancel()
				return nil
			case <-qctx.Done():
			}
			cancel()
			v.log.Warn("qemu did not quit; killing it", "duration", quitWait)
		}
	}
	return v.kill()
}

// kill sends SIGKILL to QEMU's process group and waits for the monitor to
// see the process gone.
func (v *VM) kill() error {
	v.sampleCPU()
	v.mu.Lock()
	v.killed = true
	v.mu.Unlock()
	if err := killGroup(v.pid); err != nil {
		return fmt.Errorf("stop %s: %w", v.handle.Name, err)
	}
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-v.done:
		return nil
	case <-t.C:
		return fmt.Errorf("stop %s: qemu (pid %d) still there %v after SIGKILL", v.handle.Name, v.pid, killWait)
	}
}

// Detach stops watching the VM and closes the QMP connection; QEMU runs
// on and can be reattached. It waits for the monitor to return. A QEMU
// this process started stays its child: when it exits, a VM reattached in
// the same process reaps it (as the conformance tests do); otherwise it
// remains a zombie until this process exits.
func (v *VM) Detach() error {
	v.detachOne.Do(func() { close(v.detachReq) })
	<-v.monDone
	return nil
}

// monitor is the VM's goroutine; see VM.
func (v *VM) monitor() {
	defer close(v.monDone)
	ticker := time.NewTicker(v.d.cfg.StatusInterval)
	defer ticker.Stop()
	quitSent := false
	for {
		v.mu.Lock()
		down := v.shutdown != nil
		v.mu.Unlock()
		if down && !quitSent {
			// -no-shutdown left QEMU up with the guest off; end it.
			v.sampleCPU() // all it will have used
			ctx, cancel := context.WithTimeout(context.Background(), qmpTimeout)
			err := v.qmp.Execute(ctx, "quit", nil, nil)
			cancel()
			quitSent = err == nil || errors.Is(err, qmp.ErrClosed)
			if !quitSent {
				v.log.Warn("quit after guest shutdown", "err", err)
			}
		}
		select {
		case <-v.qmp.EventsReady():
			for _, ev := range v.qmp.TakeEvents() {
				v.onEvent(ev)
			}
		case <-ticker.C:
			v.checkStatus()
		case <-v.qmp.Done():
			v.finish()
			return
		case <-v.detachReq:
			v.mu.Lock()
			v.detached = true
			v.mu.Unlock()
			v.qmp.Close()
			v.log.Info("detached from vm")
			return
		}
	}
}

func (v *VM) onEvent(ev qmp.Event) {
	v.log.Debug("qmp event", "qmp_event", ev.Name, "qmp_data", string(ev.Data))
	switch ev.Name {
	case "SHUTDOWN":
		var data struct {
			Guest  bool   `json:"guest"`
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			v.log.Warn("undecodable SHUTDOWN event", "err", err)
		}
		v.noteShutdown(data.Guest, data.Reason)
	case "MIGRATION":
		select {
		case v.migration <- struct{}{}:
		default:
		}
	}
}

// sampleCPU reads the CPU a QEMU that is not our child has used so far
// (see cpu); our own child's comes with its exit status.
func (v *VM) sampleCPU() {
	if v.proc != nil {
		return
	}
	if user, sys, ok := ProcCPU(v.pid); ok {
		v.mu.Lock()
		v.cpu.user, v.cpu.sys = user, sys
		v.mu.Unlock()
	}
}

// noteShutdown records how the VM went down, once.
func (v *VM) noteShutdown(guest bool, reason string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.shutdown != nil {
		return
	}
	var e hypervisor.Exit
	switch {
	case v.evicting:
		e = hypervisor.Exit{Reason: ReasonCheckpointed}
	case guest && (reason == ReasonGuestShutdown || reason == ReasonGuestHalted) && v.stopping:
		e = hypervisor.Exit{Reason: ReasonPowerdown}
	case guest && (reason == ReasonGuestShutdown || reason == ReasonGuestHalted):
		e = hypervisor.Exit{PoweredOff: true, Reason: reason}
	case reason == "":
		e = hypervisor.Exit{Reason: "shutdown"}
	default:
		e = hypervisor.Exit{Reason: reason}
	}
	v.shutdown = &e
	v.log.Info("vm shut down", "reason", e.Reason)
}

// checkStatus is the periodic status check: it notices a guest that
// powered off even if the SHUTDOWN event was lost. A QMP failure here is
// only logged: if QEMU is gone, the connection's end says so.
func (v *VM) checkStatus() {
	v.sampleCPU()
	ctx, cancel := context.WithTimeout(context.Background(), min(qmpTimeout, v.d.cfg.StatusInterval))
	defer cancel()
	st, err := v.queryStatus(ctx)
	if err != nil {
		if !errors.Is(err, qmp.ErrClosed) {
			v.log.Warn("status check", "err", err)
		}
		return
	}
	v.log.Debug("status check", "status", st)
	if st == "shutdown" {
		// With -no-shutdown only a guest request leaves QEMU in this
		// state: quit and SIGTERM end the process.
		v.noteShutdown(true, ReasonGuestShutdown)
		return
	}
	if st != "running" {
		v.haltSeen = 0
		return
	}
	// A guest that halted instead of powering off (/sbin/halt) would
	// otherwise hang its job for ever, as HTCondor's manual warns.
	halted, err := v.guestHalted(ctx)
	if err != nil {
		if !errors.Is(err, qmp.ErrClosed) {
			v.log.Debug("halt check", "err", err)
		}
		v.haltSeen = 0
		return
	}
	if !halted {
		v.haltSeen = 0
		return
	}
	v.haltSeen++
	v.log.Debug("guest halted with interrupts off", "checks", v.haltSeen)
	if v.haltSeen >= haltChecks {
		v.noteShutdown(true, ReasonGuestHalted)
	}
}

// finish runs when the QMP connection has ended, which happens when QEMU
// exits: reap or wait out the process, settle the exit, clean up.
func (v *VM) finish() {
	var status *os.ProcessState
	if v.proc != nil {
		status = v.waitChild()
	} else {
		v.waitGone()
	}
	v.qmp.Close()
	if v.sock != "" {
		os.Remove(v.sock)
	}

	v.mu.Lock()
	switch {
	case v.shutdown != nil:
		v.exit = *v.shutdown
	case v.killed:
		v.exit = hypervisor.Exit{Reason: ReasonKilled}
	case status != nil && signalOf(status) == syscall.SIGKILL:
		v.exit = hypervisor.Exit{Reason: ReasonKilled}
	case status != nil:
		v.exit = hypervisor.Exit{Reason: "crashed: " + status.String() + v.tailSuffix()}
	default:
		v.exit = hypervisor.Exit{Reason: "crashed: qemu exited without a shutdown" + v.tailSuffix()}
	}
	if status != nil {
		v.exit.UserCPU, v.exit.SysCPU = status.UserTime(), status.SystemTime()
	} else {
		v.exit.UserCPU, v.exit.SysCPU = v.cpu.user, v.cpu.sys
	}
	exit, stopping := v.exit, v.stopping
	v.mu.Unlock()
	if exit.PoweredOff {
		if err := v.commitDeltas(); err != nil {
			exit = hypervisor.Exit{Reason: "crashed: the guest powered off but its disk writes could not be merged: " + err.Error(),
				UserCPU: exit.UserCPU, SysCPU: exit.SysCPU}
			v.mu.Lock()
			v.exit = exit
			v.mu.Unlock()
		}
	}
	if exit.PoweredOff || exit.Reason == ReasonCheckpointed || stopping {
		v.log.Info("vm gone", "reason", exit.Reason)
	} else {
		v.log.Warn("vm gone", "reason", exit.Reason)
	}
	close(v.done)
}

// commitDeltas merges the overlays that kept a powered-off guest's disk
// writes (Spec.DeltaDisks) into the disks, which then hold the VM's final
// content as after a run without them.
func (v *VM) commitDeltas() error {
	if v.rec == nil {
		return nil
	}
	for _, rd := range v.rec.Disks {
		if !rd.Delta || rd.Overlay == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		err := v.d.qemuImg(ctx, "commit", "-q", "-f", "qcow2", rd.Overlay)
		cancel()
		if err != nil {
			return fmt.Errorf("disk %s: %w", rd.Device, err)
		}
		os.Remove(rd.Overlay)
	}
	return nil
}

func (v *VM) tailSuffix() string {
	if t := tail(v.logPath, 5); t != "" {
		return ": " + t
	}
	return ""
}

func signalOf(st *os.ProcessState) syscall.Signal {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal()
	}
	return 0
}

// waitChild reaps our QEMU. The QMP connection ends when QEMU exits, but
// a QEMU that merely broke the connection is killed after goneTimeout.
func (v *VM) waitChild() *os.ProcessState {
	type result struct {
		st  *os.ProcessState
		err error
	}
	ch := make(chan result, 1)
	go func() {
		st, err := v.proc.Wait()
		ch <- result{st, err}
	}()
	t := time.NewTimer(goneTimeout)
	defer t.Stop()
	var r result
	select {
	case r = <-ch:
	case <-t.C:
		v.log.Warn("qmp connection ended but qemu runs on; killing it")
		v.mu.Lock()
		v.killed = true
		v.mu.Unlock()
		killGroup(v.pid)
		r = <-ch
	}
	if r.err != nil {
		v.log.Warn("reap qemu", "err", r.err)
		return nil
	}
	return r.st
}

// waitGone waits for a QEMU that is not our child to disappear. No event
// tells when another process's child exits, so this polls, briefly: the
// QMP connection has already ended, so QEMU is on its way out.
func (v *VM) waitGone() {
	deadline := time.Now().Add(goneTimeout)
	killed := false
	for {
		if processGone(v.pid) {
			return
		}
		if killed && time.Now().After(deadline.Add(killWait)) {
			v.log.Error("qemu survives SIGKILL; giving up on it")
			return
		}
		if !killed && time.Now().After(deadline) {
			v.log.Warn("qmp connection ended but qemu runs on; killing it")
			v.mu.Lock()
			v.killed = true
			v.mu.Unlock()
			killGroup(v.pid)
			killed = true
		}
		time.Sleep(pollGone)
	}
}
