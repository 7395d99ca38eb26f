package worker

import (
	"go.uber.org/atomic"
)

// Stats is a snapshot of one worker's statistics. Counters are cumulative
// since the worker started; gauges (depths, mean poll time) are the values
// at the last publication. Every field is listed once in StatTable, which
// the owner's counters, the published copy, sums and the metrics collector
// all iterate.
type Stats struct {
	Polls            uint64 // tasks polled
	StealTasks       uint64 // tasks taken from peers
	StealOps         uint64 // successful steal operations (each takes >= 1 task)
	Parks            uint64 // times the worker blocked waiting for work
	NoopUnparks      uint64 // notified unparks after which the worker found no task and parked again
	LocalSchedules   uint64 // spawns/wakes/yields this worker queued locally (LIFO slot or ring)
	Overflows        uint64 // times the ring was full and half of it moved to the injector
	LIFOPolls        uint64 // polls of a task taken from the LIFO slot
	DeferredYields   uint64 // tasks put in the deferred queue (YieldNow)
	DeferredReleases uint64 // tasks moved from the deferred queue back to running
	Donated          uint64 // deferred tasks pushed into a lighter peer's inbox to even out load
	Migrations       uint64 // polls of a task whose previous poll ran on another worker
	HandOffs         uint64 // times the worker yielded its Go P to a peer it had unparked and that had not started running
	BusyNanos        uint64 // time spent outside park
	MeanPollNanos    uint64 // exponentially weighted mean duration of one poll
	LocalQueueDepth  uint64 // tasks in the ring plus the LIFO slot
	DeferredDepth    uint64 // tasks in the deferred queue
}

// Stat indexes a statistic in StatTable and in the owner's counters.
type Stat int

const (
	StatPolls Stat = iota
	StatStealTasks
	StatStealOps
	StatParks
	StatNoopUnparks
	StatLocalSchedules
	StatOverflows
	StatLIFOPolls
	StatDeferredYields
	StatDeferredReleases
	StatDonated
	StatMigrations
	StatHandOffs
	StatBusyNanos
	StatMeanPollNanos
	StatLocalQueueDepth
	StatDeferredDepth
	NumStats
)

// StatInfo describes one statistic: its Stats field, and its Prometheus
// family (wasmsched_<Metric>, with Help; a gauge unless Counter; the
// field's value times Scale).
type StatInfo struct {
	Field   func(*Stats) *uint64
	Metric  string
	Help    string
	Counter bool
	Scale   float64
}

// nanosecond converts a field in nanoseconds to a metric in seconds.
const nanosecond = 1e-9

// StatTable lists every statistic, indexed by Stat.
var StatTable = [NumStats]StatInfo{
	StatPolls: {func(s *Stats) *uint64 { return &s.Polls }, "worker_polls_total",
		"Task polls run by the worker.", true, 1},
	StatStealTasks: {func(s *Stats) *uint64 { return &s.StealTasks }, "worker_stolen_tasks_total",
		"Tasks the worker took from peers' queues.", true, 1},
	StatStealOps: {func(s *Stats) *uint64 { return &s.StealOps }, "worker_steal_operations_total",
		"Successful steal operations by the worker (each takes at least one task).", true, 1},
	StatParks: {func(s *Stats) *uint64 { return &s.Parks }, "worker_parks_total",
		"Times the worker blocked waiting for work.", true, 1},
	StatNoopUnparks: {func(s *Stats) *uint64 { return &s.NoopUnparks }, "worker_noop_unparks_total",
		"Notified unparks after which the worker found no task and parked again.", true, 1},
	StatLocalSchedules: {func(s *Stats) *uint64 { return &s.LocalSchedules }, "worker_local_schedules_total",
		"Spawns, wakes and immediate yields the worker queued on itself (LIFO slot or ring).", true, 1},
	StatOverflows: {func(s *Stats) *uint64 { return &s.Overflows }, "worker_overflows_total",
		"Times the worker's ring was full and half of it moved to the injector.", true, 1},
	StatLIFOPolls: {func(s *Stats) *uint64 { return &s.LIFOPolls }, "worker_lifo_polls_total",
		"Polls of a task taken from the worker's LIFO slot.", true, 1},
	StatDeferredYields: {func(s *Stats) *uint64 { return &s.DeferredYields }, "worker_deferred_yields_total",
		"Tasks the worker put in its deferred queue (deferred path, yield_now).", true, 1},
	StatDeferredReleases: {func(s *Stats) *uint64 { return &s.DeferredReleases }, "worker_deferred_releases_total",
		"Tasks the worker moved from its deferred queue back to running.", true, 1},
	StatDonated: {func(s *Stats) *uint64 { return &s.Donated }, "worker_deferred_donations_total",
		"Deferred tasks the worker handed to a lighter peer to even out load.", true, 1},
	StatMigrations: {func(s *Stats) *uint64 { return &s.Migrations }, "worker_migrations_total",
		"Polls by the worker of a task whose previous poll ran on another worker.", true, 1},
	StatHandOffs: {func(s *Stats) *uint64 { return &s.HandOffs }, "worker_p_handoffs_total",
		"Times the worker yielded its Go P to a peer worker it had unparked that had not started running yet.", true, 1},
	StatBusyNanos: {func(s *Stats) *uint64 { return &s.BusyNanos }, "worker_busy_seconds_total",
		"Time the worker spent outside park, in seconds.", true, nanosecond},
	StatMeanPollNanos: {func(s *Stats) *uint64 { return &s.MeanPollNanos }, "worker_mean_poll_seconds",
		"Exponentially weighted mean duration of one poll on the worker, in seconds.", false, nanosecond},
	StatLocalQueueDepth: {func(s *Stats) *uint64 { return &s.LocalQueueDepth }, "worker_local_queue_depth",
		"Tasks in the worker's ring plus its LIFO slot, at its last publication.", false, 1},
	StatDeferredDepth: {func(s *Stats) *uint64 { return &s.DeferredDepth }, "worker_deferred_queue_depth",
		"Tasks in the worker's deferred queue, at its last publication.", false, 1},
}

// Get returns statistic i of s.
func (s *Stats) Get(i Stat) uint64 { return *StatTable[i].Field(s) }

// Add adds every statistic of o to s (gauges are summed too).
func (s *Stats) Add(o Stats) {
	for i := range StatTable {
		*StatTable[i].Field(s) += *StatTable[i].Field(&o)
	}
}

// counters is the owner's plain copy of the statistics, bumped on the hot
// path without atomics (w.own.c[StatPolls]++) and published to the padded
// atomic block at maintenance ticks and before parking, so a reader sees
// values at most one maintenance interval old and the hot path pays no
// locked instruction for metrics. The gauges are filled in at publication;
// the mean poll time is kept as a float in meanPollNanos.
type counters [NumStats]uint64

// published is the shared, atomically readable copy. Each worker's block is
// padded to a multiple of 128 bytes (cacheLinePair) so that two workers
// publishing never write the same cache line or adjacent-line prefetch
// pair.
type published struct {
	v [NumStats]atomic.Uint64
	_ [cacheLinePair - (int(NumStats)*8)%cacheLinePair]byte
}

// cacheLinePair is two 64-byte cache lines: x86's adjacent-line prefetcher
// fetches lines in pairs, so independent writers keep 128 bytes apart.
const cacheLinePair = 128

func (p *published) store(c *counters) {
	for i := range c {
		p.v[i].Store(c[i])
	}
}

func (p *published) load() Stats {
	var s Stats
	for i := range StatTable {
		*StatTable[i].Field(&s) = p.v[i].Load()
	}
	return s
}

// meanPollWeight is the weight of a new sample in the mean poll time, an
// exponentially weighted moving average over about the last ten marks
// (each one EventInterval polls): quick to follow a change of workload,
// steady enough for a dashboard.
const meanPollWeight = 0.1

// mark folds the time since the last mark into busy time and the poll-time
// average. Called at maintenance and when parking: two clock reads per
// EventInterval polls instead of two per poll.
func (w *Worker) mark() {
	now := w.nanotime()
	if polls := w.own.c[StatPolls] - w.own.pollsAtLastMark; polls > 0 {
		sample := float64(now-w.own.lastMark) / float64(polls)
		if w.own.meanPollNanos == 0 {
			w.own.meanPollNanos = sample
		} else {
			w.own.meanPollNanos = meanPollWeight*sample + (1-meanPollWeight)*w.own.meanPollNanos
		}
	}
	w.own.pollsAtLastMark = w.own.c[StatPolls]
	w.own.lastMark = now
	if w.cfg.GlobalQueueInterval == 0 {
		w.tuneGlobalQueueInterval()
	}
}

// The tuned global queue interval: Tokio's rule (since 1.29; constants in
// tokio/src/runtime/scheduler/multi_thread/stats.rs, the jitter rule in
// worker.rs) with half its target time. The interval aims at a fixed time
// between looks at the injector rather than a fixed number of polls: with
// 50 µs polls, 31 ticks are 1.5 ms, and an external wake waits for them on
// a worker whose LIFO slot and ring keep it busy. Tokio aims at 200 µs;
// 100 µs halves that wait (RATIONALE.md) at the cost of an atomic load
// more often.
const (
	tunedIntervalTargetNanos = 100_000 // Tokio's TARGET_GLOBAL_QUEUE_INTERVAL is 200 µs
	tunedIntervalMax         = 127     // MAX_TASKS_POLLED_PER_GLOBAL_QUEUE_INTERVAL
	tunedIntervalMin         = 2       // never injector-first on every tick
	tunedIntervalSeed        = 61      // TARGET_TASKS_POLLED_PER_GLOBAL_QUEUE_INTERVAL: the interval before the first mark
	tunedIntervalJitter      = 2       // changes of at most this are ignored
)

// tuneGlobalQueueInterval sets the interval to the polls that fill
// tunedIntervalTargetNanos at the mean poll time, within [min, max], unless
// it moved by no more than the jitter.
func (w *Worker) tuneGlobalQueueInterval() {
	if w.own.meanPollNanos <= 0 {
		return
	}
	next := uint32(min(max(tunedIntervalTargetNanos/w.own.meanPollNanos, tunedIntervalMin), tunedIntervalMax))
	cur := w.own.globalInterval.n
	if max(next, cur)-min(next, cur) > tunedIntervalJitter {
		w.own.globalInterval = newDivisor(next)
	}
}

func (w *Worker) publish() {
	local := w.own.local.len()
	if w.lifo.Occupied() {
		local++
	}
	c := w.own.c
	c[StatBusyNanos] += uint64(w.own.lastMark - w.own.busySince)
	c[StatMeanPollNanos] = uint64(w.own.meanPollNanos)
	c[StatLocalQueueDepth] = uint64(local)
	c[StatDeferredDepth] = uint64(w.own.deferred.Len())
	w.pub.store(&c)
}
