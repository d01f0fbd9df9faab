package vmimage

import (
	"fmt"
	"math"
	"time"
)

// Guest is a boot-sector program together with the data sector it starts
// from. The zero Guest is not valid; use Counter, Forever, StampCounter or
// Timed.
type Guest struct {
	Kind  Kind
	Ticks uint32 // BIOS ticks to count (stamp) or wait (timed); ignored by the others
}

// Counter is the "hello" guest: it boots, increments Counter and Boots in
// its data sector and powers off through ACPI.
func Counter() Guest { return Guest{Kind: KindCounter} }

// Forever boots, increments Boots, prints SerialReady and then idles with
// interrupts on until it is stopped from outside. It never powers off by
// itself; an ACPI power button press is ignored too.
func Forever() Guest { return Guest{Kind: KindForever} }

// StampCounter is the checkpoint guest. On a boot from a disk without a
// stamp it records one (CMOS clock and time-stamp counter); then it counts
// BIOS ticks until Ticks reaches ticks, writing the count to disk on every
// tick, sets Done, increments Counter and powers off. A VM resumed from a
// memory checkpoint continues the count and keeps the first boot's stamp;
// a reboot from the original disk makes a new stamp.
func StampCounter(ticks uint32) Guest { return Guest{Kind: KindStamp, Ticks: ticks} }

// Timed waits ticks BIOS ticks, then records them in Ticks, increments
// Counter and powers off.
func Timed(ticks uint32) Guest { return Guest{Kind: KindTimed, Ticks: ticks} }

// Halting is the counter guest ending as /sbin/halt leaves a Linux guest:
// it boots, increments Counter and Boots, then stops its CPU with
// interrupts off (cli; hlt) instead of powering off. The VM stays up,
// doing nothing, until it is stopped from outside.
func Halting() Guest { return Guest{Kind: KindHalting} }

// TickHz is the rate of the BIOS tick counter at 0040:006C (the PIT's
// 1193182 Hz divided by 65536).
const TickHz = 1193182.0 / 65536.0

// TicksFor converts a duration to BIOS ticks, rounding up.
func TicksFor(d time.Duration) uint32 {
	return uint32(math.Ceil(d.Seconds() * TickHz))
}

// Messages the guests print on COM1 (port 0x3F8), each on its own line.
// With "-serial stdio" or a serial log file a test can wait for them.
const (
	SerialReady     = "vmpool: ready"      // forever and stamp guests: the first disk update is written
	SerialPoweroff  = "vmpool: poweroff"   // about to power off
	SerialHalt      = "vmpool: halt"       // halting guest: about to stop its CPU with interrupts off
	SerialDiskError = "vmpool: disk error" // int 13h failed or the data sector is not ours
)

// Memory the guests use besides the boot sector (0x7C00) and the data
// sector (dataAddr): a few variables in free conventional memory, and the
// BIOS tick counter.
const (
	varDrive   = 0x0500 // boot drive from DL
	varOp      = 0x0501 // int 13h function for diskIO
	varLast    = 0x0504 // last BIOS tick seen (dword)
	biosTicks  = 0x046C // 0040:006C, incremented by the BIOS at 18.2 Hz
	pm1aCnt    = 0x0604 // ACPI PM1a control on QEMU's pc and q35 machines under SeaBIOS
	slpS5      = 0x2000 // SLP_EN with SLP_TYP 0: power off (S5) on QEMU's PIIX4/ICH9 PM
	com1       = 0x03F8
	bootOrigin = 0x7C00
)

// CMOS registers read into the stamp, in Stamp.RTC order.
var rtcRegs = [6]byte{0x00, 0x02, 0x04, 0x07, 0x08, 0x09}

// BootSector assembles the guest's 512-byte boot sector.
func (g Guest) BootSector() ([]byte, error) {
	switch g.Kind {
	case KindCounter, KindForever, KindStamp, KindTimed, KindHalting:
	default:
		return nil, fmt.Errorf("assemble guest: unknown kind %v", g.Kind)
	}
	a := newAsm(bootOrigin)
	prologue(a)
	switch g.Kind {
	case KindCounter:
		a.inc32(dataAddr + offCounter)
		a.call("write_data")
		a.jcc(condB, "fail")
		a.jmp("poweroff")
	case KindForever:
		a.call("write_data")
		a.jcc(condB, "fail")
		a.movImm16Label(si, "msg_ready")
		a.call("puts")
		a.label("idle")
		a.sti()
		a.hlt()
		a.jmp("idle")
	case KindStamp:
		stampBody(a)
	case KindTimed:
		timedBody(a)
	case KindHalting:
		a.inc32(dataAddr + offCounter)
		a.call("write_data")
		a.jcc(condB, "fail")
		a.movImm16Label(si, "msg_halt")
		a.call("puts")
		a.jmp("halt")
	}
	epilogue(a)
	code, err := a.assemble()
	if err != nil {
		return nil, fmt.Errorf("assemble %v guest: %w", g.Kind, err)
	}
	if len(code) > SectorSize-2 {
		return nil, fmt.Errorf("assemble %v guest: %d bytes do not fit a boot sector", g.Kind, len(code))
	}
	sector := make([]byte, SectorSize)
	copy(sector, code)
	sector[510], sector[511] = 0x55, 0xAA // the BIOS boots only signed sectors
	return sector, nil
}

// prologue sets up segments and stack, reads the data sector and checks
// its magic, and counts the boot (in memory; the body writes it out).
func prologue(a *asm) {
	a.cli()
	a.xor16(ax, ax)
	a.movSreg(ds, ax)
	a.movSreg(es, ax)
	a.movSreg(ss, ax)
	a.movImm16(sp, bootOrigin) // the stack grows down from below the boot sector
	a.sti()
	a.cld()
	a.store8(varDrive, dl) // the BIOS passes the boot drive in DL
	a.call("read_data")
	a.jcc(condB, "fail")
	a.movImm16(si, dataAddr)
	a.movImm16Label(di, "magic")
	a.movImm16(cx, uint16(len(Magic)))
	a.repeCmpsb()
	a.jcc(condNE, "fail")
	a.inc32(dataAddr + offBoots)
}

// stampBody stamps a fresh disk, then counts ticks to Target, writing the
// data sector on every tick.
func stampBody(a *asm) {
	a.testImm8(dataAddr+offFlags, flagStamped)
	a.jcc(condNE, "have_stamp")
	for i, reg := range rtcRegs {
		a.movImm8(al, reg)
		a.outImm(0x70) // CMOS index
		a.inImm(0x71)  // CMOS data
		a.store8(dataAddr+offRTC+uint16(i), al)
	}
	a.rdtsc()
	a.storeEAX(dataAddr + offTSC)
	a.storeEDX(dataAddr + offTSC + 4)
	a.orImm8(dataAddr+offFlags, flagStamped)
	a.label("have_stamp")
	a.call("write_data")
	a.jcc(condB, "fail")
	a.movImm16Label(si, "msg_ready")
	a.call("puts")
	a.loadEAX(biosTicks)
	a.storeEAX(varLast)
	a.label("count")
	a.loadEAX(dataAddr + offTicks)
	a.cmpEAX(dataAddr + offTarget)
	a.jcc(condAE, "finished")
	a.hlt() // until the next interrupt: at the latest the next timer tick
	a.loadEAX(biosTicks)
	a.cmpEAX(varLast)
	a.jcc(condE, "count")
	a.storeEAX(varLast)
	a.inc32(dataAddr + offTicks)
	a.call("write_data")
	a.jcc(condB, "fail")
	a.jmp("count")
	a.label("finished")
	a.orImm8(dataAddr+offFlags, flagDone)
	a.inc32(dataAddr + offCounter)
	a.call("write_data")
	a.jcc(condB, "fail")
	a.jmp("poweroff")
}

// timedBody waits Target ticks, then records the run.
func timedBody(a *asm) {
	a.storeImm32(dataAddr+offTicks, 0)
	a.loadEAX(biosTicks)
	a.storeEAX(varLast)
	a.label("wait")
	a.loadEAX(dataAddr + offTicks)
	a.cmpEAX(dataAddr + offTarget)
	a.jcc(condAE, "waited")
	a.hlt()
	a.loadEAX(biosTicks)
	a.cmpEAX(varLast)
	a.jcc(condE, "wait")
	a.storeEAX(varLast)
	a.inc32(dataAddr + offTicks)
	a.jmp("wait")
	a.label("waited")
	a.inc32(dataAddr + offCounter)
	a.call("write_data")
	a.jcc(condB, "fail")
	a.jmp("poweroff")
}

// epilogue holds the shared routines: power-off, failure, disk I/O, puts,
// and the constant data.
func epilogue(a *asm) {
	a.label("poweroff")
	a.movImm16Label(si, "msg_off")
	a.call("puts")
	a.movImm16(dx, pm1aCnt)
	a.movImm16(ax, slpS5)
	a.outDXAX()
	a.label("halt") // only reached without ACPI
	a.cli()
	a.hlt()
	a.jmp("halt")

	a.label("fail")
	a.movImm16Label(si, "msg_err")
	a.call("puts")
	a.jmp("poweroff")

	// read_data and write_data move the data sector between LBA 1 and
	// dataAddr: CHS cylinder 0, head 0, sector 2 is LBA 1 on any
	// geometry. Three tries with a controller reset between them; CF set
	// on failure.
	a.label("read_data")
	a.movImm8(ah, 0x02)
	a.jmp("disk_io")
	a.label("write_data")
	a.movImm8(ah, 0x03)
	a.label("disk_io")
	a.store8(varOp, ah)
	a.movImm16(bp, 3)
	a.label("retry")
	a.load8(ah, varOp)
	a.movImm8(al, 1) // one sector
	a.movImm16(bx, dataAddr)
	a.movImm16(cx, 0x0002) // CH = cylinder 0, CL = sector 2
	a.movImm8(dh, 0)       // head 0
	a.load8(dl, varDrive)
	a.intN(0x13)
	a.jcc(condAE, "io_ok")
	a.xor16(ax, ax) // AH=0: reset the disk system
	a.load8(dl, varDrive)
	a.intN(0x13)
	a.dec16(bp)
	a.jcc(condNE, "retry")
	a.stc()
	a.label("io_ok")
	a.ret()

	// puts writes the NUL-terminated string at SI to COM1.
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

	a.label("magic")
	a.bytes([]byte(Magic))
	a.label("msg_ready")
	a.bytes([]byte(SerialReady + "\r\n\x00"))
	a.label("msg_off")
	a.bytes([]byte(SerialPoweroff + "\r\n\x00"))
	a.label("msg_err")
	a.bytes([]byte(SerialDiskError + "\r\n\x00"))
	a.label("msg_halt")
	a.bytes([]byte(SerialHalt + "\r\n\x00"))
}

// Image returns the first two sectors of the guest's disk: the boot sector
// and a fresh data sector.
func (g Guest) Image() ([]byte, error) {
	boot, err := g.BootSector()
	if err != nil {
		return nil, err
	}
	return append(boot, encodeData(g.Kind, g.Ticks)...), nil
}
