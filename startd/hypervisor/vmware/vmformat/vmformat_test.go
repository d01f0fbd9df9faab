package vmformat

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestVMX(t *testing.T) {
	src := `.encoding = "UTF-8"
# a comment stays
memsize = "512"
MemSize = "1024"
displayName = "a |22quoted|22 name"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "disk.vmdk"
ide1:0.present = "TRUE"
ide1:0.deviceType = "cdrom-image"
ide1:0.fileName = "os.iso"
ide1:1.present = "TRUE"
ide1:1.deviceType = "atapi-cdrom"
ide1:1.fileName = "/dev/sr0"
scsi0:1.present = "FALSE"
scsi0:1.fileName = "off.vmdk"
`
	v, err := ParseVMX([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := v.Get("displayname"); got != `a "quoted" name` {
		t.Errorf("displayName = %q", got)
	}
	v.Set("MEMSIZE", "16")
	out := string(v.Bytes())
	if strings.Count(strings.ToLower(out), "memsize") != 1 || !strings.Contains(out, `memsize = "16"`) || !strings.Contains(out, "# a comment stays") {
		t.Errorf("after Set:\n%s", out)
	}
	if !strings.Contains(out, `displayName = "a |22quoted|22 name"`) {
		t.Errorf("escapes not kept:\n%s", out)
	}
	var nodes []string
	for _, d := range v.Disks() {
		nodes = append(nodes, d.Node+"="+d.File)
	}
	if strings.Join(nodes, " ") != "scsi0:0=disk.vmdk ide1:0=os.iso" {
		t.Errorf("Disks = %v", nodes)
	}
	for _, bad := range []string{"memsize\n", "= \"x\"\n", "a b = \"c\"\n", "x = \"unterminated\n", "x = two words\n"} {
		var se *SyntaxError
		if _, err := ParseVMX([]byte(bad)); !errors.As(err, &se) {
			t.Errorf("ParseVMX(%q) = %v, want a SyntaxError", bad, err)
		}
	}
}

func TestVMDK(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "d-flat.vmdk"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	desc := filepath.Join(dir, "d.vmdk")
	if err := WriteFlatDescriptor(desc, "d-flat.vmdk", 1<<20, ""); err != nil {
		t.Fatal(err)
	}
	// QEMU pads the descriptor with NULs when it rewrites it.
	f, _ := os.OpenFile(desc, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(make([]byte, 300))
	f.Close()
	d, err := ReadVMDK(desc)
	if err != nil {
		t.Fatal(err)
	}
	if ext, ok := d.FlatExtent(); !ok || ext != filepath.Join(dir, "d-flat.vmdk") || d.Size() != 1<<20 {
		t.Errorf("descriptor %+v: flat extent %q %v", d, ext, ok)
	}
	if _, err := ReadVMDK(filepath.Join(dir, "d-flat.vmdk")); !errors.Is(err, ErrNotVMDK) {
		t.Errorf("a raw extent read as a descriptor: %v", err)
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skipf("qemu-img not installed: %v", err)
	}
	// A sparse delta on the flat disk, as VMware makes snapshots.
	cmd := exec.Command("qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicSparse", "-b", "d.vmdk", "-F", "vmdk", "delta.vmdk")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	chain, err := Chain(filepath.Join(dir, "delta.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 || !chain[0].Embedded || chain[0].ParentHint != "d.vmdk" || chain[1].Path != desc {
		t.Fatalf("chain %+v", chain)
	}
	if _, ok := chain[0].FlatExtent(); ok {
		t.Error("a sparse delta taken for a flat disk")
	}
	os.Remove(filepath.Join(dir, "d-flat.vmdk"))
	if _, err := Chain(filepath.Join(dir, "delta.vmdk")); err == nil {
		t.Error("Chain ignores a missing extent of the parent")
	}
}
