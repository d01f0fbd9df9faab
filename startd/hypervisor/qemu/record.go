package qemu

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

// recordFile, in a VM's Dir, describes the running VM: what Checkpoint
// needs after a Reattach, since a Handle stays small.
const recordFile = "qemu-vm.json"

// record is the machine shape and disks of a VM as launched. The same
// struct, with the checkpoint's own fields, is a checkpoint's manifest.
type record struct {
	Name      string       `json:"name"`
	Machine   string       `json:"machine"` // as launched ("pc"), or resolved ("pc-i440fx-7.2") in a manifest
	Accel     string       `json:"accel"`
	MemoryMiB int          `json:"memory_mib"`
	VCPUs     int          `json:"vcpus"`
	VNC       bool         `json:"vnc,omitempty"`
	Network   bool         `json:"network,omitempty"` // a NIC is present
	Disks     []recordDisk `json:"disks"`
	// A guest booted from a kernel file rather than its disk (the xl
	// emulator's PV domains): the kernel command line, which a resume
	// must repeat, and the files as launched.
	Kernel string `json:"kernel,omitempty"`
	Initrd string `json:"initrd,omitempty"`
	Append string `json:"append,omitempty"`

	// Manifest only.
	Version string `json:"qemu_version,omitempty"`
	State   string `json:"state,omitempty"` // memory state file, relative to the checkpoint dir
}

// recordDisk is one attached disk, in command-line order.
type recordDisk struct {
	Device   string `json:"device"` // normalised: hda, sdb, vdc
	Path     string `json:"path"`   // the job's image
	Format   string `json:"format"`
	Bus      bus    `json:"bus"`
	Unit     int    `json:"unit"`
	CDROM    bool   `json:"cdrom,omitempty"`
	ReadOnly bool   `json:"read_only,omitempty"`
	Overlay  string `json:"overlay,omitempty"` // qcow2 in Dir that QEMU writes instead of Path
	Delta    bool   `json:"delta,omitempty"`   // Overlay holds the guest's writes to Path, committed at power-off
	// File is the disk's copy in a checkpoint dir (manifest only), for
	// the disks QEMU writes to.
	File string `json:"file,omitempty"`
}

func newRecord(l launch) record {
	r := record{
		Name: l.name, Machine: l.machine, Accel: l.accel, MemoryMiB: l.memoryMiB,
		VCPUs: l.vcpus, VNC: l.vnc, Network: l.net.Enabled,
		Kernel: l.kernel, Initrd: l.initrd, Append: l.cmdline,
	}
	for _, d := range l.disks {
		r.Disks = append(r.Disks, recordDisk{
			Device: d.device, Path: d.Path, Format: d.format, Bus: d.bus, Unit: d.unit,
			CDROM: d.cdrom, ReadOnly: d.readOnly, Overlay: d.overlay, Delta: d.delta,
		})
	}
	return r
}

// plan turns a recorded disk back into a diskPlan.
func (rd recordDisk) plan() diskPlan {
	return diskPlan{
		Disk:   hypervisor.Disk{Path: rd.Path, Device: rd.Device, Writable: !rd.ReadOnly, Format: rd.Format},
		device: rd.Device, format: rd.Format, bus: rd.Bus, unit: rd.Unit,
		cdrom: rd.CDROM, readOnly: rd.ReadOnly, overlay: rd.Overlay, delta: rd.Delta,
	}
}

// writeJSON writes v to path atomically (temporary file, fsync, rename).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readRecord(path string) (record, error) {
	var r record
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("decode %s: %w", filepath.Base(path), err)
	}
	return r, nil
}
