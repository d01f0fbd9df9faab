package vmware_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/hvtest"
	"github.com/vmpool/vmpool/startd/hypervisor/vmware"
	"github.com/vmpool/vmpool/startd/hypervisor/vmware/vmformat"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// vmDir makes the suite's raw disk image a VMware VM: a monolithicFlat
// descriptor whose extent is the image, and a .vmx with it as node. It
// returns the .vmx's path.
func vmDir(t *testing.T, dir, disk, node string) string {
	t.Helper()
	fi, err := os.Stat(disk)
	if err != nil {
		t.Fatal(err)
	}
	if err := vmformat.WriteFlatDescriptor(filepath.Join(dir, "disk.vmdk"), filepath.Base(disk), fi.Size(), ""); err != nil {
		t.Fatal(err)
	}
	vmx := filepath.Join(dir, "guest.vmx")
	v := vmformat.NewVMX("guest", 16, []vmformat.DiskNode{{Node: node, File: "disk.vmdk"}})
	if err := os.WriteFile(vmx, v.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return vmx
}

// vmwareSpec is the suite's VM as a vmware job whose files were
// transferred, without snapshot disks (vmware_snapshot_disk = false), so
// that the guest writes the suite's image, the flat extent. Names get a
// suffix from the scratch dir, to be unique on the shared emulated host.
func vmwareSpec(t *testing.T, name, dir, disk string) hypervisor.Spec {
	sum := sha256.Sum256([]byte(dir))
	return hypervisor.Spec{
		Name: name + "-" + hex.EncodeToString(sum[:4]), Dir: dir, MemoryMiB: 16, VCPUs: 1,
		VMX: vmDir(t, dir, disk, "ide0:0"),
		// For the suite, which reads the guest's disk; the driver takes
		// the disks from the .vmx.
		Disks: []hypervisor.Disk{{Path: disk, Device: "hda", Writable: true, Format: "raw"}},
	}
}

func newDriver(t *testing.T, vmrun string) *vmware.Driver {
	return vmware.New(vmware.Config{VMRun: vmrun, StatusInterval: 500 * time.Millisecond, Logger: testLogger(t)})
}

// TestConformance runs the driver conformance suite against the vmware
// driver driving vmpool's vmrun emulator, which boots the guests under
// QEMU.
func TestConformance(t *testing.T) {
	vmrun := emulatedVMRun(t)
	t.Cleanup(func() { noVMsLeft(t, vmrun) })
	// Every vmrun command is a process of its own, slower than QMP: the
	// checkpoint guest counts longer, to be caught midway.
	hvtest.Run(t, func(t *testing.T) hypervisor.Driver { return newDriver(t, vmrun) }, hvtest.Kit{Spec: vmwareSpec, CheckpointTicks: 80})
}

// noVMsLeft checks that every VM the tests made is gone: vmrun list shows
// none and no QEMU of the emulated host runs.
func noVMsLeft(t *testing.T, vmrun string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, vmrun, "list").CombinedOutput()
	if err != nil {
		t.Fatalf("vmrun list: %v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != "Total running VMs: 0" {
		t.Errorf("VMs left after the tests:\n%s", out)
	}
	if ps, _ := exec.CommandContext(ctx, "pgrep", "-f", vmrun+".state").Output(); len(strings.TrimSpace(string(ps))) > 0 {
		t.Errorf("QEMU processes of the emulated host still run: %s", ps)
	}
}
