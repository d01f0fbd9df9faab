package qemu

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ReasonGuestHalted: every vCPU of the guest stopped with interrupts off
// (what /sbin/halt leaves a Linux guest in, instead of powering off). The
// guest can never run again, so the job is done as after a power-off.
const ReasonGuestHalted = "guest-halted"

// haltChecks is how many status checks in a row must find the guest
// halted before it is taken for done: a CPU in HLT with interrupts off
// stays so until an NMI or a reset, which nothing sends a vm-universe
// guest, and a second look rules out a reading taken mid-transition.
const haltChecks = 2

// The fields of HMP's "info registers" that say whether an x86 CPU is
// stopped for good: its flags (EFL, or RFL in long mode; bit 9 is IF, the
// interrupt enable) and HLT (1 while it waits in a HLT instruction).
var (
	flagsField = regexp.MustCompile(`\b[ER]FL=([0-9a-fA-F]+)`)
	hltField   = regexp.MustCompile(`\bHLT=([01])\b`)
)

const flagIF = 1 << 9

// allHalted reports whether the register dump of "info registers -a"
// shows every CPU halted with interrupts disabled. A dump it cannot read
// (no CPU in it, a CPU without the fields) is an error: the caller then
// assumes the guest runs.
func allHalted(dump string) (bool, error) {
	parts := strings.Split(dump, "CPU#")
	cpus := 0
	halted := true
	for _, p := range parts[1:] {
		cpus++
		f := flagsField.FindStringSubmatch(p)
		h := hltField.FindStringSubmatch(p)
		if f == nil || h == nil {
			return false, fmt.Errorf("register dump of CPU#%s has no flags or HLT field", firstWord(p))
		}
		flags, err := strconv.ParseUint(f[1], 16, 64)
		if err != nil {
			return false, fmt.Errorf("register dump of CPU#%s: flags %q: %w", firstWord(p), f[1], err)
		}
		if h[1] != "1" || flags&flagIF != 0 {
			halted = false
		}
	}
	if cpus == 0 {
		return false, fmt.Errorf("register dump names no CPU")
	}
	return halted, nil
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// guestHalted asks QEMU for every vCPU's registers (HMP "info registers
// -a" through QMP) and reports whether all of them are halted with
// interrupts off.
func (v *VM) guestHalted(ctx context.Context) (bool, error) {
	var dump string
	if err := v.qmp.Execute(ctx, "human-monitor-command", map[string]string{"command-line": "info registers -a"}, &dump); err != nil {
		return false, fmt.Errorf("info registers: %w", err)
	}
	return allHalted(dump)
}
