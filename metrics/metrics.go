// Package metrics exports a wasmsched runtime's and a wasmtask engine's
// counters as Prometheus metrics.
//
// # Design
//
// The runtime and the engine already keep their counters where they are
// cheap to update: each worker bumps plain fields and publishes them to
// padded atomics at maintenance ticks and before it parks
// (scheduler.Runtime.Stats), and the engine shards its per-yield counters by
// worker (wasmtask.Engine.Stats). This package adds nothing to any hot path:
// a Collector holds only the two sources and, at scrape time, takes one
// snapshot of each and turns it into constant metrics
// (prometheus.MustNewConstMetric). Nothing is cached between scrapes, so a
// scrape always reflects the latest published snapshot; per-worker counters
// lag the workers by at most one maintenance interval (EventInterval polls),
// as scheduler.Stats documents.
//
// # Names
//
// Every family has the wasmsched_ prefix, base units (seconds, not
// nanoseconds), a _total suffix on counters, and bounded labels: worker
// (0..Workers-1) only on per-worker families, reason in {epoch, fuel, host},
// path in {immediate, deferred, custom}, kind in wasmtask.FailureKinds(). There is
// never a label per task or per guest. See Families for the full list.
// An async host call (reason host) has no yield path of its own: the guest
// waits for Go-side work to complete, which is what the custom path means,
// so host waits are exported as {reason="host", path="custom"}.
//
// # Histograms (opt-in)
//
// Poll duration and schedule latency (wake to poll) cannot be derived from
// snapshots: they need a clock read around every poll. Observer is a
// scheduler.Observer (installed with scheduler.WithObserver) that counts
// them into per-worker shards and is itself a Collector for the two
// histogram families; see its doc. Without it the snapshot still has each
// worker's exponentially weighted mean poll time
// (wasmsched_worker_mean_poll_seconds).
package metrics

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// RuntimeSource is what the Collector reads from a runtime:
// *scheduler.Runtime implements it.
type RuntimeSource interface {
	Stats() scheduler.Stats
}

// EngineSource is what the Collector reads from an engine:
// *wasmtask.Engine implements it.
type EngineSource interface {
	Stats() wasmtask.EngineStats
}

// Collector is a prometheus.Collector over a runtime and, optionally, an
// engine. It is safe for concurrent scrapes.
type Collector struct {
	rt  RuntimeSource
	eng EngineSource
}

// New returns a Collector over rt and eng; either may be nil (a nil
// *scheduler.Runtime or *wasmtask.Engine passed as the interface is treated
// as nil too), and then its families are not described or collected.
func New(rt RuntimeSource, eng EngineSource) *Collector {
	if r, ok := rt.(*scheduler.Runtime); ok && r == nil {
		rt = nil
	}
	if e, ok := eng.(*wasmtask.Engine); ok && e == nil {
		eng = nil
	}
	return &Collector{rt: rt, eng: eng}
}

// Register creates a Collector over rt and eng and registers it on reg.
func Register(reg prometheus.Registerer, rt RuntimeSource, eng EngineSource) (*Collector, error) {
	c := New(rt, eng)
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("metrics: register: %w", err)
	}
	return c, nil
}

const ns = "wasmsched"

// descNames maps each Desc to its name (client_golang does not expose it).
var descNames = map[*prometheus.Desc]string{}

func desc(name, help string, labels ...string) *prometheus.Desc {
	d := prometheus.NewDesc(ns+"_"+name, help, labels, nil)
	descNames[d] = ns + "_" + name
	return d
}

// workerField is one per-worker family and how to read it from a snapshot.
type workerField struct {
	d   *prometheus.Desc
	t   prometheus.ValueType
	get func(*scheduler.WorkerStats) float64
}

// workerFields are the per-worker families, one per field of
// scheduler.WorkerStats (scheduler.WorkerStatFields names them).
var workerFields = func() []workerField {
	var out []workerField
	for _, f := range scheduler.WorkerStatFields() {
		t := prometheus.GaugeValue
		if f.Counter {
			t = prometheus.CounterValue
		}
		out = append(out, workerField{desc(f.Metric, f.Help, "worker"), t, f.Value})
	}
	return out
}()

var (
	dWorkers         = desc("workers", "Worker goroutines of the runtime.")
	dInjectorDepth   = desc("injector_depth", "Tasks waiting in the global injector queue.")
	dRemoteSchedules = desc("remote_schedules_total", "Spawns and wakes that went through the injector (from outside a worker).")
	dSpawned         = desc("tasks_spawned_total", "Tasks ever spawned on the runtime.")
	dAlive           = desc("tasks_alive", "Spawned tasks not yet complete.")
	dTimers          = desc("timers_pending", "Registered timers not yet fired.")

	dEpoch         = desc("epoch", "The engine's epoch: ticks of its epoch period since it started, plus explicit increments.")
	dGuestsStarted = desc("guests_started_total", "Wasm guests started.")
	dGuestsDone    = desc("guests_finished_total", "Wasm guests finished, with any outcome.")
	dGuestsRunning = desc("guests_running", "Wasm guests in a poll right now.")
	dGuestsSusp    = desc("guests_suspended", "Wasm guests suspended in a yield or an async host call.")
	dFuel          = desc("guest_fuel_consumed_total", "Fuel consumed by finished Wasm guests (Wasmtime's cost rule; running guests are counted when they finish).")
	dYields        = desc("guest_yields_total", "Wasm guest suspensions by reason (epoch or fuel deadline, host: async host call) and re-entry path (immediate, deferred, custom: awaiting a future; host waits are custom).", "reason", "path")
	dTraps         = desc("guest_traps_total", "Wasm guests that failed, by kind (wasmtask.FailureKinds()).", "kind")
	dMemory        = desc("guest_memory_bytes", "Linear memory held by running Wasm guests, in bytes.")
	dMemoryBudget  = desc("guest_memory_budget_bytes", "The engine's memory budget shared by running guests, in bytes (0: none).")
	dMemoryRefused = desc("guest_memory_refusals_total", "memory.grow calls and instantiations refused by a guest's memory limit or the engine's budget.")
)

// Families lists every metric family name the Collector can export, in
// the order it describes them, then the Observer's two histograms.
func Families() []string {
	var out []string
	for _, d := range allDescs() {
		out = append(out, fqName(d))
	}
	return append(out, fqName(dPollDuration), fqName(dSchedLatency))
}

func allDescs() []*prometheus.Desc {
	ds := []*prometheus.Desc{dWorkers}
	for _, f := range workerFields {
		ds = append(ds, f.d)
	}
	ds = append(ds, dInjectorDepth, dRemoteSchedules, dSpawned, dAlive, dTimers,
		dEpoch, dGuestsStarted, dGuestsDone, dGuestsRunning, dGuestsSusp, dFuel, dYields, dTraps,
		dMemory, dMemoryBudget, dMemoryRefused)
	return ds
}

func fqName(d *prometheus.Desc) string { return descNames[d] }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	if c.rt != nil {
		ch <- dWorkers
		for _, f := range workerFields {
			ch <- f.d
		}
		for _, d := range []*prometheus.Desc{dInjectorDepth, dRemoteSchedules, dSpawned, dAlive, dTimers} {
			ch <- d
		}
	}
	if c.eng != nil {
		for _, d := range []*prometheus.Desc{dEpoch, dGuestsStarted, dGuestsDone, dGuestsRunning, dGuestsSusp, dFuel, dYields, dTraps, dMemory, dMemoryBudget, dMemoryRefused} {
			ch <- d
		}
	}
}

// Collect implements prometheus.Collector: one snapshot of each source.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if c.rt != nil {
		s := c.rt.Stats()
		ch <- prometheus.MustNewConstMetric(dWorkers, prometheus.GaugeValue, float64(len(s.Workers)))
		for _, f := range workerFields {
			for i := range s.Workers {
				ch <- prometheus.MustNewConstMetric(f.d, f.t, f.get(&s.Workers[i]), workerLabel(i))
			}
		}
		ch <- prometheus.MustNewConstMetric(dInjectorDepth, prometheus.GaugeValue, float64(s.InjectorDepth))
		ch <- prometheus.MustNewConstMetric(dRemoteSchedules, prometheus.CounterValue, float64(s.RemoteSchedules))
		ch <- prometheus.MustNewConstMetric(dSpawned, prometheus.CounterValue, float64(s.Spawned))
		ch <- prometheus.MustNewConstMetric(dAlive, prometheus.GaugeValue, float64(s.Alive))
		ch <- prometheus.MustNewConstMetric(dTimers, prometheus.GaugeValue, float64(s.PendingTimers))
	}
	if c.eng != nil {
		e := c.eng.Stats()
		ch <- prometheus.MustNewConstMetric(dEpoch, prometheus.GaugeValue, float64(e.Epoch))
		ch <- prometheus.MustNewConstMetric(dGuestsStarted, prometheus.CounterValue, float64(e.Started))
		ch <- prometheus.MustNewConstMetric(dGuestsDone, prometheus.CounterValue, float64(e.Finished))
		ch <- prometheus.MustNewConstMetric(dGuestsRunning, prometheus.GaugeValue, float64(e.Running))
		ch <- prometheus.MustNewConstMetric(dGuestsSusp, prometheus.GaugeValue, float64(e.Suspended))
		ch <- prometheus.MustNewConstMetric(dFuel, prometheus.CounterValue, float64(e.FuelUsed))
		ch <- prometheus.MustNewConstMetric(dMemory, prometheus.GaugeValue, float64(e.MemoryInUse))
		ch <- prometheus.MustNewConstMetric(dMemoryBudget, prometheus.GaugeValue, float64(e.MemoryBudget))
		ch <- prometheus.MustNewConstMetric(dMemoryRefused, prometheus.CounterValue, float64(e.MemoryRefusals))
		for r, rn := range wasmtask.YieldReasons() {
			for p, pn := range wasmtask.YieldPaths() {
				ch <- prometheus.MustNewConstMetric(dYields, prometheus.CounterValue, float64(e.Yields[r][p]), rn, pn)
			}
		}
		// An async host call suspends the guest until Go-side work
		// completes: a wait on a future, the custom path.
		ch <- prometheus.MustNewConstMetric(dYields, prometheus.CounterValue, float64(e.HostWaits), "host", "custom")
		for k, kn := range wasmtask.FailureKinds() {
			if k < len(e.Failures) {
				ch <- prometheus.MustNewConstMetric(dTraps, prometheus.CounterValue, float64(e.Failures[k]), kn)
			}
		}
	}
}

func workerLabel(i int) string { return strconv.Itoa(i) }
