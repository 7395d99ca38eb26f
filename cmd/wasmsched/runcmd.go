package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmsched/wasmsched"
	"github.com/wasmsched/wasmsched/internal/compare"
	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// run's exit status follows the convention of command wrappers such as
// timeout(1) and env(1): the guest's own WASI exit code passes through, and
// run's own outcomes use codes above the range guests normally use, so the
// two never collide.
const (
	runExitGuestMax    = 123 // a guest's exit code N passes through as N up to 122; 123 and above become 123
	runExitTimeout     = 124 // --timeout passed
	runExitUsage       = 125 // bad flags or arguments, unreadable FILE, wrong export or argument count/type
	runExitInvalid     = 126 // the module is invalid: does not decode or validate, over a limit, imports what is not provided
	runExitInternal    = 127 // the runtime failed, or embedder code (a host function, a policy) panicked
	runExitInterrupted = 130 // SIGINT or SIGTERM (128 + SIGINT)
	runExitGuestFailed = 134 // the guest trapped, ran out of fuel, hit its memory limit, or its instantiation failed (128 + SIGABRT)
)

const runUsage = `usage: wasmsched run [flags] FILE.wasm [-- args]

Runs one Wasm guest as a task on a wasmsched runtime: a WASI command (its
_start, with args as argv[1:]) or, with --export, one exported function
(args are its parameters: integers for i32/i64, decimals for f32/f64).
FILE may also name an embedded guest: spin, cguest, goguest. The guest's
stdout and stderr are passed through; then a one-line summary goes to
stderr.

A reactor (a module exporting _initialize: a Go -buildmode=c-shared
module, a clang -mexec-model=reactor one) is initialized before --export
is called. --env and --dir give a WASI guest its environment and
preopened directories; --stub-imports lets a guest that imports functions
nothing here provides (a benchmark harness's bench.start, say) run, each
becoming a function that returns zeros, with a warning on stderr.

Limits: the guest's memory is capped by --memory-limit (default 256MiB); a
memory.grow beyond it fails inside the guest. WASI sleeps and stdin reads
suspend the guest without holding a worker. --timeout and Ctrl-C stop it
at its next check (a sleeping or waiting guest at once).

Exit status:
  0        the guest succeeded (its export returned, or it exited with 0)
  1-122    the guest's own WASI exit code (123: an exit code of 123 or more)
  124      timed out (--timeout)
  125      usage error: flags, arguments, FILE, export or argument mismatch
  126      invalid module: does not decode or validate, over a limit, or
           imports what is not provided (WASI preview 1 only, unless
           --stub-imports)
  127      internal error (the runtime failed)
  130      interrupted (SIGINT/SIGTERM)
  134      the guest failed: trap, out of fuel, memory limit, instantiation

flags:
`

// runCmd is a parsed `wasmsched run` invocation.
type runCmd struct {
	file      string
	guestArgs []string
	opts      wasmtask.Options
	lifo      bool
	workers   int
	epochTick time.Duration
	poll      int64 // --poll-interval
	timeout   time.Duration
	memLimit  string // as given, for messages
	stubs     bool   // --stub-imports
}

func cmdRun(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	rc, code := parseRun(args, stderr)
	if rc == nil {
		return code
	}
	rc.opts.Stdin, rc.opts.Stdout, rc.opts.Stderr = stdin, stdout, stderr
	return rc.execute(ctx, stdout, stderr)
}

// parseRun parses run's flags, FILE and the guest's arguments. It returns
// nil and the exit status when the command ends here (help, usage error).
func parseRun(args []string, stderr io.Writer) (*runCmd, int) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, runUsage); fs.PrintDefaults() }
	interrupt := fs.String("interrupt", "epoch", "what makes the guest reach its deadline: epoch, fuel or both")
	mode := fs.String("mode", "deferred", "yield path at each deadline: deferred, immediate, immediate-nolifo, or never (run to completion)")
	fuel := fs.Int64("fuel", 0, "total fuel budget; the guest fails when it consumes more (0: unlimited)")
	fuelSlice := fs.Int64("fuel-slice", 10_000_000, "fuel between deadlines (fuel interrupt)")
	memLimit := fs.String("memory-limit", "256MiB", "cap on the guest's linear memory: 64MiB, 1GiB, a byte count, or 4GiB for Wasm32's maximum")
	timeout := fs.Duration("timeout", 0, "stop the guest after this long (0: no limit)")
	export := fs.String("export", "", "call this exported function instead of the WASI _start")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "runtime workers")
	epochTick := fs.Duration("epoch-tick", time.Millisecond, "engine epoch period")
	poll := fs.Int64("poll-interval", wasmtask.DefaultPollInterval, "fuel between two polls of the epoch (epoch interrupt)")
	allowCommandExports := fs.Bool("allow-command-exports", false, "let --export call a function of a WASI command (a module exporting _start) without running _start")
	stubImports := fs.Bool("stub-imports", false, "define every function import nothing provides as a stub returning zeros (warning on stderr for each)")
	env, fsConfig := wasiFlags(fs)
	positional, guestArgs, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK
		}
		return nil, runExitUsage
	}
	usageErr := func(format string, a ...any) (*runCmd, int) {
		fmt.Fprintf(stderr, "wasmsched run: "+format+"\n", a...)
		return nil, runExitUsage
	}
	if len(positional) == 0 {
		return usageErr("missing FILE.wasm (see -h)")
	}
	rc := &runCmd{file: positional[0], guestArgs: append(positional[1:], guestArgs...), lifo: true,
		workers: *workers, epochTick: *epochTick, poll: *poll, timeout: *timeout, memLimit: *memLimit}
	rc.opts = wasmtask.Options{Name: filepath.Base(rc.file), Export: *export, FuelBudget: *fuel, FuelSlice: *fuelSlice,
		AllowCommandExports: *allowCommandExports, Env: env, FS: *fsConfig}
	rc.stubs = *stubImports
	if rc.opts.Interrupt, err = parseInterrupt(*interrupt, true); err != nil {
		return usageErr("--interrupt: %v", err)
	}
	// One parser for the yield paths (compare's), plus run's "never".
	if *mode == "never" {
		rc.opts.Policy = wasmtask.NeverYield()
	} else if m, err := compare.ModeByName(*mode); err == nil {
		rc.opts.Policy, rc.lifo = wasmtask.YieldPolicy(m.Path), m.LIFO
	} else {
		return usageErr("--mode must be deferred, immediate, immediate-nolifo or never, got %q", *mode)
	}
	switch {
	case *fuel < 0:
		return usageErr("--fuel must not be negative, got %d", *fuel)
	case *fuelSlice <= 0:
		return usageErr("--fuel-slice must be positive, got %d", *fuelSlice)
	case *timeout < 0:
		return usageErr("--timeout must not be negative, got %v", *timeout)
	case *workers < 1:
		return usageErr("--workers must be at least 1, got %d", *workers)
	case *epochTick <= 0:
		return usageErr("--epoch-tick must be positive, got %v", *epochTick)
	case *poll <= 0:
		return usageErr("--poll-interval must be positive, got %d", *poll)
	}
	if rc.opts.MemoryLimitPages, err = parsePages(*memLimit); err != nil {
		return usageErr("--memory-limit: %v", err)
	}
	return rc, 0
}

// execute loads and compiles the module, checks the call, runs the guest
// and reports: run's whole life after its flags.
func (rc *runCmd) execute(ctx context.Context, stdout, stderr io.Writer) int {
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "wasmsched run: "+format+"\n", a...)
		return runExitUsage
	}
	wasm, err := os.ReadFile(rc.file)
	if err != nil {
		if b, gerr := wasmsched.Guest(rc.file); gerr == nil && !strings.ContainsAny(rc.file, "/.") {
			wasm = b
		} else {
			return usageErr("%v", err)
		}
	}
	rt, err := scheduler.New(scheduler.WithWorkers(rc.workers), scheduler.WithLIFOSlot(rc.lifo))
	if err != nil {
		fmt.Fprintf(stderr, "wasmsched run: %v\n", err)
		return runExitInternal
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(sctx)
	}()
	eng, err := wasmtask.NewEngine(ctx, rc.engineConfig(stderr))
	if err != nil {
		fmt.Fprintf(stderr, "wasmsched run: %v\n", err)
		return runExitInternal
	}
	defer eng.Close(context.Background())
	mod, err := eng.Compile(ctx, wasm)
	switch {
	case errors.Is(err, wasmtask.ErrInvalidModule):
		fmt.Fprintf(stderr, "wasmsched run: %s: %v\n", rc.file, err)
		return runExitInvalid
	case err != nil:
		fmt.Fprintf(stderr, "wasmsched run: %s: %v\n", rc.file, err)
		return runExitInternal
	}
	var results []api.ValueType
	if rc.opts.Export != "" {
		params, res, ok := mod.ExportSignature(rc.opts.Export)
		if !ok {
			return usageErr("%v", mod.CheckCall(rc.opts))
		}
		if rc.opts.Args, err = wasmtask.ParseArgs(rc.opts.Export, rc.guestArgs, params); err != nil {
			return usageErr("%v", err)
		}
		results = res
	} else {
		rc.opts.Argv = append([]string{rc.opts.Name}, rc.guestArgs...)
	}
	if err := mod.CheckCall(rc.opts); errors.Is(err, wasmtask.ErrCommandExport) {
		return usageErr("%s: %v; pass --allow-command-exports to call it anyway", rc.file, err)
	}

	start := time.Now()
	h := wasmtask.Spawn(context.Background(), rt, mod, rc.opts)
	wctx := ctx
	if rc.timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, rc.timeout)
		defer cancel()
	}
	res, err := h.Wait(wctx)
	why, whyCode := "", 0
	if err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		// Timeout or signal: Abort stops the guest at its next check (at
		// once if it is suspended); its *Error keeps its counters.
		why, whyCode = "timed out after "+rc.timeout.String(), runExitTimeout
		if ctx.Err() != nil {
			why, whyCode = "interrupted", runExitInterrupted
		}
		h.Abort()
		res, err = h.Wait(context.Background())
	}
	return rc.report(res, err, results, time.Since(start), why, whyCode, stdout, stderr)
}

// report prints the guest's outcome (its results on stdout, a summary on
// stderr) and returns run's exit status for it.
func (rc *runCmd) report(res wasmtask.Result, err error, results []api.ValueType, elapsed time.Duration,
	why string, whyCode int, stdout, stderr io.Writer) int {
	var gerr *wasmtask.Error
	var st wasmtask.GuestStats
	switch {
	case err == nil:
		st = res.Stats
	case errors.As(err, &gerr):
		st = gerr.Stats
	}
	summary := fmt.Sprintf("%s: %s in %v: fuel %d, yields %d (epoch %d, fuel %d), host waits %d, sleeps %d, polls %d, migrations %d, memory peak %s",
		rc.opts.Name, "%s", elapsed.Round(time.Microsecond), st.FuelUsed, st.Yields(), st.EpochYields, st.FuelYields, st.HostWaits,
		st.Sleeps, st.Polls, st.Migrations, sizeString(st.MemoryPeak))
	if err == nil {
		if rc.opts.Export != "" {
			fmt.Fprintf(stdout, "%s(%s) = %s\n", rc.opts.Export, strings.Join(rc.guestArgs, ", "), formatTypedValues(res.Values, results))
		}
		fmt.Fprintf(stderr, "wasmsched run: "+summary+"\n", "ok")
		return exitOK
	}
	if why != "" {
		fmt.Fprintf(stderr, "wasmsched run: "+summary+"\n", why)
		return whyCode
	}
	kind, code := describeFailure(err, rc.opts.FuelBudget, rc.memLimit)
	fmt.Fprintf(stderr, "wasmsched run: %s %s: %v\n", rc.opts.Name, kind, errCause(err))
	fmt.Fprintf(stderr, "wasmsched run: "+summary+"\n", kind)
	return code
}

// describeFailure says what happened to a failed guest and run's exit
// status for it.
func describeFailure(err error, fuel int64, memLimit string) (string, int) {
	var exit *sys.ExitError
	switch {
	case errors.Is(err, wasmtask.ErrExit) && errors.As(err, &exit):
		return fmt.Sprintf("exited with code %d", exit.ExitCode()), int(min(exit.ExitCode(), runExitGuestMax))
	case errors.Is(err, wasmtask.ErrOutOfFuel):
		return fmt.Sprintf("out of fuel (budget %d)", fuel), runExitGuestFailed
	case errors.Is(err, wasmtask.ErrMemoryLimit):
		return "hit the memory limit (" + memLimit + ")", runExitGuestFailed
	case errors.Is(err, wasmtask.ErrTrap):
		return "trapped", runExitGuestFailed
	case errors.Is(err, wasmtask.ErrPolicyTrap):
		return "stopped by its policy", runExitGuestFailed
	case errors.Is(err, wasmtask.ErrHost):
		return "host function failed", runExitGuestFailed
	case errors.Is(err, wasmtask.ErrInstantiate):
		return "could not be instantiated", runExitGuestFailed
	case errors.Is(err, wasmtask.ErrInvalidModule):
		return "is an invalid module", runExitInvalid
	case errors.Is(err, wasmtask.ErrUsage):
		return "was called wrongly", runExitUsage
	}
	return "failed", runExitInternal
}

// sizeString formats a byte count with a binary unit.
func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// parseInterrupt parses an --interrupt flag (both: only where allowed).
func parseInterrupt(s string, allowBoth bool) (wasmtask.Interrupt, error) {
	switch s {
	case "epoch":
		return wasmtask.InterruptEpoch, nil
	case "fuel":
		return wasmtask.InterruptFuel, nil
	case "both":
		if allowBoth {
			return wasmtask.InterruptBoth, nil
		}
	}
	if allowBoth {
		return 0, fmt.Errorf("must be epoch, fuel or both, got %q", s)
	}
	return 0, fmt.Errorf("must be epoch or fuel, got %q", s)
}

// errCause is the most useful part of a guest error: its cause.
func errCause(err error) error {
	var ge *wasmtask.Error
	if errors.As(err, &ge) && ge.Cause != nil {
		return ge.Cause
	}
	return err
}

// parsePages parses a memory size (bytes, or with a KiB/MiB/GiB suffix)
// of at most Wasm32's 4 GiB into 64 KiB Wasm pages, rounding up.
func parsePages(s string) (uint32, error) {
	n, err := parseSize(s, 4<<30)
	if err != nil {
		return 0, err
	}
	return uint32((n + 65535) / 65536), nil
}

// engineConfig is the engine run uses: its epoch tick and poll interval,
// and stubs for missing imports (with a warning each on stderr) if asked.
func (rc *runCmd) engineConfig(stderr io.Writer) wasmtask.EngineConfig {
	ecfg := wasmtask.EngineConfig{EpochTick: rc.epochTick, PollInterval: rc.poll}
	if rc.stubs {
		ecfg.StubMissingImports = func(module, name string, params, results []api.ValueType) {
			fmt.Fprintf(stderr, "wasmsched run: warning: import %s.%s (%s) -> (%s) stubbed: it returns zeros\n",
				module, name, typeNames(params), typeNames(results))
		}
	}
	return ecfg
}

// wasiFlags defines --env and --dir, which fill the returned map and
// file-system configuration as they are parsed.
func wasiFlags(fs *flag.FlagSet) (map[string]string, *wazero.FSConfig) {
	env := map[string]string{}
	fs.Func("env", "`K=V`: set an environment variable of the guest (repeatable)", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("want K=V, got %q", v)
		}
		env[k] = val
		return nil
	})
	fsConfig := new(wazero.FSConfig)
	fs.Func("dir", "`HOST[:GUEST][:ro]`: preopen the host directory HOST as GUEST (default: the same path), read-only with :ro (repeatable)", func(v string) error {
		var err error
		*fsConfig, err = addDirMount(*fsConfig, v)
		return err
	})
	return env, fsConfig
}

// parseInterleaved parses args with fs, letting flags and positional
// arguments interleave, up to a "--" after which everything is the
// guest's.
func parseInterleaved(fs *flag.FlagSet, args []string) (positional, guestArgs []string, err error) {
	for i, a := range args {
		if a == "--" {
			args, guestArgs = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		if fs.NArg() == 0 {
			return positional, guestArgs, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// addDirMount adds a --dir HOST[:GUEST][:ro] preopen to c (nil: a new
// configuration). HOST must be an existing directory.
func addDirMount(c wazero.FSConfig, v string) (wazero.FSConfig, error) {
	ro := false
	if rest, ok := strings.CutSuffix(v, ":ro"); ok {
		v, ro = rest, true
	}
	host, guest, ok := strings.Cut(v, ":")
	if !ok {
		guest = host
	}
	if host == "" || guest == "" {
		return c, fmt.Errorf("want HOST[:GUEST][:ro], got %q", v)
	}
	if fi, err := os.Stat(host); err != nil || !fi.IsDir() {
		return c, fmt.Errorf("%s is not a directory", host)
	}
	if c == nil {
		c = wazero.NewFSConfig()
	}
	if ro {
		return c.WithReadOnlyDirMount(host, guest), nil
	}
	return c.WithDirMount(host, guest), nil
}

// typeNames is "i32, i64" for a signature's types.
func typeNames(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return strings.Join(names, ", ")
}
