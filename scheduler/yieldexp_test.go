package scheduler_test

// The yield experiment of DESIGN.md ("Where we mean to beat Tokio") and
// issue 2, reproduced on this runtime: 2 workers; spinner tasks that spin
// 50 us and then yield through one path; a timer probe that sleeps 1 ms in
// a loop and records how late it wakes; an external waker, a goroutine
// outside the runtime that wakes a parked task every 1 ms and records the
// delay from its send to the task's poll. It prints the table of DESIGN.md
// (probe and external-wake percentiles, per-task iterations and Jain's
// fairness index, migrations per 1,000 yields) with Tokio's rows beside.
//
// It takes tens of seconds, so it runs only when asked:
//
//	WASMSCHED_YIELD_EXPERIMENT=1 go test -run TestYieldExperiment -v ./scheduler/
//
// Optional: WASMSCHED_YIELD_EXPERIMENT_RUNS (runs per case, default 3; each
// statistic is the median over runs, as Tokio's figures are medians of 5),
// WASMSCHED_YIELD_EXPERIMENT_SECONDS (measured seconds per run, default 2),
// WASMSCHED_YIELD_EXPERIMENT_MAX_FOREIGN (cores other processes may use
// during a run before it is repeated, default 0.15; see below),
// WASMSCHED_YIELD_EXPERIMENT_OUT (write the results as JSON there, a list
// of experiment.YieldResult, for internal/benchreport),
// WASMSCHED_YIELD_EXPERIMENT_CASES (comma-separated case names to run,
// default all), WASMSCHED_YIELD_EXPERIMENT_GLOBAL_QUEUE_INTERVAL (the
// runtime's GlobalQueueInterval; default: the runtime's, tuned).
//
// The instruments (timer probe, external waker, uneven placement, the
// measurement of other processes' CPU) and the statistics are
// internal/experiment's, shared with `wasmsched compare`. This file is an
// external test package (scheduler_test) because internal/experiment
// imports the scheduler.
//
// Nothing here asserts timing (DESIGN.md: speed is measured, not tested);
// the test fails only if a case cannot run (a task does not stop, the
// uneven placement cannot be arranged).
//
// GOMAXPROCS: the runtime's 2 workers are goroutines that never block while
// they have work, so on GOMAXPROCS=2 the external waker goroutine would get
// a P only when Go's sysmon preempts a worker (every 10 ms). Tokio's
// external sender is an OS thread that the kernel schedules beside the two
// workers. To measure our scheduler rather than Go's, the experiment runs
// with GOMAXPROCS = workers + 1 (still 2 cores); one extra case
// (4x-deferred-gmp2) shows GOMAXPROCS=2.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/internal/experiment"
	"github.com/wasmsched/wasmsched/scheduler"
)

const (
	yxWorkers    = 2
	yxSpin       = 50 * time.Microsecond
	yxProbeSleep = time.Millisecond
	yxSendEvery  = time.Millisecond
	yxWarmup     = 200 * time.Millisecond
)

// yxCase is one row of the experiment.
type yxCase struct {
	Name     string
	Spinners int                 // spinner tasks (0: idle runtime)
	Path     scheduler.YieldPath // their yield path
	LIFO     bool                // the runtime's LIFO slot
	Uneven   bool                // 3 spinners spawned on one worker, 1 on the other
	MaxProcs int                 // GOMAXPROCS during the case
	Tokio    string              // the experiment.TokioYields row this case compares with ("" if none)
	GoProbe  bool                // reference: the probe is a plain goroutine calling time.Sleep
}

func yxCases() []yxCase {
	gmp := yxWorkers + 1
	return []yxCase{
		{"idle", 0, scheduler.PathDeferred, true, false, gmp, "", false},
		{"idle-go-sleep", 0, scheduler.PathDeferred, true, false, gmp, "", true},
		{"4x-deferred", 4, scheduler.PathDeferred, true, false, gmp, "4 spinners, yield_now (deferred)", false},
		{"4x-immediate", 4, scheduler.PathImmediate, true, false, gmp, "4 spinners, self-wake (immediate)", false},
		{"1x-deferred", 1, scheduler.PathDeferred, true, false, gmp, "1 spinner, yield_now", false},
		{"1x-immediate", 1, scheduler.PathImmediate, true, false, gmp, "1 spinner, self-wake", false},
		{"uneven-deferred", 4, scheduler.PathDeferred, true, true, gmp, "", false},
		{"uneven-immediate", 4, scheduler.PathImmediate, true, true, gmp, "", false},
		{"4x-immediate-nolifo", 4, scheduler.PathImmediate, false, false, gmp, "4 spinners, self-wake (immediate)", false},
		{"1x-immediate-nolifo", 1, scheduler.PathImmediate, false, false, gmp, "1 spinner, self-wake", false},
		{"4x-deferred-gmp2", 4, scheduler.PathDeferred, true, false, yxWorkers, "4 spinners, yield_now (deferred)", false},
	}
}

func yxEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestYieldExperiment(t *testing.T) {
	if testing.Short() {
		t.Skip("yield experiment: takes tens of seconds of wall time; not run in -short mode")
	}
	if os.Getenv("WASMSCHED_YIELD_EXPERIMENT") != "1" {
		t.Skip("yield experiment: a measurement, not a test (tens of seconds); run with WASMSCHED_YIELD_EXPERIMENT=1 (scripts/benchmarks.sh does) so the normal test run stays quick")
	}
	runs := yxEnvInt("WASMSCHED_YIELD_EXPERIMENT_RUNS", 3)
	maxForeign := 0.15 // cores
	if v, err := strconv.ParseFloat(os.Getenv("WASMSCHED_YIELD_EXPERIMENT_MAX_FOREIGN"), 64); err == nil {
		maxForeign = v
	}
	secs := yxEnvInt("WASMSCHED_YIELD_EXPERIMENT_SECONDS", 2)
	only := map[string]bool{}
	for _, c := range strings.Split(os.Getenv("WASMSCHED_YIELD_EXPERIMENT_CASES"), ",") {
		if c = strings.TrimSpace(c); c != "" {
			only[c] = true
		}
	}
	var results []experiment.YieldResult
	for _, c := range yxCases() {
		if len(only) > 0 && !only[c.Name] {
			continue
		}
		// Other processes on the machine take cores from the workers and
		// inflate every latency. A run during which they used more than
		// maxForeign cores is repeated, up to 3 x runs attempts; the runs
		// kept are the least disturbed ones, and the report says how
		// disturbed they were and how many were set aside.
		var rs []yxRun
		for attempt := 0; attempt < 3*runs; attempt++ {
			run := yxRunCase(t, c, time.Duration(secs)*time.Second)
			rs = append(rs, run)
			quiet := 0
			for _, r := range rs {
				if r.foreign <= maxForeign {
					quiet++
				}
			}
			if quiet >= runs {
				break
			}
		}
		slices.SortStableFunc(rs, func(a, b yxRun) int { return cmp.Compare(a.foreign, b.foreign) })
		attempts := len(rs)
		rs = rs[:min(runs, len(rs))]
		res := yxSummarise(c, rs, float64(secs))
		res.Attempts = attempts
		results = append(results, res)
		t.Logf("%s done: %d runs kept of %d, other processes used up to %.2f cores", c.Name, len(rs), attempts, float64(res.ForeignMax))
	}
	t.Log("\n" + yxTable(results))
	if out := os.Getenv("WASMSCHED_YIELD_EXPERIMENT_OUT"); out != "" {
		b, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// yxRun is one run of one case.
type yxRun struct {
	probe, ext  experiment.Latency
	iters       []uint64
	migs        uint64 // spinner migrations (own count)
	yields      uint64 // spinner yields
	rtMigs      uint64 // runtime-wide migrations (Stats)
	rtDeferred  uint64 // runtime-wide deferred yields (Stats)
	placement   string
	spawnedOn   []int
	firstPolled []int
	foreign     float64 // cores used by other processes during the window (NaN if unknown)
}

// yxSpinner spins for yxSpin per poll and yields through path.
type yxSpinner struct {
	path    scheduler.YieldPath
	w       *experiment.Window
	iters   atomic.Uint64 // polls while measuring
	migs    atomic.Uint64 // polls on another worker than the previous one, while measuring
	last    int
	firstOn atomic.Int64
}

func (s *yxSpinner) Poll(cx *scheduler.Context) (struct{}, bool) {
	if s.w.Stopped() {
		return struct{}{}, true
	}
	id := cx.WorkerID()
	if s.last < 0 {
		s.firstOn.Store(int64(id))
	}
	m := s.w.Measuring()
	if m && s.last >= 0 && s.last != id {
		s.migs.Add(1)
	}
	s.last = id
	yxStall(yxSpin)
	if m {
		s.iters.Add(1)
	}
	cx.YieldVia(s.path)
	return struct{}{}, false
}

// yxStall busy-waits for d (a CPU-bound poll).
func yxStall(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

func yxWait[T any](t *testing.T, what string, wait func(context.Context) (T, error)) {
	t.Helper()
	if _, err := wait(context.Background()); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func yxRunCase(t *testing.T, c yxCase, dur time.Duration) yxRun {
	t.Helper()
	prev := runtime.GOMAXPROCS(c.MaxProcs)
	defer runtime.GOMAXPROCS(prev)

	opts := []scheduler.Option{scheduler.WithWorkers(yxWorkers), scheduler.WithLIFOSlot(c.LIFO)}
	if v, err := strconv.Atoi(os.Getenv("WASMSCHED_YIELD_EXPERIMENT_GLOBAL_QUEUE_INTERVAL")); err == nil {
		opts = append(opts, scheduler.WithGlobalQueueInterval(v))
	}
	rt, err := scheduler.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	var w experiment.Window

	// The external waker, then the timer probe: a stackful task sleeping
	// 1 ms in a loop (or, for reference, a goroutine calling time.Sleep).
	ext := experiment.StartExternalWaker(rt, &w, yxSendEvery)
	var probe *experiment.TimerProbe
	if c.GoProbe {
		probe = experiment.StartGoroutineProbe(&w, yxProbeSleep)
	} else {
		probe = experiment.StartTimerProbe(rt, &w, yxProbeSleep)
	}

	// The spinners.
	spinners := make([]*yxSpinner, c.Spinners)
	for i := range spinners {
		spinners[i] = &yxSpinner{path: c.Path, w: &w, last: -1}
		spinners[i].firstOn.Store(-1)
	}
	spinH := make([]*scheduler.JoinHandle[struct{}], c.Spinners)
	spawnedOn := make([]int, c.Spinners)
	if c.Uneven {
		// 3 spinners spawned from a task on one worker, 1 from a task on
		// the other, while both hold their workers.
		var mu sync.Mutex
		pl, err := experiment.PlaceUneven(t.Context(), rt, yxWorkers, c.Spinners, func(cx *scheduler.Context, i int) {
			h := scheduler.Spawn[struct{}](cx, spinners[i])
			mu.Lock()
			spinH[i] = h
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		copy(spawnedOn, pl.SpawnedOn)
	} else {
		for i, s := range spinners {
			spinH[i] = scheduler.Spawn[struct{}](rt, s)
			spawnedOn[i] = -1 // injector: wherever a worker takes it
		}
	}

	time.Sleep(yxWarmup)
	before := rt.Stats().Total()
	cpu0 := experiment.SampleCPU()
	w.Open()
	time.Sleep(dur)
	w.Close()
	var run yxRun
	run.foreign = experiment.ForeignCores(cpu0, experiment.SampleCPU())
	for _, s := range spinners {
		run.iters = append(run.iters, s.iters.Load())
		run.migs += s.migs.Load()
		run.yields += s.iters.Load()
		run.firstPolled = append(run.firstPolled, int(s.firstOn.Load()))
	}
	w.Stop()
	yxWait(t, "external waker", func(ctx context.Context) (struct{}, error) { return struct{}{}, ext.Wait(ctx) })
	yxWait(t, "timer probe", func(ctx context.Context) (struct{}, error) { return struct{}{}, probe.Wait(ctx) })
	for i, h := range spinH {
		yxWait(t, fmt.Sprintf("spinner %d", i), h.Wait)
	}
	if err := rt.Shutdown(t.Context()); err != nil { // publishes final stats
		t.Fatal(err)
	}
	after := rt.Stats().Total()
	// Stats are published at maintenance ticks, so the window's counts are
	// off by at most EventInterval polls per worker at each end.
	run.rtMigs = after.Migrations - before.Migrations
	run.rtDeferred = after.DeferredYields - before.DeferredYields
	// Counters after the window (the few polls between the window's close
	// and the spinners' exit) are included in the Stats figures; negligible.
	run.probe, run.ext = experiment.Summarise(probe.Late()), experiment.Summarise(ext.Delays())
	run.spawnedOn = spawnedOn
	if c.Uneven {
		run.placement = fmt.Sprintf("spawned on workers %v, first polled on %v", spawnedOn, run.firstPolled)
	}
	return run
}

// yxSummarise takes the median of each statistic over the runs.
func yxSummarise(c yxCase, rs []yxRun, secs float64) experiment.YieldResult {
	r := experiment.YieldResult{
		Case: c.Name, Spinners: c.Spinners, Path: c.Path.String(), LIFO: c.LIFO,
		Uneven: c.Uneven, GOMAXPROCS: c.MaxProcs, GoProbe: c.GoProbe, Tokio: c.Tokio, Runs: len(rs), Seconds: secs,
	}
	col := func(f func(yxRun) float64) experiment.Num {
		var xs []float64
		for _, run := range rs {
			xs = append(xs, f(run))
		}
		return experiment.Num(experiment.Median(xs))
	}
	pct := func(l experiment.Latency) [3]float64 {
		return [3]float64{float64(l.P50), float64(l.P99), float64(l.Max)}
	}
	for i := range 3 {
		r.Probe[i] = col(func(run yxRun) float64 { return pct(run.probe)[i] })
		r.Ext[i] = col(func(run yxRun) float64 { return pct(run.ext)[i] })
	}
	per1k := func(n, yields uint64) float64 {
		if yields == 0 {
			return math.NaN()
		}
		return 1000 * float64(n) / float64(yields)
	}
	r.MigPer1k = col(func(run yxRun) float64 { return per1k(run.migs, run.yields) })
	r.RtMigPer1k = col(func(run yxRun) float64 { return per1k(run.rtMigs, run.yields) })
	r.DeferredPct = col(func(run yxRun) float64 { return per1k(run.rtDeferred, run.yields) / 10 })
	r.Jain = col(func(run yxRun) float64 { return experiment.Jain(run.iters) })
	r.ForeignMedian = col(func(run yxRun) float64 { return run.foreign })
	r.ForeignMax = experiment.Num(math.NaN())
	for _, run := range rs {
		if !math.IsNaN(run.foreign) && (math.IsNaN(float64(r.ForeignMax)) || run.foreign > float64(r.ForeignMax)) {
			r.ForeignMax = experiment.Num(run.foreign)
		}
	}
	r.CPUShare = col(func(run yxRun) float64 {
		if c.Spinners == 0 {
			return math.NaN()
		}
		return float64(run.yields) * float64(yxSpin) / (secs * float64(time.Second) * float64(min(c.Spinners, yxWorkers)))
	})
	// Show the iterations and placement of the run whose Jain is the median
	// (the nearest one, for an even number of runs).
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b yxRun) int { return cmp.Compare(experiment.Jain(a.iters), experiment.Jain(b.iters)) })
	mid := sorted[(len(sorted)-1)/2]
	r.Iters, r.Placement = mid.iters, mid.placement
	r.ProbeN, r.ExtN = mid.probe.N, mid.ext.N
	return r
}

func yxTable(rs []experiment.YieldResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %-30s %-30s %-8s %-7s %-6s %-8s %s\n", "case", "probe late p50/p99/max µs (n)", "ext wake p50/p99/max µs (n)", "mig/1k", "Jain", "share", "foreign", "iterations per spinner")
	for _, r := range rs {
		fmt.Fprintf(&b, "%-22s %-30s %-30s %-8.2f %-7.4f %-6.2f %-8.2f %v %s\n", r.Case,
			fmt.Sprintf("%.0f/%.0f/%.0f (%d)", r.Probe[0], r.Probe[1], r.Probe[2], r.ProbeN),
			fmt.Sprintf("%.0f/%.0f/%.0f (%d)", r.Ext[0], r.Ext[1], r.Ext[2], r.ExtN),
			r.MigPer1k, r.Jain, r.CPUShare, r.ForeignMax, r.Iters, r.Placement)
	}
	b.WriteString("Tokio 1.24 (DESIGN.md):\n")
	for _, t := range experiment.TokioYields {
		fmt.Fprintf(&b, "%-36s probe %.2f/%.2f ms  ext %.0f/%.0f µs  mig/1k %.2f\n", t.Row, t.ProbeP50, t.ProbeP99, t.ExtP50, t.ExtP99, t.Migrations)
	}
	return b.String()
}
