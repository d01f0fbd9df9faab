package events

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ScheddsBucket lists every schedd the pool has had: one key per schedd,
// its name, put by the schedd when it starts (and checked at each refresh
// of its ad) and kept until an admin retires it (RetireSchedd). Unlike the schedds' ads in the collector,
// which expire CLASSAD_LIFETIME after a schedd stops, it lasts: a tool
// given no schedd name picks the pool's only schedd only when the pool
// has never had another, so that a stopped schedd's jobs are not taken
// for those of the one left running (both number their jobs from 1.0).
const ScheddsBucket = "vmpool_schedds"

// scheddsConfig is the schedds bucket: no TTL, on disk, one value a key.
func scheddsConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      ScheddsBucket,
		Description: "vmpool: every schedd the pool has had (until retired)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	}
}

// ErrNoScheddList is returned by Schedds, RegisterSchedd and
// RetireSchedd when the pool has no schedds bucket: its stream and
// buckets were created by a vmpool before the bucket existed, on a NATS
// server it does not run (vmpool nats --init creates it; vmpool nats and
// vmpool up create it at start).
var ErrNoScheddList = errors.New("events: the pool keeps no list of its schedds (bucket " + ScheddsBucket + ")")

// scheddList binds the schedds bucket.
func (b *Bus) scheddList(ctx context.Context) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := askAgain(ctx, func(ctx context.Context) (err error) {
		kv, err = b.JS.KeyValue(ctx, ScheddsBucket)
		return err
	})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, ErrNoScheddList
	}
	if err != nil {
		return nil, fmt.Errorf("find bucket %s: %w", ScheddsBucket, err)
	}
	return kv, nil
}

// RegisterSchedd adds schedd name to the pool's list of schedds; a
// schedd calls it when it starts and whenever it refreshes its ad. A name
// already listed is left as it is (with the time it was first listed).
func (b *Bus) RegisterSchedd(ctx context.Context, name string) error {
	kv, err := b.scheddList(ctx)
	if err != nil {
		return err
	}
	_, err = kv.Create(ctx, name, []byte(time.Now().UTC().Format(time.RFC3339)))
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("list schedd %s in bucket %s: %w", name, ScheddsBucket, err)
	}
	return nil
}

// Schedds are the names of the schedds the pool has had and not retired,
// sorted.
func (b *Bus) Schedds(ctx context.Context) ([]string, error) {
	kv, err := b.scheddList(ctx)
	if err != nil {
		return nil, err
	}
	lister, err := kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read bucket %s: %w", ScheddsBucket, err)
	}
	var names []string
	for k := range lister.Keys() {
		names = append(names, k)
	}
	sort.Strings(names)
	return names, nil
}

// RetireSchedd drops schedd name from the pool's list of schedds: it is
// gone for good. Should it start again it lists itself again.
func (b *Bus) RetireSchedd(ctx context.Context, name string) error {
	kv, err := b.scheddList(ctx)
	if err != nil {
		return err
	}
	if err := kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("retire schedd %s from bucket %s: %w", name, ScheddsBucket, err)
	}
	return nil
}
