package schedd

import (
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestAsUserWritesWithTheOwnersRights: a root schedd writes users' files
// with their rights, so a path a user points at a root-only file (or a
// directory swapped for a symbolic link to one) is refused by the kernel,
// and root's own identity is back on every thread afterwards.
func TestAsUserWritesWithTheOwnersRights(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a schedd that is not root writes everything as itself")
	}
	nobody, err := user.Lookup(NobodyUser)
	if err != nil {
		t.Fatalf("no %s account: %v", NobodyUser, err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} { // t.TempDir makes them 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rootDir := filepath.Join(base, "root-only")
	os.Mkdir(rootDir, 0o755)
	secret := filepath.Join(rootDir, "secret")
	os.WriteFile(secret, []byte("root's"), 0o644)
	userDir := filepath.Join(base, "iwd")
	os.Mkdir(userDir, 0o755)
	if err := os.Chown(userDir, uid, gid); err != nil {
		t.Fatal(err)
	}
	swapped := filepath.Join(userDir, "swapped")
	if err := os.Symlink(rootDir, swapped); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, path string }{
		{"a root-only file", secret},
		{"through a symbolic link the user made", filepath.Join(swapped, "secret")},
		{"a new file in a root-only directory", filepath.Join(swapped, "new")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := asUser(NobodyUser, func() error { return os.WriteFile(tc.path, []byte("the user's"), 0o644) })
			if !errors.Is(err, fs.ErrPermission) {
				t.Fatalf("writing %s as %s: %v, want permission denied", tc.path, NobodyUser, err)
			}
		})
	}
	if b, _ := os.ReadFile(secret); string(b) != "root's" {
		t.Fatalf("the root-only file now holds %q", b)
	}
	if _, err := os.Stat(filepath.Join(rootDir, "new")); err == nil {
		t.Fatal("a file was created in the root-only directory")
	}

	mine := filepath.Join(userDir, "hello.img")
	if err := asUser(NobodyUser, func() error { return os.WriteFile(mine, []byte("disk"), 0o644) }); err != nil {
		t.Fatalf("writing into the user's own directory: %v", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(mine, &st); err != nil || int(st.Uid) != uid {
		t.Fatalf("the file belongs to uid %d (%v), want the user's %d", st.Uid, err, uid)
	}
	// An owner without an account here writes as nobody.
	if err := asUser("no-such-user-here", func() error { return os.WriteFile(secret, nil, 0o644) }); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("an unknown owner wrote a root-only file: %v", err)
	}

	// Every thread of the process is root again.
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Uid:") || strings.HasPrefix(line, "Gid:") {
				f := strings.Fields(line)
				if len(f) == 5 && f[4] != "0" {
					t.Errorf("%s: %s (the fs id is not root's)", p, line)
				}
			}
		}
	}
	if err := os.WriteFile(secret, []byte("root's"), 0o644); err != nil {
		t.Fatalf("root can no longer write: %v", err)
	}
}
