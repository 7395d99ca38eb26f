package wasmtask

import (
	"errors"

	"go.uber.org/atomic"

	"github.com/wasmsched/wasmsched/scheduler"
)

type pathIdx int

const (
	pathImmediate pathIdx = iota
	pathDeferred
	pathCustom
	numPaths
)

// PathNames are the label values of EngineStats.Yields' second index.
var PathNames = [numPaths]string{"immediate", "deferred", "custom"}

// ReasonNames are the label values of EngineStats.Yields' first index.
var ReasonNames = [2]string{"epoch", "fuel"}

// TrapKinds are the failure kinds EngineStats.Failures counts, by name.
var TrapKinds = []string{"trap", "out_of_fuel", "memory_limit", "instantiate", "host", "policy", "exit", "aborted", "shutdown"}

var kindErrs = []error{ErrTrap, ErrOutOfFuel, ErrMemoryLimit, ErrInstantiate, ErrHost, ErrPolicyTrap, ErrExit, scheduler.ErrAborted, scheduler.ErrShutdown}

// engineCounters are updated on every yield by guests on every worker, so
// the per-yield ones are sharded by worker onto padded cache lines: a yield
// costs two uncontended atomic adds. Running guests are derived (started -
// finished - suspended) rather than counted.
type engineCounters struct {
	started, finished atomic.Int64
	fuel              atomic.Int64
	failures          [9]atomic.Int64
	shards            [numShards]counterShard
}

const numShards = 16

type counterShard struct {
	suspended atomic.Int64
	hostWaits atomic.Int64
	yields    [2][numPaths]atomic.Int64
	_         [128 - (2+2*int(numPaths))*8%128]byte
}

func (c *engineCounters) shard(worker int) *counterShard {
	return &c.shards[uint(worker)%numShards]
}

func (c *engineCounters) countFailure(kind error) {
	for i, k := range kindErrs {
		if errors.Is(kind, k) {
			c.failures[i].Inc()
			return
		}
	}
}

// EngineStats is a snapshot of an engine's guest counters, for metrics.
type EngineStats struct {
	Epoch     uint64
	Started   int64 // guests started
	Finished  int64 // guests finished (any outcome)
	Running   int64 // guests in a poll right now
	Suspended int64 // guests suspended in a yield or a host wait
	FuelUsed  int64 // fuel consumed by finished guests
	HostWaits int64 // async host-function suspensions
	// Yields[reason][path]: reason 0 epoch, 1 fuel; path per PathNames.
	Yields [2][3]int64
	// Failures by kind, indexed like TrapKinds.
	Failures [9]int64
}

// Stats returns the engine's counters.
func (e *Engine) Stats() EngineStats {
	s := EngineStats{
		Epoch:    e.Epoch(),
		Started:  e.stats.started.Load(),
		Finished: e.stats.finished.Load(),
		FuelUsed: e.stats.fuel.Load(),
	}
	for i := range e.stats.shards {
		sh := &e.stats.shards[i]
		s.Suspended += sh.suspended.Load()
		s.HostWaits += sh.hostWaits.Load()
		for r := range s.Yields {
			for p := range s.Yields[r] {
				s.Yields[r][p] += sh.yields[r][p].Load()
			}
		}
	}
	s.Running = max(s.Started-s.Finished-s.Suspended, 0)
	for i := range s.Failures {
		s.Failures[i] = e.stats.failures[i].Load()
	}
	return s
}
