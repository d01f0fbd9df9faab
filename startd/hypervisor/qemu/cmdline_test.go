package qemu

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

func touch(t *testing.T, path string, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPlanDisksErrors(t *testing.T) {
	dir := t.TempDir()
	img := touch(t, filepath.Join(dir, "a.img"), "")
	qcow := touch(t, filepath.Join(dir, "b.qcow2"), "QFI\xfb\x00\x00\x00\x03")
	tests := []struct {
		name  string
		disks []hypervisor.Disk
		code  string
	}{
		{"no disk", nil, "KVM_NO_DISK_PARAM"},
		{"relative path", []hypervisor.Disk{{Path: "a.img", Device: "hda"}}, "KVM_INVALID_DISK_PARAM"},
		{"missing file", []hypervisor.Disk{{Path: filepath.Join(dir, "nope.img"), Device: "hda"}}, "KVM_INVALID_DISK_PARAM"},
		{"directory", []hypervisor.Disk{{Path: dir, Device: "hda"}}, "KVM_INVALID_DISK_PARAM"},
		{"unknown device", []hypervisor.Disk{{Path: img, Device: "fd0"}}, "KVM_INVALID_DISK_PARAM"},
		{"option injection in device", []hypervisor.Disk{{Path: img, Device: "hda,if=none"}}, "KVM_INVALID_DISK_PARAM"},
		{"fifth ide disk", []hypervisor.Disk{{Path: img, Device: "hde"}}, "KVM_INVALID_DISK_PARAM"},
		{"seventh sata disk", []hypervisor.Disk{{Path: img, Device: "sdg"}}, "KVM_INVALID_DISK_PARAM"},
		{"device twice", []hypervisor.Disk{{Path: img, Device: "vda"}, {Path: img, Device: "xvda"}}, "KVM_INVALID_DISK_PARAM"},
		{"partitions of one disk", []hypervisor.Disk{{Path: img, Device: "sda1"}, {Path: img, Device: "sda2"}}, "KVM_INVALID_DISK_PARAM"},
		{"unknown format", []hypervisor.Disk{{Path: img, Device: "hda", Format: "raw,file.locking=off"}}, "KVM_INVALID_DISK_PARAM"},
		{"raw image given as qcow2", []hypervisor.Disk{{Path: img, Device: "hda", Format: "qcow2"}}, "KVM_INVALID_DISK_PARAM"},
		{"qcow2 image given as vmdk", []hypervisor.Disk{{Path: qcow, Device: "hda", Format: "vmdk"}}, "KVM_INVALID_DISK_PARAM"},
		{"raw image given as qed", []hypervisor.Disk{{Path: img, Device: "hda", Format: "QED"}}, "KVM_INVALID_DISK_PARAM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := planDisks(tt.disks)
			if !errors.Is(err, hypervisor.ErrBadSpec) {
				t.Fatalf("planDisks = %v, want ErrBadSpec", err)
			}
			var se *hypervisor.SpecError
			if !errors.As(err, &se) || se.Code != tt.code {
				t.Fatalf("planDisks = %v, want code %s", err, tt.code)
			}
		})
	}
}

func TestDiskArgs(t *testing.T) {
	dir := t.TempDir()
	raw := touch(t, filepath.Join(dir, "root.img"), "")
	qcow := touch(t, filepath.Join(dir, "data.qcow2"), "QFI\xfb\x00\x00\x00\x03")
	iso := touch(t, filepath.Join(dir, "cd.iso"), "")
	comma := touch(t, filepath.Join(dir, "a,b.img"), "")
	plans, err := planDisks([]hypervisor.Disk{
		{Path: raw, Device: "hda", Writable: true},
		{Path: iso, Device: "hdc"},
		{Path: qcow, Device: "vdb", Writable: true},
		{Path: raw, Device: "sdb", Writable: true},
		{Path: comma, Device: "xvdc1", Writable: false, Format: "raw"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(diskArgs(plans, true), " ")
	want := strings.Join([]string{
		"-drive file=" + raw + ",format=raw,if=none,id=disk0",
		"-device ide-hd,drive=disk0,bus=ide.0,unit=0,bootindex=0",
		"-drive file=" + iso + ",format=raw,if=none,id=disk1,media=cdrom,readonly=on",
		"-device ide-cd,drive=disk1,bus=ide.1,unit=0,bootindex=1",
		"-drive file=" + qcow + ",format=qcow2,if=none,id=disk2",
		"-device virtio-blk-pci,drive=disk2,bootindex=2",
		"-drive file=" + raw + ",format=raw,if=none,id=disk3",
		"-device ahci,id=ahci",
		"-device ide-hd,drive=disk3,bus=ahci.1,bootindex=3",
		"-drive file=" + filepath.Join(dir, "a,,b.img") + ",format=raw,if=none,id=disk4,readonly=on",
		"-device virtio-blk-pci,drive=disk4,bootindex=4",
	}, " ")
	if got != want {
		t.Fatalf("diskArgs:\n got %s\nwant %s", got, want)
	}
}

// TestCheckFormat: a format the job gives is taken when the file's header
// says so (raw takes anything), refused with the format found otherwise.
func TestCheckFormat(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		content, declared string
		ok                bool
		says              string
	}{
		{"\xfa\x31\xc0", "raw", true, ""},
		{"QFI\xfb\x00\x00\x00\x03", "raw", true, ""},
		{"QFI\xfb\x00\x00\x00\x03", "qcow2", true, ""},
		{"KDMV\x01", "vmdk", true, ""},
		{"# Disk DescriptorFile\nversion=1\n", "vmdk", true, ""},
		{"QED\x00", "qed", true, ""},
		{"\xfa\x31\xc0", "qcow2", false, "no qcow2 header (a raw image?)"},
		{"KDMV\x01", "qcow2", false, "the file is a vmdk image: give vmdk"},
		{"QFI\xfb\x00\x00\x00\x03", "vdi", false, "the file is a qcow2 image"},
		{"", "vhdx", false, "no vhdx header"},
	}
	for i, tt := range tests {
		p := touch(t, filepath.Join(dir, "img"+string(rune('a'+i))), tt.content)
		err := checkFormat(p, tt.declared)
		if tt.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.says) {
			t.Errorf("checkFormat(%q, %s) = %v, want ok %v saying %q", tt.content, tt.declared, err, tt.ok, tt.says)
		}
	}
}

// TestStartFailureBlame: a disk QEMU refuses is the job's fault (a
// SpecError), unless the refusal is an errno of the machine's about a file
// of the scratch directory (a transferred input, an overlay).
func TestStartFailureBlame(t *testing.T) {
	dir := t.TempDir()
	scratch := filepath.Join(dir, "dir_1")
	for _, tc := range []struct {
		said string
		job  bool
	}{
		{"qemu-system-x86_64: -drive file=/etc/shadow,format=raw,if=none,id=disk0,readonly=on: Could not open '/etc/shadow': Permission denied", true},
		{"qemu-system-x86_64: -drive file=" + scratch + "/hda.overlay.qcow2,format=qcow2,if=none,id=disk0: Could not open backing file: Could not open '/etc/shadow': Permission denied", true},
		{"qemu-system-x86_64: -drive file=" + scratch + "/disk.img,format=qcow2,if=none,id=disk0: Image is not in qcow2 format", true},
		{"qemu-system-x86_64: -drive file=" + scratch + "/disk.img,format=raw,if=none,id=disk0: Could not open '" + scratch + "/disk.img': Permission denied", false},
		{"qemu-system-x86_64: -drive file=" + scratch + "/a,,b.img,format=raw,if=none,id=disk0: Could not open '" + scratch + "/a,b.img': No space left on device", false},
		{"qemu-system-x86_64: -accel bogus: invalid accelerator bogus", false},
		// QEMU opens a drive read-only first and reopens it writable when
		// the guest's device takes it: then the message names the device.
		{"qemu-system-x86_64: -device ide-hd,drive=disk0,bus=ide.0,unit=0,bootindex=0: Could not open '/srv/shared/a.img': Permission denied", true},
		{"qemu-system-x86_64: -device virtio-blk-pci,drive=disk1: Could not open '/srv/shared/b.img': Permission denied", true},
		{"qemu-system-x86_64: -device ide-hd,drive=disk0,bus=ide.0,unit=0,bootindex=0: Could not open '" + scratch + "/disk.img': Permission denied", false},
		{"qemu-system-x86_64: -device e1000,netdev=net0: Bus 'pci.0' not found", false},
	} {
		log := touch(t, filepath.Join(dir, "qemu.log"), tc.said+"\n")
		err := startFailure(errors.New("qemu exited"), log, scratch)
		if errors.Is(err, hypervisor.ErrBadSpec) != tc.job || !strings.Contains(err.Error(), tc.said) {
			t.Errorf("startFailure(%q) = %v, want the job's fault: %v", tc.said, err, tc.job)
		}
	}
}

func TestSniffFormat(t *testing.T) {
	dir := t.TempDir()
	vdi := make([]byte, 72)
	copy(vdi[64:], "\x7f\x10\xda\xbe")
	tests := []struct {
		content, want string
	}{
		{"", "raw"},
		{"\xfa\x31\xc0", "raw"},
		{"QFI\xfb\x00\x00\x00\x03", "qcow2"},
		{"KDMV\x01", "vmdk"},
		{"vhdxfile", "vhdx"},
		{"conectix", "vpc"},
		{string(vdi), "vdi"},
	}
	for i, tt := range tests {
		p := touch(t, filepath.Join(dir, "img"+string(rune('a'+i))), tt.content)
		if got, err := sniffFormat(p); err != nil || got != tt.want {
			t.Errorf("sniffFormat(%q) = %q, %v; want %q", tt.content, got, err, tt.want)
		}
	}
}

func TestNetwork(t *testing.T) {
	tests := []struct {
		name string
		net  hypervisor.Network
		args []string
		bad  bool
	}{
		{"off", hypervisor.Network{}, []string{"-nic", "none"}, false},
		{"nat", hypervisor.Network{Enabled: true, Type: "nat", MAC: "52:54:00:aa:bb:cc"},
			[]string{"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile=,mac=52:54:00:aa:bb:cc"}, false},
		{"bridge", hypervisor.Network{Enabled: true, Type: "bridge", Bridge: "br0"},
			[]string{"-netdev", "tap,id=net0,fd=4", "-device", "virtio-net-pci,netdev=net0,romfile="}, false},
		{"bad mac", hypervisor.Network{Enabled: true, Type: "nat", MAC: "52:54:00:aa:bb:cc,x=y"}, nil, true},
		{"bad bridge", hypervisor.Network{Enabled: true, Type: "bridge", Bridge: "br0,helper=/bin/sh"}, nil, true},
		{"bad type", hypervisor.Network{Enabled: true, Type: "vde"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateNetwork(tt.net)
			if tt.bad {
				if !errors.Is(err, hypervisor.ErrBadSpec) {
					t.Fatalf("validateNetwork = %v, want ErrBadSpec", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := netArgs(tt.net, tapFD); !slices.Equal(got, tt.args) {
				t.Fatalf("netArgs = %q, want %q", got, tt.args)
			}
		})
	}
}

func TestLaunchArgs(t *testing.T) {
	l := launch{name: "job,1", accel: "tcg", machine: "pc", memoryMiB: 64, vcpus: 2, qmpFD: 3,
		pidfile: "/d/qemu.pid", serial: "/d,x/serial.log", incoming: true}
	got := strings.Join(l.args(), " ")
	for _, want := range []string{
		"-name guest=job,,1 ", "-machine pc,accel=tcg ", "-m 64 ", "-smp 2 ", "-S -no-shutdown",
		"-chardev socket,id=qmp,fd=3,server=on,wait=off -mon chardev=qmp,mode=control",
		"-pidfile /d/qemu.pid ", "path=/d,,x/serial.log", "-display none", "-nic none", "-incoming defer",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("command line lacks %q:\n%s", want, got)
		}
	}
	l.vnc = true
	if got := strings.Join(l.args(), " "); !strings.Contains(got, "-vnc 127.0.0.1:0,to=99 -device VGA") || strings.Contains(got, "-display none") {
		t.Errorf("VNC command line: %s", got)
	}
	// A kernel booted directly: -kernel, -initrd, -append, and disks
	// without a boot index (the kernel has index 0).
	root := filepath.Join(t.TempDir(), "root.img")
	if err := os.WriteFile(root, make([]byte, 512), 0o644); err != nil {
		t.Fatal(err)
	}
	plans, err := planDisks([]hypervisor.Disk{{Path: root, Device: "xvda", Writable: true, Format: "raw"}})
	if err != nil {
		t.Fatal(err)
	}
	l.disks = plans
	var kl launch
	if err := kernelBoot(hypervisor.Spec{Kernel: "/", Root: "/dev/xvda"}, &kl); err == nil {
		t.Error("a kernel that is a directory was accepted")
	}
	l.kernel, l.initrd, l.cmdline = "/d/vmlinuz", "/d/initrd.img", kernelCmdline(hypervisor.Spec{Root: "/dev/xvda", KernelParams: " console=ttyS0 quiet "})
	got = strings.Join(l.args(), " ")
	if !strings.Contains(got, "-kernel /d/vmlinuz -initrd /d/initrd.img -append root=/dev/xvda console=ttyS0 quiet") || strings.Contains(got, "bootindex") {
		t.Errorf("kernel boot command line: %s", got)
	}
}

func TestSocketPath(t *testing.T) {
	d := New(Config{RuntimeDir: t.TempDir()})
	short := t.TempDir()
	if p, err := d.socketPath(short, "vm"); err != nil || p != filepath.Join(short, socketFile) {
		t.Fatalf("short dir: %q, %v", p, err)
	}
	long := filepath.Join(short, strings.Repeat("d", 120))
	p, err := d.socketPath(long, "vm")
	if err != nil {
		t.Fatal(err)
	}
	if len(p) > maxSockPath || strings.HasPrefix(p, long) {
		t.Fatalf("long dir: socket %q", p)
	}
	if p2, _ := d.socketPath(long, "vm2"); p2 == p {
		t.Fatal("two VMs share a socket path")
	}
	fi, err := os.Stat(filepath.Dir(p))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("runtime dir: %v, %v", fi, err)
	}
	// A runtime dir anyone can write to is refused.
	os.Chmod(filepath.Dir(p), 0o777)
	if _, err := d.socketPath(long, "vm"); err == nil {
		t.Fatal("socketPath accepted a world-writable runtime dir")
	}
}

func TestParseVersion(t *testing.T) {
	tests := map[string]string{
		"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b2)\nCopyright": "QEMU 7.2.22",
		"QEMU emulator version 9.1.0\n":                                             "QEMU 9.1.0",
		"something else":                                                            "something else",
	}
	for in, want := range tests {
		if got := parseVersion(in); got != want {
			t.Errorf("parseVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCopyFileKeepsHoles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	const size = 16 << 20
	f.WriteAt([]byte("head"), 0)
	f.WriteAt([]byte("middle"), 8<<20)
	f.Truncate(size)
	f.Close()
	dst := filepath.Join(dir, "dst.img")
	touch(t, dst, "old content")
	if err := copyFile(dst, src); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(dst)
	if !bytes.Equal(a, b) {
		t.Fatal("copy differs from source")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dst, &st); err != nil || st.Blocks*512 > 1<<20 {
		t.Fatalf("copy of a 16 MiB sparse file uses %d bytes (%v)", st.Blocks*512, err)
	}
	if err := copyFile(src, src); err != nil {
		t.Fatalf("copy onto itself: %v", err)
	}
	if c, _ := os.ReadFile(src); !bytes.Equal(a, c) {
		t.Fatal("copy onto itself changed the file")
	}
}
