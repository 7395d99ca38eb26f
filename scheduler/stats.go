package scheduler

import "github.com/wasmsched/wasmsched/scheduler/internal/worker"

// WorkerStats is one worker's statistics; the field comments say what
// each counts, and WorkerStatFields describes them all.
type WorkerStats = worker.Stats

// WorkerStatField describes one field of WorkerStats: how to read it as a
// float (in the metric's unit), and the Prometheus family that exports it
// (Metric without the wasmsched_ prefix, Help, counter or gauge). Package
// metrics builds its per-worker families from these.
type WorkerStatField struct {
	Metric  string
	Help    string
	Counter bool
	Value   func(*WorkerStats) float64
}

// WorkerStatFields lists every field of WorkerStats, in declaration order.
func WorkerStatFields() []WorkerStatField {
	out := make([]WorkerStatField, len(worker.StatTable))
	for i, f := range worker.StatTable {
		out[i] = WorkerStatField{Metric: f.Metric, Help: f.Help, Counter: f.Counter,
			Value: func(s *WorkerStats) float64 { return float64(*f.Field(s)) * f.Scale }}
	}
	return out
}

// Stats is a snapshot of the runtime. Per-worker counters are those last
// published by each worker (at its maintenance ticks and before it parks),
// so they lag by at most EventInterval polls; reading them takes no lock on
// any hot path.
type Stats struct {
	Workers         []WorkerStats
	InjectorDepth   int    // tasks in the global injector
	RemoteSchedules uint64 // spawns and wakes that went through the injector
	Spawned         uint64 // tasks ever spawned (accepted)
	Alive           int64  // spawned tasks not yet complete
	PendingTimers   int64  // registered timers not yet fired
}

// Stats returns a snapshot of the runtime's counters.
func (rt *Runtime) Stats() Stats {
	s := Stats{
		Workers:         make([]WorkerStats, len(rt.workers)),
		InjectorDepth:   rt.inj.len(),
		RemoteSchedules: rt.remoteSchedules.Load(),
		PendingTimers:   rt.timers.pending.Load(),
	}
	for i, w := range rt.workers {
		s.Workers[i] = w.Stats()
	}
	s.Alive, s.Spawned = rt.owned.counts()
	return s
}

// Total sums the per-worker statistics (gauges are summed too).
func (s Stats) Total() WorkerStats {
	var t WorkerStats
	for _, w := range s.Workers {
		t.Add(w)
	}
	return t
}
