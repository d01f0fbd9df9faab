package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"sort"
	"strings"
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
	url string
	nc  *nats.Conn
	js  jetstream.JetStream
	bus *events.Bus
}

// dial connects to the pool; the error says plainly when nothing answers.
func (c *cli) dial(ctx context.Context, url string) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, js, err := events.Connect(ctx, url, events.ConnectOptions{Name: "vmpool-cli", Timeout: 3 * time.Second,
		Options: []nats.Option{nats.MaxReconnects(0)}})
	if err != nil {
		return nil, fmt.Errorf("no vmpool answers at %s (start one with 'vmpool up', or set VMPOOL_URL / -pool): %w", url, err)
	}
	bus, err := openBusReadOnly(ctx, nc, js)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("the NATS server at %s has no vmpool on it (is 'vmpool up' running there?): %w", url, err)
	}
	return &client{url: url, nc: nc, js: js, bus: bus}, nil
}

// openBusReadOnly opens the pool's existing buckets without creating them.
func openBusReadOnly(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (*events.Bus, error) {
	kv, err := js.KeyValue(ctx, events.CollectorBucket)
	if err != nil {
		return nil, err
	}
	obj, err := js.ObjectStore(ctx, events.FilesBucket)
	if err != nil {
		return nil, err
	}
	return &events.Bus{NC: nc, JS: js, Collector: kv, Files: obj}, nil
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

// schedd picks the schedd to talk to: -name, $VMPOOL_SCHEDD, or the only
// one the collector knows.
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
	ads, err := cl.ads(ctx, "schedd.")
	if err != nil {
		return "", err
	}
	var names []string
	for _, ad := range ads {
		if n, ok := ad.EvalString("Name"); ok {
			names = append(names, n)
		}
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("no schedd is advertised at %s (is the pool's schedd running?)", cl.url)
	case 1:
		return names[0], nil
	}
	return "", fmt.Errorf("the pool has %d schedds (%s): choose one with -name", len(names), strings.Join(names, ", "))
}

// currentUser is the submitting OS user (the jobs' Owner).
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "nobody"
}
