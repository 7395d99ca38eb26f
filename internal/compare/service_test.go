package compare

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/internal/experiment"
	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// runService runs the service scenario briefly in every mode.
func runService(t *testing.T, cfg Config) *Report {
	t.Helper()
	cfg.Wasm, cfg.Export, cfg.Args = spinWasm(t), "spin", []uint64{1 << 62}
	cfg.Scenarios, cfg.Duration, cfg.Warmup = []string{"service"}, 150*time.Millisecond, 30*time.Millisecond
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 1 || rep.Scenarios[0].Service == nil || len(rep.Scenarios[0].Modes) != len(Modes) {
		t.Fatalf("want one service scenario with its setup and %d modes: %+v", len(Modes), rep.Scenarios)
	}
	return rep
}

// TestCompareSpinValue: the Go model of spin that requests are checked against
// is what the guest computes, with the fuel its construction says.
func TestCompareSpinValue(t *testing.T) {
	eng, err := wasmtask.NewEngine(context.Background(), wasmtask.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	mod, err := eng.Compile(context.Background(), spinWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := scheduler.New(scheduler.WithWorkers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	for _, n := range []int64{0, 1, 2, 3, 1000, 43_045} {
		if _, err := fastestCall(context.Background(), rt, mod, n, 1); err != nil {
			t.Errorf("spin(%d): %v", n, err)
		}
	}
	if spinValue(1) != 6364136223846793005+1 || spinFuel(0) != 7 {
		t.Errorf("spinValue(1) = %d, spinFuel(0) = %d", spinValue(1), spinFuel(0))
	}
}

// TestCompareServiceScenario: in every mode, the requests due in the
// window are submitted and all complete (the run drains them), the
// quantiles are ordered, and each request's latency, which runs from its
// due time past its submission to its result, dominates the submitter's
// lag. The batch works, and its guest-seconds are its fuel at the
// calibrated rate.
func TestCompareServiceScenario(t *testing.T) {
	rep := runService(t, Config{})
	sc := rep.Scenarios[0]
	setup := sc.Service
	if setup.RequestIterations <= 0 || setup.RequestFuel != spinFuel(setup.RequestIterations) || setup.SpinFuelPerSecond <= 0 ||
		setup.RequestCallUS <= 0 || setup.RequestPeriod != "1ms" || sc.Guests != 4 {
		t.Errorf("setup %+v, %d guests", setup, sc.Guests)
	}
	for _, m := range sc.Modes {
		s := m.Service
		if s == nil {
			t.Fatalf("%s: no service figures", m.Mode)
		}
		if s.Submitted == 0 || s.Completed != s.Submitted || s.Latency.N != s.Completed || s.SubmitLag.N != s.Submitted {
			t.Errorf("%s: submitted %d, completed %d, latency n=%d, lag n=%d", m.Mode, s.Submitted, s.Completed, s.Latency.N, s.SubmitLag.N)
		}
		// One request is due every period, and all of those due in the
		// window are counted, however late the submitter.
		if due := m.WindowSeconds / ServiceRequestPeriod.Seconds(); math.Abs(float64(s.Submitted)-due) > 1+1e-6 {
			t.Errorf("%s: %d requests counted in a window of %v s: want the %v due in it", m.Mode, s.Submitted, m.WindowSeconds, due)
		}
		for name, l := range map[string]experiment.Latency{"latency": s.Latency, "submit lag": s.SubmitLag} {
			if !(l.P50 <= l.P99 && l.P99 <= l.Max) || l.P50 < 0 {
				t.Errorf("%s: %s p50 %v, p99 %v, max %v not ordered", m.Mode, name, l.P50, l.P99, l.Max)
			}
		}
		// latency_i >= lag_i for every request, so every order
		// statistic of the latencies is at least the lags' one.
		for k := range s.Latency.Samples {
			if s.Latency.Samples[k] < s.SubmitLag.Samples[k] || s.Latency.Samples[k] <= 0 {
				t.Fatalf("%s: %d-th latency %v µs below the %d-th submit lag %v µs", m.Mode, k, s.Latency.Samples[k], k, s.SubmitLag.Samples[k])
			}
		}
		if s.BatchGuestSecondsPerSec <= 0 || m.FuelPerSecond <= 0 || len(m.GuestFuel) != 4 {
			t.Errorf("%s: batch %v guest-s/s, %v fuel/s, guest fuel %v", m.Mode, s.BatchGuestSecondsPerSec, m.FuelPerSecond, m.GuestFuel)
		}
		if got := s.BatchGuestSecondsPerSec * setup.SpinFuelPerSecond; math.Abs(got-m.FuelPerSecond) > 1e-9*m.FuelPerSecond {
			t.Errorf("%s: batch guest-seconds %v × %v fuel/s = %v, not the batch's %v fuel/s", m.Mode, s.BatchGuestSecondsPerSec, setup.SpinFuelPerSecond, got, m.FuelPerSecond)
		}
	}
	checkServiceJSON(t, rep)
	checkServiceRendered(t, rep)
}

// checkServiceJSON: the service fields survive a JSON round trip, and are
// absent from the other scenarios.
func checkServiceJSON(t *testing.T, rep *Report) {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"service":{"request_period"`, `"requests_submitted"`, `"requests_completed"`, `"request_latency":{"n"`,
		`"request_submit_lag"`, `"batch_guest_seconds_per_second"`, `"request_yields_deferred"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON has no %s", key)
		}
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if *back.Scenarios[0].Service != *rep.Scenarios[0].Service {
		t.Errorf("setup %+v came back as %+v", rep.Scenarios[0].Service, back.Scenarios[0].Service)
	}
	for i, m := range rep.Scenarios[0].Modes {
		got, want := *back.Scenarios[0].Modes[i].Service, *m.Service
		got.Latency.Samples, want.Latency.Samples = nil, nil // not written
		got.SubmitLag.Samples, want.SubmitLag.Samples = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v came back as %+v", m.Mode, want, got)
		}
	}
	other, err := json.Marshal(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(other), `"service"`) || strings.Contains(string(other), "request") {
		t.Error("the service fields are written for other scenarios")
	}
}

// checkServiceRendered: the table and the HTML report have the service
// rows, with the figures, and a chart of the request latency.
func checkServiceRendered(t *testing.T, rep *Report) {
	t.Helper()
	var tbl, page strings.Builder
	if err := WriteTable(&tbl, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	m := rep.Scenarios[0].Modes[0]
	cells := []string{lat(m.Service.Latency), num(m.Service.BatchGuestSecondsPerSec)}
	for _, want := range append(append(cells, ServiceRowNames...), RowNames...) {
		if !strings.Contains(tbl.String(), want) {
			t.Errorf("table has no %q:\n%s", want, tbl.String())
		}
	}
	sec := scenarioSection(t, page.String(), "service")
	for _, want := range append(append(cells, ServiceRowNames...), "Requests: from the moment due to the result", "requests: spin(") {
		if !strings.Contains(sec, want) {
			t.Errorf("HTML service section has no %q", want)
		}
	}
	if n := strings.Count(sec, "<svg"); n != 5 {
		t.Errorf("%d charts in the service section, want 5 (requests, probe, external wake, fuel share, busy time)", n)
	}
	var plain strings.Builder
	if err := WriteTable(&plain, sampleReport()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), ServiceRowNames[0]) {
		t.Error("the service rows are in other scenarios' tables")
	}
}

// TestCompareServiceRequestPaths: in fuel mode with a slice
// shorter than a request, every request yields at each slice through the
// mode's path: requests run under the mode's policy, as the batch does.
func TestCompareServiceRequestPaths(t *testing.T) {
	const slice = 100_000
	rep := runService(t, Config{Interrupt: wasmtask.InterruptFuel, FuelSlice: slice})
	fuel := rep.Scenarios[0].Service.RequestFuel
	for _, m := range rep.Scenarios[0].Modes {
		s := m.Service
		mine, other := s.YieldsImmediate, s.YieldsDeferred
		if m.Path == scheduler.PathDeferred.String() {
			mine, other = other, mine
		}
		// One yield per slice spent, within one of fuel/slice per request
		// (the request's last slice, cut short by its return).
		per := fuel / slice
		if n := int64(s.Completed); other != 0 || mine < n*(per-1) || mine > n*(per+1) || n == 0 {
			t.Errorf("%s: %d requests of %d fuel yielded %d times through %s and %d through the other path; want about %d per request",
				m.Mode, n, fuel, mine, m.Path, other, per)
		}
	}
}
