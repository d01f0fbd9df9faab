package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/vmimage"
	"github.com/vmpool/vmpool/vmimage/linux"
)

// The tests here run vmpool's Linux guest (package vmimage/linux: Debian's
// kernel and busybox-static, an initramfs and a boot disk built at test
// time) as vm universe jobs on a whole pool, to prove VM networking end to
// end: NAT through QEMU's user-mode network, a bridge through a tap the
// startd makes, matchmaking on VM_Networking_Types, and vm_vcpus and
// vm_memory as the guest sees them.
//
// They need the kernel and busybox packages; without them they fail (they
// never skip): scripts/test.sh installs them through scripts/setup.sh.
// The bridge test needs root for its network namespace, bridge and tap;
// without root, and only then, it is skipped with the reason.

// linuxJobTimeout bounds a Linux job from submit to completion: a boot
// under TCG takes seconds, but test machines are shared.
const linuxJobTimeout = 4 * time.Minute

// linuxGuest returns a Guest built from this machine's Debian packages,
// or fails the test saying what to install.
func linuxGuest(t *testing.T) linux.Guest {
	t.Helper()
	k, err := linux.FindKernel()
	if err != nil {
		t.Fatalf("Linux guest: %v\nInstall the packages (scripts/test.sh does, through scripts/setup.sh, when root): apt-get install %s", err, linux.Packages)
	}
	bb, err := linux.FindBusybox()
	if err != nil {
		t.Fatalf("Linux guest: %v\nInstall the packages (scripts/test.sh does, through scripts/setup.sh, when root): apt-get install %s", err, linux.Packages)
	}
	return linux.Guest{Kernel: k, Busybox: bb}
}

// linuxSub is the submit file of a Linux guest job; extra goes before queue.
func linuxSub(memMiB, vcpus int, extra string) string {
	return fmt.Sprintf(`universe = vm
executable = linux_vm_job
log = linux.log
vm_type = kvm
vm_memory = %d
vm_vcpus = %d
vm_disk = linux.img:vda:w:raw
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
transfer_input_files = linux.img
%s
queue
`, memMiB, vcpus, extra)
}

// linuxPool starts a pool for Linux guest jobs. When the test fails, the
// serial consoles of the VMs still running are shown: what the guests
// said is the best clue.
func linuxPool(t *testing.T, knobs ...string) *testPool {
	t.Helper()
	tp := newTestPool(t, 1, knobs...)
	t.Cleanup(func() { // runs before the pool stops, while scratch dirs exist
		if !t.Failed() {
			return
		}
		filepath.WalkDir(tp.home, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "serial.log" {
				b, _ := os.ReadFile(path)
				t.Logf("serial console %s:\n%s", path, b)
			}
			return nil
		})
	})
	return tp
}

// linuxReport waits for job c.0 to complete and returns the report its
// guest wrote on the returned disk. It logs how long the VM ran.
func (tp *testPool) linuxReport(t *testing.T, c int, disk string) *linux.Report {
	t.Helper()
	tp.jobEvent(c, 0, events.JobCompleted, linuxJobTimeout)
	started := tp.waitEvent(fmt.Sprintf("vmpool.ev.startd.*.job.schedd.%d.0.%s", c, events.VMStarted), nil, 10*time.Second)
	exited := tp.waitEvent(fmt.Sprintf("vmpool.ev.startd.*.job.schedd.%d.0.%s", c, events.VMExited), nil, 10*time.Second)
	r, err := linux.ReadReport(disk)
	if err != nil {
		t.Fatalf("job %d.0 completed, but its returned disk holds no report: %v", c, err)
	}
	t.Logf("job %d.0: VMStarted to VMExited %s (boot, report, power-off, return of the disk); guest uptime at its report %.2fs",
		c, time.Duration(exited.Time-started.Time).Round(10*time.Millisecond), r.Uptime)
	if r.Errors != "" {
		t.Errorf("job %d.0: the guest reported errors: %s", c, r.Errors)
	}
	return r
}

// checkGuestMemory checks that the guest saw vm_memory MiB: the kernel counts
// the physical pages the firmware reports, the RAM less the legacy hole
// below 1 MiB and the BIOS's reserved pages, well under a MiB.
func checkGuestMemory(t *testing.T, r *linux.Report, memMiB int64) {
	t.Helper()
	if r.PhysMemKiB > memMiB<<10 || r.PhysMemKiB < memMiB<<10-1024 {
		t.Errorf("the guest found %d KiB of RAM; vm_memory = %d MiB (%d KiB less under 1 MiB of firmware holes)", r.PhysMemKiB, memMiB, memMiB<<10)
	}
	if r.MemTotalKiB <= 0 || r.MemTotalKiB > r.PhysMemKiB {
		t.Errorf("the guest's MemTotal is %d KiB of %d KiB", r.MemTotalKiB, r.PhysMemKiB)
	}
}

// hostServer answers each guest that connects with one line, once answer
// allows it, and keeps what the guests said.
type hostServer struct {
	ln    net.Listener
	conns chan hostConn
	wg    sync.WaitGroup
}

// hostConn is one guest's connection and the line it sent.
type hostConn struct {
	net.Conn
	said string
}

func newHostServer(t *testing.T, addr string) *hostServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &hostServer{ln: ln, conns: make(chan hostConn, 4)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(time.Minute))
			line, _ := bufio.NewReader(c).ReadString('\n')
			select {
			case s.conns <- hostConn{c, strings.TrimSpace(line)}:
			default:
				c.Close() // nobody expects more guests
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
		close(s.conns)
		for c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *hostServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// next waits for a guest to connect and say its line.
func (s *hostServer) next(t *testing.T) hostConn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(linuxJobTimeout):
		t.Fatalf("no guest connected to %s within %s", s.ln.Addr(), linuxJobTimeout)
		return hostConn{}
	}
}

func (c hostConn) answer(t *testing.T, line string) {
	t.Helper()
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		t.Errorf("answer the guest: %v", err)
	}
	c.Close()
}

func token(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// slotAd returns the pool's only slot ad.
func slotAd(t *testing.T, tp *testPool) map[string]any {
	t.Helper()
	ads := jsonAds(t, tp.mustRun("status", "-json"))
	if len(ads) != 1 {
		t.Fatalf("%d slot ads, want 1", len(ads))
	}
	return ads[0]
}

// TestNetworkNAT runs a NAT job whose guest takes a DHCP lease from QEMU's
// user-mode network, reaches a TCP server on the host (10.0.2.2 from the
// guest) and records the reply, with a MAC the startd generated; and it
// records the vm_vcpus and vm_memory of its submit file.
func TestNetworkNAT(t *testing.T) {
	t.Parallel()
	g := linuxGuest(t)
	tp := linuxPool(t, "VM_NETWORKING=true", "VM_NETWORKING_TYPE=nat", "VM_MEMORY=512")
	ad := slotAd(t, tp)
	if ad["VM_Networking"] != true || ad["VM_Networking_Types"] != "nat" {
		t.Fatalf("slot ad: VM_Networking = %v, VM_Networking_Types = %v; want true, nat", ad["VM_Networking"], ad["VM_Networking_Types"])
	}
	srv := newHostServer(t, "127.0.0.1:0")
	g.Host = fmt.Sprintf("10.0.2.2:%d", srv.port())
	disk := filepath.Join(tp.dir, "linux.img")
	if _, err := g.WriteDisk(disk); err != nil {
		t.Fatal(err)
	}
	const memMiB, vcpus = 192, 2
	tp.mustRun("submit", tp.write("nat.sub", linuxSub(memMiB, vcpus, "vm_networking = true\nvm_networking_type = nat")))
	want := token(t)
	c := srv.next(t)
	c.answer(t, "nat-reply "+want)

	r := tp.linuxReport(t, 1, disk)
	if r.Net != "dhcp" || r.Addr != "10.0.2.15/24" || r.Gateway != "10.0.2.2" {
		t.Errorf("guest network: %s %s via %s; want a DHCP lease 10.0.2.15/24 via 10.0.2.2 from QEMU's NAT", r.Net, r.Addr, r.Gateway)
	}
	if r.Reply != "nat-reply "+want {
		t.Errorf("the guest recorded the reply %q, want %q", r.Reply, "nat-reply "+want)
	}
	if r.DNS != "10.0.2.3" {
		t.Errorf("the guest's DHCP lease named DNS servers %q, want QEMU's NAT resolver 10.0.2.3", r.DNS)
	}
	// The MAC is one the startd generated for the job: QEMU's own default
	// would be 52:54:00:12:34:56 for every guest.
	hw, err := net.ParseMAC(r.MAC)
	if err != nil || !strings.HasPrefix(r.MAC, "52:54:00:") || r.MAC == "52:54:00:12:34:56" || hw[0]&1 != 0 {
		t.Errorf("guest MAC %q: want a unicast 52:54:00 address generated for the job, not QEMU's default", r.MAC)
	}
	if c.said != "hello from "+r.MAC+" at 10.0.2.15/24" {
		t.Errorf("the host heard %q from a guest that reports MAC %s", c.said, r.MAC)
	}
	if r.CPUs != vcpus {
		t.Errorf("the guest saw %d CPUs, vm_vcpus = %d", r.CPUs, vcpus)
	}
	checkGuestMemory(t, r, memMiB)
}

// TestLinuxHaltCompletes: a Linux guest that ends with /sbin/halt, which
// stops its CPUs without powering off (HTCondor's manual: "causes the job
// to hang"), completes its job with the report it wrote, at the second
// status check that finds every vCPU halted with interrupts off.
func TestLinuxHaltCompletes(t *testing.T) {
	t.Parallel()
	g := linuxGuest(t)
	g.Halt = true
	tp := linuxPool(t, "VM_STATUS_INTERVAL=1", "VM_MEMORY=512")
	disk := filepath.Join(tp.dir, "linux.img")
	if _, err := g.WriteDisk(disk); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("halt.sub", linuxSub(128, 2, "")))
	r := tp.linuxReport(t, 1, disk)
	if r.CPUs != 2 {
		t.Errorf("the guest saw %d CPUs, vm_vcpus = 2", r.CPUs)
	}
	exited := tp.waitEvent("vmpool.ev.startd.*.job.schedd.1.0."+events.VMExited, nil, 10*time.Second)
	var p events.VMEventPayload
	if err := exited.Decode(&p); err != nil || !p.PoweredOff || p.Reason != "guest-halted" {
		t.Errorf("VMExited %+v (%v), want a power-off for guest-halted", p, err)
	}
}

// TestNetworkBridgeNeedsMatchingMachine submits a job asking for a bridge
// to a pool that offers only NAT: it stays Idle, its Requirements match no
// slot, and q -analyze says which clause fails. A second job, a Linux
// guest without networking, runs meanwhile (so the negotiator has
// considered the first job) and finds no NIC at all. A third job that
// overrides its Requirements is held by the startd. Before all that, a
// group address in vm_macaddr is refused at submit.
func TestNetworkBridgeNeedsMatchingMachine(t *testing.T) {
	t.Parallel()
	g := linuxGuest(t)
	tp := linuxPool(t, "VM_NETWORKING=true", "VM_NETWORKING_TYPE=nat", "VM_MEMORY=512")
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	// vm_macaddr is checked at submit: a group address is refused.
	badMAC := strings.Replace(helloSub, "queue", "vm_networking = true\nvm_macaddr = 01:00:5e:00:00:01\nqueue", 1)
	if _, errOut, code := tp.vmpool("submit", tp.write("badmac.sub", badMAC)); code == 0 || !strings.Contains(errOut, "[vm-macaddr-invalid]") {
		t.Fatalf("submit with a multicast vm_macaddr: exit %d, %q; want the vm-macaddr-invalid error", code, errOut)
	}
	bridgeSub := strings.Replace(helloSub, "queue", "vm_networking = true\nvm_networking_type = bridge\nqueue", 1)
	tp.mustRun("submit", tp.write("bridge.sub", bridgeSub))
	disk := filepath.Join(tp.dir, "linux.img")
	if _, err := g.WriteDisk(disk); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("nonet.sub", linuxSub(128, 1, "vm_networking = false")))

	// Job 2.0 was queued after 1.0; the negotiator takes idle jobs in
	// queue order, so by the time 2.0 is matched it has passed 1.0 by.
	r := tp.linuxReport(t, 2, disk)
	if len(r.NICs) != 0 || r.Net != "none" || r.MAC != "" {
		t.Errorf("a job with vm_networking = false has a network: NICs %q, net %s, MAC %q", r.NICs, r.Net, r.MAC)
	}
	if r.CPUs != 1 {
		t.Errorf("the guest saw %d CPUs, vm_vcpus = 1", r.CPUs)
	}
	checkGuestMemory(t, r, 128)

	jobs, err := classad.ParseJSONAds([]byte(tp.mustRun("q", "-json", "1.0")))
	if err != nil || len(jobs) != 1 {
		t.Fatalf("q -json 1.0: %d ads, %v", len(jobs), err)
	}
	job := jobs[0]
	if st, _ := job.EvalInt("JobStatus"); st != 1 {
		t.Fatalf("the bridge job's JobStatus is %d, want 1 (Idle)", st)
	}
	slots, err := classad.ParseJSONAds([]byte(tp.mustRun("status", "-json")))
	if err != nil || len(slots) != 1 {
		t.Fatalf("status -json: %d ads, %v", len(slots), err)
	}
	if classad.Match(job, slots[0]) {
		t.Fatalf("the bridge job matches the NAT-only slot; its Requirements: %s", job.Eval("Requirements"))
	}
	req, _ := job.Lookup("Requirements")
	if req == nil || !strings.Contains(req.String(), `stringListIMember(JobVMNetworkingType,TARGET.VM_Networking_Types,",")`) {
		t.Errorf("the bridge job's Requirements lack the networking type clause: %v", req)
	}
	out, errOut, code := tp.vmpool("q", "-analyze", "1.0")
	if code != 0 {
		t.Fatalf("q -analyze 1.0: exit %d: %s", code, errOut)
	}
	// The networking type clause is matched by no slot, and the analysis
	// says what the machines offer.
	var clauseLine string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "VM_Networking_Types") && strings.HasPrefix(l, "[") {
			clauseLine = l
		}
	}
	if f := strings.Fields(clauseLine); len(f) < 2 || f[1] != "0" {
		t.Errorf("q -analyze does not show the networking type clause matched by 0 slots:\n%s", out)
	}
	if !strings.Contains(out, `VM_Networking_Types = "nat"`) {
		t.Errorf("q -analyze does not say the machines offer only nat:\n%s", out)
	}
	t.Logf("vmpool q -analyze 1.0:\n%s", out)

	// A job that overrides its Requirements lands on the machine anyway;
	// the startd refuses to run it on a network it does not offer, as
	// HTCondor's vm-gahp does, and the job is held saying why.
	forced := strings.Replace(helloSub, "queue", "vm_networking = true\nvm_networking_type = bridge\n+Requirements = TARGET.HasVM =?= true\nqueue", 1)
	tp.mustRun("submit", tp.write("forced.sub", forced))
	held := tp.jobEvent(3, 0, events.JobHeld, linuxJobTimeout)
	var hp events.JobHeldPayload
	if err := held.Decode(&hp); err != nil {
		t.Fatal(err)
	}
	if hp.Code != 6 || !strings.Contains(hp.Reason, "VMGAHP_ERR_JOBCLASSAD_MISMATCHED_NETWORKING_TYPE") {
		t.Errorf("forced bridge job held with code %d: %q; want code 6, VMGAHP_ERR_JOBCLASSAD_MISMATCHED_NETWORKING_TYPE", hp.Code, hp.Reason)
	}
}

// TestNetworkBridge runs, in a network namespace of its own, a pool whose
// startd offers bridged networking on a bridge the test made, and a job
// with vm_macaddr whose guest takes a static address on the bridge: the
// startd gives the VM a tap on the bridge; the guest reaches a server in
// the namespace; while it waits for the answer the namespace pings it and
// finds the vm_macaddr in its ARP table; after the job the tap is gone. A
// second job names no networking type and gets the machine's default,
// bridge.
func TestNetworkBridge(t *testing.T) {
	if !runInNetns(t) {
		return
	}
	g := linuxGuest(t)
	const bridge, hostIP, guestIP, mac = "vmpbr0", "10.99.0.1", "10.99.0.2", "52:54:00:c0:ff:ee"
	ip(t, "link", "set", "lo", "up")
	ip(t, "link", "add", bridge, "type", "bridge")
	ip(t, "addr", "add", hostIP+"/24", "dev", bridge)
	ip(t, "link", "set", bridge, "up")

	tp := linuxPool(t, "VM_NETWORKING=true", "VM_NETWORKING_TYPE=nat, bridge", "VM_NETWORKING_DEFAULT_TYPE=bridge",
		"VM_NETWORKING_BRIDGE_INTERFACE="+bridge, "VM_MEMORY=512")
	if ad := slotAd(t, tp); ad["VM_Networking"] != true || ad["VM_Networking_Types"] != "nat,bridge" {
		t.Fatalf("slot ad: VM_Networking = %v, VM_Networking_Types = %v; want true, nat,bridge", ad["VM_Networking"], ad["VM_Networking_Types"])
	}
	srv := newHostServer(t, hostIP+":0")
	g.Address = guestIP + "/24"
	g.Host = fmt.Sprintf("%s:%d", hostIP, srv.port())
	disk := filepath.Join(tp.dir, "linux.img")
	if _, err := g.WriteDisk(disk); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("bridge.sub", linuxSub(128, 1,
		"vm_networking = true\nvm_networking_type = bridge\nvm_macaddr = "+mac)))

	c := srv.next(t)
	tap := tp.vmHandle(1, 0, nil).Data["tap"]
	if link := ip(t, "-o", "link", "show", "dev", tap); !strings.Contains(link, "master "+bridge) {
		t.Errorf("the VM's tap %q is not on %s: %s", tap, bridge, link)
	}
	if err := ping(guestIP, 20*time.Second); err != nil {
		t.Errorf("ping %s from the namespace: %v", guestIP, err)
	}
	if got := arpMAC(t, guestIP); !strings.EqualFold(got, mac) {
		t.Errorf("%s answers from MAC %q, want vm_macaddr %s", guestIP, got, mac)
	}
	want := token(t)
	c.answer(t, "bridge-reply "+want)

	r := tp.linuxReport(t, 1, disk)
	if r.MAC != mac || r.Net != "static" || r.Addr != guestIP+"/24" {
		t.Errorf("guest network: MAC %s, %s %s; want %s, static %s/24", r.MAC, r.Net, r.Addr, mac, guestIP)
	}
	if r.Reply != "bridge-reply "+want {
		t.Errorf("the guest recorded the reply %q, want %q", r.Reply, "bridge-reply "+want)
	}
	if c.said != "hello from "+mac+" at "+guestIP+"/24" {
		t.Errorf("the host heard %q", c.said)
	}
	if _, err := net.InterfaceByName(tap); err == nil {
		t.Errorf("tap %s still exists after the job", tap)
	}

	// A job that asks for networking without a type gets the machine's
	// VM_NETWORKING_DEFAULT_TYPE, here bridge: its VM has a tap too.
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("untyped.sub", strings.Replace(helloSub, "queue", "vm_networking = true\nqueue", 1)))
	tp.jobEvent(2, 0, events.JobCompleted, linuxJobTimeout)
	if h := tp.vmHandle(2, 0, nil); h.Data["tap"] == "" {
		t.Errorf("an untyped networking job on a machine whose default type is bridge got no tap: handle %v", h.Data)
	}
}

// TestNetworkNATResolvesNames: a NAT guest's DHCP lease names QEMU's
// resolver (10.0.2.3), which forwards to the execute machine's own DNS
// server (its /etc/resolv.conf): a name the machine's DNS knows resolves
// in the guest. The test runs in network and mount namespaces of its own,
// with a resolv.conf naming a DNS server of the test's, which knows one
// name.
func TestNetworkNATResolvesNames(t *testing.T) {
	if !runInNetns(t) {
		return
	}
	g := linuxGuest(t)
	ip(t, "link", "set", "lo", "up")
	const name, addr = "job-input.vmpool.test", "192.0.2.77"
	dns := newDNSServer(t, name, addr)
	privateResolvConf(t, "nameserver 127.0.0.1\n")
	tp := linuxPool(t, "VM_NETWORKING=true", "VM_NETWORKING_TYPE=nat", "VM_MEMORY=512")
	g.Resolve = name
	disk := filepath.Join(tp.dir, "linux.img")
	if _, err := g.WriteDisk(disk); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("dns.sub", linuxSub(128, 1, "vm_networking = true")))
	r := tp.linuxReport(t, 1, disk)
	if r.DNS != "10.0.2.3" || r.Resolved != addr {
		t.Errorf("the guest's DNS servers are %q and it resolved %s to %q; want 10.0.2.3 and %s (the execute machine's DNS server heard %q)",
			r.DNS, name, r.Resolved, addr, dns.asked())
	}
}

// privateResolvConf puts content at /etc/resolv.conf for this process and
// its children (the startd's QEMU reads it), in the mount namespace of
// runInNetns: mounts made there stay private to it.
func privateResolvConf(t *testing.T, content string) {
	t.Helper()
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make the test's mounts private: %v", err)
	}
	f := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(f, "/etc/resolv.conf", "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s on /etc/resolv.conf: %v", f, err)
	}
	t.Cleanup(func() { syscall.Unmount("/etc/resolv.conf", 0) })
}

// dnsServer answers DNS queries on 127.0.0.1:53 (UDP): an A record for one
// name, no address for its other types, NXDOMAIN for anything else.
type dnsServer struct {
	mu    sync.Mutex
	names []string
}

func newDNSServer(t *testing.T, name, addr string) *dnsServer {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	a := net.ParseIP(addr).To4()
	s := &dnsServer{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 512)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			q, qname, qtype, ok := parseDNSQuery(buf[:n])
			if !ok {
				continue
			}
			s.mu.Lock()
			s.names = append(s.names, qname)
			s.mu.Unlock()
			resp := append([]byte(nil), q...)
			resp[2], resp[3] = 0x81, 0x80 // a response, recursion desired and available, no error
			resp[6], resp[7], resp[8], resp[9], resp[10], resp[11] = 0, 0, 0, 0, 0, 0
			switch {
			case !strings.EqualFold(qname, name):
				resp[3] |= 3 // NXDOMAIN
			case qtype == 1: // A
				resp[7] = 1
				resp = append(resp, 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
				resp = append(resp, a...)
			}
			c.WriteTo(resp, from)
		}
	}()
	t.Cleanup(func() { c.Close(); wg.Wait() })
	return s
}

// parseDNSQuery returns a query's header and question, its name and type.
func parseDNSQuery(b []byte) (q []byte, name string, qtype int, ok bool) {
	if len(b) < 12 || b[4] != 0 || b[5] != 1 {
		return nil, "", 0, false
	}
	var labels []string
	i := 12
	for i < len(b) && b[i] != 0 {
		l := int(b[i])
		if l > 63 || i+1+l > len(b) {
			return nil, "", 0, false
		}
		labels = append(labels, string(b[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(b) {
		return nil, "", 0, false
	}
	return b[:i+5], strings.Join(labels, "."), int(b[i+1])<<8 | int(b[i+2]), true
}

func (s *dnsServer) asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.names...)
}

// netnsChild marks the test binary re-executed in a network namespace.
const netnsChild = "VMPOOL_TEST_NETNS"

// runInNetns runs the calling test again in a child process in a new
// network namespace and reports its result; in that child it returns true
// and the test goes on. Everything the test makes there (a bridge, taps,
// addresses) goes away with the namespace when the child exits, however it
// ends. Creating the namespace needs root: without it the test is skipped,
// with the reason. In CI, which runs as root, it runs.
func runInNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsChild) == t.Name() {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skipf("skipped: bridged networking needs root (a network namespace, a bridge and tap devices); running as uid %d", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("the bridge test needs iproute2's ip: %v (scripts/setup.sh installs iproute2)", err)
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), netnsChild+"="+t.Name())
	// A mount namespace too, for a test that puts its own resolv.conf in
	// (privateResolvConf); the child's mounts never reach the machine's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	t.Logf("in a new network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("the test failed in its network namespace: %v", err)
	}
	return false
}

func ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ping sends ICMP echo requests to dst, one a second, until one is
// answered or timeout passes.
func ping(dst string, timeout time.Duration) error {
	c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return fmt.Errorf("icmp socket: %w", err)
	}
	defer c.Close()
	to := &net.IPAddr{IP: net.ParseIP(dst)}
	id := uint16(os.Getpid())
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for seq := uint16(1); time.Now().Before(deadline); seq++ {
		msg := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq), 'v', 'm', 'p', 'o', 'o', 'l'}
		sum := icmpChecksum(msg)
		msg[2], msg[3] = byte(sum>>8), byte(sum)
		if _, err := c.WriteTo(msg, to); err != nil {
			return fmt.Errorf("send echo request: %w", err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // ask again
				}
				return fmt.Errorf("read echo reply: %w", err)
			}
			if n >= 8 && buf[0] == 0 && from.String() == dst && uint16(buf[4])<<8|uint16(buf[5]) == id {
				return nil
			}
		}
	}
	return fmt.Errorf("no echo reply from %s within %s", dst, timeout)
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xFFFF + s>>16
	}
	return ^uint16(s)
}

// arpMAC returns the hardware address the namespace's ARP table has for
// addr ("" if none).
func arpMAC(t *testing.T, addr string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/arp")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[0] == addr {
			return f[3]
		}
	}
	return ""
}

// TestNetworkMissingBridgeNotAdvertised: a root startd configured for
// "nat, bridge" whose VM_NETWORKING_BRIDGE_INTERFACE does not exist
// advertises only nat and says why in its log. It advertised bridge: a
// bridge job matched, failed to start ("no such network interface"), was
// requeued to match again, and the failure disabled the machine's VMs for
// VM_RECHECK_INTERVAL, so the NAT job queued behind it never ran. Now the
// bridge job stays Idle, q -analyze says the machines offer nat, and the
// NAT job runs.
func TestNetworkMissingBridgeNotAdvertised(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("skipped: a startd offers bridge only as root; running as uid %d", os.Geteuid())
	}
	t.Parallel()
	const bridge = "vmpnobr9"
	if _, err := net.InterfaceByName(bridge); err == nil {
		t.Fatalf("this machine has an interface %s; the test needs that name unused", bridge)
	}
	tp := newTestPool(t, 1, "VM_NETWORKING=true", "VM_NETWORKING_TYPE=nat, bridge", "VM_NETWORKING_BRIDGE_INTERFACE="+bridge)
	if ad := slotAd(t, tp); ad["HasVM"] != true || ad["VM_Networking"] != true || ad["VM_Networking_Types"] != "nat" {
		t.Fatalf("slot ad: HasVM = %v, VM_Networking = %v, VM_Networking_Types = %v; want true, true, nat (the bridge does not exist)",
			ad["HasVM"], ad["VM_Networking"], ad["VM_Networking_Types"])
	}
	if logs := tp.logs.String(); !strings.Contains(logs, "VM_NETWORKING_BRIDGE_INTERFACE = "+bridge+": no interface") {
		t.Errorf("the startd's log does not say why bridge is not advertised:\n%s", logs)
	}
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("bridge.sub", strings.Replace(helloSub, "queue", "vm_networking = true\nvm_networking_type = bridge\nqueue", 1)))
	tp.mustRun("submit", tp.write("nat.sub", strings.Replace(helloSub, "queue", "vm_networking = true\nvm_networking_type = nat\nqueue", 1)))
	tp.jobEvent(2, 0, events.JobCompleted, linuxJobTimeout)
	jobs, err := classad.ParseJSONAds([]byte(tp.mustRun("q", "-json", "1.0")))
	if err != nil || len(jobs) != 1 {
		t.Fatalf("q -json 1.0: %d ads, %v", len(jobs), err)
	}
	if st, _ := jobs[0].EvalInt("JobStatus"); st != 1 {
		t.Errorf("the bridge job's JobStatus is %d, want 1 (Idle)", st)
	}
	if n, _ := jobs[0].EvalInt("NumJobStarts"); n != 0 {
		t.Errorf("the bridge job was started %d times on a machine without its bridge", n)
	}
	if out := tp.mustRun("q", "-analyze", "1.0"); !strings.Contains(out, `VM_Networking_Types = "nat"`) {
		t.Errorf("q -analyze does not say the machines offer only nat:\n%s", out)
	}
}

// TestRmWhileInputsTransfer: a networked job removed while its disk is
// still coming to the execute machine leaves at once: the transfer is
// abandoned, no VM starts (so no guest reaches the network), and the
// scratch directory goes. The startd's fetch of the disk is made to stall
// (its chunks purged from the pool's store, as a lost server or link
// would stall it), for FetchStall (30 s) and then the retries; the rm used
// to wait for all that, then the VM was started only to be killed.
func TestRmWhileInputsTransfer(t *testing.T) {
	t.Parallel()
	tp := newTestPool(t, 1, "VM_NETWORKING=true")
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("net.sub", strings.Replace(helloSub, "queue", "vm_networking = true\nhold = true\nqueue", 1)))
	bucket := events.UserBucket(currentUser())
	st, err := tp.Bus.JS.Stream(t.Context(), "OBJ_"+bucket)
	if err == nil {
		err = st.Purge(t.Context(), jetstream.WithPurgeSubject("$O."+bucket+".C.>"))
	}
	if err != nil {
		t.Fatalf("purge the disk's chunks from %s: %v", bucket, err)
	}
	tp.mustRun("release", "1")
	// The startd's fetch has begun once its part file is in the VM's
	// scratch directory.
	execDir := filepath.Join(tp.home, "startd1", "execute")
	deadline := time.Now().Add(30 * time.Second)
	for {
		parts, _ := filepath.Glob(filepath.Join(execDir, "dir_*", ".hello.img.part-*"))
		if len(parts) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the startd did not begin to fetch hello.img within 30 s (nothing in %s)", execDir)
		}
		time.Sleep(20 * time.Millisecond) // polling the file system: no event says a fetch began
	}
	removed := time.Now()
	tp.mustRun("rm", "1")
	// The claim ends (and with it the job's stay in the queue) once the
	// startd says the VM is stopped.
	tp.jobEvent(1, 0, events.ClaimReleased, 10*time.Second)
	t.Logf("the claim ended %s after rm", time.Since(removed).Round(time.Millisecond))
	if out := tp.mustRun("q", "-af", "ClusterId"); strings.TrimSpace(out) != "" {
		t.Errorf("the removed job is still in the queue: %q", out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if n, err := countEvents(ctx, tp, "vmpool.ev.startd.*.job.schedd.1.0."+events.VMStarted); err != nil || n != 0 {
		t.Errorf("%d VMStarted for a job removed before its disk arrived (%v)", n, err)
	}
	if dirs, _ := filepath.Glob(filepath.Join(execDir, "dir_*")); len(dirs) != 0 {
		t.Errorf("scratch directories left: %v", dirs)
	}
}

// countEvents counts the events stored on subject.
func countEvents(ctx context.Context, tp *testPool, subject string) (int, error) {
	cons, err := tp.Bus.JS.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return 0, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int(info.NumPending), nil
}
