package qemu

import (
	"os"
	"testing"
	"time"
)

// statCPU reads the 14th and 15th fields whatever the command name holds.
func TestStatCPU(t *testing.T) {
	for _, tt := range []struct {
		stat      string
		user, sys time.Duration
		ok        bool
	}{
		{"42 (qemu-system-x86) S 1 42 42 0 -1 4194560 100 0 0 0 250 17 0 0 20 0 5 0 100 1000 10", 2500 * time.Millisecond, 170 * time.Millisecond, true},
		{"42 (a) b) (c) R 1 42 42 0 -1 0 0 0 0 0 3 4 0 0", 30 * time.Millisecond, 40 * time.Millisecond, true},
		{"42 (qemu) S 1 42 42 0 -1 0 0 0 0 0 3", 0, 0, false},
		{"42 (qemu) S 1 42 42 0 -1 0 0 0 0 0 x 4 0", 0, 0, false},
		{"42 qemu S 1", 0, 0, false},
	} {
		user, sys, ok := statCPU([]byte(tt.stat))
		if user != tt.user || sys != tt.sys || ok != tt.ok {
			t.Errorf("statCPU(%q) = %v, %v, %v; want %v, %v, %v", tt.stat, user, sys, ok, tt.user, tt.sys, tt.ok)
		}
	}
	// This process, after some work: more than nothing.
	deadline := time.Now().Add(200 * time.Millisecond)
	for n := 0; time.Now().Before(deadline); n++ {
		_ = n * n
	}
	if user, _, ok := ProcCPU(os.Getpid()); !ok || user <= 0 {
		t.Errorf("ProcCPU(self) = %v, %v", user, ok)
	}
	if _, _, ok := ProcCPU(-1); ok {
		t.Error("ProcCPU(-1) ok")
	}
}
