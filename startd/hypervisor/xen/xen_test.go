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

// TestKernelDomainNotEmulated: xen_kernel as a kernel file passes the
// driver's checks and reaches xl, whose emulator says plainly that it
// checked it and does not boot kernels.
func TestKernelDomainNotEmulated(t *testing.T) {
	xl := emulatedXL(t)
	dir := t.TempDir()
	disk, kernel := filepath.Join(dir, "disk.img"), filepath.Join(dir, "vmlinuz")
	if err := vmimage.WriteHello(disk); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kernel, []byte("not really a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := hypervisor.Spec{Name: "kernel-job", Dir: filepath.Join(dir, "scratch"), MemoryMiB: 16, Kernel: kernel, Root: "/dev/xvda1",
		KernelParams: "console=hvc0", Disks: []hypervisor.Disk{{Path: disk, Device: "xvda", Writable: true}}}
	_, err := xen.New(xen.Config{XL: xl, Bootloader: "pygrub"}).Start(ctxFor(t), spec)
	if err == nil || errors.Is(err, hypervisor.ErrBadSpec) || !strings.Contains(err.Error(), "not emulated") {
		t.Fatalf("Start of a kernel domain = %v, want the emulator's refusal", err)
	}
	cfg, rerr := os.ReadFile(filepath.Join(spec.Dir, "xen_vm.config"))
	if rerr != nil || !strings.Contains(string(cfg), `kernel = "`+kernel+`"`) || !strings.Contains(string(cfg), `root = "/dev/xvda1"`) ||
		!strings.Contains(string(cfg), `extra = "console=hvc0"`) {
		t.Fatalf("domain configuration:\n%s (%v)", cfg, rerr)
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
