package submit

import (
	"fmt"
	"strings"
)

// reqParams are the facts of a job the default Requirements depend on.
type reqParams struct {
	vmType     string
	checkpoint bool
	networking bool
	netTyped   bool
	hardwareVT bool
	cpusClause bool // RequestCpus > 1 or an expression
	diskClause bool
	fsDomain   bool // vmware files on a shared file system
}

// requirements sets the job's Requirements: the user's expression first in
// parentheses, then condor_submit's clauses for a vm job, each skipped when
// the user's expression already refers to its attribute.
func (b *builder) requirements(p reqParams) {
	user := ""
	var r refs
	if v, d, ok := b.given("requirements"); ok {
		if !b.expr(d, "requirements", v) {
			return
		}
		r, _ = scanRefs(v)
		if r.bare["requirements"] || r.my["requirements"] || r.target["requirements"] {
			b.err(d, "requirements-circular", fmt.Sprintf("requirements = %s is circular: it refers to Requirements", clip(v)))
			return
		}
		user = v
	} else if d != nil {
		return // expansion failed, reported
	}
	b.set("Requirements", defaultRequirements(user, r, b.opt.arch(), b.opt.AppendRequirements, p))
}

// defaultRequirements builds the Requirements text exactly as condor_submit
// does for the vm universe (REFERENCE §2), so that the kvm default reads
//
//	(TARGET.Arch == "X86_64")&& (TARGET.HasVM =?= true) && (TARGET.VM_Type == MY.JobVMType) && ...
func defaultRequirements(user string, r refs, arch, appendReq string, p reqParams) string {
	var b strings.Builder
	if user != "" {
		b.WriteString("(" + user + ")")
	}
	if appendReq != "" {
		if b.Len() > 0 {
			b.WriteString(" && ")
		}
		b.WriteString("(" + appendReq + ")")
		r = mergeRefs(r, appendReq)
	}
	and := func(clause string) {
		if b.Len() > 0 {
			b.WriteString(" && ")
		}
		b.WriteString(clause)
	}
	if !r.machine("Arch") {
		and(fmt.Sprintf("(TARGET.Arch == %s)", quote(arch)))
	}
	if !r.machine("HasVM") {
		// condor_submit writes this clause without a space before &&.
		if b.Len() > 0 {
			b.WriteString("&& ")
		}
		b.WriteString("(TARGET.HasVM =?= true)")
	}
	if !r.machine("VM_Type") {
		and("(TARGET.VM_Type == MY.JobVMType)")
	}
	if !r.machine("VM_AvailNum") {
		and("(TARGET.VM_AvailNum > 0)")
	}
	if p.checkpoint && !r.job("VM_CkptMac") {
		// VMs with the same MAC address cannot run on one machine.
		and(`((MY.VM_CkptMac =?= UNDEFINED) || (TARGET.VM_All_Guest_Macs =?= UNDEFINED) || (stringListIMember(MY.VM_CkptMac, TARGET.VM_All_Guest_Macs, ",") == FALSE))`)
	}
	if p.diskClause && !r.machine("Disk") {
		and("(TARGET.Disk >= RequestDisk)")
	}
	if p.vmType != "xen" && !r.machine("TotalMemory") {
		and("(TARGET.TotalMemory >= MY.JobVMMemory)")
	}
	if !r.machine("VM_Memory") {
		and("(TARGET.VM_Memory >= MY.JobVMMemory)")
	}
	if p.hardwareVT && !r.machine("VM_HardwareVT") {
		and("TARGET.VM_HardwareVT")
	}
	if p.networking {
		if !r.machine("VM_Networking") {
			and("TARGET.VM_Networking")
		}
		if p.netTyped && !r.machine("VM_Networking_Types") {
			and(`stringListIMember(JobVMNetworkingType,TARGET.VM_Networking_Types,",")`)
		}
	}
	if p.cpusClause && !r.machine("Cpus") {
		and("(TARGET.Cpus >= RequestCpus)")
	}
	if !r.machine("HasFileTransfer") {
		and("(TARGET.HasFileTransfer)")
	}
	if p.fsDomain && !r.machine("FileSystemDomain") {
		and("(TARGET.FileSystemDomain == MY.FileSystemDomain)")
	}
	return b.String()
}

func mergeRefs(r refs, src string) refs {
	o, err := scanRefs(src)
	if err != nil {
		return r
	}
	if r.bare == nil {
		return o
	}
	for _, pair := range [][2]map[string]bool{{r.target, o.target}, {r.my, o.my}, {r.bare, o.bare}} {
		for k := range pair[1] {
			pair[0][k] = true
		}
	}
	return r
}
