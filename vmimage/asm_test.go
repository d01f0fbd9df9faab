package vmimage

import (
	"bytes"
	"testing"
)

func TestAsmEncoding(t *testing.T) {
	tests := []struct {
		name string
		prog func(a *asm)
		want []byte
	}{
		{"forward jmp", func(a *asm) { a.jmp("x"); a.hlt(); a.label("x") }, []byte{0xE9, 0x01, 0x00, 0xF4}},
		{"backward jcc", func(a *asm) { a.label("x"); a.jcc(condNE, "x") }, []byte{0x0F, 0x85, 0xFC, 0xFF}},
		{"call", func(a *asm) { a.call("f"); a.label("f"); a.ret() }, []byte{0xE8, 0x00, 0x00, 0xC3}},
		{"label address", func(a *asm) { a.hlt(); a.label("d"); a.movImm16Label(si, "d") }, []byte{0xF4, 0xBE, 0x01, 0x7C}},
		{"mov [addr], dl", func(a *asm) { a.store8(0x0500, dl) }, []byte{0x88, 0x16, 0x00, 0x05}},
		{"inc dword [addr]", func(a *asm) { a.inc32(0x7E08) }, []byte{0x66, 0xFF, 0x06, 0x08, 0x7E}},
		{"cmp eax, [addr]", func(a *asm) { a.cmpEAX(0x7E14) }, []byte{0x66, 0x3B, 0x06, 0x14, 0x7E}},
		{"mov ss, ax", func(a *asm) { a.movSreg(ss, ax) }, []byte{0x8E, 0xD0}},
		{"mov dword [addr], imm", func(a *asm) { a.storeImm32(0x10, 7) }, []byte{0x66, 0xC7, 0x06, 0x10, 0x00, 7, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAsm(0x7C00)
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

func TestAsmErrors(t *testing.T) {
	a := newAsm(0)
	a.jmp("nowhere")
	if _, err := a.assemble(); err == nil {
		t.Fatal("undefined label assembled")
	}
	a = newAsm(0)
	a.label("x")
	a.label("x")
	if _, err := a.assemble(); err == nil {
		t.Fatal("duplicate label assembled")
	}
}
