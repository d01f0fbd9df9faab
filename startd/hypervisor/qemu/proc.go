package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// procAlive tells whether pid names a live process: false when it does not
// exist or is a zombie (exited, not yet reaped by its parent).
func procAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(statPath(pid))
	if err != nil {
		return false
	}
	f := statFields(b)
	if len(f) == 0 || len(f[0]) == 0 {
		return false
	}
	return f[0][0] != 'Z' && f[0][0] != 'X'
}

func statPath(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/stat" }

// statFields are the fields of a /proc/PID/stat after the command name,
// from the state (its 3rd field) on; nil if it has no command name. The
// name is in parentheses and may itself hold spaces and ") ", so they
// start after the last ')'.
func statFields(b []byte) [][]byte {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return bytes.Fields(b[i+1:])
}

// userHZ is the unit of the CPU times in /proc/PID/stat: the kernel's
// USER_HZ, 100 on every Linux ABI QEMU runs on here.
const userHZ = 100

// ProcCPU reads the CPU process pid has used so far (a QEMU the driver did
// not start, or any process a tool watches), in user and kernel mode, from
// /proc/PID/stat (utime and stime, its 14th and 15th fields); ok is false
// when the process or its numbers cannot be read.
func ProcCPU(pid int) (user, sys time.Duration, ok bool) {
	if pid <= 0 {
		return 0, 0, false
	}
	b, err := os.ReadFile(statPath(pid))
	if err != nil {
		return 0, 0, false
	}
	return statCPU(b)
}

// statCPU reads utime and stime from the text of a /proc/PID/stat.
func statCPU(b []byte) (user, sys time.Duration, ok bool) {
	f := statFields(b)
	if len(f) < 13 {
		return 0, 0, false
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 63)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 63)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	tick := time.Second / userHZ
	return time.Duration(ut) * tick, time.Duration(st) * tick, true
}

// reapIfChild collects the exit status of pid when it is an exited child
// of this process (a VM started by another Driver in this process and then
// detached). pending is true while pid is our child but cannot be reaped
// yet: a multi-threaded process shows as a zombie while its other threads
// are still exiting.
func reapIfChild(pid int) (pending bool) {
	var ws syscall.WaitStatus
	wpid, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	return err == nil && wpid == 0
}

// processGone reports whether pid has ended and, if it was a child of
// this process, been collected (a VM started here and then detached stays
// a zombie until it is).
func processGone(pid int) bool { return !procAlive(pid) && !reapIfChild(pid) }

// cmdlineHas reports whether the command line of pid contains arg, which
// guards Reattach against a recycled pid.
func cmdlineHas(pid int, arg string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte(arg))
}

// killGroup sends SIGKILL to QEMU's process group (QEMU leads it: it was
// started with Setpgid), or to the process alone if it leads none.
func killGroup(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("kill qemu: no pid")
	}
	target := pid
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		target = -pid
	}
	if err := syscall.Kill(target, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill qemu %d: %w", pid, err)
	}
	return nil
}
