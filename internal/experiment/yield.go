package experiment

import (
	"encoding/json"
	"math"
)

// YieldResult is one case of the yield experiment (TestYieldExperiment in
// scheduler/yieldexp_test.go): each statistic is the median over the runs
// kept. The experiment writes a JSON array of them
// (WASMSCHED_YIELD_EXPERIMENT_OUT) and the report generator
// (internal/benchreport) reads it back: this type is that JSON.
type YieldResult struct {
	Case       string  `json:"case"`
	Spinners   int     `json:"spinners"`
	Path       string  `json:"path"`
	LIFO       bool    `json:"lifo"`
	Uneven     bool    `json:"uneven"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	GoProbe    bool    `json:"go_probe,omitempty"`
	Tokio      string  `json:"tokio_row,omitempty"` // the TokioYields row this case compares with
	Runs       int     `json:"runs"`
	Seconds    float64 `json:"seconds"` // measured seconds per run

	Probe       [3]Num   `json:"probe_late_us"`        // p50, p99, max: how late sleep(1 ms) woke, µs
	Ext         [3]Num   `json:"ext_wake_us"`          // p50, p99, max: external send -> poll, µs
	ProbeN      int      `json:"probe_samples"`        // in the median run
	ExtN        int      `json:"ext_samples"`          // in the median run
	Iters       []uint64 `json:"iterations"`           // per spinner, in the run with median Jain
	Jain        Num      `json:"jain"`                 // Jain's index over per-spinner iterations
	MigPer1k    Num      `json:"migrations_per_1k"`    // spinner migrations per 1,000 spinner yields
	RtMigPer1k  Num      `json:"rt_migrations_per_1k"` // Stats().Total().Migrations (all tasks) per 1,000 spinner yields
	DeferredPct Num      `json:"deferred_yields_pct"`  // Stats DeferredYields / spinner yields, % (sanity check)
	Placement   string   `json:"placement,omitempty"`  // uneven: where spinners were spawned and first polled
	// CPUShare is spinner iterations x 50 µs over the time the spinners
	// could have spun (seconds x min(spinners, workers)): about 1 on a quiet
	// machine, lower when other processes take the cores (then every
	// latency figure of the row is inflated by that).
	CPUShare Num `json:"spinner_cpu_share"`
	// ForeignMax is the most cores other processes used during a kept run
	// (median over kept runs is ForeignMedian); Attempts is how many runs
	// were made to keep Runs of them (the least disturbed).
	ForeignMax    Num `json:"foreign_cores_max"`
	ForeignMedian Num `json:"foreign_cores_median"`
	Attempts      int `json:"attempts"`
}

// UnmarshalJSON reads a YieldResult; a statistic that is null or absent
// reads as NaN (unknown), not 0.
func (r *YieldResult) UnmarshalJSON(b []byte) error {
	type plain YieldResult // without this method
	nan := Num(math.NaN())
	p := plain{
		Probe: [3]Num{nan, nan, nan}, Ext: [3]Num{nan, nan, nan}, Jain: nan, MigPer1k: nan, RtMigPer1k: nan,
		DeferredPct: nan, CPUShare: nan, ForeignMax: nan, ForeignMedian: nan,
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*r = YieldResult(p)
	return nil
}

// TokioYield is one row of DESIGN.md's table "Where we mean to beat
// Tokio": Tokio 1.24, 2 workers, this project's 2-core machine, tasks that
// spin 50 µs and then yield; medians of 5 runs.
type TokioYield struct {
	Row                string  // the row's name; YieldResult.Tokio refers to it
	ProbeP50, ProbeP99 float64 // ms late (Tokio's timer has 1 ms resolution)
	ExtP50, ExtP99     float64 // external wake, µs
	Migrations         float64 // per 1,000 yields
}

// TokioYields153 are issue 12's figures for Tokio 1.53.1, the newest, on
// the same machine and setup (its rows name TokioYields' rows); measured
// once, not by this code. Issue 12 gives the 4-spinner cases only.
var TokioYields153 = []TokioYield{
	{"4 spinners, yield_now (deferred)", 0.991, 1.081, 8.2, 51.7, 323},
	{"4 spinners, self-wake (immediate)", 1.962, 2.045, 56.9, 134, 0.01},
}

// TokioYields is DESIGN.md's table, measured once (not by this code).
var TokioYields = []TokioYield{
	{"4 spinners, yield_now (deferred)", 1.0, 1.08, 9, 50, 324},
	{"4 spinners, self-wake (immediate)", 2.0, 2.2, 922, 2722, 0.01},
	{"1 spinner, yield_now", 1.0, 1.08, 10, 23, 0.00},
	{"1 spinner, self-wake", 1.0, 1.06, 11, 40, 3.2},
}
