package main

import (
	"strings"

	"github.com/wasmsched/wasmsched/internal/experiment"
)

// fp is a statistic as a float64 (NaN: unknown).
func fp(n experiment.Num) float64 { return float64(n) }

// yield is the yield experiment's section: how it was run, its rows, the
// Tokio figures they compare with, the goals, and its log if given.
func (d *document) yield() {
	d.yieldIntro()
	d.yieldTable()
	d.yieldTokio()
	d.yieldGoals()
	if ylog := d.in.ylog; ylog != "" {
		d.p("\n<details><summary>the experiment's log</summary>\n\n```\n%s```\n\n</details>\n", ensureNL(ylog))
	}
}

// yieldIntro says how the experiment was run and how to read its table.
func (d *document) yieldIntro() {
	first := d.in.yields[0]
	d.p("\n## The yield experiment\n\n")
	d.p("DESIGN.md's experiment on this runtime (scheduler/yieldexp_test.go): 2 workers; spinner tasks that spin 50 µs and then yield "+
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
	d.p("GOMAXPROCS is workers + 1 (3) except where noted: the workers are goroutines that do not block while they have work, so at " +
		"GOMAXPROCS=2 the external waker goroutine gets a P only when Go preempts a worker (10 ms); Tokio's sender is an OS thread. " +
		"The `4x-deferred-gmp2` row shows GOMAXPROCS=2. The machine still has 2 cores.\n\n")
}

// yieldTable is a row per case, then the uneven cases' placements.
func (d *document) yieldTable() {
	ys := d.in.yields
	d.p("| case | path | LIFO | probe late p50 / p99 / max (µs) | n | external wake p50 / p99 / max (µs) | n | iterations per spinner | Jain | migrations / 1k yields | runtime-wide migrations / 1k | spinners' CPU share | other processes (cores, max) | runs kept / made |\n")
	d.p("|---|---|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---|\n")
	for _, r := range ys {
		lifo := "on"
		if !r.LIFO {
			lifo = "off"
		}
		name := r.Case
		if r.GoProbe {
			name += " (probe: goroutine time.Sleep)"
		}
		d.p("| %s | %s | %s | %s / %s / %s | %d | %s / %s / %s | %d | %s | %s | %s | %s | %s | %s | %d / %d |\n", name, r.Path, lifo,
			num(fp(r.Probe[0])), num(fp(r.Probe[1])), num(fp(r.Probe[2])), r.ProbeN,
			num(fp(r.Ext[0])), num(fp(r.Ext[1])), num(fp(r.Ext[2])), r.ExtN,
			iters(r.Iters), jain(fp(r.Jain)), num(fp(r.MigPer1k)), num(fp(r.RtMigPer1k)), num(fp(r.CPUShare)),
			num(fp(r.ForeignMax)), r.Runs, max(r.Attempts, r.Runs))
	}
	for _, r := range ys {
		if r.Placement != "" {
			d.p("\n%s: %s.", r.Case, r.Placement)
		}
	}
}

// yieldTokio is DESIGN.md's Tokio table, with our rows that compare with
// each of its rows.
func (d *document) yieldTokio() {
	d.p("\n\nTokio 1.24 on this machine (DESIGN.md; medians of 5 runs; Tokio's timer has 1 ms resolution):\n\n")
	d.tokioYieldTable(experiment.TokioYields)
	d.p("\nTokio 1.53.1, the newest, on this machine (issue 12; the same setup; the 4-spinner cases):\n\n")
	d.tokioYieldTable(experiment.TokioYields153)
}

func (d *document) tokioYieldTable(rows []experiment.TokioYield) {
	d.p("| case | probe late p50 / p99 (µs) | external wake p50 / p99 (µs) | migrations / 1k yields | our row |\n|---|---|---|---:|---|\n")
	for _, t := range rows {
		var ours []string
		for _, r := range d.in.yields {
			if r.Tokio == t.Row {
				ours = append(ours, r.Case)
			}
		}
		d.p("| %s | %s / %s | %s / %s | %s | %s |\n", t.Row, num(t.ProbeP50*1000), num(t.ProbeP99*1000),
			num(t.ExtP50), num(t.ExtP99), num(t.Migrations), strings.Join(ours, ", "))
	}
}

// yieldGoals are the experiment's goals (issue 2, DESIGN.md), met or
// missed.
func (d *document) yieldGoals() {
	ys := d.in.yields
	byName := map[string]experiment.YieldResult{}
	for _, r := range ys {
		byName[r.Case] = r
	}
	tok := map[string]experiment.TokioYield{}
	for _, t := range experiment.TokioYields {
		tok[t.Row] = t
	}
	d.p("\n### Goals\n\n| goal | measured | |\n|---|---|---|\n")
	for _, c := range []string{"4x-deferred", "1x-deferred"} {
		r, ok := byName[c]
		if !ok {
			continue
		}
		t := tok[r.Tokio]
		d.p("| %s: external wake no worse than Tokio's yield_now row (p50 ≤ %s, p99 ≤ %s µs) | %s / %s µs | %s |\n", c,
			num(t.ExtP50), num(t.ExtP99), num(fp(r.Ext[0])), num(fp(r.Ext[1])),
			verdict(fp(r.Ext[0]) <= t.ExtP50 && fp(r.Ext[1]) <= t.ExtP99))
		d.p("| %s: probe no worse than Tokio's yield_now row (p50 ≤ %s, p99 ≤ %s µs) | %s / %s µs | %s |\n", c,
			num(t.ProbeP50*1000), num(t.ProbeP99*1000), num(fp(r.Probe[0])), num(fp(r.Probe[1])),
			verdict(fp(r.Probe[0]) <= t.ProbeP50*1000 && fp(r.Probe[1]) <= t.ProbeP99*1000))
	}
	if r, ok := byName["4x-deferred"]; ok {
		d.p("| 4x-deferred: migrations < 10 per 1,000 yields (Tokio: 324) | %s | %s |\n", num(fp(r.MigPer1k)), verdict(fp(r.MigPer1k) < 10))
	}
	// Issue 12: each path no worse than the newest Tokio's on its row.
	tok153 := map[string]experiment.TokioYield{}
	for _, t := range experiment.TokioYields153 {
		tok153[t.Row] = t
	}
	for _, c := range []string{"4x-deferred", "4x-immediate"} {
		r, ok := byName[c]
		t, known := tok153[r.Tokio]
		if !ok || !known {
			continue
		}
		d.p("| %s: external wake no worse than Tokio 1.53.1's row (p50 ≤ %s, p99 ≤ %s µs; issue 12) | %s / %s µs | %s |\n", c,
			num(t.ExtP50), num(t.ExtP99), num(fp(r.Ext[0])), num(fp(r.Ext[1])),
			verdict(fp(r.Ext[0]) <= t.ExtP50 && fp(r.Ext[1]) <= t.ExtP99))
	}
	if r, ok := byName["uneven-deferred"]; ok {
		d.p("| uneven-deferred (3 + 1 spinners): Jain's index ≥ 0.98 | %s | %s |\n", jain(fp(r.Jain)), verdict(fp(r.Jain) >= 0.98))
	}
	if r, ok := byName["idle"]; ok {
		// "Well under 1 ms" read as: p50 at most a quarter of the sleep, p99 under 1 ms.
		d.p("| idle: a 1 ms sleep late by well under 1 ms (read as p50 ≤ 250 µs and p99 < 1,000 µs; Tokio: about 1 ms) | %s / %s µs | %s |\n",
			num(fp(r.Probe[0])), num(fp(r.Probe[1])), verdict(fp(r.Probe[0]) <= 250 && fp(r.Probe[1]) < 1000))
	}
	if r, ok := byName["idle-go-sleep"]; ok {
		d.p("| (reference) idle: Go's own time.Sleep(1 ms) from a goroutine, same machine | %s / %s µs | — |\n",
			num(fp(r.Probe[0])), num(fp(r.Probe[1])))
	}
}
