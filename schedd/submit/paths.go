package submit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// PathPolicy decides which files a submit description may name for transfer
// (transfer_input_files, vm_disk files, vmware_dir, queue ... from FILE).
//
// A relative path reads as "a file of this job's directory", so by default
// it must stay inside the initial working directory: neither `..` nor a
// symbolic link may lead it out. An absolute path states its intent openly
// and is allowed by default, as in HTCondor (disk images often live on
// shared storage, e.g. /var/lib/libvirt/images). A submitter that reads
// files with privileges the user lacks (a shared schedd) confines absolute
// paths too.
type PathPolicy int

const (
	// PathsDefault: absolute paths allowed; relative paths may not escape
	// the initial working directory through `..` or symbolic links.
	PathsDefault PathPolicy = iota
	// PathsConfined: every path, absolute or relative, must resolve inside
	// the initial working directory.
	PathsConfined
	// PathsUnrestricted: no confinement, as in HTCondor.
	PathsUnrestricted
)

// escapes reports whether target lies outside base (both cleaned).
func escapes(base, target string) bool {
	rel, err := filepath.Rel(base, target)
	if err != nil {
		return true
	}
	return rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// confine applies the policy to path, the absolute form of name (as the
// user wrote it) resolved against iwd.
func confine(iwd, name, path string, policy PathPolicy) *Error {
	if policy == PathsUnrestricted {
		return nil
	}
	abs := filepath.IsAbs(name)
	if abs && policy == PathsDefault {
		return nil
	}
	code, how := "input-escapes-iwd", "leaves the submit directory %s"
	if abs {
		code, how = "input-absolute-forbidden", "lies outside the submit directory %s"
	}
	if escapes(filepath.Clean(iwd), filepath.Clean(path)) {
		return &Error{Code: code, Msg: fmt.Sprintf("%q "+how, name, iwd)}
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil // a missing file is reported by the caller
	}
	realIwd, err := filepath.EvalSymlinks(iwd)
	if err != nil {
		realIwd = iwd
	}
	if escapes(realIwd, real) {
		return &Error{Code: code, Msg: fmt.Sprintf("%q "+how+" through a symbolic link (it resolves to %s)", name, iwd, real)}
	}
	return nil
}

// unquote strips one pair of surrounding quotes, as condor_submit does for
// file names.
func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// absPath resolves name against iwd.
func absPath(iwd, name string) string {
	if filepath.IsAbs(name) {
		return filepath.Clean(name)
	}
	return filepath.Join(iwd, name)
}

// checkInput checks a file to transfer: allowed by the policy, existing, a
// readable regular file. It returns the absolute path and the size.
func checkInput(iwd, name string, policy PathPolicy) (string, int64, *Error) {
	if strings.Contains(name, "://") {
		return "", 0, &Error{Code: "input-url-unsupported",
			Msg: fmt.Sprintf("%q is a URL; vmpool transfers local files only", clip(name))}
	}
	path := absPath(iwd, name)
	if e := confine(iwd, name, path, policy); e != nil {
		return "", 0, e
	}
	fi, err := os.Stat(path)
	if err != nil {
		code := "input-unreadable"
		reason := unwrapPathErr(err).Error()
		switch {
		case errors.Is(err, fs.ErrNotExist):
			code, reason = "input-missing", "No such file or directory"
		case errors.Is(err, fs.ErrPermission):
			reason = "Permission denied"
		}
		return "", 0, &Error{Code: code, Msg: fmt.Sprintf("Can't open %q with flags O_RDONLY (%s)", path, reason)}
	}
	if fi.IsDir() {
		return "", 0, &Error{Code: "input-is-directory", Msg: fmt.Sprintf("%q is a directory, not a file to transfer", path)}
	}
	if !fi.Mode().IsRegular() {
		return "", 0, &Error{Code: "input-unreadable", Msg: fmt.Sprintf("%q is not a regular file", path)}
	}
	f, err := os.Open(path)
	if err != nil {
		reason := unwrapPathErr(err).Error()
		if errors.Is(err, fs.ErrPermission) {
			reason = "Permission denied"
		}
		return "", 0, &Error{Code: "input-unreadable", Msg: fmt.Sprintf("Can't open %q with flags O_RDONLY (%s)", path, reason)}
	}
	f.Close()
	return path, fi.Size(), nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fsCache remembers what one parse learnt of the file system, so that a
// cluster of many jobs naming the same files checks each once.
type fsCache struct {
	inputs map[string]inputResult
	dirs   map[string]bool
	logs   map[string]error // Options.CheckLog's answers
	backs  map[string]string
}

type inputResult struct {
	path string
	size int64
	err  *Error
}

func newFSCache() *fsCache {
	return &fsCache{inputs: map[string]inputResult{}, dirs: map[string]bool{}, logs: map[string]error{}, backs: map[string]string{}}
}

// checkInput is the package's checkInput, remembered. The *Error is a
// fresh copy for the caller to complete.
func (c *fsCache) checkInput(base, name string, policy PathPolicy) (string, int64, *Error) {
	k := base + "\x00" + name
	r, ok := c.inputs[k]
	if !ok {
		r.path, r.size, r.err = checkInput(base, name, policy)
		c.inputs[k] = r
	}
	if r.err != nil {
		e := *r.err
		return "", 0, &e
	}
	return r.path, r.size, nil
}

func (c *fsCache) isDir(path string) bool {
	v, ok := c.dirs[path]
	if !ok {
		fi, err := os.Stat(path)
		v = err == nil && fi.IsDir()
		c.dirs[path] = v
	}
	return v
}

// qcow2Backing is the backing file name in the header of the qcow2 image
// at path, remembered: "" for none, or for a file that is no qcow2 image
// or cannot be read (QEMU's own check reports those at run time).
func (c *fsCache) qcow2Backing(path string) string {
	v, ok := c.backs[path]
	if !ok {
		v = qcow2Backing(path)
		c.backs[path] = v
	}
	return v
}

// qcow2Backing reads the backing file name of a qcow2 image: its header
// begins with the magic QFI\xfb, a version, then the backing file name's
// offset (8 bytes) and length (4 bytes, at most 1023), big-endian.
func qcow2Backing(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var h [20]byte
	if _, err := io.ReadFull(f, h[:]); err != nil || string(h[:4]) != "QFI\xfb" {
		return ""
	}
	off, n := binary.BigEndian.Uint64(h[8:16]), binary.BigEndian.Uint32(h[16:20])
	if off == 0 || n == 0 || n > 1023 || off > 1<<30 {
		return ""
	}
	name := make([]byte, n)
	if _, err := f.ReadAt(name, int64(off)); err != nil {
		return ""
	}
	return string(name)
}

// checkLog is check(path), remembered.
func (c *fsCache) checkLog(path string, check func(string) error) error {
	err, ok := c.logs[path]
	if !ok {
		err = check(path)
		c.logs[path] = err
	}
	return err
}
