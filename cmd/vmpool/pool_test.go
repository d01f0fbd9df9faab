package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/events"
)

// The tests here run whole pools in the test process: a real embedded NATS
// server with JetStream, real Pebble logs in temp dirs, and real QEMU (TCG)
// booting guests that vmimage writes. They drive the pool through the CLI,
// in-process, the way a user would from a shell.

// testPool is a personal pool for one test.
type testPool struct {
	*personalPool
	t    *testing.T
	home string
	dir  string // a submit directory
	cfg  *Config
	logs *syncBuffer
	// envs are further environment variables of the test's CLI.
	envs map[string]string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestPool starts a pool with n startds and the given knob settings.
func newTestPool(t *testing.T, n int, knobs ...string) *testPool {
	t.Helper()
	home := t.TempDir()
	return startTestPool(t, home, n, knobs...)
}

func startTestPool(t *testing.T, home string, n int, knobs ...string) *testPool {
	t.Helper()
	traversable(t, home)
	cfg := NewConfig()
	cfg.Set("LOCAL_DIR", home, "test")
	cfg.Set("VM_STATUS_INTERVAL", "5", "test")
	cfg.Set("UPDATE_INTERVAL", "2", "test")
	cfg.Set("NEGOTIATOR_INTERVAL", "5", "test")
	for _, kv := range knobs {
		k, v, _ := strings.Cut(kv, "=")
		cfg.Set(k, v, "test")
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := startPool(ctx, cfg, "127.0.0.1:0", n, logger)
	if err != nil {
		t.Fatalf("start pool: %v", err)
	}
	tp := &testPool{personalPool: p, t: t, home: home, dir: t.TempDir(), cfg: cfg, logs: logs}
	testPools.Store(p.URL, home)
	t.Cleanup(func() {
		tp.stop()
		if t.Failed() {
			t.Logf("pool log:\n%s", logs.String())
		}
	})
	return tp
}

// traversable lets other accounts walk through dir and its test-made
// parents (t.TempDir makes them 0700): a root startd runs QEMU as nobody,
// which must reach its scratch directory under the pool's home.
func traversable(t testing.TB, dir string) {
	t.Helper()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
}

// stop stops the pool (idempotent).
func (tp *testPool) stop() {
	if tp.personalPool == nil {
		return
	}
	if err := tp.Stop(); err != nil {
		tp.t.Errorf("pool stopped with error: %v", err)
	}
	tp.personalPool = nil
}

// vmpool runs a CLI command against the pool (paths must be absolute).
func (tp *testPool) vmpool(args ...string) (stdout, stderr string, code int) {
	tp.t.Helper()
	var out, errb bytes.Buffer
	c := &cli{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: tp.env}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = c.main(ctx, append([]string{"vmpool"}, args...))
	return out.String(), errb.String(), code
}

// env is the environment of the test's CLI: the pool's URL and the
// test user's credentials.
func (tp *testPool) env(k string) string {
	if v, ok := tp.envs[k]; ok {
		return v
	}
	switch k {
	case "VMPOOL_URL":
		return tp.URL
	case "VMPOOL_CREDS":
		return userCredsFile(tp.home)
	}
	return ""
}

// testPools maps the URL of every test pool to its home, so that tools
// run against it find their credentials (testCreds).
var testPools sync.Map

// testCreds is the credentials file tools use against url: the test
// user's of the test pool there, else none (a bare NATS server).
func testCreds(url string) string {
	if home, ok := testPools.Load(url); ok {
		return userCredsFile(home.(string))
	}
	return ""
}

// userCredsFile is where a test pool keeps the credentials of the user
// running the tests (an administrator when root).
func userCredsFile(home string) string {
	paths, _ := filepath.Glob(filepath.Join(home, "creds", "*-"+currentUser()+".nk"))
	for _, p := range paths {
		if !strings.HasPrefix(filepath.Base(p), "pool-") {
			return p
		}
	}
	return ""
}

// mustRun runs a command that must succeed.
func (tp *testPool) mustRun(args ...string) string {
	tp.t.Helper()
	out, errOut, code := tp.vmpool(args...)
	if code != 0 {
		tp.t.Fatalf("vmpool %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// write writes a file into the submit directory.
func (tp *testPool) write(name, content string) string {
	tp.t.Helper()
	p := filepath.Join(tp.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tp.t.Fatal(err)
	}
	return p
}

// waitEvent blocks until an event on subject (a filter) satisfying match
// is in the pool's stream, and returns it. Events published before the
// call count: it reads the stream from the start.
func (tp *testPool) waitEvent(subject string, match func(events.Event) bool, timeout time.Duration) events.Event {
	tp.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cons, err := tp.Bus.JS.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		tp.t.Fatalf("watch %s: %v", subject, err)
	}
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(time.Until(deadline(ctx))))
		if err != nil {
			tp.t.Fatalf("no event on %s within %s: %v", subject, timeout, err)
		}
		e, err := events.Decode(m.Data())
		if err != nil {
			tp.t.Fatalf("undecodable event on %s: %v", subject, err)
		}
		if match == nil || match(e) {
			return e
		}
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// jobEvent waits for a schedd event of type typ about job c.p.
func (tp *testPool) jobEvent(c, p int, typ string, timeout time.Duration) events.Event {
	tp.t.Helper()
	return tp.waitEvent(fmt.Sprintf("vmpool.ev.schedd.schedd.job.schedd.%d.%d.%s", c, p, typ), nil, timeout)
}

// jsonAds parses `-json` output.
func jsonAds(t *testing.T, out string) []map[string]any {
	t.Helper()
	var ads []map[string]any
	if err := json.Unmarshal([]byte(out), &ads); err != nil {
		t.Fatalf("not a JSON array of ads: %v\n%s", err, out)
	}
	return ads
}

// vmpoolProcess starts `vmpool ARGS...` as a separate process (the test
// binary re-executed as the vmpool command) against the pool. The process
// is killed when the test ends.
func (tp *testPool) vmpoolProcess(logName string, args ...string) *exec.Cmd {
	tp.t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "VMPOOL_TEST_MAIN=1", "VMPOOL_URL="+tp.URL, "VMPOOL_CREDS="+userCredsFile(tp.home))
	logf, err := os.Create(filepath.Join(tp.t.TempDir(), logName))
	if err != nil {
		tp.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tp.t.Fatal(err)
	}
	tp.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
		logf.Close()
		if tp.t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			tp.t.Logf("%s log:\n%s", logName, b)
		}
	})
	return cmd
}

// TestSimVerifyInterval: sim startds check the bus every 30 s while they
// are few; thousands of them check less often, together about 33 times a
// second at most, and none less often than every 10 minutes.
func TestSimVerifyInterval(t *testing.T) {
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{1, 30 * time.Second}, {100, 30 * time.Second}, {1000, 300 * time.Second}, {2000, 600 * time.Second}, {10000, 10 * time.Minute}, {100000, 10 * time.Minute}} {
		if got := simVerifyInterval(c.n); got != c.want {
			t.Errorf("%d sim startds: each verifies every %v, want %v", c.n, got, c.want)
		}
		if rate := float64(c.n) / simVerifyInterval(c.n).Seconds(); c.n <= 20000 && rate > 34 {
			t.Errorf("%d sim startds verify %.0f times a second together", c.n, rate)
		}
	}
}
