package compare

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
)

// modeColors are the series colours: Modes[i] is drawn in modeColors[i] in
// every chart and scenario, whichever modes a report has; a mode not in
// Modes takes the colour of its column.
var modeColors = []string{"#d1495b", "#edae49", "#00798c", "#30638e", "#6a4c93"}

func color(name string, column int) string {
	for i, m := range Modes {
		if m.Name == name {
			return modeColors[i%len(modeColors)]
		}
	}
	return modeColors[column%len(modeColors)]
}

// WriteHTML writes a self-contained HTML page (inline CSS and SVG, no
// external assets or scripts): per scenario the table, a warning beside it
// when other processes disturbed a run, the latency distributions per mode,
// each guest's share of the fuel and each worker's busy time; then the
// tables as text.
func WriteHTML(w io.Writer, rep *Report) error {
	var tbl strings.Builder
	if err := WriteTable(&tbl, rep); err != nil {
		return err
	}
	data := htmlPage{Raw: tbl.String()}
	data.Header = fmt.Sprintf("%d workers, GOMAXPROCS %d, %d CPUs, %s; guest %s; %s interrupt (epoch tick %s, poll interval %d, fuel slice %d); %s measured per run; started %s",
		rep.Workers, rep.GOMAXPROCS, rep.NumCPU, rep.GoVersion, rep.Guest, rep.Interrupt, rep.EpochTick, rep.PollInterval, rep.FuelSlice, rep.Duration, rep.Started.Format("2006-01-02 15:04 UTC"))
	if rep.Incomplete != nil {
		data.Incomplete = incompleteNote(rep.Incomplete)
	}
	data.Oversubscribed = oversubscribedNote(rep)
	for _, sc := range rep.Scenarios {
		data.Scenarios = append(data.Scenarios, newHTMLScenario(sc))
	}
	return pageTmpl.Execute(w, data)
}

// htmlPage is what pageTmpl renders.
type htmlPage struct {
	Header         string
	Incomplete     string
	Oversubscribed string // GOMAXPROCS exceeds the CPUs (oversubscribedNote)
	Raw            string
	Scenarios      []htmlScenario
}

// htmlScenario is one scenario's section of the page.
type htmlScenario struct {
	Title                  string
	Table                  template.HTML
	Warning                string
	Probe, Ext, Fuel, Busy template.HTML
	Requests               template.HTML // the service scenario's request latency ("" in the others)
	Service                string        // its request, as the table's note says
	Notes                  []string
}

// newHTMLScenario is sc's section: its table, the warning if other
// processes disturbed a run, the notes and the four charts.
func newHTMLScenario(sc ScenarioResult) htmlScenario {
	s := htmlScenario{Title: fmt.Sprintf("%s: %s (%d guests)", sc.Name, sc.About, sc.Guests)}
	s.Table = htmlTable(sc)
	if d := disturbed(sc); len(d) > 0 {
		var runs []string
		for _, m := range d {
			runs = append(runs, fmt.Sprintf("%.2f during %s", float64(m.ForeignCores), m.Mode))
		}
		s.Warning = fmt.Sprintf("Disturbed machine: other processes kept cores busy (%s; more than %.1f flags a run). "+
			"The latency and throughput figures of those runs are inflated by them, not by the scheduler: rerun on a quiet machine.",
			strings.Join(runs, ", "), DisturbedCores)
	}
	var names []string
	var probe, ext [][]float64
	for _, m := range sc.Modes {
		names = append(names, m.Mode)
		probe = append(probe, m.Probe.Samples)
		ext = append(ext, m.ExternalWake.Samples)
		if m.Placement != "" {
			s.Notes = append(s.Notes, m.Mode+": "+m.Placement)
		}
		if m.Restarts > 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("%s: guests returned and were restarted %d times", m.Mode, m.Restarts))
		}
	}
	s.Probe = cdfChart("Timer probe: how late sleep(1 ms) ended", "late by (log scale)", names, probe)
	s.Ext = cdfChart("External wake: from the send to the task's poll", "delay (log scale)", names, ext)
	if sc.Service != nil {
		s.Service = strings.Join(serviceNote(sc.Service), " ")
		s.Requests = requestChart(sc, names)
	}
	fuel, busy := shares(sc)
	even := 0.0
	if sc.Guests > 0 {
		even = 100 / float64(sc.Guests)
	}
	s.Fuel = barChart("Fuel share per guest (dashed: an even share)", "guest", "% of the fuel", names, fuel, even)
	s.Busy = barChart("Busy time per worker", "worker", "% of the run", names, busy, math.NaN())
	return s
}

// requestChart is the service scenario's request latency per mode.
func requestChart(sc ScenarioResult, names []string) template.HTML {
	var lat [][]float64
	for _, m := range sc.Modes {
		var s []float64
		if m.Service != nil {
			s = m.Service.Latency.Samples
		}
		lat = append(lat, s)
	}
	return cdfChart("Requests: from the moment due to the result", "latency (log scale)", names, lat)
}

// shares are, per mode of sc, each guest's share of the fuel and each
// worker's busy time, in percent.
func shares(sc ScenarioResult) (fuel, busy [][]float64) {
	for _, m := range sc.Modes {
		var tot float64
		for _, x := range m.GuestFuel {
			tot += float64(x)
		}
		var share []float64
		for _, x := range m.GuestFuel {
			if tot > 0 {
				share = append(share, 100*float64(x)/tot)
			} else {
				share = append(share, 0)
			}
		}
		fuel = append(fuel, share)
		var b []float64
		for _, x := range m.WorkerBusy {
			b = append(b, 100*x)
		}
		busy = append(busy, b)
	}
	return fuel, busy
}

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>wasmsched compare</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0} td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left} td.warn{background:#fff1d6;font-weight:bold}
.charts{display:flex;flex-wrap:wrap;gap:1em}
pre{background:#f6f6f6;padding:1em;font-size:.85em;white-space:pre-wrap} .note{color:#555;font-size:.9em}
.warn-box{background:#fff1d6;border-left:4px solid #e09b00;padding:.5em .8em;max-width:60em}
</style></head><body>
<h1>wasmsched compare</h1>
<p class="note">{{.Header}}</p>
{{if .Incomplete}}<p class="warn-box">{{.Incomplete}}</p>{{end}}
{{if .Oversubscribed}}<p class="warn-box">{{.Oversubscribed}}</p>{{end}}
<p class="note">Modes: <b>immediate-lifo</b> — a yielding guest self-wakes into the LIFO slot (stealable, a peer is notified);
<b>immediate-nolifo</b> — the same to the back of the ring; <b>deferred</b> — Tokio's yield_now: the worker's deferred queue,
released after the work that was ready and a timer poll. Lower latency and fewer migrations are better; throughput and Jain's index (1 = even) higher.</p>
{{range .Scenarios}}
<h2>{{.Title}}</h2>
{{.Table}}
{{if .Warning}}<p class="warn-box">{{.Warning}}</p>{{end}}
{{range .Notes}}<p class="note">{{.}}</p>{{end}}
{{if .Service}}<p class="note">{{.Service}}</p>{{end}}
<div class="charts">{{.Requests}}{{.Probe}}{{.Ext}}{{.Fuel}}{{.Busy}}</div>
{{end}}
<h2>As text</h2>
<pre>{{.Raw}}</pre>
</body></html>
`))

func htmlTable(sc ScenarioResult) template.HTML {
	var b strings.Builder
	b.WriteString("<table><tr><th></th>")
	for _, m := range sc.Modes {
		b.WriteString("<th>" + html.EscapeString(m.Mode) + "</th>")
	}
	b.WriteString("</tr>")
	for _, tr := range tableRows(sc) {
		b.WriteString("<tr><td>" + html.EscapeString(tr.name) + "</td>")
		for _, m := range sc.Modes {
			if tr.foreign && float64(m.ForeignCores) > DisturbedCores {
				b.WriteString(`<td class="warn" title="other processes disturbed this run">` + html.EscapeString(tr.cell(m)) + "</td>")
				continue
			}
			b.WriteString("<td>" + html.EscapeString(tr.cell(m)) + "</td>")
		}
		b.WriteString("</tr>")
	}
	b.WriteString("</table>")
	return template.HTML(b.String())
}

// The charts' geometry: the plot area is inset by the paddings; below it
// come the tick labels, the x axis's label and the legend.
const chartW, chartH, padL, padR, padT, padB = 520.0, 320.0, 62.0, 24.0, 30.0, 64.0

func svgOpen(b *strings.Builder, title, xLabel, yLabel string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(b, `<text x="%.0f" y="16" font-size="12" font-weight="bold">%s</text>`, padL, html.EscapeString(title))
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`, padL, padT, chartW-padL-padR, chartH-padT-padB)
	fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#444">%s</text>`, padL+(chartW-padL-padR)/2, chartH-padB+30, html.EscapeString(xLabel))
	cy := padT + (chartH-padT-padB)/2
	fmt.Fprintf(b, `<text x="14" y="%.1f" text-anchor="middle" fill="#444" transform="rotate(-90 14 %.1f)">%s</text>`, cy, cy, html.EscapeString(yLabel))
}

func legend(b *strings.Builder, names []string) {
	x := padL
	for i, n := range names {
		fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`,
			x, chartH-14, color(n, i), x+14, chartH-5, html.EscapeString(n))
		x += 30 + 6.5*float64(len(n))
	}
}

// durationLabel names a round number of µs: 0.1 µs, 10 µs, 1 ms, 1 s.
func durationLabel(us float64) string {
	switch {
	case us >= 1e6:
		return tickLabel(us/1e6) + " s"
	case us >= 1e3:
		return tickLabel(us/1e3) + " ms"
	}
	return tickLabel(us) + " µs"
}

// tickLabel writes a round tick value without trailing zeros.
func tickLabel(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e6)/1e6, 'f', -1, 64)
}

// niceStep is the smallest step of the form {1, 2, 2.5, 5} x 10^k that
// divides 0..top into at most n intervals.
func niceStep(top float64, n int) float64 {
	raw := top / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw*(1-1e-9) {
			return m * mag
		}
	}
	return 10 * mag
}

// cdfChart plots each series' empirical CDF on a log x axis.
func cdfChart(title, xLabel string, names []string, series [][]float64) template.HTML {
	var b strings.Builder
	svgOpen(&b, title, xLabel, "percentile")
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, x := range s {
			x = math.Max(x, 0.1)
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
	}
	iw, ih := chartW-padL-padR, chartH-padT-padB
	if math.IsInf(lo, 1) {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">no samples</text></svg>`, padL+10, padT+20)
		return template.HTML(b.String())
	}
	l0, l1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if l1 <= l0 {
		l1 = l0 + 1
	}
	xOf := func(v float64) float64 { return padL + iw*(math.Log10(math.Max(v, 0.1))-l0)/(l1-l0) }
	yOf := func(p float64) float64 { return padT + ih*(1-p) }
	for e := l0; e <= l1; e++ {
		x := xOf(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#eee"/><text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`,
			x, padT, x, padT+ih, x, padT+ih+14, durationLabel(math.Pow(10, e)))
	}
	for _, t := range []struct {
		p     float64
		label string
	}{{0.25, "p25"}, {0.5, "p50"}, {0.75, "p75"}, {0.9, "p90"}, {1, "max"}} {
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/><text x="%.0f" y="%.1f" text-anchor="end">%s</text>`,
			padL, yOf(t.p), padL+iw, yOf(t.p), padL-4, yOf(t.p)+4, t.label)
	}
	for i, s := range series {
		if len(s) == 0 {
			continue
		}
		var pts strings.Builder
		// At most ~400 points per line: evenly spaced ranks plus the max.
		step := max(1, len(s)/400)
		for k := 0; k < len(s); k += step {
			fmt.Fprintf(&pts, "%.1f,%.1f ", xOf(s[k]), yOf(float64(k+1)/float64(len(s))))
		}
		fmt.Fprintf(&pts, "%.1f,%.1f", xOf(s[len(s)-1]), yOf(1))
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, color(names[i], i), pts.String())
	}
	legend(&b, names)
	b.WriteString("</svg>")
	return template.HTML(b.String())
}

// barChart draws grouped bars: one group per index (guest, worker: the x
// axis, labelled xLabel), one bar per series (mode). The y axis (yLabel)
// runs from 0 to a round value at or above the tallest bar, with round
// ticks. ref, if not NaN, is drawn as a dashed line.
func barChart(title, xLabel, yLabel string, names []string, series [][]float64, ref float64) template.HTML {
	var b strings.Builder
	svgOpen(&b, title, xLabel, yLabel)
	groups, top := 0, 0.0
	for _, s := range series {
		groups = max(groups, len(s))
		for _, x := range s {
			top = math.Max(top, x)
		}
	}
	if !math.IsNaN(ref) {
		top = math.Max(top, ref)
	}
	if top <= 0 {
		top = 1
	}
	step := niceStep(top, 5)
	top = math.Ceil(top/step*(1-1e-9)) * step
	iw, ih := chartW-padL-padR, chartH-padT-padB
	yOf := func(v float64) float64 { return padT + ih*(1-v/top) }
	for k := 0; float64(k)*step <= top*(1+1e-9); k++ {
		v := float64(k) * step
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/><text x="%.0f" y="%.1f" text-anchor="end">%s</text>`,
			padL, yOf(v), padL+iw, yOf(v), padL-4, yOf(v)+4, tickLabel(v))
	}
	if groups > 0 {
		gw := iw / float64(groups)
		bw := gw * 0.8 / float64(max(1, len(series)))
		every := (groups + 15) / 16 // label at most 16 groups
		for g := 0; g < groups; g++ {
			x0 := padL + gw*float64(g) + gw*0.1
			for i, s := range series {
				if g >= len(s) {
					continue
				}
				y := yOf(s[g])
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s %d: %s</title></rect>`,
					x0+bw*float64(i), y, math.Max(bw-1, 1), padT+ih-y, color(names[i], i), html.EscapeString(names[i]), xLabel, g, num(s[g]))
			}
			if g%every == 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%d</text>`, x0+gw*0.4, padT+ih+14, g)
			}
		}
	}
	if !math.IsNaN(ref) {
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#333" stroke-dasharray="4 3"/>`, padL, yOf(ref), padL+iw, yOf(ref))
	}
	legend(&b, names)
	b.WriteString("</svg>")
	return template.HTML(b.String())
}
