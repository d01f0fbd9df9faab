package vmrunemu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmpool/vmpool/startd/hypervisor/vmware/vmformat"
)

// A VM's snapshots are listed in its .vmsd (the .vmx's syntax), as
// VMware's are:
//
//	snapshot.lastUID = "2"        snapshot.current = "2"      snapshot.numSnapshots = "2"
//	snapshot0.uid = "1"           snapshot0.displayName = "before"
//	snapshot0.filename = "vm-Snapshot1.vmsn"
//	snapshot0.numDisks = "1"      snapshot0.disk0.node = "scsi0:0"
//	snapshot0.disk0.fileName = "disk.vmdk"   (the disk as it was: the delta's parent)
//	snapshot1.uid = "2"           snapshot1.parent = "1"  ...
type snapshot struct {
	UID, Parent int
	Name, File  string
	Disks       []snapDisk
}

type snapDisk struct{ Node, File string }

type snapshotDB struct {
	path    string
	lastUID int
	current int
	snaps   []snapshot
}

func vmsdPath(vmx string) string { return strings.TrimSuffix(vmx, filepath.Ext(vmx)) + ".vmsd" }

func readSnapshots(vmx string) (*snapshotDB, error) {
	db := &snapshotDB{path: vmsdPath(vmx)}
	b, err := os.ReadFile(db.path)
	if os.IsNotExist(err) {
		return db, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := vmformat.ParseVMX(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", db.path, err)
	}
	num := func(k string) int {
		s, _ := v.Get(k)
		n, _ := strconv.Atoi(s)
		return n
	}
	db.lastUID, db.current = num("snapshot.lastUID"), num("snapshot.current")
	for i := 0; i < num("snapshot.numSnapshots"); i++ {
		p := fmt.Sprintf("snapshot%d.", i)
		s := snapshot{UID: num(p + "uid"), Parent: num(p + "parent")}
		s.Name, _ = v.Get(p + "displayName")
		s.File, _ = v.Get(p + "filename")
		for j := 0; j < num(p+"numDisks"); j++ {
			var d snapDisk
			d.Node, _ = v.Get(fmt.Sprintf("%sdisk%d.node", p, j))
			d.File, _ = v.Get(fmt.Sprintf("%sdisk%d.fileName", p, j))
			s.Disks = append(s.Disks, d)
		}
		db.snaps = append(db.snaps, s)
	}
	return db, nil
}

func (db *snapshotDB) write() error {
	v := &vmformat.VMX{}
	v.Set(".encoding", "UTF-8")
	v.Set("snapshot.lastUID", strconv.Itoa(db.lastUID))
	v.Set("snapshot.current", strconv.Itoa(db.current))
	v.Set("snapshot.numSnapshots", strconv.Itoa(len(db.snaps)))
	for i, s := range db.snaps {
		p := fmt.Sprintf("snapshot%d.", i)
		v.Set(p+"uid", strconv.Itoa(s.UID))
		if s.Parent != 0 {
			v.Set(p+"parent", strconv.Itoa(s.Parent))
		}
		v.Set(p+"filename", s.File)
		v.Set(p+"displayName", s.Name)
		v.Set(p+"numDisks", strconv.Itoa(len(s.Disks)))
		for j, d := range s.Disks {
			v.Set(fmt.Sprintf("%sdisk%d.fileName", p, j), d.File)
			v.Set(fmt.Sprintf("%sdisk%d.node", p, j), d.Node)
		}
	}
	tmp := db.path + ".tmp"
	if err := os.WriteFile(tmp, v.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, db.path)
}

// find returns the index of the snapshot named name, or -1.
func (db *snapshotDB) find(name string) int {
	for i, s := range db.snaps {
		if s.Name == name {
			return i
		}
	}
	return -1
}

var deltaSuffix = regexp.MustCompile(`-[0-9]{6}$`)

// deltaName picks the name of a new snapshot disk of the disk file cur (as
// the .vmx names it), in the VM's directory dir: <disk>-000001.vmdk, the
// next number free, as VMware names its deltas.
func deltaName(dir, cur string) string {
	stem := deltaSuffix.ReplaceAllString(strings.TrimSuffix(filepath.Base(cur), filepath.Ext(cur)), "")
	for n := 1; ; n++ {
		name := fmt.Sprintf("%s-%06d.vmdk", stem, n)
		if _, err := os.Lstat(filepath.Join(dir, name)); os.IsNotExist(err) {
			return name
		}
	}
}

// extentOf names the flat extent of the emulator's snapshot disk delta.
func extentOf(delta string) string { return strings.TrimSuffix(delta, ".vmdk") + "-flat.vmdk" }

// qemuImg runs qemu-img in dir.
func (r *vmrun) qemuImg(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, r.o.QEMUImg, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("qemu-img %s: %w: %s", args[0], err, strings.TrimSpace(out.String()))
	}
	return nil
}

// writeDelta writes the emulator's snapshot disk: a monolithicFlat disk
// named delta (in dir) whose extent holds the content of the disk src.
// VMware's deltas are sparse and hold only what changed; the emulator's
// are whole (sparse) copies, because QEMU cannot save a VM whose disks it
// opens through its vmdk driver, and a flat disk it opens as raw.
func (r *vmrun) writeDelta(ctx context.Context, dir, src, delta string) error {
	path := src
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, src)
	}
	d, err := vmformat.ReadVMDK(path)
	if err != nil {
		return err
	}
	extent := extentOf(delta)
	if err := r.qemuImg(ctx, dir, "convert", "-q", "-f", "vmdk", "-O", "raw", src, extent+".tmp"); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, extent+".tmp"), filepath.Join(dir, extent)); err != nil {
		return err
	}
	return vmformat.WriteFlatDescriptor(filepath.Join(dir, delta), extent, d.Size(), "")
}

// snapshotDisks are the disks a snapshot covers: not CD-ROMs, not
// independent disks (which VMware leaves out of snapshots).
func snapshotDisks(v *vmformat.VMX) []vmformat.DiskNode {
	var out []vmformat.DiskNode
	for _, n := range v.Disks() {
		if n.CDROM() || strings.HasPrefix(n.Mode, "independent") {
			continue
		}
		out = append(out, n)
	}
	return out
}

// offVM loads a .vmx whose VM must be powered off for the snapshot
// commands the emulator supports.
func (r *vmrun) offVM(ctx context.Context, args []string, cmd string) (string, *vmformat.VMX, int) {
	if len(args) < 1 {
		return "", nil, r.fail("Invalid number of arguments: %s takes the path to a vmx file", cmd)
	}
	vmx := r.abs(args[0])
	v, code := r.load(vmx)
	if code != 0 {
		return "", nil, code
	}
	on, err := r.running(ctx, vmx)
	if err != nil {
		return "", nil, r.fail("Unable to get the state of the virtual machine: %v", err)
	}
	if on && cmd != "listSnapshots" {
		return "", nil, r.fail("%s of a powered-on virtual machine is not emulated by vmpool's vmrun; power it off first", cmd)
	}
	return vmx, v, 0
}

func (r *vmrun) snapshot(ctx context.Context, args []string) int {
	if len(args) != 2 || args[1] == "" {
		return r.fail("Invalid number of arguments: snapshot takes the path to a vmx file and a snapshot name")
	}
	vmx, v, code := r.offVM(ctx, args, "snapshot")
	if code != 0 {
		return code
	}
	if _, ok := v.Get("checkpoint.vmState"); ok {
		return r.fail("A snapshot of a suspended virtual machine is not emulated by vmpool's vmrun")
	}
	db, err := readSnapshots(vmx)
	if err != nil {
		return r.fail("Cannot read the snapshot database: %v", err)
	}
	if db.find(args[1]) >= 0 {
		return r.fail("A snapshot with the name %q already exists", args[1])
	}
	before := v.Bytes()
	dir := filepath.Dir(vmx)
	s := snapshot{UID: db.lastUID + 1, Parent: db.current, Name: args[1]}
	s.File = fmt.Sprintf("%s-Snapshot%d.vmsn", strings.TrimSuffix(filepath.Base(vmx), filepath.Ext(vmx)), s.UID)
	var made []string
	undo := func() {
		for _, f := range made {
			os.Remove(filepath.Join(dir, f))
			os.Remove(filepath.Join(dir, extentOf(f)))
		}
	}
	for _, n := range snapshotDisks(v) {
		if _, err := vmformat.Chain(resolve(vmx, n.File)); err != nil {
			undo()
			return r.fail("Cannot open the disk '%s' or one of the snapshot disks it depends on. (%v)", resolve(vmx, n.File), err)
		}
		delta := deltaName(dir, n.File)
		if err := r.writeDelta(ctx, dir, n.File, delta); err != nil {
			undo()
			return r.fail("Unable to create the snapshot disk for %s: %v", n.Node, err)
		}
		made = append(made, delta)
		s.Disks = append(s.Disks, snapDisk{Node: n.Node, File: n.File})
		v.Set(n.Node+".fileName", delta)
	}
	if err := os.WriteFile(filepath.Join(dir, s.File), before, 0o644); err != nil {
		undo()
		return r.fail("Unable to write the snapshot file: %v", err)
	}
	db.snaps = append(db.snaps, s)
	db.lastUID, db.current = s.UID, s.UID
	if err := db.write(); err != nil {
		undo()
		return r.fail("Unable to write the snapshot database: %v", err)
	}
	if err := saveVMX(vmx, v); err != nil {
		return r.fail("Cannot write %s: %v", vmx, err)
	}
	return 0
}

// current checks that snapshot i is the newest and that the VM's disks
// are the emulator's deltas of it, and returns those deltas by node.
func (r *vmrun) current(vmx string, v *vmformat.VMX, db *snapshotDB, i int) (map[string]string, string) {
	s := db.snaps[i]
	if s.UID != db.current {
		return nil, "Only the newest snapshot can be deleted or reverted to by vmpool's vmrun emulator"
	}
	deltas := map[string]string{}
	for _, sd := range s.Disks {
		cur, ok := v.Get(sd.Node + ".fileName")
		if !ok {
			return nil, fmt.Sprintf("The virtual machine has no disk %s, which snapshot %q has", sd.Node, s.Name)
		}
		d, err := vmformat.ReadVMDK(resolve(vmx, cur))
		if err != nil {
			return nil, fmt.Sprintf("Cannot open the disk '%s' or one of the snapshot disks it depends on. (%v)", resolve(vmx, cur), err)
		}
		extent, flat := d.FlatExtent()
		if cur == sd.File || filepath.Dir(resolve(vmx, cur)) != filepath.Dir(vmx) || !flat || filepath.Base(extent) != extentOf(filepath.Base(cur)) {
			return nil, fmt.Sprintf("The disk %s of %s is not a snapshot disk of %s", cur, sd.Node, sd.File)
		}
		deltas[sd.Node] = filepath.Base(cur)
	}
	return deltas, ""
}

func (r *vmrun) deleteSnapshot(ctx context.Context, args []string) int {
	if len(args) < 2 || len(args) > 3 || len(args) == 3 && args[2] != "andDeleteChildren" {
		return r.fail("Invalid number of arguments: deleteSnapshot takes the path to a vmx file and a snapshot name")
	}
	vmx, v, code := r.offVM(ctx, args, "deleteSnapshot")
	if code != 0 {
		return code
	}
	db, err := readSnapshots(vmx)
	if err != nil {
		return r.fail("Cannot read the snapshot database: %v", err)
	}
	i := db.find(args[1])
	if i < 0 {
		return r.fail("A snapshot with the name %q does not exist", args[1])
	}
	deltas, msg := r.current(vmx, v, db, i)
	if msg != "" {
		return r.fail("%s", msg)
	}
	dir := filepath.Dir(vmx)
	s := db.snaps[i]
	// Consolidate: what the VM wrote since the snapshot goes into the
	// disks it was taken of, which become the VM's disks again.
	for _, sd := range s.Disks {
		parent := resolve(vmx, sd.File)
		pd, err := vmformat.ReadVMDK(parent)
		if err != nil {
			return r.fail("Cannot open the disk '%s' or one of the snapshot disks it depends on. (%v)", parent, err)
		}
		src := extentOf(deltas[sd.Node])
		if extent, ok := pd.FlatExtent(); ok {
			err = r.qemuImg(ctx, dir, "convert", "-q", "-n", "-f", "raw", "-O", "raw", src, extent)
		} else {
			err = r.qemuImg(ctx, dir, "convert", "-q", "-n", "-f", "raw", "-O", "vmdk", src, parent)
		}
		if err != nil {
			return r.fail("Unable to consolidate the disk %s: %v", sd.Node, err)
		}
	}
	for _, sd := range s.Disks {
		v.Set(sd.Node+".fileName", sd.File)
	}
	if err := saveVMX(vmx, v); err != nil {
		return r.fail("Cannot write %s: %v", vmx, err)
	}
	for _, sd := range s.Disks {
		os.Remove(filepath.Join(dir, deltas[sd.Node]))
		os.Remove(filepath.Join(dir, extentOf(deltas[sd.Node])))
	}
	os.Remove(filepath.Join(dir, s.File))
	db.snaps = append(db.snaps[:i], db.snaps[i+1:]...)
	db.current = s.Parent
	if len(db.snaps) == 0 {
		os.Remove(db.path)
		return 0
	}
	if err := db.write(); err != nil {
		return r.fail("Unable to write the snapshot database: %v", err)
	}
	return 0
}

func (r *vmrun) revertToSnapshot(ctx context.Context, args []string) int {
	if len(args) != 2 {
		return r.fail("Invalid number of arguments: revertToSnapshot takes the path to a vmx file and a snapshot name")
	}
	vmx, v, code := r.offVM(ctx, args, "revertToSnapshot")
	if code != 0 {
		return code
	}
	db, err := readSnapshots(vmx)
	if err != nil {
		return r.fail("Cannot read the snapshot database: %v", err)
	}
	i := db.find(args[1])
	if i < 0 {
		return r.fail("A snapshot with the name %q does not exist", args[1])
	}
	deltas, msg := r.current(vmx, v, db, i)
	if msg != "" {
		return r.fail("%s", msg)
	}
	dir := filepath.Dir(vmx)
	// What the VM wrote since the snapshot is thrown away: the deltas
	// become copies of the snapshot's disks again.
	for _, sd := range db.snaps[i].Disks {
		if err := r.writeDelta(ctx, dir, sd.File, deltas[sd.Node]); err != nil {
			return r.fail("Unable to revert the disk %s: %v", sd.Node, err)
		}
	}
	return 0
}

func (r *vmrun) listSnapshots(ctx context.Context, args []string) int {
	if len(args) < 1 || len(args) > 2 {
		return r.fail("Invalid number of arguments: listSnapshots takes the path to a vmx file")
	}
	vmx, _, code := r.offVM(ctx, args, "listSnapshots")
	if code != 0 {
		return code
	}
	db, err := readSnapshots(vmx)
	if err != nil {
		return r.fail("Cannot read the snapshot database: %v", err)
	}
	fmt.Fprintf(r.out, "Total snapshots: %d\n", len(db.snaps))
	for _, s := range db.snaps {
		fmt.Fprintln(r.out, s.Name)
	}
	return 0
}
