package vmimage

import (
	"encoding/binary"
	"fmt"
)

// This file is a tiny encoder for the handful of 16-bit real-mode x86
// instructions the guests need. Each method emits one instruction; operand
// forms are spelled out in the method name rather than parsed, so the byte
// layout of every instruction is visible right here. Jumps, calls and
// address operands may name labels that are defined later; assemble
// resolves them. Near jumps (rel16) are used throughout so that no branch
// can silently go out of range.

type reg16 uint8 // in ModRM order

const (
	ax reg16 = iota
	cx
	dx
	bx
	sp
	bp
	si
	di
)

type reg8 uint8 // in ModRM order

const (
	al reg8 = iota
	cl
	dl
	bl
	ah
	ch
	dh
	bh
)

type sreg uint8 // segment registers in ModRM order

const (
	es sreg = iota
	cs
	ss
	ds
)

type cond uint8 // the low nibble of Jcc opcodes

const (
	condB  cond = 0x2 // below / carry set
	condAE cond = 0x3 // above or equal / carry clear
	condE  cond = 0x4 // equal / zero
	condNE cond = 0x5 // not equal / not zero
)

const (
	modrmDisp16 = 0x06 // mod=00 r/m=110: a bare 16-bit address operand
	opsize32    = 0x66 // operand-size prefix: the next instruction works on 32 bits
)

type fixKind uint8

const (
	fixRel16 fixKind = iota // signed offset from the end of the instruction
	fixAbs16                // absolute address (org + label offset)
)

type fixup struct {
	at    int // where the 16-bit field is
	end   int // end of the instruction (for relative fixups)
	label string
	kind  fixKind
}

// asm accumulates machine code placed at org. It is not safe for
// concurrent use; the first error sticks and is returned by assemble.
type asm struct {
	org    uint16
	buf    []byte
	labels map[string]int
	fixups []fixup
	err    error
}

func newAsm(org uint16) *asm {
	return &asm{org: org, labels: make(map[string]int)}
}

func (a *asm) emit(b ...byte) { a.buf = append(a.buf, b...) }

func (a *asm) emit16(v uint16) { a.buf = binary.LittleEndian.AppendUint16(a.buf, v) }

// label defines name at the current position.
func (a *asm) label(name string) {
	if _, dup := a.labels[name]; dup && a.err == nil {
		a.err = fmt.Errorf("label %q defined twice", name)
	}
	a.labels[name] = len(a.buf)
}

// ref emits a 16-bit placeholder resolved to label by assemble.
func (a *asm) ref(label string, kind fixKind) {
	at := len(a.buf)
	a.emit16(0)
	a.fixups = append(a.fixups, fixup{at: at, end: len(a.buf), label: label, kind: kind})
}

// Plain one- and two-byte instructions.
func (a *asm) cli()   { a.emit(0xFA) }
func (a *asm) sti()   { a.emit(0xFB) }
func (a *asm) cld()   { a.emit(0xFC) }
func (a *asm) hlt()   { a.emit(0xF4) }
func (a *asm) ret()   { a.emit(0xC3) }
func (a *asm) stc()   { a.emit(0xF9) }
func (a *asm) lodsb() { a.emit(0xAC) }
func (a *asm) rdtsc() { a.emit(0x0F, 0x31) } // EDX:EAX = time-stamp counter

func (a *asm) intN(n byte) { a.emit(0xCD, n) }

// repeCmpsb compares CX bytes at DS:SI with ES:DI; ZF set if all equal.
func (a *asm) repeCmpsb() { a.emit(0xF3, 0xA6) }

// xor16 is "xor dst, src" (31 /r).
func (a *asm) xor16(dst, src reg16) { a.emit(0x31, 0xC0|byte(src)<<3|byte(dst)) }

// test8 is "test dst, src" on byte registers (84 /r).
func (a *asm) test8(dst, src reg8) { a.emit(0x84, 0xC0|byte(src)<<3|byte(dst)) }

// movSreg is "mov seg, src" (8E /r).
func (a *asm) movSreg(seg sreg, src reg16) { a.emit(0x8E, 0xC0|byte(seg)<<3|byte(src)) }

// movImm16 is "mov r16, imm16" (B8+r).
func (a *asm) movImm16(r reg16, v uint16) { a.emit(0xB8 + byte(r)); a.emit16(v) }

// movImm16Label is "mov r16, label" with the label's absolute address.
func (a *asm) movImm16Label(r reg16, label string) {
	a.emit(0xB8 + byte(r))
	a.ref(label, fixAbs16)
}

// movImm8 is "mov r8, imm8" (B0+r).
func (a *asm) movImm8(r reg8, v byte) { a.emit(0xB0+byte(r), v) }

// store8 is "mov [addr], r8" (88 /r).
func (a *asm) store8(addr uint16, r reg8) { a.emit(0x88, modrmDisp16|byte(r)<<3); a.emit16(addr) }

// load8 is "mov r8, [addr]" (8A /r).
func (a *asm) load8(r reg8, addr uint16) { a.emit(0x8A, modrmDisp16|byte(r)<<3); a.emit16(addr) }

// orImm8 is "or byte [addr], imm8" (80 /1).
func (a *asm) orImm8(addr uint16, v byte) { a.emit(0x80, modrmDisp16|1<<3); a.emit16(addr); a.emit(v) }

// testImm8 is "test byte [addr], imm8" (F6 /0).
func (a *asm) testImm8(addr uint16, v byte) { a.emit(0xF6, modrmDisp16); a.emit16(addr); a.emit(v) }

// loadEAX is "mov eax, [addr]" (66 A1).
func (a *asm) loadEAX(addr uint16) { a.emit(opsize32, 0xA1); a.emit16(addr) }

// storeEAX is "mov [addr], eax" (66 A3).
func (a *asm) storeEAX(addr uint16) { a.emit(opsize32, 0xA3); a.emit16(addr) }

// storeEDX is "mov [addr], edx" (66 89 /r).
func (a *asm) storeEDX(addr uint16) {
	a.emit(opsize32, 0x89, modrmDisp16|byte(dx)<<3)
	a.emit16(addr)
}

// cmpEAX is "cmp eax, [addr]" (66 3B /r).
func (a *asm) cmpEAX(addr uint16) { a.emit(opsize32, 0x3B, modrmDisp16); a.emit16(addr) }

// inc32 is "inc dword [addr]" (66 FF /0).
func (a *asm) inc32(addr uint16) { a.emit(opsize32, 0xFF, modrmDisp16); a.emit16(addr) }

// storeImm32 is "mov dword [addr], imm32" (66 C7 /0).
func (a *asm) storeImm32(addr uint16, v uint32) {
	a.emit(opsize32, 0xC7, modrmDisp16)
	a.emit16(addr)
	a.buf = binary.LittleEndian.AppendUint32(a.buf, v)
}

// dec16 is "dec r16" (48+r; a one-byte form in 16-bit mode).
func (a *asm) dec16(r reg16) { a.emit(0x48 + byte(r)) }

// outImm is "out imm8, al"; inImm is "in al, imm8".
func (a *asm) outImm(port byte) { a.emit(0xE6, port) }
func (a *asm) inImm(port byte)  { a.emit(0xE4, port) }

// outDXAL is "out dx, al"; outDXAX is "out dx, ax".
func (a *asm) outDXAL() { a.emit(0xEE) }
func (a *asm) outDXAX() { a.emit(0xEF) }

// jmp is a near jump (E9 rel16); call a near call (E8 rel16).
func (a *asm) jmp(label string)  { a.emit(0xE9); a.ref(label, fixRel16) }
func (a *asm) call(label string) { a.emit(0xE8); a.ref(label, fixRel16) }

// jcc is a near conditional jump (0F 80+cc rel16, 386 and later).
func (a *asm) jcc(c cond, label string) { a.emit(0x0F, 0x80|byte(c)); a.ref(label, fixRel16) }

// bytes places raw data (strings, tables) in the code.
func (a *asm) bytes(b []byte) { a.emit(b...) }

// assemble resolves labels and returns the code.
func (a *asm) assemble() ([]byte, error) {
	if a.err != nil {
		return nil, a.err
	}
	out := append([]byte(nil), a.buf...)
	for _, f := range a.fixups {
		target, ok := a.labels[f.label]
		if !ok {
			return nil, fmt.Errorf("undefined label %q", f.label)
		}
		var v uint16
		switch f.kind {
		case fixRel16:
			v = uint16(int16(target - f.end))
		case fixAbs16:
			v = a.org + uint16(target)
		}
		binary.LittleEndian.PutUint16(out[f.at:], v)
	}
	return out, nil
}
