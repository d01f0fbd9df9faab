package schedd

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmpool/vmpool/events"
)

// Metrics are a schedd's Prometheus collectors, registered on the
// Config.Metrics registerer (nil: no metrics; every method is then a
// no-op). What is a function of the queue (jobs by status, the log and
// outbox positions, the consumer's backlog) is computed when scraped, under
// the loop's read lock; the rest is observed by the shell at a few points:
// a submit answered, a group of events committed, returned disks fetched.
type Metrics struct {
	s    *Schedd
	live atomic.Bool // Run has the log, loop and outbox; scrapes may read them

	submitSeconds   prometheus.Histogram
	matchSeconds    prometheus.Histogram
	turnaround      prometheus.Histogram
	returnedSeconds prometheus.Histogram
	returnedBytes   prometheus.Counter
	events          *prometheus.CounterVec

	jobs, history, logEvents, acked, lag, pending *prometheus.Desc

	// Owned by the loop goroutine (committed): when each job last became
	// idle and when it was queued, in unix nanoseconds.
	idleSince map[events.JobID]int64
	queuedAt  map[events.JobID]int64
}

// statusNames label the jobs gauge, by JobStatus.
var statusNames = map[int]string{Idle: "idle", Running: "running", Removed: "removed", Completed: "completed",
	Held: "held", 6: "transferring_output", 7: "suspended"}

// newMetrics registers a schedd's collectors on reg; nil gives nil.
func newMetrics(reg prometheus.Registerer, s *Schedd) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	own := prometheus.Labels{"schedd": s.cfg.Name}
	pipe := prometheus.Labels{"role": events.RoleSchedd, "daemon": s.cfg.Name}
	m := &Metrics{
		s: s,
		submitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vmpool_schedd_submit_seconds", ConstLabels: own,
			Help: "Time from a submit request's arrival to its cluster being durable in the schedd's log.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		matchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vmpool_schedd_match_seconds", ConstLabels: own,
			Help: "Time a job waited idle (since submit, release or eviction) until the schedd took a match for it.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 20)}),
		turnaround: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vmpool_schedd_turnaround_seconds", ConstLabels: own,
			Help: "Time from submit to completion (returned disks in the submit directory) of completed jobs.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 22)}),
		returnedSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vmpool_schedd_returned_seconds", ConstLabels: own,
			Help: "Time to fetch a job's returned disks from the object store into its submit directory.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 20)}),
		returnedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "vmpool_schedd_returned_bytes_total", ConstLabels: own,
			Help: "Bytes of returned disks the schedd fetched into submit directories."}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vmpool_schedd_events_total", ConstLabels: own,
			Help: "Events the schedd recorded in its log, by type."}, []string{"type"}),
		jobs:      prometheus.NewDesc("vmpool_schedd_jobs", "Jobs in the queue, by status.", []string{"status"}, own),
		history:   prometheus.NewDesc("vmpool_schedd_history_jobs", "Jobs that left the queue (completed or removed) and are kept in the history.", nil, own),
		logEvents: prometheus.NewDesc("vmpool_log_events", "Records in the daemon's event log (its last index).", nil, pipe),
		acked:     prometheus.NewDesc("vmpool_outbox_acked_events", "Log index up to which every own event is acknowledged by JetStream.", nil, pipe),
		lag:       prometheus.NewDesc("vmpool_outbox_lag_events", "Outbox lag: log records appended but not yet acknowledged by JetStream.", nil, pipe),
		pending:   prometheus.NewDesc("vmpool_consumer_pending_events", "Consumer lag: events in the stream the daemon's durable consumer has not been delivered yet (JetStream NumPending).", []string{"consumer"}, pipe),
		idleSince: map[events.JobID]int64{},
		queuedAt:  map[events.JobID]int64{},
	}
	for _, c := range []prometheus.Collector{m.submitSeconds, m.matchSeconds, m.turnaround, m.returnedSeconds, m.returnedBytes, m.events, m} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// attach lets scrapes read the running schedd's state; Run calls it once
// the log, loop and outbox exist, and detach before they go.
func (m *Metrics) attach() {
	if m != nil {
		m.live.Store(true)
	}
}

func (m *Metrics) detach() {
	if m != nil {
		m.live.Store(false)
	}
}

// Describe implements prometheus.Collector for the gauges computed when
// scraped.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.jobs, m.history, m.logEvents, m.acked, m.lag, m.pending} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it counts the queue's jobs
// under the loop's read lock and reads the pipeline's positions.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	if !m.live.Load() {
		return
	}
	s := m.s
	counts := map[int]int{}
	var hist int
	s.View(func(q *Queue) {
		for _, j := range q.Jobs {
			counts[j.Status]++
		}
		hist = len(q.History)
	})
	for status, name := range statusNames {
		ch <- prometheus.MustNewConstMetric(m.jobs, prometheus.GaugeValue, float64(counts[status]), name)
	}
	ch <- prometheus.MustNewConstMetric(m.history, prometheus.GaugeValue, float64(hist))
	last, acked := s.log.LastIndex(), s.outbox.Published()
	ch <- prometheus.MustNewConstMetric(m.logEvents, prometheus.GaugeValue, float64(last))
	ch <- prometheus.MustNewConstMetric(m.acked, prometheus.GaugeValue, float64(acked))
	ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, float64(last-min(acked, last)))
	durable := events.DaemonConsumer(events.RoleSchedd, s.cfg.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if cons, err := s.cfg.Bus.JS.Consumer(ctx, events.StreamName, durable); err == nil {
		ch <- prometheus.MustNewConstMetric(m.pending, prometheus.GaugeValue, float64(cons.CachedInfo().NumPending), durable)
	}
}

// submitted observes a submit request answered after took.
func (m *Metrics) submitted(took time.Duration) {
	if m != nil {
		m.submitSeconds.Observe(took.Seconds())
	}
}

// fetched observes a job's returned disks fetched into its submit
// directory.
func (m *Metrics) fetched(bytes int64, took time.Duration) {
	if m != nil {
		m.returnedBytes.Add(float64(bytes))
		m.returnedSeconds.Observe(took.Seconds())
	}
}

// committed observes a group of the schedd's own events, durable now. It
// runs on the loop goroutine (the queue's only writer) after the group was
// applied, so it may read the queue without the lock.
func (m *Metrics) committed(q *Queue, evs []events.Event) {
	if m == nil {
		return
	}
	touched := map[events.JobID]int64{}
	for _, e := range evs {
		m.events.WithLabelValues(e.Type).Inc()
		if e.Type == events.ClusterSubmitted {
			// The queue holds the cluster just applied; its payload (the
			// attributes of every proc) is read again only if it is gone.
			// This runs before the submitters hear that their jobs are
			// queued.
			n := -1
			if c := q.Clusters[e.Cluster]; c != nil {
				n = c.NumProcs
			} else if p, _, err := e.DecodeSubmit(); err == nil {
				n = max(p.NumProcs, len(p.Procs))
			}
			for proc := range n {
				id := events.JobID{Cluster: e.Cluster, Proc: proc}
				m.queuedAt[id] = e.Time
				touched[id] = e.Time
			}
			continue
		}
		if e.Proc < 0 {
			continue
		}
		id := e.Job()
		touched[id] = e.Time
		switch e.Type {
		case events.JobMatched:
			since, ok := m.idleSince[id]
			if j := q.Jobs[id]; !ok && j != nil && j.EnteredCurrentStatus > 0 {
				since, ok = j.EnteredCurrentStatus*int64(time.Second), true // idle since before a restart
			}
			if ok && e.Time >= since {
				m.matchSeconds.Observe(time.Duration(e.Time - since).Seconds())
			}
			delete(m.idleSince, id)
		case events.JobCompleted:
			queued, ok := m.queuedAt[id]
			if !ok {
				if j := lastInHistory(q, id); j != nil && j.Cluster.QDate > 0 {
					queued, ok = j.Cluster.QDate*int64(time.Second), true
				}
			}
			if ok && e.Time >= queued {
				m.turnaround.Observe(time.Duration(e.Time - queued).Seconds())
			}
		}
	}
	// Where the group left each job it touched: waiting for a match (idle
	// and unclaimed) starts the match clock, gone from the queue drops it.
	for id, at := range touched {
		j := q.Jobs[id]
		switch {
		case j == nil:
			delete(m.idleSince, id)
			delete(m.queuedAt, id)
		case j.Status == Idle && j.Claim == nil:
			if _, ok := m.idleSince[id]; !ok {
				m.idleSince[id] = at
			}
		case j.Status != Idle:
			delete(m.idleSince, id)
		}
	}
}

// lastInHistory finds a job that just left the queue (the end of the
// history).
func lastInHistory(q *Queue, id events.JobID) *Job {
	for i := len(q.History) - 1; i >= 0 && i >= len(q.History)-64; i-- {
		if q.History[i].ID == id {
			return q.History[i]
		}
	}
	return nil
}
