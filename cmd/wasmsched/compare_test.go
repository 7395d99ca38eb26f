package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/internal/compare"
)

// The compare command's tests (the in-process helpers are main_test.go's).

func compareArgs() []string {
	if testing.Short() {
		return []string{"--duration", "100ms", "--warmup", "20ms"}
	}
	return []string{"--duration", "500ms", "--warmup", "100ms"}
}

// TestCompareTable: with only timing flags, compare runs the embedded
// default workload and prints one table per scenario with a column per
// mode and every row.
func TestCompareTable(t *testing.T) {
	code, out, errOut := invoke(t, append([]string{"compare"}, compareArgs()...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("progress line written although stdout is not a terminal: %q", errOut)
	}
	for _, sc := range compare.Scenarios {
		i := strings.Index(out, "\n"+sc+": ")
		if i < 0 {
			t.Fatalf("no %s table in:\n%s", sc, out)
		}
		block := out[i+1:]
		if j := strings.Index(block, "\n\n"); j >= 0 {
			block = block[:j]
		}
		lines := strings.Split(block, "\n")
		header := strings.Fields(lines[1])
		if want := []string{"immediate-lifo", "immediate-nolifo", "deferred"}; strings.Join(header, " ") != strings.Join(want, " ") {
			t.Errorf("%s: columns %v, want %v", sc, header, want)
		}
		for _, row := range compare.RowNames {
			if !strings.Contains(block, row) {
				t.Errorf("%s: no row %q", sc, row)
			}
		}
	}
	if !strings.Contains(out, "guests spawned per worker: [3 1]") && !strings.Contains(out, "guests spawned per worker: [1 3]") {
		t.Errorf("uneven placement not 3/1:\n%s", out)
	}
	if strings.Contains(out, "\nservice: ") || strings.Contains(out, compare.ServiceRowNames[0]) {
		t.Errorf("the opt-in service scenario ran by default:\n%s", out)
	}
}

// TestCompareScenarioFlag: --scenario's default is the default
// scenarios, all is every scenario (with the opt-in service), and a list
// is taken as given.
func TestCompareScenarioFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, compare.Scenarios},
		{[]string{"--scenario", "default"}, compare.Scenarios},
		{[]string{"--scenario", "all"}, compare.AllScenarios},
		{[]string{"--scenario", "service, light"}, []string{"service", "light"}},
	} {
		cc, code := parseCompare(tc.args, io.Discard)
		if cc == nil {
			t.Fatalf("%v: exit %d", tc.args, code)
		}
		cfg, err := cc.config()
		if err != nil || strings.Join(cfg.Scenarios, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%v: scenarios %v, %v; want %v", tc.args, cfg.Scenarios, err, tc.want)
		}
	}
	var usage strings.Builder
	parseCompare([]string{"-h"}, &usage)
	if !strings.Contains(usage.String(), "opt-in") || !strings.Contains(usage.String(), "--scenario service") {
		t.Errorf("the usage does not say the service scenario is opt-in:\n%s", usage.String())
	}
}

// TestCompareService: the service scenario's rows in the table, and its
// figures in the JSON, for each mode.
func TestCompareService(t *testing.T) {
	args := []string{"compare", "--scenario", "service", "--duration", "100ms", "--warmup", "20ms"}
	code, out, errOut := invoke(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	i := strings.Index(out, "\nservice: ")
	if i < 0 {
		t.Fatalf("no service table:\n%s", out)
	}
	for _, row := range append(append([]string{"requests: spin("}, compare.ServiceRowNames...), compare.RowNames...) {
		if !strings.Contains(out[i:], row) {
			t.Errorf("service table has no %q:\n%s", row, out[i:])
		}
	}
	code, out, errOut = invoke(t, append(args, "--json", "--modes", "deferred,immediate-lifo")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep compare.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(rep.Scenarios) != 1 || rep.Scenarios[0].Service == nil || rep.Scenarios[0].Service.RequestIterations <= 0 || len(rep.Scenarios[0].Modes) != 2 {
		t.Fatalf("want the service scenario with its request and 2 modes: %s", out)
	}
	for _, m := range rep.Scenarios[0].Modes {
		s := m.Service
		if s == nil || s.Submitted == 0 || s.Completed != s.Submitted || s.BatchGuestSecondsPerSec <= 0 ||
			!(s.Latency.P50 <= s.Latency.P99 && s.Latency.P99 <= s.Latency.Max) {
			t.Errorf("%s: service figures %+v", m.Mode, s)
		}
	}
}

// TestCompareJSON checks the figures are sane, mode by mode.
func TestCompareJSON(t *testing.T) {
	code, out, errOut := invoke(t, append([]string{"compare", "--json", "--scenario", "saturated"}, compareArgs()...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep compare.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(rep.Scenarios) != 1 || rep.Scenarios[0].Guests != 4 || len(rep.Scenarios[0].Modes) != 3 {
		t.Fatalf("want 1 scenario of 4 guests and 3 modes: %+v", rep.Scenarios)
	}
	for _, m := range rep.Scenarios[0].Modes {
		if m.FuelPerSecond <= 0 || len(m.GuestFuel) != 4 {
			t.Errorf("%s: throughput %v, guest fuel %v", m.Mode, m.FuelPerSecond, m.GuestFuel)
		}
		if m.Jain <= 0 || m.Jain > 1.0000001 {
			t.Errorf("%s: Jain's index %v outside (0, 1]", m.Mode, m.Jain)
		}
		if m.GuestYields == 0 || m.MigrationsPer1k < 0 || m.MigrationsPer1k > 1000 {
			t.Errorf("%s: yields %d, migrations per 1k %v", m.Mode, m.GuestYields, m.MigrationsPer1k)
		}
		if m.Probe.N == 0 || m.ExternalWake.N == 0 || m.Probe.P50 < 0 || m.Probe.P99 < m.Probe.P50 || m.Probe.Max < m.Probe.P99 {
			t.Errorf("%s: probe %+v, external wake n=%d", m.Mode, m.Probe, m.ExternalWake.N)
		}
		if len(m.WorkerBusy) != 2 {
			t.Errorf("%s: busy per worker %v", m.Mode, m.WorkerBusy)
		}
		switch m.Mode {
		case "immediate-nolifo":
			if m.LIFOPollsPerSec != 0 || m.DeferredReleasesPerSec != 0 {
				t.Errorf("%s: LIFO polls %v, deferred releases %v: want none", m.Mode, m.LIFOPollsPerSec, m.DeferredReleasesPerSec)
			}
		case "immediate-lifo":
			if m.LIFOPollsPerSec == 0 || m.DeferredReleasesPerSec != 0 {
				t.Errorf("%s: LIFO polls %v, deferred releases %v", m.Mode, m.LIFOPollsPerSec, m.DeferredReleasesPerSec)
			}
		case "deferred":
			if m.DeferredReleasesPerSec == 0 {
				t.Errorf("%s: no deferred releases", m.Mode)
			}
		}
	}
}

// TestCompareReport: the HTML report is self-contained, with charts.
func TestCompareReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.html")
	code, _, errOut := invoke(t, append([]string{"compare", "--scenario", "light", "--modes", "deferred,immediate-nolifo", "--report", path}, compareArgs()...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if n := strings.Count(page, "<svg"); n != 4 {
		t.Errorf("%d charts, want 4 (probe, external wake, fuel share, busy time)", n)
	}
	for _, bad := range []string{"<script", " src=", "<link", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("report refers to an external asset or script: %q", bad)
		}
	}
	if strings.Count(page, "http") != strings.Count(page, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Error("report contains a URL other than the SVG namespace")
	}
}

func TestCompareBadInput(t *testing.T) {
	spin := "../../testdata/spin.wasm"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--modes", "sideways"}, "unknown mode"},
		{[]string{"--scenario", "crowded"}, "unknown scenario"},
		{[]string{"--interrupt", "sometimes"}, "--interrupt: must be epoch or fuel"},
		{[]string{"--interrupt", "both"}, "--interrupt: must be epoch or fuel"},
		{[]string{"--workers", "0"}, "--workers must be at least 1"},
		{[]string{"--duration", "1ms"}, "duration must be"},
		// A zero is refused, as run refuses it (in compare.Config it
		// would mean the default).
		{[]string{"--duration", "0"}, "--duration must be positive"},
		{[]string{"--duration", "-1s"}, "--duration must be positive"},
		{[]string{"--fuel-slice", "0"}, "--fuel-slice must be positive"},
		{[]string{"--fuel-slice", "-5"}, "--fuel-slice must be positive"},
		{[]string{"--epoch-tick", "0"}, "--epoch-tick must be positive"},
		{[]string{"--poll-interval", "0"}, "--poll-interval must be positive"},
		{[]string{"--poll-interval", "-20000"}, "--poll-interval must be positive"},
		{[]string{"--poll-interval", "lots"}, `invalid value "lots" for flag -poll-interval`},
		{[]string{"--poll-interval", "99999999999999999999"}, `invalid value "99999999999999999999" for flag -poll-interval`},
		{[]string{"--poll-interval", "1000000000001"}, "poll interval must be 1..1000000000000 fuel"},
		{[]string{"--warmup", "-1ms"}, "--warmup must not be negative"},
		{[]string{"--guests", "-1"}, "--guests must not be negative"},
		{[]string{"--gomaxprocs", "-1"}, "--gomaxprocs must not be negative"},
		{[]string{"--progress", "loud"}, "--progress: must be auto, plain or off"},
		{[]string{"--module", "/nonexistent.wasm"}, "no such file"},
		{[]string{"--module", writeTemp(t, "bad.wasm", []byte("not wasm"))}, "guest module"},
		{[]string{"--module", spin, "--export", "nope"}, `no export "nope"`},
		{[]string{"--module", spin, "--export", "spin", "--args", "x"}, "not an integer"},
		{[]string{"--export", "spin"}, "need --module"},
		{[]string{"--no-such-flag"}, "flag provided but not defined"},
		{[]string{"stray"}, "unexpected argument"},
	} {
		code, _, errOut := invoke(t, append([]string{"compare"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestCompareWithoutProbes: -probe=false and -external-wake=false leave the
// latency rows empty and still measure the guests.
func TestCompareWithoutProbes(t *testing.T) {
	code, out, errOut := invoke(t, append([]string{"compare", "--json", "--scenario", "light", "--modes", "deferred", "-probe=false", "-external-wake=false"}, compareArgs()...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep compare.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	m := rep.Scenarios[0].Modes[0]
	if m.Probe.N != 0 || m.ExternalWake.N != 0 || m.FuelPerSecond <= 0 {
		t.Fatalf("probe n=%d, external n=%d, throughput %v", m.Probe.N, m.ExternalWake.N, m.FuelPerSecond)
	}
	if !strings.Contains(out, `"p50_us": null`) {
		t.Errorf("empty latency not written as null:\n%s", out)
	}
}

// quickArgs are the flags of a short comparison of the light scenario.
func quickArgs(modes string) []string {
	return []string{"compare", "--scenario", "light", "--modes", modes, "--duration", "30ms", "--warmup", "10ms"}
}

// TestCompareProgressModes: with stderr not a terminal (a buffer, a file,
// a pipe), auto and plain write one line per run and no terminal
// controls; off writes nothing. stdout is the same in every mode.
func TestCompareProgressModes(t *testing.T) {
	for _, mode := range []string{"", "auto", "plain", "off"} {
		args := quickArgs("deferred,immediate-nolifo")
		if mode != "" {
			args = append(args, "--progress", mode)
		}
		code, out, errOut := invoke(t, args...)
		if code != 0 {
			t.Fatalf("--progress %q: exit %d: %s", mode, code, errOut)
		}
		if strings.ContainsAny(errOut, "\r\033") {
			t.Errorf("--progress %q: terminal controls on a stderr that is not a terminal: %q", mode, errOut)
		}
		want := "wasmsched compare: [1/2] light / deferred (0.0 s)\nwasmsched compare: [2/2] light / immediate-nolifo (0.0 s)\n"
		if mode == "off" {
			want = ""
		}
		if errOut != want {
			t.Errorf("--progress %q: stderr %q, want %q", mode, errOut, want)
		}
		if !strings.Contains(out, "light: fewer guests than workers") {
			t.Errorf("--progress %q: no table on stdout:\n%s", mode, out)
		}
	}
}

// TestCompareProgressTerminal: on a terminal (auto), progress is one line
// rewritten in place, cleared at the end; plain stays plain there.
func TestCompareProgressTerminal(t *testing.T) {
	var b strings.Builder
	p, err := newProgress("auto", true, &b)
	if err != nil {
		t.Fatal(err)
	}
	p.report(compare.Progress{Run: 1, Runs: 9, Scenario: "saturated", Mode: "deferred", Start: true, Planned: 2200 * time.Millisecond})
	p.report(compare.Progress{Run: 1, Runs: 9, Scenario: "saturated", Mode: "deferred", Elapsed: time.Second, Planned: 2200 * time.Millisecond})
	p.done()
	want := "\r\033[K[1/9] saturated / deferred  0.0 of 2.2 s\r\033[K[1/9] saturated / deferred  1.0 of 2.2 s\r\033[K"
	if b.String() != want {
		t.Errorf("terminal progress %q, want %q", b.String(), want)
	}
	b.Reset()
	p, _ = newProgress("plain", true, &b)
	p.report(compare.Progress{Run: 1, Runs: 9, Scenario: "saturated", Mode: "deferred", Start: true, Planned: 2200 * time.Millisecond})
	p.report(compare.Progress{Run: 1, Runs: 9, Scenario: "saturated", Mode: "deferred", Elapsed: time.Second, Planned: 2200 * time.Millisecond})
	p.done()
	if b.String() != "wasmsched compare: [1/9] saturated / deferred (2.2 s)\n" {
		t.Errorf("plain progress on a terminal: %q", b.String())
	}
}

// cancelOn is a writer that cancels a context when what it is written
// contains a string: the test's Ctrl-C at a known point.
type cancelOn struct {
	bytes.Buffer
	when   string
	cancel context.CancelFunc
	fired  atomic.Bool
}

func (c *cancelOn) Write(p []byte) (int, error) {
	n, err := c.Buffer.Write(p)
	if strings.Contains(c.String(), c.when) && !c.fired.Swap(true) {
		c.cancel()
	}
	return n, err
}

// TestCompareInterrupted: Ctrl-C (the context cancelled) during the second
// run writes the table, the JSON and the report of the first, says what is
// missing, and exits 1.
func TestCompareInterrupted(t *testing.T) {
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			report := filepath.Join(t.TempDir(), "r.html")
			args := append(quickArgs("all"), "--report", report)
			if format == "json" {
				args = append(args, "--json")
			}
			var out bytes.Buffer
			errOut := &cancelOn{when: "[2/3]", cancel: cancel}
			code := run(ctx, args, strings.NewReader(""), &out, errOut)
			if code != exitFailure {
				t.Fatalf("exit %d, want %d: %s", code, exitFailure, errOut.String())
			}
			if !strings.Contains(errOut.String(), "interrupted after 1 of 3 runs") {
				t.Errorf("stderr does not say it was interrupted: %q", errOut.String())
			}
			if format == "json" {
				var rep compare.Report
				if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, out.String())
				}
				if len(rep.Scenarios) != 1 || len(rep.Scenarios[0].Modes) != 1 || rep.Scenarios[0].Modes[0].Mode != "immediate-lifo" ||
					rep.Incomplete == nil || rep.Incomplete.Finished != 1 || rep.Incomplete.Planned != 3 {
					t.Errorf("partial JSON: %s", out.String())
				}
			} else {
				tbl := out.String()
				if !strings.Contains(tbl, "incomplete: 1 of 3 runs finished; stopped during light/immediate-nolifo") {
					t.Errorf("table does not say it is incomplete:\n%s", tbl)
				}
				if i := strings.Index(tbl, "\nlight: "); i < 0 || strings.Join(strings.Fields(strings.Split(tbl[i+1:], "\n")[1]), " ") != "immediate-lifo" {
					t.Errorf("want a table with the finished run's column only:\n%s", tbl)
				}
			}
			page, err := os.ReadFile(report)
			if err != nil || !strings.Contains(string(page), "incomplete: 1 of 3 runs finished") || strings.Count(string(page), "<svg") != 4 {
				t.Errorf("report of the finished run: %v (%d bytes)", err, len(page))
			}
		})
	}
}

// TestCompareReportCheckedFirst: a --report path that cannot be written
// fails at once, before any run; a run that fails leaves no new report
// behind and an existing one as it was.
func TestCompareReportCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{filepath.Join(dir, "no", "such", "dir", "r.html"), dir} {
		start := time.Now()
		code, out, errOut := invoke(t, "compare", "--duration", "5s", "--progress", "plain", "--report", path)
		if code != exitUsage || !strings.Contains(errOut, "--report: ") || out != "" {
			t.Errorf("--report %s: exit %d, stdout %q, stderr %q; want exit 2 and a --report error", path, code, out, errOut)
		}
		if strings.Contains(errOut, "[1/") || time.Since(start) > 3*time.Second {
			t.Errorf("--report %s: the runs started before the path was checked: %q", path, errOut)
		}
	}

	trap := writeTemp(t, "trap.wasm", trapWasm)
	fresh := filepath.Join(dir, "fresh.html")
	old := writeTemp(t, "old.html", []byte("the previous report"))
	for _, path := range []string{fresh, old} {
		code, _, errOut := invoke(t, "compare", "--module", trap, "--export", "boom", "--scenario", "light", "--modes", "deferred",
			"--duration", "20ms", "--warmup", "5ms", "--report", path)
		if code != exitFailure || !strings.Contains(errOut, "guest failed") {
			t.Fatalf("trapping guest: exit %d, %q", code, errOut)
		}
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a failed comparison left a report behind: %v", err)
	}
	if b, err := os.ReadFile(old); err != nil || string(b) != "the previous report" {
		t.Errorf("a failed comparison changed an existing report: %q, %v", b, err)
	}

	// A report that succeeds replaces a longer one entirely.
	long := writeTemp(t, "long.html", bytes.Repeat([]byte("x"), 1<<20))
	if code, _, errOut := invoke(t, append(quickArgs("deferred"), "--report", long)...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if b, _ := os.ReadFile(long); !strings.HasSuffix(string(b), "</html>\n") {
		t.Errorf("the report keeps the tail of the older, longer file: ...%q", b[max(0, len(b)-40):])
	}
}
