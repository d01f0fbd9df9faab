package sim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

// BenchmarkStartPowerOff is a sim VM's whole life as a startd drives it:
// Start, Wait for the power-off (at once), per VM.
func BenchmarkStartPowerOff(b *testing.B) {
	d := New(Config{})
	dir := b.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 1024), 0o600); err != nil {
		b.Fatal(err)
	}
	base := hypervisor.Spec{Dir: dir, MemoryMiB: 16, VCPUs: 1, Disks: []hypervisor.Disk{{Path: disk, Device: "hda"}}}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		spec := base
		spec.Name = fmt.Sprintf("vm%d", i)
		vm, err := d.Start(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		if e, err := vm.Wait(ctx); err != nil || !e.PoweredOff {
			b.Fatalf("Wait = %+v, %v", e, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "VMs/s")
}
