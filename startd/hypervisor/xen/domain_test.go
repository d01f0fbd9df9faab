package xen

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/xen/xlemu"
)

// TestConfigReadsBack: the domain configuration the driver writes is what
// xl (its emulator's parser, which follows xl.cfg(5)) reads.
func TestConfigReadsBack(t *testing.T) {
	dir := t.TempDir()
	disk, iso := filepath.Join(dir, "disk, with comma.img"), filepath.Join(dir, "cd.iso")
	for _, f := range []string{disk, iso} {
		if err := os.WriteFile(f, make([]byte, 512), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := hypervisor.Spec{Name: "vmpool-abc", MemoryMiB: 64, VCPUs: 2, Kernel: "vmx",
		Disks:   []hypervisor.Disk{{Path: disk, Device: "hda", Writable: true}, {Path: iso, Device: "hdc"}},
		Network: hypervisor.Network{Enabled: true, Type: "bridge", MAC: "52:54:00:01:02:03"}}
	dom, err := buildDomain(spec, "pygrub", "xenbr0")
	if err != nil {
		t.Fatal(err)
	}
	got, err := xlemu.ParseDomain("xen_vm.config", dom.config(), nil, dir)
	if err != nil {
		t.Fatalf("parse:\n%s\n%v", dom.config(), err)
	}
	if got.Name != "vmpool-abc" || got.Type != "hvm" || got.MemoryMiB != 64 || got.VCPUs != 2 || got.OnCrash != "preserve" || got.OnPoweroff != "destroy" {
		t.Errorf("domain %+v", got)
	}
	if len(got.Disks) != 2 || got.Disks[0].Target != disk || got.Disks[0].Vdev != "hda" || !got.Disks[0].Writable ||
		!got.Disks[1].CDROM || got.Disks[1].Writable {
		t.Errorf("disks %+v", got.Disks)
	}
	if len(got.Vifs) != 1 || got.Vifs[0].MAC != "52:54:00:01:02:03" || got.Vifs[0].Bridge != "xenbr0" {
		t.Errorf("vifs %+v", got.Vifs)
	}

	spec.Kernel, spec.Network = "included", hypervisor.Network{Enabled: true, Type: "nat"}
	spec.Disks = spec.Disks[:1]
	spec.Disks[0].Device = "xvda"
	dom, err = buildDomain(spec, "pygrub", "xenbr0")
	if err != nil {
		t.Fatal(err)
	}
	got, err = xlemu.ParseDomain("xen_vm.config", dom.config(), nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != "pv" || got.Bootloader != "pygrub" || got.Vifs[0].Script != "vif-nat" {
		t.Errorf("included domain %+v", got)
	}
}
