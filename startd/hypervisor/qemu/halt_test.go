package qemu

import (
	"strings"
	"testing"
)

// Register dumps as QEMU 7.2's "info registers -a" prints them (cut to
// the lines allHalted reads), from the guests vmimage builds: a CPU idling
// in HLT with interrupts on (the forever guest), an application processor
// parked by the BIOS (HLT, interrupts off), a CPU running, and a 64-bit
// CPU stopped by Linux's halt.
const (
	cpuIdle = `
CPU#0
EAX=00000000 EBX=00007e00 ECX=00000002 EDX=000003f8
EIP=00007c3c EFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1
ES =0000 00000000 0000ffff 00009300
`
	apParked = `
CPU#1
EAX=000f49f6 EBX=00000000 ECX=000002ff EDX=00000001
EIP=000fd09a EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=1
`
	cpuRunning = `
CPU#0
EIP=00007c41 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0
`
	cpuHalted64 = `
CPU#0
RAX=0000000000000000 RBX=ffffffff82613940 RCX=0000000000000000 RDX=0000000000000000
RIP=ffffffff81c0f0a4 RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1
`
)

func TestAllHalted(t *testing.T) {
	tests := []struct {
		name string
		dump string
		want bool
	}{
		{"idle with interrupts on", cpuIdle, false},
		{"running", cpuRunning, false},
		{"halted, 64-bit", cpuHalted64, true},
		{"parked AP only", apParked, true},
		{"BSP idle, AP parked", cpuIdle + apParked, false},
		{"BSP halted, AP parked", cpuHalted64 + apParked, true},
		{"BSP running, AP parked", cpuRunning + apParked, false},
	}
	for _, tt := range tests {
		got, err := allHalted(tt.dump)
		if err != nil || got != tt.want {
			t.Errorf("%s: allHalted = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "no cpus here", "CPU#0\nEIP=0 EFL=zz HLT=1\n", "CPU#3\nEAX=0\n"} {
		if got, err := allHalted(bad); err == nil || got {
			t.Errorf("allHalted(%q) = %v, %v; want an error", bad, got, err)
		}
	}
	if _, err := allHalted("CPU#3\nEAX=0\n"); err == nil || !strings.Contains(err.Error(), "CPU#3") {
		t.Errorf("error does not name the CPU: %v", err)
	}
}
