package negotiator

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/events"
)

// failingKV is the real leader bucket with its next fail calls failing as
// a busy server's do (no answer in time).
type failingKV struct {
	jetstream.KeyValue
	fail  int
	calls int // Update, Create and Get calls
}

func (f *failingKV) failing() bool {
	f.calls++
	if f.fail > 0 {
		f.fail--
		return true
	}
	return false
}

func (f *failingKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if f.failing() {
		return 0, nats.ErrTimeout
	}
	return f.KeyValue.Update(ctx, key, value, rev)
}

func (f *failingKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if f.failing() {
		return 0, nats.ErrTimeout
	}
	return f.KeyValue.Create(ctx, key, value, opts...)
}

func (f *failingKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if f.failing() {
		return nil, nats.ErrTimeout
	}
	return f.KeyValue.Get(ctx, key)
}

// TestLeaseSurvivesASlowServer: a renewal that times out keeps the lease
// while it is young; a negotiator whose own name is in the key takes it
// back at once; one whose key another negotiator took stands by.
func TestLeaseSurvivesASlowServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := events.StartNATS(events.NATSConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	nc, js, err := events.Connect(ctx, s.URL(), events.ConnectOptions{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := events.OpenBus(ctx, nc, js, events.BusConfig{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, events.LeaderBucket)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	fa := &failingKV{KeyValue: kv}
	a := &lease{kv: fa, name: "neg-a", grace: 5 * time.Second}
	b := &lease{kv: kv, name: "neg-b", grace: 5 * time.Second}
	now := time.Now()
	if !a.step(ctx, false, now, log) {
		t.Fatal("a did not take a free lease")
	}
	if b.step(ctx, false, now, log) {
		t.Fatal("b took the lease a holds")
	}
	// One renewal without an answer: a still leads, and renews after.
	fa.fail, fa.calls = 1, 0
	if !a.step(ctx, true, now.Add(2*time.Second), log) || fa.calls != 1 {
		t.Fatalf("a timed-out renewal of a young lease gave it up (%d calls, want the renewal alone)", fa.calls)
	}
	if !a.step(ctx, true, now.Add(4*time.Second), log) || fa.fail != 0 {
		t.Fatal("a did not renew after the failure")
	}
	// Renewals without an answer for longer than grace: a stands by.
	fa.fail = 2 // the renewal, then the take
	if a.step(ctx, true, now.Add(10*time.Second), log) || fa.fail != 0 {
		t.Fatal("a lease unrenewed for longer than grace still leads")
	}
	// Standing by, a finds its own name in the key and takes it back.
	if !a.step(ctx, false, now.Add(11*time.Second), log) {
		t.Fatal("a did not take back its own lease")
	}
	// A renewal whose answer was lost moved the key on: a's revision is
	// stale, and it takes its key back rather than wait for it to expire.
	if _, err := kv.Put(ctx, leaderKey, []byte("neg-a")); err != nil {
		t.Fatal(err)
	}
	if !a.step(ctx, true, now.Add(12*time.Second), log) {
		t.Fatal("a stale revision of a's own lease made it stand by")
	}
	if !a.step(ctx, true, now.Add(13*time.Second), log) {
		t.Fatal("a did not renew its lease taken back")
	}
	// Another negotiator holds the key now: a stands by, b does not
	// take it from its holder either.
	if _, err := kv.Put(ctx, leaderKey, []byte("neg-c")); err != nil {
		t.Fatal(err)
	}
	if a.step(ctx, true, now.Add(14*time.Second), log) || b.step(ctx, false, now.Add(14*time.Second), log) {
		t.Fatal("a lease another negotiator holds was taken")
	}
}
