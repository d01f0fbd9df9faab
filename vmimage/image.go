package vmimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultSize is the size of the images WriteHello and friends make: 1 MiB,
// sparse, so that every BIOS and controller sees an ordinary small disk.
const DefaultSize = 1 << 20

// QEMUImg is the qemu-img binary the qcow2 helpers run; a bare name is
// looked up on PATH.
const QEMUImg = "qemu-img"

// qemuImgTimeout bounds the qemu-img calls made without a context (ReadData).
const qemuImgTimeout = 30 * time.Second

// WriteHello writes the counter guest (the example "hello" job) as a raw
// image of DefaultSize to path.
func WriteHello(path string) error {
	return Counter().WriteRaw(path, DefaultSize)
}

// WriteRaw writes the guest as a sparse raw image of size bytes (at least
// two sectors; 0 means DefaultSize) to path, replacing any file there.
func (g Guest) WriteRaw(path string, size int64) error {
	img, err := g.Image()
	if err != nil {
		return err
	}
	if size == 0 {
		size = DefaultSize
	}
	if size < int64(len(img)) || size%SectorSize != 0 {
		return fmt.Errorf("write %v guest to %s: size %d is not a multiple of %d of at least %d", g.Kind, path, size, SectorSize, len(img))
	}
	if err := writeSparse(path, img, size); err != nil {
		return fmt.Errorf("write %v guest to %s: %w", g.Kind, path, err)
	}
	return nil
}

// WriteQCOW2 writes the guest as a qcow2 image of virtual size bytes
// (0 means DefaultSize) to path, by converting a raw image with qemu-img.
func (g Guest) WriteQCOW2(ctx context.Context, path string, size int64) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vmimage-*.raw")
	if err != nil {
		return fmt.Errorf("write %v guest to %s: %w", g.Kind, path, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := g.WriteRaw(tmp.Name(), size); err != nil {
		return err
	}
	if err := Convert(ctx, tmp.Name(), "raw", path, "qcow2"); err != nil {
		return fmt.Errorf("write %v guest to %s: %w", g.Kind, path, err)
	}
	return nil
}

// CreateRaw makes an empty sparse raw image of size bytes at path.
func CreateRaw(path string, size int64) error {
	if err := writeSparse(path, nil, size); err != nil {
		return fmt.Errorf("create raw image %s: %w", path, err)
	}
	return nil
}

// CreateQCOW2 makes an empty qcow2 image of virtual size bytes at path.
func CreateQCOW2(ctx context.Context, path string, size int64) error {
	if err := qemuImg(ctx, "create", "-q", "-f", "qcow2", path, strconv.FormatInt(size, 10)); err != nil {
		return fmt.Errorf("create qcow2 image %s: %w", path, err)
	}
	return nil
}

// CreateOverlay makes a qcow2 image at path whose backing file is base (of
// format baseFormat, e.g. "raw"); writes go to the overlay, base is only
// read. base is recorded as given, so make it absolute unless the overlay
// will sit next to it.
func CreateOverlay(ctx context.Context, path, base, baseFormat string) error {
	if err := qemuImg(ctx, "create", "-q", "-f", "qcow2", "-b", base, "-F", baseFormat, path); err != nil {
		return fmt.Errorf("create overlay %s on %s: %w", path, base, err)
	}
	return nil
}

// Convert copies the image src of format srcFormat to dst in dstFormat
// ("raw", "qcow2", ...), flattening any backing chain.
func Convert(ctx context.Context, src, srcFormat, dst, dstFormat string) error {
	if err := qemuImg(ctx, "convert", "-q", "-f", srcFormat, "-O", dstFormat, src, dst); err != nil {
		return fmt.Errorf("convert %s to %s %s: %w", src, dstFormat, dst, err)
	}
	return nil
}

// DetectFormat tells a qcow2 image from a raw one by its first bytes: the
// qcow2 magic "QFI\xfb", or else "raw". Other formats (vmdk, vdi, ...) are
// reported as "raw" too; this package writes only raw and qcow2.
func DetectFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	if string(magic[:]) == "QFI\xfb" {
		return "qcow2", nil
	}
	return "raw", nil
}

// readQCOW2Sector extracts one sector of a qcow2 image (through its backing
// chain) with "qemu-img dd" into a temporary raw file.
func readQCOW2Sector(path string, lba int64) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "vmimage-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "sector.raw")
	ctx, cancel := context.WithTimeout(context.Background(), qemuImgTimeout)
	defer cancel()
	// skip counts input blocks of bs, so read lba+1 sectors and take the last.
	err = qemuImg(ctx, "dd", "-f", "qcow2", "-O", "raw", "bs="+strconv.Itoa(SectorSize),
		"count="+strconv.FormatInt(lba+1, 10), "if="+path, "of="+out)
	if err != nil {
		return nil, err
	}
	return readRawSector(out, lba)
}

// qemuImg runs qemu-img with args; a failure carries its stderr.
func qemuImg(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, QEMUImg, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("qemu-img %s: %w: %s", args[0], err, msg)
		}
		return fmt.Errorf("qemu-img %s: %w", args[0], err)
	}
	return nil
}

// writeSparse writes head at the start of a file of size bytes; the rest
// is a hole. The file is written under a temporary name and renamed, so
// readers never see a half-written image.
func writeSparse(path string, head []byte, size int64) error {
	if size < int64(len(head)) {
		return fmt.Errorf("size %d smaller than the %d bytes of content", size, len(head))
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	if _, err := f.Write(head); err != nil {
		f.Close()
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
