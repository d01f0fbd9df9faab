package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the pool's JetStream assets.
const (
	// StreamName holds every daemon event (subjects vmpool.ev.>).
	StreamName = "VMPOOL"
	// CollectorBucket is the collector: one key per daemon ad (a slot's
	// machine ad, a schedd's ad), expiring when the daemon stops refreshing
	// it. Keys: "slot.<startd>.<slotN>", "schedd.<name>", "negotiator.<name>".
	CollectorBucket = "vmpool_collector"
	// LeaderBucket holds leases: one key per role whose daemons elect a
	// single active one (the negotiator). Keys expire when not renewed.
	LeaderBucket = "vmpool_leader"
	// FilesBucket prefixes the object store buckets of input disks,
	// returned disks and checkpoints, content-addressed by SHA-256: one
	// bucket per user (UserBucket), so that users read only their own.
	FilesBucket = "vmpool_files"
)

// BusConfig sizes the pool's JetStream assets.
type BusConfig struct {
	Replicas int           // 1 on one machine, 3 on a cluster (default 1)
	AdTTL    time.Duration // a daemon ad not refreshed for this long disappears (default 60s)
	// DuplicateWindow is how long JetStream remembers message ids to drop
	// republished events (default 10m). Consumers' windows cover longer.
	DuplicateWindow time.Duration
	MaxAge          time.Duration // how long events stay on the bus (default 7 days)
	// Users get their file buckets created now (on a pool with
	// credentials, users may not create buckets themselves).
	Users []string
	// LeaseTTL is how long a leader's lease lasts unrenewed (default 10s).
	LeaseTTL time.Duration
}

// Bus is a daemon's view of the pool's JetStream: the event stream, the
// collector bucket of daemon ads and the file store.
type Bus struct {
	NC        *nats.Conn
	JS        jetstream.JetStream
	Collector jetstream.KeyValue
	// Logger receives the warnings of file transfers being retried; nil
	// discards them.
	Logger *slog.Logger
	// FileRetry is how long GetFile and PutFile retry a transfer that
	// failed for a passing reason (0: DefaultFileRetry; negative: never).
	FileRetry time.Duration

	replicas int
	// collector is the collector bucket's configuration, for PutAd to
	// create it again (nil: unknown, a user's bus).
	collector *jetstream.KeyValueConfig
	mu        sync.Mutex
	stores    map[string]jetstream.ObjectStore
}

// ConnectOptions configures Connect.
type ConnectOptions struct {
	Name   string // client name shown by the NATS server
	Logger *slog.Logger
	// Creds, Nkey, TLS settings join here when security lands.
	Options []nats.Option
	// Timeout bounds the first connection (default 5s); after it the
	// client reconnects forever.
	Timeout time.Duration
	// Credentials authenticate the connection (nil: none).
	Credentials *Credentials
	// OnPermissionError is told the subject of every publish or
	// subscription the server refused.
	OnPermissionError func(subject string)
	// PublishTimeout is how long an asynchronous publish waits for its
	// acknowledgement before it fails (default PublishAckTimeout).
	PublishTimeout time.Duration
	// TLS: the CA the server's certificate is trusted by, and a client
	// certificate (nil or empty: the system's roots, no certificate).
	TLS *TLSFiles
}

// PublishAckTimeout is how long an asynchronous publish waits for
// JetStream's acknowledgement before it counts as failed.
const PublishAckTimeout = 10 * time.Second

// ErrNoPool is returned by Connect when no NATS server answers at the URL.
var ErrNoPool = errors.New("no vmpool answers")

// ErrNotAuthorized is returned by Connect when the server refuses the
// credentials (or requires some).
var ErrNotAuthorized = errors.New("not authorized")

// ErrTLS is returned by Connect when the TLS handshake with the server
// fails: most often, a certificate the client does not trust.
var ErrTLS = errors.New("TLS handshake failed")

// Connect dials the pool's NATS server(s) (comma-separated URLs) and
// returns a JetStream handle. The connection reconnects forever.
func Connect(ctx context.Context, url string, opt ConnectOptions) (*nats.Conn, jetstream.JetStream, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	logger := opt.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{
		nats.Name(opt.Name),
		nats.Timeout(opt.Timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("reconnected to NATS", "url", c.ConnectedUrlRedacted())
		}),
	}
	if t := opt.TLS; t != nil {
		if t.CA != "" {
			opts = append(opts, nats.RootCAs(t.CA))
		}
		if t.Cert != "" {
			opts = append(opts, nats.ClientCert(t.Cert, t.Key))
		}
	}
	if opt.Credentials != nil {
		co, err := opt.Credentials.Options()
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, co...)
	}
	// Asynchronous errors go to the log (nats.go would print them on
	// stderr), and refused subjects to OnPermissionError.
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) && opt.OnPermissionError != nil {
			msg := err.Error()
			if i := strings.Index(msg, ` to "`); i >= 0 {
				subj := msg[i+5:]
				if j := strings.IndexByte(subj, '"'); j >= 0 {
					opt.OnPermissionError(subj[:j])
					return
				}
			}
			opt.OnPermissionError("")
			return
		}
		subject := ""
		if sub != nil {
			subject = sub.Subject
		}
		if errors.Is(err, nats.ErrSlowConsumer) {
			// A watch (an ordered consumer) notices the gap and resumes
			// after its last message.
			logger.Warn("NATS dropped messages of a subscription that fell behind", "subject", subject, "err", err)
			return
		}
		logger.Warn("NATS error", "subject", subject, "err", err)
	}))
	opts = append(opts, opt.Options...)
	nc, err := nats.Connect(url, opts...)
	if errors.Is(err, nats.ErrAuthorization) || err != nil && strings.Contains(err.Error(), "Authorization Violation") {
		return nil, nil, fmt.Errorf("connect to %s: the pool refused these credentials (%w): %w", url, ErrNotAuthorized, err)
	}
	if err != nil && (strings.Contains(err.Error(), "x509:") || strings.Contains(err.Error(), "tls:") || errors.Is(err, nats.ErrSecureConnRequired)) {
		return nil, nil, fmt.Errorf("connect to %s: %w: %w", url, ErrTLS, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w (%w)", url, ErrNoPool, err)
	}
	// Without a timeout an asynchronous publish whose acknowledgement is
	// lost (the stream's leader died with it in flight) waits forever, and
	// with it the outbox; with one, the outbox publishes it again (the
	// message id makes that harmless). The connection may carry many
	// daemons' outboxes (vmpool up, sim startds by the thousand): past
	// the pending cap every publish on it fails as stalled, the schedd's
	// and negotiator's too, and their outboxes back off for seconds.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(asyncMaxPending), jetstream.WithPublishAsyncTimeout(cmp.Or(opt.PublishTimeout, PublishAckTimeout)))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream on %s: %w", url, err)
	}
	return nc, js, nil
}

// streamMaxConsumers is the consumers the pool's streams take at once:
// far above what they hold (each daemon's, and one per reader or fetch
// while it runs), and explicit, since a NATS server (2.12 and later)
// otherwise allows 1,000 per stream.
const streamMaxConsumers = 1 << 20

// OpenBus creates (or updates) the stream and buckets if needed and opens
// them. Daemons call it at start; it is idempotent.
func OpenBus(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg BusConfig) (*Bus, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.AdTTL <= 0 {
		cfg.AdTTL = 60 * time.Second
	}
	if cfg.DuplicateWindow <= 0 {
		cfg.DuplicateWindow = 10 * time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 7 * 24 * time.Hour
	}
	scfg := jetstream.StreamConfig{
		Name:        StreamName,
		Description: "vmpool daemon events",
		Subjects:    []string{SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		MaxAge:      cfg.MaxAge,
		MaxMsgSize:  MaxEventSize,
		// The outboxes publish backlogs as atomic batches: one fsync
		// for many events (see batchMin).
		AllowAtomicPublish: true,
		MaxConsumers:       streamMaxConsumers,
	}
	createStream := func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, scfg)
		return err
	}
	err := askAgain(ctx, createStream)
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeMaximumConsumersLimit {
		// An account limited to fewer consumers (an external cluster's
		// admin set it): the account's limit applies.
		scfg.MaxConsumers = 0
		err = askAgain(ctx, createStream)
	}
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", StreamName, err)
	}
	kvc := collectorConfig(cfg)
	var kv jetstream.KeyValue
	if err := askAgain(ctx, func(ctx context.Context) (err error) {
		kv, err = openCollector(ctx, js, kvc)
		return err
	}); err != nil {
		return nil, err
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if err := askAgain(ctx, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: LeaderBucket, Description: "vmpool leader leases", TTL: cfg.LeaseTTL, History: 1,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
		})
		return err
	}); err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", LeaderBucket, err)
	}
	if err := askAgain(ctx, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateKeyValue(ctx, scheddsConfig(cfg.Replicas))
		return err
	}); err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", ScheddsBucket, err)
	}
	b := &Bus{NC: nc, JS: js, Collector: kv, replicas: cfg.Replicas, collector: &kvc}
	for _, u := range cfg.Users {
		if _, err := b.FileStore(ctx, UserBucket(u)); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// A JetStream cluster leaves some management requests unanswered: those
// sent before it has elected its meta leader (on servers that have just
// started), and, when several clients create the same stream at once,
// all but the first (nats-server 2.15 takes the others' equal proposals
// as answered already; three vmpool nats servers of a new cluster do
// just that). Each such request used to cost its caller's whole deadline
// (a vmpool nats waited 20 s, then tried again), so that a new cluster's
// stream and buckets took 40 to 105 s to be ready. askAgain bounds each
// try instead, to askFirst at first, doubling up to askMax: the requests
// are idempotent (create or update to the same configuration), so one
// asked again finds what the unanswered one, or another client, created.
const (
	askFirst = 250 * time.Millisecond
	askMax   = 8 * time.Second
)

// askAgain runs op, a JetStream management request, until it is answered
// (with success or an error) or ctx ends, each try bounded as described
// above. Without a deadline on ctx it tries once: a caller that set none
// relies on the client's default timeout to hear of a pool that never
// answers.
func askAgain(ctx context.Context, op func(context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		return op(ctx)
	}
	for try := askFirst; ; try = min(2*try, askMax) {
		tctx, cancel := context.WithTimeout(ctx, try)
		err := op(tctx)
		unanswered := err != nil && ctx.Err() == nil && errors.Is(tctx.Err(), context.DeadlineExceeded)
		cancel()
		if !unanswered {
			return err
		}
	}
}

// BindBus opens the pool's stream and buckets without creating or
// changing them: what a daemon or a user with restricted credentials
// does on a pool someone else set up. A daemon passes the pool's sizing
// (ads, its AdTTL and Replicas) so that PutAd can create the collector
// again should its NATS server lose it; a user passes nil.
func BindBus(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, ads *BusConfig) (*Bus, error) {
	if err := askAgain(ctx, func(ctx context.Context) error {
		_, err := js.Stream(ctx, StreamName)
		return err
	}); err != nil {
		return nil, fmt.Errorf("find stream %s: %w", StreamName, err)
	}
	b := &Bus{NC: nc, JS: js}
	if ads != nil {
		kvc := collectorConfig(*ads)
		b.collector = &kvc
	}
	kv, err := js.KeyValue(ctx, CollectorBucket)
	if err != nil {
		if b.collector == nil || !errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("find bucket %s: %w", CollectorBucket, err)
		}
		// Lost with a restart of its server (see collectorConfig).
		if kv, err = js.CreateKeyValue(ctx, *b.collector); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return nil, fmt.Errorf("create bucket %s again: %w", CollectorBucket, err)
		} else if err != nil {
			if kv, err = js.KeyValue(ctx, CollectorBucket); err != nil {
				return nil, fmt.Errorf("find bucket %s: %w", CollectorBucket, err)
			}
		}
	}
	b.Collector = kv
	return b, nil
}

// collectorConfig is the collector bucket: one ad per key, expiring
// AdTTL after its last put, kept in memory. Ads are soft state (every
// daemon puts its own again every UPDATE_INTERVAL), as in HTCondor's
// collector, so they need no fsync: with JetStream fsyncing every write
// (JETSTREAM_SYNC_ALWAYS), file-stored ads cost a disk flush each, and a
// pool of 10,000 startds refreshing 10 slot ads every 10 s asks for more
// flushes than a disk does. A server that restarts alone loses the
// bucket (a cluster's memory buckets live on in their peers): the
// daemons' next PutAd creates it again.
func collectorConfig(cfg BusConfig) jetstream.KeyValueConfig {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.AdTTL <= 0 {
		cfg.AdTTL = 60 * time.Second
	}
	return jetstream.KeyValueConfig{
		Bucket:      CollectorBucket,
		Description: "vmpool daemon ads (the collector)",
		TTL:         cfg.AdTTL,
		History:     1,
		Storage:     jetstream.MemoryStorage,
		Replicas:    cfg.Replicas,
	}
}

// asyncMaxPending is how many asynchronous publishes a connection may
// have awaiting their acknowledgement. It counts messages, not bytes,
// and bounds no transfer: the outboxes' events are small, and many
// (thousands of sim startds' outboxes on vmpool up's one connection: at
// 1,024 every publish stalled, 16b665d); a file's chunks (128 KiB each,
// 65,536 of them 8 GiB) go through the same publisher, but each put keeps
// at most putWindow bytes of them in flight (4 MiB, 32 chunks), which is
// what keeps them within the server's queue of a stream's incoming
// messages.
const asyncMaxPending = 1 << 16

// openCollector creates or updates the collector bucket. A collector
// stored in files (vmpool before it kept ads in memory) cannot be turned
// into a memory one: it is deleted and created anew, losing nothing that
// the daemons do not put again within UPDATE_INTERVAL.
func openCollector(ctx context.Context, js jetstream.JetStream, kvc jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, kvc)
	if err == nil {
		return kv, nil
	}
	old, oerr := js.KeyValue(ctx, kvc.Bucket)
	if oerr != nil {
		return nil, fmt.Errorf("create bucket %s: %w", kvc.Bucket, err)
	}
	st, serr := old.Status(ctx)
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if serr != nil || !ok || bs.StreamInfo().Config.Storage == kvc.Storage {
		return nil, fmt.Errorf("create bucket %s: %w", kvc.Bucket, err)
	}
	if derr := js.DeleteKeyValue(ctx, kvc.Bucket); derr != nil && !errors.Is(derr, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("replace bucket %s (stored in %s) by one in %s: delete: %w", kvc.Bucket, bs.StreamInfo().Config.Storage, kvc.Storage, derr)
	}
	if kv, err = js.CreateOrUpdateKeyValue(ctx, kvc); err != nil {
		return nil, fmt.Errorf("replace bucket %s (stored in %s) by one in %s: %w", kvc.Bucket, bs.StreamInfo().Config.Storage, kvc.Storage, err)
	}
	return kv, nil
}

// PutAd puts a daemon's ad in the collector. Should the collector be
// gone (its NATS server restarted alone, see collectorConfig), it
// creates it again, when the bus knows its configuration, and puts the
// ad there; recreated then tells the caller to put its other ads again.
func (b *Bus) PutAd(ctx context.Context, key string, val []byte) (recreated bool, err error) {
	_, err = b.Collector.Put(ctx, key, val)
	if err == nil || b.collector == nil || !collectorGone(err) {
		return false, err
	}
	if _, cerr := b.JS.CreateKeyValue(ctx, *b.collector); cerr != nil && !errors.Is(cerr, jetstream.ErrBucketExists) {
		return false, fmt.Errorf("%w (the collector bucket is gone, and creating it again failed: %v)", err, cerr)
	}
	if b.Logger != nil {
		b.Logger.Warn("the collector bucket was gone (its NATS server restarted?); created it again", "bucket", CollectorBucket)
	}
	if _, err = b.Collector.Put(ctx, key, val); err != nil {
		return false, err
	}
	return true, nil
}

// collectorGone reports whether a put failed because no stream holds the
// collector's subjects.
func collectorGone(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound)
}

// SlotKey is the collector key of a slot's machine ad.
func SlotKey(startd, slot string) string { return "slot." + startd + "." + slot }

// ScheddKey is the collector key of a schedd's ad.
func ScheddKey(name string) string { return "schedd." + name }

// NegotiatorKey is the collector key of a negotiator's ad.
func NegotiatorKey(name string) string { return "negotiator." + name }
