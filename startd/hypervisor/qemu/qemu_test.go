package qemu_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/qemu"
	"github.com/vmpool/vmpool/vmimage"
)

const testTimeout = 2 * time.Minute // a safety net against hangs, not a speed goal

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// guestSpec writes g as a raw image in a new scratch dir (dir, if given)
// and describes a 16 MiB VM booting it from hda.
func guestSpec(t *testing.T, name string, g vmimage.Guest, dir string) hypervisor.Spec {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "disk.img")
	if err := g.WriteRaw(disk, 0); err != nil {
		t.Fatal(err)
	}
	return hypervisor.Spec{Name: name, Dir: dir, MemoryMiB: 16, VCPUs: 1,
		Disks: []hypervisor.Disk{{Path: disk, Device: "hda", Writable: true, Format: "raw"}}}
}

func start(t *testing.T, d *qemu.Driver, spec hypervisor.Spec) hypervisor.VM {
	t.Helper()
	vm, err := d.Start(testCtx(t), spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := vm.Stop(context.Background(), 0); err != nil && !errors.Is(err, hypervisor.ErrDetached) {
			t.Errorf("cleanup Stop: %v", err)
		}
	})
	return vm
}

func wait(t *testing.T, vm hypervisor.VM) hypervisor.Exit {
	t.Helper()
	exit, err := vm.Wait(testCtx(t))
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return exit
}

func TestProbeMissingBinary(t *testing.T) {
	d := qemu.New(qemu.Config{Binary: filepath.Join(t.TempDir(), "no-qemu")})
	fp, err := d.Probe(testCtx(t))
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if fp.Detected || fp.Healthy || fp.Reason == "" || fp.Type != "kvm" {
		t.Fatalf("Probe without QEMU: %+v", fp)
	}
}

func TestProbe(t *testing.T) {
	needQEMU(t)
	fp, err := newDriver(t).Probe(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	_, kvmErr := os.Stat("/dev/kvm")
	wantAccel := "tcg"
	if kvmErr == nil {
		wantAccel = fp.Attrs["accel"] // kvm if it opens for us
	}
	if !fp.Detected || !fp.Healthy || !strings.HasPrefix(fp.Version, "QEMU ") || fp.Attrs["accel"] != wantAccel {
		t.Fatalf("Probe: %+v", fp)
	}
	if len(fp.Networking) == 0 || fp.Networking[0] != "nat" {
		t.Fatalf("Networking = %q", fp.Networking)
	}
	fp, err = qemu.New(qemu.Config{Accel: "xen"}).Probe(testCtx(t))
	if err != nil || fp.Healthy || fp.Reason == "" {
		t.Fatalf("Probe with a bad accelerator: %+v, %v", fp, err)
	}
}

// TestStartErrorsQuoteQEMU: when QEMU refuses to run, the error carries
// what it said on stderr, and no process is left behind. A disk QEMU
// refuses is the job's fault (a SpecError, BAD_IMAGE: the startd holds
// the job); anything else is the machine's.
func TestStartErrorsQuoteQEMU(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	tests := []struct {
		name    string
		cfg     qemu.Config
		disk    []byte // the boot disk's content, "" for the hello guest
		format  string
		said    string // part of QEMU's complaint
		badSpec bool   // the job's fault
	}{
		{"bad accelerator", qemu.Config{Accel: "bogus"}, nil, "raw", "bogus", false},
		{"corrupt qcow2", qemu.Config{}, []byte("QFI\xfb\x00\x00\x00\x09garbage"), "", "qcow2", true},
		{"corrupt qcow2 given as qcow2", qemu.Config{}, []byte("QFI\xfb\x00\x00\x00\x03garbage"), "qcow2", "qcow2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = testLogger(t)
			spec := guestSpec(t, "refused", vmimage.Counter(), "")
			if tt.disk != nil {
				if err := os.WriteFile(spec.Disks[0].Path, tt.disk, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			spec.Disks[0].Format = tt.format
			vm, err := qemu.New(tt.cfg).Start(testCtx(t), spec)
			if err == nil {
				vm.Stop(context.Background(), 0)
				t.Fatal("Start succeeded")
			}
			var se *hypervisor.SpecError
			switch {
			case tt.badSpec && (!errors.As(err, &se) || se.Code != "BAD_IMAGE"):
				t.Fatalf("Start = %v, want SpecError BAD_IMAGE", err)
			case !tt.badSpec && errors.Is(err, hypervisor.ErrBadSpec):
				t.Fatalf("Start = %v, a SpecError: the machine's fault was put on the job", err)
			case !tt.badSpec && !strings.Contains(err.Error(), "qemu said"):
				t.Fatalf("Start error does not quote QEMU: %v", err)
			case !strings.Contains(err.Error(), "-drive") && tt.badSpec, !strings.Contains(err.Error(), tt.said):
				t.Fatalf("Start error does not quote QEMU: %v", err)
			}
			if _, err := os.Stat(filepath.Join(spec.Dir, "qmp.sock")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("socket left behind: %v", err)
			}
		})
	}
}

func TestBadSpec(t *testing.T) {
	spec := guestSpec(t, "bad", vmimage.Counter(), "")
	tests := []struct {
		name   string
		mutate func(*hypervisor.Spec)
		code   string
	}{
		{"no memory", func(s *hypervisor.Spec) { s.MemoryMiB = 0 }, "JOBCLASSAD_NO_VM_MEMORY_PARAM"},
		{"no disk", func(s *hypervisor.Spec) { s.Disks = nil }, "KVM_NO_DISK_PARAM"},
		{"name with slash", func(s *hypervisor.Spec) { s.Name = "a/b" }, "INVALID_NAME"},
		{"checkpoint without manifest", func(s *hypervisor.Spec) { s.Resume = t.TempDir() }, "KVM_MISMATCHED_CHECKPOINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec
			tt.mutate(&s)
			_, err := qemu.New(qemu.Config{}).Start(testCtx(t), s)
			var se *hypervisor.SpecError
			if !errors.As(err, &se) || se.Code != tt.code || !errors.Is(err, hypervisor.ErrBadSpec) {
				t.Fatalf("Start = %v, want SpecError %s", err, tt.code)
			}
		})
	}
}

// TestLongDirWithCommas: a scratch dir too deep for a unix socket address,
// with commas in its name, still works.
func TestLongDirWithCommas(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	dir := filepath.Join(t.TempDir(), strings.Repeat("deep,", 25), "job,1")
	spec := guestSpec(t, "long,name", vmimage.Counter(), dir)
	vm := start(t, newDriver(t), spec)
	if sock := vm.Handle().Data["qmp"]; strings.HasPrefix(sock, dir) || len(sock) > 107 {
		t.Fatalf("qmp socket %q", sock)
	}
	// Our own child: its CPU comes with its exit status.
	if exit := wait(t, vm); !exit.PoweredOff || exit.UserCPU+exit.SysCPU <= 0 {
		t.Fatalf("Exit %+v: want a power-off with the CPU QEMU used", exit)
	}
	if d, err := vmimage.ReadData(spec.Disks[0].Path); err != nil || d.Counter != 1 {
		t.Fatalf("disk %+v, %v", d, err)
	}
	serial, err := os.ReadFile(filepath.Join(dir, "serial.log"))
	if err != nil || !bytes.Contains(serial, []byte(vmimage.SerialPoweroff)) {
		t.Fatalf("serial log %q, %v", serial, err)
	}
}

// TestSignals: how a QEMU that dies from outside is reported.
func TestSignals(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	tests := []struct {
		sig    syscall.Signal
		reason string
	}{
		{syscall.SIGKILL, "killed"},
		{syscall.SIGTERM, "host-signal"},
		{syscall.SIGABRT, "crashed: signal: aborted"},
	}
	for _, tt := range tests {
		t.Run(tt.sig.String(), func(t *testing.T) {
			t.Parallel()
			vm := start(t, newDriver(t), guestSpec(t, "sig", vmimage.Forever(), ""))
			if err := syscall.Kill(vm.Handle().PID, tt.sig); err != nil {
				t.Fatal(err)
			}
			exit := wait(t, vm)
			if exit.PoweredOff || !strings.HasPrefix(exit.Reason, tt.reason) {
				t.Fatalf("Exit %+v, want reason %q", exit, tt.reason)
			}
			if st, err := vm.Status(testCtx(t)); err != nil || st != hypervisor.StateGone {
				t.Fatalf("Status = %q, %v", st, err)
			}
		})
	}
}

// TestShutdownWhileDetached: a guest that powers off while no startd
// watches still completes the job once reattached.
func TestShutdownWhileDetached(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	spec := guestSpec(t, "unwatched", vmimage.Timed(vmimage.TicksFor(500*time.Millisecond)), "")
	vm := start(t, newDriver(t), spec)
	h := vm.Handle()
	if err := vm.(hypervisor.Detacher).Detach(); err != nil {
		t.Fatal(err)
	}
	// Nothing watches the VM, so only its disk shows when the guest is
	// done; -no-shutdown keeps QEMU up in "shutdown" after that.
	deadline := time.Now().Add(testTimeout)
	for {
		if d, err := vmimage.ReadData(spec.Disks[0].Path); err == nil && d.Counter == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("guest did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
	vm2, err := newDriver(t).Reattach(testCtx(t), h)
	if err != nil {
		t.Fatalf("Reattach: %v", err)
	}
	// Not our child (reattached): its CPU as read from /proc before the
	// monitor ended it.
	if exit := wait(t, vm2); !exit.PoweredOff || exit.UserCPU+exit.SysCPU <= 0 {
		t.Fatalf("Exit %+v: want a power-off with the CPU QEMU used", exit)
	}
}

func TestStopCancelledContextKills(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	vm := start(t, newDriver(t), guestSpec(t, "cancel", vmimage.Forever(), ""))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := vm.Stop(ctx, time.Hour); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if exit := wait(t, vm); exit.Reason != qemu.ReasonKilled {
		t.Fatalf("Exit %+v", exit)
	}
}

func TestNetworkAndVNC(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	spec := guestSpec(t, "nat", vmimage.Counter(), "")
	spec.Network = hypervisor.Network{Enabled: true, Type: "nat", MAC: "52:54:00:12:34:99"}
	if exit := wait(t, start(t, newDriver(t), spec)); !exit.PoweredOff {
		t.Fatalf("NAT VM: Exit %+v", exit)
	}
	spec = guestSpec(t, "vnc", vmimage.Forever(), "")
	spec.VNC = true
	vm := start(t, newDriver(t), spec)
	if addr := vm.Handle().Data["vnc"]; !strings.HasPrefix(addr, "127.0.0.1:59") {
		t.Fatalf("vnc address %q", addr)
	}
	if err := vm.Stop(testCtx(t), 0); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointManyDisks: every kind of attachment survives an eviction
// and resume: writable disks travel in the checkpoint, a read-only IDE/SATA
// disk's overlay too (rebased onto the new job's copy), a CD-ROM not at all.
func TestCheckpointManyDisks(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	g := vmimage.StampCounter(30)
	mk := func() hypervisor.Spec {
		spec := guestSpec(t, "disks", g, "")
		data := filepath.Join(spec.Dir, "data.img")
		ro := filepath.Join(spec.Dir, "ro.img")
		iso := filepath.Join(spec.Dir, "tools.iso")
		for _, p := range []string{data, ro, iso} {
			if err := vmimage.CreateRaw(p, 1<<20); err != nil {
				t.Fatal(err)
			}
		}
		spec.Disks = append(spec.Disks,
			hypervisor.Disk{Path: data, Device: "vdb", Writable: true},
			hypervisor.Disk{Path: ro, Device: "sdb"},
			hypervisor.Disk{Path: iso, Device: "hdc"},
		)
		return spec
	}
	spec := mk()
	vm := start(t, newDriver(t), spec)
	deadline := time.Now().Add(testTimeout)
	var before vmimage.Data
	for {
		d, err := vmimage.ReadData(spec.Disks[0].Path)
		if err == nil && d.Stamped && d.Ticks >= 2 {
			before = d
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("guest made no progress")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ck := t.TempDir()
	cp, err := vm.(hypervisor.Checkpointer).Checkpoint(testCtx(t), ck, hypervisor.CheckpointOptions{})
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	want := "memory.state disk-hda.raw disk-vdb.raw disk-sdb.qcow2 checkpoint.json"
	if got := strings.Join(cp.Files, " "); got != want {
		t.Fatalf("checkpoint files %q, want %q", got, want)
	}
	if exit := wait(t, vm); exit.Reason != qemu.ReasonCheckpointed {
		t.Fatalf("Exit %+v", exit)
	}

	spec2 := mk()
	spec2.Resume = ck
	vm2 := start(t, newDriver(t), spec2)
	if exit := wait(t, vm2); !exit.PoweredOff {
		t.Fatalf("resumed: Exit %+v", exit)
	}
	final, err := vmimage.ReadData(spec2.Disks[0].Path)
	if err != nil || !final.Done || final.Stamp != before.Stamp || final.Boots != 1 {
		t.Fatalf("resumed guest %+v (first stamp %v), %v", final, before.Stamp, err)
	}
	if ro, _ := os.ReadFile(spec2.Disks[2].Path); len(ro) != 1<<20 || bytes.ContainsFunc(ro, func(r rune) bool { return r != 0 }) {
		t.Fatal("read-only disk was written")
	}
	if kept, _ := filepath.Glob(filepath.Join(spec2.Dir, ".*before-resume")); len(kept) != 0 {
		t.Fatalf("the job's disks kept during the resume were left behind: %v", kept)
	}

	// The same checkpoint with a different machine shape is refused.
	spec3 := mk()
	spec3.Resume, spec3.MemoryMiB = ck, 32
	_, err = newDriver(t).Start(testCtx(t), spec3)
	var se *hypervisor.SpecError
	if !errors.As(err, &se) || se.Code != "KVM_MISMATCHED_CHECKPOINT" {
		t.Fatalf("resume with other memory = %v", err)
	}
}

// TestResumeRefusedState: a checkpoint whose memory state QEMU refuses
// to load (here overwritten with garbage, as a state another QEMU cannot
// read would be) is the checkpoint's fault, KVM_MISMATCHED_CHECKPOINT:
// the startd then tries an older checkpoint or boots the original disks
// (docs/checkpoints.md) instead of taking the machine's VMs offline and
// sending the job to fail on the next machine.
func TestResumeRefusedState(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	spec := guestSpec(t, "refused-state", vmimage.StampCounter(30), "")
	vm := start(t, newDriver(t), spec)
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(20 * time.Millisecond) {
		if d, err := vmimage.ReadData(spec.Disks[0].Path); err == nil && d.Stamped {
			break // the checkpoint's copy of the disk differs from the original
		}
		if time.Now().After(deadline) {
			t.Fatal("guest made no progress")
		}
	}
	ck := t.TempDir()
	if _, err := vm.(hypervisor.Checkpointer).Checkpoint(testCtx(t), ck, hypervisor.CheckpointOptions{}); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	wait(t, vm)
	state := filepath.Join(ck, "memory.state")
	if err := os.WriteFile(state, bytes.Repeat([]byte("not a QEMU migration stream\n"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	spec2 := guestSpec(t, "refused-state", vmimage.StampCounter(30), "")
	spec2.Resume = ck
	vm2, err := newDriver(t).Start(testCtx(t), spec2)
	if err == nil {
		vm2.Stop(context.Background(), 0)
		t.Fatal("resumed from a garbage memory state")
	}
	var se *hypervisor.SpecError
	if !errors.As(err, &se) || se.Code != "KVM_MISMATCHED_CHECKPOINT" {
		t.Fatalf("resume from a memory state QEMU refuses = %v, want SpecError KVM_MISMATCHED_CHECKPOINT", err)
	}
	if _, err := os.Stat(filepath.Join(spec2.Dir, "qmp.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
	// The job's disk is as it was, not the checkpoint's copy: booting it
	// instead (the fall-back) starts the guest afresh.
	if d, err := vmimage.ReadData(spec2.Disks[0].Path); err != nil || d.Stamped || d.Boots != 0 {
		t.Fatalf("the job's disk after the refused resume: %+v, %v; want it untouched (never booted)", d, err)
	}
	if ents, _ := filepath.Glob(spec2.Disks[0].Path + "*"); len(ents) != 1 {
		t.Fatalf("files beside the job's disk: %v", ents)
	}
}

// BenchmarkCheckpoint measures an eviction checkpoint and a resume of an
// idle guest for two memory sizes, with the size of the saved state.
func BenchmarkCheckpoint(b *testing.B) {
	needQEMU(b)
	for _, mib := range []int{16, 256} {
		b.Run(strconv.Itoa(mib)+"MiB", func(b *testing.B) {
			d := qemu.New(qemu.Config{})
			var ckpt, resume time.Duration
			var stateBytes, diskBytes int64
			n := 0
			for b.Loop() {
				dir := b.TempDir()
				disk := filepath.Join(dir, "disk.img")
				if err := vmimage.Forever().WriteRaw(disk, 0); err != nil {
					b.Fatal(err)
				}
				spec := hypervisor.Spec{Name: "bench", Dir: dir, MemoryMiB: mib, VCPUs: 1,
					Disks: []hypervisor.Disk{{Path: disk, Device: "hda", Writable: true, Format: "raw"}}}
				ctx := context.Background()
				vm, err := d.Start(ctx, spec)
				if err != nil {
					b.Fatal(err)
				}
				// Checkpoint a booted guest: its disk shows the boot.
				for {
					if dd, err := vmimage.ReadData(disk); err == nil && dd.Boots == 1 {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				ck := filepath.Join(b.TempDir(), "ck")
				t0 := time.Now()
				cp, err := vm.(hypervisor.Checkpointer).Checkpoint(ctx, ck, hypervisor.CheckpointOptions{})
				ckpt += time.Since(t0)
				if err != nil {
					vm.Stop(ctx, 0)
					b.Fatal(err)
				}
				for _, f := range cp.Files {
					var st syscall.Stat_t
					if syscall.Stat(filepath.Join(ck, f), &st) == nil {
						if f == "memory.state" {
							stateBytes += st.Size
						} else {
							diskBytes += st.Blocks * 512
						}
					}
				}
				spec.Dir = b.TempDir()
				spec.Resume = ck
				t0 = time.Now()
				vm2, err := d.Start(ctx, spec)
				resume += time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				vm2.Stop(ctx, 0)
				n++
			}
			b.ReportMetric(ckpt.Seconds()/float64(n), "ckpt-s")
			b.ReportMetric(resume.Seconds()/float64(n), "resume-s")
			b.ReportMetric(float64(stateBytes)/float64(n)/(1<<20), "state-MiB")
			b.ReportMetric(float64(diskBytes)/float64(n)/(1<<10), "disk-KiB")
		})
	}
}

// BenchmarkHelloJob is the hello job through the driver: Start, the guest
// boots, counts and powers off, Wait returns, QEMU is reaped.
func BenchmarkHelloJob(b *testing.B) {
	needQEMU(b)
	d := qemu.New(qemu.Config{})
	dir := b.TempDir()
	disk := filepath.Join(dir, "hello.img")
	if err := vmimage.WriteHello(disk); err != nil {
		b.Fatal(err)
	}
	spec := hypervisor.Spec{Name: "hello", Dir: dir, MemoryMiB: 16, VCPUs: 1,
		Disks: []hypervisor.Disk{{Path: disk, Device: "hda", Writable: true, Format: "raw"}}}
	n := 0
	t0 := time.Now()
	for b.Loop() {
		vm, err := d.Start(context.Background(), spec)
		if err != nil {
			b.Fatal(err)
		}
		if exit, err := vm.Wait(context.Background()); err != nil || !exit.PoweredOff {
			b.Fatalf("Wait = %+v, %v", exit, err)
		}
		n++
	}
	b.ReportMetric(time.Since(t0).Seconds()/float64(n), "s/job")
}

// TestQCOW2Virtio: a qcow2 boot disk on virtio-blk, by content sniffing
// (no Format given), boots, completes, and checkpoints as qcow2.
func TestQCOW2Virtio(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	mk := func(g vmimage.Guest) hypervisor.Spec {
		dir := t.TempDir()
		disk := filepath.Join(dir, "disk.qcow2")
		if err := g.WriteQCOW2(testCtx(t), disk, 0); err != nil {
			t.Fatal(err)
		}
		return hypervisor.Spec{Name: "qcow2", Dir: dir, MemoryMiB: 16,
			Disks: []hypervisor.Disk{{Path: disk, Device: "vda", Writable: true}}}
	}
	spec := mk(vmimage.Counter())
	if exit := wait(t, start(t, newDriver(t), spec)); !exit.PoweredOff {
		t.Fatalf("Exit %+v", exit)
	}
	if d, err := vmimage.ReadData(spec.Disks[0].Path); err != nil || d.Counter != 1 {
		t.Fatalf("qcow2 disk %+v, %v", d, err)
	}

	g := vmimage.StampCounter(30)
	spec = mk(g)
	vm := start(t, newDriver(t), spec)
	ck := t.TempDir()
	cp, err := vm.(hypervisor.Checkpointer).Checkpoint(testCtx(t), ck, hypervisor.CheckpointOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cp.Files, " "); got != "memory.state disk-vda.qcow2 checkpoint.json" {
		t.Fatalf("checkpoint files %q", got)
	}
	spec2 := mk(g)
	spec2.Resume = ck
	if exit := wait(t, start(t, newDriver(t), spec2)); !exit.PoweredOff {
		t.Fatalf("resumed: Exit %+v", exit)
	}
	if d, err := vmimage.ReadData(spec2.Disks[0].Path); err != nil || !d.Done || d.Boots != 1 {
		t.Fatalf("resumed qcow2 disk %+v, %v", d, err)
	}
}

// TestClearLeftover: a QEMU that an earlier start left in a scratch
// directory, which no recorded handle names (its startd was killed before
// recording it), is ended by ClearLeftover; a pidfile that names another
// process, or none, is left alone.
func TestClearLeftover(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	d := newDriver(t)
	spec := guestSpec(t, "leftover", vmimage.Forever(), "")
	vm := start(t, d, spec)
	pid := vm.Handle().PID
	if err := vm.(hypervisor.Detacher).Detach(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("qemu %d gone after Detach: %v", pid, err)
	}
	if err := d.ClearLeftover(testCtx(t), spec.Dir); err != nil {
		t.Fatalf("ClearLeftover: %v", err)
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		t.Fatalf("qemu %d still there after ClearLeftover: %s", pid, b)
	}
	if err := d.ClearLeftover(testCtx(t), spec.Dir); err != nil {
		t.Fatalf("ClearLeftover again: %v", err)
	}
	// A pidfile naming a live process that is not this directory's QEMU
	// (a recycled pid): nothing is killed.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "qemu.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.ClearLeftover(testCtx(t), other); err != nil {
		t.Fatalf("ClearLeftover of a recycled pid: %v", err)
	}
	if err := d.ClearLeftover(testCtx(t), t.TempDir()); err != nil {
		t.Fatalf("ClearLeftover of an empty directory: %v", err)
	}
}

// TestHaltedGuestEnds: a guest that halts instead of powering off (every
// vCPU in HLT with interrupts off, as /sbin/halt leaves Linux) ends as a
// power-off does, with its disk writes kept, once two status checks in a
// row found it so; HTCondor's manual warns that such a job hangs. A guest
// idling in HLT with interrupts on is not taken for halted.
func TestHaltedGuestEnds(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	for _, vcpus := range []int{1, 2} {
		spec := guestSpec(t, "halting", vmimage.Halting(), "")
		spec.VCPUs = vcpus // the second CPU stays parked by the BIOS
		exit := wait(t, start(t, newDriver(t), spec))
		if !exit.PoweredOff || exit.Reason != qemu.ReasonGuestHalted {
			t.Fatalf("%d vCPUs: Exit %+v, want a power-off for %q", vcpus, exit, qemu.ReasonGuestHalted)
		}
		if d, err := vmimage.ReadData(spec.Disks[0].Path); err != nil || d.Counter != 1 {
			t.Fatalf("%d vCPUs: disk %+v, %v", vcpus, d, err)
		}
	}

	vm := start(t, newDriver(t), guestSpec(t, "forever", vmimage.Forever(), ""))
	select {
	case <-time.After(4 * time.Second): // four status checks
	case <-waitCh(vm):
		t.Fatal("an idling guest was taken for halted")
	}
}

func waitCh(vm hypervisor.VM) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		_, _ = vm.Wait(context.Background())
		close(ch)
	}()
	return ch
}
