package schedd

import (
	"fmt"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// The schedd writes into users' directories: returned disks into a job's
// Iwd, events into its user log. Running as root, it must not do that as
// root, or a user could point a path (a log = /etc/..., an Iwd swapped for
// a symbolic link) at a file only root may write. So, as HTCondor's shadow
// does, it writes as the job's owner: on a thread of its own whose
// file-system identity (fsuid, fsgid and groups, which Linux keeps per
// thread) is the owner's, so the kernel checks every path component and
// the write itself with the owner's rights. An owner without an account
// here writes as NobodyUser.

// NobodyUser is the account an owner without a local account writes as.
const NobodyUser = "nobody"

// account is a local user's file-system identity.
type account struct {
	name     string
	uid, gid int
	groups   []uint32
}

func lookupAccount(name string) (*account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if name == NobodyUser {
			return nil, fmt.Errorf("no account %q to write as: %w", name, err)
		}
		return lookupAccount(NobodyUser)
	}
	a := &account{name: u.Username}
	if a.uid, err = strconv.Atoi(u.Uid); err != nil {
		return nil, fmt.Errorf("account %s: uid %q: %w", name, u.Uid, err)
	}
	if a.gid, err = strconv.Atoi(u.Gid); err != nil {
		return nil, fmt.Errorf("account %s: gid %q: %w", name, u.Gid, err)
	}
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if n, err := strconv.Atoi(g); err == nil {
			a.groups = append(a.groups, uint32(n))
		}
	}
	if len(a.groups) == 0 {
		a.groups = []uint32{uint32(a.gid)}
	}
	return a, nil
}

// writesAs names the account asUser(owner, ...) writes as: owner, nobody
// for an owner without an account here, or this process's own user when
// it does not run as root.
func writesAs(owner string) string {
	if os.Geteuid() != 0 {
		if u, err := user.Current(); err == nil {
			return u.Username
		}
		return fmt.Sprintf("uid %d", os.Geteuid())
	}
	if owner == "root" {
		return owner
	}
	if a, err := lookupAccount(owner); err == nil {
		return a.name
	}
	return owner
}

// asUser runs fn with the file-system identity of the local account owner
// when this process runs as root (as NobodyUser when owner has no account
// here); otherwise, and for owner root, it just runs fn. fn runs on a
// thread of its own and must do its file work in its own goroutine.
func asUser(owner string, fn func() error) error {
	if os.Geteuid() != 0 || owner == "root" {
		return fn()
	}
	a, err := lookupAccount(owner)
	if err != nil {
		return err
	}
	if a.uid == 0 {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		// The thread is never handed back with a foreign identity: if
		// restoring root's fails it stays locked and dies with this
		// goroutine.
		runtime.LockOSThread()
		restored, err := runAs(a, fn)
		if restored {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// runAs switches the calling (locked) thread's file-system identity to a,
// runs fn and switches back; restored reports whether it got back.
func runAs(a *account, fn func() error) (restored bool, err error) {
	oldGroups, err := threadGroups()
	if err != nil {
		return true, fmt.Errorf("write as %s: %w", a.name, err)
	}
	if err := setThreadGroups(a.groups); err != nil {
		return true, fmt.Errorf("write as %s: set groups: %w", a.name, err)
	}
	// setfsuid and setfsgid return the previous value and never fail;
	// reading the value back is how a refusal shows.
	rawSyscall(syscall.SYS_SETFSGID, uintptr(a.gid))
	rawSyscall(syscall.SYS_SETFSUID, uintptr(a.uid))
	defer func() {
		rawSyscall(syscall.SYS_SETFSUID, 0)
		rawSyscall(syscall.SYS_SETFSGID, 0)
		gerr := setThreadGroups(oldGroups)
		restored = fsid(syscall.SYS_SETFSUID) == 0 && fsid(syscall.SYS_SETFSGID) == 0 && gerr == nil
	}()
	if fsid(syscall.SYS_SETFSUID) != a.uid || fsid(syscall.SYS_SETFSGID) != a.gid {
		return false, fmt.Errorf("write as %s: the kernel refused the file-system identity", a.name)
	}
	return false, fn()
}

// fsid reads the thread's current fsuid or fsgid: asking to set -1 (an
// invalid id) changes nothing and returns the current value.
func fsid(trap uintptr) int {
	r := rawSyscall(trap, ^uintptr(0))
	return int(uint32(r))
}

func rawSyscall(trap, a1 uintptr) uintptr {
	r, _, _ := syscall.RawSyscall(trap, a1, 0, 0)
	return r
}

// threadGroups and setThreadGroups use the raw system calls, which act on
// the calling thread alone (Go's syscall.Setgroups changes every thread).
func threadGroups() ([]uint32, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_GETGROUPS, 0, 0, 0)
	if e != 0 {
		return nil, e
	}
	gs := make([]uint32, n+1)
	n, _, e = syscall.RawSyscall(syscall.SYS_GETGROUPS, uintptr(len(gs)), uintptr(unsafe.Pointer(&gs[0])), 0)
	if e != 0 {
		return nil, e
	}
	return gs[:n], nil
}

func setThreadGroups(gs []uint32) error {
	var p unsafe.Pointer
	if len(gs) > 0 {
		p = unsafe.Pointer(&gs[0])
	}
	_, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(gs)), uintptr(p), 0)
	if e != 0 {
		return e
	}
	return nil
}
