package linux

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrMissing is matched (errors.Is) by the errors of FindKernel and
// FindBusybox when Debian's packages are not installed.
var ErrMissing = errors.New("linux guest: missing package")

// Packages are the Debian packages the guest is built from; scripts/setup.sh
// installs them with apt-get when run as root.
const Packages = "linux-image-cloud-amd64 busybox-static"

// Offsets in a bzImage's real-mode header (Documentation/x86/boot.rst).
const (
	hdrSetupSects    = 0x1F1
	hdrBootFlag      = 0x1FE
	hdrMagic         = 0x202 // "HdrS"
	hdrVersion       = 0x206
	hdrKernelVersion = 0x20E
	hdrTypeOfLoader  = 0x210
	hdrLoadflags     = 0x211
	hdrRamdiskSize   = 0x21C
	hdrHeapEndPtr    = 0x224
	hdrCmdLinePtr    = 0x228
	hdrInitrdAddrMax = 0x22C
	hdrCmdlineSize   = 0x238
	hdrInitSize      = 0x260

	loadedHigh   = 0x01 // loadflags: the protected-mode kernel is loaded at 1 MiB
	canUseHeap   = 0x80 // loadflags: heap_end_ptr is valid
	minProtocol  = 0x20A
	loaderOther  = 0xFF // type_of_loader: "undefined" boot loader
	loadPhysAddr = 0x1000000
)

// Kernel is a bzImage read from disk, with the facts the disk builder and
// the loader need from its header.
type Kernel struct {
	Path          string
	Release       string // uname -r, e.g. "6.1.0-48-cloud-amd64"
	Protocol      uint16 // boot protocol version, e.g. 0x20f
	SetupSectors  int    // the real-mode part, boot sector included
	InitSize      uint32 // memory the kernel needs while it decompresses itself
	InitrdAddrMax uint32
	CmdlineSize   uint32 // longest command line it accepts
	image         []byte
}

// ReadKernel reads and checks the bzImage at path: an x86 Linux kernel
// with boot protocol 2.10 or later that loads high.
func ReadKernel(path string) (*Kernel, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kernel: %w", err)
	}
	k, err := parseKernel(b)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", path, err)
	}
	k.Path = path
	return k, nil
}

func parseKernel(b []byte) (*Kernel, error) {
	if len(b) < 0x400 || binary.LittleEndian.Uint16(b[hdrBootFlag:]) != 0xAA55 || string(b[hdrMagic:hdrMagic+4]) != "HdrS" {
		return nil, errors.New("not a bzImage (no HdrS boot header)")
	}
	k := &Kernel{image: b, Protocol: binary.LittleEndian.Uint16(b[hdrVersion:])}
	if k.Protocol < minProtocol {
		return nil, fmt.Errorf("boot protocol %#x is older than %#x", k.Protocol, minProtocol)
	}
	if b[hdrLoadflags]&loadedHigh == 0 {
		return nil, errors.New("a zImage that loads low; only bzImages are supported")
	}
	setup := int(b[hdrSetupSects])
	if setup == 0 {
		setup = 4
	}
	k.SetupSectors = setup + 1
	if len(b) <= k.SetupSectors*512 {
		return nil, errors.New("truncated: no protected-mode kernel after the setup sectors")
	}
	k.InitSize = binary.LittleEndian.Uint32(b[hdrInitSize:])
	k.InitrdAddrMax = binary.LittleEndian.Uint32(b[hdrInitrdAddrMax:])
	k.CmdlineSize = binary.LittleEndian.Uint32(b[hdrCmdlineSize:])
	if off := int(binary.LittleEndian.Uint16(b[hdrKernelVersion:])) + 0x200; off > 0x200 && off < len(b) {
		v := b[off:min(off+256, len(b))]
		if i := bytes.IndexAny(v, " \x00"); i > 0 {
			k.Release = string(v[:i])
		}
	}
	return k, nil
}

// setup returns the real-mode part with the header fields a boot loader
// fills in: the loader type, the heap, where the command line is, and
// the initramfs size. ramdisk_image is left to the loader, which knows
// the machine's memory.
func (k *Kernel) setup(cmdlineAddr, heapEnd uint32, initrdSize uint32) []byte {
	s := append([]byte(nil), k.image[:k.SetupSectors*512]...)
	s[hdrTypeOfLoader] = loaderOther
	s[hdrLoadflags] |= canUseHeap
	binary.LittleEndian.PutUint16(s[hdrHeapEndPtr:], uint16(heapEnd))
	binary.LittleEndian.PutUint32(s[hdrCmdLinePtr:], cmdlineAddr)
	binary.LittleEndian.PutUint32(s[hdrRamdiskSize:], initrdSize)
	return s
}

// protectedMode is the kernel proper, loaded at 1 MiB.
func (k *Kernel) protectedMode() []byte { return k.image[k.SetupSectors*512:] }

// Image is the whole bzImage, as a kernel= (xen_kernel) file.
func (k *Kernel) Image() []byte { return k.image }

// decompressEnd is the highest address the kernel writes while it
// decompresses: its image at 1 MiB, and init_size bytes from where it
// extracts itself (LOAD_PHYSICAL_ADDR, 16 MiB on Debian's kernels) when
// KASLR is off or finds no other place.
func (k *Kernel) decompressEnd() uint32 {
	end := uint64(0x100000) + uint64(len(k.protectedMode()))
	end = max(end, loadPhysAddr+uint64(k.InitSize))
	return uint32((end + 0xFFFFF) &^ 0xFFFFF)
}

// FindKernel returns the newest Debian kernel in /boot whose modules are
// installed, preferring the cloud flavour (made for VMs: small, quick to
// boot). Without one it returns an error matching ErrMissing that says
// which package to install.
func FindKernel() (string, error) {
	return findKernel("/boot", "/lib/modules")
}

func findKernel(boot, modules string) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(boot, "vmlinuz-*"))
	type cand struct {
		path  string
		cloud bool
	}
	var cs []cand
	for _, m := range matches {
		rel := strings.TrimPrefix(filepath.Base(m), "vmlinuz-")
		if _, err := os.Stat(filepath.Join(modules, rel, "modules.dep")); err != nil {
			continue
		}
		cs = append(cs, cand{m, strings.Contains(rel, "-cloud-")})
	}
	if len(cs) == 0 {
		return "", fmt.Errorf("%w: no kernel in %s with modules in %s; install Debian's kernel: apt-get install %s (scripts/setup.sh does it as root)",
			ErrMissing, boot, modules, Packages)
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].cloud != cs[j].cloud {
			return cs[i].cloud
		}
		return cs[i].path > cs[j].path
	})
	return cs[0].path, nil
}

// FindBusybox returns a statically linked busybox: Debian's busybox-static
// installs it as /bin/busybox. A dynamically linked one (Debian's
// "busybox" package) cannot run in the guest, which has no libc.
func FindBusybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := checkStatic(p); err != nil {
			return "", fmt.Errorf("%w: %v; install busybox-static (apt-get install busybox-static)", ErrMissing, err)
		}
		return p, nil
	}
	return "", fmt.Errorf("%w: no busybox; install it: apt-get install busybox-static (scripts/setup.sh does it as root)", ErrMissing)
}

// checkStatic fails unless path is an x86-64 ELF executable without an
// interpreter.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("%s is for %v, not x86-64", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}
