package qemu

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

// Bridged networking: the driver itself gives each bridged VM a tap device
// on the configured bridge (VM_NETWORKING_BRIDGE_INTERFACE), named vmpN by
// the kernel, and hands QEMU the open device (-netdev tap,fd=N). The tap is
// not persistent: it exists while a descriptor of it is open, and once
// QEMU has inherited it the driver closes its own. So the tap lives exactly
// as long as the VM's QEMU, however QEMU ends (a guest power-off, a stop, a
// kill -9, a crash), and survives a restart of the startd, which does not
// hold it. Nothing is left to clean up and nothing needs QEMU's setuid
// bridge helper or its ACL file.
//
// Making a tap and adding it to a bridge needs CAP_NET_ADMIN, in practice
// root: Probe offers "bridge" only to a root startd, and Start explains
// the failure otherwise. NAT needs nothing: QEMU's user-mode network
// (slirp) runs inside QEMU.

// tapFD is the descriptor number QEMU finds the tap at: the second of
// exec.Cmd.ExtraFiles, after the QMP socket (3).
const tapFD = 4

// tapPrefix names the taps: the kernel replaces %d with the first free
// number.
const tapPrefix = "vmp"

// ErrNeedRoot is matched by the error of a bridged VM's Start when the
// startd lacks the privilege to make tap devices.
var ErrNeedRoot = errors.New("bridge networking needs root (CAP_NET_ADMIN) to create tap devices")

// Linux interface ioctls and flags (linux/if_tun.h, linux/sockios.h,
// linux/if.h).
const (
	tunSetIff    = 0x400454CA // TUNSETIFF
	iffTap       = 0x0002
	iffNoPI      = 0x1000
	iffVnetHdr   = 0x4000
	siocBrAddIf  = 0x89A2
	siocGIfFlags = 0x8913
	siocSIfFlags = 0x8914
	iffUp        = 0x1
	ifNameSize   = 16
)

// ifreq is struct ifreq: a name and a union, of which the driver uses the
// flags (short) and the interface index (int).
type ifreq struct {
	name [ifNameSize]byte
	data [24]byte
}

func newIfreq(name string) (*ifreq, error) {
	if len(name) >= ifNameSize || name == "" {
		return nil, fmt.Errorf("interface name %q: want 1 to %d bytes", name, ifNameSize-1)
	}
	var r ifreq
	copy(r.name[:], name)
	return &r, nil
}

func (r *ifreq) ifName() string {
	for i, c := range r.name {
		if c == 0 {
			return string(r.name[:i])
		}
	}
	return string(r.name[:])
}

func (r *ifreq) flags() uint16     { return *(*uint16)(unsafe.Pointer(&r.data[0])) }
func (r *ifreq) setFlags(f uint16) { *(*uint16)(unsafe.Pointer(&r.data[0])) = f }
func (r *ifreq) setIndex(i int32)  { *(*int32)(unsafe.Pointer(&r.data[0])) = i }

func ioctl(fd uintptr, req uintptr, r *ifreq) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(unsafe.Pointer(r))); errno != 0 {
		return errno
	}
	return nil
}

// openNetwork prepares what QEMU needs for l's network before it starts:
// for a bridged VM, a tap on the bridge, returned open for QEMU to inherit
// at tapFD (the caller closes it once QEMU runs), its name in l.tap.
// Other VMs need nothing and get a nil file.
func (d *Driver) openNetwork(l *launch) (*os.File, error) {
	if !l.net.Enabled || l.net.Type != "bridge" {
		return nil, nil
	}
	f, name, err := openTap(l.net.Bridge)
	if err != nil {
		return nil, err
	}
	l.tap, l.tapFD = name, tapFD
	d.log.Info("tap created", "vm", l.name, "tap", name, "bridge", l.net.Bridge)
	return f, nil
}

// openTap creates a tap device, adds it to bridge and brings it up. The
// device disappears when the returned file and every copy of it (QEMU's)
// are closed.
func openTap(bridge string) (*os.File, string, error) {
	br, err := net.InterfaceByName(bridge)
	if err != nil {
		return nil, "", fmt.Errorf("bridge networking: bridge %q (VM_NETWORKING_BRIDGE_INTERFACE): %w", bridge, err)
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, "", fmt.Errorf("%w: open /dev/net/tun: %w (the startd runs as uid %d)", ErrNeedRoot, err, os.Geteuid())
		}
		return nil, "", fmt.Errorf("bridge networking: open /dev/net/tun: %w", err)
	}
	fail := func(err error) (*os.File, string, error) {
		f.Close() // the tap goes with its last descriptor
		return nil, "", err
	}
	req, err := newIfreq(tapPrefix + "%d")
	if err != nil {
		return fail(err)
	}
	req.setFlags(iffTap | iffNoPI | iffVnetHdr)
	if err := ioctl(f.Fd(), tunSetIff, req); err != nil {
		if errors.Is(err, syscall.EPERM) {
			return fail(fmt.Errorf("%w: TUNSETIFF: %w (the startd runs as uid %d; run it as root, or remove bridge from VM_NETWORKING_TYPE)", ErrNeedRoot, err, os.Geteuid()))
		}
		return fail(fmt.Errorf("bridge networking: create tap: %w", err))
	}
	name := req.ifName()
	tap, err := net.InterfaceByName(name)
	if err != nil {
		return fail(fmt.Errorf("bridge networking: tap %s: %w", name, err))
	}
	sock, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("bridge networking: socket for interface ioctls: %w", err))
	}
	defer syscall.Close(sock)
	add, _ := newIfreq(br.Name)
	add.setIndex(int32(tap.Index))
	if err := ioctl(uintptr(sock), siocBrAddIf, add); err != nil {
		if errors.Is(err, syscall.EPERM) {
			return fail(fmt.Errorf("%w: add %s to bridge %s: %w", ErrNeedRoot, name, br.Name, err))
		}
		return fail(fmt.Errorf("bridge networking: add %s to %s (is it a bridge?): %w", name, br.Name, err))
	}
	up, _ := newIfreq(name)
	if err := ioctl(uintptr(sock), siocGIfFlags, up); err != nil {
		return fail(fmt.Errorf("bridge networking: flags of %s: %w", name, err))
	}
	up.setFlags(up.flags() | iffUp)
	if err := ioctl(uintptr(sock), siocSIfFlags, up); err != nil {
		return fail(fmt.Errorf("bridge networking: bring %s up: %w", name, err))
	}
	return f, name, nil
}

// bridgeProblem says why this process cannot give VMs bridged networking,
// "" when it can: it must be root (to make taps and add them to a
// bridge), the tun device must exist, and so must the configured bridge
// (when one is configured), as a bridge. A machine that advertised bridge
// without its bridge matched every bridge job, failed to start each, and
// was disabled for VM_RECHECK_INTERVAL, NAT jobs and all.
func (d *Driver) bridgeProblem() string {
	if os.Geteuid() != 0 {
		return fmt.Sprintf("bridge needs a startd running as root (CAP_NET_ADMIN, to create tap devices); it runs as uid %d", os.Geteuid())
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Sprintf("bridge needs /dev/net/tun: %v (modprobe tun)", err)
	}
	br := d.cfg.Bridge
	if br == "" {
		return ""
	}
	kind, err := linkKind(br)
	switch {
	case err != nil:
		return fmt.Sprintf("VM_NETWORKING_BRIDGE_INTERFACE = %s: %v; create the bridge (ip link add %s type bridge; ip link set %s up) or name an existing one", br, err, br, br)
	case kind != "bridge":
		what := "a plain interface"
		if kind != "" {
			what = "a " + kind + " interface"
		}
		return fmt.Sprintf("VM_NETWORKING_BRIDGE_INTERFACE = %s: %s, not a bridge; name the host bridge guests join (e.g. br0, with %s among its ports)", br, what, br)
	}
	return ""
}

// linkKind returns the kind of network interface name ("bridge", "veth",
// ...; "" for a plain device) as rtnetlink gives it (IFLA_INFO_KIND in
// IFLA_LINKINFO), which is right in any network namespace, unlike
// /sys/class/net.
func linkKind(name string) (string, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return "", fmt.Errorf("no interface %q: %w", name, err)
	}
	rib, err := syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_UNSPEC)
	if err != nil {
		return "", fmt.Errorf("list interfaces: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return "", fmt.Errorf("list interfaces: %w", err)
	}
	const iflaLinkInfo, iflaInfoKind = 18, 1
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg {
			continue
		}
		if ifi := (*syscall.IfInfomsg)(unsafe.Pointer(&m.Data[0])); int(ifi.Index) != ifc.Index {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(m)
		if err != nil {
			return "", fmt.Errorf("interface %s: %w", name, err)
		}
		for _, a := range attrs {
			if a.Attr.Type != iflaLinkInfo {
				continue
			}
			for b := a.Value; len(b) >= 4; {
				l := int(*(*uint16)(unsafe.Pointer(&b[0])))
				typ := *(*uint16)(unsafe.Pointer(&b[2]))
				if l < 4 || l > len(b) {
					break
				}
				if typ == iflaInfoKind {
					return strings.TrimRight(string(b[4:l]), "\x00"), nil
				}
				b = b[min((l+3)&^3, len(b)):]
			}
		}
		return "", nil
	}
	return "", fmt.Errorf("interface %s: not in the kernel's list of links", name)
}

// netArgs gives the guest a virtio NIC on QEMU's user-mode NAT, or on the
// tap at descriptor fd (bridge). romfile= drops the NIC's PXE option ROM:
// guests boot from disk, and the ROM only slows SeaBIOS down. Without
// networking the VM has no NIC at all.
func netArgs(n hypervisor.Network, fd int) []string {
	if !n.Enabled {
		return []string{"-nic", "none"}
	}
	var netdev string
	switch n.Type {
	case "bridge":
		netdev = fmt.Sprintf("tap,id=net0,fd=%d", fd)
	default:
		netdev = "user,id=net0"
	}
	dev := "virtio-net-pci,netdev=net0,romfile="
	if n.MAC != "" {
		dev += ",mac=" + n.MAC
	}
	return []string{"-netdev", netdev, "-device", dev}
}
