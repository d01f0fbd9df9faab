package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

// A checkpoint dir holds:
//
//	sim-checkpoint.json  the manifest: run time left, exit, disks' devices
//	sim-memory.bin       the "memory state": SimCheckpointBytes bytes
const (
	manifestFile = "sim-checkpoint.json"
	memoryFile   = "sim-memory.bin"
	chunkSize    = 1 << 20
)

// manifest describes a checkpoint.
type manifest struct {
	Name        string   `json:"name"`
	Exit        string   `json:"exit"`
	Left        int64    `json:"left_ns"` // run time left when it was taken
	MemoryMiB   int      `json:"memory_mib"`
	Devices     []string `json:"devices,omitempty"`
	MemoryBytes int64    `json:"memory_bytes"`
}

// Checkpoint saves the VM into dir (created if needed): it holds the
// guest's clock while it writes the memory file and the manifest. With
// opt.Continue the guest runs on afterwards, its deadline moved by the
// time the save took; otherwise the VM ends with reason "checkpointed".
// If the save fails the guest runs on and the error is returned.
func (v *VM) Checkpoint(ctx context.Context, dir string, opt hypervisor.CheckpointOptions) (hypervisor.Checkpoint, error) {
	ck, err := v.checkpoint(ctx, dir, opt)
	if err != nil {
		return hypervisor.Checkpoint{}, fmt.Errorf("checkpoint %s to %s: %w", v.handle.Name, dir, err)
	}
	return ck, nil
}

func (v *VM) checkpoint(ctx context.Context, dir string, opt hypervisor.CheckpointOptions) (hypervisor.Checkpoint, error) {
	v.ckptMu.Lock()
	defer v.ckptMu.Unlock()
	began := time.Now()
	left, rec, err := v.pause(began)
	if err != nil {
		return hypervisor.Checkpoint{}, err
	}
	m := manifest{Name: rec.Name, Exit: rec.Exit, Left: int64(left), MemoryMiB: rec.MemoryMiB,
		Devices: rec.Devices, MemoryBytes: rec.CheckpointBytes}
	err = v.save(ctx, dir, m)
	if err == nil && !opt.Continue {
		if !v.end(hypervisor.Exit{Reason: ReasonCheckpointed}) {
			return hypervisor.Checkpoint{}, v.lostDuring()
		}
		v.log.Debug("sim vm checkpointed and stopped", "took", time.Since(began))
		return hypervisor.Checkpoint{Files: []string{manifestFile, memoryFile}}, nil
	}
	if rerr := v.unpause(time.Since(began)); err == nil {
		err = rerr
	}
	if err != nil {
		return hypervisor.Checkpoint{}, err
	}
	return hypervisor.Checkpoint{Files: []string{manifestFile, memoryFile}}, nil
}

// pause stops the guest's clock and returns the run time it has left.
func (v *VM) pause(now time.Time) (time.Duration, record, error) {
	v.mu.Lock()
	switch {
	case v.detached:
		v.mu.Unlock()
		return 0, record{}, hypervisor.ErrDetached
	case v.ended():
		v.mu.Unlock()
		return 0, record{}, hypervisor.ErrGone
	}
	if v.timer != nil && !v.timer.Stop() {
		// The run ran out just now: the guest is powering off.
		v.mu.Unlock()
		<-v.done
		return 0, record{}, errors.New("the guest powered off")
	}
	v.paused = true
	rec := v.rec
	v.mu.Unlock()
	var left time.Duration
	if rec.Exit != ExitNever {
		left = max(time.Duration(rec.Deadline-now.UnixNano()), 0)
	}
	return left, rec, nil
}

// unpause lets the guest run on, its deadline later by held.
func (v *VM) unpause(held time.Duration) error {
	v.mu.Lock()
	if v.ended() || v.detached {
		v.mu.Unlock()
		return v.lostDuring()
	}
	v.paused = false
	if v.rec.Exit != ExitNever {
		v.rec.Deadline += int64(held)
	}
	rec, recorded := v.rec, v.recorded
	v.mu.Unlock()
	if recorded {
		if err := writeRecord(v.handle.Dir, rec); err != nil {
			v.log.Warn("rewrite sim vm record", "err", err)
		}
	}
	v.arm(time.Now())
	return nil
}

func (v *VM) lostDuring() error {
	if v.isDetached() {
		return hypervisor.ErrDetached
	}
	return errors.New("the vm was stopped during the checkpoint")
}

// save writes the memory file, then the manifest.
func (v *VM) save(ctx context.Context, dir string, m manifest) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := writeMemory(ctx, filepath.Join(dir, memoryFile), m.MemoryBytes); err != nil {
		return err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, manifestFile), b, 0o600)
}

// writeMemory writes n bytes of a pattern no filesystem can leave as
// holes, so that a checkpoint costs its size on disk and on the wire.
func writeMemory(ctx context.Context, path string, n int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, min(n, chunkSize))
	for i := range buf {
		buf[i] = byte(i*131 + 7)
	}
	for n > 0 {
		if err := ctx.Err(); err != nil {
			f.Close()
			return err
		}
		k := min(n, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			return err
		}
		n -= k
	}
	return f.Close()
}

// readManifest reads the checkpoint in dir and checks that it fits a VM
// with disks of the given devices. A checkpoint that does not fit is the
// job's fault: a SpecError.
func readManifest(dir string, devices []string) (manifest, error) {
	var m manifest
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return m, &hypervisor.SpecError{Code: CodeMismatchedCheckpoint, Msg: fmt.Sprintf("no %s in checkpoint %s", manifestFile, dir)}
		}
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, &hypervisor.SpecError{Code: CodeMismatchedCheckpoint, Msg: fmt.Sprintf("checkpoint %s: %s: %v", dir, manifestFile, err)}
	}
	switch m.Exit {
	case ExitPowerOff, ExitCrash, ExitNever:
	default:
		return m, &hypervisor.SpecError{Code: CodeMismatchedCheckpoint, Msg: fmt.Sprintf("checkpoint %s: exit %q", dir, m.Exit)}
	}
	if m.Left < 0 {
		return m, &hypervisor.SpecError{Code: CodeMismatchedCheckpoint, Msg: fmt.Sprintf("checkpoint %s: negative run time left", dir)}
	}
	if !slices.Equal(m.Devices, devices) {
		return m, &hypervisor.SpecError{Code: CodeMismatchedCheckpoint,
			Msg: fmt.Sprintf("checkpoint %s was taken with disks %v, the job has %v", dir, m.Devices, devices)}
	}
	fi, err := os.Stat(filepath.Join(dir, memoryFile))
	if err != nil || fi.Size() != m.MemoryBytes {
		got := "missing"
		if err == nil {
			got = fmt.Sprintf("%d bytes", fi.Size())
		}
		return m, &hypervisor.SpecError{Code: CodeMismatchedCheckpoint,
			Msg: fmt.Sprintf("checkpoint %s: %s is %s, the manifest says %d", dir, memoryFile, got, m.MemoryBytes)}
	}
	return m, nil
}
