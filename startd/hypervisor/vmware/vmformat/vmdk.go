package vmformat

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Descriptor is a virtual disk's descriptor: from a text .vmdk, or the one
// a monolithicSparse .vmdk embeds.
type Descriptor struct {
	Path       string // the .vmdk it was read from
	Embedded   bool   // a sparse disk holding its own descriptor (and data)
	CreateType string // monolithicFlat, monolithicSparse, twoGbMaxExtentFlat, vmfs, ...
	CID        string
	ParentCID  string
	ParentHint string // parentFileNameHint: the parent of a snapshot (delta) disk
	Extents    []Extent
}

// Extent is one line of a descriptor's extent description.
type Extent struct {
	Access  string // RW, RDONLY, NOACCESS
	Sectors int64
	Type    string // FLAT, SPARSE, ZERO, VMFS, ...
	File    string // relative to the descriptor's dir, or absolute
	Offset  int64
}

// ErrNotVMDK is returned for a file that is not a virtual disk.
var ErrNotVMDK = errors.New("not a virtual disk")

// sparseMagic starts a hosted sparse extent ("KDMV").
const sparseMagic = 0x564d444b

// ReadVMDK reads the descriptor of the .vmdk at path.
func ReadVMDK(path string) (*Descriptor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hdr [512]byte
	n, err := io.ReadFull(f, hdr[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if n >= 4 && binary.LittleEndian.Uint32(hdr[:4]) == sparseMagic {
		if n < 512 {
			return nil, fmt.Errorf("%s: %w: short sparse header", path, ErrNotVMDK)
		}
		off := int64(binary.LittleEndian.Uint64(hdr[28:36])) * 512
		size := int64(binary.LittleEndian.Uint64(hdr[36:44])) * 512
		if off <= 0 || size <= 0 || size > 1<<20 {
			return nil, fmt.Errorf("%s: %w: sparse disk without an embedded descriptor", path, ErrNotVMDK)
		}
		buf := make([]byte, size)
		if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if i := strings.IndexByte(string(buf), 0); i >= 0 {
			buf = buf[:i]
		}
		d, err := parseDescriptor(path, string(buf))
		if err != nil {
			return nil, err
		}
		d.Embedded = true
		return d, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > 1<<20 {
		return nil, fmt.Errorf("%s: %w: no sparse header, and too big for a descriptor", path, ErrNotVMDK)
	}
	b, err := io.ReadAll(io.NewSectionReader(f, 0, fi.Size()))
	if err != nil {
		return nil, err
	}
	// Writers pad a descriptor with NULs (QEMU rewrites it in place).
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return parseDescriptor(path, string(b))
}

func parseDescriptor(path, text string) (*Descriptor, error) {
	d := &Descriptor{Path: path}
	sc := bufio.NewScanner(strings.NewReader(text))
	seenVersion := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && !strings.ContainsAny(strings.TrimSpace(k), " \t") {
			k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
			switch strings.ToLower(k) {
			case "version":
				seenVersion = true
			case "cid":
				d.CID = v
			case "parentcid":
				d.ParentCID = v
			case "createtype":
				d.CreateType = v
			case "parentfilenamehint":
				d.ParentHint = v
			}
			continue
		}
		e, err := parseExtent(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %v", path, ErrNotVMDK, err)
		}
		d.Extents = append(d.Extents, e)
	}
	if !seenVersion || d.CreateType == "" {
		return nil, fmt.Errorf("%s: %w: no version or createType line", path, ErrNotVMDK)
	}
	if len(d.Extents) == 0 {
		return nil, fmt.Errorf("%s: %w: no extents", path, ErrNotVMDK)
	}
	return d, nil
}

// parseExtent reads `RW 2048 FLAT "disk-flat.vmdk" 0`.
func parseExtent(line string) (Extent, error) {
	var e Extent
	q1 := strings.IndexByte(line, '"')
	q2 := strings.LastIndexByte(line, '"')
	if q1 < 0 || q2 <= q1 {
		return e, fmt.Errorf("extent line %q names no file", line)
	}
	head := strings.Fields(line[:q1])
	if len(head) != 3 {
		return e, fmt.Errorf("extent line %q: want ACCESS SECTORS TYPE \"FILE\"", line)
	}
	e.Access, e.Type, e.File = head[0], head[2], line[q1+1:q2]
	n, err := strconv.ParseInt(head[1], 10, 64)
	if err != nil || n < 0 {
		return e, fmt.Errorf("extent line %q: bad size", line)
	}
	e.Sectors = n
	if tail := strings.Fields(line[q2+1:]); len(tail) > 0 {
		if e.Offset, err = strconv.ParseInt(tail[0], 10, 64); err != nil {
			return e, fmt.Errorf("extent line %q: bad offset", line)
		}
	}
	return e, nil
}

// Resolve makes a file name from a descriptor (an extent or parent hint)
// a path: relative names are relative to the descriptor's directory.
func (d *Descriptor) Resolve(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(filepath.Dir(d.Path), name)
}

// Files are the files of this disk, not of its parents: the descriptor
// and its extents (one file for an embedded descriptor).
func (d *Descriptor) Files() []string {
	out := []string{d.Path}
	if d.Embedded {
		return out
	}
	for _, e := range d.Extents {
		if e.Type == "ZERO" {
			continue
		}
		if p := d.Resolve(e.File); p != d.Path {
			out = append(out, p)
		}
	}
	return out
}

// Chain reads the disk at path and its parents, child first; every file
// must exist. depth bounds a cycle.
func Chain(path string) ([]*Descriptor, error) {
	var out []*Descriptor
	for i := 0; i < 32; i++ {
		d, err := ReadVMDK(path)
		if err != nil {
			return nil, err
		}
		for _, f := range d.Files() {
			if _, err := os.Stat(f); err != nil {
				return nil, err
			}
		}
		out = append(out, d)
		if d.ParentHint == "" {
			return out, nil
		}
		path = d.Resolve(d.ParentHint)
	}
	return nil, fmt.Errorf("%s: snapshot chain longer than 32 disks", out[0].Path)
}

// WriteFlatDescriptor writes a monolithicFlat descriptor at path for the
// raw extent file extent (a name relative to path's directory) of size
// bytes, a multiple of 512: the simplest .vmdk that VMware (and QEMU)
// open, whose data stays a plain raw image.
func WriteFlatDescriptor(path, extent string, size int64, adapter string) error {
	if size <= 0 || size%512 != 0 {
		return fmt.Errorf("write vmdk descriptor %s: size %d is not a positive multiple of 512", path, size)
	}
	if adapter == "" {
		adapter = "lsilogic"
	}
	sectors := size / 512
	heads, spt := int64(255), int64(63)
	if sectors < 4*1024*1024 {
		heads = 16
	}
	cyl := max(sectors/(heads*spt), 1)
	text := fmt.Sprintf(`# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW %d FLAT "%s" 0

# The Disk Data Base
#DDB

ddb.virtualHWVersion = "4"
ddb.geometry.cylinders = "%d"
ddb.geometry.heads = "%d"
ddb.geometry.sectors = "%d"
ddb.adapterType = "%s"
`, sectors, extent, cyl, heads, spt, adapter)
	return os.WriteFile(path, []byte(text), 0o644)
}

// FlatExtent returns the file of a disk made of one flat extent covering
// it from offset 0 (monolithicFlat, or a VMFS flat disk) and no parent:
// a raw image in all but name.
func (d *Descriptor) FlatExtent() (string, bool) {
	if d.Embedded || d.ParentHint != "" || len(d.Extents) != 1 {
		return "", false
	}
	e := d.Extents[0]
	if (e.Type != "FLAT" && e.Type != "VMFS") || e.Offset != 0 {
		return "", false
	}
	return d.Resolve(e.File), true
}

// Size is the disk's size in bytes: the sum of its extents.
func (d *Descriptor) Size() int64 {
	var n int64
	for _, e := range d.Extents {
		n += e.Sectors * 512
	}
	return n
}
