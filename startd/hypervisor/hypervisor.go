// Package hypervisor declares what the startd needs from a virtual machine
// monitor: find out whether it works here (Probe), boot a VM (Start), find a
// VM again after the startd restarted (Reattach), wait for the guest to power
// itself off, stop it, and optionally checkpoint it.
//
// The startd owns this interface; the drivers in qemu/, xen/, vmware/ and
// sim/ implement it. Drivers know nothing of schedds, negotiators, claims or
// job queues: they are handed a Spec naming files in a scratch directory and
// report what the guest did.
package hypervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// Driver boots and finds VMs of one vm_type. Implementations must be safe
// for concurrent use: the startd runs several VMs at once.
type Driver interface {
	// Type is the vm_type this driver serves: "kvm", "xen", "vmware" or "sim".
	Type() string
	// Probe reports whether the hypervisor works on this machine. A missing
	// tool is Fingerprint{Detected: false} with a Reason, not an error; an
	// error means the probe itself could not run.
	Probe(ctx context.Context) (Fingerprint, error)
	// Start boots a VM described by spec and returns once the hypervisor
	// runs it (not once the guest has booted). The VM keeps running if ctx
	// is cancelled afterwards: ctx bounds only the start-up.
	Start(ctx context.Context, spec Spec) (VM, error)
	// Reattach finds a VM started earlier, possibly by another process of
	// the startd, from the Handle recorded then. It returns ErrGone when
	// the VM no longer runs.
	Reattach(ctx context.Context, h Handle) (VM, error)
}

// VM is one running virtual machine. Methods are safe for concurrent use.
type VM interface {
	// Handle is what must be recorded to Reattach after a restart.
	Handle() Handle
	// Wait blocks until the VM has stopped (the guest powered off, it was
	// stopped or killed, or the hypervisor died) or ctx is done.
	Wait(ctx context.Context) (Exit, error)
	// Status asks the hypervisor for the VM's state now; the startd calls
	// it every VM_STATUS_INTERVAL as HTCondor's periodic check does.
	Status(ctx context.Context) (State, error)
	// Stop asks the guest to power off (ACPI) and waits up to grace for it,
	// then kills the VM. grace 0 kills at once. Stop returns once the
	// hypervisor process is gone; calling it on a stopped VM is a no-op.
	Stop(ctx context.Context, grace time.Duration) error
}

// Detacher is implemented by VMs that can be let go without stopping
// them: Detach closes the driver's connections to the VM and ends whatever
// the driver runs to watch it, and the VM keeps running, to be found again
// with Reattach and its Handle. The startd detaches its VMs when it shuts
// down but leaves them running (and tests do, to simulate a restart).
// After Detach the VM's other methods return ErrDetached; Detach itself is
// idempotent.
type Detacher interface {
	Detach() error
}

// Doner is implemented by VMs that can tell that they have ended without
// a goroutine blocked in Wait: Done is closed once the VM has ended, and
// Wait then returns at once. The startd watches such a VM by selecting on
// Done (a pool of 100,000 simulated VMs saves as many goroutines); it
// watches others with a goroutine in Wait. A Detach does not close Done.
type Doner interface {
	Done() <-chan struct{}
}

// LeftoverClearer is implemented by drivers whose VMs outlive the startd:
// ClearLeftover ends a VM that an earlier Start left in dir (the spec's
// Dir) and that no recorded Handle names: the startd was killed after the
// hypervisor started the VM and before it recorded the handle, so nothing
// would ever reattach to it or stop it. The startd calls it before it
// starts a claim's VM again. It is a no-op when dir holds none.
type LeftoverClearer interface {
	ClearLeftover(ctx context.Context, dir string) error
}

// Checkpointer is implemented by VMs whose state can be saved and resumed
// (vm_checkpoint). Checkpoint writes the memory state and the disks into
// dir; with Continue the VM runs on afterwards (a periodic checkpoint),
// otherwise the VM is stopped when Checkpoint returns (an eviction).
type Checkpointer interface {
	Checkpoint(ctx context.Context, dir string, opt CheckpointOptions) (Checkpoint, error)
}

// CheckpointOptions tunes a Checkpoint.
type CheckpointOptions struct {
	Continue bool // keep the VM running after the save
}

// Checkpoint lists the files a checkpoint consists of, relative to its dir.
// Spec.Resume names such a dir to resume from it.
type Checkpoint struct {
	Files []string
}

// Fingerprint is what a driver found at Probe time; the startd turns it into
// machine-ad attributes (VM_Type, VM_Networking_Types, ...).
type Fingerprint struct {
	Type       string   // vm_type, e.g. "kvm"
	Detected   bool     // the tool exists and answered
	Healthy    bool     // it can run VMs now
	Reason     string   // why not, when !Detected or !Healthy
	Version    string   // e.g. "QEMU 7.2.22"
	Networking []string // networking types it can give guests: "nat", "bridge"
	// NetworkingNote says why a type the driver knows is not in
	// Networking, and how to give it ("" when it gives them all).
	NetworkingNote string
	Attrs          map[string]string // extra facts, e.g. "accel": "tcg"
	// NoFiles: the driver's VMs open no files (sim), so the account they
	// would run as need not reach the execute directory.
	NoFiles bool
}

// Disk is one vm_disk entry, resolved to a file in the VM's scratch dir.
type Disk struct {
	Path     string // absolute path of the image file
	Device   string // guest device as the job named it: hda, vda, sda2, xvda, ...
	Writable bool   // permission w/rw
	Format   string // "raw", "qcow2", ... ("" = guess from content/extension)
}

// Network is the networking a job asked for and the machine allows.
type Network struct {
	Enabled bool
	Type    string // "nat" or "bridge"
	MAC     string // vm_macaddr, or one the startd generated
	Bridge  string // VM_NETWORKING_BRIDGE_INTERFACE, for Type "bridge"
}

// Spec describes one VM to boot.
type Spec struct {
	Name      string // unique among this startd's VMs; safe as a file name
	Dir       string // scratch directory; the driver keeps its runtime files here
	MemoryMiB int
	VCPUs     int
	Disks     []Disk
	Network   Network
	VNC       bool
	// Resume names a directory holding a Checkpoint to resume from instead
	// of booting; "" boots the disks. Disks must name the same devices as
	// when the checkpoint was taken; the driver puts the checkpoint's
	// content into the writable ones before the guest continues, so the
	// job's disk files hold the VM's final state as after a plain boot.
	// The checkpoint dir itself is only read.
	Resume string
	// Xen: the guest's kernel, initrd, root device and kernel parameters
	// (xen_kernel = path). The qemu driver boots them directly when set
	// (the xl emulator's PV domains); empty, the guest boots its disk.
	Kernel, Initrd, Root, KernelParams string
	// VMware only: the .vmx to run.
	VMX string
	// VMware only: vmware_dir on the submit machine, where the disks a
	// job did not transfer are found (on a shared file system), and
	// whether the VM writes to snapshot disks rather than its own
	// (vmware_snapshot_disk; always for disks used in place).
	VMwareDir    string
	SnapshotDisk bool
	// Params carries further vm_type specific settings (e.g. sim run time).
	Params map[string]string
	// DeltaDisks asks the driver to keep the guest's writes to its
	// writable disks apart from the disks as they arrived (a qcow2 overlay
	// over each), so that a checkpoint carries only what changed; the
	// disks hold the guest's writes again once it powers off. Drivers that
	// cannot ignore it.
	DeltaDisks bool
	// RunAs, when set, is the unprivileged account the hypervisor process
	// runs as (the startd runs as root; HTCondor's VM_UNIV_NOBODY_USER).
	// The driver gives it the VM's scratch directory. Drivers whose tool
	// must run as root (xl) ignore it.
	RunAs *Account
}

// Account is a local user a VM runs as.
type Account struct {
	Name     string
	UID, GID uint32
	Groups   []uint32 // supplementary groups (e.g. the group of /dev/kvm)
}

// Handle identifies a running VM across startd restarts. It is recorded in
// the startd's event log, so it must stay small and serialisable.
type Handle struct {
	Type string            `json:"type"`
	Name string            `json:"name"`
	Dir  string            `json:"dir"`
	PID  int               `json:"pid,omitempty"`
	Data map[string]string `json:"data,omitempty"`
}

// State is a VM's state as the hypervisor reports it.
type State string

// VM states.
const (
	StateRunning State = "running"
	StatePaused  State = "paused"
	StateStopped State = "stopped" // the guest powered off (HTCondor's "Stopped")
	StateGone    State = "gone"    // the hypervisor process is gone
)

// Exit tells how a VM stopped.
type Exit struct {
	// PoweredOff is true when the guest shut itself down (poweroff, ACPI
	// S5). That, and only that, completes a vm universe job.
	PoweredOff bool
	// Reason is the hypervisor's word for it, e.g. "guest-shutdown",
	// "host-qmp-quit", "killed", "crashed: ...".
	Reason string
	// UserCPU and SysCPU are the CPU the hypervisor's process used for
	// the VM, in user and kernel mode (HTCondor's RemoteUserCpu and
	// RemoteSysCpu). Zero when the driver cannot tell.
	UserCPU, SysCPU time.Duration
}

// ErrDetached is returned by the methods of a VM after Detach.
var ErrDetached = errors.New("hypervisor: vm detached")

// ErrBadSpec is matched (errors.Is) by every SpecError.
var ErrBadSpec = errors.New("hypervisor: bad vm spec")

// SpecError is a failure the job caused rather than the machine: a missing
// or malformed disk, a checkpoint that does not fit the spec, an image the
// hypervisor refuses. The startd holds such a job (HoldReasonCode 6,
// FailedToCreateProcess) instead of trying it elsewhere. Code is the
// vm-gahp name HTCondor puts in HoldReason, e.g. "KVM_INVALID_DISK_PARAM",
// "KVM_NO_DISK_PARAM", "KVM_MISMATCHED_CHECKPOINT", "BAD_IMAGE".
type SpecError struct {
	Code string // stable, from HTCondor's VMGAHP_ERR_* names without the prefix
	Msg  string // what is wrong, naming the offending value
}

func (e *SpecError) Error() string { return e.Msg + " [" + e.Code + "]" }

// Is makes errors.Is(err, ErrBadSpec) true for every SpecError.
func (e *SpecError) Is(target error) bool { return target == ErrBadSpec }

// ErrGone is returned by Reattach (and may be by other methods) when the VM
// no longer exists.
var ErrGone = errors.New("hypervisor: vm is gone")

// KeptPath is where a driver resuming a checkpoint keeps the job's disk at
// path while the checkpoint's copy of it takes its place.
func KeptPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".before-resume")
}

// SettleReplaced ends a resume's replacement of the job's disks (each
// moved to KeptPath first): a VM that runs keeps the checkpoint's copies;
// a resume that failed puts the job's own disks back, so that what the
// startd does next (an older checkpoint, or a boot of the original disks)
// starts from them.
func SettleReplaced(paths []string, running bool) {
	for _, p := range paths {
		if running {
			os.Remove(KeptPath(p))
		} else {
			os.Rename(KeptPath(p), p)
		}
	}
}
