package events_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/events"
)

// TestSaveNewAgreesOnOneIdentity: processes creating the same identity at
// once (the servers of a cluster sharing CREDS_DIR) end up with one: the
// first written; the others are told it exists, and nothing else is left
// in the directory.
func TestSaveNewAgreesOnOneIdentity(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	var wg sync.WaitGroup
	seeds := make([]string, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		c, err := events.NewCredentials(events.RoleStartd, "node7")
		if err != nil {
			t.Fatal(err)
		}
		seeds[i] = string(c.Seed)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.SaveNew(dir, -1, -1)
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("saves %d and %d both succeeded", winner, i)
			}
			winner = i
		case !errors.Is(err, fs.ErrExist):
			t.Fatalf("save %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no save succeeded")
	}
	got, err := events.LoadCredentials(dir + "/" + events.CredentialsFile(events.RoleStartd, "node7"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Seed) != seeds[winner] || got.Role != events.RoleStartd || got.Name != "node7" {
		t.Fatalf("loaded %s/%s, want the winner's identity", got.Role, got.Name)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left in the directory: %v", entries)
	}
	if st, _ := os.Stat(dir + "/" + entries[0].Name()); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
}

// TestUsersCannotTouchDaemonConsumers: a user reads the event stream, but
// may not pull a schedd's or negotiator's events off its durable consumer
// (and acknowledge them: the daemon would never see another user's job
// start or end), delete it or change it; whether the daemon has
// credentials of its own, runs under the pool identity with the default
// name, or is named to the server (NATSConfig.DaemonConsumers).
func TestUsersCannotTouchDaemonConsumers(t *testing.T) {
	var creds []events.Credentials
	for _, id := range [][2]string{{events.RolePool, "vmpool"}, {events.RoleUser, "bob"}, {events.RoleSchedd, "s1"}} {
		c, err := events.NewCredentials(id[0], id[1])
		if err != nil {
			t.Fatal(err)
		}
		creds = append(creds, c)
	}
	up := events.DaemonConsumer(events.RoleSchedd, "up1")
	s, err := events.StartNATS(events.NATSConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Credentials: creds, DaemonConsumers: []string{up}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, js, err := events.Connect(ctx, s.URL(), events.ConnectOptions{Credentials: &creds[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := events.OpenBus(ctx, nc, js, events.BusConfig{Users: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	durables := []string{events.DaemonConsumer(events.RoleSchedd, "s1"), events.DaemonConsumer(events.RoleNegotiator, events.RoleNegotiator), up}
	for _, d := range durables {
		if _, err := js.CreateOrUpdateConsumer(ctx, events.StreamName, jetstream.ConsumerConfig{Durable: d, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "vmpool.ev.>"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, "vmpool.ev.startd.e1.job.s1.1.0.VMExited", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}

	refused := make(chan string, 64)
	bnc, bjs, err := events.Connect(ctx, s.URL(), events.ConnectOptions{Credentials: &creds[1], OnPermissionError: func(s string) { refused <- s }})
	if err != nil {
		t.Fatal(err)
	}
	defer bnc.Close()
	got := make(chan *nats.Msg, 16)
	sub, err := bnc.ChanSubscribe(creds[1].InboxPrefix()+".steal", got)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for _, d := range durables {
		for _, subj := range []string{
			"$JS.API.CONSUMER.MSG.NEXT." + events.StreamName + "." + d,
			"$JS.API.CONSUMER.DELETE." + events.StreamName + "." + d,
			"$JS.API.CONSUMER.CREATE." + events.StreamName + "." + d,
			"$JS.ACK." + events.StreamName + "." + d + ".1.1.1.0.0",
		} {
			if err := bnc.PublishRequest(subj, creds[1].InboxPrefix()+".steal", []byte(`{"batch":1,"expires":1000000000}`)); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-refused:
				if r != subj {
					t.Fatalf("refused %s, want %s", r, subj)
				}
			case m := <-got:
				t.Fatalf("bob's %s was answered: %s %s", subj, m.Subject, m.Data)
			case <-time.After(5 * time.Second):
				t.Fatalf("bob's %s was not refused", subj)
			}
		}
		// The daemon's consumer still holds the event, for the daemon.
		cons, err := js.Consumer(ctx, events.StreamName, d)
		if err != nil {
			t.Fatalf("consumer %s: %v", d, err)
		}
		batch, err := cons.FetchNoWait(1)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range batch.Messages() {
			n++
		}
		if n != 1 {
			t.Fatalf("consumer %s delivered %d events to its daemon, want 1", d, n)
		}
	}
	// bob still reads the stream through a consumer of his own.
	oc, err := bjs.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"vmpool.ev.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil || m.Subject() != "vmpool.ev.startd.e1.job.s1.1.0.VMExited" {
		t.Fatalf("bob's own reader: %v %v", m, err)
	}
}
