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
)

func cmdCompare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: wasmsched compare [flags]

Runs CPU-bound Wasm guests (default: the embedded spin guest) under each
scheduling mode and prints one table per scenario, a column per mode.
Progress goes to stderr. Ctrl-C stops the comparison: the tables (or
JSON, or report) of the runs that finished are still written, and the
exit status is 1.

flags:
`)
		fs.PrintDefaults()
	}
	scenarios := fs.String("scenario", "all", "scenarios, comma-separated: saturated, light, uneven, or all")
	modes := fs.String("modes", "all", "modes, comma-separated: immediate-lifo, immediate-nolifo, deferred, or all")
	workers := fs.Int("workers", 2, "runtime workers")
	guests := fs.Int("guests", 0, "guests per run (0: per scenario — saturated and uneven 2 per worker, light workers-1)")
	duration := fs.Duration("duration", 2*time.Second, "measured window per (scenario, mode) run")
	warmup := fs.Duration("warmup", 200*time.Millisecond, "warm-up before each window (0: none)")
	interrupt := fs.String("interrupt", "epoch", "what interrupts guests: epoch or fuel")
	epochTick := fs.Duration("epoch-tick", time.Millisecond, "engine epoch period (epoch interrupt: a guest runs about one tick per slice)")
	fuelSlice := fs.Int64("fuel-slice", 10_000_000, "fuel between deadlines (fuel interrupt)")
	module := fs.String("module", "", "your own guest: a .wasm file (default: the embedded spin guest)")
	export := fs.String("export", "", "export to call in --module (empty: the module's WASI _start); default guest: spin")
	argList := fs.String("args", "", "comma-separated integer arguments for --export (default guest: 4611686018427387904, i.e. forever)")
	jsonOut := fs.Bool("json", false, "print the results as JSON instead of tables")
	report := fs.String("report", "", "also write a self-contained HTML report with charts to `FILE.html` (checked before the runs)")
	progress := fs.String("progress", "auto", "progress on stderr: auto (a live line when stderr is a terminal, else plain), plain (a line per run) or off")
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
	// In compare.Config a zero means the default; on the command line a
	// zero is refused, as run refuses it (the defaults are the flags').
	switch {
	case *workers < 1:
		return usageErr("--workers must be at least 1, got %d", *workers)
	case *guests < 0:
		return usageErr("--guests must not be negative, got %d", *guests)
	case *gomaxprocs < 0:
		return usageErr("--gomaxprocs must not be negative, got %d", *gomaxprocs)
	case *duration <= 0:
		return usageErr("--duration must be positive, got %v", *duration)
	case *warmup < 0:
		return usageErr("--warmup must not be negative, got %v", *warmup)
	case *epochTick <= 0:
		return usageErr("--epoch-tick must be positive, got %v", *epochTick)
	case *fuelSlice <= 0:
		return usageErr("--fuel-slice must be positive, got %d", *fuelSlice)
	}
	if *warmup == 0 {
		cfg.Warmup = time.Nanosecond // zero means the default in compare.Config
	}
	var err error
	if cfg.Interrupt, err = parseInterrupt(*interrupt, false); err != nil {
		return usageErr("--interrupt: %v", err)
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
	prog, err := newProgress(*progress, isTerminal(stderr), stderr)
	if err != nil {
		return usageErr("--progress: %v", err)
	}
	cfg.Progress = prog.report

	// The report's file is opened now, so that a path that cannot be
	// written fails before the runs, not after them.
	var out *reportFile
	if *report != "" {
		if out, err = openReport(*report); err != nil {
			return usageErr("--report: %v", err)
		}
	}

	rep, err := compare.Run(ctx, cfg)
	prog.done()
	interrupted := err != nil && ctx.Err() != nil && rep != nil
	if err != nil && !interrupted {
		out.abandon()
		if errors.Is(err, compare.ErrInput) {
			fmt.Fprintf(stderr, "wasmsched compare: %v\n", strings.TrimPrefix(err.Error(), compare.ErrInput.Error()+": "))
			return exitUsage
		}
		fmt.Fprintf(stderr, "wasmsched compare: %v\n", err)
		return exitFailure
	}
	// Complete, or interrupted (Ctrl-C): write what finished.
	code := exitOK
	if interrupted {
		code = exitFailure
		fmt.Fprintf(stderr, "wasmsched compare: interrupted after %d of %d runs; writing the runs that finished\n",
			rep.Incomplete.Finished, rep.Incomplete.Planned)
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "wasmsched compare: %v\n", err)
			out.abandon()
			return exitFailure
		}
	} else if err := compare.WriteTable(stdout, rep); err != nil {
		fmt.Fprintf(stderr, "wasmsched compare: %v\n", err)
		out.abandon()
		return exitFailure
	}
	if out != nil {
		if err := out.write(rep); err != nil {
			fmt.Fprintf(stderr, "wasmsched compare: --report: %v\n", err)
			return exitFailure
		}
		if !*jsonOut {
			fmt.Fprintf(stdout, "\nreport: %s\n", *report)
		}
	}
	return code
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
