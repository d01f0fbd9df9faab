package linux

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

//go:embed guest/rcS guest/udhcpc.sh guest/inittab
var guestFiles embed.FS

// DataMagic starts the first sector of the guest's data area; the report
// follows in the next sectors.
const DataMagic = "VMPOOL-LINUX-DATA1"

// DefaultCmdline is the kernel command line of the boot disk: the console
// on COM1 (QEMU's serial.log) with only warnings shown, which keeps a
// boot under TCG quick.
const DefaultCmdline = "console=ttyS0 quiet"

// XenCmdline is the kernel command line for the kernel+initrd form under
// a Xen PV domain (xen_kernel_params), whose console is hvc0.
const XenCmdline = "console=hvc0 quiet"

// Guest describes a Linux guest to build. The zero value finds Debian's
// kernel and busybox on this machine, asks DHCP for an address if it has a
// NIC, and talks to no one.
type Guest struct {
	Kernel  string // a bzImage; "" is FindKernel()
	Busybox string // a static busybox; "" is FindBusybox()
	Modules string // the kernel's modules; "" is /lib/modules/<its release>
	// Address, when set ("10.99.0.2/24"), is a static IPv4 address for
	// the guest's first NIC, as on a bridge; otherwise the guest asks
	// DHCP, which QEMU's user-mode NAT answers (10.0.2.15).
	Address string
	Gateway string // a default route with a static Address; optional
	// Host, when set ("10.0.2.2:7000"; from behind QEMU's NAT the host
	// is 10.0.2.2), is a TCP server the guest connects to once its
	// network is up. It sends one line, "hello from MAC at ADDRESS", and
	// records the first line of the reply.
	Host string
	// Resolve, when set ("job-host.example"), is a host name the guest
	// looks up (busybox nslookup, through the DNS servers its DHCP lease
	// named) once its network is up; the first IPv4 address of the answer
	// is in the report (Report.Resolved).
	Resolve string
	// Cmdline replaces DefaultCmdline on the boot disk.
	Cmdline string
	// Halt ends the guest with /sbin/halt instead of /sbin/poweroff: the
	// kernel stops every CPU with interrupts off and never powers off,
	// which HTCondor's manual warns hangs a vm universe job.
	Halt bool
}

// build is a Guest resolved to its parts.
type build struct {
	kernel    *Kernel
	initramfs []byte // gzip-compressed newc cpio
	cmdline   string
}

func (g Guest) build() (*build, error) {
	var err error
	kpath := g.Kernel
	if kpath == "" {
		if kpath, err = FindKernel(); err != nil {
			return nil, err
		}
	}
	k, err := ReadKernel(kpath)
	if err != nil {
		return nil, err
	}
	bb := g.Busybox
	if bb == "" {
		if bb, err = FindBusybox(); err != nil {
			return nil, err
		}
	} else if err := checkStatic(bb); err != nil {
		return nil, fmt.Errorf("busybox: %w", err)
	}
	mdir := g.Modules
	if mdir == "" {
		if k.Release == "" {
			return nil, fmt.Errorf("kernel %s names no release; set Guest.Modules", kpath)
		}
		mdir = filepath.Join("/lib/modules", k.Release)
	}
	config, err := g.config()
	if err != nil {
		return nil, err
	}
	initramfs, err := makeInitramfs(bb, mdir, config)
	if err != nil {
		return nil, err
	}
	cmdline := g.Cmdline
	if cmdline == "" {
		cmdline = DefaultCmdline
	}
	if strings.ContainsRune(cmdline, 0) || len(cmdline) > int(k.CmdlineSize) && k.CmdlineSize > 0 {
		return nil, fmt.Errorf("kernel command line of %d bytes: %s takes at most %d", len(cmdline), kpath, k.CmdlineSize)
	}
	return &build{kernel: k, initramfs: initramfs, cmdline: cmdline}, nil
}

// config renders /etc/vmpool/config, the shell variables rcS reads. Every
// value is checked here, so none can carry shell syntax.
func (g Guest) config() ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "VMPOOL_MAGIC=%s\n", DataMagic)
	if g.Address != "" {
		p, err := netip.ParsePrefix(g.Address)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("guest address %q: want an IPv4 address with its prefix length, e.g. 10.99.0.2/24", g.Address)
		}
		fmt.Fprintf(&b, "VMPOOL_ADDRESS=%s\n", p)
	}
	if g.Gateway != "" {
		a, err := netip.ParseAddr(g.Gateway)
		if err != nil || !a.Is4() || g.Address == "" {
			return nil, fmt.Errorf("guest gateway %q: want an IPv4 address, with a static Address", g.Gateway)
		}
		fmt.Fprintf(&b, "VMPOOL_GATEWAY=%s\n", a)
	}
	if g.Host != "" {
		h, p, err := net.SplitHostPort(g.Host)
		a, aerr := netip.ParseAddr(h)
		port, perr := strconv.ParseUint(p, 10, 16)
		if err != nil || aerr != nil || !a.Is4() || perr != nil || port == 0 {
			return nil, fmt.Errorf("guest host %q: want IPv4:port, e.g. 10.0.2.2:7000", g.Host)
		}
		fmt.Fprintf(&b, "VMPOOL_HOST=%s\nVMPOOL_PORT=%d\n", a, port)
	}
	if g.Resolve != "" {
		if len(g.Resolve) > 253 || strings.Trim(g.Resolve, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != "" ||
			strings.HasPrefix(g.Resolve, "-") || strings.HasPrefix(g.Resolve, ".") {
			return nil, fmt.Errorf("guest resolve %q: want a host name (letters, digits, '-' and '.'), e.g. job-host.example", g.Resolve)
		}
		fmt.Fprintf(&b, "VMPOOL_RESOLVE=%s\n", g.Resolve)
	}
	if g.Halt {
		b.WriteString("VMPOOL_HALT=1\n")
	}
	return []byte(b.String()), nil
}

// makeInitramfs packs busybox, the guest's scripts, its configuration and
// the kernel modules it needs into a gzip-compressed cpio archive. /init
// is busybox as init, which runs /etc/init.d/rcS.
func makeInitramfs(busybox, modDir string, config []byte) ([]byte, error) {
	ms, err := readModules(modDir)
	if err != nil {
		return nil, err
	}
	lines, mods, err := ms.plan(moduleGroups)
	if err != nil {
		return nil, err
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	c := newCPIO(zw)
	for _, d := range []string{"dev", "proc", "sys", "tmp", "bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d"} {
		c.dir(d)
	}
	c.charDev("dev/console", 0o600, 5, 1)
	c.charDev("dev/null", 0o666, 1, 3)
	c.file("bin/busybox", 0o755, bb)
	c.symlink("init", "/bin/busybox")
	c.symlink("bin/sh", "busybox")
	c.symlink("sbin/init", "../bin/busybox")
	c.symlink("sbin/poweroff", "../bin/busybox")
	for _, f := range [][2]string{{"guest/inittab", "etc/inittab"}, {"guest/rcS", "etc/init.d/rcS"}, {"guest/udhcpc.sh", "etc/vmpool/udhcpc.sh"}} {
		name, dst := f[0], f[1]
		b, err := guestFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		c.file(dst, 0o755, b)
	}
	c.file("etc/vmpool/config", 0o644, config)
	c.file("etc/vmpool/modules", 0o644, []byte(strings.Join(lines, "\n")+"\n"))
	for _, m := range mods {
		b, err := os.ReadFile(filepath.Join(modDir, m))
		if err != nil {
			return nil, fmt.Errorf("kernel module: %w", err)
		}
		c.file(filepath.Join("lib/modules", m), 0o644, b)
	}
	if err := c.close(); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	return out.Bytes(), nil
}
