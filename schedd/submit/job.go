package submit

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Limits on values.
const (
	maxVMMemoryMiB   = 16 << 20 // 16 TiB
	maxVCPUs         = 4096
	maxCheckpointSec = 366 * 24 * 3600
	defaultLease     = 2400 // JOB_DEFAULT_LEASE_DURATION
	minLease         = 20
)

// Hold codes (REFERENCE §1).
const holdSubmittedOnHold = 15

// protectedAttrs may not be set with +Name: the schedd owns them.
var protectedAttrs = words(`clusterid procid jobuniverse owner jobstatus globaljobid qdate`)

// job is the attribute set of one proc, before it is split into cluster
// and proc attributes.
type job struct {
	attrs   []Attr
	inputs  []string
	iwd     string
	userLog string
	errs    []*Error
	p       problems // warnings

	usedCluster bool
	usedProc    bool
	usedItem    bool

	// mac is the vm_macaddr of a networked job, given at macAt.
	mac   string
	macAt *macroDef
}

// builder builds one job from a macro table snapshot.
type builder struct {
	opt       *Options
	fs        *fsCache
	x         *expander
	tbl       *macroTable
	qfile     string
	qline     int
	submitDir string

	j     *job
	idx   map[string]int // lower-cased attribute name -> index in j.attrs
	ranks []int          // attrOrder rank of each of j.attrs
	// commands whose value used the $(ClusterId) placeholder
	placeholder map[string]bool
}

func (b *builder) set(name, expr string) {
	k := strings.ToLower(name)
	if i, ok := b.idx[k]; ok {
		b.j.attrs[i].Expr = expr
		return
	}
	b.idx[k] = len(b.j.attrs)
	b.j.attrs = append(b.j.attrs, Attr{Name: name, Expr: expr})
	r, ok := attrOrder[k]
	if !ok {
		r = len(attrOrder)
	}
	b.ranks = append(b.ranks, r)
}

// lookupDef finds the definition of a command under its name or an alias.
func (b *builder) lookupDef(cmd string) *macroDef {
	if d := b.tbl.lookup(cmd); d != nil {
		return d
	}
	for _, n := range aliasesOf[cmd] {
		if d := b.tbl.lookup(n); d != nil {
			return d
		}
	}
	return nil
}

// get returns a command's expanded, trimmed value. d is nil when the
// command is not given; ok is false when expansion failed (already
// reported).
func (b *builder) get(cmd string) (v string, d *macroDef, ok bool) {
	d = b.lookupDef(cmd)
	if d == nil {
		return "", nil, false
	}
	before := b.x.usedCluster
	b.x.usedCluster = false
	v, err := b.x.expand(d.value)
	if b.x.usedCluster {
		b.placeholder[strings.ToLower(d.name)] = true
	}
	b.x.usedCluster = b.x.usedCluster || before
	if err != nil {
		b.expandErr(d, err)
		return "", d, false
	}
	return strings.TrimSpace(v), d, true
}

// expandErr reports a failed expansion of d's value. An undefined macro
// names the queue statement it was expanded for: with several, a macro
// may be defined for one and not yet for another.
func (b *builder) expandErr(d *macroDef, err error) {
	code, msg := "macro-undefined", err.Error()
	if ee, ok := err.(*expandError); ok {
		code = ee.code
	}
	if code == "macro-undefined" && b.qline > 0 {
		if b.qfile == d.file {
			msg += fmt.Sprintf(" for the queue statement at line %d", b.qline)
		} else {
			msg += fmt.Sprintf(" for the queue statement at %s:%d", b.qfile, b.qline)
		}
	}
	b.err(d, code, msg)
}

// given is get for commands where an empty value counts as not given.
func (b *builder) given(cmd string) (string, *macroDef, bool) {
	v, d, ok := b.get(cmd)
	if d != nil && ok && v == "" {
		return "", nil, false
	}
	return v, d, ok && d != nil
}

func (b *builder) err(d *macroDef, code, msg string) {
	b.j.errs = append(b.j.errs, &Error{File: d.file, Line: d.line, Command: d.name, Code: code, Msg: msg})
}

func (b *builder) errFix(d *macroDef, code, msg, fix string) {
	b.j.errs = append(b.j.errs, &Error{File: d.file, Line: d.line, Command: d.name, Code: code, Msg: msg, Fix: fix})
}

// missing reports a required command that is absent, at the queue
// statement, with a hint when a misspelling of it is defined.
func (b *builder) missing(cmd, code, msg string) { b.missingFor(nil, cmd, code, msg) }

// missingFor is missing for a command that the line of by calls for
// (xen_root, for a xen_kernel file): reported at that line, not at the
// queue statement's.
func (b *builder) missingFor(by *macroDef, cmd, code, msg string) {
	if d := b.lookupDef(cmd); d != nil {
		msg += fmt.Sprintf(" (line %d gives it no value)", d.line)
	} else if hint := b.misspelt(cmd); hint != nil {
		msg += fmt.Sprintf(" (line %d sets %q: a misspelling of %s?)", hint.line, hint.name, cmd)
	}
	file, line := b.qfile, b.qline
	if by != nil {
		file, line = by.file, by.line
	}
	b.j.errs = append(b.j.errs, &Error{File: file, Line: line, Command: cmd, Code: code, Msg: msg})
}

func (b *builder) misspelt(cmd string) *macroDef {
	return b.tbl.misspellings()[cmd]
}

func (b *builder) warn(d *macroDef, format string, args ...any) {
	if d == nil {
		b.j.p.warn(b.qfile, b.qline, format, args...)
		return
	}
	b.j.p.warn(d.file, d.line, format, args...)
}

func (b *builder) boolCmd(cmd string, def bool) (bool, *macroDef) {
	v, d, ok := b.given(cmd)
	if !ok {
		return def, d
	}
	bv, good := parseBool(v)
	if !good {
		b.err(d, "bool-invalid", fmt.Sprintf("%s must be true or false, not %q", cmd, clip(v)))
		return def, d
	}
	return bv, d
}

// expr checks a user ClassAd expression.
func (b *builder) expr(d *macroDef, cmd, v string) bool {
	if _, err := scanRefs(v); err != nil {
		b.err(d, "expr-invalid", fmt.Sprintf("%s is not a valid ClassAd expression: %v", cmd, err))
		return false
	}
	if b.opt.CheckExpr != nil {
		if err := b.opt.CheckExpr(v); err != nil {
			b.err(d, "expr-invalid", fmt.Sprintf("%s is not a valid ClassAd expression: %v", cmd, err))
			return false
		}
	}
	return true
}

// exprCmd copies an expression command to an attribute, or sets def.
func (b *builder) exprCmd(cmd, attr, def string) {
	if v, d, ok := b.given(cmd); ok {
		if b.expr(d, cmd, v) {
			b.set(attr, v)
		}
		return
	}
	if def != "" {
		b.set(attr, def)
	}
}

// build computes the job's attributes and checks them.
func (b *builder) build() {
	uv, ud, uok := b.get("universe")
	switch {
	case ud == nil || uok && uv == "":
		b.missing("universe", "universe-missing", "universe is not given; vmpool runs vm universe jobs only")
		return
	case !uok:
		return // reported
	case !strings.EqualFold(uv, "vm"):
		b.err(ud, "universe-unsupported", fmt.Sprintf("universe %q is not supported: vmpool runs vm universe jobs only", clip(uv)))
		return
	}

	if b.opt.Owner != "" {
		b.set("Owner", quote(b.opt.Owner))
	}
	b.set("JobUniverse", "13")
	if v, d, ok := b.given("executable"); ok {
		b.set("Cmd", quote(v))
	} else if d == nil {
		b.missing("executable", "executable-missing", "executable is not given; for a vm job it is the job's name")
	}
	for _, c := range []string{"input", "output", "error"} {
		if d := b.tbl.lookup(c); d != nil && d.value != "" {
			b.err(d, "io-not-allowed", fmt.Sprintf("You cannot use input, output, and error parameters in the submit description file for vm universe (%s is given)", c))
		}
	}

	// Initial working directory.
	iwd := b.submitDir
	iwdOK := true
	if v, d, ok := b.given("initialdir"); ok {
		iwd = absPath(b.submitDir, unquote(v))
		if !b.fs.isDir(iwd) {
			b.err(d, "initialdir-invalid", fmt.Sprintf("initialdir %q is not an existing directory", iwd))
			iwdOK = false
		}
	} else if d != nil {
		iwdOK = false
	}
	b.j.iwd = iwd
	b.set("Iwd", quote(iwd))

	// vm_type.
	vmType := ""
	if v, d, ok := b.given("vm_type"); ok {
		switch t := strings.ToLower(v); t {
		case "kvm", "xen", "vmware":
			vmType = t
		case "sim":
			// vmpool's simulated hypervisor, for scale tests: only startds
			// configured with VM_TYPE = sim run such jobs.
			vmType = t
		default:
			b.err(d, "vm-type-unknown", fmt.Sprintf("vm_type %q is unknown; vmpool knows kvm, xen and vmware (and sim, its simulated hypervisor for tests)", clip(v)))
		}
	} else if d == nil {
		b.missing("vm_type", "vm-type-missing", "vm_type cannot be found")
	}

	// Memory and CPUs.
	var vmMem int64
	if v, d, ok := b.given("vm_memory"); ok {
		n, isNum, good := parseAmount(v, 1<<20)
		switch {
		case !isNum || !good || n <= 0:
			b.err(d, "vm-memory-invalid", fmt.Sprintf("vm_memory is incorrectly specified (%q)", clip(v)))
		case n > maxVMMemoryMiB:
			b.err(d, "vm-memory-too-large", fmt.Sprintf("vm_memory %s is more than 16 TiB", clip(v)))
		default:
			vmMem = n
		}
	} else if d == nil {
		b.missing("vm_memory", "vm-memory-missing", "vm_memory cannot be found")
	}

	var vcpus int64
	if v, d, ok := b.given("vm_vcpus"); ok {
		n, good := parseInt(v)
		if !good || n < 1 || n > maxVCPUs {
			b.err(d, "vm-vcpus-invalid", fmt.Sprintf("vm_vcpus %q is not an integer from 1 to %d", clip(v), maxVCPUs))
		} else {
			vcpus = n
		}
	}
	var reqCpus int64
	reqCpusExpr := ""
	if v, d, ok := b.given("request_cpus"); ok {
		if n, good := parseInt(v); good {
			if n < 1 || n > 1<<20 {
				b.err(d, "request-invalid", fmt.Sprintf("request_cpus %q is not a positive number of CPUs", clip(v)))
			} else {
				reqCpus = n
			}
		} else if _, isNum, _ := parseAmount(v, 1); isNum {
			b.err(d, "request-invalid", fmt.Sprintf("request_cpus %q is not a whole number of CPUs", clip(v)))
		} else if b.expr(d, "request_cpus", v) {
			reqCpusExpr = v
		}
	}
	if vcpus == 0 {
		vcpus = max(reqCpus, 1)
	}
	if reqCpus == 0 && reqCpusExpr == "" {
		reqCpus = vcpus
	}

	// MAC address.
	mac := ""
	macv, macd, macGiven := b.given("vm_macaddr")
	if macGiven {
		m, good, unicast := parseMAC(macv)
		switch {
		case !good:
			b.err(macd, "vm-macaddr-invalid", fmt.Sprintf("vm_macaddr %q is not a MAC address (six hex pairs separated by colons)", clip(macv)))
		case !unicast:
			b.err(macd, "vm-macaddr-invalid", fmt.Sprintf("vm_macaddr %q is not a unicast address: its first octet is odd (group address) or it is all zeros", clip(macv)))
		default:
			mac = m
		}
	}

	checkpoint, ckd := b.boolCmd("vm_checkpoint", false)
	networking, netd := b.boolCmd("vm_networking", false)
	vnc, _ := b.boolCmd("vm_vnc", false)
	noOutput, _ := b.boolCmd("vm_no_output_vm", false)

	switch {
	case mac != "" && !networking:
		b.warn(macd, "vm_macaddr has no effect without vm_networking = true")
	case mac != "" && vmType == "vmware" && !vmwareStaticMAC(mac):
		// HTCondor writes it into the .vmx as a static address, which
		// VMware refuses outside its range; the vmware driver would give
		// the guest another MAC than the one asked for.
		b.err(macd, "vm-macaddr-vmware-range", fmt.Sprintf("vm_macaddr %q is outside 00:50:56:00:00:00-00:50:56:3f:ff:ff, the only static addresses VMware takes", mac))
	case mac != "":
		b.j.mac, b.j.macAt = mac, macd
	}

	netType := ""
	if v, d, ok := b.given("vm_networking_type"); ok {
		t := strings.ToLower(v)
		switch {
		case t != "nat" && t != "bridge" && t != "user":
			b.err(d, "vm-networking-type-invalid", fmt.Sprintf("vm_networking_type %q is not nat, bridge or user", clip(v)))
		case !networking:
			b.warn(d, "vm_networking_type has no effect without vm_networking = true")
		default:
			netType = t
		}
	}

	// File transfer settings.
	wtto := ""
	if v, d, ok := b.given("when_to_transfer_output"); ok {
		switch u := strings.ToUpper(v); u {
		case "ON_EXIT", "ON_EXIT_OR_EVICT":
			wtto = u
		default:
			b.err(d, "when-to-transfer-invalid", fmt.Sprintf("when_to_transfer_output %q is not ON_EXIT or ON_EXIT_OR_EVICT", clip(v)))
		}
	}
	if checkpoint && networking && wtto != "ON_EXIT_OR_EVICT" {
		d := ckd
		if netd.line > d.line || netd.file != d.file {
			d = netd
		}
		b.err(d, "vm-checkpoint-networking", "You explicitly requested both VM checkpoint and VM networking, but VM networking conflicts with VM checkpoint unless when_to_transfer_output = ON_EXIT_OR_EVICT")
	}
	if v, d, ok := b.given("should_transfer_files"); ok {
		switch strings.ToUpper(v) {
		case "YES":
		case "NO", "IF_NEEDED":
			b.warn(d, "should_transfer_files = %s is ignored: vm universe jobs always transfer files", v)
		default:
			b.err(d, "should-transfer-invalid", fmt.Sprintf("should_transfer_files %q is not YES, NO or IF_NEEDED", clip(v)))
		}
	}
	if te, d := b.boolCmd("transfer_executable", false); te {
		b.warn(d, "transfer_executable is ignored: a vm job's executable is only its name")
	}

	var interval int64
	if v, d, ok := b.given("vm_checkpoint_interval"); ok {
		n, good := parseInt(v)
		switch {
		case !good || n <= 0 || n > maxCheckpointSec:
			b.err(d, "vm-checkpoint-interval-invalid", fmt.Sprintf("vm_checkpoint_interval %q is not a positive number of seconds (at most a year)", clip(v)))
		case !checkpoint:
			b.err(d, "vm-checkpoint-interval-without-checkpoint", "vm_checkpoint_interval needs vm_checkpoint = true")
		default:
			interval = n
		}
	}

	// Inputs.
	in := &inputSet{b: b, iwd: iwd, check: iwdOK, byBase: map[string]string{}, listed: map[string]bool{}, used: map[string]bool{}}
	for _, cmd := range []string{"transfer_input_files", "xen_transfer_files"} {
		if v, d, ok := b.given(cmd); ok {
			for _, f := range strings.Split(v, ",") {
				if f = unquote(f); f != "" {
					in.listed[filepath.Base(f)] = true
					in.add(d, iwd, f)
				}
			}
		}
	}

	// vm_disk.
	nDisks := 0
	if vmType == "kvm" || vmType == "xen" || vmType == "sim" {
		if v, d, ok := b.given("vm_disk"); ok {
			disk, n := b.vmDisk(d, v, iwd, in, vmType, noOutput)
			nDisks = n
			switch {
			case n == 0:
				b.err(d, "vm-disk-missing", "vm_disk lists no disk")
			case disk != "":
				b.set("VMPARAM_vm_Disk", quote(disk))
			}
		} else if d == nil {
			b.missing("vm_disk", "vm-disk-missing", "'vm_disk' cannot be found; kvm and xen jobs need a disk image")
		}
	}

	// Commands of another vm_type mean nothing for this job: said, not
	// silently dropped.
	if vmType == "kvm" || vmType == "xen" || vmType == "vmware" {
		for _, c := range []struct{ cmd, vmType string }{
			{"xen_kernel", "xen"}, {"xen_initrd", "xen"}, {"xen_root", "xen"}, {"xen_kernel_params", "xen"},
			{"vmware_dir", "vmware"}, {"vmware_should_transfer_files", "vmware"}, {"vmware_snapshot_disk", "vmware"},
		} {
			if _, d, ok := b.given(c.cmd); ok && c.vmType != vmType {
				b.warn(d, "%s is used only by vm_type = %s jobs; ignored", c.cmd, c.vmType)
			}
		}
		if _, d, ok := b.given("vm_disk"); ok && vmType == "vmware" {
			b.warn(d, "vm_disk is not used by vm_type = vmware jobs (their disks are those the .vmx in vmware_dir names); ignored")
		}
	}

	// Xen.
	hardwareVT := false
	if vmType == "xen" {
		hardwareVT = b.xen(iwd, in, nDisks)
	}

	// VMware.
	vmwareNoTransfer := false
	if vmType == "vmware" {
		vmwareNoTransfer = b.vmware(iwd, in, noOutput)
	}

	if vmType == "kvm" || vmType == "xen" {
		_, d, _ := b.given("transfer_input_files")
		in.unused(d)
	}

	// Requests.
	inputKiB := int64(0)
	for _, s := range in.sizes {
		inputKiB += (s + 1023) / 1024
	}
	execKiB := vmMem * 1024
	reqMem := ""
	if v, d, ok := b.given("request_memory"); ok {
		n, isNum, good := parseAmount(v, 1<<20)
		switch {
		case isNum && (!good || n <= 0):
			b.err(d, "request-invalid", fmt.Sprintf("request_memory %q is not a positive amount of memory", clip(v)))
		case isNum && n > maxVMMemoryMiB:
			b.err(d, "request-invalid", fmt.Sprintf("request_memory %q is more than 16 TiB", clip(v)))
		case isNum:
			reqMem = intExpr(n)
		case b.expr(d, "request_memory", v):
			reqMem = v
		}
	} else if d == nil {
		reqMem = "MY.JobVMMemory"
		b.warn(b.lookupDef("vm_memory"), "request_memory was not specified; using RequestMemory = MY.JobVMMemory")
	}
	reqDisk := ""
	reqDiskN := int64(-1)
	if v, d, ok := b.given("request_disk"); ok {
		n, isNum, good := parseAmount(v, 1024)
		switch {
		case isNum && (!good || n <= 0 || n > 1<<50):
			b.err(d, "request-invalid", fmt.Sprintf("request_disk %q is not a positive amount of disk", clip(v)))
		case isNum:
			reqDisk, reqDiskN = intExpr(n), n
		case b.expr(d, "request_disk", v):
			reqDisk = v
		}
	} else if d == nil {
		reqDiskN = execKiB + inputKiB
		reqDisk = intExpr(reqDiskN)
	}

	// Emit the VM attributes.
	if vmType != "" {
		b.set("JobVMType", quote(vmType))
	}
	if vmMem > 0 {
		b.set("JobVMMemory", intExpr(vmMem))
		b.set("ExecutableSize", intExpr(execKiB))
	}
	b.set("JobVM_VCPUS", intExpr(vcpus))
	b.set("JobVMCheckpoint", boolExpr(checkpoint))
	if interval > 0 {
		b.set("JobVMCheckpointInterval", intExpr(interval))
	}
	b.set("JobVMNetworking", boolExpr(networking))
	if netType != "" {
		b.set("JobVMNetworkingType", quote(netType))
	}
	b.set("JobVMVNCConsole", boolExpr(vnc))
	if mac != "" {
		b.set("JobVM_MACADDR", quote(mac))
	}
	b.set("VMPARAM_No_Output_VM", boolExpr(noOutput))
	if hardwareVT {
		b.set("JobVMHardwareVT", "true")
	}

	b.set("ShouldTransferFiles", quote("YES"))
	when := "ON_EXIT"
	if checkpoint || wtto == "ON_EXIT_OR_EVICT" {
		when = "ON_EXIT_OR_EVICT"
	}
	b.set("WhenToTransferOutput", quote(when))
	b.set("TransferExecutable", "false")
	if len(in.paths) > 0 {
		b.set("TransferInput", quote(strings.Join(in.paths, ",")))
	}
	b.j.inputs = in.paths
	if vmwareNoTransfer {
		fsd := b.opt.FileSystemDomain
		if fsd == "" {
			fsd = b.opt.SubmitHost
		}
		b.set("FileSystemDomain", quote(fsd))
	}

	if reqCpusExpr != "" {
		b.set("RequestCpus", reqCpusExpr)
	} else {
		b.set("RequestCpus", intExpr(reqCpus))
	}
	if reqMem != "" {
		b.set("RequestMemory", reqMem)
	}
	if reqDisk != "" {
		b.set("RequestDisk", reqDisk)
	}
	b.set("DiskUsage", intExpr(execKiB+inputKiB))

	b.policy()

	// Literal attributes last: they override what was computed.
	userReqAttr := b.literalAttrs()

	if !userReqAttr {
		b.requirements(reqParams{
			vmType:     vmType,
			checkpoint: checkpoint,
			networking: networking,
			netTyped:   netType != "",
			hardwareVT: hardwareVT,
			cpusClause: reqCpusExpr != "" || reqCpus > 1,
			diskClause: reqDisk != "" && reqDiskN != 0,
			fsDomain:   vmwareNoTransfer,
		})
	} else if d := b.lookupDef("requirements"); d != nil && d.value != "" {
		b.warn(d, "+Requirements (or MY.Requirements) overrides requirements; remove one of them")
	}
}

// checkLog runs Options.CheckLog on the user log path, once per path.
func (b *builder) checkLog(path string) error {
	if b.opt.CheckLog == nil {
		return nil
	}
	return b.fs.checkLog(path, b.opt.CheckLog)
}

// policy sets the bookkeeping and policy attributes.
func (b *builder) policy() {
	if v, d, ok := b.given("log"); ok {
		path := absPath(b.j.iwd, unquote(v))
		if b.fs.isDir(path) {
			b.err(d, "log-invalid", fmt.Sprintf("log %q is a directory", path))
		} else if !b.fs.isDir(filepath.Dir(path)) {
			b.err(d, "log-invalid", fmt.Sprintf("the directory of log %q does not exist", path))
		} else if err := b.checkLog(path); err != nil {
			b.err(d, "log-invalid", fmt.Sprintf("log %q cannot be written: %v", path, err))
		} else {
			b.j.userLog = path
			b.set("UserLog", quote(path))
		}
	}

	notify := int64(0)
	if v, d, ok := b.given("notification"); ok {
		switch strings.ToLower(v) {
		case "never":
			notify = 0
		case "always":
			notify = 1
		case "complete":
			notify = 2
		case "error":
			notify = 3
		case "start":
			notify = 4
		default:
			b.err(d, "notification-invalid", fmt.Sprintf("notification %q is not Always, Complete, Error, Start or Never", clip(v)))
		}
	}
	b.set("JobNotification", intExpr(notify))
	if v, d, ok := b.given("notify_user"); ok {
		if l := strings.ToLower(v); l == "never" || l == "false" {
			b.warn(d, "notify_user = %s sends mail to a user named %q; to send no mail write notification = never", v, v)
		}
		b.set("NotifyUser", quote(v))
	}

	if hold, _ := b.boolCmd("hold", false); hold {
		b.set("JobStatus", "5")
		b.set("HoldReason", quote("submitted on hold at user's request"))
		b.set("HoldReasonCode", intExpr(holdSubmittedOnHold))
		b.set("HoldReasonSubCode", "0")
	} else {
		b.set("JobStatus", "1")
	}

	prio := int64(0)
	if v, d, ok := b.given("priority"); ok {
		if n, good := parseInt(v); !good || n < -1<<31 || n > 1<<31-1 {
			b.err(d, "int-invalid", fmt.Sprintf("priority %q is not an integer", clip(v)))
		} else {
			prio = n
		}
	}
	b.set("JobPrio", intExpr(prio))

	lease := int64(defaultLease)
	if v, d, ok := b.given("job_lease_duration"); ok {
		n, good := parseInt(v)
		switch {
		case !good || n < 0 || n > 1<<31-1:
			b.err(d, "int-invalid", fmt.Sprintf("job_lease_duration %q is not a number of seconds", clip(v)))
		case n > 0 && n < minLease:
			b.warn(d, "JobLeaseDuration less than %d seconds is not allowed, using %d instead", minLease, minLease)
			lease = minLease
		default:
			lease = n
		}
	}
	if lease > 0 {
		b.set("JobLeaseDuration", intExpr(lease))
	}
	if v, d, ok := b.given("job_max_vacate_time"); ok {
		if n, good := parseInt(v); good {
			if n < 0 || n > 1<<31-1 {
				b.err(d, "int-invalid", fmt.Sprintf("job_max_vacate_time %q is not a number of seconds", clip(v)))
			} else {
				b.set("JobMaxVacateTime", intExpr(n))
			}
		} else if b.expr(d, "job_max_vacate_time", v) {
			b.set("JobMaxVacateTime", v)
		}
	}

	b.exprCmd("rank", "Rank", "0.0")
	b.exprCmd("leave_in_queue", "LeaveJobInQueue", "false")
	// The schedd does not act on these two: say so rather than let a
	// script wait for what never happens.
	if v, d, ok := b.given("leave_in_queue"); ok && !strings.EqualFold(strings.TrimSpace(v), "false") {
		b.warn(d, "leave_in_queue has no effect in vmpool: a finished job leaves the queue at once (condor_history shows it)")
	}
	if v, d, ok := b.given("on_exit_remove"); ok && (strings.EqualFold(strings.TrimSpace(v), "false") || strings.TrimSpace(v) == "0") {
		b.warn(d, "on_exit_remove = %s has no effect in vmpool: a job whose guest powers off completes (to keep it, use on_exit_hold = true)", v)
	}
	b.exprCmd("on_exit_hold", "OnExitHold", "false")
	b.exprCmd("on_exit_hold_reason", "OnExitHoldReason", "")
	b.exprCmd("on_exit_hold_subcode", "OnExitHoldSubCode", "")
	b.exprCmd("on_exit_remove", "OnExitRemove", "true")
	b.exprCmd("periodic_hold", "PeriodicHold", "false")
	b.exprCmd("periodic_hold_reason", "PeriodicHoldReason", "")
	b.exprCmd("periodic_hold_subcode", "PeriodicHoldSubCode", "")
	b.exprCmd("periodic_release", "PeriodicRelease", "false")
	b.exprCmd("periodic_release_reason", "PeriodicReleaseReason", "")
	b.exprCmd("periodic_remove", "PeriodicRemove", "false")
	b.exprCmd("periodic_remove_reason", "PeriodicRemoveReason", "")
	b.exprCmd("periodic_vacate", "PeriodicVacate", "")

	for _, s := range []struct{ cmd, attr string }{
		{"batch_name", "JobBatchName"}, {"description", "JobDescription"}, {"submit_event_notes", "SubmitEventNotes"},
	} {
		if v, _, ok := b.given(s.cmd); ok {
			b.set(s.attr, quote(unquote(v)))
		}
	}
	if v, _, ok := b.given("concurrency_limits"); ok {
		b.set("ConcurrencyLimits", quote(strings.ToLower(v)))
	}
	group, _, gok := b.given("accounting_group")
	user, _, uok := b.given("accounting_group_user")
	if gok || uok {
		if !uok {
			user = b.opt.Owner
		}
		b.set("AcctGroupUser", quote(user))
		if gok {
			b.set("AcctGroup", quote(group))
			b.set("AccountingGroup", quote(group+"."+user))
		} else {
			b.set("AccountingGroup", quote(user))
		}
	}
}

// literalAttrs applies +Name and MY.Name; it reports whether they set
// Requirements.
func (b *builder) literalAttrs() bool {
	req := false
	for _, key := range b.tbl.attrKeys {
		d := b.tbl.defs[key]
		name := d.name[3:]
		if !validAttrName(name) {
			b.err(d, "attr-name-invalid", fmt.Sprintf("%q is not a valid attribute name", clip(name)))
			continue
		}
		if protectedAttrs[strings.ToLower(name)] {
			b.err(d, "attr-protected", fmt.Sprintf("attribute %s is set by vmpool and cannot be given", name))
			continue
		}
		v, err := b.x.expand(d.value)
		if err != nil {
			b.expandErr(d, err)
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" {
			b.err(d, "attr-value-empty", fmt.Sprintf("attribute %s has no value", name))
			continue
		}
		if !b.expr(d, d.name, v) {
			continue
		}
		if strings.EqualFold(name, "Requirements") {
			req = true
		}
		b.set(name, v)
	}
	return req
}

func validAttrName(n string) bool {
	if n == "" || !(isAlpha(n[0]) || n[0] == '_') {
		return false
	}
	for i := 1; i < len(n); i++ {
		if !isIdent(n[i]) {
			return false
		}
	}
	return true
}

// attrOrder is the order attributes are listed in; others follow in the
// order they were set.
var attrOrder = func() map[string]int {
	names := strings.Fields(`Owner JobUniverse Cmd Iwd JobVMType JobVMMemory ExecutableSize JobVM_VCPUS
	JobVMCheckpoint JobVMCheckpointInterval JobVMNetworking JobVMNetworkingType JobVMVNCConsole JobVM_MACADDR
	JobVMHardwareVT VMPARAM_vm_Disk VMPARAM_No_Output_VM VMPARAM_Xen_Kernel VMPARAM_Xen_Initrd VMPARAM_Xen_Root
	VMPARAM_Xen_Kernel_Params VMPARAM_VMware_Dir VMPARAM_VMware_Transfer VMPARAM_VMware_SnapshotDisk
	VMPARAM_VMware_VMX_File VMPARAM_VMware_VMDK_Files ShouldTransferFiles WhenToTransferOutput
	TransferExecutable TransferInput FileSystemDomain RequestCpus RequestMemory RequestDisk DiskUsage UserLog
	JobNotification NotifyUser JobStatus HoldReason HoldReasonCode HoldReasonSubCode JobPrio JobLeaseDuration
	JobMaxVacateTime Rank LeaveJobInQueue OnExitHold OnExitHoldReason OnExitHoldSubCode OnExitRemove
	PeriodicHold PeriodicHoldReason PeriodicHoldSubCode PeriodicRelease PeriodicReleaseReason PeriodicRemove
	PeriodicRemoveReason PeriodicVacate JobBatchName JobDescription SubmitEventNotes ConcurrencyLimits
	AcctGroup AcctGroupUser AccountingGroup Requirements`)
	m := make(map[string]int, len(names))
	for i, n := range names {
		m[strings.ToLower(n)] = i
	}
	return m
}()

// sortAttrs puts the job's attributes in the canonical order.
func (b *builder) sortAttrs() {
	type ranked struct {
		a Attr
		r int
	}
	rs := make([]ranked, len(b.j.attrs))
	for i, a := range b.j.attrs {
		rs[i] = ranked{a, b.ranks[i]}
	}
	sort.SliceStable(rs, func(i, k int) bool { return rs[i].r < rs[k].r })
	for i, r := range rs {
		b.j.attrs[i] = r.a
		b.ranks[i] = r.r
	}
	b.idx = nil // positions changed; the builder is done
}
