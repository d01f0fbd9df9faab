package xlemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/emuvm"
)

// Version is the Xen version the emulator reports (xl info).
const (
	xenMajor = 4
	xenMinor = 17
	xenExtra = ".0-vmpool-emulated"
)

// SaveMagic starts every save file, as it starts xl's.
const SaveMagic = "Xen saved domain, xl format\n \x00 \r"

// Options configures one run of the emulator.
type Options struct {
	// StateDir is the emulated host's state: its domains.
	StateDir string
	// QEMU and QEMUImg override the binaries guests run under.
	QEMU, QEMUImg string
	// Dir is the directory relative paths are taken from ("" = the
	// process's working directory).
	Dir string
	// Stdout and Stderr receive the command's output.
	Stdout, Stderr io.Writer
	// Logger receives the emulator's own debug records; nil discards them.
	Logger *slog.Logger
}

// meta is what the emulator keeps with each domain.
type meta struct {
	Config  string `json:"config"`      // the configuration text, for save files
	File    string `json:"config_file"` // where it came from
	Type    string `json:"type"`
	OnCrash string `json:"on_crash"`
}

type xl struct {
	o    Options
	host *emuvm.Host
	out  io.Writer
	err  io.Writer
}

// Main runs one `xl` command line (args without the program name) and
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
	x := &xl{o: o, out: o.Stdout, err: o.Stderr}
	// Global options.
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-v", "-f", "-t", "-N":
		case "-h", "--help":
			x.usage(x.out)
			return 0
		default:
			fmt.Fprintf(x.err, "xl: invalid option -- '%s'\n", strings.TrimLeft(args[0], "-"))
			x.usage(x.err)
			return 2
		}
		args = args[1:]
	}
	if len(args) == 0 {
		x.usage(x.err)
		return 1
	}
	cmd, args := args[0], args[1:]
	if cmd == "help" {
		x.usage(x.out)
		return 0
	}
	run, ok := map[string]func(context.Context, []string) int{
		"create": x.create, "list": x.list, "destroy": x.destroy, "shutdown": x.shutdown,
		"pause": x.pause, "unpause": x.unpause, "save": x.save, "restore": x.restore,
		"info": x.info, "domid": x.domid, "domname": x.domname,
	}[cmd]
	if !ok {
		fmt.Fprintf(x.err, "command not implemented\n")
		x.usage(x.err)
		return 1
	}
	host, err := emuvm.Open(emuvm.Config{Dir: o.StateDir, QEMU: o.QEMU, QEMUImg: o.QEMUImg, Logger: o.Logger})
	if err != nil {
		x.noHypervisor(err)
		return 1
	}
	x.host = host
	return run(ctx, args)
}

func (x *xl) usage(w io.Writer) {
	fmt.Fprint(w, `Usage xl [-vfNtT] <subcommand> [args]

xl full list of subcommands (vmpool emulator: these only):

 create              Create a domain from config file <filename>
 list                List information about all/some domains
 destroy             Terminate a domain immediately
 shutdown            Issue a shutdown signal to a domain
 pause               Pause execution of a domain
 unpause             Unpause a paused domain
 save                Save a domain state to restore later
 restore             Restore a domain from a saved state
 info                Get information about Xen host
 domid               Convert a domain name to domain id
 domname             Convert a domain id to domain name
`)
}

// noHypervisor reports, as xl does without Xen, that there is nothing to
// talk to.
func (x *xl) noHypervisor(err error) {
	fmt.Fprintf(x.err, "xc: error: Could not obtain handle on privileged command interface: %v\n", err)
	fmt.Fprintln(x.err, "libxl: error: libxl.c: cannot open libxc handle")
	fmt.Fprintln(x.err, "cannot init xl context")
}

// flags splits args into single-letter options and operands; options in
// withValue take the next argument.
func flags(args []string, allowed string) (map[byte]bool, []string, error) {
	set := map[byte]bool{}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			if !strings.ContainsRune(allowed, rune(a[j])) {
				return nil, nil, fmt.Errorf("invalid option -- '%c'", a[j])
			}
			set[a[j]] = true
		}
	}
	return set, rest, nil
}

// resolve finds a domain by name or id.
func (x *xl) resolve(id string) (emuvm.Guest, error) {
	if id == "0" || id == "Domain-0" {
		return emuvm.Guest{}, fmt.Errorf("domain 0 is the host")
	}
	if g, err := x.host.Guest(id); err == nil {
		return g, nil
	} else if !errors.Is(err, emuvm.ErrNoGuest) {
		return emuvm.Guest{}, err
	}
	if n, err := strconv.Atoi(id); err == nil {
		gs, err := x.host.Guests()
		if err != nil {
			return emuvm.Guest{}, err
		}
		for _, g := range gs {
			if g.ID == n {
				return g, nil
			}
		}
	}
	return emuvm.Guest{}, fmt.Errorf("%w: %s", emuvm.ErrNoGuest, id)
}

func (x *xl) badDomain(cmd, id string, err error) int {
	if errors.Is(err, emuvm.ErrNoGuest) {
		fmt.Fprintf(x.err, "%s is an invalid domain identifier (rc=-6)\n", id)
	} else {
		fmt.Fprintf(x.err, "xl %s: %v\n", cmd, err)
	}
	return 1
}

func (x *xl) create(ctx context.Context, args []string) int {
	set, rest, err := flags(args, "pcqnFVde")
	if err != nil {
		fmt.Fprintf(x.err, "xl create: %v\n", err)
		return 2
	}
	var file string
	var overrides []string
	for _, a := range rest {
		if strings.Contains(a, "=") {
			overrides = append(overrides, a)
		} else if file == "" {
			file = a
		} else {
			fmt.Fprintf(x.err, "xl create: unexpected argument %q\n", a)
			return 2
		}
	}
	if file == "" {
		fmt.Fprintln(x.err, "xl create: no config file given")
		return 2
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(x.o.Dir, file)
	}
	src, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(x.err, "Failed to read config file: %s: %v\n", file, unwrapPath(err))
		return 1
	}
	if !set['q'] {
		fmt.Fprintf(x.err, "Parsing config from %s\n", file)
	}
	d, err := ParseDomain(file, string(src), overrides, x.o.Dir)
	if err != nil {
		return x.configFailed(err)
	}
	if set['n'] {
		fmt.Fprintf(x.out, "%s\n", strings.TrimSpace(string(src)))
		return 0
	}
	spec, err := x.spec(d)
	if err != nil {
		return x.configFailed(err)
	}
	m := meta{Config: string(src) + "\n" + strings.Join(overrides, "\n"), File: file, Type: d.Type, OnCrash: d.OnCrash}
	g, err := x.host.Start(ctx, d.Name, spec, m)
	if err != nil {
		return x.createFailed(d.Name, err)
	}
	if set['p'] {
		if err := x.host.Pause(ctx, g.Key); err != nil {
			fmt.Fprintf(x.err, "libxl: error: libxl_domain.c: Domain %d:pausing domain: %v\n", g.ID, err)
			return 1
		}
	}
	return 0
}

// configFailed prints a configuration problem as xl does.
func (x *xl) configFailed(err error) int {
	var pe *ParseError
	if errors.As(err, &pe) {
		fmt.Fprintln(x.err, pe.Error())
		fmt.Fprintln(x.err, "Failed to parse config: Invalid argument")
		return 1
	}
	fmt.Fprintln(x.err, err.Error())
	return 1
}

func (x *xl) createFailed(name string, err error) int {
	switch {
	case errors.Is(err, emuvm.ErrExists):
		fmt.Fprintf(x.err, "libxl: error: libxl_create.c: Domain name %q already exists.\n", name)
	default:
		var se *hypervisor.SpecError
		if errors.As(err, &se) {
			fmt.Fprintf(x.err, "libxl: error: libxl_create.c: cannot (re-)build domain: %s\n", se.Msg)
		} else {
			fmt.Fprintf(x.err, "libxl: error: libxl_create.c: cannot (re-)build domain: %v\n", err)
		}
	}
	fmt.Fprintln(x.err, "libxl: error: libxl_domain.c: Destruction of domain failed")
	return 3
}

// spec turns a domain into the QEMU guest that emulates it, checking the
// files as libxl does when it builds the domain.
func (x *xl) spec(d Domain) (hypervisor.Spec, error) {
	spec := hypervisor.Spec{MemoryMiB: d.MemoryMiB, VCPUs: d.VCPUs, VNC: d.VNC}
	if d.Kernel != "" {
		if err := regularFile(d.Kernel); err != nil {
			return spec, cfgErr("libxl: error: libxl_dom.c: xc_dom_kernel_file failed: %s: %v", d.Kernel, err)
		}
		if d.Ramdisk != "" {
			if err := regularFile(d.Ramdisk); err != nil {
				return spec, cfgErr("libxl: error: libxl_dom.c: xc_dom_ramdisk_file failed: %s: %v", d.Ramdisk, err)
			}
		}
		// Direct kernel boot: QEMU loads the kernel and initrd and passes
		// root and extra as the kernel command line. The guest sees its
		// xvdX disks as virtio vdX and its console on ttyS0, not hvc0.
		spec.Kernel, spec.Initrd, spec.Root, spec.KernelParams = d.Kernel, d.Ramdisk, d.Root, d.Extra
	}
	if d.Type != "hvm" && d.Kernel == "" && filepath.IsAbs(d.Bootloader) {
		fi, err := os.Stat(d.Bootloader)
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return spec, cfgErr("libxl: error: libxl_bootloader.c: bootloader %s is not an executable file", d.Bootloader)
		}
	}
	for _, disk := range d.Disks {
		if disk.Target == "" {
			continue // an empty CD-ROM drive
		}
		if _, err := os.Stat(disk.Target); err != nil {
			return spec, cfgErr("libxl: error: libxl_device.c: Disk vdev=%s failed to stat: %s: %v", disk.Vdev, disk.Target, unwrapPath(err))
		}
		hd := hypervisor.Disk{Path: disk.Target, Device: disk.Vdev, Writable: disk.Writable}
		switch {
		case disk.CDROM:
			hd.Format = "iso"
		case disk.Format == "vhd":
			hd.Format = "vpc"
		default:
			hd.Format = disk.Format
		}
		spec.Disks = append(spec.Disks, hd)
	}
	if len(spec.Disks) == 0 {
		return spec, cfgErr("xl (vmpool emulator): domain %s has no disk to boot", d.Name)
	}
	if len(d.Vifs) > 0 {
		spec.Network = hypervisor.Network{Enabled: true, Type: "nat", MAC: d.Vifs[0].MAC}
	}
	return spec, nil
}

func regularFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return unwrapPath(err)
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// stateFlags renders a domain's state column: r b p s c d.
func stateFlags(st emuvm.State) string {
	switch st {
	case emuvm.Running:
		return "r-----"
	case emuvm.Paused:
		return "--p---"
	case emuvm.Gone:
		return "----c-"
	}
	return "---s--"
}

// look finds a domain's state, applying on_crash to a guest found gone.
// ok is false when the domain no longer exists.
func (x *xl) look(ctx context.Context, g emuvm.Guest) (emuvm.State, bool, error) {
	st, err := x.host.State(ctx, g.Key)
	if errors.Is(err, emuvm.ErrNoGuest) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	switch st {
	case emuvm.Off:
		return st, false, nil
	case emuvm.Gone:
		var m meta
		json.Unmarshal(g.Meta, &m)
		if m.OnCrash != "preserve" && m.OnCrash != "coredump-preserve" {
			if err := x.host.Kill(ctx, g.Key); err != nil && !errors.Is(err, emuvm.ErrNoGuest) {
				return "", false, err
			}
			return st, false, nil
		}
	}
	return st, true, nil
}

func (x *xl) list(ctx context.Context, args []string) int {
	set, rest, err := flags(args, "lvZcn")
	if err != nil {
		fmt.Fprintf(x.err, "xl list: %v\n", err)
		return 2
	}
	if set['l'] {
		fmt.Fprintln(x.err, "xl list -l: not emulated by vmpool's xl emulator")
		return 1
	}
	var guests []emuvm.Guest
	if len(rest) > 0 {
		for _, id := range rest {
			g, err := x.resolve(id)
			if err != nil {
				return x.badDomain("list", id, err)
			}
			guests = append(guests, g)
		}
	} else if guests, err = x.host.Guests(); err != nil {
		fmt.Fprintf(x.err, "libxl: error: libxl_domain.c: getting domain info list: %v\n", err)
		return 1
	}
	type row struct {
		name    string
		id, mem int
		vcpus   int
		state   string
		seconds float64
	}
	var rows []row
	if len(rest) == 0 {
		rows = append(rows, row{name: "Domain-0", mem: hostMemoryMiB(), vcpus: runtime.NumCPU(), state: "r-----", seconds: uptime()})
	}
	now := time.Now().Unix()
	for _, g := range guests {
		st, exists, err := x.look(ctx, g)
		if err != nil {
			fmt.Fprintf(x.err, "libxl: error: libxl_domain.c: getting info for domain %d: %v\n", g.ID, err)
			return 1
		}
		if !exists {
			if len(rest) > 0 {
				return x.badDomain("list", g.Key, emuvm.ErrNoGuest)
			}
			continue
		}
		rows = append(rows, row{name: g.Key, id: g.ID, mem: g.Memory, vcpus: g.VCPUs, state: stateFlags(st), seconds: float64(now - g.Created)})
	}
	fmt.Fprintf(x.out, "%-40s %5s %5s %5s     %s  %8s\n", "Name", "ID", "Mem", "VCPUs", "State", "Time(s)")
	for _, r := range rows {
		fmt.Fprintf(x.out, "%-40s %5d %5d %5d     %s  %8.1f\n", r.name, r.id, r.mem, r.vcpus, r.state, r.seconds)
	}
	return 0
}

func (x *xl) destroy(ctx context.Context, args []string) int {
	_, rest, err := flags(args, "f")
	if err != nil || len(rest) != 1 {
		fmt.Fprintln(x.err, "Usage: xl destroy [-f] <Domain>")
		return 2
	}
	g, err := x.resolve(rest[0])
	if err != nil {
		return x.badDomain("destroy", rest[0], err)
	}
	if err := x.host.Kill(ctx, g.Key); err != nil && !errors.Is(err, emuvm.ErrNoGuest) {
		fmt.Fprintf(x.err, "libxl: error: libxl_domain.c: Destruction of domain %d failed: %v\n", g.ID, err)
		return 1
	}
	return 0
}

func (x *xl) shutdown(ctx context.Context, args []string) int {
	set, rest, err := flags(args, "awFH")
	if err != nil || (len(rest) != 1 && !set['a']) || (set['a'] && len(rest) != 0) {
		fmt.Fprintln(x.err, "Usage: xl shutdown [-a] [-w] [-F] <Domain>")
		return 2
	}
	var guests []emuvm.Guest
	if set['a'] {
		if guests, err = x.host.Guests(); err != nil {
			fmt.Fprintf(x.err, "xl shutdown: %v\n", err)
			return 1
		}
	} else {
		g, err := x.resolve(rest[0])
		if err != nil {
			return x.badDomain("shutdown", rest[0], err)
		}
		guests = []emuvm.Guest{g}
	}
	for _, g := range guests {
		// PV guests would get a xenstore request and HVM guests without
		// PV drivers need -F for the ACPI fallback; the emulated guest
		// only has ACPI, so every shutdown is the power button.
		if err := x.host.Powerdown(ctx, g.Key); err != nil {
			if errors.Is(err, hypervisor.ErrGone) {
				continue
			}
			fmt.Fprintf(x.err, "libxl: error: libxl_domain.c: Domain %d: shutdown: %v\n", g.ID, err)
			return 1
		}
	}
	if !set['w'] {
		return 0
	}
	for _, g := range guests {
		fmt.Fprintf(x.out, "Waiting for %d domains\n", 1)
		if err := x.waitGone(ctx, g); err != nil {
			fmt.Fprintf(x.err, "xl shutdown: %v\n", err)
			return 1
		}
		fmt.Fprintf(x.out, "Domain %d has been shut down, reason code 0\n", g.ID)
	}
	return 0
}

// waitGone polls a domain until it no longer exists; nothing tells an
// emulator process when another process's guest powers off.
func (x *xl) waitGone(ctx context.Context, g emuvm.Guest) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		_, exists, err := x.look(ctx, g)
		if err != nil {
			return err
		}
		if !exists {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (x *xl) pause(ctx context.Context, args []string) int {
	return x.simple(ctx, "pause", args, x.host.Pause)
}

func (x *xl) unpause(ctx context.Context, args []string) int {
	return x.simple(ctx, "unpause", args, x.host.Unpause)
}

func (x *xl) simple(ctx context.Context, cmd string, args []string, f func(context.Context, string) error) int {
	if len(args) != 1 {
		fmt.Fprintf(x.err, "Usage: xl %s <Domain>\n", cmd)
		return 2
	}
	g, err := x.resolve(args[0])
	if err != nil {
		return x.badDomain(cmd, args[0], err)
	}
	if err := f(ctx, g.Key); err != nil {
		fmt.Fprintf(x.err, "libxl: error: libxl_domain.c: Domain %d: %s: %v\n", g.ID, cmd, err)
		return 1
	}
	return 0
}

func (x *xl) save(ctx context.Context, args []string) int {
	set, rest, err := flags(args, "cpD")
	if err != nil || len(rest) < 2 || len(rest) > 3 {
		fmt.Fprintln(x.err, "Usage: xl save [-c] [-p] <Domain> <CheckpointFile> [<ConfigFile>]")
		return 2
	}
	g, err := x.resolve(rest[0])
	if err != nil {
		return x.badDomain("save", rest[0], err)
	}
	file := rest[1]
	if !filepath.IsAbs(file) {
		file = filepath.Join(x.o.Dir, file)
	}
	var m meta
	json.Unmarshal(g.Meta, &m)
	config := m.Config
	if len(rest) == 3 {
		b, err := os.ReadFile(rest[2])
		if err != nil {
			fmt.Fprintf(x.err, "Failed to read config file: %s: %v\n", rest[2], unwrapPath(err))
			return 1
		}
		config = string(b)
	}
	tmp, err := os.MkdirTemp(x.host.Dir(), "save-")
	if err != nil {
		fmt.Fprintf(x.err, "xl save: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, configFile), []byte(config), 0o600); err != nil {
		fmt.Fprintf(x.err, "xl save: %v\n", err)
		return 1
	}
	keep := set['c'] || set['p']
	fmt.Fprintf(x.err, "Saving to %s new xl format (info 0x3/0x0/%d)\n", file, len(config))
	ck, err := x.host.Checkpoint(ctx, g.Key, tmp, keep)
	if err != nil {
		fmt.Fprintf(x.err, "libxl: error: libxl_stream_write.c: Domain %d: saving domain: %v\n", g.ID, err)
		return 1
	}
	if err := emuvm.Pack(file, SaveMagic, tmp, append(ck.Files, configFile)); err != nil {
		fmt.Fprintf(x.err, "xl save: %v\n", err)
		return 1
	}
	if set['p'] {
		// -p: leave the domain paused (-c alone keeps it as it was).
		if err := x.host.Pause(ctx, g.Key); err != nil {
			fmt.Fprintf(x.err, "libxl: error: libxl_domain.c: Domain %d:pausing domain: %v\n", g.ID, err)
			return 1
		}
	}
	return 0
}

// configFile is the domain configuration inside a save file.
const configFile = "xl-domain.cfg"

func (x *xl) restore(ctx context.Context, args []string) int {
	set, rest, err := flags(args, "pedVc")
	if err != nil || len(rest) < 1 || len(rest) > 2 {
		fmt.Fprintln(x.err, "Usage: xl restore [-p] [-e] [-d] [-V] [<ConfigFile>] <CheckpointFile>")
		return 2
	}
	ckpt := rest[len(rest)-1]
	if !filepath.IsAbs(ckpt) {
		ckpt = filepath.Join(x.o.Dir, ckpt)
	}
	tmp, err := os.MkdirTemp(x.host.Dir(), "restore-")
	if err != nil {
		fmt.Fprintf(x.err, "xl restore: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if _, err := emuvm.Unpack(ckpt, SaveMagic, tmp); err != nil {
		if errors.Is(err, emuvm.ErrBadMagic) {
			fmt.Fprintln(x.err, "File has wrong magic number - corrupt or for a different tool?")
		} else {
			fmt.Fprintf(x.err, "xl restore: %s: %v\n", ckpt, err)
		}
		return 1
	}
	cfgName := filepath.Join(tmp, configFile)
	src, err := os.ReadFile(cfgName)
	if len(rest) == 2 {
		cfgName = rest[0]
		if !filepath.IsAbs(cfgName) {
			cfgName = filepath.Join(x.o.Dir, cfgName)
		}
		src, err = os.ReadFile(cfgName)
	}
	if err != nil {
		fmt.Fprintf(x.err, "Failed to read config file: %s: %v\n", cfgName, unwrapPath(err))
		return 1
	}
	fmt.Fprintf(x.err, "Loading new save file %s (new xl fmt info 0x3/0x0/%d)\n", ckpt, len(src))
	if len(rest) == 2 {
		fmt.Fprintf(x.err, "Parsing config from %s\n", cfgName)
	} else {
		fmt.Fprintln(x.err, "Parsing config from <saved>")
	}
	d, err := ParseDomain(cfgName, string(src), nil, x.o.Dir)
	if err != nil {
		return x.configFailed(err)
	}
	spec, err := x.spec(d)
	if err != nil {
		return x.configFailed(err)
	}
	spec.Resume = tmp
	m := meta{Config: string(src), File: cfgName, Type: d.Type, OnCrash: d.OnCrash}
	g, err := x.host.Start(ctx, d.Name, spec, m)
	if err != nil {
		return x.createFailed(d.Name, err)
	}
	if set['p'] {
		if err := x.host.Pause(ctx, g.Key); err != nil {
			fmt.Fprintf(x.err, "libxl: error: libxl_domain.c: Domain %d:pausing domain: %v\n", g.ID, err)
			return 1
		}
	}
	return 0
}

func (x *xl) info(ctx context.Context, args []string) int {
	fp, err := x.host.Probe(ctx)
	if err != nil || !fp.Detected || !fp.Healthy {
		reason := fp.Reason
		if err != nil {
			reason = err.Error()
		}
		x.noHypervisor(errors.New(reason))
		return 1
	}
	host, _ := os.Hostname()
	total := hostMemoryMiB()
	used := 0
	if gs, err := x.host.Guests(); err == nil {
		for _, g := range gs {
			used += g.Memory
		}
	}
	kv := [][2]string{
		{"host", host},
		{"release", kernelRelease()},
		{"machine", runtime.GOARCH},
		{"nr_cpus", strconv.Itoa(runtime.NumCPU())},
		{"total_memory", strconv.Itoa(total)},
		{"free_memory", strconv.Itoa(max(total-used, 0))},
		{"xen_major", strconv.Itoa(xenMajor)},
		{"xen_minor", strconv.Itoa(xenMinor)},
		{"xen_extra", xenExtra},
		{"xen_version", fmt.Sprintf("%d.%d%s", xenMajor, xenMinor, xenExtra)},
		{"xen_caps", "xen-3.0-x86_64 hvm-3.0-x86_64"},
		{"virt_caps", "pv hvm"},
		{"xen_commandline", "(none: vmpool's xl emulator; guests run under " + fp.Version + ", accel " + fp.Attrs["accel"] + ")"},
		{"xl_emulator_state", x.host.Dir()},
	}
	for _, p := range kv {
		fmt.Fprintf(x.out, "%-23s: %s\n", p[0], p[1])
	}
	return 0
}

func (x *xl) domid(ctx context.Context, args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(x.err, "Usage: xl domid <DomainName>")
		return 2
	}
	if args[0] == "Domain-0" {
		fmt.Fprintln(x.out, 0)
		return 0
	}
	g, err := x.host.Guest(args[0])
	if err != nil {
		fmt.Fprintf(x.err, "Can't get domid of domain name '%s', maybe this domain does not exist.\n", args[0])
		return 1
	}
	fmt.Fprintln(x.out, g.ID)
	return 0
}

func (x *xl) domname(ctx context.Context, args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(x.err, "Usage: xl domname <DomainId>")
		return 2
	}
	if args[0] == "0" {
		fmt.Fprintln(x.out, "Domain-0")
		return 0
	}
	g, err := x.resolve(args[0])
	if err != nil {
		fmt.Fprintf(x.err, "Can't get domain name of domain id '%s', maybe this domain does not exist.\n", args[0])
		return 1
	}
	fmt.Fprintln(x.out, g.Key)
	return 0
}

// hostMemoryMiB is the host's memory from /proc/meminfo (0 if unknown).
func hostMemoryMiB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kib, _ := strconv.Atoi(f[0])
				return kib / 1024
			}
		}
	}
	return 0
}

func uptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	s, _ := strconv.ParseFloat(f[0], 64)
	return s
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// DefaultStateDir is where an emulator invoked through a link at linkPath
// (a link named xl to the vmpool binary) keeps its host's state: beside
// the link, so that each directory of links is one emulated host.
func DefaultStateDir(linkPath string) string { return linkPath + ".state" }
