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

// YieldPaths names EngineStats.Yields' second index (the label values of
// wasmsched_guest_yields_total's path).
func YieldPaths() [numPaths]string { return [numPaths]string{"immediate", "deferred", "custom"} }

// YieldReasons names EngineStats.Yields' first index: ReasonEpoch and
// ReasonFuel (sched_yield calls are counted in GuestStats.SchedYields).
func YieldReasons() [2]string { return [2]string{ReasonEpoch.String(), ReasonFuel.String()} }

// failureKinds lists every failure kind an engine counts: its error, its
// name (the label of wasmsched_guest_traps_total and serve's error_kind)
// and its family.
var failureKinds = [...]struct {
	err   error
	name  string
	class FailureClass
}{
	{ErrTrap, "trap", ClassGuest},
	{ErrOutOfFuel, "out_of_fuel", ClassGuest},
	{ErrMemoryLimit, "memory_limit", ClassGuest},
	{ErrInstantiate, "instantiate", ClassGuest},
	{ErrHost, "host", ClassGuest},
	{ErrPolicyTrap, "policy", ClassGuest},
	{ErrExit, "exit", ClassGuest},
	{scheduler.ErrAborted, "aborted", ClassCancelled},
	{scheduler.ErrShutdown, "shutdown", ClassCancelled},
	{ErrInvalidModule, "invalid_module", ClassInvalidModule},
	{ErrUsage, "usage", ClassUsage},
	{ErrEmbedder, "embedder", ClassEmbedder},
}

// NumFailureKinds is the length of EngineStats.Failures.
const NumFailureKinds = len(failureKinds)

// FailureKinds names the failure kinds, indexed like EngineStats.Failures.
func FailureKinds() []string {
	out := make([]string, NumFailureKinds)
	for i, k := range failureKinds {
		out[i] = k.name
	}
	return out
}

// FailureKind names err's kind and family: ("", ClassNone) for nil,
// ("", ClassOther) for an error that is none of the kinds. For an *Error
// its Kind decides, whatever its cause wraps.
func FailureKind(err error) (name string, class FailureClass) {
	if err == nil {
		return "", ClassNone
	}
	if i := failureIndex(err); i >= 0 {
		return failureKinds[i].name, failureKinds[i].class
	}
	return "", ClassOther
}

func failureIndex(err error) int {
	var ge *Error
	if errors.As(err, &ge) && ge.Kind != nil {
		err = ge.Kind
	}
	for i, k := range failureKinds {
		if errors.Is(err, k.err) {
			return i
		}
	}
	return -1
}

// engineCounters are updated on every yield by guests on every worker, so
// the per-yield ones are sharded by worker onto padded cache lines: a yield
// costs two uncontended atomic adds. Running guests are derived (started -
// finished - suspended) rather than counted.
type engineCounters struct {
	started, finished atomic.Int64
	fuel              atomic.Int64
	failures          [NumFailureKinds]atomic.Int64
	shards            [numShards]counterShard
}

// numShards is how many counter shards an engine keeps; guests on worker
// w count into shard w modulo 16. Sixteen covers the worker counts of
// the machines this runs on without sharing; beyond it two workers share
// a shard's lines, which costs contention, not correctness.
const numShards = 16

// cacheLinePair is two 64-byte cache lines: x86's adjacent-line
// prefetcher fetches lines in pairs, so shards written by different
// workers are kept 128 bytes apart.
const cacheLinePair = 128

type counterShard struct {
	suspended atomic.Int64
	hostWaits atomic.Int64
	yields    [2][numPaths]atomic.Int64
	_         [cacheLinePair - (2+2*int(numPaths))*8%cacheLinePair]byte
}

func (c *engineCounters) shard(worker int) *counterShard {
	return &c.shards[uint(worker)%numShards]
}

func (c *engineCounters) countFailure(kind error) {
	if i := failureIndex(kind); i >= 0 {
		c.failures[i].Inc()
	}
}

// EngineStats is a snapshot of an engine's guest counters, for metrics.
type EngineStats struct {
	Epoch     uint64
	Started   int64 // runs started: one-shot guests, instantiations and calls of Instances
	Finished  int64 // runs finished (any outcome)
	Running   int64 // runs in a poll right now
	Suspended int64 // guests suspended in a yield or a host wait
	FuelUsed  int64 // fuel consumed by finished guests
	HostWaits int64 // async host-function suspensions
	// Yields[reason][path]: reason per YieldReasons, path per YieldPaths.
	Yields [2][3]int64
	// Failures by kind, indexed like FailureKinds().
	Failures [NumFailureKinds]int64
	// Linear memory of running guests (bytes committed), its high-water
	// mark, the budget (0: none), and the grows and instantiations that a
	// guest's limit or the budget refused.
	MemoryInUse, MemoryPeak, MemoryBudget, MemoryRefusals int64
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
	s.MemoryInUse, s.MemoryPeak = e.memory.used.Load(), e.memory.peak.Load()
	s.MemoryBudget, s.MemoryRefusals = e.memory.limit, e.memory.refusals.Load()
	return s
}
