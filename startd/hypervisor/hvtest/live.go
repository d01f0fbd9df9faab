package hvtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vmpool/vmpool/vmimage"
)

// LiveData reads what a guest has written on its disk at path so far. A
// driver that keeps a guest's writes in a qcow2 overlay beside the disk
// (the kvm driver's delta disks: DEVICE.overlay.qcow2 in the disk's
// directory) has them there until the guest powers off, so the overlay
// is read through, with qemu-img, while QEMU may still hold it.
func LiveData(path string) (vmimage.Data, error) {
	overlays, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.overlay.qcow2"))
	for _, ov := range overlays {
		info, err := exec.Command("qemu-img", "info", "-U", ov).Output()
		if err != nil || !strings.Contains(string(info), "backing file: "+path) {
			continue
		}
		raw, err := os.CreateTemp("", "vmpool-live-*.img")
		if err != nil {
			return vmimage.Data{}, err
		}
		raw.Close()
		defer os.Remove(raw.Name())
		if out, err := exec.Command("qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", ov, raw.Name()).CombinedOutput(); err != nil {
			return vmimage.Data{}, fmt.Errorf("read %s through %s: %w: %s", path, ov, err, out)
		}
		return vmimage.ReadData(raw.Name())
	}
	return vmimage.ReadData(path)
}

// overlayGrew reports whether a qcow2 overlay beside disk has grown past
// what an empty one holds: the guest has written through it.
func overlayGrew(disk string) bool {
	overlays, _ := filepath.Glob(filepath.Join(filepath.Dir(disk), "*.overlay.qcow2"))
	for _, ov := range overlays {
		if fi, err := os.Stat(ov); err == nil && fi.Size() > 256<<10 {
			return true
		}
	}
	return false
}
