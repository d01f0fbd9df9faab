package events_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
)

func freePort(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// cluster starts n embedded NATS servers forming a JetStream cluster and
// returns their client URLs joined by commas.
func cluster(tb testing.TB, n int) string {
	var clients, routes []string
	for i := 0; i < n; i++ {
		clients = append(clients, freePort(tb))
		routes = append(routes, freePort(tb))
	}
	var urls []string
	for i := 0; i < n; i++ {
		var others []string
		for j := 0; j < n; j++ {
			if j != i {
				others = append(others, "nats://"+routes[j])
			}
		}
		cfg := events.NATSConfig{Listen: clients[i], StoreDir: tb.TempDir()}
		if n > 1 {
			cfg.Cluster = &events.ClusterConfig{Name: "bench", ServerName: fmt.Sprintf("s%d", i), Listen: routes[i], Routes: others}
		}
		s, err := events.StartNATS(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(s.Stop)
		urls = append(urls, s.URL())
	}
	return joinURLs(urls)
}

func joinURLs(u []string) string {
	out := u[0]
	for _, x := range u[1:] {
		out += "," + x
	}
	return out
}

// BenchmarkBusReplicas measures events/s from a daemon's log through its
// outbox, JetStream (fsync always) and a consumer's synced log, with the
// stream kept on one server (R1) or replicated on three (R3).
func BenchmarkBusReplicas(b *testing.B) {
	for _, r := range []int{1, 3} {
		b.Run(fmt.Sprintf("R%d", r), func(b *testing.B) {
			url := cluster(b, r)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			nc, js, err := events.Connect(ctx, url, events.ConnectOptions{Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			var bus *events.Bus
			for {
				actx, acancel := context.WithTimeout(ctx, 10*time.Second)
				bus, err = events.OpenBus(actx, nc, js, events.BusConfig{Replicas: r})
				acancel()
				if err == nil {
					break
				}
				// The cluster is still electing its meta leader.
				time.Sleep(200 * time.Millisecond)
			}
			src, _ := events.OpenLog(b.TempDir(), "schedd", events.LogOptions{})
			defer src.Close()
			dst, _ := events.OpenLog(b.TempDir(), "neg", events.LogOptions{})
			defer dst.Close()
			ob, _ := events.NewOutbox(events.OutboxConfig{Log: src, JS: bus.JS, Role: events.RoleSchedd})
			go ob.Run(ctx)
			var applied atomic.Int64
			go events.Consume(ctx, bus.JS, events.ConsumerConfig{Durable: "neg", Filters: []events.SubjectFilter{events.AllOfRole(events.RoleSchedd)},
				Handle: func(_ context.Context, evs []events.Event) error {
					for _, e := range evs {
						dst.Consume(e.Source, e.Seq)
					}
					_, err := dst.Append(evs)
					applied.Add(int64(len(evs)))
					return err
				}})
			b.ResetTimer()
			const batch = 100
			n := 0
			for i := 0; i < b.N; i++ {
				evs := make([]events.Event, batch)
				for j := range evs {
					evs[j] = events.New("JobSubmitted", nil).ForJob("schedd", events.JobID{Cluster: n + 1})
					n++
				}
				if _, err := src.Append(evs); err != nil {
					b.Fatal(err)
				}
			}
			for applied.Load() < int64(n) {
				time.Sleep(time.Millisecond)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
