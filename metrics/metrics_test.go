package metrics

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeRT scheduler.Stats

func (f fakeRT) Stats() scheduler.Stats { return scheduler.Stats(f) }

type fakeEng wasmtask.EngineStats

func (f fakeEng) Stats() wasmtask.EngineStats { return wasmtask.EngineStats(f) }

// TestConversion pins every family's name, type, help, labels and unit
// conversion on a fixed snapshot.
func TestConversion(t *testing.T) {
	rt := fakeRT{
		Workers: []scheduler.WorkerStats{
			{Polls: 10, StealTasks: 3, StealOps: 2, Parks: 4, NoopUnparks: 1, LocalSchedules: 7, Overflows: 1,
				LIFOPolls: 5, DeferredYields: 6, DeferredReleases: 6, Donated: 1, Migrations: 2,
				BusyNanos: 1_500_000_000, MeanPollNanos: 2500, LocalQueueDepth: 3, DeferredDepth: 1},
			{Polls: 1},
		},
		InjectorDepth: 2, RemoteSchedules: 9, Spawned: 11, Alive: 4, PendingTimers: 1,
	}
	eng := fakeEng{Epoch: 42, Started: 5, Finished: 3, Running: 1, Suspended: 1, FuelUsed: 1000, HostWaits: 8,
		Yields: [2][3]int64{{1, 2, 3}, {4, 5, 6}}, Failures: [wasmtask.NumFailureKinds]int64{1, 2},
		MemoryInUse: 3 << 20, MemoryBudget: 1 << 30, MemoryRefusals: 4}
	c := New(rt, eng)
	obs := NewObserver()
	want := `
# HELP wasmsched_worker_busy_seconds_total Time the worker spent outside park, in seconds.
# TYPE wasmsched_worker_busy_seconds_total counter
wasmsched_worker_busy_seconds_total{worker="0"} 1.5
wasmsched_worker_busy_seconds_total{worker="1"} 0
# HELP wasmsched_worker_mean_poll_seconds Exponentially weighted mean duration of one poll on the worker, in seconds.
# TYPE wasmsched_worker_mean_poll_seconds gauge
wasmsched_worker_mean_poll_seconds{worker="0"} 2.5e-06
wasmsched_worker_mean_poll_seconds{worker="1"} 0
# HELP wasmsched_worker_stolen_tasks_total Tasks the worker took from peers' queues.
# TYPE wasmsched_worker_stolen_tasks_total counter
wasmsched_worker_stolen_tasks_total{worker="0"} 3
wasmsched_worker_stolen_tasks_total{worker="1"} 0
# HELP wasmsched_workers Worker goroutines of the runtime.
# TYPE wasmsched_workers gauge
wasmsched_workers 2
# HELP wasmsched_guest_yields_total Wasm guest suspensions by reason (epoch or fuel deadline, host: async host call) and re-entry path (immediate, deferred, custom: awaiting a future; host waits are custom).
# TYPE wasmsched_guest_yields_total counter
wasmsched_guest_yields_total{path="custom",reason="epoch"} 3
wasmsched_guest_yields_total{path="custom",reason="fuel"} 6
wasmsched_guest_yields_total{path="custom",reason="host"} 8
wasmsched_guest_yields_total{path="deferred",reason="epoch"} 2
wasmsched_guest_yields_total{path="deferred",reason="fuel"} 5
wasmsched_guest_yields_total{path="immediate",reason="epoch"} 1
wasmsched_guest_yields_total{path="immediate",reason="fuel"} 4
# HELP wasmsched_guest_traps_total Wasm guests that failed, by kind (wasmtask.FailureKinds()).
# TYPE wasmsched_guest_traps_total counter
wasmsched_guest_traps_total{kind="aborted"} 0
wasmsched_guest_traps_total{kind="embedder"} 0
wasmsched_guest_traps_total{kind="exit"} 0
wasmsched_guest_traps_total{kind="host"} 0
wasmsched_guest_traps_total{kind="instantiate"} 0
wasmsched_guest_traps_total{kind="invalid_module"} 0
wasmsched_guest_traps_total{kind="memory_limit"} 0
wasmsched_guest_traps_total{kind="out_of_fuel"} 2
wasmsched_guest_traps_total{kind="policy"} 0
wasmsched_guest_traps_total{kind="shutdown"} 0
wasmsched_guest_traps_total{kind="trap"} 1
wasmsched_guest_traps_total{kind="usage"} 0
# HELP wasmsched_epoch The engine's epoch: ticks of its epoch period since it started, plus explicit increments.
# TYPE wasmsched_epoch gauge
wasmsched_epoch 42
# HELP wasmsched_guest_fuel_consumed_total Fuel consumed by finished Wasm guests (Wasmtime's cost rule; running guests are counted when they finish).
# TYPE wasmsched_guest_fuel_consumed_total counter
wasmsched_guest_fuel_consumed_total 1000
# HELP wasmsched_guest_memory_bytes Linear memory held by running Wasm guests, in bytes.
# TYPE wasmsched_guest_memory_bytes gauge
wasmsched_guest_memory_bytes 3.145728e+06
# HELP wasmsched_guest_memory_budget_bytes The engine's memory budget shared by running guests, in bytes (0: none).
# TYPE wasmsched_guest_memory_budget_bytes gauge
wasmsched_guest_memory_budget_bytes 1.073741824e+09
# HELP wasmsched_guest_memory_refusals_total memory.grow calls and instantiations refused by a guest's memory limit or the engine's budget.
# TYPE wasmsched_guest_memory_refusals_total counter
wasmsched_guest_memory_refusals_total 4
`
	names := []string{"wasmsched_worker_busy_seconds_total", "wasmsched_worker_mean_poll_seconds",
		"wasmsched_worker_stolen_tasks_total", "wasmsched_workers", "wasmsched_guest_yields_total",
		"wasmsched_guest_traps_total", "wasmsched_epoch", "wasmsched_guest_fuel_consumed_total",
		"wasmsched_guest_memory_bytes", "wasmsched_guest_memory_budget_bytes", "wasmsched_guest_memory_refusals_total"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// Every family is exported, once, and each per-worker family has one
	// series per worker.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c, obs)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		got[mf.GetName()] = len(mf.GetMetric())
	}
	for _, name := range Families() {
		n, ok := got[name]
		switch {
		case !ok:
			t.Errorf("family %s not exported", name)
		case strings.HasPrefix(name, "wasmsched_worker_") && n != 2:
			t.Errorf("%s: %d series, want one per worker (2)", name, n)
		}
	}
	if len(got) != len(Families()) {
		t.Errorf("exported %d families, Families lists %d", len(got), len(Families()))
	}
}

func TestLint(t *testing.T) {
	c := New(fakeRT{Workers: make([]scheduler.WorkerStats, 3)}, fakeEng{})
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(c); n == 0 {
		t.Fatal("no metrics collected")
	}
}

func TestNilSources(t *testing.T) {
	var rt *scheduler.Runtime
	var eng *wasmtask.Engine
	if n := testutil.CollectAndCount(New(rt, eng)); n != 0 {
		t.Fatalf("nil sources: %d metrics, want 0", n)
	}
	// Engine only: epoch, started, finished, running, suspended, fuel (6),
	// yields (2 reasons x 3 paths + host, 7), traps (one per kind), memory
	// in use, budget and refusals (3).
	want := 6 + 7 + wasmtask.NumFailureKinds + 3
	if n := testutil.CollectAndCount(New(nil, fakeEng{})); n != want {
		t.Fatalf("engine only: %d metrics, want %d", n, want)
	}
}

// TestRealRuntime runs a known workload on one worker, waits until the
// worker has parked (it publishes its counters before parking), and
// compares the exact counts. Then a guest run checks the engine families
// against the guest's own counters.
func TestRealRuntime(t *testing.T) {
	ctx := context.Background()
	rt, err := scheduler.New(scheduler.WithWorkers(1))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := wasmtask.NewEngine(ctx, wasmtask.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(sctx); err != nil {
			t.Error(err)
		}
		if err := eng.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	reg := prometheus.NewPedanticRegistry()
	c, err := Register(reg, rt, eng)
	if err != nil {
		t.Fatal(err)
	}

	// One task from outside spawns 9 children locally, each yields once
	// through the deferred path and completes on its second poll.
	const children = 9
	parent := scheduler.SpawnFunc(rt, func(co *scheduler.Co) (int, error) {
		var hs []*scheduler.JoinHandle[int]
		for i := 0; i < children; i++ {
			yielded := false
			hs = append(hs, scheduler.Spawn(co, scheduler.PollFunc[int](func(cx *scheduler.Context) (int, bool) {
				if !yielded {
					yielded = true
					cx.YieldNow()
					return 0, false
				}
				return 1, true
			})))
		}
		sum := 0
		for _, h := range hs {
			v, err := scheduler.Join(co, h)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	})
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if sum, err := parent.Wait(wctx); err != nil || sum != children {
		t.Fatalf("parent: %d %v", sum, err)
	}
	// Quiesce: the worker publishes before it parks.
	waitFor(t, func() bool {
		s := rt.Stats()
		return s.Alive == 0 && s.Workers[0].DeferredReleases == children && s.Workers[0].LocalQueueDepth == 0
	})
	want := fmt.Sprintf(`
# HELP wasmsched_tasks_spawned_total Tasks ever spawned on the runtime.
# TYPE wasmsched_tasks_spawned_total counter
wasmsched_tasks_spawned_total %d
# HELP wasmsched_tasks_alive Spawned tasks not yet complete.
# TYPE wasmsched_tasks_alive gauge
wasmsched_tasks_alive 0
# HELP wasmsched_worker_deferred_yields_total Tasks the worker put in its deferred queue (deferred path, yield_now).
# TYPE wasmsched_worker_deferred_yields_total counter
wasmsched_worker_deferred_yields_total{worker="0"} %d
# HELP wasmsched_worker_deferred_releases_total Tasks the worker moved from its deferred queue back to running.
# TYPE wasmsched_worker_deferred_releases_total counter
wasmsched_worker_deferred_releases_total{worker="0"} %d
# HELP wasmsched_worker_migrations_total Polls by the worker of a task whose previous poll ran on another worker.
# TYPE wasmsched_worker_migrations_total counter
wasmsched_worker_migrations_total{worker="0"} 0
# HELP wasmsched_worker_stolen_tasks_total Tasks the worker took from peers' queues.
# TYPE wasmsched_worker_stolen_tasks_total counter
wasmsched_worker_stolen_tasks_total{worker="0"} 0
# HELP wasmsched_injector_depth Tasks waiting in the global injector queue.
# TYPE wasmsched_injector_depth gauge
wasmsched_injector_depth 0
# HELP wasmsched_workers Worker goroutines of the runtime.
# TYPE wasmsched_workers gauge
wasmsched_workers 1
`, 1+children, children, children)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"wasmsched_tasks_spawned_total", "wasmsched_tasks_alive", "wasmsched_worker_deferred_yields_total",
		"wasmsched_worker_deferred_releases_total", "wasmsched_worker_migrations_total",
		"wasmsched_worker_stolen_tasks_total", "wasmsched_injector_depth", "wasmsched_workers"); err != nil {
		t.Fatal(err)
	}
	// Polls: the parent at least twice (start, and after the joins), each
	// child exactly twice.
	if p := value(t, reg, "wasmsched_worker_polls_total", "worker", "0"); p < 2*children+2 {
		t.Fatalf("polls = %v, want >= %d", p, 2*children+2)
	}

	// Engine: two spin guests in fuel mode with a deferred yield at every
	// slice, then one that runs out of fuel. spin(n) costs exactly 14n+7.
	wasm, err := os.ReadFile("../testdata/spin.wasm")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := eng.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1_000_000
	var yields int64
	for i := 0; i < 2; i++ {
		r, err := wasmtask.Spawn(context.Background(), rt, mod, wasmtask.Options{Export: "spin", Args: []uint64{n},
			Interrupt: wasmtask.InterruptFuel, FuelSlice: 1_000_000}).Wait(wctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Stats.FuelUsed != 14*n+7 {
			t.Fatalf("fuel %d, want %d", r.Stats.FuelUsed, 14*n+7)
		}
		yields += r.Stats.Deferred
	}
	_, err = wasmtask.Spawn(context.Background(), rt, mod, wasmtask.Options{Export: "spin", Args: []uint64{n},
		Interrupt: wasmtask.InterruptFuel, FuelBudget: 1000}).Wait(wctx)
	var ge *wasmtask.Error
	if !errors.As(err, &ge) || !errors.Is(err, wasmtask.ErrOutOfFuel) {
		t.Fatalf("budget guest: %v", err)
	}
	if yields == 0 {
		t.Fatal("guests never yielded")
	}
	want = fmt.Sprintf(`
# HELP wasmsched_guest_fuel_consumed_total Fuel consumed by finished Wasm guests (Wasmtime's cost rule; running guests are counted when they finish).
# TYPE wasmsched_guest_fuel_consumed_total counter
wasmsched_guest_fuel_consumed_total %d
# HELP wasmsched_guests_finished_total Wasm guests finished, with any outcome.
# TYPE wasmsched_guests_finished_total counter
wasmsched_guests_finished_total 3
# HELP wasmsched_guests_running Wasm guests in a poll right now.
# TYPE wasmsched_guests_running gauge
wasmsched_guests_running 0
# HELP wasmsched_guest_yields_total Wasm guest suspensions by reason (epoch or fuel deadline, host: async host call) and re-entry path (immediate, deferred, custom: awaiting a future; host waits are custom).
# TYPE wasmsched_guest_yields_total counter
wasmsched_guest_yields_total{path="custom",reason="epoch"} 0
wasmsched_guest_yields_total{path="custom",reason="fuel"} 0
wasmsched_guest_yields_total{path="custom",reason="host"} 0
wasmsched_guest_yields_total{path="deferred",reason="epoch"} 0
wasmsched_guest_yields_total{path="deferred",reason="fuel"} %d
wasmsched_guest_yields_total{path="immediate",reason="epoch"} 0
wasmsched_guest_yields_total{path="immediate",reason="fuel"} 0
`, 2*(14*n+7)+ge.Stats.FuelUsed, yields)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"wasmsched_guest_fuel_consumed_total", "wasmsched_guests_finished_total", "wasmsched_guests_running",
		"wasmsched_guest_yields_total"); err != nil {
		t.Fatal(err)
	}
	if v := value(t, reg, "wasmsched_guest_traps_total", "kind", "out_of_fuel"); v != 1 {
		t.Fatalf("out_of_fuel traps = %v, want 1", v)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint on a live registry: %v %v", problems, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// value returns the one series of family name with label = val.
func value(t *testing.T, g prometheus.Gatherer, name, label, val string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == val {
					if m.Counter != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, val)
	return 0
}
