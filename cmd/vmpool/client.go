package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

const defaultURL = "nats://127.0.0.1:4222"

// poolURL is where clients find the pool: -pool, then $VMPOOL_URL, then
// the default.
func (c *cli) poolURL(flag string) string {
	if flag != "" {
		if !strings.Contains(flag, "://") {
			flag = "nats://" + flag
		}
		return flag
	}
	if v := c.getenv("VMPOOL_URL"); v != "" {
		return v
	}
	return defaultURL
}

// client is a connection of a user tool to the pool.
type client struct {
	url  string
	user string // who the pool knows this client as
	nc   *nats.Conn
	js   jetstream.JetStream
	bus  *events.Bus

	mu     sync.Mutex
	denied map[string]chan struct{} // subject -> closed when the server refused it
	// calls: the calls in flight on each subject, cancelled at once if the
	// server refuses it (a goroutine per call watching denied cost each
	// call a goroutine and its wake-up).
	calls    map[string]map[uint64]context.CancelFunc
	lastCall uint64
}

// credentialsFor finds the credentials a client uses for the pool at url:
// $VMPOOL_CREDS, else the file vmpool up wrote for this user
// (~/.vmpool/creds/HOST_PORT.nk). None means an unauthenticated pool.
func (c *cli) credentialsFor(url string) (*events.Credentials, error) {
	if c.creds != nil {
		return c.creds, nil
	}
	path := c.getenv("VMPOOL_CREDS")
	explicit := path != ""
	if !explicit {
		if c.plain[url] {
			return nil, nil
		}
		path = defaultCredsPath(url)
		if path == "" {
			return nil, nil
		}
	}
	cr, err := events.LoadCredentials(path)
	if errors.Is(err, events.ErrNoCredentials) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("credentials (VMPOOL_CREDS): %w", err)
	}
	return &cr, nil
}

// defaultCredsPath is where vmpool up leaves a user's credentials for the
// pool at url.
func defaultCredsPath(url string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	hostport := hostPort(strings.SplitN(url, ",", 2)[0])
	return filepath.Join(home, ".vmpool", "creds", strings.NewReplacer(":", "_", "/", "_").Replace(hostport)+".nk")
}

// identity is the user name requests go out as: the credentials' name,
// else the OS user (on a pool without credentials).
func (c *cli) identity(url string) (string, error) {
	cr, err := c.credentialsFor(url)
	if err != nil {
		return "", err
	}
	if cr != nil {
		return cr.Name, nil
	}
	return currentUser(), nil
}

// dial connects to the pool; the error says plainly when nothing answers.
func (c *cli) dial(ctx context.Context, url string) (*client, error) {
	return c.connect(ctx, url, false)
}

// connect dials the pool; with follow the connection reconnects forever
// (a long-running tool outlives a restart of the pool), without it a lost
// connection is an error.
func (c *cli) connect(ctx context.Context, url string, follow bool) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cr, err := c.credentialsFor(url)
	if err != nil {
		return nil, err
	}
	cl := &client{url: url, user: currentUser(), denied: map[string]chan struct{}{}}
	if cr != nil {
		cl.user = cr.Name
	}
	opts := events.ConnectOptions{Name: "vmpool-cli", Timeout: 3 * time.Second, Credentials: cr, OnPermissionError: cl.refused}
	if ca := c.getenv("VMPOOL_TLS_CA"); ca != "" {
		opts.TLS = &events.TLSFiles{CA: ca}
	}
	if !follow {
		opts.Options = []nats.Option{nats.MaxReconnects(0)}
	}
	nc, js, err := events.Connect(ctx, url, opts)
	if err != nil && cr != nil && c.creds == nil && c.getenv("VMPOOL_CREDS") == "" && strings.Contains(err.Error(), "nkeys not supported") {
		// The file vmpool up leaves for this address was an earlier
		// pool's: this one has no credentials at all.
		if c.plain == nil {
			c.plain = map[string]bool{}
		}
		c.plain[url] = true
		opts.Credentials, cl.user = nil, currentUser()
		nc, js, err = events.Connect(ctx, url, opts)
	}
	if errors.Is(err, events.ErrTLS) {
		return nil, fmt.Errorf("the pool at %s speaks TLS with a certificate this client does not trust: %w (set VMPOOL_TLS_CA to the pool's CA certificate)", url, err)
	}
	if errors.Is(err, events.ErrNotAuthorized) {
		used := "no credentials file"
		switch {
		case c.creds != nil:
			used = "the credentials given"
		case c.getenv("VMPOOL_CREDS") != "":
			used = "VMPOOL_CREDS=" + c.getenv("VMPOOL_CREDS")
		case cr != nil:
			used = defaultCredsPath(url) + " (another pool's on this address, or replaced since?)"
		}
		return nil, fmt.Errorf("the pool at %s refuses you, with %s: %w (set VMPOOL_CREDS to the credentials file the pool's admin gave you)", url, used, err)
	}
	if err != nil {
		return nil, fmt.Errorf("no vmpool answers at %s (start one with 'vmpool up', or set VMPOOL_URL / -pool): %w", url, err)
	}
	bus, err := events.BindBus(ctx, nc, js, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("the NATS server at %s has no vmpool on it (is 'vmpool up' running there?): %w", url, err)
	}
	cl.nc, cl.js, cl.bus = nc, js, bus
	return cl, nil
}

// refused records a subject the server refused this client.
func (cl *client) refused(subject string) {
	ch := cl.deniedCh(subject)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
	for _, cancel := range cl.calls[subject] {
		cancel()
	}
}

// startCall registers a call on subject, to be cancelled if the server
// refuses it (at once if it has already); endCall forgets it.
func (cl *client) startCall(subject string, cancel context.CancelFunc) (denied chan struct{}, id uint64) {
	denied = cl.deniedCh(subject)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	select {
	case <-denied:
		cancel()
		return denied, 0
	default:
	}
	if cl.calls == nil {
		cl.calls = map[string]map[uint64]context.CancelFunc{}
	}
	if cl.calls[subject] == nil {
		cl.calls[subject] = map[uint64]context.CancelFunc{}
	}
	cl.lastCall++
	cl.calls[subject][cl.lastCall] = cancel
	return denied, cl.lastCall
}

func (cl *client) endCall(subject string, id uint64) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	delete(cl.calls[subject], id)
	if len(cl.calls[subject]) == 0 {
		delete(cl.calls, subject)
	}
}

func (cl *client) deniedCh(subject string) chan struct{} {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	ch, ok := cl.denied[subject]
	if !ok {
		ch = make(chan struct{})
		cl.denied[subject] = ch
	}
	return ch
}

// errPermission is what a user sees when the pool refuses a request.
type errPermission struct{ user, subject string }

func (e errPermission) Error() string {
	return fmt.Sprintf("permission denied: the pool does not let %s send %s", e.user, e.subject)
}

// callStream sends a request and reads its reply chunks; a request the
// server refuses fails at once with a permission error.
func (cl *client) callStream(ctx context.Context, subject string, req any, fn func(json.RawMessage) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	denied, id := cl.startCall(subject, cancel)
	defer cl.endCall(subject, id)
	err := events.CallStream(ctx, cl.nc, subject, req, fn)
	select {
	case <-denied:
		return errPermission{cl.user, subject}
	default:
		return err
	}
}

// call is callStream for a single reply.
func (cl *client) call(ctx context.Context, subject string, req, resp any) error {
	return cl.callStream(ctx, subject, req, func(data json.RawMessage) error {
		if resp == nil || len(data) == 0 {
			return nil
		}
		if err := json.Unmarshal(data, resp); err != nil {
			return fmt.Errorf("decode reply from %s: %w", subject, err)
		}
		return nil
	})
}

func (cl *client) close() { cl.nc.Close() }

// ads reads the collector entries whose keys start with prefix.
func (cl *client) ads(ctx context.Context, prefix string) ([]*classad.Ad, error) {
	lister, err := cl.bus.Collector.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the collector: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []*classad.Ad
	for _, k := range keys {
		ent, err := cl.bus.Collector.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s from the collector: %w", k, err)
		}
		var ad classad.Ad
		if err := json.Unmarshal(ent.Value(), &ad); err != nil {
			continue
		}
		out = append(out, &ad)
	}
	return out, nil
}

// schedd picks the schedd to talk to: -name, $VMPOOL_SCHEDD, or the
// pool's only schedd. Only means the only one the pool has ever had (its
// lasting list, events.ScheddsBucket), not just the only one advertised:
// a schedd stopped for longer than its ad's lifetime has left the
// collector but not the pool, and the job 1.0 a user means may be its,
// not that of the one still running.
func (c *cli) schedd(ctx context.Context, cl *client, name string) (string, error) {
	if name == "" {
		name = c.getenv("VMPOOL_SCHEDD")
	}
	if name != "" {
		if err := events.CheckName("schedd", name); err != nil {
			return "", err
		}
		return name, nil
	}
	ps, err := cl.poolSchedds(ctx)
	if err != nil {
		return "", err
	}
	switch len(ps) {
	case 0:
		return "", fmt.Errorf("no schedd is advertised at %s (is the pool's schedd running?)", cl.url)
	case 1:
		if !ps[0].advertised {
			return "", fmt.Errorf("no schedd is advertised at %s (is the pool's schedd %s running?)", cl.url, ps[0].name)
		}
		return ps[0].name, nil
	}
	var list []string
	gone := false
	for _, s := range ps {
		if s.advertised {
			list = append(list, s.name)
		} else {
			list = append(list, s.name+" (not running: its ad has expired)")
			gone = true
		}
	}
	if !gone {
		return "", fmt.Errorf("the pool has %d schedds (%s): choose one with -name NAME, or set VMPOOL_SCHEDD=NAME", len(ps), strings.Join(list, ", "))
	}
	return "", fmt.Errorf("the pool has had %d schedds (%s), whose jobs are numbered alike: choose one with -name NAME, or set VMPOOL_SCHEDD=NAME; "+
		"an admin drops a schedd gone for good from the pool's list with 'vmpool schedds -retire NAME'", len(ps), strings.Join(list, ", "))
}

// poolSchedd is a schedd of the pool: listed in the pool's list of
// schedds, advertised in the collector, or both.
type poolSchedd struct {
	name               string
	listed, advertised bool
}

// poolSchedds are the schedds the pool has had (its list) and those the
// collector has ads of, by name. A pool without the list (set up by an
// older vmpool on a NATS server it does not run) has those of the
// collector only.
func (cl *client) poolSchedds(ctx context.Context) ([]poolSchedd, error) {
	advertised, err := cl.scheddNames(ctx)
	if err != nil {
		return nil, err
	}
	// A server whose configuration predates the list refuses to tell of
	// it: the call ends as soon as it says so.
	info := "$JS.API.STREAM.INFO.KV_" + events.ScheddsBucket
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, id := cl.startCall(info, cancel)
	defer cl.endCall(info, id)
	listed, err := cl.bus.Schedds(lctx)
	if errors.Is(err, events.ErrNoScheddList) {
		listed, err = nil, nil
	}
	if err != nil {
		if cl.wasDenied(info) {
			return nil, fmt.Errorf("the pool's NATS server does not let %s read the pool's list of schedds (its configuration predates the list: regenerate it with 'vmpool nats --print-config'); meanwhile name the schedd with -name or VMPOOL_SCHEDD", cl.user)
		}
		return nil, fmt.Errorf("read the pool's list of schedds: %w (name the schedd with -name or VMPOOL_SCHEDD)", err)
	}
	in := map[string]*poolSchedd{}
	for _, n := range listed {
		in[n] = &poolSchedd{name: n, listed: true}
	}
	for _, n := range advertised {
		if s, ok := in[n]; ok {
			s.advertised = true
		} else {
			in[n] = &poolSchedd{name: n, advertised: true}
		}
	}
	out := make([]poolSchedd, 0, len(in))
	for _, s := range in {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// wasDenied reports whether the server has refused this client subject.
func (cl *client) wasDenied(subject string) bool {
	select {
	case <-cl.deniedCh(subject):
		return true
	default:
		return false
	}
}

// scheddNames are the names of the schedds the collector has ads of.
func (cl *client) scheddNames(ctx context.Context) ([]string, error) {
	ads, err := cl.ads(ctx, "schedd.")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, ad := range ads {
		if n, ok := ad.EvalString("Name"); ok {
			names = append(names, n)
		}
	}
	return names, nil
}

// currentUser is the submitting OS user (the jobs' Owner).
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "nobody"
}
