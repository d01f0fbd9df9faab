package linux

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor/qemu"
)

// These tests boot the guest under QEMU directly (KVM or TCG, as the kvm
// driver would pick), with no pool around it: the image itself must boot, talk to
// the host and power off by itself.

// bootTimeout bounds one boot; a Linux boot under TCG takes seconds, but
// the machines that run the tests are shared.
const bootTimeout = 3 * time.Minute

// hostServer is a TCP server on the host's loopback, which QEMU's NAT
// shows the guest as 10.0.2.2. It answers one line per connection and
// keeps what the guests said.
type hostServer struct {
	ln    net.Listener
	reply string
	mu    sync.Mutex
	heard []string
	wg    sync.WaitGroup
}

func newHostServer(t *testing.T, reply string) *hostServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &hostServer{ln: ln, reply: reply}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			s.mu.Lock()
			s.heard = append(s.heard, strings.TrimSpace(line))
			s.mu.Unlock()
			fmt.Fprintf(c, "%s\n", s.reply)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *hostServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *hostServer) said() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.heard...)
}

// runQEMU boots a VM and waits for QEMU to exit, which it does when the
// guest powers off. It returns the serial console's output and how long
// the VM ran.
func runQEMU(t *testing.T, args ...string) (string, time.Duration) {
	t.Helper()
	serial := filepath.Join(t.TempDir(), "serial.log")
	accel, _ := qemu.ChooseAccel() // as the kvm driver picks it
	base := []string{"-machine", "pc,accel=" + accel, "-nodefaults", "-no-user-config", "-display", "none",
		"-serial", "file:" + serial, "-no-reboot"}
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "qemu-system-x86_64", append(base, args...)...).CombinedOutput()
	took := time.Since(start)
	console, _ := os.ReadFile(serial)
	if err != nil {
		t.Fatalf("qemu: %v\n%s\nserial console:\n%s", err, out, console)
	}
	if !strings.Contains(string(console), "reboot: Power down") {
		t.Fatalf("the guest did not power off by itself:\n%s", console)
	}
	return string(console), took
}

// TestBootDisk boots the one-disk form from a virtio disk (vda), the way a
// kvm job's disk boots: the BIOS runs the boot sector, the loader loads
// the kernel and the initramfs; the guest takes a DHCP lease from QEMU's
// NAT, talks to a server on the host, records two CPUs and the memory it
// was given, and powers off.
func TestBootDisk(t *testing.T) {
	t.Parallel()
	kernel, bb := requireParts(t)
	srv := newHostServer(t, "hello guest, this is the host")
	disk := filepath.Join(t.TempDir(), "linux.img")
	if _, err := (Guest{Kernel: kernel, Busybox: bb, Host: fmt.Sprintf("10.0.2.2:%d", srv.port())}).WriteDisk(disk); err != nil {
		t.Fatal(err)
	}
	const mac = "52:54:00:0a:0b:0c"
	console, took := runQEMU(t, "-m", "160", "-smp", "2",
		"-drive", "file="+disk+",format=raw,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0,bootindex=0",
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile=,mac="+mac)
	r, err := ReadReport(disk)
	if err != nil {
		t.Fatalf("%v\nserial console:\n%s", err, console)
	}
	t.Logf("booted, reported and powered off in %s (guest uptime at the report %.2fs)", took.Round(10*time.Millisecond), r.Uptime)
	checkReport(t, r, console, map[string]string{
		"mac": mac, "net": "dhcp", "addr": "10.0.2.15/24", "gateway": "10.0.2.2", "reply": "hello guest, this is the host",
		"data": "/dev/vda1", "errors": "", "nproc": "2",
	})
	checkMemory(t, r, 160)
	if said := srv.said(); len(said) != 1 || said[0] != "hello from "+mac+" at 10.0.2.15/24" {
		t.Errorf("the host heard %q", said)
	}
	if !strings.Contains(console, "vmpool-boot: starting linux") {
		t.Errorf("the loader did not announce the kernel:\n%s", console)
	}
}

// TestKernelFiles boots the kernel+initrd form (xen_kernel, xen_initrd) as
// QEMU's -kernel, -initrd and -append, with the data disk on the IDE
// controller (hda: the guest falls back from virtio to its ATA drivers to
// find it) and no NIC at all.
func TestKernelFiles(t *testing.T) {
	t.Parallel()
	kernel, bb := requireParts(t)
	f, err := Guest{Kernel: kernel, Busybox: bb}.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	console, took := runQEMU(t, "-m", "128", "-smp", "1", "-kernel", f.Kernel, "-initrd", f.Initrd, "-append", f.Cmdline,
		"-drive", "file="+f.Disk+",format=raw,if=none,id=d0", "-device", "ide-hd,drive=d0,bus=ide.0,unit=0", "-nic", "none")
	r, err := ReadReport(f.Disk)
	if err != nil {
		t.Fatalf("%v\nserial console:\n%s", err, console)
	}
	t.Logf("booted, reported and powered off in %s (guest uptime at the report %.2fs)", took.Round(10*time.Millisecond), r.Uptime)
	checkReport(t, r, console, map[string]string{"nics": "", "mac": "", "net": "none", "data": "/dev/sda", "errors": "", "nproc": "1"})
	checkMemory(t, r, 128)
}

// checkReport compares report fields with want.
func checkReport(t *testing.T, r *Report, console string, want map[string]string) {
	t.Helper()
	bad := false
	for k, v := range want {
		if r.Fields[k] != v {
			t.Errorf("report %s = %q, want %q", k, r.Fields[k], v)
			bad = true
		}
	}
	if bad {
		t.Logf("serial console:\n%s", console)
	}
}

// checkMemory checks the guest saw memMiB of RAM: the kernel counts the
// physical pages the firmware reports, which is the machine's RAM less the
// legacy hole below 1 MiB and the BIOS's reserved pages, well under a MiB.
func checkMemory(t *testing.T, r *Report, memMiB int64) {
	t.Helper()
	if r.PhysMemKiB > memMiB<<10 || r.PhysMemKiB < memMiB<<10-1024 {
		t.Errorf("guest found %d KiB of RAM, want %d MiB less under 1 MiB of firmware holes", r.PhysMemKiB, memMiB)
	}
	if r.MemTotalKiB <= 0 || r.MemTotalKiB > r.PhysMemKiB {
		t.Errorf("MemTotal %d KiB, RAM %d KiB", r.MemTotalKiB, r.PhysMemKiB)
	}
}
