package wasmtask

import (
	"context"
	"iter"
	"runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmsched/wasmsched/scheduler"
)

// BenchmarkSuspendResume measures one suspend + resume round trip of a
// guest: fuel mode with a 1-fuel slice makes every loop iteration of spin
// (14 operators, ~1 ns) call the check and yield through the path. The
// baselines beside it are a goroutine channel round trip and an iter.Pull
// switch pair, measured in the same run.
//
// A guest alone on its worker is polled again in place after each yield
// (worker.Worker.RepollSelf). The -shared rows run two guests on the one
// worker: on the deferred path every yield is then queued and resumes the
// other guest; on the immediate path with the LIFO slot a guest is
// repolled in place for its LIFO streak (MaxLIFOPollsPerTick polls), then
// queued behind the other.
func BenchmarkSuspendResume(b *testing.B) {
	for _, tc := range []struct {
		name   string
		pol    Policy
		lifo   bool
		guests int
	}{
		{"deferred", DeferredYield(), true, 1},
		{"immediate-lifo", ImmediateYield(), true, 1},
		{"immediate-nolifo", ImmediateYield(), false, 1},
		{"deferred-shared", DeferredYield(), true, 2},
		{"immediate-lifo-shared", ImmediateYield(), true, 2},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b, "spin.wasm", EngineConfig{}, scheduler.WithWorkers(1), scheduler.WithLIFOSlot(tc.lifo))
			n := (b.N + tc.guests - 1) / tc.guests
			b.ResetTimer()
			var hs []*scheduler.JoinHandle[Result]
			for range tc.guests {
				hs = append(hs, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{uint64(n)},
					Interrupt: InterruptFuel, FuelSlice: 1, Policy: tc.pol}))
			}
			yields := int64(0)
			for _, h := range hs {
				r, err := waitGuest(b, h)
				if err != nil {
					b.Fatal(err)
				}
				if r.Stats.FuelYields < int64(n) {
					b.Fatalf("%d yields for %d iterations", r.Stats.FuelYields, n)
				}
				yields += r.Stats.FuelYields
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(yields), "ns/yield")
		})
	}
	b.Run("baseline-chan-roundtrip", func(b *testing.B) {
		ping, pong := make(chan struct{}), make(chan struct{})
		go func() {
			for range ping {
				pong <- struct{}{}
			}
		}()
		for i := 0; i < b.N; i++ {
			ping <- struct{}{}
			<-pong
		}
		close(ping)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/yield")
	})
	// The floor: what any suspension of a guest from a host call costs
	// on wazero, without a scheduler. floor-hostcall is one exit from Wasm
	// to a Go host function per iteration; floor-hostcall-switch adds an
	// iter.Pull switch pair inside that host function (the guest suspends
	// there and the benchmark loop resumes it).
	b.Run("floor-hostcall", func(b *testing.B) {
		call := hostLoop(b, func() {})
		call(uint64(b.N))
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/yield")
	})
	b.Run("floor-hostcall-switch", func(b *testing.B) {
		var yield func(struct{}) bool
		call := hostLoop(b, func() { yield(struct{}{}) })
		next, stop := iter.Pull(func(y func(struct{}) bool) {
			yield = y
			call(uint64(b.N))
		})
		defer stop()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			next()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/yield")
	})
	b.Run("baseline-iter-pull", func(b *testing.B) {
		next, stop := iter.Pull(func(yield func(int) bool) {
			for i := 0; yield(i); i++ {
			}
		})
		for i := 0; i < b.N; i++ {
			next()
		}
		stop()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/yield")
	})
}

// BenchmarkThroughput runs 4 CPU-bound guests (spin, 20 M iterations each)
// on a 2-worker runtime in epoch mode (1 ms deadline, deferred yields) and
// the same uninstrumented guests on 4 plain goroutines: the ratio is the
// cost of preemptibility (instrumentation plus scheduling).
func BenchmarkThroughput(b *testing.B) {
	const guests, n = 4, 20_000_000
	b.Run("wasmsched", func(b *testing.B) {
		e := newEnv(b, "spin.wasm", EngineConfig{}, scheduler.WithWorkers(2))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			var hs []*scheduler.JoinHandle[Result]
			for g := 0; g < guests; g++ {
				hs = append(hs, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{n}}))
			}
			for _, h := range hs {
				if _, err := waitGuest(b, h); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("goroutines", func(b *testing.B) {
		ctx := context.Background()
		r := wazero.NewRuntime(ctx)
		defer r.Close(ctx)
		c, err := r.CompileModule(ctx, readGuest(b, "spin.wasm"))
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			spinOnGoroutines(b, r, c, guests, n)
		}
	})
}

// BenchmarkSuspendedGuestMemory suspends 10,000 guests at once (spin.wasm:
// no linear memory) and reports the Go heap and stack growth per guest.
func BenchmarkSuspendedGuestMemory(b *testing.B) {
	const count = 10_000
	for i := 0; i < b.N; i++ {
		func() {
			e := newEnv(b, "spin.wasm", EngineConfig{}, scheduler.WithWorkers(2))
			before := memInUse()
			var hs []*scheduler.JoinHandle[Result]
			for g := 0; g < count; g++ {
				hs = append(hs, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{1 << 62},
					Interrupt: InterruptFuel, FuelSlice: 1000, Policy: SleepPolicy(time.Hour)}))
			}
			for e.eng.Stats().Suspended < count {
				time.Sleep(time.Millisecond)
			}
			after := memInUse()
			b.ReportMetric(float64(after-before)/count, "B/guest")
			for _, h := range hs {
				h.Abort()
			}
			for _, h := range hs {
				waitGuest(b, h)
			}
		}()
	}
}

func memInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// hostLoop instantiates testdata/hostloop.wasm on plain wazero with tick
// as its env.tick, and returns a function that runs loop(n): n calls of
// tick from the guest.
func hostLoop(b *testing.B, tick func()) func(n uint64) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	b.Cleanup(func() { r.Close(ctx) })
	_, err := r.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) { tick() }), nil, nil).
		Export("tick").Instantiate(ctx)
	if err != nil {
		b.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, readTestdata(b, "hostloop.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	fn := mod.ExportedFunction("loop")
	return func(n uint64) {
		if _, err := fn.Call(ctx, n); err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkEpochPoll measures what one poll of the epoch costs a guest
// that has nothing to do there (no deadline reached, no timer due, no
// remote work): spin in epoch mode with a PollInterval of 1 fuel, less
// than an iteration costs, so every iteration calls the check, against the same spin in
// fuel mode with a slice it never spends (no check at all), measured in
// the same run. epoch-poll's ns/poll is (its time − the baseline's) per
// poll; floor-hostcall (BenchmarkSuspendResume) is what any exit to a Go
// host function costs. epoch-skipped-poll is the same at a PollInterval of
// 1,000 fuel (the shortest with which guests skip polls: pollskip.go),
// where the guest answers most polls itself: its ns/poll is per poll,
// skipped or not, and skipped-fraction says how many it skipped.
func BenchmarkEpochPoll(b *testing.B) {
	run := func(b *testing.B, cfg EngineConfig, opts Options) GuestStats {
		e := newEnv(b, "spin.wasm", cfg, scheduler.WithWorkers(1))
		opts.Export, opts.Args = "spin", []uint64{uint64(b.N)}
		b.ResetTimer()
		r, err := waitGuest(b, Spawn(context.Background(), e.rt, e.mod, opts))
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		return r.Stats
	}
	var base float64
	b.Run("baseline-fuel-no-check", func(b *testing.B) {
		st := run(b, EngineConfig{}, Options{Interrupt: InterruptFuel, FuelSlice: 1 << 60})
		if st.Checks > 1 {
			b.Fatalf("%d checks, want at most 1", st.Checks)
		}
		base = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(base, "ns/iteration")
	})
	b.Run("epoch-poll", func(b *testing.B) {
		st := run(b, EngineConfig{PollInterval: 1}, Options{Interrupt: InterruptEpoch, EpochDeadline: 1 << 30})
		if st.Checks < int64(b.N) {
			b.Fatalf("%d checks for %d iterations", st.Checks, b.N)
		}
		per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(per, "ns/iteration")
		if base > 0 {
			b.ReportMetric((per-base)*float64(b.N)/float64(st.Checks), "ns/poll")
		}
	})
	b.Run("epoch-skipped-poll", func(b *testing.B) {
		st := run(b, EngineConfig{PollInterval: minSkipRefill}, Options{Interrupt: InterruptEpoch, EpochDeadline: 1 << 30})
		polls := st.Checks + st.SkippedChecks
		if b.N >= 1_000_000 && st.SkippedChecks == 0 {
			b.Fatalf("no poll skipped in %d", polls)
		}
		per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(per, "ns/iteration")
		if base > 0 && polls > 0 {
			b.ReportMetric((per-base)*float64(b.N)/float64(polls), "ns/poll")
			b.ReportMetric(float64(st.SkippedChecks)/float64(polls), "skipped-fraction")
		}
	})
}
