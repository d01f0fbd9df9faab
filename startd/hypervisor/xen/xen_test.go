package xen_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/xen"
	"github.com/vmpool/vmpool/vmimage"
	"github.com/vmpool/vmpool/vmimage/linux"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestProbeWithoutXen: a missing or broken xl is a clear reason and no
// advertisement, never an error.
func TestProbeWithoutXen(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "xl")
	script := "#!/bin/sh\necho 'xc: error: Could not obtain handle on privileged command interface' >&2\nexit 1\n"
	if err := os.WriteFile(broken, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, xl, reason string }{
		{"missing", filepath.Join(t.TempDir(), "no-xl"), "not found"},
		{"broken", broken, "privileged command interface"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp, err := xen.New(xen.Config{XL: tc.xl, Bootloader: "pygrub"}).Probe(ctxFor(t))
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if fp.Detected || fp.Healthy || !strings.Contains(fp.Reason, tc.reason) {
				t.Fatalf("Probe = %+v, want undetected with a reason about %q", fp, tc.reason)
			}
		})
	}
	t.Run("no bootloader", func(t *testing.T) {
		fp, err := xen.New(xen.Config{XL: emulatedXL(t)}).Probe(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		if !fp.Detected || fp.Healthy || !strings.Contains(fp.Reason, "XEN_BOOTLOADER") {
			t.Fatalf("Probe without XEN_BOOTLOADER = %+v, want detected, unhealthy, naming the knob", fp)
		}
	})
}

// TestSpecErrors: what the job got wrong is a SpecError with HTCondor's
// code, found before xl runs.
func TestSpecErrors(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	kernel := filepath.Join(dir, "vmlinuz")
	for _, f := range []string{disk, kernel} {
		if err := os.WriteFile(f, make([]byte, 1024), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest := filepath.Join(t.TempDir())
	b, _ := json.Marshal(map[string]any{"name": "old", "type": "pv", "memory_mib": 64, "vcpus": 1,
		"disks": []map[string]any{{"device": "xvda", "path": "/x", "format": "raw", "writable": true, "file": "disk-xvda.raw"}}})
	os.WriteFile(filepath.Join(manifest, "xen-checkpoint.json"), b, 0o600)
	os.WriteFile(filepath.Join(manifest, "xen.mem.ckpt"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(manifest, "disk-xvda.raw"), []byte("x"), 0o600)

	good := func() hypervisor.Spec {
		return hypervisor.Spec{Name: "job", Dir: filepath.Join(t.TempDir(), "scratch"), MemoryMiB: 16, VCPUs: 1, Kernel: "included",
			Disks: []hypervisor.Disk{{Path: disk, Device: "xvda", Writable: true, Format: "raw"}}}
	}
	cases := []struct {
		name string
		edit func(*hypervisor.Spec)
		code string
	}{
		{"no memory", func(s *hypervisor.Spec) { s.MemoryMiB = 0 }, "JOBCLASSAD_NO_VM_MEMORY_PARAM"},
		{"no disk", func(s *hypervisor.Spec) { s.Disks = nil }, "XEN_NO_DISK_PARAM"},
		{"missing disk", func(s *hypervisor.Spec) { s.Disks[0].Path = filepath.Join(dir, "nothere.img") }, "XEN_INVALID_DISK_PARAM"},
		{"not a xen device", func(s *hypervisor.Spec) { s.Disks[0].Device = "vda" }, "XEN_INVALID_DISK_PARAM"},
		{"unknown format", func(s *hypervisor.Spec) { s.Disks[0].Format = "vdi" }, "XEN_INVALID_DISK_PARAM"},
		{"no kernel", func(s *hypervisor.Spec) { s.Kernel = "" }, "XEN_NO_KERNEL_PARAM"},
		{"missing kernel", func(s *hypervisor.Spec) { s.Kernel = filepath.Join(dir, "nothere") }, "XEN_KERNEL_NOT_FOUND"},
		{"missing initrd", func(s *hypervisor.Spec) {
			s.Kernel, s.Root, s.Initrd = kernel, "/dev/xvda1", filepath.Join(dir, "nothere")
		}, "XEN_INITRD_NOT_FOUND"},
		{"kernel without root", func(s *hypervisor.Spec) { s.Kernel = kernel }, "XEN_NO_ROOT_DEVICE_PARAM"},
		{"checkpoint of another memory size", func(s *hypervisor.Spec) { s.Resume = manifest }, "XEN_MISMATCHED_CHECKPOINT"},
	}
	// The tool is never reached: a missing xl would fail every case
	// that got that far.
	d := xen.New(xen.Config{XL: filepath.Join(t.TempDir(), "no-xl"), Bootloader: "pygrub"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := good()
			tc.edit(&spec)
			_, err := d.Start(ctxFor(t), spec)
			var se *hypervisor.SpecError
			if !errors.As(err, &se) || se.Code != tc.code {
				t.Fatalf("Start = %v, want a SpecError %s", err, tc.code)
			}
		})
	}
}

// TestKernelDomainBoots: xen_kernel as a kernel file (with xen_initrd,
// xen_root and xen_kernel_params) goes into the domain configuration as
// kernel, ramdisk, root and extra, and the xl emulator boots it directly:
// the project's Linux guest runs from its kernel and initramfs, writes its
// report on the data disk and powers off.
func TestKernelDomainBoots(t *testing.T) {
	xl := emulatedXL(t)
	kernel, err := linux.FindKernel()
	if err != nil {
		t.Fatalf("Linux guest: %v (scripts/setup.sh installs %s when root)", err, linux.Packages)
	}
	dir := t.TempDir()
	f, err := linux.Guest{Kernel: kernel}.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	spec := hypervisor.Spec{Name: "kernel-job", Dir: filepath.Join(dir, "scratch"), MemoryMiB: 128, VCPUs: 1,
		Kernel: f.Kernel, Initrd: f.Initrd, Root: "/dev/xvda", KernelParams: f.Cmdline,
		Disks: []hypervisor.Disk{{Path: f.Disk, Device: "xvda", Writable: true, Format: "raw"}}}
	vm, err := xen.New(xen.Config{XL: xl, StatusInterval: 200 * time.Millisecond}).Start(ctxFor(t), spec)
	if err != nil {
		t.Fatalf("start a kernel domain: %v", err)
	}
	cfg, _ := os.ReadFile(filepath.Join(spec.Dir, "xen_vm.config"))
	for _, want := range []string{`kernel = "` + f.Kernel + `"`, `ramdisk = "` + f.Initrd + `"`, `root = "/dev/xvda"`, `extra = "` + f.Cmdline + `"`} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("domain configuration lacks %s:\n%s", want, cfg)
		}
	}
	exit, err := vm.Wait(ctxFor(t))
	if err != nil || !exit.PoweredOff {
		t.Fatalf("Wait = %+v, %v; want a power-off", exit, err)
	}
	r, err := linux.ReadReport(f.Disk)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != "" || r.CPUs != 1 || r.DataDev != "/dev/vda" || r.Net != "none" {
		t.Fatalf("the guest reported %+v", r)
	}
}

// TestCrashedDomain: a domain whose guest dies without powering off stays
// in xl list as crashed (on_crash = "preserve"); the driver destroys it
// and does not complete the job.
func TestCrashedDomain(t *testing.T) {
	xl := emulatedXL(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := vmimage.Forever().WriteRaw(disk, 0); err != nil {
		t.Fatal(err)
	}
	d := xen.New(xen.Config{XL: xl, Bootloader: "pygrub", StatusInterval: 300 * time.Millisecond, Logger: testLogger(t)})
	vm, err := d.Start(ctxFor(t), hypervisor.Spec{Name: "crasher", Dir: dir, MemoryMiB: 16, Kernel: "included",
		Disks: []hypervisor.Disk{{Path: disk, Device: "xvda", Writable: true, Format: "raw"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Stop(context.Background(), 0) })
	// The emulator's record of the domain names its QEMU.
	var rec struct {
		Handle hypervisor.Handle `json:"handle"`
	}
	b, err := os.ReadFile(filepath.Join(xl+".state", "guests", "crasher.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.Handle.PID <= 0 {
		t.Fatalf("emulator record: %s (%v)", b, err)
	}
	if err := syscall.Kill(rec.Handle.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	exit, err := vm.Wait(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	if exit.PoweredOff || exit.Reason != xen.ReasonCrashed {
		t.Fatalf("Exit = %+v, want the crash", exit)
	}
	noDomainsLeft(t, xl)
}

// TestResumeRefusedSaveFile: a checkpoint whose save file xl restore
// refuses (here not a save file at all) is the checkpoint's fault,
// XEN_MISMATCHED_CHECKPOINT, so that the startd tries an older checkpoint
// or boots the job's disks; and those disks are the job's own again, not
// the checkpoint's copies the resume put in their place.
func TestResumeRefusedSaveFile(t *testing.T) {
	xl := emulatedXL(t)
	t.Cleanup(func() { noDomainsLeft(t, xl) })
	d := xen.New(xen.Config{XL: xl, Bootloader: "pygrub", StatusInterval: 300 * time.Millisecond, Logger: testLogger(t)})
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := vmimage.StampCounter(60).WriteRaw(disk, 0); err != nil {
		t.Fatal(err)
	}
	vm, err := d.Start(ctxFor(t), xenSpec(t, "refused", dir, disk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Stop(context.Background(), 0) })
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if dd, err := vmimage.ReadData(disk); err == nil && dd.Stamped {
			break // the checkpoint's copy of the disk differs from the original
		}
		if time.Now().After(deadline) {
			t.Fatal("guest made no progress")
		}
	}
	ck := t.TempDir()
	if _, err := vm.(hypervisor.Checkpointer).Checkpoint(ctxFor(t), ck, hypervisor.CheckpointOptions{}); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if _, err := vm.Wait(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ck, "xen.mem.ckpt"), []byte("not a save file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir2 := t.TempDir()
	disk2 := filepath.Join(dir2, "disk.img")
	if err := vmimage.StampCounter(60).WriteRaw(disk2, 0); err != nil {
		t.Fatal(err)
	}
	spec := xenSpec(t, "refused", dir2, disk2)
	spec.Resume = ck
	vm2, err := d.Start(ctxFor(t), spec)
	if err == nil {
		vm2.Stop(context.Background(), 0)
		t.Fatal("restored a domain from a file that is not a save file")
	}
	var se *hypervisor.SpecError
	if !errors.As(err, &se) || se.Code != "XEN_MISMATCHED_CHECKPOINT" {
		t.Fatalf("restore from a save file xl refuses = %v, want SpecError XEN_MISMATCHED_CHECKPOINT", err)
	}
	if dd, err := vmimage.ReadData(disk2); err != nil || dd.Stamped || dd.Boots != 0 {
		t.Fatalf("the job's disk after the refused restore: %+v, %v; want it untouched (never booted)", dd, err)
	}
}
