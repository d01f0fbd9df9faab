package main

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/qemu"
	"github.com/vmpool/vmpool/startd/hypervisor/sim"
	"github.com/vmpool/vmpool/startd/hypervisor/vmware"
	"github.com/vmpool/vmpool/startd/hypervisor/xen"
)

// driverFactory builds the hypervisor driver of one vm_type from the
// configuration.
type driverFactory func(cfg *Config, logger *slog.Logger) (hypervisor.Driver, error)

// drivers maps VM_TYPE values to their drivers.
var drivers = map[string]driverFactory{
	"kvm": func(cfg *Config, logger *slog.Logger) (hypervisor.Driver, error) {
		var errs []string
		interval := cfg.PositiveSeconds("VM_STATUS_INTERVAL", &errs)
		if len(errs) > 0 {
			return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		accel := strings.ToLower(cfg.Get("QEMU_ACCEL"))
		switch accel {
		case qemu.AccelAuto, qemu.AccelKVM, qemu.AccelTCG:
		default:
			return nil, fmt.Errorf("QEMU_ACCEL = %q (from %s): use kvm, tcg or auto", cfg.Get("QEMU_ACCEL"), cfg.Origin("QEMU_ACCEL"))
		}
		return qemu.New(qemu.Config{Binary: cfg.Get("QEMU"), Accel: accel, Bridge: cfg.Get("VM_NETWORKING_BRIDGE_INTERFACE"),
			StatusInterval: interval, Logger: logger}), nil
	},
	"xen": func(cfg *Config, logger *slog.Logger) (hypervisor.Driver, error) {
		var errs []string
		interval := cfg.PositiveSeconds("VM_STATUS_INTERVAL", &errs)
		if len(errs) > 0 {
			return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		return xen.New(xen.Config{XL: cfg.Get("XL"), Bootloader: cfg.Get("XEN_BOOTLOADER"),
			Bridge: cfg.Get("VM_NETWORKING_BRIDGE_INTERFACE"), StatusInterval: interval, Logger: logger}), nil
	},
	"vmware": func(cfg *Config, logger *slog.Logger) (hypervisor.Driver, error) {
		var errs []string
		interval := cfg.PositiveSeconds("VM_STATUS_INTERVAL", &errs)
		if len(errs) > 0 {
			return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		return vmware.New(vmware.Config{VMRun: cfg.Get("VMRUN"), StatusInterval: interval, Logger: logger}), nil
	},
	// sim runs simulated VMs (no guest, no process) for scale tests and
	// vmpool bench; jobs say what their VM does with Sim* attributes.
	"sim": func(cfg *Config, logger *slog.Logger) (hypervisor.Driver, error) {
		return sim.New(sim.Config{Logger: logger}), nil
	},
}

// newDriver builds the driver VM_TYPE names.
func newDriver(vmType string, cfg *Config, logger *slog.Logger) (hypervisor.Driver, error) {
	f, ok := drivers[vmType]
	if !ok {
		var known []string
		for k := range drivers {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("VM_TYPE = %q (from %s): this build runs %s startds", vmType, cfg.Origin("VM_TYPE"), strings.Join(known, ", "))
	}
	return f(cfg, logger)
}
