package xen

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

// Files a VM keeps in its Dir.
const (
	configFile = "xen_vm.config" // the domain configuration, HTCondor's name for it
	recordFile = "xen-vm.json"   // the domain as started: for Reattach and Checkpoint
)

// domain is a VM's Xen domain: what the configuration file says.
type domain struct {
	Name         string       `json:"name"`
	Type         string       `json:"type"` // "pv" or "hvm"
	MemoryMiB    int          `json:"memory_mib"`
	VCPUs        int          `json:"vcpus"`
	Bootloader   string       `json:"bootloader,omitempty"`
	Kernel       string       `json:"kernel,omitempty"`
	Ramdisk      string       `json:"ramdisk,omitempty"`
	Root         string       `json:"root,omitempty"`
	Extra        string       `json:"extra,omitempty"`
	Disks        []domainDisk `json:"disks"`
	Network      bool         `json:"network,omitempty"`
	NetType      string       `json:"net_type,omitempty"`
	MAC          string       `json:"mac,omitempty"`
	Bridge       string       `json:"bridge,omitempty"`
	VNC          bool         `json:"vnc,omitempty"`
	FromCheckpnt bool         `json:"resumed,omitempty"`
}

// domainDisk is one disk of a domain.
type domainDisk struct {
	Device   string `json:"device"` // Xen vdev: xvda, hda, sda2, ...
	Path     string `json:"path"`
	Format   string `json:"format"` // xl's: raw, qcow2, vhd, vmdk
	Writable bool   `json:"writable"`
	CDROM    bool   `json:"cdrom,omitempty"`
	// File is the disk's copy in a checkpoint dir (manifest only).
	File string `json:"file,omitempty"`
}

// vdevRE accepts the virtual disk names Xen gives PV and HVM guests.
var vdevRE = regexp.MustCompile(`^(xvd|hd|sd)[a-z]([1-9][0-9]*)?$`)

func specErr(code, format string, args ...any) error {
	return &hypervisor.SpecError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// safeName accepts VM names usable as a domain name and a file name.
func safeName(name string) error {
	if name == "" || len(name) > 64 || name[0] == '-' || name[0] == '.' {
		return specErr("INVALID_NAME", "vm name %q: empty, too long or starting with '-' or '.'", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return specErr("INVALID_NAME", "vm name %q: contains %q", name, r)
		}
	}
	return nil
}

// quotable reports whether s can be written inside a quoted xl string and
// a disk specification: no quotes, backslashes or line breaks.
func quotable(s string) bool { return !strings.ContainsAny(s, "\"'\\\n\r") }

// buildDomain checks a Spec as HTCondor's Xen support does and turns it
// into a domain. bootloader is XEN_BOOTLOADER, bridge the vif bridge for
// bridged networking. Problems the job caused are SpecErrors with
// HTCondor's codes.
func buildDomain(spec hypervisor.Spec, bootloader, bridge string) (domain, error) {
	d := domain{Name: spec.Name, Type: "pv", MemoryMiB: spec.MemoryMiB, VCPUs: max(spec.VCPUs, 1), VNC: spec.VNC}
	if spec.MemoryMiB <= 0 {
		return d, specErr("JOBCLASSAD_NO_VM_MEMORY_PARAM", "vm_memory %d MiB: must be positive", spec.MemoryMiB)
	}
	if len(spec.Disks) == 0 {
		return d, specErr("XEN_NO_DISK_PARAM", "no vm_disk given")
	}
	seen := map[string]bool{}
	for _, sd := range spec.Disks {
		dd, err := buildDisk(sd)
		if err != nil {
			return d, err
		}
		if seen[dd.Device] {
			return d, specErr("XEN_INVALID_DISK_PARAM", "disk %s: device %q used twice", sd.Path, sd.Device)
		}
		seen[dd.Device] = true
		d.Disks = append(d.Disks, dd)
	}
	switch k := strings.TrimSpace(spec.Kernel); strings.ToLower(k) {
	case "":
		return d, specErr("XEN_NO_KERNEL_PARAM", `no xen_kernel: it must be "included", "vmx" or a kernel file`)
	case "included":
		if bootloader == "" {
			return d, fmt.Errorf("xen_kernel = included needs XEN_BOOTLOADER, which this machine does not set")
		}
		if !quotable(bootloader) {
			return d, fmt.Errorf("XEN_BOOTLOADER %q cannot be written into a domain configuration", bootloader)
		}
		d.Bootloader = bootloader
	case "vmx":
		d.Type = "hvm"
	default:
		if !filepath.IsAbs(k) || !quotable(k) {
			return d, specErr("XEN_KERNEL_NOT_FOUND", "xen_kernel %q: not an absolute path of a transferred or shared file", k)
		}
		if err := regular(k); err != nil {
			return d, specErr("XEN_KERNEL_NOT_FOUND", "xen_kernel %s: %v", k, err)
		}
		d.Kernel = k
		if spec.Initrd != "" {
			if !filepath.IsAbs(spec.Initrd) || !quotable(spec.Initrd) {
				return d, specErr("XEN_INITRD_NOT_FOUND", "xen_initrd %q: not an absolute path of a transferred or shared file", spec.Initrd)
			}
			if err := regular(spec.Initrd); err != nil {
				return d, specErr("XEN_INITRD_NOT_FOUND", "xen_initrd %s: %v", spec.Initrd, err)
			}
			d.Ramdisk = spec.Initrd
		}
		if strings.TrimSpace(spec.Root) == "" {
			return d, specErr("XEN_NO_ROOT_DEVICE_PARAM", "xen_kernel names a kernel file but xen_root is not given")
		}
		d.Root = spec.Root
		d.Extra = spec.KernelParams
		if !quotable(d.Root) || !quotable(d.Extra) {
			return d, specErr("XEN_NO_ROOT_DEVICE_PARAM", "xen_root or xen_kernel_params contains a quote, backslash or line break")
		}
	}
	if n := spec.Network; n.Enabled {
		d.Network, d.NetType, d.MAC = true, n.Type, n.MAC
		if n.MAC != "" {
			hw, err := net.ParseMAC(n.MAC)
			if err != nil || len(hw) != 6 {
				return d, specErr("XEN_INVALID_NETWORK_PARAM", "vm_macaddr %q is not a 6-byte MAC address", n.MAC)
			}
			d.MAC = hw.String()
		}
		switch n.Type {
		case "", "nat":
			d.NetType = "nat"
		case "bridge":
			d.Bridge = n.Bridge
			if d.Bridge == "" {
				d.Bridge = bridge
			}
			if d.Bridge == "" || strings.ContainsAny(d.Bridge, ",= \t\n'\"") {
				return d, specErr("XEN_INVALID_NETWORK_PARAM", "bridge interface %q is not a plain interface name", d.Bridge)
			}
		default:
			return d, specErr("XEN_INVALID_NETWORK_PARAM", "networking type %q is neither nat nor bridge", n.Type)
		}
	}
	return d, nil
}

func buildDisk(sd hypervisor.Disk) (domainDisk, error) {
	dd := domainDisk{Device: sd.Device, Path: sd.Path, Writable: sd.Writable}
	if !filepath.IsAbs(sd.Path) || !quotable(sd.Path) {
		return dd, specErr("XEN_INVALID_DISK_PARAM", "disk %q: not an absolute path (or contains a quote)", sd.Path)
	}
	if err := regular(sd.Path); err != nil {
		return dd, specErr("XEN_INVALID_DISK_PARAM", "disk %s: %v", sd.Path, err)
	}
	if !vdevRE.MatchString(sd.Device) {
		return dd, specErr("XEN_INVALID_DISK_PARAM", "disk %s: device %q is not a Xen virtual disk (xvdX, hdX, sdX)", sd.Path, sd.Device)
	}
	switch f := strings.ToLower(sd.Format); {
	case f == "iso" || f == "" && strings.EqualFold(filepath.Ext(sd.Path), ".iso"):
		dd.Format, dd.CDROM, dd.Writable = "raw", true, false
	case f == "":
		sniffed, err := sniffFormat(sd.Path)
		if err != nil {
			return dd, specErr("XEN_INVALID_DISK_PARAM", "disk %s: %v", sd.Path, err)
		}
		dd.Format = sniffed
	case f == "raw" || f == "qcow2" || f == "vmdk" || f == "vhd":
		dd.Format = f
	case f == "vpc":
		dd.Format = "vhd"
	default:
		return dd, specErr("XEN_INVALID_DISK_PARAM", "disk %s: format %q is not one xl knows (raw, qcow2, vhd, vmdk)", sd.Path, sd.Format)
	}
	return dd, nil
}

func regular(path string) error {
	fi, err := os.Stat(path)
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	return nil
}

// sniffFormat tells qcow2 and vmdk images from raw ones by their magic, so
// that xl is always told the format.
func sniffFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var b [4]byte
	n, err := io.ReadFull(f, b[:])
	if err != nil && n == 0 && err != io.EOF {
		return "", err
	}
	switch string(b[:n]) {
	case "QFI\xfb":
		return "qcow2", nil
	case "KDMV":
		return "vmdk", nil
	}
	return "raw", nil
}

// config renders the domain as an xl domain configuration file.
func (d domain) config() string {
	var b strings.Builder
	// Every value was checked to be quotable.
	q := func(s string) string { return `"` + s + `"` }
	fmt.Fprintf(&b, "# Domain configuration written by vmpool's xen driver.\n")
	fmt.Fprintf(&b, "name = %s\n", q(d.Name))
	fmt.Fprintf(&b, "type = %s\n", q(d.Type))
	fmt.Fprintf(&b, "memory = %d\n", d.MemoryMiB)
	fmt.Fprintf(&b, "vcpus = %d\n", d.VCPUs)
	if d.Bootloader != "" {
		fmt.Fprintf(&b, "bootloader = %s\n", q(d.Bootloader))
	}
	if d.Kernel != "" {
		fmt.Fprintf(&b, "kernel = %s\n", q(d.Kernel))
	}
	if d.Ramdisk != "" {
		fmt.Fprintf(&b, "ramdisk = %s\n", q(d.Ramdisk))
	}
	if d.Root != "" {
		fmt.Fprintf(&b, "root = %s\n", q(d.Root))
	}
	if d.Extra != "" {
		fmt.Fprintf(&b, "extra = %s\n", q(d.Extra))
	}
	if d.Type == "hvm" {
		fmt.Fprintf(&b, "boot = \"c\"\n")
	}
	var disks []string
	for _, dd := range d.Disks {
		access := "rw"
		if !dd.Writable {
			access = "ro"
		}
		spec := fmt.Sprintf("format=%s, vdev=%s, access=%s, ", dd.Format, dd.Device, access)
		if dd.CDROM {
			spec += "devtype=cdrom, "
		}
		disks = append(disks, "'"+spec+"target="+dd.Path+"'")
	}
	fmt.Fprintf(&b, "disk = [ %s ]\n", strings.Join(disks, ", "))
	if d.Network {
		vif := "mac=" + d.MAC
		if d.MAC == "" {
			vif = ""
		}
		extra := "script=vif-nat"
		if d.NetType == "bridge" {
			extra = "bridge=" + d.Bridge
		}
		fmt.Fprintf(&b, "vif = [ '%s' ]\n", strings.TrimPrefix(vif+","+extra, ","))
	}
	if d.VNC {
		fmt.Fprintf(&b, "vnc = 1\nvnclisten = \"127.0.0.1\"\n")
	}
	// A domain that powers off disappears from `xl list`: that completes
	// the job. A crashed one stays listed ('c'), so the driver can tell
	// the two apart.
	fmt.Fprintf(&b, "on_poweroff = \"destroy\"\non_reboot = \"restart\"\non_crash = \"preserve\"\n")
	return b.String()
}

// writeFile writes data to path atomically.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(b, '\n'))
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", filepath.Base(path), err)
	}
	return nil
}
