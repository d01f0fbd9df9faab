package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChooseAccel(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "kvm")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	pvm := filepath.Join(dir, "kvm_pvm")
	if err := os.Mkdir(pvm, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dev, pvm, want, why string
	}{
		{"hardware KVM", dev, filepath.Join(dir, "absent"), AccelKVM, "is usable"},
		{"no /dev/kvm", filepath.Join(dir, "absent"), filepath.Join(dir, "absent"), AccelTCG, "not usable"},
		{"PVM", dev, pvm, AccelTCG, "PVM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := chooseAccel(tc.dev, tc.pvm)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Fatalf("chooseAccel = %q, %q; want %q with %q", got, why, tc.want, tc.why)
			}
		})
	}
}
