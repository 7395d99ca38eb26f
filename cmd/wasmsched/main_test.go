package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wasmsched/wasmsched/internal/compare"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// invoke runs the command in-process.
func invoke(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

// trapWasm is a module exporting _start and boom, both `unreachable`.
var trapWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
	0x03, 0x02, 0x01, 0x00, // func 0: type 0
	0x07, 0x11, 0x02, // exports: 2
	0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00,
	0x04, 'b', 'o', 'o', 'm', 0x00, 0x00,
	0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // code: unreachable
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// spinRef computes spin(n) in Go, the recurrence of testdata/spin.wat.
func spinRef(n uint64) uint64 {
	acc := uint64(1)
	for ; n != 0; n-- {
		acc = acc*6364136223846793005 + n
	}
	return acc
}

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
		{[]string{"--interrupt", "sometimes"}, "--interrupt must be epoch or fuel"},
		{[]string{"--workers", "0"}, "--workers must be at least 1"},
		{[]string{"--duration", "1ms"}, "duration must be"},
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

func TestUsage(t *testing.T) {
	if code, _, errOut := invoke(t); code != exitUsage || !strings.Contains(errOut, "usage: wasmsched") {
		t.Errorf("no args: exit %d, %q", code, errOut)
	}
	if code, _, errOut := invoke(t, "frobnicate"); code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
	if code, out, _ := invoke(t, "help"); code != 0 || !strings.Contains(out, "compare") {
		t.Errorf("help: exit %d, %q", code, out)
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
