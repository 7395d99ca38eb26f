package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wasmsched/wasmsched"
	"github.com/wasmsched/wasmsched/internal/compare"
	"github.com/wasmsched/wasmsched/wasmtask"
)

func cmdCompare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: wasmsched compare [flags]

Runs CPU-bound Wasm guests (default: the embedded spin guest) under each
scheduling mode and prints one table per scenario, a column per mode.

flags:
`)
		fs.PrintDefaults()
	}
	scenarios := fs.String("scenario", "all", "scenarios, comma-separated: saturated, light, uneven, or all")
	modes := fs.String("modes", "all", "modes, comma-separated: immediate-lifo, immediate-nolifo, deferred, or all")
	workers := fs.Int("workers", 2, "runtime workers")
	guests := fs.Int("guests", 0, "guests per run (0: per scenario — saturated and uneven 2 per worker, light workers-1)")
	duration := fs.Duration("duration", 2*time.Second, "measured window per (scenario, mode) run")
	warmup := fs.Duration("warmup", 200*time.Millisecond, "warm-up before each window")
	interrupt := fs.String("interrupt", "epoch", "what interrupts guests: epoch or fuel")
	epochTick := fs.Duration("epoch-tick", time.Millisecond, "engine epoch period (epoch interrupt: a guest runs about one tick per slice)")
	fuelSlice := fs.Int64("fuel-slice", 10_000_000, "fuel between deadlines (fuel interrupt)")
	module := fs.String("module", "", "your own guest: a .wasm file (default: the embedded spin guest)")
	export := fs.String("export", "", "export to call in --module (empty: the module's WASI _start); default guest: spin")
	argList := fs.String("args", "", "comma-separated integer arguments for --export (default guest: 4611686018427387904, i.e. forever)")
	jsonOut := fs.Bool("json", false, "print the results as JSON instead of tables")
	report := fs.String("report", "", "also write a self-contained HTML report with charts to `FILE.html`")
	probe := fs.Bool("probe", true, "run the timer probe (a task sleeping 1 ms in a loop); -probe=false to see what it changes")
	external := fs.Bool("external-wake", true, "run the external waker (a goroutine waking a task every 1 ms); -external-wake=false to see what it changes")
	gomaxprocs := fs.Int("gomaxprocs", 0, "GOMAXPROCS during the runs (0: workers+1, so the external waker goroutine has a P)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wasmsched compare: unexpected argument %q (flags only; see -h)\n", fs.Arg(0))
		return exitUsage
	}
	cfg := compare.Config{
		Workers: *workers, Guests: *guests, Duration: *duration, Warmup: *warmup,
		EpochTick: *epochTick, FuelSlice: *fuelSlice, GOMAXPROCS: *gomaxprocs,
		NoProbe: !*probe, NoExternal: !*external,
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "wasmsched compare: "+format+"\n", a...)
		return exitUsage
	}
	if *workers < 1 {
		return usageErr("--workers must be at least 1, got %d", *workers)
	}
	if *guests < 0 {
		return usageErr("--guests must not be negative, got %d", *guests)
	}
	if *gomaxprocs < 0 {
		return usageErr("--gomaxprocs must not be negative, got %d", *gomaxprocs)
	}
	if *warmup == 0 {
		cfg.Warmup = time.Nanosecond // zero means the default in compare.Config
	}
	switch *interrupt {
	case "epoch":
		cfg.Interrupt = wasmtask.InterruptEpoch
	case "fuel":
		cfg.Interrupt = wasmtask.InterruptFuel
	default:
		return usageErr("--interrupt must be epoch or fuel, got %q", *interrupt)
	}
	if *scenarios != "all" {
		for _, s := range strings.Split(*scenarios, ",") {
			cfg.Scenarios = append(cfg.Scenarios, strings.TrimSpace(s))
		}
	}
	if *modes != "all" {
		for _, s := range strings.Split(*modes, ",") {
			m, err := compare.ModeByName(s)
			if err != nil {
				return usageErr("--modes: %v", err)
			}
			cfg.Modes = append(cfg.Modes, m)
		}
	}
	if *module == "" {
		if *export != "" || *argList != "" {
			return usageErr("--export and --args need --module (the default guest is spin(forever))")
		}
		b, err := wasmsched.Guest("spin")
		if err != nil {
			fmt.Fprintf(stderr, "wasmsched compare: %v\n", err)
			return exitFailure
		}
		cfg.Wasm, cfg.ModuleName = b, "spin.wasm (embedded)"
		cfg.Export, cfg.Args = compare.DefaultGuest.Export, compare.DefaultGuest.Args
	} else {
		b, err := os.ReadFile(*module)
		if err != nil {
			return usageErr("--module: %v", err)
		}
		cfg.Wasm, cfg.ModuleName, cfg.Export = b, filepath.Base(*module), *export
		if *argList != "" {
			vals, err := parseArgs(strings.Split(*argList, ","))
			if err != nil {
				return usageErr("--args: %v", err)
			}
			cfg.Args = vals
		}
	}
	if err := cfg.Validate(); err != nil {
		return usageErr("%v", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if isTerminal(stdout) && isTerminal(stderr) {
		cfg.Progress = func(p compare.Progress) {
			fmt.Fprintf(stderr, "\r\033[K[%d/%d] %s / %s  %.1f of %.1f s", p.Run, p.Runs, p.Scenario, p.Mode,
				p.Elapsed.Seconds(), p.Planned.Seconds())
		}
	}
	rep, err := compare.Run(ctx, cfg)
	if cfg.Progress != nil {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil {
		if errors.Is(err, compare.ErrInput) {
			fmt.Fprintf(stderr, "wasmsched compare: %v\n", strings.TrimPrefix(err.Error(), compare.ErrInput.Error()+": "))
			return exitUsage
		}
		fmt.Fprintf(stderr, "wasmsched compare: %v\n", err)
		return exitFailure
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "wasmsched compare: %v\n", err)
			return exitFailure
		}
	} else if err := compare.WriteTable(stdout, rep); err != nil {
		fmt.Fprintf(stderr, "wasmsched compare: %v\n", err)
		return exitFailure
	}
	if *report != "" {
		f, err := os.Create(*report)
		if err == nil {
			err = compare.WriteHTML(f, rep)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "wasmsched compare: --report: %v\n", err)
			return exitFailure
		}
		if !*jsonOut {
			fmt.Fprintf(stdout, "\nreport: %s\n", *report)
		}
	}
	return exitOK
}

// parseArgs parses Wasm integer arguments (decimal, 0x hex, or negative,
// as two's complement).
func parseArgs(ss []string) ([]uint64, error) {
	var out []uint64
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if v, err := strconv.ParseUint(s, 0, 64); err == nil {
			out = append(out, v)
			continue
		}
		v, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		out = append(out, uint64(v))
	}
	return out, nil
}
