package experiment

import (
	"context"
	"encoding/json"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wasmsched/wasmsched/scheduler"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestJain(t *testing.T) {
	for _, tc := range []struct {
		xs   []int64
		want float64
	}{
		{[]int64{5, 5, 5, 5}, 1},
		{[]int64{1, 0, 0, 0}, 0.25},
		{[]int64{3, 1}, 16.0 / 20},
	} {
		if got := Jain(tc.xs); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("Jain(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
	if got := Jain([]uint64{3, 1}); math.Abs(got-0.8) > 1e-12 {
		t.Errorf("Jain of uint64 {3, 1} = %v", got)
	}
	if !math.IsNaN(Jain([]int64(nil))) || !math.IsNaN(Jain([]int64{0, 0})) || !math.IsNaN(Jain([]uint64{})) {
		t.Error("Jain of nothing should be NaN")
	}
}

func TestQuantile(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if Quantile(s, 0) != 1 || Quantile(s, 0.5) != 6 || Quantile(s, 1) != 10 || Quantile(s, 0.99) != 10 {
		t.Errorf("quantiles of 1..10: %v %v %v", Quantile(s, 0), Quantile(s, 0.5), Quantile(s, 1))
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("quantile of nothing should be NaN")
	}
}

func TestMedian(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{nan, 5, nan}, 5},
		{[]float64{7}, 7},
	} {
		in := slices.Clone(tc.xs)
		if got := Median(in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
		if !slices.EqualFunc(in, tc.xs, func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }) {
			t.Errorf("Median modified its input: %v", in)
		}
	}
	if !math.IsNaN(Median(nil)) || !math.IsNaN(Median([]float64{nan})) {
		t.Error("median of nothing should be NaN")
	}
}

func TestSummarise(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Microsecond)
	}
	l := Summarise(ds)
	if l.N != 100 || l.P50 != 51 || l.P99 != 99 || l.Max != 100 || len(l.Samples) != 100 || l.Samples[0] != 1 {
		t.Errorf("Summarise(1..100 µs) = n %d p50 %v p99 %v max %v", l.N, l.P50, l.P99, l.Max)
	}
	if ds[0] != 100*time.Microsecond {
		t.Error("Summarise sorted its input")
	}
	e := Summarise(nil)
	b, err := json.Marshal(e)
	if err != nil || string(b) != `{"n":0,"p50_us":null,"p99_us":null,"max_us":null}` {
		t.Errorf("empty latency as JSON: %s, %v", b, err)
	}
}

func TestNumJSON(t *testing.T) {
	b, err := json.Marshal([]Num{1.5, Num(math.NaN()), Num(math.Inf(1))})
	if err != nil || string(b) != "[1.5,null,null]" {
		t.Fatalf("marshal: %s, %v", b, err)
	}
	var back []Num
	if err := json.Unmarshal(b, &back); err != nil || back[0] != 1.5 || !math.IsNaN(float64(back[1])) {
		t.Fatalf("unmarshal: %v, %v", back, err)
	}
}

// TestYieldResultJSON: the experiment's JSON reads back as the same
// result, and a statistic that is null or absent reads as NaN.
func TestYieldResultJSON(t *testing.T) {
	nan := Num(math.NaN())
	in := []YieldResult{{
		Case: "4x-deferred", Spinners: 4, Path: "deferred", LIFO: true, GOMAXPROCS: 3, Tokio: TokioYields[0].Row,
		Runs: 3, Seconds: 2, Probe: [3]Num{1, 2, 3}, Ext: [3]Num{4, 5, 6}, ProbeN: 10, ExtN: 11,
		Iters: []uint64{1, 2}, Jain: 0.9, MigPer1k: 0.5, RtMigPer1k: 1, DeferredPct: 100, CPUShare: 0.99,
		ForeignMax: 0.1, ForeignMedian: 0.05, Attempts: 4,
	}, {
		Case: "idle", Probe: [3]Num{1, 2, 3}, Ext: [3]Num{4, 5, 6}, Jain: nan, MigPer1k: nan, RtMigPer1k: nan,
		DeferredPct: nan, CPUShare: nan, ForeignMax: nan, ForeignMedian: nan,
	}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"case":`, `"probe_late_us":[1,2,3]`, `"ext_wake_us":`, `"jain":null`, `"migrations_per_1k":`,
		`"rt_migrations_per_1k":`, `"deferred_yields_pct":`, `"spinner_cpu_share":`, `"foreign_cores_max":`, `"foreign_cores_median":`, `"attempts":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
	var out []YieldResult
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(out)
	if string(b2) != string(b) {
		t.Errorf("round trip changed the JSON:\n%s\n%s", b, b2)
	}
	var sparse []YieldResult
	if err := json.Unmarshal([]byte(`[{"case":"idle","probe_late_us":[90,null,300]}]`), &sparse); err != nil {
		t.Fatal(err)
	}
	r := sparse[0]
	if r.Probe[0] != 90 || !math.IsNaN(float64(r.Probe[1])) || !math.IsNaN(float64(r.Ext[0])) || !math.IsNaN(float64(r.Jain)) || !math.IsNaN(float64(r.MigPer1k)) {
		t.Errorf("null or absent statistics should read as NaN: %+v", r)
	}
}

// TestForeignCores: over a window, other processes cannot have kept more
// cores busy than the machine has, to within what /proc/stat's resolution
// allows. /proc/stat counts each CPU's time in ticks of 1/USER_HZ (10 ms),
// so each sample may lag a CPU's true time by up to a tick, and the
// difference of two samples may be off by a tick per CPU either way: over
// 20 ms on 2 CPUs that alone reads up to 3 cores (2.75 seen under load).
// The window is long enough that the slack is small: 2 ticks per CPU.
func TestForeignCores(t *testing.T) {
	const window = 250 * time.Millisecond
	a := SampleCPU()
	time.Sleep(window)
	b := SampleCPU()
	f := ForeignCores(a, b)
	cpus := float64(runtime.NumCPU())
	bound := cpus + cpus*2*0.010/window.Seconds() // the window is at least this long
	switch {
	case runtime.GOOS == "linux" && (math.IsNaN(f) || f < 0 || f > bound):
		t.Errorf("ForeignCores = %v on Linux, want 0..%.2f (%d CPUs, 2 ticks of slack per CPU)", f, bound, runtime.NumCPU())
	case runtime.GOOS != "linux" && !math.IsNaN(f):
		t.Errorf("ForeignCores = %v, want NaN outside Linux", f)
	}
	if !math.IsNaN(ForeignCores(b, a)) {
		t.Error("ForeignCores over no time should be NaN")
	}
}

func newRuntime(t *testing.T, workers int) *scheduler.Runtime {
	t.Helper()
	rt, err := scheduler.New(scheduler.WithWorkers(workers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return rt
}

// TestInstruments: the probe and the external waker record only inside
// the window, and end after Stop.
func TestInstruments(t *testing.T) {
	rt := newRuntime(t, 2)
	var w Window
	probe := StartTimerProbe(rt, &w, time.Millisecond)
	goProbe := StartGoroutineProbe(&w, time.Millisecond)
	ext := StartExternalWaker(rt, &w, time.Millisecond)
	time.Sleep(20 * time.Millisecond) // before the window: not recorded
	w.Open()
	if !w.Measuring() || w.Over() {
		t.Fatal("window not open")
	}
	time.Sleep(60 * time.Millisecond)
	w.Close()
	if w.Measuring() || !w.Over() || w.Stopped() {
		t.Fatal("window not closed")
	}
	time.Sleep(20 * time.Millisecond) // after the window: not recorded
	w.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, wait := range map[string]func(context.Context) error{"probe": probe.Wait, "goroutine probe": goProbe.Wait, "external waker": ext.Wait} {
		if err := wait(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// 60 ms of 1 ms periods: each instrument has samples, and (even on a
	// busy machine) no more than the window holds.
	for name, ds := range map[string][]time.Duration{"probe": probe.Late(), "goroutine probe": goProbe.Late(), "external wake": ext.Delays()} {
		if len(ds) == 0 || len(ds) > 61 {
			t.Errorf("%s: %d samples in a 60 ms window of 1 ms periods", name, len(ds))
		}
		for _, d := range ds {
			if d < 0 {
				t.Errorf("%s: negative delay %v", name, d)
			}
		}
	}
}

func TestPlaceUneven(t *testing.T) {
	for _, tc := range []struct {
		workers, n int
		want       []int // per worker, up to which worker is first
	}{
		{2, 4, []int{3, 1}},
		{2, 8, []int{6, 2}},
		{3, 8, []int{6, 1, 1}},
		{1, 3, []int{3}},
	} {
		rt := newRuntime(t, tc.workers)
		var mu sync.Mutex
		var spawned []int
		var hs []*scheduler.JoinHandle[struct{}]
		pl, err := PlaceUneven(context.Background(), rt, tc.workers, tc.n, func(cx *scheduler.Context, i int) {
			h := scheduler.Spawn[struct{}](cx, scheduler.PollFunc[struct{}](func(*scheduler.Context) (struct{}, bool) { return struct{}{}, true }))
			mu.Lock()
			spawned, hs = append(spawned, i), append(hs, h)
			mu.Unlock()
		})
		if err != nil {
			t.Fatalf("%d workers, %d tasks: %v", tc.workers, tc.n, err)
		}
		for _, h := range hs {
			if _, err := h.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(spawned)
		if len(spawned) != tc.n || spawned[0] != 0 || spawned[tc.n-1] != tc.n-1 {
			t.Errorf("%d workers: spawned %v, want each of 0..%d once", tc.workers, spawned, tc.n-1)
		}
		// Task 0 is the first placer's; its worker has the big share.
		per := slices.Clone(pl.PerWorker)
		first := pl.SpawnedOn[0]
		if per[first] != tc.want[0] {
			t.Errorf("%d workers, %d tasks: %v on the first placer's worker %d, want %d", tc.workers, tc.n, per, first, tc.want[0])
		}
		per = slices.Delete(per, first, first+1)
		slices.Sort(per)
		rest := slices.Clone(tc.want[1:])
		slices.Sort(rest)
		if !slices.Equal(per, rest) {
			t.Errorf("%d workers, %d tasks: placement %v, want %v", tc.workers, tc.n, pl.PerWorker, tc.want)
		}
	}
}
