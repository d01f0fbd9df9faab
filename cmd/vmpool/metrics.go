package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics. Each daemon registers its collectors (schedd.Metrics,
// negotiator.Metrics, startd.Metrics) on the registerer of its Config; the
// process that runs it owns one registry and serves it over HTTP at
// METRICS_ADDRESS: `vmpool up` one registry for all its daemons (on by
// default, at defaultMetricsAddress), a daemon run alone its own (off
// unless --metrics ADDR or METRICS_ADDRESS is given). There is no global
// registry.

// defaultMetricsAddress is where `vmpool up` serves metrics unless told
// otherwise (9464: the port OpenTelemetry's Prometheus exporter uses).
const defaultMetricsAddress = "127.0.0.1:9464"

// metricsAddress is the address METRICS_ADDRESS asks for, "" for none
// ("off", "none", "no" and "false" turn metrics off).
func metricsAddress(cfg *Config) string {
	v := strings.TrimSpace(cfg.Get("METRICS_ADDRESS"))
	switch strings.ToLower(v) {
	case "", "off", "none", "no", "false", "0":
		return ""
	}
	return v
}

// newRegistry is a process's metrics registry: the daemons' collectors
// join it, with the Go runtime's and the process's.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// metricsServer serves a registry at /metrics until Stop.
type metricsServer struct {
	srv  *http.Server
	addr string // the bound address (a :0 port resolved)
	done chan error
}

// startMetrics listens on addr and serves reg at /metrics.
func startMetrics(addr string, reg *prometheus.Registry, logger *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve metrics on %s (METRICS_ADDRESS; --metrics off disables them): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "vmpool: Prometheus metrics are at /metrics")
	})
	m := &metricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		addr: ln.Addr().String(),
		done: make(chan error, 1),
	}
	go func() {
		err := m.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		m.done <- err
	}()
	logger.Info("serving metrics", "url", m.URL())
	return m, nil
}

// URL is where the metrics are scraped.
func (m *metricsServer) URL() string { return "http://" + m.addr + "/metrics" }

// Stop shuts the server down, letting scrapes in flight finish (a few
// seconds at most), and waits for it.
func (m *metricsServer) Stop() error {
	if m == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if serr := <-m.done; err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("stop metrics server: %w", err)
	}
	return nil
}
