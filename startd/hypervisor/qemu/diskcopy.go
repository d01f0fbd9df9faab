package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

const (
	ficlone  = 0x40049409 // ioctl FICLONE: share all extents of a file (btrfs, xfs, ...)
	seekData = 3          // lseek SEEK_DATA
	seekHole = 4          // lseek SEEK_HOLE
)

// copyFile copies the disk image src to dst, replacing dst atomically and
// keeping holes: a reflink where the filesystem can share extents, else
// only the data extents (SEEK_DATA/SEEK_HOLE, each copied in the kernel by
// copy_file_range), else everything. The copy is fsynced before it
// replaces dst. Copying a file onto itself is a no-op.
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if dfi, err := os.Stat(dst); err == nil && os.SameFile(fi, dfi) {
		return nil
	}
	out, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name()) // a no-op after the rename
	if err := copyInto(out, in, fi.Size()); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Chmod(fi.Mode().Perm()); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(out.Name(), dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

func copyInto(out, in *os.File, size int64) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, out.Fd(), ficlone, in.Fd()); errno == 0 {
		return nil
	}
	var off int64
	for off < size {
		data, err := in.Seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			break // only a hole is left
		}
		if errors.Is(err, syscall.EINVAL) && off == 0 {
			// No SEEK_DATA here: copy it all.
			if _, err := in.Seek(0, io.SeekStart); err != nil {
				return err
			}
			_, err = io.Copy(out, in)
			return err
		}
		if err != nil {
			return err
		}
		hole, err := in.Seek(data, seekHole)
		if err != nil {
			return err
		}
		if _, err := in.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := out.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.CopyN(out, in, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return out.Truncate(size)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
