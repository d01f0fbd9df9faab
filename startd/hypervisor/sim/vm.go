package sim

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

// Exit reasons, in the words the kvm driver uses where they mean the same.
const (
	ReasonGuestShutdown = "guest-shutdown"                        // the guest powered off: the job is done
	ReasonPowerdown     = "guest-shutdown after system_powerdown" // Stop's ACPI request was honoured
	ReasonCheckpointed  = "checkpointed"                          // a Checkpoint without Continue ended the VM
	ReasonKilled        = "killed"
	ReasonCrashed       = `crashed: simulated guest crash (SimExit = "crash")`
)

// VM is one simulated VM. Its methods are safe for concurrent use.
//
// A VM owns no goroutine: a runtime timer ends it at its deadline (the
// callback does nothing once the VM was detached or has ended).
type VM struct {
	d      *Driver
	log    *slog.Logger
	handle hypervisor.Handle

	ckptMu sync.Mutex // one Checkpoint at a time

	mu       sync.Mutex
	rec      record
	timer    *time.Timer
	paused   bool // a Checkpoint holds the guest still
	recorded bool // the record file exists (written by Detach, read by Reattach)
	detached bool
	exit     hypervisor.Exit // final once done is closed
	done     chan struct{}   // closed when the VM has ended
	gone     chan struct{}   // closed by Detach
}

var (
	_ hypervisor.VM           = (*VM)(nil)
	_ hypervisor.Checkpointer = (*VM)(nil)
	_ hypervisor.Detacher     = (*VM)(nil)
)

func newVM(d *Driver, h hypervisor.Handle, rec record, recorded bool) *VM {
	return &VM{d: d, log: d.log.With("vm", h.Name), handle: h, rec: rec, recorded: recorded,
		done: make(chan struct{}), gone: make(chan struct{})}
}

// arm sets the timer that ends the run at the record's deadline, or ends
// the VM at once when the deadline has passed (a VM reattached after its
// guest powered off).
func (v *VM) arm(now time.Time) {
	v.mu.Lock()
	if v.rec.Exit == ExitNever || v.detached || v.ended() {
		v.mu.Unlock()
		return
	}
	left := time.Duration(v.rec.Deadline - now.UnixNano())
	if left > 0 {
		v.timer = time.AfterFunc(left, v.runOut)
		v.mu.Unlock()
		return
	}
	v.mu.Unlock()
	v.runOut()
}

// runOut is the end of the guest's run time.
func (v *VM) runOut() {
	v.mu.Lock()
	mode := v.rec.Exit
	v.mu.Unlock()
	e := hypervisor.Exit{PoweredOff: true, Reason: ReasonGuestShutdown}
	if mode == ExitCrash {
		e = hypervisor.Exit{Reason: ReasonCrashed}
	}
	v.end(e)
}

// ended reports whether done is closed; v.mu must be held.
func (v *VM) ended() bool {
	select {
	case <-v.done:
		return true
	default:
		return false
	}
}

// end ends the VM with exit, once, and removes its record so that a
// Reattach finds it gone. It reports false when the VM had already ended
// or was detached (a detached VM runs on, out of our sight).
func (v *VM) end(exit hypervisor.Exit) bool {
	v.mu.Lock()
	if v.ended() || v.detached {
		v.mu.Unlock()
		return false
	}
	if v.timer != nil {
		v.timer.Stop()
	}
	v.exit = exit
	close(v.done)
	recorded := v.recorded
	v.recorded = false
	v.mu.Unlock()
	if recorded {
		if err := os.Remove(filepath.Join(v.handle.Dir, recordFile)); err != nil && !os.IsNotExist(err) {
			v.log.Warn("remove sim vm record", "err", err)
		}
	}
	v.log.Debug("sim vm gone", "reason", exit.Reason)
	return true
}

// Handle is what Reattach needs: the VM's name and Dir.
func (v *VM) Handle() hypervisor.Handle { return v.handle }

func (v *VM) isDetached() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.detached
}

// Wait blocks until the VM has ended and tells how.
func (v *VM) Wait(ctx context.Context) (hypervisor.Exit, error) {
	select {
	case <-v.done:
	case <-v.gone:
		select {
		case <-v.done:
		default:
			return hypervisor.Exit{}, fmt.Errorf("wait for %s: %w", v.handle.Name, hypervisor.ErrDetached)
		}
	case <-ctx.Done():
		return hypervisor.Exit{}, fmt.Errorf("wait for %s: %w", v.handle.Name, ctx.Err())
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.exit, nil
}

// Done is closed once the VM has ended (hypervisor.Doner).
func (v *VM) Done() <-chan struct{} { return v.done }

// Status reports running, paused (during a checkpoint), stopped (the
// guest powered off) or gone.
func (v *VM) Status(ctx context.Context) (hypervisor.State, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.ended() && v.exit.PoweredOff:
		return hypervisor.StateStopped, nil
	case v.ended():
		return hypervisor.StateGone, nil
	case v.detached:
		return "", fmt.Errorf("status of %s: %w", v.handle.Name, hypervisor.ErrDetached)
	case v.paused:
		return hypervisor.StatePaused, nil
	}
	return hypervisor.StateRunning, nil
}

// Stop presses the simulated ACPI power button, which the guest honours at
// once unless its SimExit is "never"; such a guest is killed after grace
// (or when ctx ends). grace 0 kills at once. A VM stopped this way never
// completes its job.
func (v *VM) Stop(ctx context.Context, grace time.Duration) error {
	v.mu.Lock()
	switch {
	case v.ended():
		v.mu.Unlock()
		return nil
	case v.detached:
		v.mu.Unlock()
		return fmt.Errorf("stop %s: %w", v.handle.Name, hypervisor.ErrDetached)
	}
	honours := v.rec.Exit != ExitNever
	v.mu.Unlock()
	v.log.Debug("stopping sim vm", "duration", grace)
	if grace > 0 && honours && v.end(hypervisor.Exit{Reason: ReasonPowerdown}) {
		return nil
	}
	if grace > 0 && ctx.Err() == nil {
		t := time.NewTimer(grace)
		select {
		case <-v.done:
		case <-v.gone:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	if !v.end(hypervisor.Exit{Reason: ReasonKilled}) && v.isDetached() {
		select {
		case <-v.done:
		default:
			return fmt.Errorf("stop %s: %w", v.handle.Name, hypervisor.ErrDetached)
		}
	}
	return nil
}

// Detach lets go of the VM: it writes the VM's record into its Dir and
// stops its timer, and the VM "runs on" to be Reattached from its Handle,
// by this process or the next. Idempotent. A VM that ended is not
// recorded: Reattach finds it gone.
func (v *VM) Detach() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.detached {
		return nil
	}
	v.detached = true
	if v.timer != nil {
		v.timer.Stop()
	}
	close(v.gone)
	if !v.ended() && !v.recorded {
		if err := writeRecord(v.handle.Dir, v.rec); err != nil {
			return fmt.Errorf("detach %s: %w", v.handle.Name, err)
		}
		v.recorded = true
	}
	v.log.Debug("detached from sim vm")
	return nil
}
