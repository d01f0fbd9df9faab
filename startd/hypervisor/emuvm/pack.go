package emuvm

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxPackedFile bounds one file unpacked from a pack: a corrupt or hostile
// file must not fill the disk.
const maxPackedFile = 64 << 30

// ErrBadMagic is returned by Unpack for a file that does not start with the
// expected magic: not a file of this kind.
var ErrBadMagic = errors.New("emuvm: wrong magic number")

// Pack writes magic and then the files of dir named in files (base names)
// as a tar stream to path, atomically.
func Pack(path, magic, dir string, files []string) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("emuvm: pack %s: %w", path, err)
	}
	defer os.Remove(tmp) // a no-op after the rename
	bw := bufio.NewWriter(f)
	err = func() error {
		if _, err := bw.WriteString(magic); err != nil {
			return err
		}
		tw := tar.NewWriter(bw)
		for _, name := range files {
			if filepath.Base(name) != name {
				return fmt.Errorf("file %q is not a base name", name)
			}
			if err := addFile(tw, filepath.Join(dir, name), name); err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		return f.Sync()
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("emuvm: pack %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("emuvm: pack %s: %w", path, err)
	}
	return nil
}

func addFile(tw *tar.Writer, path, name string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: fi.Size(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err = io.Copy(tw, in)
	return err
}

// Unpack reads a file Pack wrote, checks its magic, and writes its files
// into dir (created). It returns their names. A file of another kind gives
// an error wrapping ErrBadMagic.
func Unpack(path, magic, dir string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("emuvm: unpack: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != magic {
		return nil, fmt.Errorf("emuvm: unpack %s: %w", path, ErrBadMagic)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("emuvm: unpack %s: %w", path, err)
	}
	tr := tar.NewReader(br)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("emuvm: unpack %s: %w", path, err)
		}
		if hdr.Typeflag != tar.TypeReg || filepath.Base(hdr.Name) != hdr.Name || hdr.Name == "." || hdr.Name == ".." {
			return nil, fmt.Errorf("emuvm: unpack %s: entry %q is not a plain file", path, hdr.Name)
		}
		if hdr.Size < 0 || hdr.Size > maxPackedFile {
			return nil, fmt.Errorf("emuvm: unpack %s: entry %q has size %d", path, hdr.Name, hdr.Size)
		}
		if err := writeFile(filepath.Join(dir, hdr.Name), tr, hdr.Size); err != nil {
			return nil, fmt.Errorf("emuvm: unpack %s: %w", path, err)
		}
		names = append(names, hdr.Name)
	}
}

func writeFile(path string, r io.Reader, size int64) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(out, r, size); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
