package wasmtask

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmsched/wasmsched/scheduler"
)

// plainReactor is testdata/reactor.wasm on plain wazero (no
// instrumentation, no executor): the baseline of the Instance benchmarks,
// measured in the same run. Its host imports are no-ops.
func plainReactor(b *testing.B) (api.Module, func()) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	_, err := r.NewHostModuleBuilder("test").
		NewFunctionBuilder().WithFunc(func(a, b int64) int64 { return a + b }).Export("add_async").
		NewFunctionBuilder().WithFunc(func() {}).Export("mark").
		Instantiate(ctx)
	if err != nil {
		b.Fatal(err)
	}
	mod, err := r.InstantiateWithConfig(ctx, readTestdata(b, "reactor.wasm"), wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		b.Fatal(err)
	}
	return mod, func() { r.Close(ctx) }
}

// spinMillisecond is about 1 ms of spin (14 fuel, ~1 ns per iteration).
const spinMillisecond = 1_000_000

// BenchmarkInstanceCall: the fixed cost of a call on an Instance (a task
// on the executor, the instance's turn, re-arming fuel and deadlines,
// stats) against wazero's own api.Function.Call on a plain instance of the
// same module, and the same on an export that computes for about 1 ms,
// where the ratio is the instrumentation's overhead.
func BenchmarkInstanceCall(b *testing.B) {
	for _, tc := range []struct {
		name   string
		export string
		args   []uint64
	}{{"trivial", "next", nil}, {"spin-1ms", "spin", []uint64{spinMillisecond}}} {
		b.Run("wasmsched-"+tc.name, func(b *testing.B) {
			re := newReactorEnvB(b, 2)
			inst, err := NewInstance(context.Background(), re.rt, re.mod, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer inst.Close(context.Background())
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				if _, err := inst.Call(ctx, tc.export, tc.args...); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("wazero-"+tc.name, func(b *testing.B) {
			mod, closeRT := plainReactor(b)
			defer closeRT()
			fn := mod.ExportedFunction(tc.export)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				if _, err := fn.Call(ctx, tc.args...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTaskRoundTrip is the executor's share of an Instance call,
// measured beside it: spawn a task from a goroutine and wait for it, for
// a stackful task (a coroutine, as a guest's call is) and a poll-based one.
func BenchmarkTaskRoundTrip(b *testing.B) {
	b.Run("stackful", func(b *testing.B) {
		rt := newRuntimeB(b)
		ctx := context.Background()
		for range b.N {
			if _, err := scheduler.SpawnFunc(rt, func(*scheduler.Co) (int, error) { return 0, nil }).Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("poll", func(b *testing.B) {
		rt := newRuntimeB(b)
		ctx := context.Background()
		for range b.N {
			f := scheduler.PollFunc[int](func(*scheduler.Context) (int, bool) { return 0, true })
			if _, err := scheduler.Spawn[int](rt, f).Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func newRuntimeB(b *testing.B) *scheduler.Runtime {
	rt, err := scheduler.New(scheduler.WithWorkers(2))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Shutdown(context.Background()) })
	return rt
}

// BenchmarkPoolThroughput: calls of a 100 µs export from 8 goroutines
// through a Pool of 2 instances on a 2-worker runtime, against 2 plain
// goroutines each owning a plain wazero instance and taking calls from a
// shared counter. ns/op is per call.
func BenchmarkPoolThroughput(b *testing.B) {
	const n = spinMillisecond / 10
	b.Run("wasmsched-pool", func(b *testing.B) {
		re := newReactorEnvB(b, 2)
		pool, err := NewPool(re.rt, re.mod, Options{}, PoolConfig{Max: 2})
		if err != nil {
			b.Fatal(err)
		}
		defer pool.Close(context.Background())
		var left atomic.Int64
		left.Store(int64(b.N))
		b.ResetTimer()
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					if _, err := pool.Call(context.Background(), "spin", n); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
	b.Run("goroutines-own-instance", func(b *testing.B) {
		var left atomic.Int64
		left.Store(int64(b.N))
		var wg sync.WaitGroup
		mods := make([]api.Module, runtime.GOMAXPROCS(0))
		for i := range mods {
			mod, closeRT := plainReactor(b)
			defer closeRT()
			mods[i] = mod
		}
		b.ResetTimer()
		for _, mod := range mods {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fn := mod.ExportedFunction("spin")
				for left.Add(-1) >= 0 {
					if _, err := fn.Call(context.Background(), n); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

// newReactorEnvB is newReactorEnv for benchmarks.
func newReactorEnvB(b *testing.B, workers int) *reactorEnv {
	b.Helper()
	e := newEnv(b, "", EngineConfig{HostModules: []HostModule{{Name: "test", Functions: []HostFunction{
		{Name: "add_async", Params: []api.ValueType{api.ValueTypeI64, api.ValueTypeI64}, Results: []api.ValueType{api.ValueTypeI64},
			Fn: func(_ *HostCall, p []uint64) ([]uint64, error) { return []uint64{p[0] + p[1]}, nil }},
		{Name: "mark", Fn: func(*HostCall, []uint64) ([]uint64, error) { return nil, nil }},
	}}}}, scheduler.WithWorkers(workers))
	mod, err := e.eng.Compile(context.Background(), readTestdata(b, "reactor.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	return &reactorEnv{rt: e.rt, eng: e.eng, mod: mod}
}
