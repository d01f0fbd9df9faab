package startd

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmpool/vmpool/events"
)

// Metrics are a startd's Prometheus collectors, registered on the
// Config.Metrics registerer (nil: no metrics; every method is then a
// no-op). Slots by state, running VMs and the pipeline's positions are
// computed when scraped (the state under the loop's read lock); VM starts,
// checkpoints and the bytes the starters move are observed where they
// happen. A startd has no terminal: this, its log lines and the job's
// events are how the transfers of disks and checkpoints show.
type Metrics struct {
	d      *Startd
	live   atomic.Bool
	outbox atomic.Pointer[events.Outbox]

	bootSeconds     *prometheus.HistogramVec
	checkpointSecs  *prometheus.HistogramVec
	transferSeconds *prometheus.HistogramVec
	transferBytes   *prometheus.CounterVec
	events          *prometheus.CounterVec

	slots, vms, vmMemory, logEvents, acked, lag *prometheus.Desc
}

// slotStates label the slots gauge (the machine ad's State).
var slotStates = []string{"Owner", "Unclaimed", "Matched", "Claimed", "Preempting", "Drained"}

// Transfer kinds (the "what" label): inputs fetched for a job, changed
// disks sent back, checkpoints shipped to the spool and fetched to resume.
const (
	transferInput         = "input"
	transferOutput        = "output"
	transferCheckpointOut = "checkpoint_out"
	transferCheckpointIn  = "checkpoint_in"
)

// newMetrics registers a startd's collectors on reg; nil gives nil.
func newMetrics(reg prometheus.Registerer, d *Startd) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	own := prometheus.Labels{"startd": d.cfg.Name, "vm_type": d.cfg.VMType}
	pipe := prometheus.Labels{"role": events.RoleStartd, "daemon": d.cfg.Name}
	m := &Metrics{
		d: d,
		bootSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vmpool_startd_vm_boot_seconds", ConstLabels: own,
			Help: "Time the hypervisor driver took to start a VM (boot: from its disks; resume: from a checkpoint).", Buckets: prometheus.ExponentialBuckets(0.005, 2, 16)}, []string{"how"}),
		checkpointSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vmpool_startd_checkpoint_seconds", ConstLabels: own,
			Help: "Time to checkpoint a VM and ship the checkpoint to the spool (kind: vacate or periodic).", Buckets: prometheus.ExponentialBuckets(0.01, 2, 18)}, []string{"kind"}),
		transferSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vmpool_startd_transfer_seconds", ConstLabels: own,
			Help: "Time the starters spent moving a job's files through the object store (what: input, output, checkpoint_out, checkpoint_in).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 20)}, []string{"what"}),
		transferBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vmpool_startd_transfer_bytes_total", ConstLabels: own,
			Help: "Bytes the starters moved through the object store (what: input, output, checkpoint_out, checkpoint_in)."}, []string{"what"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vmpool_startd_events_total", ConstLabels: own,
			Help: "Events the startd recorded in its log, by type."}, []string{"type"}),
		slots:     prometheus.NewDesc("vmpool_startd_slots", "Slots of the machine, by State.", []string{"state"}, own),
		vms:       prometheus.NewDesc("vmpool_startd_vms", "VMs running (or being stopped) on the machine.", nil, own),
		vmMemory:  prometheus.NewDesc("vmpool_startd_vm_memory_mib", "MiB of VM_MEMORY the machine's claims hold.", nil, own),
		logEvents: prometheus.NewDesc("vmpool_log_events", "Records in the daemon's event log (its last index).", nil, pipe),
		acked:     prometheus.NewDesc("vmpool_outbox_acked_events", "Log index up to which every own event is acknowledged by JetStream.", nil, pipe),
		lag:       prometheus.NewDesc("vmpool_outbox_lag_events", "Outbox lag: log records appended but not yet acknowledged by JetStream.", nil, pipe),
	}
	// Series that exist from the start, so that a rate over them works
	// before the first transfer.
	for _, what := range []string{transferInput, transferOutput, transferCheckpointOut, transferCheckpointIn} {
		m.transferBytes.WithLabelValues(what)
	}
	for _, c := range []prometheus.Collector{m.bootSeconds, m.checkpointSecs, m.transferSeconds, m.transferBytes, m.events, m} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// attach lets scrapes read the running startd's state; Run calls it once
// the log, loop and outbox exist, and detach before they go.
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

// booted observes a VM the driver started: from its disks, or resumed.
func (m *Metrics) booted(took time.Duration, resumed bool) {
	if m == nil {
		return
	}
	how := "boot"
	if resumed {
		how = "resume"
	}
	m.bootSeconds.WithLabelValues(how).Observe(took.Seconds())
}

// transferred observes files moved through the object store.
func (m *Metrics) transferred(what string, bytes int64, took time.Duration) {
	if m != nil {
		m.transferBytes.WithLabelValues(what).Add(float64(bytes))
		m.transferSeconds.WithLabelValues(what).Observe(took.Seconds())
	}
}

// checkpointed observes a checkpoint saved and shipped (kind vacate or
// periodic).
func (m *Metrics) checkpointed(kind string, took time.Duration, cp *events.Checkpoint, shipTook time.Duration) {
	if m != nil {
		m.checkpointSecs.WithLabelValues(kind).Observe(took.Seconds())
		m.transferred(transferCheckpointOut, checkpointBytes(cp), shipTook)
	}
}

// committed counts a group of the startd's own events, durable now.
func (m *Metrics) committed(evs []events.Event) {
	if m == nil {
		return
	}
	for _, e := range evs {
		m.events.WithLabelValues(e.Type).Inc()
	}
}

// Describe implements prometheus.Collector for the gauges computed when
// scraped.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.slots, m.vms, m.vmMemory, m.logEvents, m.acked, m.lag} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	if !m.live.Load() {
		return
	}
	d := m.d
	states := map[string]int{}
	var vms, mem int
	d.loop.View(func() {
		for _, s := range d.st.Slots {
			states[s.State]++
		}
		for _, c := range d.st.Claims {
			mem += c.MemoryMiB
			if c.Started {
				vms++
			}
		}
	})
	for _, s := range slotStates {
		ch <- prometheus.MustNewConstMetric(m.slots, prometheus.GaugeValue, float64(states[s]), s)
	}
	ch <- prometheus.MustNewConstMetric(m.vms, prometheus.GaugeValue, float64(vms))
	ch <- prometheus.MustNewConstMetric(m.vmMemory, prometheus.GaugeValue, float64(mem))
	last, acked := d.log.LastIndex(), m.outbox.Load().Published()
	ch <- prometheus.MustNewConstMetric(m.logEvents, prometheus.GaugeValue, float64(last))
	ch <- prometheus.MustNewConstMetric(m.acked, prometheus.GaugeValue, float64(acked))
	ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, float64(last-min(acked, last)))
}

// checkpointBytes is the size of a checkpoint's files.
func checkpointBytes(cp *events.Checkpoint) int64 {
	if cp == nil {
		return 0
	}
	var n int64
	for _, f := range cp.Files {
		n += f.Size
	}
	return n
}
