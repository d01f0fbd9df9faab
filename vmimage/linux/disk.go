package linux

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vmpool/vmpool/vmimage"
)

const (
	sector          = vmimage.SectorSize
	dataAlign       = 2048 // the data partition starts on a MiB boundary
	dataSectors     = 2048 // 1 MiB: the magic sector and the report
	partTypeData    = 0xDA // "non-FS data"
	partTableOffset = 446
)

// Layout tells where the parts of a boot disk lie, in 512-byte sectors
// from the start of the disk.
type Layout struct {
	Loader, Setup, Cmdline, Kernel, Initrd uint32 // first LBA of each part
	Data, DataSectors                      uint32 // the data partition
	Size                                   int64  // bytes
	// MinMemoryMiB is the least vm_memory with which the loader finds
	// room for the initramfs above the kernel.
	MinMemoryMiB int
}

func sectorsFor(n int) uint32 { return uint32((n + sector - 1) / sector) }

// WriteDisk writes the guest as a bootable raw disk image at path: a boot
// sector and vmpool's Linux loader (package vmimage), the kernel and its
// command line, the initramfs, and a 1 MiB data partition (MBR type 0xDA)
// where the guest writes its report. The kvm driver boots it like any
// disk: vm_disk = linux.img:vda:w:raw. The file is written under a
// temporary name and renamed into place.
func (g Guest) WriteDisk(path string) (Layout, error) {
	b, err := g.build()
	if err != nil {
		return Layout{}, fmt.Errorf("build linux guest disk %s: %w", path, err)
	}
	l, err := b.writeDisk(path)
	if err != nil {
		return Layout{}, fmt.Errorf("write linux guest disk %s: %w", path, err)
	}
	return l, nil
}

func (b *build) writeDisk(path string) (Layout, error) {
	k := b.kernel
	cmdline := append([]byte(b.cmdline), 0)
	if len(cmdline) > vmimage.LinuxCmdlineMax+1 {
		return Layout{}, fmt.Errorf("kernel command line of %d bytes: the loader takes at most %d", len(b.cmdline), vmimage.LinuxCmdlineMax)
	}
	pm := k.protectedMode()
	lb := vmimage.LinuxBoot{
		SetupSectors:   uint16(k.SetupSectors),
		CmdlineSectors: uint16(sectorsFor(len(cmdline))),
		KernelSectors:  sectorsFor(len(pm)),
		InitrdSectors:  sectorsFor(len(b.initramfs)),
		InitrdSize:     uint32(len(b.initramfs)),
		InitrdMin:      k.decompressEnd(),
		InitrdMax:      k.InitrdAddrMax,
	}
	// The loader's length does not depend on the LBAs (they are
	// immediates), so assemble once to learn it, then for real.
	_, probe, err := vmimage.LinuxLoader(withLBAs(lb, 1, 1))
	if err != nil {
		return Layout{}, err
	}
	l := Layout{Loader: 1}
	l.Setup = l.Loader + sectorsFor(len(probe))
	l.Cmdline = l.Setup + uint32(lb.SetupSectors)
	l.Kernel = l.Cmdline + uint32(lb.CmdlineSectors)
	l.Initrd = l.Kernel + lb.KernelSectors
	l.Data = (l.Initrd + lb.InitrdSectors + dataAlign - 1) / dataAlign * dataAlign
	l.DataSectors = dataSectors
	l.Size = int64(l.Data+l.DataSectors) * sector
	l.MinMemoryMiB = int((lb.MinMemory() + (1 << 20) - 1) >> 20)
	lb = withLBAs(lb, l.Setup, l.Initrd)
	lb.CmdlineLBA, lb.KernelLBA = l.Cmdline, l.Kernel
	boot, loader, err := vmimage.LinuxLoader(lb)
	if err != nil {
		return Layout{}, err
	}
	if sectorsFor(len(loader)) != l.Setup-l.Loader {
		return Layout{}, fmt.Errorf("loader changed size between assemblies")
	}
	putPartition(boot, 0, partTypeData, l.Data, l.DataSectors)
	parts := []struct {
		lba  uint32
		data []byte
	}{
		{0, boot},
		{l.Loader, loader},
		{l.Setup, k.setup(vmimage.LinuxCmdlineAddr, vmimage.LinuxHeapEnd, uint32(len(b.initramfs)))},
		{l.Cmdline, cmdline},
		{l.Kernel, pm},
		{l.Initrd, b.initramfs},
		{l.Data, dataHeader()},
	}
	return l, writeImage(path, l.Size, func(f *os.File) error {
		for _, p := range parts {
			if _, err := f.WriteAt(p.data, int64(p.lba)*sector); err != nil {
				return err
			}
		}
		return nil
	})
}

func withLBAs(lb vmimage.LinuxBoot, setup, initrd uint32) vmimage.LinuxBoot {
	lb.SetupLBA, lb.InitrdLBA = setup, initrd
	lb.CmdlineLBA, lb.KernelLBA = setup, setup
	return lb
}

// putPartition fills MBR partition entry i: LBA addressing only (the CHS
// fields say "beyond CHS").
func putPartition(mbr []byte, i int, typ byte, start, count uint32) {
	e := mbr[partTableOffset+16*i : partTableOffset+16*(i+1)]
	e[0] = 0x00
	copy(e[1:4], []byte{0xFE, 0xFF, 0xFF})
	e[4] = typ
	copy(e[5:8], []byte{0xFE, 0xFF, 0xFF})
	binary.LittleEndian.PutUint32(e[8:], start)
	binary.LittleEndian.PutUint32(e[12:], count)
}

// dataHeader is the first sector of a data area.
func dataHeader() []byte {
	s := make([]byte, sector)
	copy(s, DataMagic+"\nvmpool Linux guest data area: the guest's report follows in the next sectors\n")
	return s
}

// Files are the kernel+initrd form of the guest, for the xen driver's
// xen_kernel = path, xen_initrd = path and xen_root (or QEMU's -kernel,
// -initrd and -append).
type Files struct {
	Kernel string // a copy of the bzImage
	Initrd string // the initramfs
	Disk   string // a raw 1 MiB data disk: the report goes here
	// Cmdline is the command line the guest was built with
	// (Guest.Cmdline or DefaultCmdline); under Xen PV use XenCmdline.
	Cmdline string
}

// WriteFiles writes the guest's kernel ("vmlinuz"), initramfs
// ("initrd.img") and data disk ("data.img") into dir. The guest's root
// file system is the initramfs; the data disk may be attached under any
// device name (xen_root names it for Xen's sake; the guest finds the disk
// by the magic in its first sector).
func (g Guest) WriteFiles(dir string) (Files, error) {
	b, err := g.build()
	if err != nil {
		return Files{}, fmt.Errorf("build linux guest files in %s: %w", dir, err)
	}
	f := Files{
		Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
		Disk: filepath.Join(dir, "data.img"), Cmdline: b.cmdline,
	}
	for _, w := range []struct {
		path string
		data []byte
		size int64
	}{
		{f.Kernel, b.kernel.Image(), 0},
		{f.Initrd, b.initramfs, 0},
		{f.Disk, dataHeader(), dataSectors * sector},
	} {
		size := max(w.size, int64(len(w.data)))
		err := writeImage(w.path, size, func(fl *os.File) error {
			_, err := fl.WriteAt(w.data, 0)
			return err
		})
		if err != nil {
			return Files{}, fmt.Errorf("write linux guest files in %s: %w", dir, err)
		}
	}
	return f, nil
}

// writeImage makes a file of size bytes at path with fill's writes, under
// a temporary name renamed into place once synced.
func writeImage(path string, size int64, fill func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	err = f.Truncate(size)
	if err == nil {
		err = fill(f)
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
