// Package hvtest is the conformance suite for hypervisor drivers: what
// every vm_type (kvm, xen, vmware, sim) must do the same way, checked by
// booting the guests package vmimage builds and reading their disks back.
//
// A driver's tests call Run with a constructor and a Kit that adapts the
// suite to the driver. The suite uses real VMs; it imports the hypervisor
// interface and vmimage, never a driver.
package hvtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/vmimage"
)

// Kit adapts the suite to one driver. The zero Kit suits a driver that
// boots a raw disk attached as "hda".
type Kit struct {
	// Spec describes a VM that boots the raw image at disk (a file in dir,
	// which is the VM's scratch dir). The default is a 16 MiB, one-vcpu VM
	// with disk writable as hda.
	Spec func(t *testing.T, name, dir, disk string) hypervisor.Spec
	// Timeout bounds each wait for a VM; the default, 2 minutes, is far
	// beyond what a guest needs under TCG, so that only a hang trips it.
	Timeout time.Duration
	// CheckpointTicks is how many BIOS ticks the checkpoint guest counts
	// (default 40, about 2.2 s): long enough to be caught midway.
	CheckpointTicks uint32
	// NoProcess says the driver's VMs are not host processes (sim), so
	// Handle().PID is not checked for being gone after Stop.
	NoProcess bool
	// NoGuest says the driver runs no guest code (sim): its VMs do what
	// their Spec says (Kit.Spec reads the guest's Kind and Target from
	// the disk with vmimage.ReadData and turns them into the driver's
	// parameters). The suite then checks exits, states, handles and
	// checkpoint files, but not what a guest writes on its disk, and
	// checkpoints as soon as the VM runs instead of waiting for the
	// guest's progress on disk.
	NoGuest bool
	// OpaqueDisks says a running guest's writes cannot be read from its
	// disk files (the kvm driver's delta disks keep them in a qcow2
	// overlay whose metadata QEMU flushes only when it stops). The suite
	// then takes a checkpoint once the guest has written at all (its
	// overlay grew) and reads the guest's progress only after its VM is
	// gone.
	OpaqueDisks bool
}

func (k Kit) withDefaults() Kit {
	if k.Spec == nil {
		k.Spec = DefaultSpec
	}
	if k.Timeout <= 0 {
		k.Timeout = 2 * time.Minute
	}
	if k.CheckpointTicks == 0 {
		k.CheckpointTicks = 40
	}
	return k
}

// DefaultSpec is Kit.Spec's default.
func DefaultSpec(t *testing.T, name, dir, disk string) hypervisor.Spec {
	return hypervisor.Spec{
		Name: name, Dir: dir, MemoryMiB: 16, VCPUs: 1,
		Disks: []hypervisor.Disk{{Path: disk, Device: "hda", Writable: true, Format: "raw"}},
	}
}

// Run runs the suite. newDriver is called once per subtest (twice for
// Reattach, to stand for a restarted startd); every VM a subtest starts is
// stopped before it ends.
func Run(t *testing.T, newDriver func(t *testing.T) hypervisor.Driver, kit Kit) {
	kit = kit.withDefaults()
	s := &suite{newDriver: newDriver, kit: kit}
	t.Run("Probe", s.probe)
	t.Run("PowerOffCompletes", s.powerOff)
	t.Run("StopNeverEndingGuest", s.stopForever)
	t.Run("StopWithoutGraceKills", s.stopKill)
	t.Run("Reattach", s.reattach)
	t.Run("ReattachedCompletes", s.reattachCompletes)
	t.Run("ReattachGone", s.reattachGone)
	t.Run("ClearLeftover", s.clearLeftover)
	t.Run("CheckpointEvictAndResume", s.checkpointEvict)
	t.Run("CheckpointContinue", s.checkpointContinue)
}

type suite struct {
	newDriver func(t *testing.T) hypervisor.Driver
	kit       Kit
}

func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), s.kit.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// guestVM writes g into a fresh scratch dir and returns its Spec.
func (s *suite) guestVM(t *testing.T, name string, g vmimage.Guest) hypervisor.Spec {
	t.Helper()
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := g.WriteRaw(disk, 0); err != nil {
		t.Fatal(err)
	}
	return s.kit.Spec(t, name, dir, disk)
}

// start starts spec and registers a cleanup that stops the VM.
func (s *suite) start(t *testing.T, d hypervisor.Driver, spec hypervisor.Spec) hypervisor.VM {
	t.Helper()
	vm, err := d.Start(s.ctx(t), spec)
	if err != nil {
		t.Fatalf("Start(%s): %v", spec.Name, err)
	}
	s.stopAtEnd(t, vm)
	return vm
}

func (s *suite) stopAtEnd(t *testing.T, vm hypervisor.VM) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.kit.Timeout)
		defer cancel()
		if err := vm.Stop(ctx, 0); err != nil && !errors.Is(err, hypervisor.ErrDetached) {
			t.Errorf("cleanup: Stop: %v", err)
		}
	})
}

func (s *suite) wait(t *testing.T, vm hypervisor.VM) hypervisor.Exit {
	t.Helper()
	if dv, ok := vm.(hypervisor.Doner); ok {
		// A Doner says on Done that it ended; Wait then tells how.
		ctx := s.ctx(t)
		select {
		case <-dv.Done():
		case <-ctx.Done():
			t.Fatalf("Done not closed: %v", ctx.Err())
		}
	}
	exit, err := vm.Wait(s.ctx(t))
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return exit
}

func diskOf(spec hypervisor.Spec) string { return spec.Disks[0].Path }

// guestData reads what the guest wrote on its disk; ok is false for a
// driver without guests (Kit.NoGuest), whose disks nothing writes.
func (s *suite) guestData(t *testing.T, path string) (vmimage.Data, bool) {
	t.Helper()
	if s.kit.NoGuest {
		return vmimage.Data{}, false
	}
	return readData(t, path), true
}

func readData(t *testing.T, path string) vmimage.Data {
	t.Helper()
	d, err := LiveData(path)
	if err != nil {
		t.Fatalf("ReadData: %v", err)
	}
	return d
}

// processGone checks that the VM's host process no longer exists.
func (s *suite) processGone(t *testing.T, h hypervisor.Handle) {
	t.Helper()
	if s.kit.NoProcess || h.PID <= 0 {
		return
	}
	if err := syscall.Kill(h.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process %d still exists after the VM ended (kill 0: %v)", h.PID, err)
	}
}

func (s *suite) probe(t *testing.T) {
	d := s.newDriver(t)
	fp, err := d.Probe(s.ctx(t))
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if fp.Type != d.Type() {
		t.Errorf("Fingerprint.Type %q, driver Type %q", fp.Type, d.Type())
	}
	if !fp.Detected || !fp.Healthy {
		t.Fatalf("Probe found the hypervisor unusable: %+v", fp)
	}
	if fp.Version == "" {
		t.Errorf("Probe gave no version: %+v", fp)
	}
}

// powerOff: the hello guest completes the job, and its disk change stays.
func (s *suite) powerOff(t *testing.T) {
	t.Parallel()
	d := s.newDriver(t)
	spec := s.guestVM(t, "hello", vmimage.Counter())
	for run := uint32(1); run <= 2; run++ {
		vm := s.start(t, d, spec)
		exit := s.wait(t, vm)
		if !exit.PoweredOff {
			t.Fatalf("run %d: Exit %+v, want PoweredOff", run, exit)
		}
		if got, ok := s.guestData(t, diskOf(spec)); ok && (got.Counter != run || got.Boots != run) {
			t.Fatalf("run %d: disk data %+v, want Counter and Boots %d", run, got, run)
		}
		st, err := vm.Status(s.ctx(t))
		if err != nil {
			t.Fatalf("Status after power-off: %v", err)
		}
		if st != hypervisor.StateStopped && st != hypervisor.StateGone {
			t.Fatalf("Status after power-off = %q", st)
		}
		if err := vm.Stop(s.ctx(t), time.Second); err != nil {
			t.Fatalf("Stop of a powered-off VM: %v", err)
		}
		s.processGone(t, vm.Handle())
	}
}

// stopForever: Status sees a running guest; Stop ends a guest that ignores
// the ACPI power button, and the job is not complete.
func (s *suite) stopForever(t *testing.T) {
	t.Parallel()
	d := s.newDriver(t)
	spec := s.guestVM(t, "forever", vmimage.Forever())
	vm := s.start(t, d, spec)
	st, err := vm.Status(s.ctx(t))
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st != hypervisor.StateRunning {
		t.Fatalf("Status of a running VM = %q", st)
	}
	if dv, ok := vm.(hypervisor.Doner); ok {
		select {
		case <-dv.Done():
			t.Fatal("Done closed while the VM runs")
		default:
		}
	}
	if err := vm.Stop(s.ctx(t), 500*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	s.processGone(t, vm.Handle())
	if exit := s.wait(t, vm); exit.PoweredOff {
		t.Fatalf("a stopped VM completed its job: %+v", exit)
	}
	if err := vm.Stop(s.ctx(t), 0); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func (s *suite) stopKill(t *testing.T) {
	t.Parallel()
	d := s.newDriver(t)
	vm := s.start(t, d, s.guestVM(t, "kill", vmimage.Forever()))
	if err := vm.Stop(s.ctx(t), 0); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	s.processGone(t, vm.Handle())
	if exit := s.wait(t, vm); exit.PoweredOff {
		t.Fatalf("a killed VM completed its job: %+v", exit)
	}
}

// detach lets go of vm as a dying startd would.
func detach(t *testing.T, vm hypervisor.VM) {
	t.Helper()
	det, ok := vm.(hypervisor.Detacher)
	if !ok {
		t.Skip("the driver's VMs do not implement hypervisor.Detacher")
	}
	if err := det.Detach(); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if _, err := vm.Wait(t.Context()); !errors.Is(err, hypervisor.ErrDetached) {
		t.Fatalf("Wait after Detach = %v, want ErrDetached", err)
	}
}

// reattach: a second driver (a restarted startd) finds a running VM from
// its Handle and stops it.
func (s *suite) reattach(t *testing.T) {
	t.Parallel()
	vm := s.start(t, s.newDriver(t), s.guestVM(t, "reattach", vmimage.Forever()))
	h := vm.Handle()
	detach(t, vm)

	vm2, err := s.newDriver(t).Reattach(s.ctx(t), h)
	if err != nil {
		t.Fatalf("Reattach: %v", err)
	}
	s.stopAtEnd(t, vm2)
	st, err := vm2.Status(s.ctx(t))
	if err != nil || st != hypervisor.StateRunning {
		t.Fatalf("Status after Reattach = %q, %v", st, err)
	}
	if err := vm2.Stop(s.ctx(t), 0); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	s.processGone(t, h)
	if _, err := s.newDriver(t).Reattach(s.ctx(t), h); !errors.Is(err, hypervisor.ErrGone) {
		t.Fatalf("Reattach to a stopped VM = %v, want ErrGone", err)
	}
}

// reattachCompletes: a guest that powers off after the reattach completes
// the job as if never left.
func (s *suite) reattachCompletes(t *testing.T) {
	t.Parallel()
	spec := s.guestVM(t, "timed", vmimage.Timed(vmimage.TicksFor(2*time.Second)))
	vm := s.start(t, s.newDriver(t), spec)
	h := vm.Handle()
	detach(t, vm)
	vm2, err := s.newDriver(t).Reattach(s.ctx(t), h)
	if errors.Is(err, hypervisor.ErrGone) {
		// The guest finished before the reattach: legal, but it proves
		// nothing here. The guest's two seconds are far longer than a reattach.
		t.Fatalf("guest gone before Reattach: %v", err)
	}
	if err != nil {
		t.Fatalf("Reattach: %v", err)
	}
	s.stopAtEnd(t, vm2)
	if exit := s.wait(t, vm2); !exit.PoweredOff {
		t.Fatalf("Exit %+v, want PoweredOff", exit)
	}
	if got, ok := s.guestData(t, diskOf(spec)); ok && got.Counter != 1 {
		t.Fatalf("disk data %+v, want Counter 1", got)
	}
	s.processGone(t, h)
}

func (s *suite) reattachGone(t *testing.T) {
	d := s.newDriver(t)
	h := hypervisor.Handle{Type: d.Type(), Name: "nothing", Dir: t.TempDir(), PID: deadPID(t),
		Data: map[string]string{"qmp": filepath.Join(t.TempDir(), "none.sock")}}
	if _, err := d.Reattach(s.ctx(t), h); !errors.Is(err, hypervisor.ErrGone) {
		t.Fatalf("Reattach to a dead pid = %v, want ErrGone", err)
	}
}

// clearLeftover: a VM started and let go before its handle was recorded
// (its startd killed in between) is ended by a restarted startd's
// ClearLeftover of the claim's scratch dir; a dir without one is left as
// it is.
func (s *suite) clearLeftover(t *testing.T) {
	t.Parallel()
	if _, ok := s.newDriver(t).(hypervisor.LeftoverClearer); !ok {
		t.Skip("the driver does not implement hypervisor.LeftoverClearer")
	}
	spec := s.guestVM(t, "leftover", vmimage.Forever())
	vm := s.start(t, s.newDriver(t), spec)
	h := vm.Handle()
	detach(t, vm)
	d := s.newDriver(t)
	lc := d.(hypervisor.LeftoverClearer)
	if err := lc.ClearLeftover(s.ctx(t), t.TempDir()); err != nil {
		t.Fatalf("ClearLeftover of an empty dir: %v", err)
	}
	if err := lc.ClearLeftover(s.ctx(t), spec.Dir); err != nil {
		t.Fatalf("ClearLeftover: %v", err)
	}
	if _, err := d.Reattach(s.ctx(t), h); !errors.Is(err, hypervisor.ErrGone) {
		t.Fatalf("Reattach after ClearLeftover = %v, want ErrGone", err)
	}
	s.processGone(t, h)
	if err := lc.ClearLeftover(s.ctx(t), spec.Dir); err != nil {
		t.Fatalf("ClearLeftover again: %v", err)
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	return p.Pid
}

// checkpointer returns vm as a Checkpointer or skips the test.
func checkpointer(t *testing.T, vm hypervisor.VM) hypervisor.Checkpointer {
	t.Helper()
	c, ok := vm.(hypervisor.Checkpointer)
	if !ok {
		t.Skip("the driver's VMs do not implement hypervisor.Checkpointer")
	}
	return c
}

// midway waits until the stamp guest has stamped its disk and counted a
// few ticks, but is far from done. The guest's progress is visible only
// in its disk file, so this polls it.
func (s *suite) midway(t *testing.T, disk string) vmimage.Data {
	t.Helper()
	if s.kit.NoGuest {
		return vmimage.Data{}
	}
	deadline := time.Now().Add(s.kit.Timeout)
	if s.kit.OpaqueDisks {
		for !overlayGrew(disk) {
			if time.Now().After(deadline) {
				t.Fatalf("the guest wrote nothing in %v", s.kit.Timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return vmimage.Data{}
	}
	for {
		d, err := LiveData(disk)
		if err == nil && d.Stamped && d.Ticks >= 3 {
			if d.Ticks >= s.kit.CheckpointTicks/2 {
				t.Fatalf("guest past halfway (%d of %d ticks) before the checkpoint; raise CheckpointTicks", d.Ticks, s.kit.CheckpointTicks)
			}
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("guest made no progress in %v: %+v, %v", s.kit.Timeout, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// resume starts a new VM in a new dir from checkpoint dir ck, with a fresh
// copy of the original image as its disk (which the checkpoint's disk must
// replace), and waits for it to power off.
func (s *suite) resume(t *testing.T, ck string, g vmimage.Guest) vmimage.Data {
	t.Helper()
	spec := s.guestVM(t, "resumed", g)
	spec.Resume = ck
	vm := s.start(t, s.newDriver(t), spec)
	if exit := s.wait(t, vm); !exit.PoweredOff {
		t.Fatalf("resumed VM: Exit %+v, want PoweredOff", exit)
	}
	d, _ := s.guestData(t, diskOf(spec))
	return d
}

// checkpointEvict: an eviction saves memory and disk and stops the VM; the
// resumed VM finishes the count with the first boot's stamp, having booted
// once.
func (s *suite) checkpointEvict(t *testing.T) {
	t.Parallel()
	g := vmimage.StampCounter(s.kit.CheckpointTicks)
	spec := s.guestVM(t, "evict", g)
	vm := s.start(t, s.newDriver(t), spec)
	c := checkpointer(t, vm)
	before := s.midway(t, diskOf(spec))

	ck := t.TempDir()
	cp, err := c.Checkpoint(s.ctx(t), ck, hypervisor.CheckpointOptions{})
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if len(cp.Files) == 0 {
		t.Fatal("Checkpoint listed no files")
	}
	for _, f := range cp.Files {
		if _, err := os.Stat(filepath.Join(ck, f)); err != nil {
			t.Fatalf("checkpoint file: %v", err)
		}
	}
	if exit := s.wait(t, vm); exit.PoweredOff {
		t.Fatalf("an evicted VM completed its job: %+v", exit)
	}
	s.processGone(t, vm.Handle())
	at, ok := s.guestData(t, diskOf(spec))
	if ok && s.kit.OpaqueDisks {
		// Only now, with the VM gone, can the guest's progress be read.
		if !at.Stamped || at.Done {
			t.Fatalf("disk at checkpoint %+v: want the guest stamped and counting", at)
		}
		before = at
	}
	if ok && (at.Stamp != before.Stamp || at.Done || at.Ticks < before.Ticks) {
		t.Fatalf("disk at checkpoint %+v, before %+v", at, before)
	}

	final := s.resume(t, ck, g)
	if !ok {
		return
	}
	if !final.Done || final.Ticks != g.Ticks || final.Counter != 1 {
		t.Fatalf("resumed guest did not finish the count: %+v", final)
	}
	if final.Stamp != before.Stamp {
		t.Fatalf("resumed guest has stamp %v, the first boot's was %v", final.Stamp, before.Stamp)
	}
	if final.Boots != 1 {
		t.Fatalf("resumed guest booted %d times, want 1 (it must continue, not reboot)", final.Boots)
	}
}

// checkpointContinue: a periodic checkpoint leaves the VM running to
// completion, and the checkpoint resumes too.
func (s *suite) checkpointContinue(t *testing.T) {
	t.Parallel()
	g := vmimage.StampCounter(s.kit.CheckpointTicks)
	spec := s.guestVM(t, "periodic", g)
	vm := s.start(t, s.newDriver(t), spec)
	c := checkpointer(t, vm)
	before := s.midway(t, diskOf(spec))
	ck := t.TempDir()
	if _, err := c.Checkpoint(s.ctx(t), ck, hypervisor.CheckpointOptions{Continue: true}); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if exit := s.wait(t, vm); !exit.PoweredOff {
		t.Fatalf("VM after a periodic checkpoint: Exit %+v, want PoweredOff", exit)
	}
	done, ok := s.guestData(t, diskOf(spec))
	if !ok {
		s.resume(t, ck, g)
		return
	}
	if s.kit.OpaqueDisks {
		before.Stamp = done.Stamp // the one boot's stamp, readable only now
	}
	if !done.Done || done.Stamp != before.Stamp || done.Boots != 1 {
		t.Fatalf("disk after run %+v, before checkpoint %+v", done, before)
	}
	final := s.resume(t, ck, g)
	if !final.Done || final.Stamp != before.Stamp || final.Boots != 1 || final.Ticks != g.Ticks {
		t.Fatalf("resumed from periodic checkpoint: %+v, first stamp %v", final, before.Stamp)
	}
}
