package vmimage

import (
	"encoding/binary"
	"fmt"
)

// This file is a minimal Linux boot loader, hand-assembled like the
// guests: a boot sector that loads the loader from the sectors after it,
// and the loader, which reads a bzImage's real-mode setup, its
// protected-mode kernel, the kernel command line and an initramfs from the
// disk through BIOS int 13h, copies what belongs above 1 MiB there with
// int 15h AH=87h, fills in the boot protocol fields that depend on the
// machine (where the initramfs went), and jumps to the setup code. It
// follows the 16-bit boot protocol of Documentation/x86/boot.rst
// (protocol 2.10 or later), as LILO and SYSLINUX do, so any Linux kernel
// image a distribution ships boots from a disk this package's callers lay
// out (package vmimage/linux).
//
// Real-mode memory while loading:
//
//	0x0500         boot drive (from DL)
//	0x0600-0x06FF  the loader's variables: disk address packet, GDT for int 15h AH=87h
//	0x7C00         the boot sector
//	0x8000         the loader (LinuxBoot.loaderSectors sectors, at most 32)
//	0x10000        the kernel's real-mode part (boot sector + setup); heap up to
//	               0x1DE00, stack top 0x1E000
//	0x1E000        the kernel command line
//	0x20000        a 32 KiB bounce buffer for int 13h reads

// Linux boot protocol addresses and header offsets used by the loader
// (Documentation/x86/boot.rst).
const (
	linuxSetupSeg     = 0x1000             // real-mode kernel segment (X = 0x10000)
	linuxSetupAddr    = linuxSetupSeg << 4 // where the boot sector and setup go
	LinuxHeapEnd      = 0xDE00             // heap_end_ptr: relative to X
	linuxStackTop     = 0xE000             // SP at entry, relative to X
	LinuxCmdlineAddr  = linuxSetupAddr + 0xE000
	LinuxCmdlineMax   = 2047     // bytes, without the NUL; 4 sectors at most
	LinuxKernelAddr   = 0x100000 // protected-mode kernel (code32_start)
	linuxBounceSeg    = 0x2000   // int 13h reads land here
	linuxChunkSectors = 64       // 32 KiB per read and per copy
	linuxInitrdMargin = 1 << 20  // kept free below the top of memory (BIOS tables)
	linuxDriveVar     = 0x0500
	linuxDAP          = 0x0600 // int 13h AH=42h disk address packet (16 bytes)
	linuxGDT          = 0x0620 // int 15h AH=87h descriptor table (48 bytes)
	linuxSrcDesc      = linuxGDT + 0x10
	linuxDstDesc      = linuxGDT + 0x18
	linuxVarLBA       = 0x0660 // next LBA to read (dword)
	linuxVarLeft      = 0x0664 // sectors left (dword)
	linuxVarDest      = 0x0668 // linear destination (dword)
	linuxVarChunk     = 0x066C // sectors in this chunk (word)
	linuxVarInitrd    = 0x0670 // where the initramfs goes (dword)
	linuxLoaderAddr   = 0x8000
	hdrRamdiskImage   = 0x218 // offsets in the real-mode kernel header
)

// LinuxBoot says where a kernel and its initramfs lie on the disk and how
// much memory they need. All LBAs count 512-byte sectors from the start of
// the disk; the loader itself occupies LBA 1 to 1+LoaderSectors()-1.
type LinuxBoot struct {
	SetupLBA       uint32 // the bzImage's first (setup_sects+1) sectors, header already filled in
	SetupSectors   uint16
	CmdlineLBA     uint32 // the NUL-terminated command line
	CmdlineSectors uint16
	KernelLBA      uint32 // the protected-mode kernel
	KernelSectors  uint32
	InitrdLBA      uint32 // the initramfs; InitrdSize bytes
	InitrdSectors  uint32
	InitrdSize     uint32
	// InitrdMin is the lowest address the initramfs may start at: above
	// everything the kernel overwrites while it decompresses itself.
	InitrdMin uint32
	// InitrdMax is the header's initrd_addr_max: the initramfs must end
	// at or below it.
	InitrdMax uint32
}

// Messages the loader prints on COM1.
const (
	SerialLinuxLoading = "vmpool-boot: loading linux"
	SerialLinuxStart   = "vmpool-boot: starting linux"
	SerialLinuxDiskErr = "vmpool-boot: disk read error"
	SerialLinuxMemErr  = "vmpool-boot: not enough memory for the kernel and its initramfs"
)

// LinuxLoader assembles the boot sector and the loader for b. The boot
// sector has an empty partition table (bytes 446-509) for the caller to
// fill and the 0x55AA signature; the loader is a whole number of sectors
// and goes at LBA 1.
func LinuxLoader(b LinuxBoot) (bootSector, loader []byte, err error) {
	if err := b.validate(); err != nil {
		return nil, nil, fmt.Errorf("assemble linux loader: %w", err)
	}
	loader, err = linuxLoader(b)
	if err != nil {
		return nil, nil, fmt.Errorf("assemble linux loader: %w", err)
	}
	n := (len(loader) + SectorSize - 1) / SectorSize
	if n > 32 {
		return nil, nil, fmt.Errorf("assemble linux loader: %d sectors is too long", n)
	}
	loader = append(loader, make([]byte, n*SectorSize-len(loader))...)
	bootSector, err = linuxStub(uint16(n))
	if err != nil {
		return nil, nil, fmt.Errorf("assemble linux boot sector: %w", err)
	}
	return bootSector, loader, nil
}

func (b LinuxBoot) validate() error {
	switch {
	case b.SetupSectors == 0 || b.KernelSectors == 0:
		return fmt.Errorf("no kernel (setup %d sectors, kernel %d sectors)", b.SetupSectors, b.KernelSectors)
	case int(b.SetupSectors)*SectorSize > LinuxCmdlineAddr-linuxSetupAddr-0x2000:
		return fmt.Errorf("the kernel's setup (%d sectors) does not leave room for its heap and stack below the command line", b.SetupSectors)
	case b.CmdlineSectors == 0 || int(b.CmdlineSectors)*SectorSize > LinuxCmdlineMax+1:
		return fmt.Errorf("command line of %d sectors: want 1 to %d", b.CmdlineSectors, (LinuxCmdlineMax+1)/SectorSize)
	case uint64(b.InitrdSectors)*SectorSize < uint64(b.InitrdSize) || b.InitrdSize == 0:
		return fmt.Errorf("initramfs of %d bytes in %d sectors", b.InitrdSize, b.InitrdSectors)
	case b.InitrdMax == 0 || uint64(b.InitrdMin)+uint64(b.InitrdSize)+linuxInitrdMargin > uint64(b.InitrdMax)+1:
		return fmt.Errorf("initramfs of %d bytes does not fit between 0x%x and initrd_addr_max 0x%x", b.InitrdSize, b.InitrdMin, b.InitrdMax)
	}
	return nil
}

// MinMemory is the least guest RAM, in bytes, with which the loader finds
// room for the initramfs above InitrdMin.
func (b LinuxBoot) MinMemory() uint64 {
	return uint64(b.InitrdMin) + uint64(b.InitrdSize) + linuxInitrdMargin + 0xFFF
}

// linuxStub is the boot sector: it loads n loader sectors from LBA 1 to
// linuxLoaderAddr with int 13h AH=42h and jumps there, the boot drive
// saved at linuxDriveVar.
func linuxStub(n uint16) ([]byte, error) {
	a := newAsm(bootOrigin)
	a.jmpFar(0, bootOrigin+5) // CS = 0 whatever the BIOS used (5 = this instruction)
	a.cli()
	a.xor16(ax, ax)
	a.movSreg(ds, ax)
	a.movSreg(es, ax)
	a.movSreg(ss, ax)
	a.movImm16(sp, bootOrigin)
	a.sti()
	a.cld()
	a.store8(linuxDriveVar, dl)
	a.movImm16Label(si, "dap")
	a.movImm8(ah, 0x42)
	a.intN(0x13) // DL is still the boot drive
	a.jcc(condB, "fail")
	a.jmpFar(0, linuxLoaderAddr)
	a.label("fail")
	a.movImm16Label(si, "msg")
	a.movImm16(dx, com1)
	a.label("next")
	a.lodsb()
	a.test8(al, al)
	a.jcc(condE, "halt")
	a.outDXAL()
	a.jmp("next")
	a.label("halt")
	a.cli()
	a.hlt()
	a.jmp("halt")
	a.label("dap")
	dap := make([]byte, 16)
	dap[0] = 16
	binary.LittleEndian.PutUint16(dap[2:], n)
	binary.LittleEndian.PutUint16(dap[4:], linuxLoaderAddr) // offset; segment 0
	dap[8] = 1                                              // LBA 1
	a.bytes(dap)
	a.label("msg")
	a.bytes([]byte(SerialLinuxDiskErr + "\r\n\x00"))
	code, err := a.assemble()
	if err != nil {
		return nil, err
	}
	if len(code) > 446 {
		return nil, fmt.Errorf("boot sector code of %d bytes overlaps the partition table", len(code))
	}
	sector := make([]byte, SectorSize)
	copy(sector, code)
	sector[510], sector[511] = 0x55, 0xAA
	return sector, nil
}

// linuxLoader is the loader proper; see the file comment.
func linuxLoader(b LinuxBoot) ([]byte, error) {
	a := newAsm(linuxLoaderAddr)
	a.movImm16Label(si, "msg_loading")
	a.call("puts")

	// Variables: zero them, then the constant parts of the disk address
	// packet (buffer 0x2000:0000) and of the int 15h GDT (source: the
	// bounce buffer; destination: set per chunk), 64 KiB limits, data
	// segments (access 0x93).
	a.xor16(ax, ax)
	a.movImm16(di, linuxDAP)
	a.movImm16(cx, 0x100)
	a.repStosb()
	a.storeImm8(linuxDAP, 16)
	a.storeImm16(linuxDAP+6, linuxBounceSeg)
	a.storeImm32(linuxSrcDesc, 0x0000FFFF)
	a.storeImm32(linuxSrcDesc+4, 0x00009300|linuxBounceSeg>>12)
	a.storeImm32(linuxDstDesc, 0x0000FFFF)
	a.storeImm32(linuxDstDesc+4, 0x00009300)

	// The top of memory below 4 GiB from int 15h AX=E801: AX KiB between
	// 1 and 16 MiB, BX 64 KiB blocks above 16 MiB. The initramfs goes as
	// high as possible, as GRUB puts it, leaving linuxInitrdMargin for
	// the BIOS's tables, and not above initrd_addr_max.
	a.movImm16(ax, 0xE801)
	a.intN(0x15)
	a.jcc(condB, "err_mem")
	a.movzx32(ebx, bx)
	a.test32(ebx, ebx)
	a.jcc(condE, "below16")
	a.shl32(ebx, 16)
	a.addImm32(ebx, 0x1000000)
	a.jmp("have_top")
	a.label("below16")
	a.movzx32(ebx, ax)
	a.shl32(ebx, 10)
	a.addImm32(ebx, 0x100000)
	a.label("have_top")
	limit := uint64(b.InitrdMax) + 1
	if limit > 0xFFFFF000 {
		limit = 0xFFFFF000
	}
	a.cmpImm32(ebx, uint32(limit))
	a.jcc(condBE, "under_max")
	a.movImm32(ebx, uint32(limit))
	a.label("under_max")
	a.cmpImm32(ebx, uint32(uint64(b.InitrdMin)+uint64(b.InitrdSize)+linuxInitrdMargin+0xFFF))
	a.jcc(condB, "err_mem")
	a.subImm32(ebx, linuxInitrdMargin+b.InitrdSize)
	a.andImm32(ebx, 0xFFFFF000)
	a.storeR32(linuxVarInitrd, ebx)

	load := func(lba, sectors, dest uint32) {
		a.storeImm32(linuxVarLBA, lba)
		a.storeImm32(linuxVarLeft, sectors)
		a.storeImm32(linuxVarDest, dest)
		a.call("read")
	}
	load(b.SetupLBA, uint32(b.SetupSectors), linuxSetupAddr)
	load(b.CmdlineLBA, uint32(b.CmdlineSectors), LinuxCmdlineAddr)
	load(b.KernelLBA, b.KernelSectors, LinuxKernelAddr)
	a.storeImm32(linuxVarLBA, b.InitrdLBA)
	a.storeImm32(linuxVarLeft, b.InitrdSectors)
	a.loadR32(eax, linuxVarInitrd)
	a.storeR32(linuxVarDest, eax)
	a.call("read")

	// ramdisk_image is the one header field that depends on the machine;
	// the disk's builder filled in the others.
	a.movImm16(ax, linuxSetupSeg)
	a.movSreg(es, ax)
	a.loadR32(eax, linuxVarInitrd)
	a.emit(0x26) // ES:
	a.storeR32(hdrRamdiskImage, eax)
	a.movImm16Label(si, "msg_start")
	a.call("puts")

	// Enter the setup code at X+0x200 with every segment at X and the
	// stack at the top of its 64 KiB.
	a.cli()
	a.movImm16(ax, linuxSetupSeg)
	for _, s := range []sreg{ds, es, fs, gs, ss} {
		a.movSreg(s, ax)
	}
	a.movImm16(sp, linuxStackTop)
	a.jmpFar(linuxSetupSeg+0x20, 0)

	// read copies linuxVarLeft sectors from linuxVarLBA on to
	// linuxVarDest, a chunk at a time: int 13h AH=42h into the bounce
	// buffer, then int 15h AH=87h from there to the destination, which
	// may be anywhere below 4 GiB.
	a.label("read")
	a.loadR32(eax, linuxVarLeft)
	a.test32(eax, eax)
	a.jcc(condE, "read_done")
	a.cmpImm32(eax, linuxChunkSectors)
	a.jcc(condB, "read_n")
	a.movImm32(eax, linuxChunkSectors)
	a.label("read_n")
	a.store16(linuxDAP+2, ax)
	a.store16(linuxVarChunk, ax)
	a.loadR32(eax, linuxVarLBA)
	a.storeR32(linuxDAP+8, eax)
	a.movImm8(ah, 0x42)
	a.load8(dl, linuxDriveVar)
	a.movImm16(si, linuxDAP)
	a.intN(0x13)
	a.jcc(condB, "err_disk")
	a.loadR32(eax, linuxVarDest)
	a.store16(linuxDstDesc+2, ax) // base 0-15
	a.shr32(eax, 16)
	a.store8(linuxDstDesc+4, al) // base 16-23
	a.store8(linuxDstDesc+7, ah) // base 24-31
	a.load16(cx, linuxVarChunk)
	a.shl16(cx, 8) // words
	a.xor16(ax, ax)
	a.movSreg(es, ax)
	a.movImm16(si, linuxGDT)
	a.movImm8(ah, 0x87)
	a.intN(0x15)
	a.jcc(condB, "err_disk")
	a.load16(ax, linuxVarChunk)
	a.movzx32(eax, ax)
	a.addMem32(linuxVarLBA, eax)
	a.subMem32(linuxVarLeft, eax)
	a.shl32(eax, 9)
	a.addMem32(linuxVarDest, eax)
	a.jmp("read")
	a.label("read_done")
	a.ret()

	a.label("err_disk")
	a.movImm16Label(si, "msg_disk")
	a.jmp("fail")
	a.label("err_mem")
	a.movImm16Label(si, "msg_mem")
	a.label("fail")
	a.xor16(ax, ax)
	a.movSreg(ds, ax)
	a.call("puts")
	a.label("halt")
	a.cli()
	a.hlt()
	a.jmp("halt")

	a.label("puts")
	a.movImm16(dx, com1)
	a.label("puts_next")
	a.lodsb()
	a.test8(al, al)
	a.jcc(condE, "puts_done")
	a.outDXAL()
	a.jmp("puts_next")
	a.label("puts_done")
	a.ret()

	a.label("msg_loading")
	a.bytes([]byte(SerialLinuxLoading + "\r\n\x00"))
	a.label("msg_start")
	a.bytes([]byte(SerialLinuxStart + "\r\n\x00"))
	a.label("msg_disk")
	a.bytes([]byte(SerialLinuxDiskErr + "\r\n\x00"))
	a.label("msg_mem")
	a.bytes([]byte(SerialLinuxMemErr + "\r\n\x00"))
	return a.assemble()
}

// The 32-bit and extra 16-bit instructions the loader needs, in 16-bit
// code: the operand-size prefix 0x66 selects the 32-bit register (eax for
// ax, ...), so reg32 shares reg16's ModRM numbering.

type reg32 uint8

const (
	eax reg32 = reg32(ax)
	ebx reg32 = reg32(bx)
)

const (
	fs sreg = 4
	gs sreg = 5

	condBE cond = 0x6 // below or equal (unsigned)
)

// jmpFar is "jmp seg:off" (EA off16 seg16).
func (a *asm) jmpFar(seg, off uint16) { a.emit(0xEA); a.emit16(off); a.emit16(seg) }

// repStosb stores AL to CX bytes at ES:DI.
func (a *asm) repStosb() { a.emit(0xF3, 0xAA) }

// storeImm8 is "mov byte [addr], imm8" (C6 /0).
func (a *asm) storeImm8(addr uint16, v byte) { a.emit(0xC6, modrmDisp16); a.emit16(addr); a.emit(v) }

// storeImm16 is "mov word [addr], imm16" (C7 /0).
func (a *asm) storeImm16(addr, v uint16) { a.emit(0xC7, modrmDisp16); a.emit16(addr); a.emit16(v) }

// load16 is "mov r16, [addr]" (8B /r); store16 "mov [addr], r16" (89 /r).
func (a *asm) load16(r reg16, addr uint16)  { a.emit(0x8B, modrmDisp16|byte(r)<<3); a.emit16(addr) }
func (a *asm) store16(addr uint16, r reg16) { a.emit(0x89, modrmDisp16|byte(r)<<3); a.emit16(addr) }

// shl16 is "shl r16, imm8" (C1 /4).
func (a *asm) shl16(r reg16, n byte) { a.emit(0xC1, 0xE0|byte(r), n) }

// loadR32 is "mov r32, [addr]"; storeR32 "mov [addr], r32".
func (a *asm) loadR32(r reg32, addr uint16) {
	a.emit(opsize32, 0x8B, modrmDisp16|byte(r)<<3)
	a.emit16(addr)
}

func (a *asm) storeR32(addr uint16, r reg32) {
	a.emit(opsize32, 0x89, modrmDisp16|byte(r)<<3)
	a.emit16(addr)
}

// addMem32 is "add [addr], r32" (01 /r); subMem32 "sub [addr], r32" (29 /r).
func (a *asm) addMem32(addr uint16, r reg32) {
	a.emit(opsize32, 0x01, modrmDisp16|byte(r)<<3)
	a.emit16(addr)
}

func (a *asm) subMem32(addr uint16, r reg32) {
	a.emit(opsize32, 0x29, modrmDisp16|byte(r)<<3)
	a.emit16(addr)
}

// movImm32 is "mov r32, imm32" (B8+r).
func (a *asm) movImm32(r reg32, v uint32) {
	a.emit(opsize32, 0xB8+byte(r))
	a.buf = binary.LittleEndian.AppendUint32(a.buf, v)
}

// alu32 is the 81 /op group with a register operand and imm32.
func (a *asm) alu32(op byte, r reg32, v uint32) {
	a.emit(opsize32, 0x81, 0xC0|op<<3|byte(r))
	a.buf = binary.LittleEndian.AppendUint32(a.buf, v)
}

func (a *asm) addImm32(r reg32, v uint32) { a.alu32(0, r, v) }
func (a *asm) andImm32(r reg32, v uint32) { a.alu32(4, r, v) }
func (a *asm) subImm32(r reg32, v uint32) { a.alu32(5, r, v) }
func (a *asm) cmpImm32(r reg32, v uint32) { a.alu32(7, r, v) }

// shl32 and shr32 shift r32 by an immediate (C1 /4, C1 /5).
func (a *asm) shl32(r reg32, n byte) { a.emit(opsize32, 0xC1, 0xE0|byte(r), n) }
func (a *asm) shr32(r reg32, n byte) { a.emit(opsize32, 0xC1, 0xE8|byte(r), n) }

// movzx32 is "movzx r32, r16" (0F B7 /r).
func (a *asm) movzx32(dst reg32, src reg16) {
	a.emit(opsize32, 0x0F, 0xB7, 0xC0|byte(dst)<<3|byte(src))
}

// test32 is "test r32, r32" (85 /r).
func (a *asm) test32(dst, src reg32) { a.emit(opsize32, 0x85, 0xC0|byte(src)<<3|byte(dst)) }
