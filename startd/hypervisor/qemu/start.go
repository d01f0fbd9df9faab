package qemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/qemu/qmp"
)

// Files a VM keeps in its Dir.
const (
	logFile     = "qemu.log"   // QEMU's stdout and stderr
	serialFile  = "serial.log" // the guest's COM1
	pidFile     = "qemu.pid"
	socketFile  = "qmp.sock"
	maxSockPath = 107 // sun_path is 108 bytes on Linux, with the NUL
	// reattachTimeout bounds the QMP handshake of Reattach: a socket that
	// accepts but never greets (another client holds the monitor) is gone
	// to us.
	reattachTimeout = 10 * time.Second
)

// Start boots spec, or resumes the checkpoint in spec.Resume, and returns
// once QEMU runs the guest. QEMU is put in its own process group and
// outlives this process: a ^C to the startd does not reach it, and a new
// startd can Reattach. If ctx ends during start-up, the half-started QEMU
// is killed. A problem with the spec is a *hypervisor.SpecError.
func (d *Driver) Start(ctx context.Context, spec hypervisor.Spec) (hypervisor.VM, error) {
	vm, err := d.start(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("start qemu for %s: %w", spec.Name, err)
	}
	return vm, nil
}

func (d *Driver) start(ctx context.Context, spec hypervisor.Spec) (_ *VM, err error) {
	if err := validateName(spec.Name); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(spec.Dir) {
		return nil, fmt.Errorf("scratch dir %q is not absolute", spec.Dir)
	}
	if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
		return nil, err
	}
	l := launch{
		name: spec.Name, accel: d.accel(), machine: machineType,
		memoryMiB: spec.MemoryMiB, vcpus: max(spec.VCPUs, 1), vnc: spec.VNC,
		qmpFD:   3, // the first of ExtraFiles
		pidfile: filepath.Join(spec.Dir, pidFile),
		serial:  filepath.Join(spec.Dir, serialFile),
		net:     spec.Network,
	}
	defer func() { hypervisor.SettleReplaced(l.replaced, err == nil) }()
	if err := validateNetwork(spec.Network); err != nil {
		return nil, err
	}
	var manifest *record
	if spec.Resume != "" {
		m, err := d.prepareResume(ctx, spec, &l)
		if err != nil {
			return nil, err
		}
		manifest = &m
	} else {
		if spec.MemoryMiB <= 0 {
			return nil, specErr("JOBCLASSAD_NO_VM_MEMORY_PARAM", "vm_memory %d MiB: must be positive", spec.MemoryMiB)
		}
		disks, err := planDisks(spec.Disks)
		if err != nil {
			return nil, err
		}
		if err := d.makeOverlays(ctx, spec.Dir, disks, spec.DeltaDisks); err != nil {
			return nil, err
		}
		l.disks = disks
		if err := kernelBoot(spec, &l); err != nil {
			return nil, err
		}
	}
	rec := newRecord(l)
	if err := writeJSON(filepath.Join(spec.Dir, recordFile), rec); err != nil {
		return nil, fmt.Errorf("record vm: %w", err)
	}

	sock, err := d.socketPath(spec.Dir, spec.Name)
	if err != nil {
		return nil, err
	}
	lnFile, err := listenUnix(sock)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(spec.Dir, logFile)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		lnFile.Close()
		return nil, err
	}
	tapFile, err := d.openNetwork(&l)
	if err != nil {
		lnFile.Close()
		logf.Close()
		os.Remove(sock)
		return nil, err
	}
	cmd := exec.Command(d.cfg.Binary, l.args()...)
	cmd.Dir = spec.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{lnFile}
	if tapFile != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, tapFile) // fd tapFD
	}
	// Its own process group: signals to the startd's group (a terminal
	// ^C) do not reach QEMU, and Stop can kill QEMU with all it spawned.
	// No Pdeathsig: QEMU must outlive a startd restart.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if a := spec.RunAs; a != nil {
		// An unprivileged QEMU: it gets the scratch directory (disks,
		// overlays, its pid file and serial log) and nothing else of ours;
		// the QMP socket and tap were opened here and are passed as fds.
		if err := chownTree(spec.Dir, int(a.UID), int(a.GID)); err != nil {
			lnFile.Close()
			logf.Close()
			os.Remove(sock)
			return nil, fmt.Errorf("give %s to %s: %w", spec.Dir, a.Name, err)
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: a.UID, Gid: a.GID, Groups: a.Groups}
	}
	err = cmd.Start()
	lnFile.Close() // QEMU has its copy; ours would keep the socket alive after QEMU died
	if tapFile != nil {
		tapFile.Close() // likewise: the tap now lives as long as QEMU
	}
	logf.Close()
	if err != nil {
		os.Remove(sock)
		return nil, fmt.Errorf("run %s: %w", d.cfg.Binary, err)
	}
	pid := cmd.Process.Pid
	log := d.log.With("vm", spec.Name, "pid", pid)
	log.Debug("qemu started", "args", strings.Join(l.args(), " "))

	fail := func(c *qmp.Client, err error) (*VM, error) {
		if c != nil {
			c.Close()
		}
		killGroup(pid)
		st, _ := cmd.Process.Wait()
		os.Remove(sock)
		if st != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%s)", err, st)
		}
		return nil, startFailure(err, logPath, spec.Dir)
	}
	c, err := qmp.Dial(ctx, sock)
	if err != nil {
		if errors.Is(err, qmp.ErrClosed) {
			err = fmt.Errorf("%w: %w", errStartup, err)
		}
		return fail(nil, err)
	}
	caps := map[string]any{"capabilities": []map[string]any{{"capability": "events", "state": true}}}
	if err := c.Execute(ctx, "migrate-set-capabilities", caps, nil); err != nil {
		return fail(c, err)
	}
	h := hypervisor.Handle{
		Type: d.Type(), Name: spec.Name, Dir: spec.Dir, PID: pid,
		Data: map[string]string{
			"qmp": sock, "log": logPath, "serial": l.serial, "pidfile": l.pidfile,
			"qemu": c.Version().String(),
		},
	}
	if l.tap != "" {
		h.Data["tap"] = l.tap
	}
	if manifest != nil {
		if err := d.incoming(ctx, c, spec.Resume, *manifest); err != nil {
			_, err = fail(c, err)
			return nil, stateRefused(ctx, spec.Resume, err)
		}
	}
	if l.vnc {
		var vnc struct {
			Host    string `json:"host"`
			Service string `json:"service"`
		}
		if err := c.Execute(ctx, "query-vnc", nil, &vnc); err != nil {
			return fail(c, err)
		}
		h.Data["vnc"] = net.JoinHostPort(vnc.Host, vnc.Service)
	}
	if err := c.Execute(ctx, "cont", nil, nil); err != nil {
		return fail(c, err)
	}
	if manifest != nil {
		log.Info("vm resumed", "dir", spec.Resume, "accel", l.accel, "memory_mib", l.memoryMiB)
	} else {
		log.Info("vm started", "accel", l.accel, "memory_mib", l.memoryMiB)
	}
	v := newVM(d, h, cmd.Process, c, &rec)
	v.watch()
	return v, nil
}

// validateName accepts names that are safe as file names and in -name.
func validateName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 200 {
		return specErr("INVALID_NAME", "vm name %q: empty, dot or too long", name)
	}
	for _, r := range name {
		if r == '/' || r < 0x20 || r == 0x7f {
			return specErr("INVALID_NAME", "vm name %q: contains %q", name, r)
		}
	}
	return nil
}

// socketPath is where the VM's QMP socket goes: Dir/qmp.sock, unless that
// path is too long for a unix socket address (deep scratch directories
// are common). Then it goes to a private directory under RuntimeDir
// (mode 0700, ours), named by a hash of Dir and the VM name; the Handle
// records the path either way, so Reattach never has to recompute it.
func (d *Driver) socketPath(dir, name string) (string, error) {
	p := filepath.Join(dir, socketFile)
	if len(p) <= maxSockPath {
		return p, nil
	}
	rt := filepath.Join(d.cfg.RuntimeDir, "vmpool-"+strconv.Itoa(os.Getuid()))
	if err := os.Mkdir(rt, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("runtime dir for qmp sockets: %w", err)
	}
	// Refuse a directory someone else made (or a symlink to one): a
	// socket there could be swapped under us.
	fi, err := os.Lstat(rt)
	if err != nil {
		return "", fmt.Errorf("runtime dir for qmp sockets: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm() != 0o700 {
		return "", fmt.Errorf("runtime dir %s for qmp sockets: must be a directory of ours with mode 0700", rt)
	}
	sum := sha256.Sum256([]byte(dir + "\x00" + name))
	p = filepath.Join(rt, hex.EncodeToString(sum[:8])+".qmp")
	if len(p) > maxSockPath {
		return "", fmt.Errorf("qmp socket path %s is longer than %d bytes; set a shorter RuntimeDir", p, maxSockPath)
	}
	return p, nil
}

// listenUnix binds and listens on a unix socket at path and returns the
// listening descriptor as a file for QEMU to inherit (-chardev
// socket,fd=N,server=on). Because the socket listens before QEMU starts,
// the driver can connect at once, with no polling for the socket to
// appear; the connection is answered when QEMU's monitor is up, and fails
// if QEMU exits first.
func listenUnix(path string) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() == os.ModeSocket {
		os.Remove(path) // stale, from an earlier QEMU in this Dir
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on qmp socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	f, err := ln.File()
	ln.Close()
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("listen on qmp socket: %w", err)
	}
	return f, nil
}

// kernelBoot sets l to boot spec.Kernel, when the spec names one.
func kernelBoot(spec hypervisor.Spec, l *launch) error {
	if spec.Kernel == "" {
		if spec.Initrd != "" {
			return specErr("XEN_NO_KERNEL_PARAM", "an initrd (%s) without a kernel", spec.Initrd)
		}
		return nil
	}
	for _, f := range []struct{ what, path, code string }{{"kernel", spec.Kernel, "XEN_KERNEL_NOT_FOUND"}, {"initrd", spec.Initrd, "XEN_INITRD_NOT_FOUND"}} {
		if f.path == "" {
			continue
		}
		if !filepath.IsAbs(f.path) {
			return specErr(f.code, "%s %q: the path is not absolute", f.what, f.path)
		}
		if fi, err := os.Stat(f.path); err != nil || !fi.Mode().IsRegular() {
			return specErr(f.code, "%s %s is not a readable file", f.what, f.path)
		}
	}
	l.kernel, l.initrd, l.cmdline = spec.Kernel, spec.Initrd, kernelCmdline(spec)
	return nil
}

// makeOverlays gives every read-only IDE or SATA hard disk a qcow2
// overlay in dir (see diskPlan.overlay), and with delta every writable
// disk one that keeps the guest's writes (see diskPlan.delta).
func (d *Driver) makeOverlays(ctx context.Context, dir string, disks []diskPlan, delta bool) error {
	for i := range disks {
		p := &disks[i]
		switch {
		case p.cdrom:
			continue
		case !p.readOnly && delta && (p.format == "raw" || p.format == "qcow2"):
			p.delta = true
		case !p.readOnly || p.bus == busVirtio:
			continue
		}
		p.overlay = filepath.Join(dir, p.device+".overlay.qcow2")
		os.Remove(p.overlay)
		if err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", "-b", p.Path, "-F", p.format, p.overlay); err != nil {
			return fmt.Errorf("overlay for read-only disk %s: %w", p.Path, err)
		}
	}
	return nil
}

// qemuImg runs qemu-img; a failure carries its output.
func (d *Driver) qemuImg(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, d.cfg.ImgBinary, args...).CombinedOutput()
	if err != nil {
		if msg := strings.TrimSpace(string(out)); msg != "" {
			return fmt.Errorf("qemu-img %s: %w: %s", args[0], err, msg)
		}
		return fmt.Errorf("qemu-img %s: %w", args[0], err)
	}
	return nil
}

// Reattach connects to a QEMU started earlier, perhaps by another process,
// from its Handle: the process must still run QEMU for this Dir (a recycled
// pid is detected through its command line) and its QMP socket must
// answer. It returns an error wrapping hypervisor.ErrGone otherwise.
func (d *Driver) Reattach(ctx context.Context, h hypervisor.Handle) (hypervisor.VM, error) {
	vm, err := d.reattach(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("reattach qemu for %s: %w", h.Name, err)
	}
	return vm, nil
}

func (d *Driver) reattach(ctx context.Context, h hypervisor.Handle) (*VM, error) {
	if h.Type != d.Type() {
		return nil, fmt.Errorf("handle is for vm_type %q", h.Type)
	}
	sock := h.Data["qmp"]
	if h.PID <= 0 || sock == "" {
		return nil, fmt.Errorf("handle has no pid or qmp socket")
	}
	if !procAlive(h.PID) {
		reapIfChild(h.PID)
		return nil, fmt.Errorf("pid %d: %w", h.PID, hypervisor.ErrGone)
	}
	if !cmdlineHas(h.PID, filepath.Join(h.Dir, pidFile)) {
		return nil, fmt.Errorf("pid %d runs something else now: %w", h.PID, hypervisor.ErrGone)
	}
	dctx, cancel := context.WithTimeout(ctx, reattachTimeout)
	defer cancel()
	c, err := qmp.Dial(dctx, sock)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("pid %d does not answer on %s: %w: %w", h.PID, sock, hypervisor.ErrGone, err)
	}
	var rec *record
	if r, err := readRecord(filepath.Join(h.Dir, recordFile)); err == nil {
		rec = &r
	} else {
		d.log.Warn("vm record unreadable; checkpoints unavailable", "vm", h.Name, "err", err)
	}
	caps := map[string]any{"capabilities": []map[string]any{{"capability": "events", "state": true}}}
	if err := c.Execute(ctx, "migrate-set-capabilities", caps, nil); err != nil {
		d.log.Debug("enable migration events", "vm", h.Name, "err", err)
	}
	d.log.Info("reattached to vm", "vm", h.Name, "pid", h.PID)
	v := newVM(d, h, nil, c, rec)
	// A guest that powered off while nobody watched is in "shutdown"
	// (-no-shutdown); the monitor must not wait a whole StatusInterval
	// to notice and quit QEMU.
	if st, err := v.queryStatus(ctx); err == nil && st == "shutdown" {
		v.noteShutdown(true, ReasonGuestShutdown)
	}
	v.watch()
	return v, nil
}

// chownTree gives dir and everything in it to uid:gid, without following
// symbolic links.
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// ClearLeftover ends the QEMU an earlier Start left running in dir, found
// by the pidfile QEMU wrote there (and its command line, which names that
// pidfile, so that a recycled pid is left alone): a startd killed between
// starting QEMU and recording its handle left it paused (-S) or running,
// and with -no-shutdown it would never exit by itself.
func (d *Driver) ClearLeftover(ctx context.Context, dir string) error {
	pidPath := filepath.Join(dir, pidFile)
	b, err := os.ReadFile(pidPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clear leftover qemu: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || !procAlive(pid) || !cmdlineHas(pid, pidPath) {
		return nil
	}
	d.log.Warn("ending a qemu an earlier start left running (the startd stopped before recording it)", "pid", pid, "dir", dir)
	if err := killGroup(pid); err != nil {
		return fmt.Errorf("clear leftover qemu: %w", err)
	}
	deadline := time.Now().Add(killWait)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("clear leftover qemu: pid %d still there %v after SIGKILL", pid, killWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
