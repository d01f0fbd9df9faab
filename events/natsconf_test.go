package events

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// TestServerConfigAdmitsAsStartNATSDoes: the configuration written for an
// external nats-server, read by nats-server's own parser, gives the same
// users and permissions as vmpool's embedded server and syncs every
// write; a server started from it lets a user request the schedd as
// themself and refuses their publishing a startd's events.
func TestServerConfigAdmitsAsStartNATSDoes(t *testing.T) {
	var creds []Credentials
	for _, id := range [][2]string{{RolePool, "vmpool"}, {RoleUser, "alice"}, {RoleAdmin, "root"}, {RoleSchedd, "submit1"}, {RoleNegotiator, "n1"}, {RoleStartd, "exec01"}} {
		c, err := NewCredentials(id[0], id[1])
		if err != nil {
			t.Fatal(err)
		}
		creds = append(creds, c)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "nats-server.conf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteServerConfig(f, creds, filepath.Join(dir, "store")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("nats-server does not read the configuration: %v\n%s", err, b)
	}
	if !opts.JetStream || !opts.SyncAlways || opts.StoreDir != filepath.Join(dir, "store") {
		t.Fatalf("jetstream %v, sync always %v, store %q", opts.JetStream, opts.SyncAlways, opts.StoreDir)
	}
	want, err := ServerUsers(creds)
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Nkeys) != len(want) {
		t.Fatalf("%d nkey users in the configuration, want %d", len(opts.Nkeys), len(want))
	}
	for i, w := range want {
		got := opts.Nkeys[i]
		// The server gives a response permission without an expiry its
		// default one; the file spells it out.
		if w.Permissions != nil && w.Permissions.Response != nil && w.Permissions.Response.Expires == 0 {
			w.Permissions.Response.Expires = server.DEFAULT_ALLOW_RESPONSE_EXPIRATION
			if got.Permissions != nil && got.Permissions.Response != nil && got.Permissions.Response.Expires == 0 {
				got.Permissions.Response.Expires = server.DEFAULT_ALLOW_RESPONSE_EXPIRATION
			}
		}
		if got.Nkey != w.Nkey || !reflect.DeepEqual(got.Permissions, w.Permissions) {
			t.Errorf("user %d (%s %s): configuration gives %+v, embedded server %+v", i, creds[i].Role, creds[i].Name, got.Permissions, w.Permissions)
		}
	}

	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server refuses the configuration: %v", err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	o, err := creds[1].Options()
	if err != nil {
		t.Fatal(err)
	}
	denied := make(chan string, 4)
	o = append(o, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if strings.Contains(err.Error(), "Permissions Violation") {
			denied <- err.Error()
		}
	}))
	nc, err := nats.Connect(ns.ClientURL(), o...)
	if err != nil {
		t.Fatalf("alice connects: %v", err)
	}
	defer nc.Close()
	if err := nc.Publish(UserCmdSubject("submit1", "query", "alice"), nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("vmpool.ev.startd.exec01.job.submit1.1.0.VMExited", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	select {
	case msg := <-denied:
		if !strings.Contains(msg, "vmpool.ev.startd.exec01") {
			t.Fatalf("refused %q, want the forged startd event", msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("alice published a startd's event")
	}
	select {
	case msg := <-denied:
		t.Fatalf("a second refusal: %q", msg)
	default:
	}

	// A long streamed reply under the schedd's and the user's own
	// permissions: the schedd may listen for alice's answers to its chunks,
	// and alice may answer (a refused answer stalls the reply).
	old := CreditTimeout
	CreditTimeout = 3 * time.Second
	defer func() { CreditTimeout = old }()
	so, err := creds[3].Options()
	if err != nil {
		t.Fatal(err)
	}
	snc, err := nats.Connect(ns.ClientURL(), so...)
	if err != nil {
		t.Fatalf("the schedd connects: %v", err)
	}
	defer snc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := NewServer(snc, nil, 4)
	defer srv.Close()
	const chunks = 5 * streamWindow
	if err := srv.HandleUser(ctx, CmdSubject(RoleSchedd, "submit1", "query"), func(context.Context, string, []byte) (any, error) {
		return Chunks(func(emit func(any) error) error {
			for i := range chunks {
				if err := emit(i); err != nil {
					return err
				}
			}
			return nil
		}), nil
	}); err != nil {
		t.Fatal(err)
	}
	snc.Flush()
	got := 0
	if err := CallStream(ctx, nc, UserCmdSubject("submit1", "query", "alice"), nil, func(json.RawMessage) error {
		got++
		return nil
	}); err != nil || got != chunks {
		t.Fatalf("alice took %d of %d chunks: %v", got, chunks, err)
	}
	select {
	case msg := <-denied:
		t.Fatalf("refused during the streamed reply: %q", msg)
	default:
	}
}

// TestCountedReportsEveryByte: what PutFile and GetFile read through
// counted reaches the context's progress function, up to the last byte;
// without one the reader is left as it is.
func TestCountedReportsEveryByte(t *testing.T) {
	const size = 3<<20 + 17
	var last, calls int64
	ctx := withProgress(context.Background(), func(done int64) {
		if done < last {
			t.Errorf("progress went back from %d to %d", last, done)
		}
		last, calls = done, calls+1
	})
	n, err := io.Copy(io.Discard, counted(ctx, bytes.NewReader(make([]byte, size))))
	if err != nil || n != size || last != size || calls == 0 {
		t.Fatalf("copied %d (%v); progress saw %d in %d calls, want %d", n, err, last, calls, size)
	}
	r := bytes.NewReader(nil)
	if counted(context.Background(), r) != io.Reader(r) {
		t.Fatal("a context without progress wraps the reader")
	}
}

// TestNameCheckersMatchTheirPatterns: the hand-written name checks accept
// exactly what ^[A-Za-z0-9_@-]{1,128}$ and ^[A-Za-z0-9_-]{1,64}$ accept.
func TestNameCheckersMatchTheirPatterns(t *testing.T) {
	token := regexp.MustCompile(`^[A-Za-z0-9_@-]{1,128}$`)
	daemon := regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	cases := []string{"", "a", "startd1", "slot1@startd1", "a.b", "a b", "ä", "-_-", "@", "A-Z_09",
		strings.Repeat("x", 64), strings.Repeat("x", 65), strings.Repeat("y", 128), strings.Repeat("y", 129), "x\n", "\x00"}
	for c := 0; c < 256; c++ {
		cases = append(cases, "a"+string(rune(c)), string([]byte{byte(c)}))
	}
	for _, s := range cases {
		if validToken(s) != token.MatchString(s) || validDaemon(s) != daemon.MatchString(s) {
			t.Errorf("%q: token %v (want %v), daemon %v (want %v)", s, validToken(s), token.MatchString(s), validDaemon(s), daemon.MatchString(s))
		}
	}
}
