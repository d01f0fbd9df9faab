package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vmpool/vmpool/startd"
	"github.com/vmpool/vmpool/startd/hypervisor/vmware/vmrunemu"
	"github.com/vmpool/vmpool/startd/hypervisor/xen/xlemu"
)

// The hypervisor emulators: vmpool acts as Xen's `xl` or VMware's `vmrun`
// when invoked through a link with that name, or as `vmpool emulate xl|vmrun
// ARGS...`. Each runs its guests under QEMU (see docs/xen-vmware.md).

// emulatedTools maps an emulated vm_type to its tool and the knob that
// names the tool.
var emulatedTools = map[string]struct{ tool, knob string }{
	"xen":    {"xl", "XL"},
	"vmware": {"vmrun", "VMRUN"},
}

// isEmulatorName reports whether argv[0]'s base name is an emulated tool.
func isEmulatorName(name string) bool { return name == "xl" || name == "vmrun" }

// runEmulator runs one command line of tool with its state in stateDir.
func (c *cli) runEmulator(ctx context.Context, tool, stateDir string, args []string) int {
	wd, _ := os.Getwd()
	switch tool {
	case "xl":
		return xlemu.Main(ctx, args, xlemu.Options{StateDir: stateDir, Dir: wd, Stdout: c.stdout, Stderr: c.stderr})
	case "vmrun":
		return vmrunemu.Main(ctx, args, vmrunemu.Options{StateDir: stateDir, Dir: wd, Stdout: c.stdout, Stderr: c.stderr})
	}
	fmt.Fprintf(c.stderr, "vmpool emulate: no emulator of %q: there are xl (Xen) and vmrun (VMware)\n", tool)
	return 2
}

// emulateAs runs the emulator argv0 names (a link named xl or vmrun). Its
// state lives beside the link, so each directory of links is one
// emulated host.
func (c *cli) emulateAs(ctx context.Context, argv0 string, args []string) int {
	tool := filepath.Base(argv0)
	link := argv0
	if !strings.ContainsRune(argv0, '/') {
		p, err := exec.LookPath(argv0)
		if err != nil {
			fmt.Fprintf(c.stderr, "%s (vmpool emulator): cannot find where I was run from: %v\n", tool, err)
			return 1
		}
		link = p
	}
	link, err := filepath.Abs(link)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s (vmpool emulator): %v\n", tool, err)
		return 1
	}
	state := xlemu.DefaultStateDir(link)
	if tool == "vmrun" {
		state = vmrunemu.DefaultStateDir(link)
	}
	return c.runEmulator(ctx, tool, state, args)
}

// emulate is `vmpool emulate [--state DIR] xl|vmrun ARGS...`. The state
// defaults to $VMPOOL_EMULATOR_STATE/TOOL, else the user's cache dir.
func (c *cli) emulate(ctx context.Context, args []string) int {
	const usage = "usage: vmpool emulate [--state DIR] xl|vmrun [ARGS...]   (Xen's xl or VMware's vmrun, guests under QEMU)"
	state := ""
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		name, val, has, _ := opt(args[0])
		switch name {
		case "state":
			if !has {
				if len(args) < 2 {
					return c.usageErr("emulate", "--state needs a directory")
				}
				val, args = args[1], args[1:]
			}
			state = val
		case "h", "help":
			fmt.Fprintln(c.stdout, usage)
			return 0
		default:
			return c.usageErr("emulate", "unknown option %s; %s", args[0], usage)
		}
		args = args[1:]
	}
	if len(args) == 0 || !isEmulatorName(args[0]) {
		return c.usageErr("emulate", "%s", usage)
	}
	tool := args[0]
	if state == "" {
		if base := c.getenv("VMPOOL_EMULATOR_STATE"); base != "" {
			state = filepath.Join(base, tool)
		} else if cache, err := os.UserCacheDir(); err == nil {
			state = filepath.Join(cache, "vmpool", "emulate", tool)
		} else {
			return c.errorf("emulate", "no state directory: give --state DIR or set VMPOOL_EMULATOR_STATE (%v)", err)
		}
	}
	return c.runEmulator(ctx, tool, state, args[1:])
}

// emulatedKinds reads EMULATE: the vm_types vmpool up adds an emulated
// startd of.
func emulatedKinds(cfg *Config) ([]string, error) {
	var kinds []string
	seen := map[string]bool{}
	for _, k := range cfg.List("EMULATE") {
		if _, ok := emulatedTools[k]; !ok {
			return nil, fmt.Errorf("EMULATE = %q (from %s): %q is not emulated; use xen, vmware or both", cfg.Get("EMULATE"), cfg.Origin("EMULATE"), k)
		}
		if !seen[k] {
			seen[k] = true
			kinds = append(kinds, k)
		}
	}
	return kinds, nil
}

// clone copies a configuration, for a startd configured apart.
func (c *Config) clone() *Config {
	return &Config{values: maps.Clone(c.values), origin: maps.Clone(c.origin)}
}

// addEmulatedStartds adds one startd per emulated vm_type (named xen1,
// vmware1) whose driver runs the emulator: a link named xl or vmrun to
// this binary in HOME/emulate/TYPE, which keeps that emulated host's state
// beside it. Unless set, XEN_BOOTLOADER is pygrub and VM_STATUS_INTERVAL 2
// seconds for them: nothing else tells these drivers that a guest powered
// off.
func (p *personalPool) addEmulatedStartds(cfg *Config, kinds []string, logger *slog.Logger) error {
	if len(kinds) == 0 {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("emulated startds: find the vmpool binary: %w", err)
	}
	for _, kind := range kinds {
		t := emulatedTools[kind]
		dir := filepath.Join(p.Home, "emulate", kind)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("emulated %s startd: %w", kind, err)
		}
		link := filepath.Join(dir, t.tool)
		if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("emulated %s startd: replace %s: %w", kind, link, err)
		}
		if err := os.Symlink(self, link); err != nil {
			return fmt.Errorf("emulated %s startd: link %s: %w", kind, link, err)
		}
		ec := cfg.clone()
		ec.Set("VM_TYPE", kind, "EMULATE")
		ec.Set(t.knob, link, "EMULATE")
		if kind == "xen" && ec.Get("XEN_BOOTLOADER") == "" {
			ec.Set("XEN_BOOTLOADER", "pygrub", "EMULATE")
		}
		if ec.Origin("VM_STATUS_INTERVAL") == "<default>" {
			ec.Set("VM_STATUS_INTERVAL", "2", "EMULATE")
		}
		stc, err := startdConfig(ec, kind+"1", p.Bus, logger)
		if err != nil {
			return err
		}
		stc.Metrics = p.metricsReg
		st, err := startd.New(stc)
		if err != nil {
			return err
		}
		p.Startds = append(p.Startds, st)
	}
	return nil
}
