package sim

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

func TestParseParams(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   map[string]string
		want params
		code string // SpecError code, "" for success
	}{
		{name: "defaults", in: nil, want: params{exit: ExitPowerOff}},
		{name: "classad values", in: map[string]string{"SimRunSeconds": "2.5", "SimExit": `"crash"`, "SimCheckpointBytes": "1048576"},
			want: params{run: 2500 * time.Millisecond, exit: ExitCrash, checkpointBytes: 1 << 20}},
		{name: "names and words in any case", in: map[string]string{"simrunseconds": "2", "SIMEXIT": "Never"},
			want: params{run: 2 * time.Second, exit: ExitNever}},
		{name: "real printed with exponent", in: map[string]string{"SimCheckpointBytes": "1.0E+06"}, want: params{exit: ExitPowerOff, checkpointBytes: 1e6}},
		{name: "undefined is not given", in: map[string]string{"SimRunSeconds": "undefined"}, want: params{exit: ExitPowerOff}},
		{name: "unknown sim attributes ignored", in: map[string]string{"SimColour": `"blue"`}, want: params{exit: ExitPowerOff}},
		{name: "negative run", in: map[string]string{"SimRunSeconds": "-1"}, code: CodeInvalidParam},
		{name: "run not a number", in: map[string]string{"SimRunSeconds": `"soon"`}, code: CodeInvalidParam},
		{name: "unknown exit", in: map[string]string{"SimExit": `"explode"`}, code: CodeInvalidParam},
		{name: "fractional bytes", in: map[string]string{"SimCheckpointBytes": "1.5"}, code: CodeInvalidParam},
		{name: "huge checkpoint", in: map[string]string{"SimCheckpointBytes": "1e15"}, code: CodeInvalidParam},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseParams(tc.in)
			if tc.code != "" {
				var se *hypervisor.SpecError
				if !errors.As(err, &se) || se.Code != tc.code || !errors.Is(err, hypervisor.ErrBadSpec) {
					t.Fatalf("parseParams(%v) = %v, want SpecError %s", tc.in, err, tc.code)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseParams(%v) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

// newSpec is a sim VM with one disk and the given parameters.
func newSpec(t *testing.T, params map[string]string) hypervisor.Spec {
	t.Helper()
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	return hypervisor.Spec{Name: "vm", Dir: dir, MemoryMiB: 64, VCPUs: 1, Params: params,
		Disks: []hypervisor.Disk{{Path: disk, Device: "hda", Writable: true}}}
}

func start(t *testing.T, d *Driver, spec hypervisor.Spec) *VM {
	t.Helper()
	vm, err := d.Start(t.Context(), spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = vm.Stop(context.Background(), 0) })
	return vm.(*VM)
}

func wait(t *testing.T, vm hypervisor.VM) hypervisor.Exit {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	e, err := vm.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return e
}

func TestCrashDoesNotComplete(t *testing.T) {
	vm := start(t, New(Config{}), newSpec(t, map[string]string{ParamExit: `"crash"`}))
	if e := wait(t, vm); e.PoweredOff || e.Reason != ReasonCrashed {
		t.Fatalf("Exit %+v, want a crash", e)
	}
	if st, err := vm.Status(t.Context()); err != nil || st != hypervisor.StateGone {
		t.Fatalf("Status after a crash = %q, %v", st, err)
	}
}

func TestStopHonouredByPoweroffGuest(t *testing.T) {
	vm := start(t, New(Config{}), newSpec(t, map[string]string{ParamRunSeconds: "3600"}))
	if err := vm.Stop(t.Context(), time.Hour); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if e := wait(t, vm); e.PoweredOff || e.Reason != ReasonPowerdown {
		t.Fatalf("Exit %+v after an ACPI stop, want %q without completion", e, ReasonPowerdown)
	}
}

// A guest whose run ends while its startd is away has powered off when
// the startd comes back, as a QEMU started with -no-shutdown shows.
func TestReattachAfterPowerOff(t *testing.T) {
	spec := newSpec(t, map[string]string{ParamRunSeconds: "0.02"})
	vm := start(t, New(Config{}), spec)
	h := vm.Handle()
	if err := vm.Detach(); err != nil {
		t.Fatal(err)
	}
	// Make the run time pass while no driver watches: move the deadline
	// into the past in the record, as a later clock reading would.
	rec, err := readRecord(spec.Dir)
	if err != nil {
		t.Fatal(err)
	}
	rec.Deadline = time.Now().Add(-time.Second).UnixNano()
	if err := writeRecord(spec.Dir, rec); err != nil {
		t.Fatal(err)
	}
	vm2, err := New(Config{}).Reattach(t.Context(), h)
	if err != nil {
		t.Fatalf("Reattach: %v", err)
	}
	if e := wait(t, vm2); !e.PoweredOff {
		t.Fatalf("Exit %+v, want the guest powered off", e)
	}
	if _, err := New(Config{}).Reattach(t.Context(), h); !errors.Is(err, hypervisor.ErrGone) {
		t.Fatalf("second Reattach = %v, want ErrGone", err)
	}
}

func TestCheckpointKeepsRunTimeLeft(t *testing.T) {
	d := New(Config{})
	spec := newSpec(t, map[string]string{ParamRunSeconds: "3600", ParamCheckpointBytes: "3000000"})
	vm := start(t, d, spec)
	ck := t.TempDir()
	cp, err := vm.Checkpoint(t.Context(), ck, hypervisor.CheckpointOptions{})
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if len(cp.Files) != 2 {
		t.Fatalf("Checkpoint files %v", cp.Files)
	}
	if fi, err := os.Stat(filepath.Join(ck, memoryFile)); err != nil || fi.Size() != 3000000 {
		t.Fatalf("memory file: %v, %v", fi, err)
	}
	if e := wait(t, vm); e.PoweredOff || e.Reason != ReasonCheckpointed {
		t.Fatalf("Exit %+v after an evicting checkpoint", e)
	}
	m, err := readManifest(ck, []string{"hda"})
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Duration(m.Left); left > time.Hour || left < 59*time.Minute {
		t.Fatalf("run time left %v, want just under an hour", left)
	}

	// The job's parameters now say a short run; the checkpoint's time
	// left wins, as the guest's memory would.
	spec2 := newSpec(t, map[string]string{ParamRunSeconds: "0"})
	spec2.Resume = ck
	vm2 := start(t, d, spec2)
	if st, err := vm2.Status(t.Context()); err != nil || st != hypervisor.StateRunning {
		t.Fatalf("resumed VM Status = %q, %v", st, err)
	}
	vm2.mu.Lock()
	rec := vm2.rec
	vm2.mu.Unlock()
	if left := time.Until(time.Unix(0, rec.Deadline)); !rec.Resumed || left < 58*time.Minute {
		t.Fatalf("resumed VM %+v runs %v more, want the checkpoint's time left", rec, left)
	}
}

func TestResumeMismatch(t *testing.T) {
	d := New(Config{})
	vm := start(t, d, newSpec(t, map[string]string{ParamExit: `"never"`}))
	ck := t.TempDir()
	if _, err := vm.Checkpoint(t.Context(), ck, hypervisor.CheckpointOptions{Continue: true}); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if st, _ := vm.Status(t.Context()); st != hypervisor.StateRunning {
		t.Fatalf("Status after a periodic checkpoint = %q", st)
	}
	for _, tc := range []struct {
		name string
		edit func(*hypervisor.Spec)
	}{
		{"other disks", func(s *hypervisor.Spec) { s.Disks[0].Device = "vda" }},
		{"no checkpoint there", func(s *hypervisor.Spec) { s.Resume = t.TempDir() }},
		{"memory file cut short", func(s *hypervisor.Spec) {
			if err := os.WriteFile(filepath.Join(s.Resume, memoryFile), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := newSpec(t, nil)
			spec.Resume = ck
			tc.edit(&spec)
			_, err := d.Start(t.Context(), spec)
			var se *hypervisor.SpecError
			if !errors.As(err, &se) || se.Code != CodeMismatchedCheckpoint {
				t.Fatalf("Start = %v, want SpecError %s", err, CodeMismatchedCheckpoint)
			}
		})
	}
}

func TestStartRejectsBadSpecs(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*hypervisor.Spec)
		code string
	}{
		{"missing disk", func(s *hypervisor.Spec) { s.Disks[0].Path += ".gone" }, CodeInvalidDisk},
		{"no memory", func(s *hypervisor.Spec) { s.MemoryMiB = 0 }, CodeNoMemory},
		{"bad parameter", func(s *hypervisor.Spec) { s.Params = map[string]string{ParamExit: "maybe"} }, CodeInvalidParam},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := newSpec(t, nil)
			tc.edit(&spec)
			_, err := New(Config{}).Start(t.Context(), spec)
			var se *hypervisor.SpecError
			if !errors.As(err, &se) || se.Code != tc.code {
				t.Fatalf("Start = %v, want SpecError %s", err, tc.code)
			}
		})
	}
}
