package qemu

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

// bus is how a disk is attached to the guest.
type bus int

const (
	busIDE    bus = iota // hdX: the pc machine's two IDE channels, master and slave
	busSATA              // sdX: an AHCI controller (Linux names its disks sdX)
	busVirtio            // vdX and xvdX: virtio-blk
)

// diskPlan is one validated Spec disk and where it goes.
type diskPlan struct {
	hypervisor.Disk
	device   string // Device without a partition number: "hda", "vdb"
	format   string // QEMU block driver: "raw", "qcow2", ...
	bus      bus
	unit     int  // IDE 0..3 (hda..hdd), AHCI port 0..5, virtio letter index
	cdrom    bool // an ISO image: attached as a CD-ROM, read-only
	readOnly bool
	// overlay, when set, is a qcow2 file in the VM's Dir that QEMU opens
	// instead of Path: IDE and SATA hard disks cannot be read-only in
	// QEMU, so a read-only one gets a writable overlay whose writes are
	// thrown away with the Dir (and travel with a checkpoint).
	overlay string
	// delta: overlay holds the guest's writes to a writable disk (a job
	// that checkpoints, Spec.DeltaDisks); they are committed into Path
	// when the guest powers off.
	delta bool
}

// attachPath is the file QEMU opens for the disk.
func (p diskPlan) attachPath() string {
	if p.overlay != "" {
		return p.overlay
	}
	return p.Path
}

// attachFormat is the format of attachPath.
func (p diskPlan) attachFormat() string {
	if p.overlay != "" {
		return "qcow2"
	}
	return p.format
}

// writable reports whether QEMU writes to attachPath, i.e. whether the
// file belongs in a checkpoint.
func (p diskPlan) writable() bool { return p.overlay != "" || (!p.readOnly && !p.cdrom) }

var deviceRE = regexp.MustCompile(`^(hd|sd|vd|xvd)([a-z])([1-9][0-9]*)?$`)

// formats QEMU may open; anything else is refused rather than probed.
var formats = map[string]bool{"raw": true, "qcow2": true, "vmdk": true, "vdi": true, "vhdx": true, "vpc": true, "qed": true}

func specErr(code, format string, args ...any) error {
	return &hypervisor.SpecError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// planDisks validates the Spec's disks and maps HTCondor device names to
// QEMU attachments: hda..hdd to the IDE channels, sda..sdf to AHCI ports,
// vdX and xvdX to virtio-blk. A partition suffix (sda1) is accepted and
// ignored: each image is a whole disk. The first disk is the boot disk.
func planDisks(disks []hypervisor.Disk) ([]diskPlan, error) {
	if len(disks) == 0 {
		return nil, specErr("KVM_NO_DISK_PARAM", "no vm_disk given")
	}
	seen := make(map[string]bool)
	plans := make([]diskPlan, 0, len(disks))
	for _, d := range disks {
		p := diskPlan{Disk: d, readOnly: !d.Writable}
		if !filepath.IsAbs(d.Path) {
			return nil, specErr("KVM_INVALID_DISK_PARAM", "disk %q: path is not absolute", d.Path)
		}
		fi, err := os.Stat(d.Path)
		if err != nil {
			return nil, specErr("KVM_INVALID_DISK_PARAM", "disk %s: %v", d.Path, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, specErr("KVM_INVALID_DISK_PARAM", "disk %s: not a regular file", d.Path)
		}
		m := deviceRE.FindStringSubmatch(d.Device)
		if m == nil {
			return nil, specErr("KVM_INVALID_DISK_PARAM", "disk %s: device %q is not hdX, sdX, vdX or xvdX", d.Path, d.Device)
		}
		p.unit = int(m[2][0] - 'a')
		switch m[1] {
		case "hd":
			p.bus = busIDE
			if p.unit > 3 {
				return nil, specErr("KVM_INVALID_DISK_PARAM", "disk %s: device %q: IDE has only hda to hdd", d.Path, d.Device)
			}
		case "sd":
			p.bus = busSATA
			if p.unit > 5 {
				return nil, specErr("KVM_INVALID_DISK_PARAM", "disk %s: device %q: SATA has only sda to sdf", d.Path, d.Device)
			}
		default: // vd, xvd
			p.bus = busVirtio
		}
		p.device = m[1] + m[2]
		if m[1] == "xvd" {
			p.device = "vd" + m[2] // the same virtio slot as vdX
		}
		if seen[p.device] {
			return nil, specErr("KVM_INVALID_DISK_PARAM", "disk %s: device %q used twice", d.Path, d.Device)
		}
		seen[p.device] = true

		format := strings.ToLower(d.Format)
		switch {
		case format == "iso" || (format == "" && strings.EqualFold(filepath.Ext(d.Path), ".iso")):
			p.cdrom, p.readOnly, p.format = true, true, "raw"
			if p.bus == busVirtio {
				// virtio-blk has no CD-ROM; a read-only disk reads the same.
				p.cdrom = false
			}
		case format == "":
			p.format, err = sniffFormat(d.Path)
			if err != nil {
				return nil, specErr("KVM_INVALID_DISK_PARAM", "disk %s: %v", d.Path, err)
			}
		case formats[format]:
			p.format = format
			if err := checkFormat(d.Path, format); err != nil {
				return nil, specErr("KVM_INVALID_DISK_PARAM", "disk %s: %v", d.Path, err)
			}
		default:
			return nil, specErr("KVM_INVALID_DISK_PARAM", "disk %s: unknown format %q", d.Path, d.Format)
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// sniffFormat tells image formats apart by their magic bytes, so that QEMU
// is always told the format and never guesses (a raw image must not be able
// to pass itself off as qcow2 with a backing file of its choosing).
func sniffFormat(path string) (string, error) {
	h, err := readHeader(path)
	if err != nil {
		return "", err
	}
	return formatOf(h), nil
}

// readHeader reads the first bytes of the file at path, as many as
// formatOf looks at (fewer in a shorter file).
func readHeader(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b [72]byte
	n, err := io.ReadFull(f, b[:])
	if err != nil && n == 0 && err != io.EOF {
		return nil, err
	}
	return b[:n], nil
}

// formatOf is the image format header h's magic bytes say, raw for none.
func formatOf(h []byte) string {
	switch {
	case len(h) >= 4 && string(h[:4]) == "QFI\xfb":
		return "qcow2"
	case len(h) >= 4 && string(h[:4]) == "KDMV":
		return "vmdk"
	case len(h) >= 8 && string(h[:8]) == "vhdxfile":
		return "vhdx"
	case len(h) >= 8 && string(h[:8]) == "conectix":
		return "vpc"
	case len(h) >= 68 && h[64] == 0x7f && h[65] == 0x10 && h[66] == 0xda && h[67] == 0xbe:
		return "vdi"
	}
	return "raw"
}

// checkFormat refuses a disk whose header says it is not in the format
// the job gave (vm_disk's fourth field): QEMU would refuse it too, but
// only after it started, when the startd cannot tell the job's fault from
// the machine's. Raw takes any file (a raw disk may hold anything), and a
// VMDK may be a text descriptor.
func checkFormat(path, declared string) error {
	if declared == "raw" {
		return nil
	}
	h, err := readHeader(path)
	if err != nil {
		return err
	}
	found := formatOf(h)
	// A VMDK text descriptor and a QED header are formats formatOf leaves
	// to the job to name.
	if found == declared || declared == "vmdk" && bytes.HasPrefix(h, []byte("# Disk DescriptorFile")) || declared == "qed" && bytes.HasPrefix(h, []byte("QED\x00")) {
		return nil
	}
	if found == "raw" {
		return fmt.Errorf("vm_disk says format %s, but the file has no %s header (a raw image?): give the image's format in vm_disk's fourth field (qemu-img info shows it), or convert it with qemu-img convert -O %s", declared, declared, declared)
	}
	return fmt.Errorf("vm_disk says format %s, but the file is a %s image: give %s in vm_disk's fourth field, or convert it with qemu-img convert -O %s", declared, found, found, declared)
}

// kernelCmdline is the command line of a guest booted from a kernel file:
// root= from the spec's root device, then its parameters.
func kernelCmdline(spec hypervisor.Spec) string {
	var parts []string
	if spec.Root != "" {
		parts = append(parts, "root="+spec.Root)
	}
	if p := strings.TrimSpace(spec.KernelParams); p != "" {
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

// optEscape makes s safe as the value of a QEMU key=value option: a comma
// ends a value, so a literal one is written twice.
func optEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// launch is everything the command line is made of.
type launch struct {
	name      string
	accel     string
	machine   string
	memoryMiB int
	vcpus     int
	vnc       bool
	qmpFD     int // the inherited listening socket for QMP
	pidfile   string
	serial    string
	disks     []diskPlan
	net       hypervisor.Network
	tap       string // a bridged VM's tap device (openNetwork)
	tapFD     int    // where QEMU inherits the tap
	incoming  bool   // resume: wait for the migration stream
	// replaced are the job's disks a resume replaced with the
	// checkpoint's copies, each kept beside it (hypervisor.KeptPath) until
	// the VM runs (hypervisor.SettleReplaced).
	replaced []string
	// kernel, when set, boots the guest from this kernel file (with
	// initrd and the kernel command line cmdline) instead of its disk.
	kernel, initrd, cmdline string
}

// args builds QEMU's command line. The VM starts paused (-S) so that the
// driver is connected before the guest runs its first instruction: no event
// can be missed, even from a guest that powers off at once. -no-shutdown
// keeps QEMU alive after the guest powers off, so a guest shutdown is a
// state query-status can still see (if the event were lost) rather than
// an exit that looks like any other; the driver then quits QEMU itself.
func (l launch) args() []string {
	a := []string{
		"-name", "guest=" + optEscape(l.name),
		"-machine", l.machine + ",accel=" + l.accel,
		"-m", strconv.Itoa(l.memoryMiB),
		"-smp", strconv.Itoa(l.vcpus),
		"-nodefaults", "-no-user-config",
		"-S", "-no-shutdown",
		"-chardev", "socket,id=qmp,fd=" + strconv.Itoa(l.qmpFD) + ",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-pidfile", l.pidfile,
		"-chardev", "file,id=serial0,path=" + optEscape(l.serial),
		"-device", "isa-serial,chardev=serial0",
	}
	if l.vnc {
		// The first free display from :0 on, on loopback only; the port
		// is read back with query-vnc.
		a = append(a, "-vnc", "127.0.0.1:0,to=99", "-device", "VGA")
	} else {
		a = append(a, "-display", "none")
	}
	if l.kernel != "" {
		a = append(a, "-kernel", l.kernel)
		if l.initrd != "" {
			a = append(a, "-initrd", l.initrd)
		}
		if l.cmdline != "" {
			a = append(a, "-append", l.cmdline)
		}
	}
	// A kernel booted directly takes boot index 0 itself: the disks
	// then get none.
	a = append(a, diskArgs(l.disks, l.kernel == "")...)
	a = append(a, netArgs(l.net, l.tapFD)...)
	if l.incoming {
		a = append(a, "-incoming", "defer")
	}
	return a
}

func diskArgs(disks []diskPlan, bootable bool) []string {
	var a []string
	ahci := false
	for i, d := range disks {
		id := "disk" + strconv.Itoa(i)
		drive := "file=" + optEscape(d.attachPath()) + ",format=" + d.attachFormat() + ",if=none,id=" + id
		if d.cdrom {
			drive += ",media=cdrom,readonly=on"
		} else if d.readOnly && d.overlay == "" {
			drive += ",readonly=on"
		}
		a = append(a, "-drive", drive)
		// The first disk boots; the others follow in the job's order.
		boot := ",bootindex=" + strconv.Itoa(i)
		if !bootable {
			boot = ""
		}
		var dev string
		switch d.bus {
		case busIDE:
			kind := "ide-hd"
			if d.cdrom {
				kind = "ide-cd"
			}
			dev = fmt.Sprintf("%s,drive=%s,bus=ide.%d,unit=%d", kind, id, d.unit/2, d.unit%2)
		case busSATA:
			if !ahci {
				a = append(a, "-device", "ahci,id=ahci")
				ahci = true
			}
			kind := "ide-hd"
			if d.cdrom {
				kind = "ide-cd"
			}
			dev = fmt.Sprintf("%s,drive=%s,bus=ahci.%d", kind, id, d.unit)
		case busVirtio:
			dev = "virtio-blk-pci,drive=" + id
		}
		a = append(a, "-device", dev+boot)
	}
	return a
}

// validateNetwork checks the parts of a Network that reach the command line.
func validateNetwork(n hypervisor.Network) error {
	if !n.Enabled {
		return nil
	}
	switch n.Type {
	case "", "nat":
	case "bridge":
		if n.Bridge == "" || strings.ContainsAny(n.Bridge, ",= \t\n/") {
			return specErr("KVM_INVALID_NETWORK_PARAM", "bridge interface %q is not a plain interface name", n.Bridge)
		}
	default:
		return specErr("KVM_INVALID_NETWORK_PARAM", "networking type %q is neither nat nor bridge", n.Type)
	}
	if n.MAC != "" {
		hw, err := net.ParseMAC(n.MAC)
		if err != nil || len(hw) != 6 {
			return specErr("KVM_INVALID_NETWORK_PARAM", "vm_macaddr %q is not a 6-byte MAC address", n.MAC)
		}
	}
	return nil
}
