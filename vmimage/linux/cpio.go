package linux

import (
	"fmt"
	"io"
	"path"
	"strings"
)

// cpioWriter writes a cpio archive in the "newc" format the kernel unpacks
// into its initramfs (Documentation/driver-api/early-userspace/buffer-format.rst):
// a 110-byte ASCII header per entry, the name, and the data, each padded
// to 4 bytes; then the TRAILER!!! entry. Entries get inode numbers in
// order and time 0, so the same input always gives the same bytes.
type cpioWriter struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

// File modes (the S_IF* bits of the mode field).
const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	modeChar    = 0o020000
)

func newCPIO(w io.Writer) *cpioWriter { return &cpioWriter{w: w, dirs: map[string]bool{}} }

func (c *cpioWriter) entry(name string, mode uint32, data []byte, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if name == "" || name == "." {
		c.err = fmt.Errorf("cpio: empty entry name")
		return
	}
	if mode&0o170000 != modeDir {
		c.mkdirAll(path.Dir(name))
	}
	c.ino++
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad(len(hdr) + len(name) + 1)
	c.write(data)
	c.pad(len(data))
}

func (c *cpioWriter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// mkdirAll adds the directories leading to dir that are not there yet.
func (c *cpioWriter) mkdirAll(dir string) {
	if dir == "." || dir == "/" || dir == "" || c.dirs[dir] {
		return
	}
	c.mkdirAll(path.Dir(dir))
	c.dirs[dir] = true
	c.entry(dir, modeDir|0o755, nil, 0, 0)
}

// dir adds a directory (and its parents).
func (c *cpioWriter) dir(name string) { c.mkdirAll(strings.TrimPrefix(path.Clean("/"+name), "/")) }

// file adds a regular file with permission bits perm.
func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	c.entry(name, modeFile|perm&0o7777, data, 0, 0)
}

// symlink adds name pointing at target.
func (c *cpioWriter) symlink(name, target string) {
	c.entry(name, modeSymlink|0o777, []byte(target), 0, 0)
}

// charDev adds a character device node.
func (c *cpioWriter) charDev(name string, perm, major, minor uint32) {
	c.entry(name, modeChar|perm&0o7777, nil, major, minor)
}

// close writes the trailer; the underlying writer stays open.
func (c *cpioWriter) close() error {
	if c.err != nil {
		return c.err
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, len("TRAILER!!!")+1, 0)
	c.write([]byte(hdr + "TRAILER!!!\x00"))
	c.pad(len(hdr) + len("TRAILER!!!") + 1)
	return c.err
}
