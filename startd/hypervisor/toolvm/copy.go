package toolvm

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

const copyChunk = 1 << 20

// CopyFile copies the disk image src to dst, replacing dst atomically
// (temporary file, fsync, rename) and leaving holes where src reads as
// zeros, so that sparse images stay sparse. Copying a file onto itself
// is a no-op.
func CopyFile(dst, src string) error {
	if err := copyFile(dst, src); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

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
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	if dfi, err := os.Stat(dst); err == nil && os.SameFile(fi, dfi) {
		return nil
	}
	out, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name()) // a no-op after the rename
	if err := copySparse(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Truncate(fi.Size()); err != nil {
		out.Close()
		return err
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
	d, err := os.Open(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// copySparse copies in to out chunk by chunk, seeking over chunks of
// zeros instead of writing them.
func copySparse(out, in *os.File) error {
	buf := make([]byte, copyChunk)
	zero := make([]byte, copyChunk)
	var off int64
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			if !bytes.Equal(buf[:n], zero[:n]) {
				if _, werr := out.WriteAt(buf[:n], off); werr != nil {
					return werr
				}
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
