package scheduler

// Benchmarks: Tokio's benches/rt_multi_threaded.rs workloads, ported with
// the parameters of issue 2, each with the same workload written with plain
// goroutines beside it so that the ratio to Go's own scheduler comes out of
// one run:
//
//	BenchmarkSpawnManyLocal/wasmsched     BenchmarkSpawnManyLocal/goroutines
//	BenchmarkSpawnManyRemoteIdle/...      BenchmarkSpawnManyRemoteBusy1/...
//	BenchmarkYieldMany/...                BenchmarkPingPong/...
//	BenchmarkChainedSpawn/...             BenchmarkYieldRoundTrip/...
//
// Every runtime has 2 workers and the LIFO slot on unless the
// sub-benchmark's name says otherwise (-nolifo). Besides ns/op (one
// iteration of the workload), each reports the unit of Tokio's column in
// the issue with b.ReportMetric: ns/task, ns/yield, ns/ping or ns/spawn.
// Benchmarks assert no timing; scripts/benchmarks.sh turns their output into
// BENCHMARKS.md. TestBenchWorkloads runs every workload body a few times at
// a small scale so that they are checked (and raced) by the normal tests.
//
// Identifiers here are prefixed bench so that they cannot collide with the
// helpers of the package's other test files.

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Parameters of Tokio's rt_multi_threaded.rs, as quoted in issue 2.
const (
	benchWorkers   = 2
	benchNumSpawn  = 10_000 // spawn_many_*
	benchYieldTask = 200    // yield_many: tasks
	benchNumYield  = 1_000  // yield_many: yields per task
	benchNumPings  = 1_000  // ping_pong
	benchChainLen  = 1_000  // chained_spawn
	benchStallDur  = 10 * time.Microsecond
)

type benchUnit = struct{}

var benchReady = benchUnit{}

// newBenchRuntime starts a 2-worker runtime that is shut down when tb ends.
func newBenchRuntime(tb testing.TB, opts ...Option) *Runtime {
	tb.Helper()
	rt, err := New(append([]Option{WithWorkers(benchWorkers)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
	})
	return rt
}

// benchStall busy-waits for d, like Tokio's stall().
func benchStall(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// benchRun runs one iteration of a workload per b.Loop and reports the
// time per unit of work (units per iteration, in Tokio's unit).
func benchRun(b *testing.B, units int, unit string, iter func()) {
	b.ReportAllocs()
	for b.Loop() {
		iter()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(units), unit)
}

// ---------------------------------------------------------------------------
// spawn_many_local: from inside a task, spawn n empty tasks; the last to
// finish signals.

func BenchmarkSpawnManyLocal(b *testing.B) {
	b.Run("wasmsched", func(b *testing.B) {
		benchRun(b, benchNumSpawn, "ns/task", wsSpawnManyLocal(b, benchNumSpawn))
	})
	b.Run("goroutines", func(b *testing.B) {
		benchRun(b, benchNumSpawn, "ns/task", goSpawnManyLocal(benchNumSpawn))
	})
}

func wsSpawnManyLocal(tb testing.TB, n int, opts ...Option) func() {
	rt := newBenchRuntime(tb, opts...)
	var rem atomic.Int64
	done := make(chan benchUnit, 1)
	leaf := PollFunc[benchUnit](func(*Context) (benchUnit, bool) {
		if rem.Add(-1) == 0 {
			done <- benchReady
		}
		return benchReady, true
	})
	root := PollFunc[benchUnit](func(cx *Context) (benchUnit, bool) {
		for range n {
			Spawn[benchUnit](cx, leaf)
		}
		return benchReady, true
	})
	return func() {
		rem.Store(int64(n))
		Spawn[benchUnit](rt, root)
		<-done
	}
}

func goSpawnManyLocal(n int) func() {
	var rem atomic.Int64
	done := make(chan benchUnit, 1)
	leaf := func() {
		if rem.Add(-1) == 0 {
			done <- benchReady
		}
	}
	return func() {
		rem.Store(int64(n))
		go func() {
			for range n {
				go leaf()
			}
		}()
		<-done
	}
}

// ---------------------------------------------------------------------------
// spawn_many_remote_idle / _busy1: from outside the runtime, spawn n empty
// tasks, then await every handle. busy1 first starts 2 x workers background
// tasks that loop { yield_now; stall 10 us }.

func BenchmarkSpawnManyRemoteIdle(b *testing.B) {
	b.Run("wasmsched", func(b *testing.B) {
		benchRun(b, benchNumSpawn, "ns/task", wsSpawnManyRemote(b, benchNumSpawn, 0))
	})
	b.Run("goroutines", func(b *testing.B) {
		benchRun(b, benchNumSpawn, "ns/task", goSpawnManyRemote(b, benchNumSpawn, 0))
	})
}

// How fast the spawns get through depends on how much of the CPU the
// background tasks are given while remote work waits, which each system
// decides differently, so busy1 also reports their stalls per 1,000 spawned
// tasks: fewer stalls per task is a lower ns/task bought by giving the
// yielding tasks less.
func BenchmarkSpawnManyRemoteBusy1(b *testing.B) {
	b.Run("wasmsched", func(b *testing.B) {
		iter := wsSpawnManyRemote(b, benchNumSpawn, 2*benchWorkers)
		benchBusyStalls.Store(0)
		benchRun(b, benchNumSpawn, "ns/task", iter)
		reportBusyStalls(b, benchNumSpawn)
	})
	b.Run("goroutines", func(b *testing.B) {
		iter := goSpawnManyRemote(b, benchNumSpawn, 2*benchWorkers)
		benchBusyStalls.Store(0)
		benchRun(b, benchNumSpawn, "ns/task", iter)
		reportBusyStalls(b, benchNumSpawn)
	})
}

// benchBusyStalls counts the background tasks' stalls in busy1 (both
// systems), from the start of the timed loop.
var benchBusyStalls atomic.Int64

func reportBusyStalls(b *testing.B, units int) {
	b.ReportMetric(float64(benchBusyStalls.Load())*1000/float64(b.N)/float64(units), "stalls/ktask")
}

// spawn_many_remote_busy2 (Tokio's definition): workers chains of busy
// tasks, each stalling 10 us and then spawning its successor from inside
// the runtime (so the successor takes the LIFO slot, ahead of anything
// queued), while 1,000 empty tasks are spawned from outside and awaited.
// It measures how soon remote spawns get a turn among local work that
// never yields.

const benchNumSpawnBusy2 = 1_000

func BenchmarkSpawnManyRemoteBusy2(b *testing.B) {
	b.Run("wasmsched", func(b *testing.B) {
		benchRun(b, benchNumSpawnBusy2, "ns/task", wsSpawnManyRemoteBusy2(b, benchNumSpawnBusy2))
	})
	b.Run("goroutines", func(b *testing.B) {
		benchRun(b, benchNumSpawnBusy2, "ns/task", goSpawnManyRemoteBusy2(b, benchNumSpawnBusy2))
	})
}

func wsSpawnManyRemoteBusy2(tb testing.TB, n int, opts ...Option) func() {
	rt := newBenchRuntime(tb, opts...)
	var stop atomic.Bool
	var live atomic.Int64 // chain links spawned and not yet ended
	var link PollFunc[benchUnit]
	link = func(cx *Context) (benchUnit, bool) {
		if !stop.Load() {
			benchStall(benchStallDur)
			live.Add(1)
			Spawn[benchUnit](cx, link)
		}
		live.Add(-1)
		return benchReady, true
	}
	for range benchWorkers {
		live.Add(1)
		Spawn[benchUnit](rt, link)
	}
	// Registered after the runtime's cleanup, so it runs first.
	tb.Cleanup(func() {
		stop.Store(true)
		for live.Load() > 0 {
			time.Sleep(100 * time.Microsecond)
		}
	})
	return wsRemoteSpawner(tb, rt, n)
}

func goSpawnManyRemoteBusy2(tb testing.TB, n int) func() {
	var stop atomic.Bool
	var chains sync.WaitGroup
	var link func()
	link = func() {
		if stop.Load() {
			chains.Done()
			return
		}
		benchStall(benchStallDur)
		go link()
	}
	for range benchWorkers {
		chains.Add(1)
		go link()
	}
	tb.Cleanup(func() {
		stop.Store(true)
		chains.Wait()
	})
	return goSpawnManyRemote(tb, n, 0)
}

func wsSpawnManyRemote(tb testing.TB, n, busy int, opts ...Option) func() {
	rt := newBenchRuntime(tb, opts...)
	if busy > 0 {
		var stop atomic.Bool
		bg := make([]*JoinHandle[benchUnit], 0, busy)
		loop := PollFunc[benchUnit](func(cx *Context) (benchUnit, bool) {
			if stop.Load() {
				return benchReady, true
			}
			benchStall(benchStallDur)
			benchBusyStalls.Add(1)
			cx.YieldNow()
			return benchReady, false
		})
		for range busy {
			bg = append(bg, Spawn[benchUnit](rt, loop))
		}
		// Registered after the runtime's cleanup, so it runs first.
		tb.Cleanup(func() {
			stop.Store(true)
			for _, h := range bg {
				benchWait(tb, h)
			}
		})
	}
	return wsRemoteSpawner(tb, rt, n)
}

// wsRemoteSpawner is one iteration of spawn_many_remote: spawn n empty
// tasks from outside rt, then await every handle.
func wsRemoteSpawner(tb testing.TB, rt *Runtime, n int) func() {
	leaf := PollFunc[benchUnit](func(*Context) (benchUnit, bool) { return benchReady, true })
	handles := make([]*JoinHandle[benchUnit], 0, n)
	return func() {
		for range n {
			handles = append(handles, Spawn[benchUnit](rt, leaf))
		}
		for _, h := range handles {
			benchWait(tb, h)
		}
		clear(handles)
		handles = handles[:0]
	}
}

func goSpawnManyRemote(tb testing.TB, n, busy int) func() {
	if busy > 0 {
		var stop atomic.Bool
		var bg sync.WaitGroup
		for range busy {
			bg.Go(func() {
				for !stop.Load() {
					runtime.Gosched()
					benchStall(benchStallDur)
					benchBusyStalls.Add(1)
				}
			})
		}
		tb.Cleanup(func() {
			stop.Store(true)
			bg.Wait()
		})
	}
	leaf := func() {}
	return func() {
		var wg sync.WaitGroup
		for range n {
			wg.Go(leaf)
		}
		wg.Wait()
	}
}

func benchWait[T any](tb testing.TB, h *JoinHandle[T]) {
	if _, err := h.Wait(context.Background()); err != nil {
		tb.Fatalf("task %d: %v", h.ID(), err)
	}
}

// ---------------------------------------------------------------------------
// yield_many: tasks spawned from outside, each yields yields times (Tokio's
// yield_now: the deferred path), then signals.

func BenchmarkYieldMany(b *testing.B) {
	units := benchYieldTask * benchNumYield
	b.Run("wasmsched", func(b *testing.B) {
		benchRun(b, units, "ns/yield", wsYieldMany(b, benchYieldTask, benchNumYield, PathDeferred))
	})
	b.Run("goroutines", func(b *testing.B) {
		benchRun(b, units, "ns/yield", goYieldMany(benchYieldTask, benchNumYield))
	})
	b.Run("wasmsched-immediate", func(b *testing.B) {
		benchRun(b, units, "ns/yield", wsYieldMany(b, benchYieldTask, benchNumYield, PathImmediate))
	})
}

func wsYieldMany(tb testing.TB, tasks, yields int, path YieldPath, opts ...Option) func() {
	rt := newBenchRuntime(tb, opts...)
	done := make(chan benchUnit, tasks)
	return func() {
		for range tasks {
			left := yields
			Spawn[benchUnit](rt, PollFunc[benchUnit](func(cx *Context) (benchUnit, bool) {
				if left == 0 {
					done <- benchReady
					return benchReady, true
				}
				left--
				cx.YieldVia(path)
				return benchReady, false
			}))
		}
		for range tasks {
			<-done
		}
	}
}

func goYieldMany(tasks, yields int) func() {
	done := make(chan benchUnit, tasks)
	return func() {
		for range tasks {
			go func() {
				for range yields {
					runtime.Gosched()
				}
				done <- benchReady
			}()
		}
		for range tasks {
			<-done
		}
	}
}

// ---------------------------------------------------------------------------
// ping_pong: one task (spawned from outside) spawns pings "ping" tasks; each
// spawns a "pong" task and does a oneshot round trip with it; the last ping
// to finish signals.

func BenchmarkPingPong(b *testing.B) {
	b.Run("wasmsched", func(b *testing.B) {
		benchRun(b, benchNumPings, "ns/ping", wsPingPong(b, benchNumPings))
	})
	b.Run("goroutines", func(b *testing.B) {
		benchRun(b, benchNumPings, "ns/ping", goPingPong(benchNumPings))
	})
}

// benchOneshot is a single-value channel between two tasks: Tokio's
// oneshot, reduced to what ping_pong needs.
type benchOneshot struct {
	mu    sync.Mutex
	sent  bool
	waker Waker
}

// send completes the oneshot from a task and wakes the receiver on cx's
// worker.
func (o *benchOneshot) send(cx *Context) {
	o.mu.Lock()
	o.sent = true
	w := o.waker
	o.waker = Waker{}
	o.mu.Unlock()
	w.WakeFrom(cx)
}

// recv reports whether the value has been sent; if not, the running task
// is registered to be woken by send.
func (o *benchOneshot) recv(cx *Context) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sent {
		return true
	}
	o.waker = cx.Waker()
	return false
}

type benchPing struct {
	rem      *atomic.Int64
	done     chan benchUnit
	started  bool
	toPong   benchOneshot
	fromPong benchOneshot
}

func (p *benchPing) Poll(cx *Context) (benchUnit, bool) {
	if !p.started {
		p.started = true
		Spawn[benchUnit](cx, &benchPong{in: &p.toPong, out: &p.fromPong})
		p.toPong.send(cx)
	}
	if !p.fromPong.recv(cx) {
		return benchReady, false
	}
	if p.rem.Add(-1) == 0 {
		p.done <- benchReady
	}
	return benchReady, true
}

type benchPong struct{ in, out *benchOneshot }

func (p *benchPong) Poll(cx *Context) (benchUnit, bool) {
	if !p.in.recv(cx) {
		return benchReady, false
	}
	p.out.send(cx)
	return benchReady, true
}

func wsPingPong(tb testing.TB, pings int, opts ...Option) func() {
	rt := newBenchRuntime(tb, opts...)
	var rem atomic.Int64
	done := make(chan benchUnit, 1)
	root := PollFunc[benchUnit](func(cx *Context) (benchUnit, bool) {
		for range pings {
			Spawn[benchUnit](cx, &benchPing{rem: &rem, done: done})
		}
		return benchReady, true
	})
	return func() {
		rem.Store(int64(pings))
		Spawn[benchUnit](rt, root)
		<-done
	}
}

func goPingPong(pings int) func() {
	var rem atomic.Int64
	done := make(chan benchUnit, 1)
	ping := func() {
		toPong, fromPong := make(chan benchUnit, 1), make(chan benchUnit, 1)
		go func() {
			<-toPong
			fromPong <- benchReady
		}()
		toPong <- benchReady
		<-fromPong
		if rem.Add(-1) == 0 {
			done <- benchReady
		}
	}
	return func() {
		rem.Store(int64(pings))
		go func() {
			for range pings {
				go ping()
			}
		}()
		<-done
	}
}

// ---------------------------------------------------------------------------
// chained_spawn: a chain of n tasks, each spawning the next; the last
// signals. The first is spawned from outside.

func BenchmarkChainedSpawn(b *testing.B) {
	b.Run("wasmsched", func(b *testing.B) {
		benchRun(b, benchChainLen, "ns/spawn", wsChainedSpawn(b, benchChainLen))
	})
	b.Run("goroutines", func(b *testing.B) {
		benchRun(b, benchChainLen, "ns/spawn", goChainedSpawn(benchChainLen))
	})
	b.Run("wasmsched-nolifo", func(b *testing.B) {
		benchRun(b, benchChainLen, "ns/spawn", wsChainedSpawn(b, benchChainLen, WithLIFOSlot(false)))
	})
}

func wsChainedSpawn(tb testing.TB, n int, opts ...Option) func() {
	rt := newBenchRuntime(tb, opts...)
	done := make(chan benchUnit, 1)
	var link func(cx *Context, left int)
	link = func(cx *Context, left int) {
		if left == 0 {
			done <- benchReady
			return
		}
		Spawn[benchUnit](cx, PollFunc[benchUnit](func(cx *Context) (benchUnit, bool) {
			link(cx, left-1)
			return benchReady, true
		}))
	}
	root := PollFunc[benchUnit](func(cx *Context) (benchUnit, bool) {
		link(cx, n)
		return benchReady, true
	})
	return func() {
		Spawn[benchUnit](rt, root)
		<-done
	}
}

func goChainedSpawn(n int) func() {
	done := make(chan benchUnit, 1)
	var link func(left int)
	link = func(left int) {
		if left == 0 {
			done <- benchReady
			return
		}
		go link(left - 1)
	}
	return func() {
		go link(n)
		<-done
	}
}

// ---------------------------------------------------------------------------
// Yield round trip: one task yields b.N times on an otherwise idle 2-worker
// runtime; ns/yield is the cost of one yield and the re-poll that follows,
// per path, for a poll function and for a stackful task (co.Yield, which
// adds a coroutine switch each way). goroutines/Gosched is
// runtime.Gosched in a loop.

func BenchmarkYieldRoundTrip(b *testing.B) {
	paths := []YieldPath{PathImmediate, PathDeferred}
	for _, path := range paths {
		b.Run("pollfn-"+path.String(), func(b *testing.B) {
			benchYieldRoundTrip(b, func(rt *Runtime, n int) *JoinHandle[benchUnit] {
				return Spawn[benchUnit](rt, wsYielder(n, path))
			})
		})
	}
	for _, path := range paths {
		b.Run("stackful-"+path.String(), func(b *testing.B) {
			benchYieldRoundTrip(b, func(rt *Runtime, n int) *JoinHandle[benchUnit] {
				return SpawnFunc[benchUnit](rt, func(co *Co) (benchUnit, error) {
					for range n {
						co.YieldVia(path)
					}
					return benchReady, nil
				})
			})
		})
	}
	b.Run("pollfn-immediate-nolifo", func(b *testing.B) {
		benchYieldRoundTrip(b, func(rt *Runtime, n int) *JoinHandle[benchUnit] {
			return Spawn[benchUnit](rt, wsYielder(n, PathImmediate))
		}, WithLIFOSlot(false))
	})
	b.Run("goroutines-Gosched", func(b *testing.B) {
		b.ReportAllocs()
		done := make(chan benchUnit)
		b.ResetTimer()
		go func() {
			for range b.N {
				runtime.Gosched()
			}
			close(done)
		}()
		<-done
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/yield")
	})
}

func wsYielder(n int, path YieldPath) Future[benchUnit] {
	return PollFunc[benchUnit](func(cx *Context) (benchUnit, bool) {
		if n == 0 {
			return benchReady, true
		}
		n--
		cx.YieldVia(path)
		return benchReady, false
	})
}

func benchYieldRoundTrip(b *testing.B, spawn func(rt *Runtime, n int) *JoinHandle[benchUnit], opts ...Option) {
	rt := newBenchRuntime(b, opts...)
	b.ReportAllocs()
	b.ResetTimer()
	benchWait(b, spawn(rt, b.N))
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/yield")
}

// ---------------------------------------------------------------------------

// TestBenchWorkloads runs every benchmark body a few times at a small
// scale, so that the workloads are exercised (and raced) by the ordinary
// test run and a broken one fails here rather than hanging a benchmark.
func TestBenchWorkloads(t *testing.T) {
	const n = 300
	bodies := map[string]func(t *testing.T) func(){
		"SpawnManyLocal":              func(t *testing.T) func() { return wsSpawnManyLocal(t, n) },
		"SpawnManyLocal/goroutines":   func(t *testing.T) func() { return goSpawnManyLocal(n) },
		"SpawnManyRemoteIdle":         func(t *testing.T) func() { return wsSpawnManyRemote(t, n, 0) },
		"SpawnManyRemoteIdle/gor":     func(t *testing.T) func() { return goSpawnManyRemote(t, n, 0) },
		"SpawnManyRemoteBusy1":        func(t *testing.T) func() { return wsSpawnManyRemote(t, n, 2*benchWorkers) },
		"SpawnManyRemoteBusy1/gor":    func(t *testing.T) func() { return goSpawnManyRemote(t, n, 2*benchWorkers) },
		"SpawnManyRemoteBusy2":        func(t *testing.T) func() { return wsSpawnManyRemoteBusy2(t, n) },
		"SpawnManyRemoteBusy2/gor":    func(t *testing.T) func() { return goSpawnManyRemoteBusy2(t, n) },
		"YieldMany/deferred":          func(t *testing.T) func() { return wsYieldMany(t, 20, 50, PathDeferred) },
		"YieldMany/immediate":         func(t *testing.T) func() { return wsYieldMany(t, 20, 50, PathImmediate) },
		"YieldMany/goroutines":        func(t *testing.T) func() { return goYieldMany(20, 50) },
		"PingPong":                    func(t *testing.T) func() { return wsPingPong(t, n) },
		"PingPong/goroutines":         func(t *testing.T) func() { return goPingPong(n) },
		"ChainedSpawn":                func(t *testing.T) func() { return wsChainedSpawn(t, n) },
		"ChainedSpawn/nolifo":         func(t *testing.T) func() { return wsChainedSpawn(t, n, WithLIFOSlot(false)) },
		"ChainedSpawn/goroutines":     func(t *testing.T) func() { return goChainedSpawn(n) },
		"SpawnManyLocal/nolifo":       func(t *testing.T) func() { return wsSpawnManyLocal(t, n, WithLIFOSlot(false)) },
		"PingPong/nolifo":             func(t *testing.T) func() { return wsPingPong(t, n, WithLIFOSlot(false)) },
		"SpawnManyRemoteIdle/1worker": func(t *testing.T) func() { return wsSpawnManyRemote(t, n, 0, WithWorkers(1)) },
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			// A lost wake-up hangs here; go test's -timeout reports it.
			iter := body(t)
			for range 3 {
				iter()
			}
		})
	}
	t.Run("YieldRoundTrip", func(t *testing.T) {
		for _, lifo := range []bool{true, false} {
			rt := newBenchRuntime(t, WithLIFOSlot(lifo))
			for _, path := range []YieldPath{PathImmediate, PathDeferred} {
				benchWait(t, Spawn[benchUnit](rt, wsYielder(100, path)))
				benchWait(t, SpawnFunc[benchUnit](rt, func(co *Co) (benchUnit, error) {
					for range 100 {
						co.YieldVia(path)
					}
					return benchReady, nil
				}))
			}
		}
	})
}
