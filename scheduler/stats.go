package scheduler

import "github.com/wasmsched/wasmsched/scheduler/internal/worker"

// WorkerStats is one worker's counters; see worker.Stats for each field.
type WorkerStats = worker.Stats

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

// Total sums the per-worker counters (gauges are summed too).
func (s Stats) Total() WorkerStats {
	var t WorkerStats
	for _, w := range s.Workers {
		t.Polls += w.Polls
		t.StealTasks += w.StealTasks
		t.StealOps += w.StealOps
		t.Parks += w.Parks
		t.NoopUnparks += w.NoopUnparks
		t.LocalSchedules += w.LocalSchedules
		t.Overflows += w.Overflows
		t.LIFOPolls += w.LIFOPolls
		t.DeferredYields += w.DeferredYields
		t.DeferredReleases += w.DeferredReleases
		t.Migrations += w.Migrations
		t.HandOffs += w.HandOffs
		t.Donated += w.Donated
		t.BusyNanos += w.BusyNanos
		t.MeanPollNanos += w.MeanPollNanos
		t.LocalQueueDepth += w.LocalQueueDepth
		t.DeferredDepth += w.DeferredDepth
	}
	return t
}
