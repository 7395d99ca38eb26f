// Package experiment is the measuring kit of wasmsched's scheduling
// experiments: the yield experiment of DESIGN.md (TestYieldExperiment in
// scheduler/yieldexp_test.go), `wasmsched compare` (internal/compare) and
// the benchmark report generator (internal/benchreport) use it, so that a
// figure means the same thing wherever it appears.
//
// # What is here
//
//   - Window: the three moments of a run every instrument reads — the
//     measured window is open, the window is over, the run is stopping.
//   - The instruments that run beside the work under test: TimerProbe (a
//     task, or for reference a goroutine, that sleeps a period in a loop and
//     records how late each sleep ends) and ExternalWaker (a goroutine
//     outside the runtime that wakes a parked task every period; the task
//     records, at its next poll, the delay since each send). Both record
//     only while the window is open.
//   - PlaceUneven: start tasks unevenly on the workers (three quarters from
//     one worker), from placer tasks that run at the same time on every
//     worker, so no worker is idle to steal while they spawn.
//   - SampleCPU and ForeignCores: how many cores other processes kept busy
//     during a window (Linux /proc/stat minus this process's CPU time;
//     NaN elsewhere). Every latency figure is inflated when they take the
//     cores the workers need, so every experiment reports it.
//   - Statistics: Quantile (nearest rank), Summarise (n, p50, p99, max of
//     latency samples, in µs), Median (of the values that are not NaN),
//     Jain (Jain's fairness index), and Num, a float64 that is JSON null
//     when it is NaN (no samples).
//   - YieldResult: one row of the yield experiment, the JSON the experiment
//     writes and the report generator reads; TokioYields: DESIGN.md's Tokio
//     figures the rows are compared with.
//
// # Invariants
//
// An instrument records a sample only while Window.Measuring is true, and
// its samples are read only after Wait has returned (Wait is the
// happens-before edge: the recording task or goroutine has exited). Stop
// is final: once Window.Stop is called, every instrument's task and
// goroutine ends within one period (an instrument's task also ends at once
// when the runtime shuts down). PlaceUneven spawns all of its tasks or
// none. Nothing here prints or asserts timing: the experiments measure,
// they do not test speed.
package experiment

import (
	"encoding/json"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// Window is the state of one run that every instrument reads. Its zero
// value is a run in warm-up: not measuring, not over, not stopped. The
// moments come in order: Open, Close, Stop (Stop may come without the
// others, to abandon a run).
type Window struct {
	measuring atomic.Bool
	over      atomic.Bool
	stop      atomic.Bool
}

// Open opens the measured window.
func (w *Window) Open() { w.measuring.Store(true) }

// Close closes the measured window: Over becomes true before Measuring
// becomes false, so an observer that sees neither is before the window.
func (w *Window) Close() {
	w.over.Store(true)
	w.measuring.Store(false)
}

// Stop tells every instrument and the work under test to end.
func (w *Window) Stop() { w.stop.Store(true) }

// Measuring reports whether the window is open.
func (w *Window) Measuring() bool { return w.measuring.Load() }

// Over reports whether the window has closed.
func (w *Window) Over() bool { return w.over.Load() }

// Stopped reports whether Stop was called.
func (w *Window) Stopped() bool { return w.stop.Load() }

// Num is a float64 written to JSON as null when it is NaN or infinite (no
// samples: no yields, no spinners, an unknown foreign load). null reads
// back as NaN.
type Num float64

// MarshalJSON implements json.Marshaler.
func (n Num) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(n))
}

// UnmarshalJSON implements json.Unmarshaler: null is NaN.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Num(f)
	return nil
}

// Latency summarises latency samples: their count, p50, p99 and maximum in
// µs (NaN without samples). Samples, sorted, in µs, are kept for charts,
// not written to JSON.
type Latency struct {
	N       int       `json:"n"`
	P50     Num       `json:"p50_us"`
	P99     Num       `json:"p99_us"`
	Max     Num       `json:"max_us"`
	Samples []float64 `json:"-"`
}

// Summarise is the Latency of ds (nearest-rank quantiles).
func Summarise(ds []time.Duration) Latency {
	l := Latency{N: len(ds)}
	if len(ds) == 0 {
		l.P50, l.P99, l.Max = Num(math.NaN()), Num(math.NaN()), Num(math.NaN())
		return l
	}
	s := make([]float64, len(ds))
	for i, d := range ds {
		s[i] = float64(d) / float64(time.Microsecond)
	}
	slices.Sort(s)
	l.P50, l.P99, l.Max = Num(Quantile(s, 0.5)), Num(Quantile(s, 0.99)), Num(s[len(s)-1])
	l.Samples = s
	return l
}

// Quantile is the nearest-rank quantile q (0..1) of sorted samples: the
// sample at rank round(q·(n−1)). NaN with no samples.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	return sorted[int(q*float64(len(sorted)-1)+0.5)]
}

// Median is the median of the values of xs that are not NaN (the mean of
// the two middle ones for an even count); NaN if there are none. xs is not
// modified.
func Median(xs []float64) float64 {
	var s []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Jain is Jain's fairness index (Σx)² / (n Σx²) of what each of n tasks
// got: 1 when every one got the same, 1/n when one got everything. NaN
// with no values or all zero.
func Jain[T ~int64 | ~uint64](xs []T) float64 {
	var sum, sq float64
	for _, x := range xs {
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	if len(xs) == 0 || sq == 0 {
		return math.NaN()
	}
	return sum * sum / (float64(len(xs)) * sq)
}
