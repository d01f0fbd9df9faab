package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSConfig configures the embedded NATS server that `vmpool up` runs.
type NATSConfig struct {
	Listen   string // host:port; port 0 or -1 picks a free one
	StoreDir string // JetStream storage
	Logger   *slog.Logger
	// NoSync trades durability for speed: JetStream then acknowledges before
	// fsync (its default). vmpool syncs always unless this is set, because
	// an acknowledged event must survive a power loss.
	NoSync bool
	// Credentials, when any, are the only identities the server lets in,
	// each with its role's permissions (see Credentials.Permissions).
	Credentials []Credentials
	// DaemonConsumers are the durable consumers (DaemonConsumer) of the
	// daemons that run under the pool identity, which users may not touch
	// (nor those of the daemons of Credentials; see ServerUsers).
	DaemonConsumers []string
	// Cluster, when set, makes the server one of a JetStream cluster.
	Cluster *ClusterConfig
	// TLS, when it names a certificate, makes clients connect with TLS.
	TLS *TLSFiles
}

// TLSFiles are the PEM files of TLS on the bus. On a server: Cert and
// Key are its certificate, and with Verify every client must present a
// certificate signed by CA. On a client: CA is what it trusts the server's
// certificate by, and Cert and Key its own certificate, if the server
// asks for one.
type TLSFiles struct {
	Cert, Key, CA string
	Verify        bool
}

// ClusterConfig joins the server to a NATS cluster: every server of a
// JetStream cluster listens for routes and names the others' route URLs.
type ClusterConfig struct {
	Name       string   // the cluster's name, the same on every server
	ServerName string   // this server's name, unique in the cluster
	Listen     string   // host:port for routes from the other servers
	Routes     []string // the other servers' route URLs, nats://host:port
	// User and Password, when set, authenticate the route connections
	// (every server of the cluster uses the same).
	User, Password string
}

// NATSServer is a running embedded NATS server with JetStream.
type NATSServer struct {
	*server.Server
	tls  bool     // clients must use TLS
	lock *os.File // holds the store's lock (lockStore) until Stop
}

// storeLock is the file in a server's store directory that a running
// server holds an exclusive flock on.
const storeLock = "vmpool-nats.lock"

// lockStore takes the store directory for this process alone. The NATS
// server does not lock its store: a second server started on the same
// home (a second vmpool up) rewrote the running one's index files, and
// the running one then lost messages.
func lockStore(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded nats: create its store %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, storeLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: lock its store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("embedded nats: its store %s is in use by another process (a vmpool up or vmpool nats on this home is running): stop that one, or give this one a home of its own (--home)", dir)
		}
		return nil, fmt.Errorf("embedded nats: lock its store %s: %w", dir, err)
	}
	return f, nil
}

// StartNATS starts an embedded NATS server with JetStream, fsyncing every
// write (sync_interval: always), and returns once it accepts connections.
func StartNATS(cfg NATSConfig) (*NATSServer, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen address %q: %w (want host:port, e.g. 127.0.0.1:4222)", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = -1
	}
	opts := &server.Options{
		ServerName:             "vmpool",
		Host:                   host,
		Port:                   port,
		JetStream:              true,
		StoreDir:               cfg.StoreDir,
		NoSigs:                 true,
		MaxPayload:             MaxEventSize,
		SyncAlways:             !cfg.NoSync,
		DisableJetStreamBanner: true,
	}
	if c := cfg.Cluster; c != nil {
		ch, cp, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: cluster listen address %q: %w", c.Listen, err)
		}
		n, err := strconv.Atoi(cp)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: cluster listen port %q: %w", cp, err)
		}
		if c.Name == "" || c.ServerName == "" {
			return nil, fmt.Errorf("embedded nats: a cluster needs a cluster name and a server name")
		}
		opts.ServerName = c.ServerName
		opts.Cluster = server.ClusterOpts{Name: c.Name, Host: ch, Port: n, Username: c.User, Password: c.Password}
		routes := strings.Join(c.Routes, ",")
		if c.User != "" {
			var withAuth []string
			for _, r := range c.Routes {
				withAuth = append(withAuth, strings.Replace(r, "nats://", "nats://"+c.User+":"+c.Password+"@", 1))
			}
			routes = strings.Join(withAuth, ",")
		}
		opts.Routes = server.RoutesFromStr(routes)
	}
	if t := cfg.TLS; t != nil && t.Cert != "" {
		if t.Key == "" {
			return nil, fmt.Errorf("embedded nats: TLS certificate %s without its key (NATS_TLS_KEY)", t.Cert)
		}
		if t.Verify && t.CA == "" {
			return nil, fmt.Errorf("embedded nats: verifying client certificates needs the CA that signs them (NATS_TLS_CA)")
		}
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: t.Cert, KeyFile: t.Key, CaFile: t.CA, Verify: t.Verify})
		if err != nil {
			return nil, fmt.Errorf("embedded nats: TLS: %w", err)
		}
		opts.TLSConfig, opts.TLS, opts.TLSVerify, opts.TLSTimeout = tc, true, t.Verify, 5
	}
	if len(cfg.Credentials) > 0 {
		users, err := ServerUsers(cfg.Credentials, cfg.DaemonConsumers...)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
		opts.Nkeys = users
	}
	lock, err := lockStore(cfg.StoreDir)
	if err != nil {
		return nil, err
	}
	// A port another process listens on is said at once (the server
	// would only log it, and not become ready).
	if port > 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, portStr))
		if err != nil {
			lock.Close()
			return nil, fmt.Errorf("embedded nats: cannot listen on %s: %w (is another vmpool or NATS server using the port? pick another with --listen, or 127.0.0.1:0 for any)", cfg.Listen, err)
		}
		ln.Close()
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if cfg.Logger != nil {
		ns.SetLoggerV2(natsLogger{cfg.Logger.With("daemon", "nats")}, false, false, false)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		lock.Close()
		return nil, fmt.Errorf("embedded nats on %s: not ready after 10s (is the port in use? try --listen 127.0.0.1:0)", cfg.Listen)
	}
	return &NATSServer{Server: ns, tls: opts.TLSConfig != nil, lock: lock}, nil
}

// URL is the client URL of the server (tls:// when it requires TLS).
func (s *NATSServer) URL() string {
	u := s.ClientURL()
	if s.tls {
		u = strings.Replace(u, "nats://", "tls://", 1)
	}
	return u
}

// WaitJetStream waits until the server's JetStream can take requests:
// at once for a lone server; in a cluster, once the server knows the
// cluster's meta leader (a majority of its servers are up and routed)
// and has caught up with it. A request sent before that goes unanswered
// until its caller gives up. It returns ctx's error if ctx ends first.
// A server restarted on its store may say it is current before it has
// heard from the others (nats-server 2.15 does); what is asked of it then
// may go unanswered too, which OpenBus's tries bound (askAgain).
func (s *NATSServer) WaitJetStream(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !s.JetStreamIsCurrent() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Stop shuts the server down, waits for it, and lets its store go.
func (s *NATSServer) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
	if s.lock != nil {
		s.lock.Close()
	}
}

type natsLogger struct{ l *slog.Logger }

// Noticef logs the server's notices at debug level, except a slow
// consumer: the server cut a client off and dropped what it had queued
// for it, which an operator must see.
func (n natsLogger) Noticef(f string, v ...any) {
	msg := fmt.Sprintf(f, v...)
	if strings.Contains(msg, "Slow Consumer") {
		n.l.Warn(msg)
		return
	}
	n.l.Debug(msg)
}
func (n natsLogger) Warnf(f string, v ...any)  { n.l.Warn(fmt.Sprintf(f, v...)) }
func (n natsLogger) Fatalf(f string, v ...any) { n.l.Error(fmt.Sprintf(f, v...)) }
func (n natsLogger) Errorf(f string, v ...any) { n.l.Error(fmt.Sprintf(f, v...)) }
func (n natsLogger) Debugf(f string, v ...any) { n.l.Debug(fmt.Sprintf(f, v...)) }
func (n natsLogger) Tracef(f string, v ...any) { n.l.Debug(fmt.Sprintf(f, v...)) }
