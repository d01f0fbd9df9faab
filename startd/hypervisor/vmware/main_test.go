package vmware_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor/vmware/vmrunemu"
)

// TestMain makes the test binary the `vmrun` emulator when it is run through
// a link named vmrun (the tests make one), as the vmpool binary is; and it
// fails the package if a goroutine of the driver outlives the tests.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "vmrun" {
		os.Exit(vmrunemu.Main(context.Background(), os.Args[1:], vmrunemu.Options{
			StateDir: vmrunemu.DefaultStateDir(os.Args[0]), Stdout: os.Stdout, Stderr: os.Stderr}))
	}
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines("startd/hypervisor/vmware", "startd/hypervisor/toolvm"); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines returns the stacks that run code of the packages,
// allowing a short grace period for goroutines on their way out.
func leakedGoroutines(pkgs ...string) string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "leakedGoroutines") || strings.Contains(g, "testing.(*M)") {
				continue
			}
			for _, p := range pkgs {
				if strings.Contains(g, p) {
					leaked = append(leaked, g)
					break
				}
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// emulatedVMRun makes a link named vmrun to the test binary in a fresh dir: one
// emulated VMware host. It returns the link's path.
func emulatedVMRun(t *testing.T) string {
	t.Helper()
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed: %v", bin, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "vmrun")
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	return link
}
