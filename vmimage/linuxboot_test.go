package vmimage

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// TestLinuxLoaderEncoding checks the extra instructions the Linux loader
// uses against their encodings in the Intel SDM (as a disassembler shows
// them for 16-bit code).
func TestLinuxLoaderEncoding(t *testing.T) {
	tests := []struct {
		name string
		prog func(a *asm)
		want []byte
	}{
		{"jmp 0x1020:0000", func(a *asm) { a.jmpFar(0x1020, 0) }, []byte{0xEA, 0x00, 0x00, 0x20, 0x10}},
		{"rep stosb", func(a *asm) { a.repStosb() }, []byte{0xF3, 0xAA}},
		{"mov byte [0x600], 16", func(a *asm) { a.storeImm8(0x600, 16) }, []byte{0xC6, 0x06, 0x00, 0x06, 0x10}},
		{"mov word [0x606], 0x2000", func(a *asm) { a.storeImm16(0x606, 0x2000) }, []byte{0xC7, 0x06, 0x06, 0x06, 0x00, 0x20}},
		{"mov cx, [0x66c]", func(a *asm) { a.load16(cx, 0x66C) }, []byte{0x8B, 0x0E, 0x6C, 0x06}},
		{"mov [0x602], ax", func(a *asm) { a.store16(0x602, ax) }, []byte{0x89, 0x06, 0x02, 0x06}},
		{"shl cx, 8", func(a *asm) { a.shl16(cx, 8) }, []byte{0xC1, 0xE1, 0x08}},
		{"mov eax, [0x670]", func(a *asm) { a.loadR32(eax, 0x670) }, []byte{0x66, 0x8B, 0x06, 0x70, 0x06}},
		{"mov [0x670], ebx", func(a *asm) { a.storeR32(0x670, ebx) }, []byte{0x66, 0x89, 0x1E, 0x70, 0x06}},
		{"add [0x660], eax", func(a *asm) { a.addMem32(0x660, eax) }, []byte{0x66, 0x01, 0x06, 0x60, 0x06}},
		{"sub [0x664], eax", func(a *asm) { a.subMem32(0x664, eax) }, []byte{0x66, 0x29, 0x06, 0x64, 0x06}},
		{"mov ebx, 0x80000000", func(a *asm) { a.movImm32(ebx, 0x80000000) }, []byte{0x66, 0xBB, 0, 0, 0, 0x80}},
		{"add ebx, 0x1000000", func(a *asm) { a.addImm32(ebx, 0x1000000) }, []byte{0x66, 0x81, 0xC3, 0, 0, 0, 1}},
		{"and ebx, 0xfffff000", func(a *asm) { a.andImm32(ebx, 0xFFFFF000) }, []byte{0x66, 0x81, 0xE3, 0, 0xF0, 0xFF, 0xFF}},
		{"sub ebx, 0x100000", func(a *asm) { a.subImm32(ebx, 0x100000) }, []byte{0x66, 0x81, 0xEB, 0, 0, 0x10, 0}},
		{"cmp eax, 64", func(a *asm) { a.cmpImm32(eax, 64) }, []byte{0x66, 0x81, 0xF8, 64, 0, 0, 0}},
		{"shl ebx, 16", func(a *asm) { a.shl32(ebx, 16) }, []byte{0x66, 0xC1, 0xE3, 16}},
		{"shr eax, 16", func(a *asm) { a.shr32(eax, 16) }, []byte{0x66, 0xC1, 0xE8, 16}},
		{"movzx ebx, bx", func(a *asm) { a.movzx32(ebx, bx) }, []byte{0x66, 0x0F, 0xB7, 0xDB}},
		{"movzx eax, ax", func(a *asm) { a.movzx32(eax, ax) }, []byte{0x66, 0x0F, 0xB7, 0xC0}},
		{"test ebx, ebx", func(a *asm) { a.test32(ebx, ebx) }, []byte{0x66, 0x85, 0xDB}},
		{"mov fs, ax", func(a *asm) { a.movSreg(fs, ax) }, []byte{0x8E, 0xE0}},
		{"mov gs, ax", func(a *asm) { a.movSreg(gs, ax) }, []byte{0x8E, 0xE8}},
		{"jbe", func(a *asm) { a.label("x"); a.jcc(condBE, "x") }, []byte{0x0F, 0x86, 0xFC, 0xFF}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAsm(0x8000)
			tt.prog(a)
			got, err := a.assemble()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got % x, want % x", got, tt.want)
			}
		})
	}
}

func validBoot() LinuxBoot {
	return LinuxBoot{
		SetupLBA: 3, SetupSectors: 40, CmdlineLBA: 43, CmdlineSectors: 1,
		KernelLBA: 44, KernelSectors: 27588, InitrdLBA: 27632, InitrdSectors: 3600, InitrdSize: 1843000,
		InitrdMin: 0x4400000, InitrdMax: 0x7FFFFFFF,
	}
}

func TestLinuxLoader(t *testing.T) {
	boot, loader, err := LinuxLoader(validBoot())
	if err != nil {
		t.Fatal(err)
	}
	if len(boot) != SectorSize || boot[510] != 0x55 || boot[511] != 0xAA {
		t.Fatalf("boot sector: %d bytes, signature % x", len(boot), boot[510:])
	}
	if !bytes.Equal(boot[446:510], make([]byte, 64)) {
		t.Errorf("boot sector code runs into the partition table")
	}
	if len(loader) == 0 || len(loader)%SectorSize != 0 {
		t.Fatalf("loader of %d bytes is not whole sectors", len(loader))
	}
	// The boot sector's disk address packet loads exactly the loader.
	dap := bytes.Index(boot, []byte{16, 0, byte(len(loader) / SectorSize), 0, 0x00, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	if dap < 0 {
		t.Errorf("boot sector has no packet reading %d sectors from LBA 1 to 0000:8000", len(loader)/SectorSize)
	}
	// The kernel's LBAs and sizes are immediates in the loader.
	for _, v := range []uint32{3, 40, 44, 27588, 27632, 3600} {
		b := binary.LittleEndian.AppendUint32(nil, v)
		if !bytes.Contains(loader, b) {
			t.Errorf("loader lacks the immediate %d", v)
		}
	}
	for _, msg := range []string{SerialLinuxLoading, SerialLinuxStart, SerialLinuxDiskErr, SerialLinuxMemErr} {
		if !bytes.Contains(loader, []byte(msg)) {
			t.Errorf("loader lacks message %q", msg)
		}
	}
	// The same layout with other LBAs assembles to the same length: the
	// disk builder relies on it.
	b2 := validBoot()
	b2.KernelLBA, b2.InitrdLBA = 1<<30, 1<<31
	if _, l2, err := LinuxLoader(b2); err != nil || len(l2) != len(loader) {
		t.Errorf("loader length depends on the LBAs: %d vs %d (%v)", len(l2), len(loader), err)
	}
	if got, want := validBoot().MinMemory(), uint64(0x4400000+1843000+1<<20+0xFFF); got != want {
		t.Errorf("MinMemory = %d, want %d", got, want)
	}
}

func TestLinuxLoaderRejects(t *testing.T) {
	tests := []struct {
		name string
		mod  func(b *LinuxBoot)
		want string
	}{
		{"no kernel", func(b *LinuxBoot) { b.KernelSectors = 0 }, "no kernel"},
		{"huge setup", func(b *LinuxBoot) { b.SetupSectors = 100 }, "setup"},
		{"long cmdline", func(b *LinuxBoot) { b.CmdlineSectors = 5 }, "command line"},
		{"initrd larger than its sectors", func(b *LinuxBoot) { b.InitrdSize = 3601 * SectorSize }, "initramfs"},
		{"initrd above the limit", func(b *LinuxBoot) { b.InitrdMax = 0x4000000 }, "initrd_addr_max"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := validBoot()
			tt.mod(&b)
			_, _, err := LinuxLoader(b)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LinuxLoader = %v, want an error about %s", err, tt.want)
			}
		})
	}
}
