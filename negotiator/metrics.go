package negotiator

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmpool/vmpool/events"
)

// Metrics are a negotiator's Prometheus collectors, registered on the
// Config.Metrics registerer (nil: no metrics; every method is then a
// no-op). Idle jobs, slot ads and the pipeline's positions are computed
// when scraped (the projection under the loop's read lock); cycles and
// matches are observed by the shell after each cycle.
type Metrics struct {
	n      *Negotiator
	live   atomic.Bool
	outbox atomic.Pointer[events.Outbox]

	cycleSeconds prometheus.Histogram
	matches      prometheus.Counter

	idle, unsettled, slots, ads, logEvents, acked, lag, pending *prometheus.Desc
}

// newMetrics registers a negotiator's collectors on reg; nil gives nil.
func newMetrics(reg prometheus.Registerer, n *Negotiator) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	own := prometheus.Labels{"negotiator": n.cfg.Name}
	pipe := prometheus.Labels{"role": events.RoleNegotiator, "daemon": n.cfg.Name}
	m := &Metrics{
		n: n,
		cycleSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vmpool_negotiator_cycle_seconds", ConstLabels: own,
			Help: "Duration of a negotiation cycle: matching the idle jobs against the live slots and recording the matches.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20)}),
		matches: prometheus.NewCounter(prometheus.CounterOpts{Name: "vmpool_negotiator_matches_total", ConstLabels: own,
			Help: "Matches the negotiator made."}),
		idle:      prometheus.NewDesc("vmpool_negotiator_idle_jobs", "Jobs waiting for a match, as the negotiator sees them.", nil, own),
		unsettled: prometheus.NewDesc("vmpool_negotiator_unsettled_matches", "Matches made that their schedd has not settled yet.", nil, own),
		slots:     prometheus.NewDesc("vmpool_negotiator_slot_ads", "Slot ads the negotiator follows in the collector.", nil, own),
		ads:       prometheus.NewDesc("vmpool_collector_ads", "Ads in the collector (the KV bucket's values: slots, schedds, negotiators).", nil, own),
		logEvents: prometheus.NewDesc("vmpool_log_events", "Records in the daemon's event log (its last index).", nil, pipe),
		acked:     prometheus.NewDesc("vmpool_outbox_acked_events", "Log index up to which every own event is acknowledged by JetStream.", nil, pipe),
		lag:       prometheus.NewDesc("vmpool_outbox_lag_events", "Outbox lag: log records appended but not yet acknowledged by JetStream.", nil, pipe),
		pending:   prometheus.NewDesc("vmpool_consumer_pending_events", "Consumer lag: events in the stream the daemon's durable consumer has not been delivered yet (JetStream NumPending).", []string{"consumer"}, pipe),
	}
	for _, c := range []prometheus.Collector{m.cycleSeconds, m.matches, m} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// attach lets scrapes read the running negotiator's state; Run calls it
// once the log, loop and outbox exist, and detach before they go.
func (m *Metrics) attach(outbox *events.Outbox) {
	if m != nil {
		m.outbox.Store(outbox)
		m.live.Store(true)
	}
}

func (m *Metrics) detach() {
	if m != nil {
		m.live.Store(false)
	}
}

// cycled observes a negotiation cycle that made matches.
func (m *Metrics) cycled(took time.Duration, matches int) {
	if m != nil {
		m.cycleSeconds.Observe(took.Seconds())
		m.matches.Add(float64(matches))
	}
}

// Describe implements prometheus.Collector for the gauges computed when
// scraped.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.idle, m.unsettled, m.slots, m.ads, m.logEvents, m.acked, m.lag, m.pending} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	if !m.live.Load() {
		return
	}
	n := m.n
	var idle, unsettled int
	// A match is settled once its slot's ad shows the claim (or it
	// expired): the state forgets matches only as events come, so a
	// quiet pool's state keeps matches settled long ago.
	type match struct {
		slot   string
		claims int64 // the slot's VmpoolClaims when matched
	}
	var open []match
	now := time.Now().UnixNano()
	n.loop.View(func() {
		for _, j := range n.st.Jobs {
			if j.Idle() {
				idle++
			}
		}
		for _, mt := range n.st.Matches {
			if n.st.MatchTimeout <= 0 || now-mt.At <= n.st.MatchTimeout {
				open = append(open, match{mt.Slot, mt.Claims})
			}
		}
	})
	claims := map[string]int64{} // the slots of open, as their ads are now
	for _, m := range open {
		claims[m.slot] = -1
	}
	n.mu.Lock()
	slots := len(n.slots)
	if len(open) > 0 {
		for _, s := range n.slots {
			if _, ok := claims[s.Name]; ok {
				claims[s.Name] = s.Claims
			}
		}
	}
	n.mu.Unlock()
	for _, m := range open {
		if claims[m.slot] <= m.claims {
			unsettled++
		}
	}
	ch <- prometheus.MustNewConstMetric(m.idle, prometheus.GaugeValue, float64(idle))
	ch <- prometheus.MustNewConstMetric(m.unsettled, prometheus.GaugeValue, float64(unsettled))
	ch <- prometheus.MustNewConstMetric(m.slots, prometheus.GaugeValue, float64(slots))
	last, acked := n.log.LastIndex(), m.outbox.Load().Published()
	ch <- prometheus.MustNewConstMetric(m.logEvents, prometheus.GaugeValue, float64(last))
	ch <- prometheus.MustNewConstMetric(m.acked, prometheus.GaugeValue, float64(acked))
	ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, float64(last-min(acked, last)))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if st, err := n.cfg.Bus.Collector.Status(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(m.ads, prometheus.GaugeValue, float64(st.Values()))
	}
	durable := events.DaemonConsumer(events.RoleNegotiator, n.cfg.Name)
	if cons, err := n.cfg.Bus.JS.Consumer(ctx, events.StreamName, durable); err == nil {
		ch <- prometheus.MustNewConstMetric(m.pending, prometheus.GaugeValue, float64(cons.CachedInfo().NumPending), durable)
	}
}
