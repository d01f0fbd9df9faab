package qemu

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// netnsChildEnv marks the test binary re-executed inside a network
// namespace of its own (see inNetns).
const netnsChildEnv = "VMPOOL_QEMU_NETNS_CHILD"

// inNetns runs the calling test again, in a child process in a new network
// namespace, and reports its result; it returns true in that child, where
// the test goes on with the body. Whatever the body makes there (bridges,
// taps) vanishes with the namespace when the child exits, even if it
// crashes. It needs root: without it the test is skipped, with the reason.
func inNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsChildEnv) == t.Name() {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skipf("skipped: needs root to create a network namespace, a bridge and tap devices (running as uid %d)", os.Geteuid())
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsChildEnv+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	t.Logf("in a new network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("the test failed in its network namespace: %v", err)
	}
	return false
}

func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestTapOnBridge makes a tap the way a bridged VM gets one and checks it
// is on the bridge and up, and that it vanishes with its last descriptor.
func TestTapOnBridge(t *testing.T) {
	if !inNetns(t) {
		return
	}
	ipCmd(t, "link", "add", "br0", "type", "bridge")
	ipCmd(t, "link", "set", "br0", "up")
	f, name, err := openTap("br0")
	if err != nil {
		t.Fatalf("openTap: %v", err)
	}
	if !strings.HasPrefix(name, tapPrefix) {
		t.Errorf("tap named %q, want prefix %q", name, tapPrefix)
	}
	link := ipCmd(t, "-o", "link", "show", "dev", name)
	if !strings.Contains(link, "master br0") || !strings.Contains(link, ",UP") {
		t.Errorf("tap %s is not up on br0: %s", name, link)
	}
	f.Close()
	if _, err := net.InterfaceByName(name); err == nil {
		t.Errorf("tap %s still exists after its last descriptor closed", name)
	}

	if _, _, err := openTap("nosuchbr"); err == nil || errors.Is(err, ErrNeedRoot) {
		t.Errorf("openTap on a missing bridge = %v, want an error naming the bridge", err)
	}
	if _, _, err := openTap("lo"); err == nil {
		t.Errorf("openTap on lo, not a bridge, succeeded")
	}
}

// TestTapNeedsRoot checks the error a startd without root gets for a
// bridged VM. As root, the test drops its privileges on one locked
// thread (setresuid is per thread at the system call level), which then
// exits with the goroutine.
func TestTapNeedsRoot(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if os.Geteuid() == 0 {
			if _, _, errno := syscall.RawSyscall(syscall.SYS_SETRESUID, 65534, 65534, 0); errno != 0 {
				done <- errno
				return
			}
		}
		f, _, err := openTap("lo")
		if f != nil {
			f.Close()
		}
		done <- err
	}()
	err := <-done
	if !errors.Is(err, ErrNeedRoot) {
		t.Fatalf("openTap without root = %v, want ErrNeedRoot", err)
	}
	if !strings.Contains(err.Error(), "uid 65534") && os.Geteuid() == 0 {
		t.Errorf("error %q does not say which user the startd runs as", err)
	}
}

// TestProbeBridge: a root startd offers bridge only when
// VM_NETWORKING_BRIDGE_INTERFACE is a bridge. One that advertised bridge
// with its bridge missing (or naming the host's NIC) matched bridge jobs
// it could not start, and each failure disabled the machine's VMs.
func TestProbeBridge(t *testing.T) {
	if !inNetns(t) {
		return
	}
	ipCmd(t, "link", "add", "br0", "type", "bridge")
	ipCmd(t, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
	for _, tc := range []struct {
		bridge string
		offer  bool
		note   string
	}{
		{"br0", true, ""},
		{"", true, ""}, // no bridge configured: the startd's configuration check speaks
		{"nosuchbr", false, "VM_NETWORKING_BRIDGE_INTERFACE = nosuchbr: no interface"},
		{"veth0", false, "VM_NETWORKING_BRIDGE_INTERFACE = veth0: a veth interface, not a bridge"},
		{"lo", false, "VM_NETWORKING_BRIDGE_INTERFACE = lo: a plain interface, not a bridge"},
	} {
		fp, err := New(Config{Bridge: tc.bridge}).Probe(context.Background())
		if err != nil || !fp.Detected {
			t.Fatalf("Probe: %v, %+v (source scripts/setup.sh installs QEMU)", err, fp)
		}
		if got := slices.Contains(fp.Networking, "bridge"); got != tc.offer || !slices.Contains(fp.Networking, "nat") {
			t.Errorf("bridge %q: Networking = %q, want bridge offered %v (and nat)", tc.bridge, fp.Networking, tc.offer)
		}
		if !strings.HasPrefix(fp.NetworkingNote, tc.note) || (tc.note == "") != (fp.NetworkingNote == "") {
			t.Errorf("bridge %q: NetworkingNote %q, want it to start %q", tc.bridge, fp.NetworkingNote, tc.note)
		}
	}
}
