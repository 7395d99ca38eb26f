package compare

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/wasmsched/wasmsched/internal/experiment"
)

// Row names of the table, in order (tests look for them).
var RowNames = []string{
	"guest throughput (Gfuel/s)",
	"fairness (Jain's index)",
	"timer probe late p50/p99/max (µs)",
	"external wake p50/p99/max (µs)",
	"migrations per 1,000 yields",
	"steals /s",
	"LIFO polls /s",
	"deferred releases /s",
	"parks /s",
	"other processes' CPU (cores)",
}

// rowCells format each row of RowNames for one mode.
var rowCells = []func(ModeResult) string{
	func(m ModeResult) string { return num(m.FuelPerSecond / 1e9) },
	func(m ModeResult) string { return jain(m.Jain) },
	func(m ModeResult) string { return lat(m.Probe) },
	func(m ModeResult) string { return lat(m.ExternalWake) },
	func(m ModeResult) string { return num(float64(m.MigrationsPer1k)) },
	func(m ModeResult) string { return num(m.StealsPerSec) },
	func(m ModeResult) string { return num(m.LIFOPollsPerSec) },
	func(m ModeResult) string { return num(m.DeferredReleasesPerSec) },
	func(m ModeResult) string { return num(m.ParksPerSec) },
	func(m ModeResult) string {
		if math.IsNaN(float64(m.ForeignCores)) {
			return "—"
		}
		return fmt.Sprintf("%.2f", float64(m.ForeignCores))
	},
}

// ServiceRowNames are the service scenario's rows, before RowNames in its
// table (tests look for them).
var ServiceRowNames = []string{
	"request latency p50/p99/max (µs)",
	"request submit lag p50/p99/max (µs)",
	"requests completed / submitted",
	"batch throughput (guest-s of spin /s)",
}

// serviceCells format each row of ServiceRowNames for one mode's
// service figures.
var serviceCells = []func(*ServiceResult) string{
	func(s *ServiceResult) string { return lat(s.Latency) },
	func(s *ServiceResult) string { return lat(s.SubmitLag) },
	func(s *ServiceResult) string { return fmt.Sprintf("%d / %d", s.Completed, s.Submitted) },
	func(s *ServiceResult) string { return num(s.BatchGuestSecondsPerSec) },
}

// tableRow is one row of a scenario's table.
type tableRow struct {
	name    string
	cell    func(ModeResult) string
	foreign bool // other processes' CPU: flagged when it disturbed a run
}

// tableRows are sc's rows: the service scenario's first if it is one,
// then RowNames.
func tableRows(sc ScenarioResult) []tableRow {
	var rows []tableRow
	if sc.Service != nil {
		for i, name := range ServiceRowNames {
			cell := func(m ModeResult) string {
				if m.Service == nil {
					return "—"
				}
				return serviceCells[i](m.Service)
			}
			rows = append(rows, tableRow{name: name, cell: cell})
		}
	}
	for i, name := range RowNames {
		rows = append(rows, tableRow{name: name, cell: rowCells[i], foreign: i == len(RowNames)-1})
	}
	return rows
}

// serviceNote describes the service scenario's request and how its rows
// are measured, in lines.
func serviceNote(s *ServiceSetup) []string {
	return []string{
		fmt.Sprintf("requests: spin(%d) of the embedded spin guest (%d fuel; fastest plain call %s µs), one due every %s from a goroutine outside the runtime;",
			s.RequestIterations, s.RequestFuel, num(s.RequestCallUS), s.RequestPeriod),
		fmt.Sprintf("latency from the moment a request was due to its result; batch throughput: the batch guests' fuel in seconds of plain spin (%s Gfuel/s) per second",
			num(s.SpinFuelPerSecond/1e9)),
	}
}

// WriteTable writes the report as plain-text tables, one per scenario, a
// column per mode.
func WriteTable(w io.Writer, rep *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "wasmsched compare: %d workers (GOMAXPROCS %d, %d CPUs, %s), guest %s, %s interrupt (epoch tick %s, poll interval %d, fuel slice %d), %s window per run\n",
		rep.Workers, rep.GOMAXPROCS, rep.NumCPU, rep.GoVersion, rep.Guest, rep.Interrupt, rep.EpochTick, rep.PollInterval, rep.FuelSlice, rep.Duration)
	if rep.Incomplete != nil {
		fmt.Fprintf(&b, "%s\n", incompleteNote(rep.Incomplete))
	}
	if n := oversubscribedNote(rep); n != "" {
		fmt.Fprintf(&b, "%s\n", n)
	}
	for _, sc := range rep.Scenarios {
		fmt.Fprintf(&b, "\n%s: %s (%d guests)\n", sc.Name, sc.About, sc.Guests)
		if sc.Service != nil {
			fmt.Fprintf(&b, "  %s\n", strings.Join(serviceNote(sc.Service), "\n  "))
		}
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		row := func(name string, cell func(ModeResult) string) {
			fmt.Fprintf(tw, "%s\t", name)
			for _, m := range sc.Modes {
				fmt.Fprintf(tw, "%s\t", cell(m))
			}
			fmt.Fprintln(tw)
		}
		row("", func(m ModeResult) string { return m.Mode })
		for _, tr := range tableRows(sc) {
			row(tr.name, tr.cell)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(disturbed(sc)) > 0 {
			fmt.Fprintf(&b, "  note: other processes used more than 0.2 cores during a run: its latency and throughput figures are disturbed\n")
		}
		for _, m := range sc.Modes {
			if m.Placement != "" {
				fmt.Fprintf(&b, "  %s: %s\n", m.Mode, m.Placement)
			}
			if m.Restarts > 0 {
				fmt.Fprintf(&b, "  %s: guests returned and were restarted %d times\n", m.Mode, m.Restarts)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// DisturbedCores is how many cores other processes may use during a run
// before its figures are flagged as disturbed.
const DisturbedCores = 0.2

// disturbed are the modes of sc during whose run other processes used more
// than DisturbedCores.
func disturbed(sc ScenarioResult) []ModeResult {
	var out []ModeResult
	for _, m := range sc.Modes {
		if float64(m.ForeignCores) > DisturbedCores {
			out = append(out, m)
		}
	}
	return out
}

// incompleteNote says which runs a stopped report lacks.
func incompleteNote(in *Incomplete) string {
	s := fmt.Sprintf("incomplete: %d of %d runs finished", in.Finished, in.Planned)
	if in.During != "" {
		s += "; stopped during " + in.During
	}
	return s + " (" + in.Reason + "): the tables hold the runs that finished"
}

// num formats with three significant digits (no exponent).
func num(x float64) string {
	switch {
	case math.IsNaN(x):
		return "—"
	case x == 0:
		return "0"
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 10:
		return fmt.Sprintf("%.1f", x)
	case math.Abs(x) >= 1:
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.3f", x)
}

func lat(l experiment.Latency) string {
	if l.N == 0 {
		return "—"
	}
	return num(float64(l.P50)) + " / " + num(float64(l.P99)) + " / " + num(float64(l.Max))
}

func jain(j experiment.Num) string {
	if math.IsNaN(float64(j)) {
		return "—"
	}
	return fmt.Sprintf("%.4f", float64(j))
}

// oversubscribedNote says, when GOMAXPROCS exceeds the CPUs, that the
// goroutines outside the runtime (the request submitter and the goroutines
// waiting for results, the timer probe, the external waker) then run on
// an OS thread that must take a CPU from a busy worker: their figures'
// tails include the OS scheduler's time slices (milliseconds), not only
// the runtime's. Empty otherwise.
func oversubscribedNote(rep *Report) string {
	if rep.NumCPU <= 0 || rep.GOMAXPROCS <= rep.NumCPU {
		return ""
	}
	return fmt.Sprintf("note: GOMAXPROCS %d is more than the %d CPUs: the goroutines outside the runtime (probe, waker, requests and their waiters) take a CPU from a busy worker through the OS scheduler, whose time slices (milliseconds) then show in the latency tails; run with fewer workers (--workers %d) to see the runtime's alone",
		rep.GOMAXPROCS, rep.NumCPU, max(1, rep.NumCPU-1))
}
