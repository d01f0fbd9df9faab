package linux

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireParts returns the kernel and busybox the guest is built from.
// Their absence fails the test, never skips it: the README's test command
// (scripts/test.sh, through scripts/setup.sh) installs them.
func requireParts(t *testing.T) (kernel, busybox string) {
	t.Helper()
	k, err := FindKernel()
	if err == nil {
		busybox, err = FindBusybox()
	}
	if err != nil {
		t.Fatalf("the Linux guest cannot be built here: %v\n"+
			"Run scripts/setup.sh as root (scripts/test.sh does), or: apt-get install %s", err, Packages)
	}
	return k, busybox
}

func TestReadKernel(t *testing.T) {
	kpath, _ := requireParts(t)
	k, err := ReadKernel(kpath)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimPrefix(filepath.Base(kpath), "vmlinuz-"); k.Release != want {
		t.Errorf("release %q, want %q (from the file name)", k.Release, want)
	}
	if k.Protocol < minProtocol || k.SetupSectors < 2 || k.InitSize == 0 || k.InitrdAddrMax == 0 {
		t.Errorf("implausible header: %+v", k)
	}
	if end := k.decompressEnd(); end < loadPhysAddr+k.InitSize || end%(1<<20) != 0 {
		t.Errorf("decompressEnd %#x: want a MiB boundary above %#x", end, loadPhysAddr+k.InitSize)
	}

	if _, err := parseKernel(make([]byte, 4096)); err == nil {
		t.Error("zeros parsed as a kernel")
	}
	old := append([]byte(nil), k.image[:4096]...)
	old[hdrVersion], old[hdrVersion+1] = 0x04, 0x02
	if _, err := parseKernel(old); err == nil || !strings.Contains(err.Error(), "protocol") {
		t.Errorf("protocol 2.04 kernel: %v, want a protocol error", err)
	}
}

func TestFindKernel(t *testing.T) {
	dir := t.TempDir()
	boot, mods := filepath.Join(dir, "boot"), filepath.Join(dir, "modules")
	if _, err := findKernel(boot, mods); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "apt-get install") {
		t.Fatalf("no kernels: %v, want ErrMissing saying what to install", err)
	}
	for _, rel := range []string{"6.1.0-1-amd64", "6.1.0-2-amd64", "6.1.0-1-cloud-amd64", "6.9.9-nomods"} {
		touch(t, filepath.Join(boot, "vmlinuz-"+rel), "")
		if rel != "6.9.9-nomods" {
			touch(t, filepath.Join(mods, rel, "modules.dep"), "")
		}
	}
	got, err := findKernel(boot, mods)
	if err != nil || filepath.Base(got) != "vmlinuz-6.1.0-1-cloud-amd64" {
		t.Fatalf("findKernel = %q, %v; want the cloud kernel", got, err)
	}
	os.Remove(filepath.Join(boot, "vmlinuz-6.1.0-1-cloud-amd64"))
	if got, _ := findKernel(boot, mods); filepath.Base(got) != "vmlinuz-6.1.0-2-amd64" {
		t.Fatalf("findKernel = %q; want the newest with modules", got)
	}
}

func touch(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestModulePlan(t *testing.T) {
	dir := t.TempDir()
	touch(t, filepath.Join(dir, "modules.dep"), strings.Join([]string{
		"kernel/drivers/virtio/virtio.ko:",
		"kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/net/net_failover.ko:",
		"kernel/drivers/ata/ata_piix.ko: kernel/drivers/ata/libata.ko",
		"kernel/drivers/ata/libata.ko:",
		"kernel/drivers/block/xen-blkfront.ko:",
	}, "\n")+"\n")
	touch(t, filepath.Join(dir, "modules.builtin"), "kernel/drivers/block/virtio_blk.ko\n")
	ms, err := readModules(dir)
	if err != nil {
		t.Fatal(err)
	}
	lines, paths, err := ms.plan(moduleGroups)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"virtio kernel/drivers/virtio/virtio.ko required",
		"virtio kernel/drivers/virtio/virtio_ring.ko required",
		"virtio kernel/drivers/virtio/virtio_pci.ko required",
		"virtio kernel/drivers/net/net_failover.ko required",
		"virtio kernel/drivers/net/virtio_net.ko required",
		"ata kernel/drivers/ata/libata.ko",
		"ata kernel/drivers/ata/ata_piix.ko",
		"xen kernel/drivers/block/xen-blkfront.ko",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if len(paths) != len(want) {
		t.Errorf("%d paths for %d lines", len(paths), len(want))
	}

	touch(t, filepath.Join(dir, "modules.builtin"), "")
	ms, _ = readModules(dir)
	if _, _, err := ms.plan(moduleGroups); err == nil || !strings.Contains(err.Error(), "virtio_blk") {
		t.Errorf("missing required module: %v, want an error naming virtio_blk", err)
	}
	touch(t, filepath.Join(dir, "modules.dep"), "kernel/drivers/virtio/virtio_pci.ko.xz:\nkernel/drivers/block/virtio_blk.ko:\nkernel/drivers/net/virtio_net.ko:\n")
	ms, _ = readModules(dir)
	if _, _, err := ms.plan(moduleGroups); err == nil || !strings.Contains(err.Error(), "compressed") {
		t.Errorf("compressed module: %v, want an error saying so", err)
	}
}

func TestConfigRejects(t *testing.T) {
	for _, g := range []Guest{
		{Address: "10.99.0.2"}, {Address: "fe80::1/64"}, {Address: "10.0.0.1/24; reboot"},
		{Gateway: "10.0.0.1"}, {Address: "10.0.0.2/24", Gateway: "x"},
		{Host: "10.0.2.2"}, {Host: "example.com:80"}, {Host: "10.0.2.2:0"}, {Host: "10.0.2.2:70000"}, {Host: "10.0.2.2:1$(x)"},
		{Resolve: "a;reboot"}, {Resolve: "-x.example"}, {Resolve: "$(x).example"}, {Resolve: "a b"},
	} {
		if _, err := g.config(); err == nil {
			t.Errorf("config(%+v) accepted", g)
		}
	}
	c, err := Guest{Address: "10.99.0.2/24", Gateway: "10.99.0.1", Host: "10.99.0.1:7000", Resolve: "job-input.example"}.config()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"VMPOOL_ADDRESS=10.99.0.2/24\n", "VMPOOL_GATEWAY=10.99.0.1\n", "VMPOOL_HOST=10.99.0.1\nVMPOOL_PORT=7000\n", "VMPOOL_RESOLVE=job-input.example\n"} {
		if !strings.Contains(string(c), want) {
			t.Errorf("config lacks %q:\n%s", want, c)
		}
	}
}

// TestScriptsParse has busybox's own shell check the guest's scripts.
func TestScriptsParse(t *testing.T) {
	_, bb := requireParts(t)
	for _, name := range []string{"guest/rcS", "guest/udhcpc.sh"} {
		b, err := guestFiles.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bb, "sh", "-n")
		cmd.Stdin = bytes.NewReader(b)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: busybox sh -n: %v\n%s", name, err, out)
		}
	}
}

// TestInitramfs lists the archive with busybox cpio, a reader that is not
// ours, and checks the build is reproducible.
func TestInitramfs(t *testing.T) {
	kernel, bb := requireParts(t)
	g := Guest{Kernel: kernel, Busybox: bb, Host: "10.0.2.2:7000"}
	b1, err := g.build()
	if err != nil {
		t.Fatal(err)
	}
	b2, err := g.build()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.initramfs, b2.initramfs) {
		t.Error("two builds of the same guest differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(b1.initramfs))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bb, "cpio", "-t", "-v")
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("busybox cpio -t: %v\n%s", err, out)
	}
	list := string(out)
	for _, want := range []string{
		" init -> /bin/busybox", " bin/busybox\n", " sbin/poweroff -> ../bin/busybox", " etc/init.d/rcS\n",
		" etc/inittab\n", " etc/vmpool/config\n", " etc/vmpool/modules\n", "/virtio_net.ko\n", "crw-------",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("initramfs lacks %q:\n%s", want, list)
		}
	}
}

func TestParseReport(t *testing.T) {
	full := "report=1\nkernel=6.1\nnproc=2\nmemtotal_kib=90000\nphysmem_kib=130540\nnics=eth0 eth1\nmac=52:54:00:12:34:56\n" +
		"net=dhcp\naddr=10.0.2.15/24\ngateway=10.0.2.2\nreply=hi there\ndata=/dev/vda1\nerrors=\nuptime=7.5\nend=1\n"
	r, err := parseReport([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if r.CPUs != 2 || r.PhysMemKiB != 130540 || r.MAC != "52:54:00:12:34:56" || r.Reply != "hi there" ||
		len(r.NICs) != 2 || r.Uptime != 7.5 || r.Addr != "10.0.2.15/24" || r.Net != "dhcp" {
		t.Errorf("parsed %+v", r)
	}
	for _, bad := range []string{"", "report=1\nnproc=2\n", "nproc=2\nend=1\n"} {
		if _, err := parseReport([]byte(bad)); !errors.Is(err, ErrNoReport) {
			t.Errorf("parseReport(%q) = %v, want ErrNoReport", bad, err)
		}
	}
}

// TestReadReportLayouts writes both disk forms (without booting them) and
// checks ReadReport finds the data area in each and tells an untouched
// one from a written one.
func TestReadReportLayouts(t *testing.T) {
	kernel, bb := requireParts(t)
	dir := t.TempDir()
	g := Guest{Kernel: kernel, Busybox: bb}
	disk := filepath.Join(dir, "disk.img")
	l, err := g.WriteDisk(disk)
	if err != nil {
		t.Fatal(err)
	}
	if l.Data%dataAlign != 0 || l.Size != int64(l.Data+l.DataSectors)*sector || l.MinMemoryMiB < 16 {
		t.Errorf("layout %+v", l)
	}
	files, err := g.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	report := "report=1\nnproc=3\nend=1\n"
	for _, c := range []struct {
		path string
		lba  int64
	}{{disk, int64(l.Data) + 1}, {files.Disk, 1}} {
		if _, err := ReadReport(c.path); !errors.Is(err, ErrNoReport) {
			t.Errorf("%s before the guest ran: %v, want ErrNoReport", c.path, err)
		}
		f, err := os.OpenFile(c.path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(report), c.lba*sector); err != nil {
			t.Fatal(err)
		}
		f.Close()
		r, err := ReadReport(c.path)
		if err != nil || r.CPUs != 3 {
			t.Errorf("%s: ReadReport = %+v, %v", c.path, r, err)
		}
	}
	if _, err := ReadReport(files.Kernel); err == nil {
		t.Error("a kernel read as a guest disk")
	}
}
