package linux

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// moduleGroup is a set of kernel modules the guest loads together, when
// the kernel has them as modules rather than built in. The guest loads the
// groups in order until it finds its data disk: virtio first (what the
// kvm driver gives a vdX disk and every NIC), then the IDE and AHCI
// controllers (hdX and sdX disks), then Xen's block and network front
// ends (the xen driver's PV guests). A required module must exist one way
// or the other; loading it must succeed.
type moduleGroup struct {
	name     string
	modules  []string
	required bool
}

var moduleGroups = []moduleGroup{
	{"virtio", []string{"virtio_pci", "virtio_blk", "virtio_net"}, true},
	{"ata", []string{"ata_piix", "ahci", "sd_mod"}, false},
	{"xen", []string{"xen_blkfront", "xen_netfront"}, false},
}

// moduleSet is the modules of one kernel release.
type moduleSet struct {
	dir     string              // /lib/modules/<release>
	deps    map[string][]string // relative path -> its dependencies' paths
	byName  map[string]string   // module name (with '_') -> relative path
	builtin map[string]bool
}

// modName is a module's name from its path: kernel/drivers/net/virtio_net.ko -> virtio_net.
func modName(path string) string {
	n := filepath.Base(path)
	if i := strings.Index(n, ".ko"); i >= 0 {
		n = n[:i]
	}
	return strings.ReplaceAll(n, "-", "_")
}

func readModules(dir string) (*moduleSet, error) {
	ms := &moduleSet{dir: dir, deps: map[string][]string{}, byName: map[string]string{}, builtin: map[string]bool{}}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		ms.deps[mod] = strings.Fields(deps)
		ms.byName[modName(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kernel modules: read %s: %w", f.Name(), err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			ms.builtin[modName(l)] = true
		}
	}
	return ms, nil
}

// plan returns the modules to load, group by group, each module after its
// dependencies and only in the first group that needs it: lines of
// "GROUP PATH [required]" with PATH relative to the set's dir, the format
// of the guest's /etc/vmpool/modules.
func (ms *moduleSet) plan(groups []moduleGroup) ([]string, []string, error) {
	var lines, paths []string
	seen := map[string]bool{}
	for _, g := range groups {
		var visit func(path string, stack []string) error
		visit = func(path string, stack []string) error {
			if seen[path] {
				return nil
			}
			for _, s := range stack {
				if s == path {
					return fmt.Errorf("kernel modules: dependency cycle through %s", path)
				}
			}
			for _, d := range ms.deps[path] {
				if err := visit(d, append(stack, path)); err != nil {
					return err
				}
			}
			seen[path] = true
			if !strings.HasSuffix(path, ".ko") {
				return fmt.Errorf("kernel modules: %s is compressed; the guest loads only plain .ko modules (a kernel built with CONFIG_MODULE_COMPRESS_NONE, as Debian 12's are)", path)
			}
			line := g.name + " " + path
			if g.required {
				line += " required"
			}
			lines = append(lines, line)
			paths = append(paths, path)
			return nil
		}
		for _, n := range g.modules {
			p, ok := ms.byName[n]
			switch {
			case ok:
				if err := visit(p, nil); err != nil {
					return nil, nil, err
				}
			case ms.builtin[n]:
			case g.required:
				return nil, nil, fmt.Errorf("kernel modules: %s is neither a module in %s nor built into the kernel", n, ms.dir)
			}
		}
	}
	return lines, paths, nil
}
