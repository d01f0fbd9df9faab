package xen_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/hvtest"
	"github.com/vmpool/vmpool/startd/hypervisor/xen"
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

// xenSpec is the suite's VM as a xen_kernel = included job: one writable
// raw disk as xvda, booted by its own boot code. Names get a suffix from
// the scratch dir: all subtests share one emulated host, where domain
// names must be unique.
func xenSpec(t *testing.T, name, dir, disk string) hypervisor.Spec {
	sum := sha256.Sum256([]byte(dir))
	return hypervisor.Spec{
		Name: name + "-" + hex.EncodeToString(sum[:4]), Dir: dir, MemoryMiB: 16, VCPUs: 1, Kernel: "included",
		Disks: []hypervisor.Disk{{Path: disk, Device: "xvda", Writable: true, Format: "raw"}},
	}
}

// TestConformance runs the driver conformance suite against the xen
// driver driving vmpool's xl emulator, which boots the guests under QEMU.
func TestConformance(t *testing.T) {
	xl := emulatedXL(t)
	t.Cleanup(func() { noDomainsLeft(t, xl) })
	newDriver := func(t *testing.T) hypervisor.Driver {
		return xen.New(xen.Config{XL: xl, Bootloader: "pygrub", StatusInterval: 500 * time.Millisecond, Logger: testLogger(t)})
	}
	// Every xl command is a process of its own, slower than QMP: the
	// checkpoint guest counts longer, to be caught midway.
	hvtest.Run(t, newDriver, hvtest.Kit{Spec: xenSpec, CheckpointTicks: 80})
}

// noDomainsLeft checks that every domain the suite made is gone: xl list
// shows only Domain-0 and no QEMU of the emulated host runs.
func noDomainsLeft(t *testing.T, xl string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, xl, "list").CombinedOutput()
	if err != nil {
		t.Fatalf("xl list: %v\n%s", err, out)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "Domain-0 ") {
		t.Errorf("domains left after the suite:\n%s", out)
	}
	if ps, _ := exec.CommandContext(ctx, "pgrep", "-f", xl+".state").Output(); len(strings.TrimSpace(string(ps))) > 0 {
		t.Errorf("QEMU processes of the emulated host still run: %s", ps)
	}
}
