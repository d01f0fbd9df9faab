package vmrunemu

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmpool/vmpool/startd/hypervisor/vmware/vmformat"
)

// vm writes a VM with one 1 MiB flat disk whose second sector holds fill.
func vm(t *testing.T, fill byte) (dir, vmx string) {
	t.Helper()
	dir = t.TempDir()
	ext := make([]byte, 1<<20)
	for i := 512; i < 1024; i++ {
		ext[i] = fill
	}
	if err := os.WriteFile(filepath.Join(dir, "d-flat.vmdk"), ext, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := vmformat.WriteFlatDescriptor(filepath.Join(dir, "d.vmdk"), "d-flat.vmdk", 1<<20, ""); err != nil {
		t.Fatal(err)
	}
	vmx = filepath.Join(dir, "vm.vmx")
	if err := os.WriteFile(vmx, vmformat.NewVMX("vm", 16, []vmformat.DiskNode{{Node: "scsi0:0", File: "d.vmdk"}}).Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, vmx
}

func run(t *testing.T, state string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code := Main(context.Background(), args, Options{StateDir: state, Stdout: &out, Stderr: &out})
	return out.String(), code
}

func sector(t *testing.T, path string) byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b[512]
}

func setSector(t *testing.T, path string, v byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{v}, 512), 512); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshots: snapshot, revert and delete (consolidate) on a
// powered-off VM, as the vmware driver uses them.
func TestSnapshots(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skipf("qemu-img not installed: %v", err)
	}
	state := t.TempDir()
	dir, vmx := vm(t, 0xA1)
	if out, code := run(t, state, "-T", "ws", "snapshot", vmx, "first"); code != 0 {
		t.Fatalf("snapshot: %d %s", code, out)
	}
	v, _ := vmformat.ParseVMX(must(os.ReadFile(vmx)))
	if f, _ := v.Get("scsi0:0.fileName"); f != "d-000001.vmdk" {
		t.Fatalf("after the snapshot the VM's disk is %q", f)
	}
	if out, _ := run(t, state, "listSnapshots", vmx); out != "Total snapshots: 1\nfirst\n" {
		t.Fatalf("listSnapshots: %q", out)
	}
	if out, code := run(t, state, "snapshot", vmx, "first"); code != exitError || !strings.Contains(out, "already exists") {
		t.Fatalf("second snapshot of the same name: %d %s", code, out)
	}
	delta := filepath.Join(dir, "d-000001-flat.vmdk")
	// "The guest" writes the snapshot; a revert throws that away.
	setSector(t, delta, 0xB2)
	if out, code := run(t, state, "revertToSnapshot", vmx, "first"); code != 0 {
		t.Fatalf("revert: %d %s", code, out)
	}
	if got := sector(t, delta); got != 0xA1 {
		t.Fatalf("after the revert the snapshot holds %#x", got)
	}
	// A delete consolidates: the write reaches the original disk.
	setSector(t, delta, 0xC3)
	if got := sector(t, filepath.Join(dir, "d-flat.vmdk")); got != 0xA1 {
		t.Fatalf("the original disk changed under a snapshot: %#x", got)
	}
	if out, code := run(t, state, "deleteSnapshot", vmx, "first"); code != 0 {
		t.Fatalf("deleteSnapshot: %d %s", code, out)
	}
	if got := sector(t, filepath.Join(dir, "d-flat.vmdk")); got != 0xC3 {
		t.Fatalf("after deleteSnapshot the disk holds %#x, want the snapshot's write", got)
	}
	v, _ = vmformat.ParseVMX(must(os.ReadFile(vmx)))
	if f, _ := v.Get("scsi0:0.fileName"); f != "d.vmdk" {
		t.Fatalf("after deleteSnapshot the VM's disk is %q", f)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*-0000*"))
	if vmsd, err := os.Stat(filepath.Join(dir, "vm.vmsd")); len(left) > 0 || err == nil {
		t.Fatalf("snapshot files left: %v %v", left, vmsd)
	}
	if out, code := run(t, state, "deleteSnapshot", vmx, "first"); code != exitError || !strings.Contains(out, "does not exist") {
		t.Fatalf("deleting a deleted snapshot: %d %s", code, out)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestRejects: what VMware refuses, refused with vmrun's kind of error,
// before any guest runs.
func TestRejects(t *testing.T) {
	state := t.TempDir()
	_, good := vm(t, 0)
	bad := func(edit func(v *vmformat.VMX)) string {
		dir, vmx := vm(t, 0)
		v, _ := vmformat.ParseVMX(must(os.ReadFile(vmx)))
		edit(v)
		os.WriteFile(vmx, v.Bytes(), 0o644)
		_ = dir
		return vmx
	}
	syntax := filepath.Join(t.TempDir(), "s.vmx")
	os.WriteFile(syntax, []byte("memsize = \"16\nx\n"), 0o644)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no such vm", []string{"start", "/nowhere/x.vmx", "nogui"}, "Error: Cannot open VM: /nowhere/x.vmx, The virtual machine cannot be found"},
		{"syntax", []string{"start", syntax, "nogui"}, "syntax error in line 1"},
		{"bad gui argument", []string{"start", good, "headless"}, "Invalid argument"},
		{"memory", []string{"start", bad(func(v *vmformat.VMX) { v.Set("memsize", "18") }), "nogui"}, "multiple of 4 MB"},
		{"missing disk", []string{"start", bad(func(v *vmformat.VMX) { v.Set("scsi0:0.fileName", "gone.vmdk") }), "nogui"},
			"Cannot open the disk '"},
		{"static mac out of range", []string{"start", bad(func(v *vmformat.VMX) {
			v.Set("ethernet0.present", "TRUE")
			v.Set("ethernet0.addressType", "static")
			v.Set("ethernet0.address", "52:54:00:00:00:01")
		}), "nogui"}, "Invalid MAC address"},
		{"stop a stopped vm", []string{"stop", good, "hard"}, "The virtual machine is not powered on"},
		{"suspend a stopped vm", []string{"suspend", good}, "The virtual machine is not powered on"},
		{"unknown command", []string{"clone", good}, "Unrecognized command: clone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := run(t, state, tc.args...)
			if code != exitError || !strings.Contains(out, tc.want) {
				t.Fatalf("vmrun %s = %d %q, want %q", strings.Join(tc.args, " "), code, out, tc.want)
			}
		})
	}
	if out, code := run(t, state, "list"); code != 0 || out != "Total running VMs: 0\n" {
		t.Fatalf("list = %d %q", code, out)
	}
	if out, code := run(t, state); code != exitError || !strings.Contains(out, Version) {
		t.Fatalf("vmrun without a command = %d %q", code, out)
	}
}
