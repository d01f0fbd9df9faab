package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/vmpool/vmpool/events"
)

// TestExternalNATSServer: a pool whose bus is a nats-server vmpool does
// not run. vmpool nats --print-config writes its configuration (the
// pool's identities and permissions, JetStream syncing every write);
// nats-server runs from that file; vmpool nats --init creates the stream
// and buckets there; a schedd run alone with its own credentials serves,
// and a user reaches it with theirs.
func TestExternalNATSServer(t *testing.T) {
	home := t.TempDir()
	me := currentUser()
	knobs := []string{"--set", "POOL_USERS=" + me, "--set", "POOL_DAEMONS=schedd-schedd"}
	userCreds := filepath.Join(home, "creds", events.CredentialsFile(events.RoleUser, me))
	run := func(url string, args ...string) (string, string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		c := &cli{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: func(k string) string {
			switch k {
			case "VMPOOL_URL":
				return url
			case "VMPOOL_CREDS":
				return userCreds
			}
			return ""
		}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		code := c.main(ctx, append([]string{"vmpool"}, args...))
		return out.String(), errb.String(), code
	}

	conf, errOut, code := run("", append([]string{"nats", "--home", home, "--print-config"}, knobs...)...)
	if code != 0 {
		t.Fatalf("vmpool nats --print-config: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(userCreds); err != nil { // root is a QUEUE_SUPER_USER: an admin
		userCreds = filepath.Join(home, "creds", events.CredentialsFile(events.RoleAdmin, me))
	}
	path := filepath.Join(t.TempDir(), "nats-server.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server does not read what --print-config wrote: %v\n%s", err, conf)
	}
	opts.Host, opts.Port, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	url := ns.ClientURL()

	if _, errOut, code := run(url, "q"); code == 0 || !strings.Contains(errOut, "vmpool") {
		t.Fatalf("q before the pool exists: exit %d: %s", code, errOut)
	}
	out, errOut, code := run(url, append([]string{"nats", "--home", home, "--init", "--pool", url}, knobs...)...)
	if code != 0 || !strings.Contains(out, "the pool's stream and buckets are ready at "+url) {
		t.Fatalf("vmpool nats --init: exit %d: %s%s", code, out, errOut)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		c := &cli{stdout: &syncBuffer{}, stderr: &syncBuffer{}, stdin: strings.NewReader(""), getenv: func(string) string { return "" }}
		done <- c.main(ctx, []string{"vmpool", "schedd", "--home", home, "--pool", url})
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, code = run(url, "q", "-totals")
		if code == 0 {
			break
		}
		select {
		case c := <-done:
			t.Fatalf("the schedd exited %d", c)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("q through the external server: exit %d: %s%s", code, out, errOut)
		}
		time.Sleep(200 * time.Millisecond) // the schedd is starting
	}
	if !strings.Contains(out, "0 jobs; 0 completed, 0 removed, 0 idle, 0 running, 0 held, 0 suspended") {
		t.Fatalf("q -totals: %q", out)
	}
}
