package submit

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtures builds a submit directory root/job with the files the tests
// name, and a sibling root/outside that job files may not reach. It
// returns the job directory.
func fixtures(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	job := filepath.Join(root, "job")
	files := map[string]int{
		"job/disk.img":                 3000,
		"job/data.img":                 1000,
		"job/data.iso":                 10,
		"job/vmlinuz":                  2048,
		"job/initrd.img":               1024,
		"job/sub/disk.img":             5,
		"job/vmware/guest.vmx":         100,
		"job/vmware/disk.vmdk":         4096,
		"job/vmware/disk-s001.vmdk":    4096,
		"job/vmware/notes.txt":         1,
		"job/vmware2/a.vmx":            1,
		"job/vmware2/b.vmx":            1,
		"job/vmware-empty/readme.txt":  1,
		"job/images/a.img":             1,
		"job/images/b.img":             1,
		"job/images/c.qcow2":           1,
		"job/images/more/d.img":        1,
		"outside/secret.img":           7,
		"outside/vmware/outside.vmx":   1,
		"job/items.txt":                0,
		"job/adir/placeholder":         0,
		"job/logs/placeholder":         0,
		"job/other/placeholder":        0,
		"job/other/disk.img":           10,
		"job/vmware-dangling/keep.vmx": 1,
	}
	for name, size := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(job, "items.txt"), []byte("# disk memory\ndisk.img 512\n\ndata.img 1024\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// qcow2 images over a backing file (as qemu-img create -b makes them):
	// the header's backing file name at offset 512.
	for name, backing := range map[string]string{
		"job/over.qcow2": "base.img", "job/chain.qcow2": "over.qcow2",
		"job/deep.qcow2": "../outside/secret.img", "job/shared.qcow2": "/srv/images/base.img",
	} {
		h := make([]byte, 1024)
		copy(h, "QFI\xfb\x00\x00\x00\x03")
		binary.BigEndian.PutUint64(h[8:], 512)
		binary.BigEndian.PutUint32(h[16:], uint32(len(backing)))
		copy(h[512:], backing)
		if err := os.WriteFile(filepath.Join(root, name), h, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(job, "base.img"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"job/escape.img":     "../outside/secret.img",
		"job/inside.img":     "disk.img",
		"job/vmware-link":    "vmware",
		"job/vmware-outside": "../outside/vmware",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Skipf("symbolic links unavailable: %v", err)
		}
	}
	if err := mkfifo(filepath.Join(job, "fifo.img")); err != nil {
		t.Logf("no fifo: %v", err)
	}
	return job
}

// kvmBase is a valid kvm description, one command a line, queue last (line 7).
var kvmBase = []string{
	"universe = vm",
	"executable = hello_vm_job",
	"vm_type = kvm",
	"vm_memory = 512",
	"vm_disk = disk.img:vda:w:qcow2",
	"transfer_input_files = disk.img",
	"queue",
}

// edit derives a description from base. "cmd = v" replaces the line of
// that command (or the queue line), keeping line numbers; "!cmd" comments
// the line out; other lines are inserted before the last queue statement.
func edit(base []string, changes ...string) string {
	lines := append([]string(nil), base...)
	fromBase := make([]bool, len(lines)) // only base lines are replaced
	for i := range fromBase {
		fromBase[i] = true
	}
	key := func(l string) string {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(strings.ToLower(l), "queue") {
			return "queue"
		}
		n, _, _ := strings.Cut(l, "=")
		return strings.ToLower(strings.TrimSpace(n))
	}
	for _, c := range changes {
		if strings.HasPrefix(c, "!") {
			for i, l := range lines {
				if key(l) == strings.ToLower(c[1:]) {
					lines[i] = "# removed " + c[1:]
				}
			}
			continue
		}
		replaced := false
		if k := key(c); k != "" && !strings.HasPrefix(c, "+") {
			for i, l := range lines {
				if fromBase[i] && key(l) == k {
					lines[i] = c
					replaced = true
					break
				}
			}
		}
		if !replaced {
			q := len(lines)
			for i := len(lines) - 1; i >= 0; i-- {
				if key(lines[i]) == "queue" {
					q = i
					break
				}
			}
			lines = append(lines[:q], append([]string{c}, lines[q:]...)...)
			fromBase = append(fromBase[:q], append([]bool{false}, fromBase[q:]...)...)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// parse parses src as job/test.sub.
func parse(t testing.TB, dir, src string, opt Options) (*Cluster, error) {
	t.Helper()
	if opt.Getenv == nil {
		opt.Getenv = func(n string) (string, bool) {
			if n == "VMPOOL_TEST_HOME" {
				return "/home/test", true
			}
			return "", false
		}
	}
	if opt.Arch == "" {
		opt.Arch = "X86_64"
	}
	path := filepath.Join(dir, "test.sub")
	return Parse(path, strings.NewReader(src), opt)
}

func mustParse(t testing.TB, dir, src string, opt Options) *Cluster {
	t.Helper()
	c, err := parse(t, dir, src, opt)
	if err != nil {
		t.Fatalf("parse:\n%s\nerror: %v", src, err)
	}
	return c
}

// attr returns the value of a cluster attribute, or "" if absent.
func attr(c *Cluster, name string) string {
	for _, a := range c.Attrs {
		if strings.EqualFold(a.Name, name) {
			return a.Expr
		}
	}
	return ""
}

// procAttr returns the value of name for proc i, looking in the proc's
// differences first.
func procAttr(c *Cluster, i int, name string) string {
	for _, a := range c.Procs[i].Attrs {
		if strings.EqualFold(a.Name, name) {
			return a.Expr
		}
	}
	return attr(c, name)
}

func firstError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

func hasCode(err error, code string) *Error {
	var es Errors
	if errors.As(err, &es) {
		for _, e := range es {
			if e.Code == code {
				return e
			}
		}
	}
	return nil
}
