package submit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// inputSet gathers the files to transfer.
type inputSet struct {
	b      *builder
	iwd    string
	check  bool
	paths  []string
	sizes  []int64
	byBase map[string]string // base name -> absolute path
	listed map[string]bool   // base names listed in transfer_input_files
	used   map[string]bool   // base names the job's disks, kernel or initrd use
}

// add checks a file named relative to base and adds it; it returns whether
// the file can be transferred.
func (s *inputSet) add(d *macroDef, base, name string) bool {
	if !s.check {
		return false
	}
	path, size, e := s.b.fs.checkInput(base, name, s.b.opt.Paths)
	if e != nil {
		e.File, e.Line, e.Command = d.file, d.line, d.name
		s.b.j.errs = append(s.b.j.errs, e)
		return false
	}
	bn := filepath.Base(path)
	if prev, ok := s.byBase[bn]; ok {
		if prev != path {
			s.b.err(d, "input-name-conflict", fmt.Sprintf("%q and %q have the same name %q and would overwrite each other on the execute machine", prev, path, bn))
		}
		return true
	}
	s.byBase[bn] = path
	s.paths = append(s.paths, path)
	s.sizes = append(s.sizes, size)
	return true
}

// jobPath is the name a file has for the job: its base name when it is
// transferred, else its absolute path on shared storage.
func (s *inputSet) jobPath(d *macroDef, cmd, name string) string {
	if s.listed[filepath.Base(name)] {
		s.used[filepath.Base(name)] = true
		return filepath.Base(name)
	}
	// A file used in place on shared storage is still named by the
	// submit description: the path policy applies to it as to a
	// transferred one (no `..` or symbolic link out of the submit
	// directory; no absolute path when paths are confined).
	if e := confine(s.iwd, name, absPath(s.iwd, name), s.b.opt.Paths); e != nil {
		e.File, e.Line, e.Command = d.file, d.line, d.name
		e.Msg = cmd + " file " + e.Msg
		s.b.j.errs = append(s.b.j.errs, e)
		return absPath(s.iwd, name)
	}
	if !filepath.IsAbs(name) {
		s.b.warn(d, "%s file %q is not in transfer_input_files: the execute machine must see it at %s (shared storage); list it in transfer_input_files to transfer it", cmd, name, absPath(s.iwd, name))
	}
	return absPath(s.iwd, name)
}

// vmDisk checks vm_disk and returns it as the job sees it, and the number
// of disks.
func (b *builder) vmDisk(d *macroDef, v, iwd string, in *inputSet, vmType string, noOutput bool) (string, int) {
	var out []string
	devices := map[string]bool{}
	n := 0
	bad := false
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		n++
		fields := strings.Split(e, ":")
		if len(fields) < 3 || len(fields) > 4 {
			b.err(d, "vm-disk-format", fmt.Sprintf("'vm_disk' has incorrect format: %q has %d fields, expected FILE:DEVICE:PERMISSION[:FORMAT]", clip(e), len(fields)))
			bad = true
			continue
		}
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		fields[0] = unquote(fields[0])
		if fields[0] == "" || fields[1] == "" || len(fields) == 4 && fields[3] == "" {
			what := "file"
			switch {
			case fields[0] != "" && fields[1] == "":
				what = "device"
			case fields[0] != "" && fields[1] != "":
				what = "format"
			}
			b.err(d, "vm-disk-field-empty", fmt.Sprintf("vm_disk entry %q has an empty %s", clip(e), what))
			bad = true
			continue
		}
		switch strings.ToLower(fields[2]) {
		case "w", "rw", "r":
		default:
			b.err(d, "vm-disk-permission", fmt.Sprintf("vm_disk entry %q has permission %q; use w, rw or r", clip(e), clip(fields[2])))
			bad = true
			continue
		}
		dev := strings.ToLower(fields[1])
		if devices[dev] {
			b.err(d, "vm-disk-device-duplicate", fmt.Sprintf("vm_disk uses device %q twice", fields[1]))
			bad = true
			continue
		}
		devices[dev] = true
		if vmType == "kvm" && !kvmDevice(fields[1]) {
			b.errFix(d, "vm-disk-device-invalid", fmt.Sprintf("vm_disk entry %q has device %q, which a kvm guest cannot be given", clip(e), clip(fields[1])),
				"use hda to hdd (IDE), sda to sdf (SATA), or vda, vdb, ... (virtio), in lower case; a partition number (sda1) is accepted and ignored")
			bad = true
			continue
		}
		fields[0] = in.jobPath(d, "vm_disk", fields[0])
		if path := in.byBase[fields[0]]; path != "" && !filepath.IsAbs(fields[0]) {
			in.backingFiles(d, fields[0], path)
			if perm := strings.ToLower(fields[2]); (perm == "w" || perm == "rw") && !noOutput && filepath.Dir(path) != filepath.Clean(iwd) {
				ret := filepath.Join(iwd, fields[0])
				over := ""
				if _, err := os.Lstat(ret); err == nil {
					over = ", over the file there"
				}
				b.warn(d, "vm_disk file %q is sent from %s: if the guest changes it, it comes back into the initial directory as %s%s, not into %s (as in HTCondor, a returned file takes its bare name in the initial directory); set vm_no_output_vm = true if it should not come back", fields[0], path, ret, over, filepath.Dir(path))
			}
		}
		out = append(out, strings.Join(fields, ":"))
	}
	if bad {
		return "", n
	}
	return strings.Join(out, ","), n
}

// kvmDevice reports whether the kvm driver can attach a disk as dev: the
// IDE channels' hda to hdd, AHCI's sda to sdf, virtio's vdX (and xvdX,
// taken for vdX), with an optional partition number, as
// startd/hypervisor/qemu's planDisks maps them.
func kvmDevice(dev string) bool {
	var letters string
	switch {
	case strings.HasPrefix(dev, "hd"):
		letters, dev = "abcd", dev[2:]
	case strings.HasPrefix(dev, "sd"):
		letters, dev = "abcdef", dev[2:]
	case strings.HasPrefix(dev, "vd"):
		letters, dev = "abcdefghijklmnopqrstuvwxyz", dev[2:]
	case strings.HasPrefix(dev, "xvd"):
		letters, dev = "abcdefghijklmnopqrstuvwxyz", dev[3:]
	default:
		return false
	}
	if dev == "" || !strings.ContainsRune(letters, rune(dev[0])) {
		return false
	}
	part := dev[1:]
	if part == "" {
		return true
	}
	if part[0] == '0' {
		return false
	}
	for _, c := range part {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// backingFiles checks the backing files of a transferred vm_disk image
// (name, at path), which QEMU opens beside it on the execute machine: a
// qcow2 image made with qemu-img create -b over a base image is only the
// difference from it. A backing file named by a bare name must be
// transferred too (it then lands beside the image); one named by a
// relative path cannot be, and one named by an absolute path must be on
// the execute machine (shared storage).
func (s *inputSet) backingFiles(d *macroDef, name, path string) {
	seen := map[string]bool{}
	for depth := 0; depth < 16 && !seen[path]; depth++ {
		seen[path] = true
		backing := s.b.fs.qcow2Backing(path)
		if backing != "" && !filepath.IsAbs(backing) {
			backing = filepath.Clean(backing) // ./base.img is base.img
		}
		switch {
		case backing == "":
			return
		case filepath.IsAbs(backing):
			s.b.warn(d, "vm_disk file %q is a qcow2 image over the backing file %s, which is not transferred: the execute machine must see it at that path (shared storage); to send it with the job, rebase the image onto the file's bare name (qemu-img rebase -u -b %s -F FORMAT %s) and list it in transfer_input_files",
				name, backing, filepath.Base(backing), filepath.Base(path))
			return
		case filepath.Base(backing) != backing:
			s.b.errFix(d, "vm-disk-backing-missing", fmt.Sprintf("vm_disk file %q is a qcow2 image over the backing file %q, a relative path, which the execute machine cannot resolve: transferred files land side by side in the job's directory there", name, backing),
				fmt.Sprintf("rebase the image onto the backing file's bare name (qemu-img rebase -u -b %s -F FORMAT %s) and list %s in transfer_input_files, or make the image standalone (qemu-img convert -O qcow2 %s NEW.qcow2)", filepath.Base(backing), filepath.Base(path), filepath.Base(backing), filepath.Base(path)))
			return
		case !s.listed[backing]:
			s.b.errFix(d, "vm-disk-backing-missing", fmt.Sprintf("vm_disk file %q is a qcow2 image over the backing file %q, which is not in transfer_input_files: the execute machine would not have it, and QEMU could not open the disk", name, backing),
				fmt.Sprintf("add %s to transfer_input_files, or make the image standalone (qemu-img convert -O qcow2 %s NEW.qcow2)", backing, filepath.Base(path)))
			return
		}
		s.used[backing] = true
		name, path = backing, s.byBase[backing]
		if path == "" {
			return // not readable: reported as an input
		}
	}
}

// unused warns of transferred files that no disk, kernel or initrd of a
// kvm or xen job uses: they are copied to the execute machine, but the
// guest sees only its vm_disk images.
func (s *inputSet) unused(d *macroDef) {
	if d == nil || len(s.b.j.errs) > 0 {
		return // a vm_disk in error may not have named its files
	}
	for _, path := range s.paths {
		if bn := filepath.Base(path); !s.used[bn] {
			s.b.warn(d, "%q is transferred but is not a vm_disk image (nor a xen_kernel, xen_initrd or a disk's backing file): the guest cannot see it; to give the guest files, put them on a disk image, e.g. an ISO (genisoimage -o files.iso -r DIR), and list it in vm_disk (files.iso:hdc:r)", bn)
		}
	}
}

// xen checks the Xen commands; it returns whether hardware virtualisation
// is required.
func (b *builder) xen(iwd string, in *inputSet, nDisks int) bool {
	kv, kd, kok := b.given("xen_kernel")
	if !kok {
		if kd == nil && b.lookupDef("xen_kernel") == nil {
			b.missing("xen_kernel", "xen-kernel-missing", `'xen_kernel' cannot be found; xen_kernel must be one of "included", "vmx", <file-name>`)
		}
		return false
	}
	realKernel, hwvt := false, false
	switch strings.ToLower(kv) {
	case "included":
		if nDisks > 1 {
			b.err(kd, "xen-kernel-included-multiple-disks", fmt.Sprintf("xen_kernel = included needs a single vm_disk to find the kernel in, but vm_disk lists %d", nDisks))
		}
		b.set("VMPARAM_Xen_Kernel", quote("included"))
	case "vmx":
		hwvt = true
		b.set("VMPARAM_Xen_Kernel", quote("vmx"))
	default:
		realKernel = true
		b.set("VMPARAM_Xen_Kernel", quote(in.jobPath(kd, "xen_kernel", unquote(kv))))
	}
	if v, d, ok := b.given("xen_initrd"); ok {
		if !realKernel {
			b.err(d, "xen-initrd-without-kernel", "To use xen_initrd, xen_kernel should be a real kernel file")
		} else {
			b.set("VMPARAM_Xen_Initrd", quote(in.jobPath(d, "xen_initrd", unquote(v))))
		}
	}
	if v, d, ok := b.given("xen_root"); ok {
		if realKernel {
			b.set("VMPARAM_Xen_Root", quote(v))
		} else {
			b.warn(d, "xen_root is used only when xen_kernel names a kernel file; ignored")
		}
	} else if realKernel && d == nil {
		b.missingFor(kd, "xen_root", "xen-root-missing", "'xen_root' cannot be found; a xen_kernel file needs the guest's root device")
	}
	if v, _, ok := b.given("xen_kernel_params"); ok {
		b.set("VMPARAM_Xen_Kernel_Params", quote(strings.Trim(v, `"'`)))
	}
	return hwvt
}

// vmware checks the VMware commands and gathers vmware_dir. It returns
// whether the job relies on a shared file system. noOutput is
// vm_no_output_vm.
func (b *builder) vmware(iwd string, in *inputSet, noOutput bool) bool {
	transfer, td := b.boolCmd("vmware_should_transfer_files", false)
	if td == nil {
		b.missing("vmware_should_transfer_files", "vmware-transfer-missing", `You must explicitly specify "vmware_should_transfer_files" (true: copy vmware_dir to the execute machine; false: it is on a shared file system)`)
	} else if !transfer && !noOutput {
		// The vmware driver runs shared disks through a snapshot and
		// drops it; only files the job sent come back (HTCondor returned
		// the snapshot's delta disks).
		b.warn(td, "nothing the guest writes comes back with vmware_should_transfer_files = false: it writes into a snapshot over the shared disks, which is dropped when the VM ends (set vmware_should_transfer_files = true to get the changed disks back, or vm_no_output_vm = true to say none are wanted)")
	}
	snapshot, sd := b.boolCmd("vmware_snapshot_disk", true)
	if td != nil && sd != nil && !transfer && !snapshot {
		b.err(sd, "vmware-snapshot-conflict", "You should not use both vmware_should_transfer_files = FALSE and vmware_snapshot_disk = FALSE")
	}
	b.set("VMPARAM_VMware_Transfer", boolExpr(transfer))
	b.set("VMPARAM_VMware_SnapshotDisk", boolExpr(snapshot))

	var vmx, vmdk []string
	seen := map[string]bool{}
	v, dd, ok := b.given("vmware_dir")
	dirOK := false
	if ok && in.check {
		name := unquote(v)
		dir := absPath(iwd, name)
		if e := confine(iwd, name, dir, b.opt.Paths); e != nil {
			e.File, e.Line, e.Command = dd.file, dd.line, dd.name
			b.j.errs = append(b.j.errs, e)
		} else if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			b.err(dd, "vmware-dir-invalid", fmt.Sprintf("vmware_dir %q is not an existing directory", dir))
		} else {
			dirOK = true
			b.set("VMPARAM_VMware_Dir", quote(dir))
			if !transfer && snapshot {
				if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
					b.errFix(dd, "vmware-dir-symlink", fmt.Sprintf("vmware_dir %q contains a symbolic link (it resolves to %s); snapshot disks without file transfer need a path without links", dir, real),
						fmt.Sprintf("write vmware_dir = %s", real))
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				b.err(dd, "vmware-dir-invalid", fmt.Sprintf("cannot list vmware_dir %q: %v", dir, unwrapPathErr(err)))
			}
			for _, e := range entries {
				if e.IsDir() {
					continue
				}
				n := e.Name()
				low := strings.ToLower(n)
				isVMX, isVMDK := strings.HasSuffix(low, ".vmx"), strings.HasSuffix(low, ".vmdk")
				if transfer || isVMX {
					if !in.add(dd, dir, n) {
						continue
					}
				}
				seen[n] = true
				if isVMX {
					vmx = append(vmx, n)
				} else if isVMDK {
					vmdk = append(vmdk, n)
				}
			}
		}
	}
	// .vmx and .vmdk files may also come from transfer_input_files.
	for _, p := range in.paths {
		n := filepath.Base(p)
		if seen[n] {
			continue
		}
		low := strings.ToLower(n)
		if strings.HasSuffix(low, ".vmx") {
			vmx = append(vmx, n)
		} else if strings.HasSuffix(low, ".vmdk") {
			vmdk = append(vmdk, n)
		}
	}
	if ok && !dirOK || !in.check || dd != nil && !ok {
		return !transfer // the directory's problem is reported
	}
	switch {
	case len(vmx) == 0 && dd != nil:
		b.err(dd, "vmware-vmx-missing", fmt.Sprintf("no vmx file for vmware can be found in %s", v))
	case len(vmx) == 0:
		b.missing("vmware_dir", "vmware-vmx-missing", "no vmx file for vmware can be found: vmware_dir is not given and no .vmx file is in transfer_input_files")
	case len(vmx) > 1:
		d := dd
		if d == nil {
			d = b.lookupDef("transfer_input_files")
		}
		b.err(d, "vmware-vmx-multiple", fmt.Sprintf("multiple vmx files exist (%s); only one vmx file should be present", strings.Join(vmx, ", ")))
	default:
		b.set("VMPARAM_VMware_VMX_File", quote(vmx[0]))
	}
	if len(vmdk) > 0 {
		b.set("VMPARAM_VMware_VMDK_Files", quote(strings.Join(vmdk, ",")))
	}
	return !transfer
}
