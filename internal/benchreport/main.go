// Command benchreport is a development tool, not part of wasmsched's
// user interface: scripts/benchmarks.sh runs it to write BENCHMARKS.md from
// the raw `go test -bench` output of package scheduler (several -count
// runs), benchstat's summary of it, and the yield experiment's JSON (a list
// of experiment.YieldResult, written by TestYieldExperiment in
// scheduler/yieldexp_test.go). It adds the machine, the date, the Go
// version and the exact command, puts Tokio's figures from issue 2 and
// DESIGN.md (experiment.TokioYields) beside ours with the ratios, marks
// each target met or missed, and appends any BENCHMARKS.part.md files
// written by other tooling (the instrumenter's and the wasm sections).
//
// It reads the yield experiment's rows through the type the experiment
// writes, internal/experiment.YieldResult, so the two cannot drift apart,
// and its medians are experiment.Median, the yield experiment's.
//
// BENCHMARKS.md is generated: edit this program or the script, never the file.
//
// Usage:
//
//	go run ./internal/benchreport -bench bench.txt -benchstat benchstat.txt \
//	    -yieldexp yieldexp.json -cmd "scripts/benchmarks.sh" \
//	    -part wasmtask/instrument/BENCHMARKS.part.md -o BENCHMARKS.md
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wasmsched/wasmsched/internal/experiment"
)

// tokioWorkload is one row of issue 2's Tokio table: Tokio 1.24.2 (Debian's
// packaged crates), worker_threads(2), LIFO slot on, this machine (2
// cores), median of 5 processes, each timing >= 2 s after warm-up.
type tokioWorkload struct {
	bench   string  // our benchmark name (without "Benchmark")
	tokio   string  // Tokio's benchmark name
	unit    string  // our ReportMetric unit, Tokio's "ns per ..." unit
	ns      float64 // Tokio, ns per unit
	what    string  // what one iteration does (issue 2)
	beatsGo bool    // target: faster than plain goroutines
}

// Source: issue 2, "Benchmarks" section.
var tokioWorkloads = []tokioWorkload{
	{"SpawnManyLocal", "spawn_many_local", "ns/task", 346, "from inside a task, spawn 10,000 empty tasks; the last to finish signals", true},
	{"SpawnManyRemoteIdle", "spawn_many_remote_idle", "ns/task", 250, "from outside, spawn 10,000 empty tasks, then await every handle", true},
	{"SpawnManyRemoteBusy1", "spawn_many_remote_busy1", "ns/task", 301, "the same while 2 x workers background tasks loop { yield_now; stall 10 us }", true},
	{"YieldMany", "yield_many", "ns/yield", 34, "200 tasks spawned from outside, each yields 1,000 times (yield_now: our deferred path)", true},
	{"PingPong", "ping_pong", "ns/ping", 628, "one task spawns 1,000 \"ping\" tasks; each spawns a \"pong\" task and does a oneshot round trip with it", false},
	{"ChainedSpawn", "chained_spawn", "ns/spawn", 203, "a chain of 1,000 tasks, each spawning the next; the last signals", false},
}

// Source: issue 2: "With the LIFO slot off, chained_spawn rises to 341 ns
// and the rest stay within noise."
const tokioChainedSpawnNoLIFO = 341.0

// Target ratio from issue 2: every workload at most 1.5x Tokio per op.
const maxTokioRatio = 1.5

func main() {
	var (
		benchFile  = flag.String("bench", "", "raw `go test -bench` output (required)")
		statFile   = flag.String("benchstat", "", "benchstat output of the same runs (optional, included verbatim)")
		yieldFile  = flag.String("yieldexp", "", "the yield experiment's JSON (optional)")
		yieldLog   = flag.String("yieldlog", "", "the yield experiment's test log (optional, included verbatim)")
		command    = flag.String("cmd", "scripts/benchmarks.sh", "the command that produced the inputs")
		benchCmd   = flag.String("benchcmd", "", "the exact go test -bench command")
		yieldCmd   = flag.String("yieldcmd", "", "the exact command of the yield experiment")
		goVersion  = flag.String("goversion", "", "output of `go version` (default: this program's runtime.Version)")
		commit     = flag.String("commit", "", "the commit measured (git describe --always --dirty)")
		foreign    = flag.String("foreign", "", "cores other processes kept busy, on average, during the benchmarks")
		load       = flag.String("load", "", "load averages seen around the runs (other work on the machine skews the figures)")
		out        = flag.String("o", "BENCHMARKS.md", "output file")
		partsFlags multiFlag
	)
	flag.Var(&partsFlags, "part", "a BENCHMARKS.part.md file to append (repeatable)")
	flag.Parse()
	if *benchFile == "" {
		fmt.Fprintln(os.Stderr, "benchreport: -bench is required")
		os.Exit(2)
	}
	if err := run(config{
		bench: *benchFile, stat: *statFile, yield: *yieldFile, yieldLog: *yieldLog,
		command: *command, benchCmd: *benchCmd, yieldCmd: *yieldCmd,
		goVersion: *goVersion, commit: *commit, load: *load, foreign: *foreign, out: *out, parts: partsFlags,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

type config struct {
	bench, stat, yield, yieldLog string
	command, benchCmd, yieldCmd  string
	goVersion, commit, out, load string
	foreign                      string
	parts                        []string
	now                          time.Time // zero: time.Now()
}

func run(c config) error {
	f, err := os.Open(c.bench)
	if err != nil {
		return err
	}
	defer f.Close()
	bs, err := parseBench(f)
	if err != nil {
		return err
	}
	var stat string
	if c.stat != "" {
		b, err := os.ReadFile(c.stat)
		if err != nil {
			return err
		}
		stat = string(b)
	}
	var yields []experiment.YieldResult
	if c.yield != "" {
		b, err := os.ReadFile(c.yield)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &yields); err != nil {
			return fmt.Errorf("%s: %w", c.yield, err)
		}
	}
	var ylog string
	if c.yieldLog != "" {
		b, err := os.ReadFile(c.yieldLog)
		if err != nil {
			return err
		}
		ylog = string(b)
	}
	var md strings.Builder
	writeReport(&md, c, bs, stat, yields, ylog)
	return os.WriteFile(c.out, []byte(md.String()), 0o644)
}

// benchSet holds every sample of every (benchmark, unit) in the input,
// plus the header lines go test prints (goos, goarch, pkg, cpu).
type benchSet struct {
	samples map[string]map[string][]float64 // name (no -N suffix) -> unit -> values
	procs   map[string]int                  // name -> the -N suffix (GOMAXPROCS)
	header  map[string]string
	order   []string
}

// parseBench reads `go test -bench` output. A result line is
//
//	BenchmarkName/sub-2   <iterations>   <value> <unit>   <value> <unit> ...
func parseBench(r io.Reader) (*benchSet, error) {
	bs := &benchSet{samples: map[string]map[string][]float64{}, procs: map[string]int{}, header: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, "Benchmark") && !strings.Contains(k, " ") {
			bs.header[k] = strings.TrimSpace(v)
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			continue
		}
		name := strings.TrimPrefix(fields[0], "Benchmark")
		procs := 1
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if n, err := strconv.Atoi(name[i+1:]); err == nil {
				name, procs = name[:i], n
			}
		}
		if _, ok := bs.samples[name]; !ok {
			bs.samples[name] = map[string][]float64{}
			bs.order = append(bs.order, name)
		}
		bs.procs[name] = procs
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("bad value %q in %q", fields[i], line)
			}
			bs.samples[name][fields[i+1]] = append(bs.samples[name][fields[i+1]], v)
		}
	}
	return bs, sc.Err()
}

// stat is the median of a sample with its spread.
type stat struct {
	median, min, max float64
	n                int
}

func (bs *benchSet) get(name, unit string) (stat, bool) {
	xs := bs.samples[name][unit]
	if len(xs) == 0 {
		return stat{}, false
	}
	return summarise(xs), true
}

func summarise(xs []float64) stat {
	return stat{median: experiment.Median(xs), min: slices.Min(xs), max: slices.Max(xs), n: len(xs)}
}

// String is "median ±spread%" where spread is the largest distance from the
// median to the min or max, as a percentage of the median.
func (s stat) String() string {
	if s.n == 0 {
		return "—"
	}
	spread := 0.0
	if s.median != 0 {
		spread = 100 * max(s.max-s.median, s.median-s.min) / s.median
	}
	return fmt.Sprintf("%s ±%.0f%%", num(s.median), spread)
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "—"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func kernel() string {
	out, err := exec.Command("uname", "-srm").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func writeReport(w *strings.Builder, c config, bs *benchSet, stat string, ys []experiment.YieldResult, ylog string) {
	now := c.now
	if now.IsZero() {
		now = time.Now()
	}
	gover := c.goVersion
	if gover == "" {
		gover = runtime.Version()
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }

	p("# wasmsched benchmarks\n\n")
	p("<!-- Generated by internal/benchreport from scripts/benchmarks.sh. Do not edit by hand: rerun the script. -->\n\n")
	p("Generated by `%s` on %s.\n\n", c.command, now.UTC().Format("2006-01-02 15:04 MST"))
	p("| | |\n|---|---|\n")
	p("| machine | %d CPUs (`nproc`), %s |\n", runtime.NumCPU(), cpuModel())
	if cpu := bs.header["cpu"]; cpu != "" {
		p("| go test's cpu line | %s |\n", cpu)
	}
	p("| kernel | %s |\n", kernel())
	p("| Go | %s |\n", strings.TrimSpace(gover))
	if c.commit != "" {
		p("| commit measured | %s |\n", c.commit)
	}
	if c.load != "" {
		p("| load average (1/5/15 min) | %s |\n", c.load)
	}
	if c.foreign != "" {
		p("| other processes during the benchmarks | %s cores busy on average (of %d; /proc/stat minus the benchmarks' own CPU time) |\n", c.foreign, runtime.NumCPU())
	}
	if c.benchCmd != "" {
		p("| benchmarks | `%s` |\n", c.benchCmd)
	}
	if c.yieldCmd != "" {
		p("| yield experiment | `%s` |\n", c.yieldCmd)
	}
	p("\n")
	p("Tokio figures are those of issue 2 (Tokio 1.24.2, Debian's packaged crates, `worker_threads(2)`, LIFO slot on, " +
		"this machine, median of 5 processes each timing >= 2 s after warm-up) and DESIGN.md (\"Where we mean to beat Tokio\"). " +
		"They were measured once, not by this script. Our figures are the median over the `-count` runs, ± the largest " +
		"distance from the median to the fastest or slowest run.\n\n")

	// ---------------------------------------------------------------
	p("## Executor workloads (Tokio's benches/rt_multi_threaded.rs)\n\n")
	p("Each workload runs on a 2-worker runtime with the LIFO slot on (`/wasmsched`) and as plain goroutines " +
		"(`/goroutines`: go statement, sync.WaitGroup or channels, runtime.Gosched for yields) in the same process. " +
		"Time per unit is the benchmark's wall time divided by the units of work (Tokio's unit).\n\n")
	p("Targets (issue 2): every workload at most %.1fx Tokio's time per unit; faster than goroutines on spawn_many_* and yield_many.\n\n", maxTokioRatio)
	p("| workload | unit | wasmsched | goroutines | wasmsched / goroutines | Tokio 1.24 | wasmsched / Tokio | ≤ %.1fx Tokio | faster than goroutines |\n", maxTokioRatio)
	p("|---|---|---:|---:|---:|---:|---:|---|---|\n")
	for _, t := range tokioWorkloads {
		ws, okW := bs.get(t.bench+"/wasmsched", t.unit)
		gs, okG := bs.get(t.bench+"/goroutines", t.unit)
		if !okW {
			p("| %s | %s | not run | | | %s | | | |\n", t.tokio, t.unit, num(t.ns))
			continue
		}
		beat := "(no target)"
		if t.beatsGo && okG {
			beat = verdict(ws.median < gs.median)
		}
		gcol, gratio := "—", "—"
		if okG {
			gcol, gratio = gs.String(), ratio(ws.median, gs.median)
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t.tokio, t.unit, ws, gcol, gratio,
			num(t.ns), ratio(ws.median, t.ns), verdict(ws.median <= maxTokioRatio*t.ns), beat)
	}
	p("\nWhat one iteration does:\n\n")
	for _, t := range tokioWorkloads {
		p("- **%s** (`Benchmark%s`): %s.\n", t.tokio, t.bench, t.what)
	}

	// Variants without a goroutine column.
	p("\n### Variants\n\n")
	p("| benchmark | unit | wasmsched | Tokio 1.24 | wasmsched / Tokio | note |\n|---|---|---:|---:|---:|---|\n")
	if s, ok := bs.get("YieldMany/wasmsched-immediate", "ns/yield"); ok {
		p("| yield_many, immediate path (`YieldMany/wasmsched-immediate`) | ns/yield | %s | — | — | Tokio's yield_many uses yield_now (deferred) |\n", s)
	}
	if s, ok := bs.get("ChainedSpawn/wasmsched-nolifo", "ns/spawn"); ok {
		p("| chained_spawn, LIFO slot off (`ChainedSpawn/wasmsched-nolifo`) | ns/spawn | %s | %s | %s | Tokio's LIFO-off figure, issue 2 |\n",
			s, num(tokioChainedSpawnNoLIFO), ratio(s.median, tokioChainedSpawnNoLIFO))
	}

	// Yield round trip.
	var rt []string
	for _, name := range bs.order {
		if strings.HasPrefix(name, "YieldRoundTrip/") {
			rt = append(rt, name)
		}
	}
	if len(rt) > 0 {
		p("\n## Yield round trip\n\n")
		p("One task yields in a loop on an otherwise idle 2-worker runtime: the cost of a yield and the re-poll that follows. " +
			"`pollfn` is a poll function (`cx.Yield()` / `cx.YieldNow()` then pending); `stackful` is `co.Yield()` / `co.YieldNow()` " +
			"in a coroutine (a coroutine switch each way); `goroutines-Gosched` is runtime.Gosched in a loop.\n\n")
		p("| benchmark | ns/yield | B/op | allocs/op |\n|---|---:|---:|---:|\n")
		for _, name := range rt {
			s, _ := bs.get(name, "ns/yield")
			b, _ := bs.get(name, "B/op")
			a, _ := bs.get(name, "allocs/op")
			p("| %s | %s | %s | %s |\n", strings.TrimPrefix(name, "YieldRoundTrip/"), s, num(b.median), num(a.median))
		}
	}

	// Allocations.
	p("\n## Allocations per iteration\n\n| benchmark | B/op | allocs/op |\n|---|---:|---:|\n")
	for _, name := range bs.order {
		if strings.HasPrefix(name, "YieldRoundTrip/") {
			continue
		}
		b, okB := bs.get(name, "B/op")
		a, okA := bs.get(name, "allocs/op")
		if okB && okA {
			p("| %s | %s | %s |\n", name, num(b.median), num(a.median))
		}
	}

	if len(ys) > 0 {
		writeYield(w, ys, ylog)
	}

	if stat != "" {
		p("\n## benchstat\n\n<details><summary>benchstat output of the runs above</summary>\n\n```\n%s```\n\n</details>\n", ensureNL(stat))
	}

	p("\n## Other sections\n\n")
	p("<!-- BEGIN parts: each BENCHMARKS.part.md in the tree, appended by scripts/benchmarks.sh (the instrumenter's and the wasm sections). -->\n\n")
	if len(c.parts) == 0 {
		p("_No BENCHMARKS.part.md files yet (the instrumenter's and the wasm sections will be added here by their own tooling)._\n\n")
	}
	for _, path := range c.parts {
		b, err := os.ReadFile(path)
		if err != nil {
			p("_%s: %v_\n\n", path, err)
			continue
		}
		p("<!-- part: %s -->\n\n%s\n", path, ensureNL(string(b)))
	}
	p("<!-- END parts -->\n")
}

func ensureNL(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

// fp is a statistic as a float64 (NaN: unknown).
func fp(n experiment.Num) float64 { return float64(n) }

func writeYield(w *strings.Builder, ys []experiment.YieldResult, ylog string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	first := ys[0]
	p("\n## The yield experiment\n\n")
	p("DESIGN.md's experiment on this runtime (scheduler/yieldexp_test.go): 2 workers; spinner tasks that spin 50 µs and then yield "+
		"through one path; a timer probe (a stackful task: `co.Sleep(1ms)` in a loop; *late* = actual − 1 ms); an external waker "+
		"(a goroutine outside the runtime wakes a parked task every 1 ms; delay from its send to the task's poll). "+
		"Each figure is the median over %d runs of %.0f s (after %s warm-up); *n* is the sample count of the median run. "+
		"Migrations are counted by the spinners themselves (a poll on another worker than the previous one) per 1,000 spinner yields, "+
		"as DESIGN.md's figures are; the runtime-wide figure from `Stats().Total().Migrations` also counts the probe and the externally "+
		"woken task, which go through the injector and so land on either worker. *Spinners' CPU share* is spinner iterations × 50 µs "+
		"over the time they could have spun (seconds × min(spinners, 2)): near 1 on a quiet machine; well below 1 means other "+
		"processes took the cores during the run, and every latency in that row is inflated by it. *Other processes* is how many "+
		"cores the rest of the machine kept busy during the measured window (/proc/stat minus this process's CPU time); a run during "+
		"which they used more than 0.15 cores is repeated, up to 3 x runs attempts, and the least disturbed runs are kept (*runs kept / made*). "+
		"The machine is shared with other work, so rows whose *other processes* figure is well above 0.15 are disturbed and are not "+
		"a fair comparison with Tokio's.\n\n",
		first.Runs, first.Seconds, "200 ms")
	p("GOMAXPROCS is workers + 1 (3) except where noted: the workers are goroutines that do not block while they have work, so at " +
		"GOMAXPROCS=2 the external waker goroutine gets a P only when Go preempts a worker (10 ms); Tokio's sender is an OS thread. " +
		"The `4x-deferred-gmp2` row shows GOMAXPROCS=2. The machine still has 2 cores.\n\n")
	p("| case | path | LIFO | probe late p50 / p99 / max (µs) | n | external wake p50 / p99 / max (µs) | n | iterations per spinner | Jain | migrations / 1k yields | runtime-wide migrations / 1k | spinners' CPU share | other processes (cores, max) | runs kept / made |\n")
	p("|---|---|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---|\n")
	for _, r := range ys {
		lifo := "on"
		if !r.LIFO {
			lifo = "off"
		}
		name := r.Case
		if r.GoProbe {
			name += " (probe: goroutine time.Sleep)"
		}
		p("| %s | %s | %s | %s / %s / %s | %d | %s / %s / %s | %d | %s | %s | %s | %s | %s | %s | %d / %d |\n", name, r.Path, lifo,
			num(fp(r.Probe[0])), num(fp(r.Probe[1])), num(fp(r.Probe[2])), r.ProbeN,
			num(fp(r.Ext[0])), num(fp(r.Ext[1])), num(fp(r.Ext[2])), r.ExtN,
			iters(r.Iters), jain(fp(r.Jain)), num(fp(r.MigPer1k)), num(fp(r.RtMigPer1k)), num(fp(r.CPUShare)),
			num(fp(r.ForeignMax)), r.Runs, max(r.Attempts, r.Runs))
	}
	for _, r := range ys {
		if r.Placement != "" {
			p("\n%s: %s.", r.Case, r.Placement)
		}
	}
	p("\n\nTokio 1.24 on this machine (DESIGN.md; medians of 5 runs; Tokio's timer has 1 ms resolution):\n\n")
	p("| case | probe late p50 / p99 (µs) | external wake p50 / p99 (µs) | migrations / 1k yields | our row |\n|---|---|---|---:|---|\n")
	for _, t := range experiment.TokioYields {
		var ours []string
		for _, r := range ys {
			if r.Tokio == t.Row {
				ours = append(ours, r.Case)
			}
		}
		p("| %s | %s / %s | %s / %s | %s | %s |\n", t.Row, num(t.ProbeP50*1000), num(t.ProbeP99*1000),
			num(t.ExtP50), num(t.ExtP99), num(t.Migrations), strings.Join(ours, ", "))
	}

	// Goals (issue 2, DESIGN.md).
	byName := map[string]experiment.YieldResult{}
	for _, r := range ys {
		byName[r.Case] = r
	}
	tok := map[string]experiment.TokioYield{}
	for _, t := range experiment.TokioYields {
		tok[t.Row] = t
	}
	p("\n### Goals\n\n| goal | measured | |\n|---|---|---|\n")
	for _, c := range []string{"4x-deferred", "1x-deferred"} {
		r, ok := byName[c]
		if !ok {
			continue
		}
		t := tok[r.Tokio]
		p("| %s: external wake no worse than Tokio's yield_now row (p50 ≤ %s, p99 ≤ %s µs) | %s / %s µs | %s |\n", c,
			num(t.ExtP50), num(t.ExtP99), num(fp(r.Ext[0])), num(fp(r.Ext[1])),
			verdict(fp(r.Ext[0]) <= t.ExtP50 && fp(r.Ext[1]) <= t.ExtP99))
		p("| %s: probe no worse than Tokio's yield_now row (p50 ≤ %s, p99 ≤ %s µs) | %s / %s µs | %s |\n", c,
			num(t.ProbeP50*1000), num(t.ProbeP99*1000), num(fp(r.Probe[0])), num(fp(r.Probe[1])),
			verdict(fp(r.Probe[0]) <= t.ProbeP50*1000 && fp(r.Probe[1]) <= t.ProbeP99*1000))
	}
	if r, ok := byName["4x-deferred"]; ok {
		p("| 4x-deferred: migrations < 10 per 1,000 yields (Tokio: 324) | %s | %s |\n", num(fp(r.MigPer1k)), verdict(fp(r.MigPer1k) < 10))
	}
	if r, ok := byName["uneven-deferred"]; ok {
		p("| uneven-deferred (3 + 1 spinners): Jain's index ≥ 0.98 | %s | %s |\n", jain(fp(r.Jain)), verdict(fp(r.Jain) >= 0.98))
	}
	if r, ok := byName["idle"]; ok {
		// "Well under 1 ms" read as: p50 at most a quarter of the sleep, p99 under 1 ms.
		p("| idle: a 1 ms sleep late by well under 1 ms (read as p50 ≤ 250 µs and p99 < 1,000 µs; Tokio: about 1 ms) | %s / %s µs | %s |\n",
			num(fp(r.Probe[0])), num(fp(r.Probe[1])), verdict(fp(r.Probe[0]) <= 250 && fp(r.Probe[1]) < 1000))
	}
	if r, ok := byName["idle-go-sleep"]; ok {
		p("| (reference) idle: Go's own time.Sleep(1 ms) from a goroutine, same machine | %s / %s µs | — |\n",
			num(fp(r.Probe[0])), num(fp(r.Probe[1])))
	}
	if ylog != "" {
		p("\n<details><summary>the experiment's log</summary>\n\n```\n%s```\n\n</details>\n", ensureNL(ylog))
	}
}

func iters(xs []uint64) string {
	if len(xs) == 0 {
		return "—"
	}
	var s []string
	for _, x := range xs {
		s = append(s, strconv.FormatUint(x, 10))
	}
	return strings.Join(s, " / ")
}

func jain(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.4f", v)
}
