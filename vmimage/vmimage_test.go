package vmimage_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/vmimage"
)

// bootTimeout bounds one boot of a test guest under TCG on a loaded CI
// machine; it is a safety net, not a speed assertion.
const bootTimeout = 60 * time.Second

func needQEMU(tb testing.TB) {
	tb.Helper()
	for _, bin := range []string{"qemu-system-x86_64", vmimage.QEMUImg} {
		if _, err := exec.LookPath(bin); err != nil {
			tb.Skipf("%s not installed: %v", bin, err)
		}
	}
}

func qemuArgs(img, format string) []string {
	return []string{"-nodefaults", "-display", "none", "-m", "16", "-serial", "stdio",
		"-drive", "file=" + img + ",format=" + format}
}

// boot runs QEMU on img until the guest powers off and returns what the
// guest printed on its serial port.
func boot(tb testing.TB, img, format string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", qemuArgs(img, format)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("boot %s: %v (ctx: %v)\nserial: %s\nstderr: %s", img, err, ctx.Err(), out.String(), stderr.String())
	}
	return out.String()
}

func readData(t *testing.T, img string) vmimage.Data {
	t.Helper()
	d, err := vmimage.ReadData(img)
	if err != nil {
		t.Fatalf("ReadData: %v", err)
	}
	return d
}

func TestBootSectors(t *testing.T) {
	tests := []struct {
		name  string
		guest vmimage.Guest
	}{
		{"counter", vmimage.Counter()},
		{"forever", vmimage.Forever()},
		{"stamp", vmimage.StampCounter(100)},
		{"timed", vmimage.Timed(10)},
		{"halting", vmimage.Halting()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.guest.BootSector()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != vmimage.SectorSize || b[510] != 0x55 || b[511] != 0xAA {
				t.Fatalf("boot sector: %d bytes, signature %#x %#x", len(b), b[510], b[511])
			}
			img, err := tt.guest.Image()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(img[:vmimage.SectorSize], b) {
				t.Fatal("Image does not start with BootSector")
			}
		})
	}
	if _, err := (vmimage.Guest{}).BootSector(); err == nil {
		t.Fatal("zero Guest assembled")
	}
}

func TestWriteRawIsSparse(t *testing.T) {
	img := filepath.Join(t.TempDir(), "hello.img")
	if err := vmimage.WriteHello(img); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != vmimage.DefaultSize {
		t.Fatalf("size %d, want %d", fi.Size(), vmimage.DefaultSize)
	}
	d := readData(t, img)
	want := vmimage.Data{Kind: vmimage.KindCounter}
	if d != want {
		t.Fatalf("fresh data %+v, want %+v", d, want)
	}
	if err := vmimage.Counter().WriteRaw(img, 1000); err == nil {
		t.Fatal("WriteRaw accepted a size that is not a multiple of 512")
	}
}

func TestReadDataErrors(t *testing.T) {
	dir := t.TempDir()
	zeros := filepath.Join(dir, "zeros.img")
	if err := vmimage.CreateRaw(zeros, 4096); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.img")
	if err := os.WriteFile(short, make([]byte, 600), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want error
	}{
		{"no magic", zeros, vmimage.ErrNoData},
		{"too short", short, vmimage.ErrNoData},
		{"missing", filepath.Join(dir, "missing.img"), fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := vmimage.ReadData(tt.path); !errors.Is(err, tt.want) {
				t.Fatalf("ReadData = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTicksFor(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want uint32
	}{
		{0, 0},
		{time.Second, 19},
		{20 * time.Second, 365},
		{55 * time.Millisecond, 2}, // a tick is 54.9 ms, so just over one
	}
	for _, tt := range tests {
		if got := vmimage.TicksFor(tt.d); got != tt.want {
			t.Errorf("TicksFor(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func TestCounterIncrementsOnEachBoot(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	img := filepath.Join(t.TempDir(), "hello.img")
	if err := vmimage.WriteHello(img); err != nil {
		t.Fatal(err)
	}
	for i := uint32(1); i <= 2; i++ {
		out := boot(t, img, "raw")
		if !strings.Contains(out, vmimage.SerialPoweroff) || strings.Contains(out, vmimage.SerialDiskError) {
			t.Fatalf("boot %d serial output %q", i, out)
		}
		d := readData(t, img)
		if d.Counter != i || d.Boots != i {
			t.Fatalf("after boot %d: %+v", i, d)
		}
	}
}

func TestQCOW2AndOverlay(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	q := filepath.Join(dir, "hello.qcow2")
	if err := vmimage.Counter().WriteQCOW2(ctx, q, 0); err != nil {
		t.Fatal(err)
	}
	if f, err := vmimage.DetectFormat(q); err != nil || f != "qcow2" {
		t.Fatalf("DetectFormat = %q, %v", f, err)
	}
	boot(t, q, "qcow2")
	if d := readData(t, q); d.Counter != 1 {
		t.Fatalf("qcow2 after one boot: %+v", d)
	}

	base := filepath.Join(dir, "base.img")
	if err := vmimage.WriteHello(base); err != nil {
		t.Fatal(err)
	}
	over := filepath.Join(dir, "over.qcow2")
	if err := vmimage.CreateOverlay(ctx, over, base, "raw"); err != nil {
		t.Fatal(err)
	}
	boot(t, over, "qcow2")
	boot(t, over, "qcow2")
	if d := readData(t, over); d.Counter != 2 {
		t.Fatalf("overlay after two boots: %+v", d)
	}
	if d := readData(t, base); d.Counter != 0 {
		t.Fatalf("base changed under its overlay: %+v", d)
	}
	flat := filepath.Join(dir, "flat.img")
	if err := vmimage.Convert(ctx, over, "qcow2", flat, "raw"); err != nil {
		t.Fatal(err)
	}
	if d := readData(t, flat); d.Counter != 2 {
		t.Fatalf("flattened overlay: %+v", d)
	}
	if err := vmimage.CreateOverlay(ctx, filepath.Join(dir, "bad.qcow2"), filepath.Join(dir, "missing"), "raw"); err == nil {
		t.Fatal("overlay on a missing base succeeded")
	}
}

func TestForeverRunsUntilKilled(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	img := filepath.Join(t.TempDir(), "forever.img")
	if err := vmimage.Forever().WriteRaw(img, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", qemuArgs(img, "raw")...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := bufio.NewScanner(stdout)
	ready := false
	for lines.Scan() {
		if strings.Contains(lines.Text(), vmimage.SerialReady) {
			ready = true
			break
		}
	}
	if !ready {
		cmd.Process.Kill()
		t.Fatalf("guest ended its output without %q: %v", vmimage.SerialReady, cmd.Wait())
	}
	go func() { io.Copy(io.Discard, stdout); exited <- cmd.Wait() }()
	// The guest is idling now; it must not have powered off.
	select {
	case err := <-exited:
		t.Fatalf("forever guest exited by itself: %v", err)
	default:
	}
	cmd.Process.Kill()
	<-exited
	d := readData(t, img)
	if d.Boots != 1 || d.Counter != 0 {
		t.Fatalf("forever guest data %+v", d)
	}
}

func TestStampCounter(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	dir := t.TempDir()
	const ticks = 6
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	for _, img := range []string{a, b} {
		if err := vmimage.StampCounter(ticks).WriteRaw(img, 0); err != nil {
			t.Fatal(err)
		}
		boot(t, img, "raw")
	}
	da, db := readData(t, a), readData(t, b)
	for _, d := range []vmimage.Data{da, db} {
		if d.Kind != vmimage.KindStamp || !d.Done || !d.Stamped || d.Ticks != ticks || d.Target != ticks || d.Counter != 1 || d.Boots != 1 || d.Stamp.IsZero() {
			t.Fatalf("stamp guest after one run: %+v", d)
		}
	}
	if da.Stamp == db.Stamp {
		t.Fatalf("two fresh boots have the same stamp %v", da.Stamp)
	}
	// A reboot from the finished disk keeps the stamp and finishes at once.
	boot(t, a, "raw")
	again := readData(t, a)
	if again.Stamp != da.Stamp || again.Boots != 2 || again.Counter != 2 || again.Ticks != ticks {
		t.Fatalf("after reboot: %+v, first %+v", again, da)
	}
}

func TestTimed(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	img := filepath.Join(t.TempDir(), "timed.img")
	if err := vmimage.Timed(4).WriteRaw(img, 0); err != nil {
		t.Fatal(err)
	}
	boot(t, img, "raw")
	d := readData(t, img)
	if d.Kind != vmimage.KindTimed || d.Counter != 1 || d.Ticks != 4 || d.Boots != 1 || d.Stamped {
		t.Fatalf("timed guest data %+v", d)
	}
}

// BenchmarkBootCounterGuest measures a whole QEMU run of the hello guest
// under the accelerator QEMU picks by default (TCG here): process start,
// SeaBIOS, the boot sector's disk read and write, ACPI power-off.
func BenchmarkBootCounterGuest(b *testing.B) {
	needQEMU(b)
	img := filepath.Join(b.TempDir(), "hello.img")
	if err := vmimage.WriteHello(img); err != nil {
		b.Fatal(err)
	}
	n := 0
	start := time.Now()
	for b.Loop() {
		boot(b, img, "raw")
		n++
	}
	b.ReportMetric(time.Since(start).Seconds()/float64(n), "s/boot")
	d, err := vmimage.ReadData(img)
	if err != nil || d.Counter != uint32(n) {
		b.Fatalf("after %d boots: %+v, %v", n, d, err)
	}
}
