package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/internal/experiment"
)

const sampleBench = `goos: linux
goarch: amd64
pkg: github.com/wasmsched/wasmsched/scheduler
cpu: AMD EPYC
BenchmarkSpawnManyLocal/wasmsched-2         	     740	   2459195 ns/op	       245.9 ns/task	 1443701 B/op	   30075 allocs/op
BenchmarkSpawnManyLocal/wasmsched-2         	     740	   2459195 ns/op	       300.0 ns/task	 1443701 B/op	   30075 allocs/op
BenchmarkSpawnManyLocal/wasmsched-2         	     740	   2459195 ns/op	       250.0 ns/task	 1443701 B/op	   30075 allocs/op
BenchmarkSpawnManyLocal/goroutines-2        	     440	   2696492 ns/op	       269.6 ns/task	   11705 B/op	      23 allocs/op
BenchmarkChainedSpawn/wasmsched-2           	    5222	    216973 ns/op	       400.0 ns/spawn	  160136 B/op	    4003 allocs/op
BenchmarkYieldRoundTrip/pollfn-immediate-2  	31101194	        38.38 ns/op	        38.38 ns/yield	       0 B/op	       0 allocs/op
PASS
`

func TestParseBench(t *testing.T) {
	bs, err := parseBench(strings.NewReader(sampleBench))
	if err != nil {
		t.Fatal(err)
	}
	if bs.header["cpu"] != "AMD EPYC" {
		t.Errorf("cpu header = %q", bs.header["cpu"])
	}
	s, ok := bs.get("SpawnManyLocal/wasmsched", "ns/task")
	if !ok || s.n != 3 || s.median != 250 || s.min != 245.9 || s.max != 300 {
		t.Errorf("SpawnManyLocal/wasmsched ns/task = %+v, %v", s, ok)
	}
	if bs.procs["SpawnManyLocal/wasmsched"] != 2 {
		t.Errorf("procs = %d", bs.procs["SpawnManyLocal/wasmsched"])
	}
	if _, ok := bs.get("YieldRoundTrip/pollfn-immediate", "ns/yield"); !ok {
		t.Error("YieldRoundTrip not parsed")
	}
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	bench := filepath.Join(dir, "bench.txt")
	part := filepath.Join(dir, "BENCHMARKS.part.md")
	yield := filepath.Join(dir, "y.json")
	out := filepath.Join(dir, "B.md")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(bench, []byte(sampleBench), 0o644))
	must(os.WriteFile(part, []byte("## Instrumenter\n\nhello part\n"), 0o644))
	must(os.WriteFile(yield, []byte(`[{"case":"4x-deferred","spinners":4,"path":"deferred","lifo":true,
		"tokio_row":"4 spinners, yield_now (deferred)","runs":1,"seconds":1,
		"probe_late_us":[10,90,100],"ext_wake_us":[8,40,60],"iterations":[1,1,1,1],
		"jain":1,"migrations_per_1k":0.5},
		{"case":"4x-immediate","spinners":4,"path":"immediate","lifo":true,
		"tokio_row":"4 spinners, self-wake (immediate)","runs":1,"seconds":1,
		"probe_late_us":[700,2000,3000],"ext_wake_us":[20,140,200],"iterations":[1,1,1,1],
		"jain":1,"migrations_per_1k":0},
		{"case":"idle","probe_late_us":[90,200,300],"ext_wake_us":[1,2,3],"jain":null}]`), 0o644))
	must(run(config{bench: bench, yield: yield, parts: []string{part}, out: out, command: "x",
		hostPhase: "before the benchmarks 80.1 ns, after them 301 ns",
		now:       time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)}))
	b, err := os.ReadFile(out)
	must(err)
	md := string(b)
	for _, want := range []string{
		"| spawn_many_local | ns/task | 250 ±20% | 270 ±0% | 0.93x | 346 | 0.72x | met | 477 | 0.52x | met |",
		"| chained_spawn | ns/spawn | 400 ±0% | — | — | 203 | 1.97x | **missed** | 272 | 1.47x | (no target) |",
		"| spawn_many_remote_busy2 | ns/task | not run | | | — | | | 75000 | | |",
		"| 4 spinners, self-wake (immediate) | 1962 / 2045 | 56.9 / 134 | 0.01 | ",
		"| 4x-deferred: external wake no worse than Tokio's yield_now row (p50 ≤ 9.00, p99 ≤ 50.0 µs) | 8.00 / 40.0 µs | met |",
		"| 4x-deferred: migrations < 10 per 1,000 yields (Tokio: 324) | 0.50 | met |",
		"| 4x-deferred: external wake no worse than Tokio 1.53.1's row (p50 ≤ 8.20, p99 ≤ 51.7 µs; issue 12) | 8.00 / 40.0 µs | met |",
		"| 4x-immediate: external wake no worse than Tokio 1.53.1's row (p50 ≤ 56.9, p99 ≤ 134 µs; issue 12) | 20.0 / 140 µs | **missed** |",
		"hello part",
		"<!-- END parts -->",
		"near about 80–150 ns, far about 270–450 ns) | before the benchmarks 80.1 ns, after them 301 ns |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

// TestReportReadsExperimentJSON: the report reads what the yield
// experiment writes (experiment.YieldResult marshalled), NaN as "—".
func TestReportReadsExperimentJSON(t *testing.T) {
	dir := t.TempDir()
	bench := filepath.Join(dir, "bench.txt")
	yield := filepath.Join(dir, "y.json")
	out := filepath.Join(dir, "B.md")
	nan := experiment.Num(math.NaN())
	rows := []experiment.YieldResult{{
		Case: "uneven-deferred", Spinners: 4, Path: "deferred", LIFO: true, Uneven: true, GOMAXPROCS: 3, Runs: 3, Seconds: 2,
		Probe: [3]experiment.Num{12, 34, 56}, Ext: [3]experiment.Num{7, 8, 9}, ProbeN: 900, ExtN: 800,
		Iters: []uint64{10, 11, 12, 13}, Jain: 0.99, MigPer1k: 0, RtMigPer1k: nan, DeferredPct: 100, CPUShare: 0.97,
		ForeignMax: 0.05, ForeignMedian: 0.02, Attempts: 4, Placement: "spawned on workers [0 0 0 1], first polled on [0 0 0 1]",
	}}
	b, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{bench: []byte(sampleBench), yield: b} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := run(config{bench: bench, yield: yield, out: out, command: "x", now: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| uneven-deferred | deferred | on | 12.0 / 34.0 / 56.0 | 900 | 7.00 / 8.00 / 9.00 | 800 | 10 / 11 / 12 / 13 | 0.9900 | 0.00 | — | 0.97 | 0.05 | 3 / 4 |",
		"uneven-deferred: spawned on workers [0 0 0 1], first polled on [0 0 0 1].",
		"| uneven-deferred (3 + 1 spinners): Jain's index ≥ 0.98 | 0.9900 | met |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
