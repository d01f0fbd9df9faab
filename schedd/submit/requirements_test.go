package submit

import (
	"strings"
	"testing"
)

// The clauses of REFERENCE §2's default Requirements.
const (
	rArch     = `(TARGET.Arch == "X86_64")`
	rHasVM    = `&& (TARGET.HasVM =?= true)`
	rType     = ` && (TARGET.VM_Type == MY.JobVMType)`
	rAvail    = ` && (TARGET.VM_AvailNum > 0)`
	rCkpt     = ` && ((MY.VM_CkptMac =?= UNDEFINED) || (TARGET.VM_All_Guest_Macs =?= UNDEFINED) || (stringListIMember(MY.VM_CkptMac, TARGET.VM_All_Guest_Macs, ",") == FALSE))`
	rDisk     = ` && (TARGET.Disk >= RequestDisk)`
	rTotalMem = ` && (TARGET.TotalMemory >= MY.JobVMMemory)`
	rVMMem    = ` && (TARGET.VM_Memory >= MY.JobVMMemory)`
	rHWVT     = ` && TARGET.VM_HardwareVT`
	rNet      = ` && TARGET.VM_Networking`
	rNetType  = ` && stringListIMember(JobVMNetworkingType,TARGET.VM_Networking_Types,",")`
	rCpus     = ` && (TARGET.Cpus >= RequestCpus)`
	rXfer     = ` && (TARGET.HasFileTransfer)`
	rFSDomain = ` && (TARGET.FileSystemDomain == MY.FileSystemDomain)`
)

func TestDefaultRequirements(t *testing.T) {
	dir := fixtures(t)
	kvmDefault := `(TARGET.Arch == "X86_64")&& (TARGET.HasVM =?= true) && (TARGET.VM_Type == MY.JobVMType) && (TARGET.VM_AvailNum > 0) && (TARGET.Disk >= RequestDisk) && (TARGET.TotalMemory >= MY.JobVMMemory) && (TARGET.VM_Memory >= MY.JobVMMemory) && (TARGET.HasFileTransfer)`
	cases := []struct {
		name string
		src  string
		opt  Options
		want string
	}{
		{"kvm, verbatim from REFERENCE", edit(kvmBase), Options{}, kvmDefault},
		{"kvm", edit(kvmBase), Options{}, rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rXfer},
		{"kvm networking", edit(kvmBase, "vm_networking = true"), Options{},
			rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rNet + rXfer},
		{"kvm networking nat", edit(kvmBase, "vm_networking = true", "vm_networking_type = NAT"), Options{},
			rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rNet + rNetType + rXfer},
		{"kvm networking bridge", edit(kvmBase, "vm_networking = true", "vm_networking_type = bridge"), Options{},
			rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rNet + rNetType + rXfer},
		{"kvm type without networking", edit(kvmBase, "vm_networking_type = nat"), Options{},
			rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rXfer},
		{"kvm checkpoint", edit(kvmBase, "vm_checkpoint = true"), Options{},
			rArch + rHasVM + rType + rAvail + rCkpt + rDisk + rTotalMem + rVMMem + rXfer},
		{"kvm checkpoint networking", edit(kvmBase, "vm_checkpoint = true", "vm_networking = true", "vm_networking_type = user", "when_to_transfer_output = ON_EXIT_OR_EVICT"), Options{},
			rArch + rHasVM + rType + rAvail + rCkpt + rDisk + rTotalMem + rVMMem + rNet + rNetType + rXfer},
		{"kvm 4 cpus", edit(kvmBase, "request_cpus = 4"), Options{},
			rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rCpus + rXfer},
		{"kvm 2 vcpus", edit(kvmBase, "vm_vcpus = 2"), Options{},
			rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rCpus + rXfer},
		{"kvm 1 cpu", edit(kvmBase, "request_cpus = 1"), Options{},
			rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rXfer},
		{"xen kernel file", edit(xenBase), Options{},
			rArch + rHasVM + rType + rAvail + rDisk + rVMMem + rXfer},
		{"xen included", edit(xenBase, "xen_kernel = included", "!xen_root"), Options{},
			rArch + rHasVM + rType + rAvail + rDisk + rVMMem + rXfer},
		{"xen vmx", edit(xenBase, "xen_kernel = vmx", "!xen_root"), Options{},
			rArch + rHasVM + rType + rAvail + rDisk + rVMMem + rHWVT + rXfer},
		{"xen vmx checkpoint networking", edit(xenBase, "xen_kernel = VMX", "!xen_root", "vm_checkpoint = true", "vm_networking = true", "when_to_transfer_output = ON_EXIT_OR_EVICT"), Options{},
			rArch + rHasVM + rType + rAvail + rCkpt + rDisk + rVMMem + rHWVT + rNet + rXfer},
		{"vmware transferred", edit(vmwareBase), Options{},
			rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rXfer},
		{"vmware shared", edit(vmwareBase, "vmware_should_transfer_files = false"), Options{},
			rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rXfer + rFSDomain},
		{"user expression first", edit(kvmBase, "requirements = Memory > 1024"), Options{},
			"(Memory > 1024) && " + rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rXfer},
		{"user references Arch", edit(kvmBase, `requirements = TARGET.Arch == "INTEL"`), Options{},
			`(TARGET.Arch == "INTEL")` + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rXfer},
		{"user references bare names", edit(kvmBase, `requirements = Arch == "X86_64" && VM_Memory > 4096 && HasFileTransfer && Disk > 0`), Options{},
			`(Arch == "X86_64" && VM_Memory > 4096 && HasFileTransfer && Disk > 0)` + rHasVM + rType + rAvail + rTotalMem},
		{"names in strings are not references", edit(kvmBase, `requirements = Machine != "Arch HasVM VM_Type"`), Options{},
			`(Machine != "Arch HasVM VM_Type") && ` + rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rXfer},
		{"MY. prefix is the job", edit(kvmBase, `requirements = MY.Arch =!= undefined`), Options{},
			"(MY.Arch =!= undefined) && " + rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rXfer},
		{"function names are not references", edit(kvmBase, `requirements = HasVM(1)`), Options{},
			"(HasVM(1)) && " + rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rXfer},
		{"checkpoint guard skipped", edit(kvmBase, "vm_checkpoint = true", `requirements = MY.VM_CkptMac =?= undefined`), Options{},
			"(MY.VM_CkptMac =?= undefined) && " + rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rXfer},
		{"append requirements", edit(kvmBase, "requirements = Memory > 1"), Options{AppendRequirements: `TARGET.Rack == "r1"`},
			`(Memory > 1) && (TARGET.Rack == "r1") && ` + rArch + rHasVM + rType + rAvail + rDisk + rTotalMem + rVMMem + rXfer},
		{"other arch", edit(kvmBase), Options{Arch: "aarch64"},
			strings.Replace(kvmDefault, "X86_64", "aarch64", 1)},
		{"+Requirements disables all", edit(kvmBase, "+Requirements = TARGET.Name == \"slot1@a\""), Options{},
			`TARGET.Name == "slot1@a"`},
		{"MY.Requirements disables all", edit(kvmBase, "requirements = Memory > 1", "MY.Requirements = true"), Options{},
			`true`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, dir, tc.src, tc.opt)
			if got := attr(c, "Requirements"); got != tc.want {
				t.Errorf("Requirements\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestScanRefs(t *testing.T) {
	r, err := scanRefs(`TARGET.Memory > MY.Need && regexp("Arch", Name) && 'odd name' == 1.5e3 && foo.bar && target . Disk > 0 && true`)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"memory", "disk"} {
		if !r.target[want] {
			t.Errorf("missing TARGET.%s", want)
		}
	}
	if !r.my["need"] || !r.bare["name"] || !r.bare["odd name"] || !r.bare["foo"] {
		t.Errorf("refs %+v", r)
	}
	for _, not := range []string{"regexp", "arch", "bar", "true", "e3"} {
		if r.bare[not] {
			t.Errorf("%s is not a reference", not)
		}
	}
	if _, err := scanRefs(`Name == "open`); err == nil {
		t.Error("unterminated string accepted")
	}
}
