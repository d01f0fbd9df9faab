package qemu_test

import (
	"log/slog"
	"os/exec"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/hvtest"
	"github.com/vmpool/vmpool/startd/hypervisor/qemu"
)

func needQEMU(t testing.TB) {
	t.Helper()
	for _, bin := range []string{qemu.DefaultBinary, qemu.DefaultImgBinary} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed: %v", bin, err)
		}
	}
}

// testLogger sends the driver's records to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

func newDriver(t *testing.T) *qemu.Driver {
	return qemu.New(qemu.Config{Logger: testLogger(t), StatusInterval: time.Second})
}

func TestConformance(t *testing.T) {
	needQEMU(t)
	hvtest.Run(t, func(t *testing.T) hypervisor.Driver { return newDriver(t) }, hvtest.Kit{})
}

// TestConformanceDeltaDisks: the suite again with the guest's disk writes
// in qcow2 overlays (Spec.DeltaDisks, what a vm_checkpoint job gets): the
// checkpoint carries the overlay, and the disk holds the guest's writes
// once it powers off.
func TestConformanceDeltaDisks(t *testing.T) {
	needQEMU(t)
	hvtest.Run(t, func(t *testing.T) hypervisor.Driver { return newDriver(t) }, hvtest.Kit{
		Spec: func(t *testing.T, name, dir, disk string) hypervisor.Spec {
			s := hvtest.DefaultSpec(t, name, dir, disk)
			s.DeltaDisks = true
			return s
		},
		OpaqueDisks: true,
	})
}
