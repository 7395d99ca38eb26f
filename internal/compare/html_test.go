package compare

import (
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/internal/experiment"
)

// sampleReport is a Report as Run makes it, with made-up figures: a quiet
// scenario, a disturbed one (other processes used a core during one run)
// with 40 guests, and an interruption.
func sampleReport() *Report {
	rng := rand.New(rand.NewPCG(1, 2))
	lat := func(scale float64) experiment.Latency {
		var ds []time.Duration
		for range 2000 {
			ds = append(ds, time.Duration(scale*math.Exp(2*rng.NormFloat64())*float64(time.Microsecond)))
		}
		return experiment.Summarise(ds)
	}
	mode := func(name string, scale float64, guests int, foreign float64) ModeResult {
		m := ModeResult{
			Mode: name, Path: "deferred", LIFO: true, WindowSeconds: 2, RunSeconds: 2.3, FuelPerSecond: 25.3e9,
			Jain: 0.9876, Probe: lat(scale), ExternalWake: lat(scale / 2), GuestYields: 4000, MigrationsPer1k: 0.25,
			StealsPerSec: 0.45, LIFOPollsPerSec: 997, DeferredReleasesPerSec: 2651, ParksPerSec: 1.81,
			WorkerBusy: []float64{0.97, 0.93}, ForeignCores: experiment.Num(foreign),
		}
		for g := range guests {
			m.GuestFuel = append(m.GuestFuel, int64(1e9+int64(g)*3e7))
		}
		return m
	}
	return &Report{
		Started: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), GoVersion: "go1.26.8", NumCPU: 2, GOMAXPROCS: 3, Workers: 2,
		Interrupt: "epoch", EpochTick: "1ms", FuelSlice: 10_000_000, Duration: "2s", Guest: "spin.wasm (embedded) spin[4611686018427387904]",
		Scenarios: []ScenarioResult{
			{Name: "saturated", About: scenarioAbout["saturated"], Guests: 4, Modes: []ModeResult{
				mode("immediate-lifo", 7000, 4, 0.01), mode("immediate-nolifo", 1300, 4, 0.02), mode("deferred", 2, 4, 0),
			}},
			{Name: "uneven", About: scenarioAbout["uneven"], Guests: 40, Modes: []ModeResult{
				mode("immediate-lifo", 9000, 40, 0.05), mode("deferred", 1.2, 40, 1.07),
			}},
		},
		Incomplete: &Incomplete{Finished: 5, Planned: 9, During: "uneven/immediate-nolifo", Reason: "context canceled"},
	}
}

// scenarioSection is the page's HTML from scenario name's heading to the
// next heading.
func scenarioSection(t *testing.T, page, name string) string {
	t.Helper()
	i := strings.Index(page, "<h2>"+name+": ")
	if i < 0 {
		t.Fatalf("no section %q", name)
	}
	sec := page[i+4:]
	if j := strings.Index(sec, "<h2>"); j >= 0 {
		sec = sec[:j]
	}
	return sec
}

// TestHTMLDisturbedWarning: the warning about other processes stands
// right after the table of the scenario it concerns, naming the run, and
// nowhere else; the cell is marked too.
func TestHTMLDisturbedWarning(t *testing.T) {
	var b strings.Builder
	if err := WriteHTML(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	quiet, busy := scenarioSection(t, page, "saturated"), scenarioSection(t, page, "uneven")
	if strings.Contains(quiet, "warn") {
		t.Error("the quiet scenario has a warning")
	}
	i, j := strings.Index(busy, "</table>"), strings.Index(busy, `<p class="warn-box">Disturbed machine`)
	if i < 0 || j < 0 || j < i || strings.Contains(busy[i:j], "<svg") {
		t.Errorf("the warning is not right after the disturbed scenario's table (table ends at %d, warning at %d)", i, j)
	}
	if !strings.Contains(busy, "1.07 during deferred") || strings.Contains(busy, "during immediate-lifo") {
		t.Errorf("the warning should name the disturbed run only:\n%s", busy[j:min(len(busy), j+400)])
	}
	if strings.Count(busy, `<td class="warn"`) != 1 {
		t.Error("the disturbed run's cell is not marked (once)")
	}
	if !strings.Contains(page, "incomplete: 5 of 9 runs finished; stopped during uneven/immediate-nolifo") {
		t.Error("no note that the report is incomplete")
	}
}

// TestHTMLAxes: bar charts have a labelled x axis and round y ticks; the
// latency charts' ticks are durations.
func TestHTMLAxes(t *testing.T) {
	var b strings.Builder
	if err := WriteHTML(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, label := range []string{">guest</text>", ">worker</text>", ">% of the fuel</text>", ">% of the run</text>", ">late by (log scale)</text>", ">1 ms</text>", ">10 µs</text>"} {
		if !strings.Contains(page, label) {
			t.Errorf("no %s", label)
		}
	}
	// Every y tick of a bar chart is a multiple of a round step.
	tick := regexp.MustCompile(`<text x="58" y="[0-9.]+" text-anchor="end">([^<]+)</text>`)
	for _, svg := range strings.Split(page, "<svg")[1:] {
		if !strings.Contains(svg, "<rect x=\"") || strings.Contains(svg, "percentile") {
			continue // latency chart
		}
		var vs []float64
		for _, m := range tick.FindAllStringSubmatch(svg, -1) {
			v, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Fatalf("tick %q is not a number", m[1])
			}
			vs = append(vs, v)
		}
		if len(vs) < 3 || vs[0] != 0 {
			t.Fatalf("bar chart ticks %v", vs)
		}
		step := vs[1]
		if !slices.Contains([]float64{1, 2, 2.5, 5}, step/math.Pow(10, math.Floor(math.Log10(step)))) {
			t.Errorf("tick step %v is not round (ticks %v)", step, vs)
		}
	}
	// 40 guests: at most 16 labelled groups, every third one here.
	uneven := scenarioSection(t, page, "uneven")
	fuel := uneven[strings.Index(uneven, "Fuel share"):]
	fuel = fuel[:strings.Index(fuel, "</svg>")]
	if !strings.Contains(fuel, `text-anchor="middle">39</text>`) && !strings.Contains(fuel, `text-anchor="middle">36</text>`) {
		t.Error("guest axis of 40 guests has no label near its end")
	}
	if strings.Contains(fuel, `text-anchor="middle">1</text>`) {
		t.Error("guest axis of 40 guests labels every guest")
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ top, want float64 }{
		{100, 20}, {110, 25}, {34.7, 10}, {56.8, 20}, {1, 0.2}, {0.03, 0.01}, {25, 5}, {26, 10}, {12.5, 2.5},
	} {
		if got := niceStep(tc.top, 5); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("niceStep(%v) = %v, want %v", tc.top, got, tc.want)
		}
	}
	for us, want := range map[float64]string{0.1: "0.1 µs", 1: "1 µs", 100: "100 µs", 1000: "1 ms", 1e5: "100 ms", 1e6: "1 s"} {
		if got := durationLabel(us); got != want {
			t.Errorf("durationLabel(%v) = %q, want %q", us, got, want)
		}
	}
	if got := tickLabel(3 * 0.1); got != "0.3" {
		t.Errorf("tickLabel(0.30000000000000004) = %q", got)
	}
}

// TestHTMLModeColours: a mode has the same colour in every chart and
// scenario, whichever other modes a scenario has.
func TestHTMLModeColours(t *testing.T) {
	var b strings.Builder
	if err := WriteHTML(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	for _, sc := range []string{"saturated", "uneven"} { // uneven lacks immediate-nolifo
		sec := scenarioSection(t, b.String(), sc)
		for _, want := range []string{
			`fill="#d1495b"><title>immediate-lifo `, `fill="#00798c"><title>deferred `,
			`fill="#00798c"/><text x="[0-9.]+" y="[0-9.]+">deferred</text>`,
		} {
			if !regexp.MustCompile(want).MatchString(sec) {
				t.Errorf("%s: no %s", sc, want)
			}
		}
	}
}

// TestOversubscribedNote: the table and the page say when GOMAXPROCS
// exceeds the CPUs (the goroutines outside the runtime then compete with
// busy workers through the OS scheduler), and only then.
func TestOversubscribedNote(t *testing.T) {
	for _, tc := range []struct {
		gomaxprocs, cpus int
		want             bool
	}{{3, 2, true}, {2, 2, false}, {2, 4, false}} {
		rep := sampleReport()
		rep.GOMAXPROCS, rep.NumCPU = tc.gomaxprocs, tc.cpus
		var tbl, page strings.Builder
		if err := WriteTable(&tbl, rep); err != nil {
			t.Fatal(err)
		}
		if err := WriteHTML(&page, rep); err != nil {
			t.Fatal(err)
		}
		note := fmt.Sprintf("GOMAXPROCS %d is more than the %d CPUs", tc.gomaxprocs, tc.cpus)
		if got := strings.Contains(tbl.String(), note); got != tc.want {
			t.Errorf("GOMAXPROCS %d, %d CPUs: note in the table %v, want %v", tc.gomaxprocs, tc.cpus, got, tc.want)
		}
		if got := strings.Contains(page.String(), `<p class="warn-box">note: `+note); got != tc.want {
			t.Errorf("GOMAXPROCS %d, %d CPUs: note on the page %v, want %v", tc.gomaxprocs, tc.cpus, got, tc.want)
		}
	}
}
