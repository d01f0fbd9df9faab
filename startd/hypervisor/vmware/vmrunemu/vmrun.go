package vmrunemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/emuvm"
	"github.com/vmpool/vmpool/startd/hypervisor/vmware/vmformat"
)

// Version is what the emulator says it is (the first line of its help).
const Version = "vmrun version 1.17.0 build-vmpool-emulated"

const (
	// exitError is vmrun's status for a failed command (-1).
	exitError = 255
	// softStopTimeout bounds `stop soft`: VMware waits that long for its
	// Tools to shut the guest down.
	softStopTimeout = 5 * time.Minute
	pollGone        = 100 * time.Millisecond
	// qemuMemoryState is the memory file of the qemu driver's checkpoint,
	// kept as the .vmem; everything else goes into the .vmss.
	qemuMemoryState = "memory.state"
	vmssMagic       = "vmpool vmrun-emulator suspended state v1\n"
)

// Options configures one run of the emulator.
type Options struct {
	// StateDir is the emulated host's state: its running VMs.
	StateDir string
	// QEMU and QEMUImg override the binaries guests run under and that
	// make snapshot disks.
	QEMU, QEMUImg string
	// Dir is the directory relative paths are taken from ("" = the
	// process's working directory).
	Dir string
	// Stdout and Stderr receive the command's output.
	Stdout, Stderr io.Writer
	// Logger receives the emulator's own debug records; nil discards them.
	Logger *slog.Logger
}

// DefaultStateDir is where an emulator invoked through a link at linkPath
// keeps its host's state: beside the link, so that each directory of
// links is one emulated host.
func DefaultStateDir(linkPath string) string { return linkPath + ".state" }

type meta struct {
	VMX string `json:"vmx"`
}

type vmrun struct {
	o    Options
	host *emuvm.Host
	out  io.Writer
}

// Main runs one `vmrun` command line (args without the program name) and
// returns its exit status.
func Main(ctx context.Context, args []string, o Options) int {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Dir == "" {
		o.Dir, _ = os.Getwd()
	}
	if o.QEMUImg == "" {
		o.QEMUImg = "qemu-img"
	}
	r := &vmrun{o: o, out: o.Stdout}
	// Authentication flags come first; all are accepted and ignored, as a
	// local Workstation host ignores them.
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-T", "-h", "-P", "-u", "-p", "-vp", "-gu", "-gp":
			if len(args) < 2 {
				return r.fail("Invalid argument: %s needs a value", args[0])
			}
			args = args[2:]
		case "-help", "--help", "-?":
			r.usage()
			return 0
		default:
			return r.fail("Unrecognized option: %s", args[0])
		}
	}
	if len(args) == 0 {
		r.usage()
		return exitError
	}
	cmd, args := args[0], args[1:]
	run, ok := map[string]func(context.Context, []string) int{
		"start": r.start, "stop": r.stop, "suspend": r.suspend, "pause": r.pause, "unpause": r.unpause,
		"list": r.list, "snapshot": r.snapshot, "deleteSnapshot": r.deleteSnapshot,
		"revertToSnapshot": r.revertToSnapshot, "listSnapshots": r.listSnapshots,
	}[cmd]
	if !ok {
		return r.fail("Unrecognized command: %s", cmd)
	}
	host, err := emuvm.Open(emuvm.Config{Dir: o.StateDir, QEMU: o.QEMU, QEMUImg: o.QEMUImg, Logger: o.Logger})
	if err != nil {
		return r.fail("Unable to connect to host: %v", err)
	}
	r.host = host
	return run(ctx, args)
}

func (r *vmrun) usage() {
	fmt.Fprintf(r.out, `
%s

Usage: vmrun [AUTHENTICATION-FLAGS] COMMAND [PARAMETERS]

(vmpool's emulator: the flags are accepted and ignored; guests run under QEMU)

POWER COMMANDS           PARAMETERS           DESCRIPTION
start                    Path to vmx file     Start a VM
                         [gui|nogui]
stop                     Path to vmx file     Stop a VM
                         [hard|soft]
suspend                  Path to vmx file     Suspend a VM
                         [hard|soft]
pause                    Path to vmx file     Pause a VM
unpause                  Path to vmx file     Unpause a VM

SNAPSHOT COMMANDS        PARAMETERS           DESCRIPTION
listSnapshots            Path to vmx file     List all snapshots in a VM
snapshot                 Path to vmx file     Create a snapshot of a VM
                         Snapshot name
deleteSnapshot           Path to vmx file     Remove a snapshot from a VM
                         Snapshot name
revertToSnapshot         Path to vmx file     Set VM state to a snapshot
                         Snapshot name

GENERAL COMMANDS         PARAMETERS           DESCRIPTION
list                                          List all running VMs
`, Version)
}

// fail prints an error as vmrun does (on standard output) and returns its
// exit status.
func (r *vmrun) fail(format string, args ...any) int {
	fmt.Fprintf(r.out, "Error: "+format+"\n", args...)
	return exitError
}

// keyOf names the guest of a .vmx.
func keyOf(vmx string) string {
	sum := sha256.Sum256([]byte(vmx))
	return "vm-" + hex.EncodeToString(sum[:8])
}

func (r *vmrun) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(r.o.Dir, p)
}

// load reads a .vmx as VMware opens it.
func (r *vmrun) load(vmx string) (*vmformat.VMX, int) {
	b, err := os.ReadFile(vmx)
	if err != nil {
		return nil, r.fail("Cannot open VM: %s, The virtual machine cannot be found", vmx)
	}
	v, err := vmformat.ParseVMX(b)
	if err != nil {
		return nil, r.fail("Cannot open VM: %s, The configuration file has a %v", vmx, err)
	}
	if _, ok := v.Get("virtualHW.version"); !ok {
		return nil, r.fail("Cannot open VM: %s, The file specified is not a virtual machine (no virtualHW.version)", vmx)
	}
	return v, 0
}

func saveVMX(vmx string, v *vmformat.VMX) error {
	tmp := vmx + ".tmp"
	if err := os.WriteFile(tmp, v.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, vmx)
}

// running reports whether the VM of vmx runs (or is paused), forgetting a
// guest that has powered off or vanished.
func (r *vmrun) running(ctx context.Context, vmx string) (bool, error) {
	key := keyOf(vmx)
	st, err := r.host.State(ctx, key)
	if errors.Is(err, emuvm.ErrNoGuest) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch st {
	case emuvm.Running, emuvm.Paused:
		return true, nil
	case emuvm.Gone:
		// The VM's process died: VMware shows such a VM powered off.
		if err := r.host.Kill(ctx, key); err != nil && !errors.Is(err, emuvm.ErrNoGuest) {
			return false, err
		}
	}
	return false, nil
}

func (r *vmrun) start(ctx context.Context, args []string) int {
	if len(args) < 1 || len(args) > 2 {
		return r.fail("Invalid number of arguments: start takes the path to a vmx file and gui or nogui")
	}
	if len(args) == 2 && args[1] != "gui" && args[1] != "nogui" {
		return r.fail("Invalid argument: %s (want gui or nogui)", args[1])
	}
	vmx := r.abs(args[0])
	v, code := r.load(vmx)
	if code != 0 {
		return code
	}
	on, err := r.running(ctx, vmx)
	if err != nil {
		return r.fail("Unable to get the state of the virtual machine: %v", err)
	}
	if on {
		return r.fail("The virtual machine is already running: %s", vmx)
	}
	spec, msg := r.spec(vmx, v)
	if msg != "" {
		return r.fail("%s", msg)
	}
	var vmss, vmem string
	if state, _ := v.Get("checkpoint.vmState"); state != "" {
		vmss = resolve(vmx, state)
		vmem = strings.TrimSuffix(vmss, ".vmss") + ".vmem"
		tmp, err := os.MkdirTemp(r.host.Dir(), "resume-")
		if err != nil {
			return r.fail("%v", err)
		}
		defer os.RemoveAll(tmp)
		if _, err := emuvm.Unpack(vmss, vmssMagic, tmp); err != nil {
			return r.fail("Cannot open VM: %s, The suspended state file %s cannot be read: %v", vmx, vmss, err)
		}
		if _, err := os.Stat(vmem); err == nil {
			if err := os.Symlink(vmem, filepath.Join(tmp, qemuMemoryState)); err != nil {
				return r.fail("%v", err)
			}
		}
		spec.Resume = tmp
	}
	if err := saveVMX(vmx, v); err != nil { // a generated MAC address, written back
		return r.fail("Cannot write %s: %v", vmx, err)
	}
	if _, err := r.host.Start(ctx, keyOf(vmx), spec, meta{VMX: vmx}); err != nil {
		var se *hypervisor.SpecError
		if errors.As(err, &se) {
			return r.fail("Cannot open VM: %s, %s", vmx, se.Msg)
		}
		return r.fail("Unable to start the virtual machine %s: %v", vmx, err)
	}
	if vmss != "" {
		// Resumed: VMware discards the suspended state.
		os.Remove(vmss)
		os.Remove(vmem)
		v.Delete("checkpoint.vmState")
		if err := saveVMX(vmx, v); err != nil {
			return r.fail("Cannot write %s: %v", vmx, err)
		}
	}
	return 0
}

func resolve(vmx, name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(filepath.Dir(vmx), name)
}

// spec turns a .vmx into the QEMU guest that emulates it, checking what
// VMware checks when it powers a VM on. It may add
// ethernet0.generatedAddress to v. A non-empty message is the error.
func (r *vmrun) spec(vmx string, v *vmformat.VMX) (hypervisor.Spec, string) {
	spec := hypervisor.Spec{MemoryMiB: 256, VCPUs: 1}
	if s, ok := v.Get("memsize"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 4 || n%4 != 0 {
			return spec, fmt.Sprintf("Cannot open VM: %s, The memory size (memsize = %q) must be a multiple of 4 MB, at least 4 MB", vmx, s)
		}
		spec.MemoryMiB = n
	}
	if s, ok := v.Get("numvcpus"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 64 {
			return spec, fmt.Sprintf("Cannot open VM: %s, numvcpus = %q is not a number of processors", vmx, s)
		}
		spec.VCPUs = n
	}
	sd, vd := 0, 0
	for _, n := range v.Disks() {
		path := resolve(vmx, n.File)
		d := hypervisor.Disk{Path: path, Writable: true, Format: "vmdk"}
		if n.CDROM() {
			if _, err := os.Stat(path); err != nil {
				return spec, fmt.Sprintf("Cannot open VM: %s, Cannot connect the CD-ROM image %s: %v", vmx, path, err)
			}
			d.Format, d.Writable = "iso", false
		} else {
			chain, err := vmformat.Chain(path)
			if err != nil {
				return spec, fmt.Sprintf("Cannot open the disk '%s' or one of the snapshot disks it depends on. (%v)", path, err)
			}
			// QEMU will not save (migrate) a VM with a disk open through
			// its vmdk driver; a flat disk is its raw extent, so QEMU
			// opens that instead. Other layouts run, but cannot suspend.
			if extent, ok := chain[0].FlatExtent(); ok {
				d.Path, d.Format = extent, "raw"
			}
			if n.Mode == "independent-nonpersistent" {
				d.Writable = false // its writes are thrown away
			}
		}
		bus, rest, _ := strings.Cut(n.Node, ":")
		ctrl, _ := strconv.Atoi(strings.TrimLeft(bus, "idescatnvm"))
		unit, _ := strconv.Atoi(rest)
		switch {
		case strings.HasPrefix(bus, "ide"):
			if ctrl > 1 || unit > 1 {
				return spec, fmt.Sprintf("Cannot open VM: %s, %s: IDE has channels 0 and 1, units 0 and 1", vmx, n.Node)
			}
			d.Device = "hd" + string(rune('a'+2*ctrl+unit))
		case strings.HasPrefix(bus, "nvme"):
			d.Device = "vd" + string(rune('a'+vd))
			vd++
		default: // scsi, sata
			if sd > 5 {
				return spec, fmt.Sprintf("Cannot open VM: %s, more than six SCSI and SATA disks are not emulated", vmx)
			}
			d.Device = "sd" + string(rune('a'+sd))
			sd++
		}
		spec.Disks = append(spec.Disks, d)
	}
	if len(spec.Disks) == 0 {
		return spec, fmt.Sprintf("Cannot open VM: %s, The virtual machine has no disk to boot from (vmpool's emulator boots disks only)", vmx)
	}
	if v.Bool("ethernet0.present", false) {
		ct, _ := v.Get("ethernet0.connectionType")
		switch strings.ToLower(ct) {
		case "", "nat", "bridged", "hostonly", "custom":
		default:
			return spec, fmt.Sprintf("Cannot open VM: %s, ethernet0.connectionType = %q is not a network type", vmx, ct)
		}
		mac := ""
		at, _ := v.Get("ethernet0.addressType")
		switch strings.ToLower(at) {
		case "static":
			a, _ := v.Get("ethernet0.address")
			hw, err := net.ParseMAC(a)
			if err != nil || len(hw) != 6 || hw[0] != 0x00 || hw[1] != 0x50 || hw[2] != 0x56 || hw[3] > 0x3f {
				return spec, fmt.Sprintf("Cannot open VM: %s, Invalid MAC address specified: %q (static addresses must be in 00:50:56:00:00:00-00:50:56:3F:FF:FF)", vmx, a)
			}
			mac = hw.String()
		default:
			if a, ok := v.Get("ethernet0.generatedAddress"); ok {
				if hw, err := net.ParseMAC(a); err == nil && len(hw) == 6 {
					mac = hw.String()
				}
			}
			if mac == "" {
				sum := sha256.Sum256([]byte(vmx))
				mac = fmt.Sprintf("00:0c:29:%02x:%02x:%02x", sum[0], sum[1], sum[2])
				v.Set("ethernet0.generatedAddress", mac)
			}
		}
		spec.Network = hypervisor.Network{Enabled: true, Type: "nat", MAC: mac}
	}
	return spec, ""
}

func (r *vmrun) stop(ctx context.Context, args []string) int {
	if len(args) < 1 || len(args) > 2 || len(args) == 2 && args[1] != "hard" && args[1] != "soft" {
		return r.fail("Invalid arguments: stop takes the path to a vmx file and hard or soft")
	}
	vmx := r.abs(args[0])
	on, err := r.running(ctx, vmx)
	if err != nil {
		return r.fail("Unable to get the state of the virtual machine: %v", err)
	}
	if !on {
		return r.fail("The virtual machine is not powered on: %s", vmx)
	}
	key := keyOf(vmx)
	if len(args) == 2 && args[1] == "hard" {
		if err := r.host.Kill(ctx, key); err != nil {
			return r.fail("Unable to stop the virtual machine: %v", err)
		}
		return 0
	}
	if err := r.host.Powerdown(ctx, key); err != nil {
		return r.fail("Unable to stop the virtual machine: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, softStopTimeout)
	defer cancel()
	t := time.NewTicker(pollGone)
	defer t.Stop()
	for {
		on, err := r.running(sctx, vmx)
		if err != nil {
			return r.fail("The operation was canceled: %v", err)
		}
		if !on {
			return 0
		}
		select {
		case <-sctx.Done():
			return r.fail("The operation timed out: the guest did not power off")
		case <-t.C:
		}
	}
}

func (r *vmrun) suspend(ctx context.Context, args []string) int {
	if len(args) < 1 || len(args) > 2 || len(args) == 2 && args[1] != "hard" && args[1] != "soft" {
		return r.fail("Invalid arguments: suspend takes the path to a vmx file and hard or soft")
	}
	vmx := r.abs(args[0])
	v, code := r.load(vmx)
	if code != 0 {
		return code
	}
	on, err := r.running(ctx, vmx)
	if err != nil {
		return r.fail("Unable to get the state of the virtual machine: %v", err)
	}
	if !on {
		return r.fail("The virtual machine is not powered on: %s", vmx)
	}
	tmp, err := os.MkdirTemp(r.host.Dir(), "suspend-")
	if err != nil {
		return r.fail("%v", err)
	}
	defer os.RemoveAll(tmp)
	ck, err := r.host.Checkpoint(ctx, keyOf(vmx), tmp, false)
	if err != nil {
		return r.fail("Unable to suspend the virtual machine: %v", err)
	}
	stem := strings.TrimSuffix(vmx, filepath.Ext(vmx))
	vmss, vmem := stem+".vmss", stem+".vmem"
	var rest []string
	for _, f := range ck.Files {
		if f == qemuMemoryState {
			if err := moveFile(filepath.Join(tmp, f), vmem); err != nil {
				return r.fail("Cannot write the memory file %s: %v", vmem, err)
			}
			continue
		}
		rest = append(rest, f)
	}
	if err := emuvm.Pack(vmss, vmssMagic, tmp, rest); err != nil {
		return r.fail("Cannot write the suspended state file %s: %v", vmss, err)
	}
	v.Set("checkpoint.vmState", filepath.Base(vmss))
	if err := saveVMX(vmx, v); err != nil {
		return r.fail("Cannot write %s: %v", vmx, err)
	}
	return 0
}

// moveFile renames src to dst, copying when they are on different file
// systems.
func moveFile(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst + ".tmp")
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(dst+".tmp", dst)
}

func (r *vmrun) pause(ctx context.Context, args []string) int {
	return r.simple(ctx, "pause", args, r.host.Pause)
}

func (r *vmrun) unpause(ctx context.Context, args []string) int {
	return r.simple(ctx, "unpause", args, r.host.Unpause)
}

func (r *vmrun) simple(ctx context.Context, cmd string, args []string, f func(context.Context, string) error) int {
	if len(args) != 1 {
		return r.fail("Invalid number of arguments: %s takes the path to a vmx file", cmd)
	}
	vmx := r.abs(args[0])
	on, err := r.running(ctx, vmx)
	if err != nil {
		return r.fail("Unable to get the state of the virtual machine: %v", err)
	}
	if !on {
		return r.fail("The virtual machine is not powered on: %s", vmx)
	}
	if err := f(ctx, keyOf(vmx)); err != nil {
		return r.fail("Unable to %s the virtual machine: %v", cmd, err)
	}
	return 0
}

func (r *vmrun) list(ctx context.Context, args []string) int {
	if len(args) != 0 {
		return r.fail("Invalid number of arguments: list takes none")
	}
	guests, err := r.host.Guests()
	if err != nil {
		return r.fail("Unable to list the running virtual machines: %v", err)
	}
	var vms []string
	for _, g := range guests {
		var m meta
		if err := json.Unmarshal(g.Meta, &m); err != nil || m.VMX == "" {
			continue
		}
		on, err := r.running(ctx, m.VMX)
		if err != nil {
			return r.fail("Unable to list the running virtual machines: %v", err)
		}
		if on {
			vms = append(vms, m.VMX)
		}
	}
	fmt.Fprintf(r.out, "Total running VMs: %d\n", len(vms))
	for _, vm := range vms {
		fmt.Fprintln(r.out, vm)
	}
	return 0
}
