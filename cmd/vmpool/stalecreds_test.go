package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
)

// TestStaleCredentialsFileIsIgnored: vmpool up leaves the user's
// credentials in ~/.vmpool/creds/HOST_PORT.nk. A later pool without
// credentials on the same address (a test pool, a personal pool started
// with POOL_AUTH off) must not be refused for that file: the server
// answers "nkeys not supported", and the tools connect without it. A file
// named by VMPOOL_CREDS is the user's word and is not dropped.
func TestStaleCredentialsFileIsIgnored(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	s, _ := eventstest.Bus(t) // a pool's stream and buckets, no credentials
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cr, err := events.NewCredentials(events.RoleUser, "alice")
	if err != nil {
		t.Fatal(err)
	}
	stale := defaultCredsPath(s.URL())
	if err := os.MkdirAll(filepath.Dir(stale), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := cr.SaveAs(stale, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	run := func(env map[string]string) (string, int) {
		var out, errb bytes.Buffer
		c := &cli{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: func(k string) string { return env[k] }}
		code := c.main(ctx, []string{"vmpool", "status"})
		return out.String() + errb.String(), code
	}
	if out, code := run(map[string]string{"VMPOOL_URL": s.URL()}); code != 0 {
		t.Fatalf("status with a stale credentials file: exit %d\n%s", code, out)
	}
	if out, code := run(map[string]string{"VMPOOL_URL": s.URL(), "VMPOOL_CREDS": stale}); code == 0 || !strings.Contains(out, "nkeys") {
		t.Fatalf("status with VMPOOL_CREDS naming credentials the pool has no use for: exit %d\n%s", code, out)
	}
}
