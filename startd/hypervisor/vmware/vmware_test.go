package vmware_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/vmware"
	"github.com/vmpool/vmpool/startd/hypervisor/vmware/vmformat"
	"github.com/vmpool/vmpool/vmimage"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func readData(t *testing.T, path string) vmimage.Data {
	t.Helper()
	d, err := vmimage.ReadData(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readVMX(t *testing.T, path string) *vmformat.VMX {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vmformat.ParseVMX(b)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// guestDir writes guest g as a VMware VM in a fresh dir (disk.img is the
// flat extent) and returns the dir and the .vmx.
func guestDir(t *testing.T, g vmimage.Guest) (string, string) {
	t.Helper()
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := g.WriteRaw(disk, 0); err != nil {
		t.Fatal(err)
	}
	return dir, vmDir(t, dir, disk, "scsi0:0")
}

// TestProbeWithoutVMware: a missing vmrun, or a tool that is not vmrun,
// is a reason and no advertisement, never an error.
func TestProbeWithoutVMware(t *testing.T) {
	impostor := filepath.Join(t.TempDir(), "vmrun")
	if err := os.WriteFile(impostor, []byte("#!/bin/sh\necho hello\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, vmrun, reason string }{
		{"missing", filepath.Join(t.TempDir(), "no-vmrun"), "not found"},
		{"not vmrun", impostor, "no \"vmrun version\" line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp, err := vmware.New(vmware.Config{VMRun: tc.vmrun}).Probe(ctxFor(t))
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if fp.Detected || !strings.Contains(fp.Reason, tc.reason) {
				t.Fatalf("Probe = %+v, want undetected with a reason about %q", fp, tc.reason)
			}
		})
	}
}

// TestSpecErrors: what the job got wrong is a SpecError, found before the
// VM starts.
func TestSpecErrors(t *testing.T) {
	vmrun := emulatedVMRun(t)
	d := newDriver(t, vmrun)
	cases := []struct {
		name string
		edit func(t *testing.T, s *hypervisor.Spec)
		code string
	}{
		{"no vmx", func(t *testing.T, s *hypervisor.Spec) { s.VMX = "" }, "NO_VMWARE_VMX_PARAM"},
		{"vmx missing", func(t *testing.T, s *hypervisor.Spec) { os.Remove(s.VMX) }, "NO_VMWARE_VMX_PARAM"},
		{"vmx syntax", func(t *testing.T, s *hypervisor.Spec) { os.WriteFile(s.VMX, []byte("memsize 16\n"), 0o644) }, "VMWARE_VMX_ERROR"},
		{"disk missing", func(t *testing.T, s *hypervisor.Spec) { os.Remove(filepath.Join(s.Dir, "disk.vmdk")) }, "VMWARE_VMX_ERROR"},
		{"memory not a multiple of 4", func(t *testing.T, s *hypervisor.Spec) { s.MemoryMiB = 18 }, "VMWARE_VMX_ERROR"},
		{"shared disks without a snapshot", func(t *testing.T, s *hypervisor.Spec) {
			shared := t.TempDir()
			os.Rename(filepath.Join(s.Dir, "disk.vmdk"), filepath.Join(shared, "disk.vmdk"))
			s.VMwareDir, s.SnapshotDisk = shared, false
		}, "VMWARE_VMX_ERROR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, vmx := guestDir(t, vmimage.Counter())
			spec := hypervisor.Spec{Name: "job", Dir: dir, MemoryMiB: 16, VMX: vmx}
			tc.edit(t, &spec)
			vm, err := d.Start(ctxFor(t), spec)
			if err == nil {
				vm.Stop(context.Background(), 0)
			}
			var se *hypervisor.SpecError
			if !errors.As(err, &se) || se.Code != tc.code {
				t.Fatalf("Start = %v, want a SpecError %s", err, tc.code)
			}
		})
	}
}

// TestSnapshotDiskComesBackConsolidated: with vmware_snapshot_disk (the
// default) the guest writes a snapshot, which the driver consolidates
// after the power-off: the job's own disk holds the result, no snapshot
// file is left, and the .vmx carries the job's values.
func TestSnapshotDiskComesBackConsolidated(t *testing.T) {
	vmrun := emulatedVMRun(t)
	dir, vmx := guestDir(t, vmimage.Counter())
	vm, err := newDriver(t, vmrun).Start(ctxFor(t), hypervisor.Spec{Name: "snap", Dir: dir, MemoryMiB: 32, VCPUs: 1, VMX: vmx, SnapshotDisk: true,
		Network: hypervisor.Network{Enabled: true, Type: "nat", MAC: "52:54:00:aa:bb:cc"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Stop(context.Background(), 0) })
	exit, err := vm.Wait(ctxFor(t))
	if err != nil || !exit.PoweredOff {
		t.Fatalf("Wait = %+v, %v", exit, err)
	}
	if got := readData(t, filepath.Join(dir, "disk.img")); got.Counter != 1 {
		t.Fatalf("job's disk after the run: %+v, want Counter 1", got)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*-00000*")); len(left) > 0 {
		t.Errorf("snapshot files left: %v", left)
	}
	v := readVMX(t, vmx)
	for k, want := range map[string]string{"memsize": "32", "numvcpus": "1", "displayName": "snap", "scsi0:0.fileName": "disk.vmdk",
		"ethernet0.present": "TRUE", "ethernet0.connectionType": "nat", "ethernet0.addressType": "generated", "disk.locking": "FALSE"} {
		if got, _ := v.Get(k); got != want {
			t.Errorf(".vmx %s = %q, want %q", k, got, want)
		}
	}
	noVMsLeft(t, vmrun)
}

// TestSnapshotCheckpointCarriesTheSnapshot: with snapshot disks a
// checkpoint holds the snapshot, not the job's own disk (which comes
// again with the job's files); resumed elsewhere, the guest finishes,
// and its result ends up in the job's disk there.
func TestSnapshotCheckpointCarriesTheSnapshot(t *testing.T) {
	vmrun := emulatedVMRun(t)
	g := vmimage.StampCounter(80)
	dir, vmx := guestDir(t, g)
	d := newDriver(t, vmrun)
	vm, err := d.Start(ctxFor(t), hypervisor.Spec{Name: "ckpt", Dir: dir, MemoryMiB: 16, VMX: vmx, SnapshotDisk: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Stop(context.Background(), 0) })
	// The guest writes the snapshot's extent; wait until it stamped it.
	delta := filepath.Join(dir, "disk-000001-flat.vmdk")
	var before vmimage.Data
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if dd, err := vmimage.ReadData(delta); err == nil && dd.Stamped && dd.Ticks >= 3 {
			before = dd
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the guest never wrote its snapshot disk")
		}
	}
	ck := t.TempDir()
	cp, err := vm.(hypervisor.Checkpointer).Checkpoint(ctxFor(t), ck, hypervisor.CheckpointOptions{})
	if err != nil {
		t.Fatal(err)
	}
	files := strings.Join(cp.Files, " ")
	for _, want := range []string{"guest.vmx", "guest.vmss", "guest.vmem", "guest.vmsd", "disk-000001.vmdk", "disk-000001-flat.vmdk"} {
		if !strings.Contains(" "+files+" ", " "+want+" ") {
			t.Errorf("checkpoint lacks %s: %s", want, files)
		}
	}
	for _, not := range []string{"disk.img", "disk.vmdk"} {
		if strings.Contains(" "+files+" ", " "+not+" ") {
			t.Errorf("checkpoint holds the job's own %s: %s", not, files)
		}
	}
	if exit, _ := vm.Wait(ctxFor(t)); exit.PoweredOff {
		t.Fatalf("an evicted VM completed: %+v", exit)
	}

	// Elsewhere: the job's files afresh, then the checkpoint.
	dir2, vmx2 := guestDir(t, g)
	vm2, err := d.Start(ctxFor(t), hypervisor.Spec{Name: "ckpt2", Dir: dir2, MemoryMiB: 16, VMX: vmx2, SnapshotDisk: true, Resume: ck})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm2.Stop(context.Background(), 0) })
	exit, err := vm2.Wait(ctxFor(t))
	if err != nil || !exit.PoweredOff {
		t.Fatalf("resumed VM: %+v, %v", exit, err)
	}
	final := readData(t, filepath.Join(dir2, "disk.img"))
	if !final.Done || final.Stamp != before.Stamp || final.Boots != 1 || final.Ticks != g.Ticks {
		t.Fatalf("job's disk after the resumed run: %+v, first stamp %v", final, before.Stamp)
	}
	noVMsLeft(t, vmrun)
}

// TestSharedDisksUsedInPlace: without file transfer the disks are used
// from vmware_dir through a snapshot in the scratch dir; the shared disk
// is never written.
func TestSharedDisksUsedInPlace(t *testing.T) {
	vmrun := emulatedVMRun(t)
	shared, sharedVMX := guestDir(t, vmimage.Counter())
	scratch := t.TempDir()
	vmx := filepath.Join(scratch, "guest.vmx")
	b, err := os.ReadFile(sharedVMX)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vmx, b, 0o644); err != nil { // only the .vmx is transferred
		t.Fatal(err)
	}
	vm, err := newDriver(t, vmrun).Start(ctxFor(t), hypervisor.Spec{Name: "shared", Dir: scratch, MemoryMiB: 16, VMX: vmx,
		VMwareDir: shared, SnapshotDisk: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Stop(context.Background(), 0) })
	exit, err := vm.Wait(ctxFor(t))
	if err != nil || !exit.PoweredOff {
		t.Fatalf("Wait = %+v, %v", exit, err)
	}
	if got := readData(t, filepath.Join(shared, "disk.img")); got.Counter != 0 || got.Boots != 0 {
		t.Fatalf("the shared disk was written: %+v", got)
	}
	if got := readData(t, filepath.Join(scratch, "disk-000001-flat.vmdk")); got.Counter != 1 {
		t.Fatalf("the snapshot in the scratch dir: %+v, want Counter 1", got)
	}
	noVMsLeft(t, vmrun)
}

// TestResumeRefusedSuspendState: a checkpoint whose suspended state vmrun
// cannot resume (here a .vmss that is not one) is the checkpoint's fault,
// VMWARE_MISMATCHED_CHECKPOINT, so that the startd tries an older
// checkpoint or boots the job's files; and those files are the job's own
// again: a boot of them starts the guest afresh and runs it to its end.
func TestResumeRefusedSuspendState(t *testing.T) {
	vmrun := emulatedVMRun(t)
	g := vmimage.StampCounter(40)
	dir, vmx := guestDir(t, g)
	d := newDriver(t, vmrun)
	vm, err := d.Start(ctxFor(t), hypervisor.Spec{Name: "refused", Dir: dir, MemoryMiB: 16, VMX: vmx})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Stop(context.Background(), 0) })
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if dd, err := vmimage.ReadData(filepath.Join(dir, "disk.img")); err == nil && dd.Stamped {
			break // the checkpoint's copy of the disk differs from the original
		}
		if time.Now().After(deadline) {
			t.Fatal("the guest never wrote its disk")
		}
	}
	ck := t.TempDir()
	if _, err := vm.(hypervisor.Checkpointer).Checkpoint(ctxFor(t), ck, hypervisor.CheckpointOptions{}); err != nil {
		t.Fatal(err)
	}
	vm.Wait(ctxFor(t))
	if err := os.WriteFile(filepath.Join(ck, "guest.vmss"), []byte("not a suspended state\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	dir2, vmx2 := guestDir(t, g)
	spec := hypervisor.Spec{Name: "refused2", Dir: dir2, MemoryMiB: 16, VMX: vmx2, Resume: ck}
	vm2, err := d.Start(ctxFor(t), spec)
	if err == nil {
		vm2.Stop(context.Background(), 0)
		t.Fatal("resumed from a .vmss that is not one")
	}
	var se *hypervisor.SpecError
	if !errors.As(err, &se) || se.Code != "VMWARE_MISMATCHED_CHECKPOINT" {
		t.Fatalf("resume from a state vmrun refuses = %v, want SpecError VMWARE_MISMATCHED_CHECKPOINT", err)
	}
	// The startd's fall-back: the same job's files, booted.
	spec.Resume = ""
	vm3, err := d.Start(ctxFor(t), spec)
	if err != nil {
		t.Fatalf("boot after the refused resume: %v", err)
	}
	t.Cleanup(func() { vm3.Stop(context.Background(), 0) })
	exit, err := vm3.Wait(ctxFor(t))
	if err != nil || !exit.PoweredOff {
		t.Fatalf("booted VM: %+v, %v", exit, err)
	}
	if final := readData(t, filepath.Join(dir2, "disk.img")); !final.Done || final.Boots != 1 || final.Ticks != g.Ticks {
		t.Fatalf("job's disk after the fall-back boot: %+v; want one boot run to its end", final)
	}
	noVMsLeft(t, vmrun)
}
