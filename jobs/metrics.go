package jobs

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// otherTenants is the label of tenants beyond MaxTenantLabels.
const otherTenants = "_other"

// jobMetrics are the job service's Prometheus families. Tenant labels are
// capped: the first MaxTenantLabels tenants this replica sees keep their
// name, later ones are counted as "_other", so a client inventing tenants
// cannot grow the series without bound.
type jobMetrics struct {
	submittedC, startedC, redeliveredC, handedBackC *prometheus.CounterVec
	finishedC                                       *prometheus.CounterVec
	queued                                          *prometheus.GaugeVec
	duration, wait                                  *prometheus.HistogramVec

	mu     sync.Mutex
	labels map[string]bool
	max    int
	depth  map[string]bool // tenants whose queue gauge is set
}

func newJobMetrics(reg prometheus.Registerer, maxLabels int, s *Service) (*jobMetrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	buckets := prometheus.ExponentialBuckets(0.0001, 4, 12) // 100 µs to ~7 min
	m := &jobMetrics{
		submittedC:   counter("wasmsched_jobs_submitted_total", "Jobs queued by this replica.", "tenant"),
		startedC:     counter("wasmsched_jobs_started_total", "Job runs started by this replica (a redelivered job counts again).", "tenant"),
		finishedC:    counter("wasmsched_jobs_finished_total", "Final states written by this replica, by status.", "tenant", "status"),
		redeliveredC: counter("wasmsched_jobs_redelivered_total", "Jobs this replica pulled that had been delivered before (their replica died, or handed them back).", "tenant"),
		handedBackC:  counter("wasmsched_jobs_handed_back_total", "Running jobs this replica handed back to the queue when it shut down.", "tenant"),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wasmsched_jobs_queue_depth",
			Help: "Jobs in the shared queue (waiting, or held by a replica), by tenant, as this replica last saw it."}, []string{"tenant"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wasmsched_job_duration_seconds",
			Help: "Run time of jobs that ended on this replica.", Buckets: buckets}, []string{"tenant"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wasmsched_job_queue_wait_seconds",
			Help: "Time from submit to the start of a run on this replica.", Buckets: buckets}, []string{"tenant"}),
		labels: map[string]bool{}, max: maxLabels, depth: map[string]bool{},
	}
	running := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wasmsched_jobs_running",
		Help: "Jobs this replica holds now (running, or starting or ending)."}, func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(len(s.runs))
	})
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.submittedC, m.startedC, m.finishedC, m.redeliveredC, m.handedBackC,
		m.queued, m.duration, m.wait, running} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// label is tenant's metric label: its name while fewer than max tenants
// have one, else "_other".
func (m *jobMetrics) label(tenant string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.labels[tenant] {
		return tenant
	}
	if len(m.labels) < m.max {
		m.labels[tenant] = true
		return tenant
	}
	return otherTenants
}

func (m *jobMetrics) submitted(t string)   { m.submittedC.WithLabelValues(m.label(t)).Inc() }
func (m *jobMetrics) redelivered(t string) { m.redeliveredC.WithLabelValues(m.label(t)).Inc() }
func (m *jobMetrics) handedBack(t string)  { m.handedBackC.WithLabelValues(m.label(t)).Inc() }
func (m *jobMetrics) finished(t string, st Status) {
	m.finishedC.WithLabelValues(m.label(t), string(st)).Inc()
}
func (m *jobMetrics) started(t string, waited time.Duration) {
	l := m.label(t)
	m.startedC.WithLabelValues(l).Inc()
	m.wait.WithLabelValues(l).Observe(waited.Seconds())
}
func (m *jobMetrics) ran(t string, seconds float64) {
	m.duration.WithLabelValues(m.label(t)).Observe(seconds)
}

// queueDepths sets the queue gauges from the stream's per-tenant counts:
// tenants beyond the label cap are summed under "_other", and tenants
// whose queue emptied go to zero.
func (m *jobMetrics) queueDepths(depths map[string]uint64) {
	sums := map[string]float64{}
	for t, n := range depths {
		sums[m.label(t)] += float64(n)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for l := range m.depth {
		if _, ok := sums[l]; !ok {
			m.queued.WithLabelValues(l).Set(0)
		}
	}
	m.depth = map[string]bool{}
	for l, n := range sums {
		m.queued.WithLabelValues(l).Set(n)
		m.depth[l] = true
	}
}
