package startd

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/startd/hypervisor"
)

// DiskParam is one entry of VMPARAM_vm_Disk: file:device:permission[:format].
type DiskParam struct {
	File, Device, Perm, Format string
}

// Writable reports whether the guest may write the disk (w or rw).
func (d DiskParam) Writable() bool { return d.Perm == "w" || d.Perm == "rw" }

// ParseDisks parses a vm_disk value. Errors are hypervisor.SpecErrors with
// code notFound or invalid (e.g. KVM_NO_DISK_PARAM, KVM_INVALID_DISK_PARAM).
func ParseDisks(s, notFound, invalid string) ([]DiskParam, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, &hypervisor.SpecError{Code: notFound, Msg: "the job names no disk (vm_disk)"}
	}
	var out []DiskParam
	for _, ent := range strings.Split(s, ",") {
		ent = strings.TrimSpace(ent)
		f := strings.Split(ent, ":")
		if len(f) < 3 || len(f) > 4 {
			return nil, &hypervisor.SpecError{Code: invalid, Msg: fmt.Sprintf("vm_disk entry %q: want file:device:permission[:format]", ent)}
		}
		d := DiskParam{File: strings.TrimSpace(f[0]), Device: strings.TrimSpace(f[1]), Perm: strings.ToLower(strings.TrimSpace(f[2]))}
		if len(f) == 4 {
			d.Format = strings.ToLower(strings.TrimSpace(f[3]))
		}
		if d.File == "" || d.Device == "" || d.Perm == "" {
			return nil, &hypervisor.SpecError{Code: invalid, Msg: fmt.Sprintf("vm_disk entry %q has an empty field", ent)}
		}
		out = append(out, d)
	}
	return out, nil
}

// gahpPrefix is the VMGAHP error prefix of a vm_type ("KVM", "XEN", ...).
func gahpPrefix(vmType string) string { return strings.ToUpper(vmType) }

// jobSpec turns a job ad into the VM spec for a claim: disks resolved in
// the scratch directory (transferred files) or in place (absolute paths on
// a shared filesystem), memory, vcpus, networking. It also returns the
// disks that may come back to the submitter.
func jobSpec(cfg *Config, job *classad.Ad, claimID, scratch string, inputs []events.FileRef) (hypervisor.Spec, []outputDisk, error) {
	pfx := gahpPrefix(cfg.VMType)
	spec := hypervisor.Spec{Name: "vmpool-" + shortID(claimID), Dir: scratch, Params: map[string]string{}}
	mem, ok := job.EvalInt("JobVMMemory")
	if !ok || mem <= 0 {
		return spec, nil, &hypervisor.SpecError{Code: "JOBCLASSAD_NO_VM_MEMORY_PARAM", Msg: "the job has no JobVMMemory (vm_memory)"}
	}
	spec.MemoryMiB = int(mem)
	// xen_kernel = vmx asks for hardware virtualisation; a machine without
	// VM_HARDWARE_VT refuses it, as HTCondor's vm-gahp does (the job
	// overrode its Requirements, or the configuration changed under it).
	if hvt, ok := job.EvalBool("JobVMHardwareVT"); ok && hvt && !cfg.HardwareVT {
		return spec, nil, &hypervisor.SpecError{Code: "MISMATCHED_HARDWARE_VT",
			Msg: "the job asks for hardware virtualisation (xen_kernel = vmx) but this machine does not offer it (VM_HARDWARE_VT = false)"}
	}
	spec.VCPUs = 1
	if v, ok := job.EvalInt("JobVM_VCPUS"); ok && v > 0 {
		spec.VCPUs = int(v)
	}
	if v, ok := job.EvalBool("JobVMVNCConsole"); ok && v {
		spec.VNC = true
	}
	// A job that checkpoints keeps its disk writes in overlays, so that a
	// checkpoint ships only the blocks the guest changed.
	if v, ok := job.EvalBool("JobVMCheckpoint"); ok && v && !cfg.WholeDiskCheckpoints {
		spec.DeltaDisks = true
	}
	transferred := map[string]events.FileRef{}
	for _, in := range inputs {
		transferred[in.Name] = in
	}
	var outs []outputDisk
	if cfg.VMType != "vmware" {
		diskStr, _ := job.EvalString("VMPARAM_vm_Disk")
		disks, err := ParseDisks(diskStr, pfx+"_NO_DISK_PARAM", pfx+"_INVALID_DISK_PARAM")
		if err != nil {
			return spec, nil, err
		}
		for _, d := range disks {
			hd := hypervisor.Disk{Device: d.Device, Writable: d.Writable(), Format: d.Format}
			if ref, ok := transferred[d.File]; ok {
				hd.Path = filepath.Join(scratch, d.File)
				if d.Writable() {
					outs = append(outs, outputDisk{name: d.File, path: hd.Path, in: ref})
				}
			} else if filepath.IsAbs(d.File) {
				hd.Path = d.File // shared filesystem: used in place, never returned
			} else {
				return spec, nil, &hypervisor.SpecError{Code: pfx + "_INVALID_DISK_PARAM",
					Msg: fmt.Sprintf("vm_disk file %q was not transferred (list it in transfer_input_files) and is not an absolute path", d.File)}
			}
			spec.Disks = append(spec.Disks, hd)
		}
	}
	if on, ok := job.EvalBool("JobVMNetworking"); ok && on {
		network, err := jobNetwork(cfg, job, claimID)
		if err != nil {
			return spec, nil, err
		}
		spec.Network = network
	}
	for attr, field := range map[string]*string{
		"VMPARAM_Xen_Kernel": &spec.Kernel, "VMPARAM_Xen_Initrd": &spec.Initrd,
		"VMPARAM_Xen_Root": &spec.Root, "VMPARAM_Xen_Kernel_Params": &spec.KernelParams,
	} {
		if v, ok := job.EvalString(attr); ok {
			if (attr == "VMPARAM_Xen_Kernel" || attr == "VMPARAM_Xen_Initrd") && v != "" && v != "included" && v != "vmx" {
				if _, sent := transferred[filepath.Base(v)]; sent {
					v = filepath.Join(scratch, filepath.Base(v))
				}
			}
			*field = v
		}
	}
	if v, ok := job.EvalString("VMPARAM_VMware_VMX_File"); ok && v != "" {
		spec.VMX = filepath.Join(scratch, filepath.Base(v))
	}
	if cfg.VMType == "vmware" {
		// vmware_should_transfer_files: the files of vmware_dir are in
		// the scratch dir and those the VM changed go back; otherwise the
		// disks are used in place from vmware_dir, always through a
		// snapshot, and nothing goes back.
		transfer, _ := job.EvalBool("VMPARAM_VMware_Transfer")
		snapshot, ok := job.EvalBool("VMPARAM_VMware_SnapshotDisk")
		spec.SnapshotDisk = snapshot || !ok || !transfer
		spec.VMwareDir, _ = job.EvalString("VMPARAM_VMware_Dir")
		if transfer {
			for _, in := range inputs {
				outs = append(outs, outputDisk{name: in.Name, path: filepath.Join(scratch, in.Name), in: in})
			}
		}
	}
	for _, name := range job.FlatNamesWhere(simParam) {
		spec.Params[name] = job.Eval(name).String()
	}
	return spec, outs, nil
}

// simParam reports whether a job attribute is a parameter of the sim
// driver (Sim*), without lowering the name.
func simParam(name string) bool { return len(name) >= 3 && strings.EqualFold(name[:3], "sim") }

// jobNetwork is the network of a job with vm_networking = true, as
// HTCondor's vm-gahp decides it: the job's vm_networking_type if this
// machine offers it, else VM_NETWORKING_DEFAULT_TYPE (or, if the machine
// does not offer that, the first of its VM_NETWORKING_TYPE); what it
// offers is cfg.NetworkingTypes, which the starter narrows to the types
// the machine advertises (those of VM_NETWORKING_TYPE it can give); the job's
// vm_macaddr, else one generated for this claim. A job that asks for
// networking this machine does not give is refused, as vm-gahp refuses it
// (its Requirements were overridden, or the configuration changed under
// it): VMGAHP_ERR_JOBCLASSAD_MISMATCHED_NETWORKING(_TYPE).
func jobNetwork(cfg *Config, job *classad.Ad, claimID string) (hypervisor.Network, error) {
	if !cfg.Networking {
		return hypervisor.Network{}, &hypervisor.SpecError{Code: "JOBCLASSAD_MISMATCHED_NETWORKING",
			Msg: "the job asks for networking (vm_networking = true) but this machine does not offer it (VM_NETWORKING = false)"}
	}
	if len(cfg.NetworkingTypes) == 0 {
		return hypervisor.Network{}, &hypervisor.SpecError{Code: "JOBCLASSAD_MISMATCHED_NETWORKING",
			Msg: "the job asks for networking (vm_networking = true) but this machine can give none of the types of its VM_NETWORKING_TYPE (its log says why)"}
	}
	offered := func(t string) bool {
		for _, o := range cfg.NetworkingTypes {
			if strings.EqualFold(o, t) {
				return true
			}
		}
		return false
	}
	typ, _ := job.EvalString("JobVMNetworkingType")
	typ = strings.ToLower(strings.TrimSpace(typ))
	switch {
	case typ != "" && !offered(typ):
		return hypervisor.Network{}, &hypervisor.SpecError{Code: "JOBCLASSAD_MISMATCHED_NETWORKING_TYPE",
			Msg: fmt.Sprintf("the job asks for %s networking (vm_networking_type) but this machine offers %s (VM_NETWORKING_TYPE)", typ, strings.Join(cfg.NetworkingTypes, ", "))}
	case typ == "" && offered(cfg.DefaultNetworkingType):
		typ = strings.ToLower(cfg.DefaultNetworkingType)
	case typ == "":
		typ = strings.ToLower(cfg.NetworkingTypes[0])
	}
	mac, _ := job.EvalString("JobVM_MACADDR")
	if mac == "" {
		mac = generatedMAC(cfg.Host+"\x00"+cfg.Dir, claimID)
	}
	return hypervisor.Network{Enabled: true, Type: typ, MAC: mac, Bridge: cfg.BridgeInterface}, nil
}

// outputDisk is a writable transferred disk that goes back when changed.
type outputDisk struct {
	name string
	path string
	in   events.FileRef
}

func shortID(claimID string) string {
	h := sha256.Sum256([]byte(claimID))
	return fmt.Sprintf("%x", h[:6])
}

// generatedMAC derives a MAC from the claim and the startd's scope (its
// host and execute directory), unique per job run (QEMU's 52:54:00
// prefix, unicast and locally administered). A claim id alone
// ("negotiator#9") recurs in every pool: two pools on one bridge gave
// their VMs the same address.
func generatedMAC(scope, claimID string) string {
	h := sha256.Sum256([]byte(scope + "\x00" + claimID))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", h[0], h[1], h[2])
}
