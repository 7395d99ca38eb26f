package main

import (
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

const compareUsage = `usage: wasmsched compare [flags]

Runs CPU-bound Wasm guests (default: the embedded spin guest) under each
scheduling mode and prints one table per scenario, a column per mode.
The default scenarios are saturated, light and uneven. The service
scenario (batch guests on every worker while ~50 µs requests arrive from
outside every 1 ms: request latency and batch throughput per mode) is
opt-in, since it would take the default run to about 30 s: ask for it
with --scenario service, or --scenario all for the four.

Progress goes to stderr. Ctrl-C stops the comparison: the tables (or
JSON, or report) of the runs that finished are still written, and the
exit status is 1.

flags:
`

// compareCmd is a parsed `wasmsched compare` invocation: its flags as
// given.
type compareCmd struct {
	scenarios, modes            string
	workers, guests, gomaxprocs int
	duration, warmup, epochTick time.Duration
	interrupt                   string
	fuelSlice, pollInterval     int64
	module, export, args        string
	json                        bool
	report, progress            string
	probe, external             bool
}

// parseCompare parses compare's flags. It returns nil and the exit status
// when the command ends here (help, usage error).
func parseCompare(args []string, stderr io.Writer) (*compareCmd, int) {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, compareUsage); fs.PrintDefaults() }
	cc := &compareCmd{}
	fs.StringVar(&cc.scenarios, "scenario", "default", "scenarios, comma-separated: saturated, light, uneven, service; default (the first three) or all (the four)")
	fs.StringVar(&cc.modes, "modes", "all", "modes, comma-separated: immediate-lifo, immediate-nolifo, deferred, or all")
	fs.IntVar(&cc.workers, "workers", 2, "runtime workers")
	fs.IntVar(&cc.guests, "guests", 0, "guests per run (0: per scenario — saturated, uneven and service's batch 2 per worker, light workers-1)")
	fs.DurationVar(&cc.duration, "duration", 2*time.Second, "measured window per (scenario, mode) run")
	fs.DurationVar(&cc.warmup, "warmup", 200*time.Millisecond, "warm-up before each window (0: none)")
	fs.StringVar(&cc.interrupt, "interrupt", "epoch", "what interrupts guests: epoch or fuel")
	fs.DurationVar(&cc.epochTick, "epoch-tick", time.Millisecond, "engine epoch period (epoch interrupt: a guest runs about one tick per slice)")
	fs.Int64Var(&cc.pollInterval, "poll-interval", wasmtask.DefaultPollInterval, "fuel between two polls of the epoch (epoch interrupt): larger costs guests fewer host calls and deferred guests' give-way more latency")
	fs.Int64Var(&cc.fuelSlice, "fuel-slice", 10_000_000, "fuel between deadlines (fuel interrupt)")
	fs.StringVar(&cc.module, "module", "", "your own guest: a .wasm file (default: the embedded spin guest)")
	fs.StringVar(&cc.export, "export", "", "export to call in --module (empty: the module's WASI _start); default guest: spin")
	fs.StringVar(&cc.args, "args", "", "comma-separated integer arguments for --export (default guest: 4611686018427387904, i.e. forever)")
	fs.BoolVar(&cc.json, "json", false, "print the results as JSON instead of tables")
	fs.StringVar(&cc.report, "report", "", "also write a self-contained HTML report with charts to `FILE.html` (checked before the runs)")
	fs.StringVar(&cc.progress, "progress", "auto", "progress on stderr: auto (a live line when stderr is a terminal, else plain), plain (a line per run) or off")
	fs.BoolVar(&cc.probe, "probe", true, "run the timer probe (a task sleeping 1 ms in a loop); -probe=false to see what it changes")
	fs.BoolVar(&cc.external, "external-wake", true, "run the external waker (a goroutine waking a task every 1 ms); -external-wake=false to see what it changes")
	fs.IntVar(&cc.gomaxprocs, "gomaxprocs", 0, "GOMAXPROCS during the runs (0: workers+1, so the external waker goroutine has a P)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK
		}
		return nil, exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wasmsched compare: unexpected argument %q (flags only; see -h)\n", fs.Arg(0))
		return nil, exitUsage
	}
	return cc, 0
}

// compareError ends compare: its message follows "wasmsched compare: " on
// stderr, and code is the exit status.
type compareError struct {
	code int
	err  error
}

func (e *compareError) Error() string { return e.err.Error() }

// compareUsageErr is a usage error (exitUsage).
func compareUsageErr(format string, a ...any) error {
	return &compareError{exitUsage, fmt.Errorf(format, a...)}
}

// check refuses the numeric flags' values that compare.Config would take
// for its defaults or refuse less clearly.
func (cc *compareCmd) check() error {
	// In compare.Config a zero means the default; on the command line a
	// zero is refused, as run refuses it (the defaults are the flags').
	switch {
	case cc.workers < 1:
		return compareUsageErr("--workers must be at least 1, got %d", cc.workers)
	case cc.guests < 0:
		return compareUsageErr("--guests must not be negative, got %d", cc.guests)
	case cc.gomaxprocs < 0:
		return compareUsageErr("--gomaxprocs must not be negative, got %d", cc.gomaxprocs)
	case cc.duration <= 0:
		return compareUsageErr("--duration must be positive, got %v", cc.duration)
	case cc.warmup < 0:
		return compareUsageErr("--warmup must not be negative, got %v", cc.warmup)
	case cc.epochTick <= 0:
		return compareUsageErr("--epoch-tick must be positive, got %v", cc.epochTick)
	case cc.pollInterval <= 0:
		return compareUsageErr("--poll-interval must be positive, got %d", cc.pollInterval)
	case cc.fuelSlice <= 0:
		return compareUsageErr("--fuel-slice must be positive, got %d", cc.fuelSlice)
	}
	return nil
}

// config makes the comparison's configuration from the flags (without
// Progress) and validates it. Its errors are *compareError.
func (cc *compareCmd) config() (compare.Config, error) {
	cfg := compare.Config{
		Workers: cc.workers, Guests: cc.guests, Duration: cc.duration, Warmup: cc.warmup,
		EpochTick: cc.epochTick, PollInterval: cc.pollInterval, FuelSlice: cc.fuelSlice, GOMAXPROCS: cc.gomaxprocs,
		NoProbe: !cc.probe, NoExternal: !cc.external,
	}
	if err := cc.check(); err != nil {
		return cfg, err
	}
	if cc.warmup == 0 {
		cfg.Warmup = time.Nanosecond // zero means the default in compare.Config
	}
	var err error
	if cfg.Interrupt, err = parseInterrupt(cc.interrupt, false); err != nil {
		return cfg, compareUsageErr("--interrupt: %v", err)
	}
	switch cc.scenarios {
	case "default": // compare.Config's default
	case "all":
		cfg.Scenarios = compare.AllScenarios
	default:
		for _, s := range strings.Split(cc.scenarios, ",") {
			cfg.Scenarios = append(cfg.Scenarios, strings.TrimSpace(s))
		}
	}
	if cc.modes != "all" {
		for _, s := range strings.Split(cc.modes, ",") {
			m, err := compare.ModeByName(s)
			if err != nil {
				return cfg, compareUsageErr("--modes: %v", err)
			}
			cfg.Modes = append(cfg.Modes, m)
		}
	}
	if err := cc.guest(&cfg); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, compareUsageErr("%v", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return cfg, nil
}

// guest sets the guest of cfg: the embedded spin(forever), or --module's
// file with --export and --args.
func (cc *compareCmd) guest(cfg *compare.Config) error {
	if cc.module == "" {
		if cc.export != "" || cc.args != "" {
			return compareUsageErr("--export and --args need --module (the default guest is spin(forever))")
		}
		b, err := wasmsched.Guest("spin")
		if err != nil {
			return &compareError{exitFailure, err}
		}
		cfg.Wasm, cfg.ModuleName = b, "spin.wasm (embedded)"
		cfg.Export, cfg.Args = compare.DefaultGuest.Export, compare.DefaultGuest.Args
		return nil
	}
	b, err := os.ReadFile(cc.module)
	if err != nil {
		return compareUsageErr("--module: %v", err)
	}
	cfg.Wasm, cfg.ModuleName, cfg.Export = b, filepath.Base(cc.module), cc.export
	if cc.args != "" {
		vals, err := parseArgs(strings.Split(cc.args, ","))
		if err != nil {
			return compareUsageErr("--args: %v", err)
		}
		cfg.Args = vals
	}
	return nil
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
