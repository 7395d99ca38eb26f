package wasmtask

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmsched/wasmsched/scheduler"
)

// TestPollSkipping: in epoch mode on wazero's compiler the guest answers
// most of its polls itself (GuestStats.SkippedChecks), and the fuel stays
// exact and the budget exact; on the interpreter it skips none.
func TestPollSkipping(t *testing.T) {
	const n = 3_000_000
	want := int64(14*n + 7) // spin(n): see testdata/spin.wat
	for _, interp := range []bool{false, true} {
		e := newEnv(t, "spin.wasm", EngineConfig{Interpreter: interp}, scheduler.WithWorkers(1))
		for _, interrupt := range []Interrupt{InterruptEpoch, InterruptBoth} {
			r, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{n},
				Interrupt: interrupt, FuelSlice: 1_000_000}))
			if err != nil {
				t.Fatal(err)
			}
			s := r.Stats
			if s.FuelUsed != want {
				t.Fatalf("interpreter %v, interrupt %v: fuel used %d, want %d", interp, interrupt, s.FuelUsed, want)
			}
			polls := want / DefaultPollInterval
			switch {
			case interp && s.SkippedChecks != 0:
				t.Errorf("interpreter: %d polls skipped, want none", s.SkippedChecks)
			case interp:
			case s.SkippedChecks == 0 || s.Checks > polls/2:
				t.Errorf("compiler, interrupt %v: %d checks and %d skipped polls of about %d polls: the guest skipped too few",
					interrupt, s.Checks, s.SkippedChecks, polls)
			}
			// Each skipped poll refilled a whole interval, which the
			// guest then spent, but for the last.
			if s.SkippedChecks*DefaultPollInterval > want+DefaultPollInterval {
				t.Errorf("interpreter %v, interrupt %v: %d skipped polls refilled more than the %d fuel used",
					interp, interrupt, s.SkippedChecks, want)
			}
			if interrupt == InterruptBoth && (s.FuelYields < want/1_000_000-1 || s.FuelYields > want/1_000_000) {
				t.Errorf("interpreter %v: %d fuel yields, want about %d: a skipped poll passed a slice's end", interp, s.FuelYields, want/1_000_000)
			}
		}
		// The budget is enforced exactly: skips never pass it.
		if _, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{n}, FuelBudget: want})); err != nil {
			t.Fatalf("interpreter %v: budget = cost: %v", interp, err)
		}
		_, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{n}, FuelBudget: want - 1}))
		var ge *Error
		if !errors.Is(err, ErrOutOfFuel) || !errors.As(err, &ge) || ge.Stats.FuelUsed != want-1+1 && ge.Stats.FuelUsed < want-1 {
			t.Fatalf("interpreter %v: budget = cost-1: %v", interp, err)
		}
	}
}

// TestPollSkippingSeesRemoteWork: a task pushed to the injector while a
// guest skips its polls is seen at the guest's next poll, not after its
// skips (up to maxEstimatedChecks poll intervals). hostloop.wasm calls
// env.tick in a loop; once the guest has skips left, tick spawns a task
// through the runtime (so through the injector), which sets the guest's
// attention word. The guest's policy, on the deferred path, must then give
// way within one poll interval of fuel. A second case spawns from the
// policy itself, inside the check at an epoch deadline, before the check
// arms its next skips.
func TestPollSkippingSeesRemoteWork(t *testing.T) {
	var (
		mu      sync.Mutex
		armed   atomic.Bool // spawn at the next tick that finds skips left
		spawnAt int64       // fuel at the spawn, -1 before
		gaveWay int64       // fuel at the first policy call after the spawn, -1 before
		spawned *scheduler.JoinHandle[struct{}]
		rt      *scheduler.Runtime
	)
	empty := scheduler.PollFunc[struct{}](func(*scheduler.Context) (struct{}, bool) { return struct{}{}, true })
	spawn := func(fuel int64) {
		spawnAt = fuel
		spawned = scheduler.Spawn(rt, empty)
	}
	env := WazeroHostModule{Name: "env", Define: func(b wazero.HostModuleBuilder) wazero.HostModuleBuilder {
		return b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, _ []uint64) {
			if !armed.Load() {
				return
			}
			hc, _ := HostCallFrom(ctx, m)
			if hc.g.skips.armed > 0 && hc.g.skips.skip.Get() > 0 {
				mu.Lock()
				armed.Store(false)
				spawn(hc.FuelConsumed())
				mu.Unlock()
			}
		}), nil, nil).Export("tick")
	}}
	e := newEnv(t, "", EngineConfig{WazeroHostModules: []WazeroHostModule{env}}, scheduler.WithWorkers(1))
	rt = e.rt
	mod, err := e.eng.Compile(context.Background(), readTestdata(t, "hostloop.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fromPolicy := range []bool{false, true} {
		for round := range 3 {
			// Spawning from a tick, deadlines far apart keep the
			// policy out of the way; from the policy, the first comes
			// soon.
			deadline := uint64(50)
			if fromPolicy {
				deadline = 1
			}
			armed.Store(!fromPolicy)
			spawnAt, gaveWay, spawned = -1, -1, nil
			pol := func(info GuestInfo) Action {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case fromPolicy && spawnAt < 0:
					spawn(info.FuelUsed)
					return Continue(0)
				case spawnAt >= 0 && gaveWay < 0:
					gaveWay = info.FuelUsed
				}
				return Yield(0, scheduler.PathDeferred)
			}
			r, err := waitGuest(t, Spawn(context.Background(), e.rt, mod, Options{Export: "loop", Args: []uint64{2_000_000}, Policy: pol, EpochDeadline: deadline}))
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			if spawned == nil {
				mu.Unlock()
				t.Fatalf("from policy %v, round %d: nothing spawned (stats %+v)", fromPolicy, round, r.Stats)
			}
			if _, err := spawned.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			// One poll interval, plus an iteration's overshoot.
			if d := gaveWay - spawnAt; gaveWay < 0 || d > DefaultPollInterval+20 {
				t.Errorf("from policy %v, round %d: spawned at %d fuel, gave way at %d: want within one poll interval (%d); stats %+v",
					fromPolicy, round, spawnAt, gaveWay, DefaultPollInterval, r.Stats)
			}
			mu.Unlock()
		}
	}
}

// TestPollSkippingSeesAbort: Abort, which no skipped poll looks at, sets
// the attention word of the task's worker, so a guest aborted while it has
// skips left stops at its next poll, not after its skips. The guest aborts
// itself from a host function (its handle's Abort, as from any goroutine).
func TestPollSkippingSeesAbort(t *testing.T) {
	var (
		handle  atomic.Pointer[scheduler.JoinHandle[Result]]
		abortAt atomic.Int64
	)
	env := WazeroHostModule{Name: "env", Define: func(b wazero.HostModuleBuilder) wazero.HostModuleBuilder {
		return b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, _ []uint64) {
			h := handle.Load()
			if h == nil || abortAt.Load() >= 0 {
				return
			}
			hc, _ := HostCallFrom(ctx, m)
			if hc.g.skips.armed > 0 && hc.g.skips.skip.Get() > 0 {
				abortAt.Store(hc.FuelConsumed())
				h.Abort()
			}
		}), nil, nil).Export("tick")
	}}
	e := newEnv(t, "", EngineConfig{WazeroHostModules: []WazeroHostModule{env}}, scheduler.WithWorkers(1))
	mod, err := e.eng.Compile(context.Background(), readTestdata(t, "hostloop.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		abortAt.Store(-1)
		handle.Store(nil)
		h := Spawn(context.Background(), e.rt, mod, Options{Export: "loop", Args: []uint64{2_000_000}, EpochDeadline: 50})
		handle.Store(h)
		_, err := waitGuest(t, h)
		var ge *Error
		if !errors.Is(err, scheduler.ErrAborted) || !errors.As(err, &ge) {
			t.Fatalf("round %d: err = %v, want the abort (the guest never had skips left?)", round, err)
		}
		// One poll interval, plus an iteration's overshoot.
		if at := abortAt.Load(); at < 0 || ge.Stats.FuelUsed-at > DefaultPollInterval+20 {
			t.Fatalf("round %d: aborted at %d fuel, stopped at %d: want within one poll interval (%d)",
				round, at, ge.Stats.FuelUsed, DefaultPollInterval)
		}
	}
}
