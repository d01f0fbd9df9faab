package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// FilesBucket is the object store for input disks, returned disks and
	// checkpoints, content-addressed by SHA-256.
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
}

// Bus is a daemon's view of the pool's JetStream: the event stream, the
// collector bucket of daemon ads and the file store.
type Bus struct {
	NC        *nats.Conn
	JS        jetstream.JetStream
	Collector jetstream.KeyValue
	Files     jetstream.ObjectStore
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
}

// ErrNoPool is returned by Connect when no NATS server answers at the URL.
var ErrNoPool = errors.New("no vmpool answers")

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
	opts = append(opts, opt.Options...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w (%w)", url, ErrNoPool, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream on %s: %w", url, err)
	}
	return nc, js, nil
}

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
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "vmpool daemon events",
		Subjects:    []string{SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		MaxAge:      cfg.MaxAge,
		MaxMsgSize:  MaxEventSize,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", StreamName, err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      CollectorBucket,
		Description: "vmpool daemon ads (the collector)",
		TTL:         cfg.AdTTL,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", CollectorBucket, err)
	}
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      FilesBucket,
		Description: "vmpool disk images, returned disks and checkpoints",
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create object store %s: %w", FilesBucket, err)
	}
	return &Bus{NC: nc, JS: js, Collector: kv, Files: obj}, nil
}

// SlotKey is the collector key of a slot's machine ad.
func SlotKey(startd, slot string) string { return "slot." + startd + "." + slot }

// ScheddKey is the collector key of a schedd's ad.
func ScheddKey(name string) string { return "schedd." + name }

// NegotiatorKey is the collector key of a negotiator's ad.
func NegotiatorKey(name string) string { return "negotiator." + name }
