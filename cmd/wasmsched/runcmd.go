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
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmsched/wasmsched"
	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

func cmdRun(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: wasmsched run [flags] FILE.wasm [-- args]

Runs one Wasm guest as a task on a wasmsched runtime: a WASI command (its
_start, with args as argv[1:]) or, with --export, one exported function
(args are its integer parameters). FILE may also name an embedded guest:
spin, cguest, goguest. The guest's stdout and stderr are passed through;
then a one-line summary goes to stderr. Exit status: 0, the guest's own
WASI exit code, 1 on a trap / out of fuel / timeout / other failure, 2 on
bad usage or an invalid module.

flags:
`)
		fs.PrintDefaults()
	}
	interrupt := fs.String("interrupt", "epoch", "what makes the guest reach its deadline: epoch, fuel or both")
	mode := fs.String("mode", "deferred", "yield path at each deadline: deferred, immediate, immediate-nolifo, or never (run to completion)")
	fuel := fs.Int64("fuel", 0, "total fuel budget; the guest fails when it consumes more (0: unlimited)")
	fuelSlice := fs.Int64("fuel-slice", 10_000_000, "fuel between deadlines (fuel interrupt)")
	memLimit := fs.String("memory-limit", "", "cap on the guest's memory, e.g. 64MiB, 1GiB or a byte count (empty: wazero's 4 GiB)")
	timeout := fs.Duration("timeout", 0, "abort the guest after this long (0: no limit)")
	export := fs.String("export", "", "call this exported function instead of the WASI _start")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "runtime workers")
	epochTick := fs.Duration("epoch-tick", time.Millisecond, "engine epoch period")

	// Split off the guest's arguments, then let flags and FILE interleave.
	var guestArgs []string
	for i, a := range args {
		if a == "--" {
			args, guestArgs = args[:i], args[i+1:]
			break
		}
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "wasmsched run: "+format+"\n", a...)
		return exitUsage
	}
	if len(positional) == 0 {
		return usageErr("missing FILE.wasm (see -h)")
	}
	file := positional[0]
	guestArgs = append(positional[1:], guestArgs...)

	opts := wasmtask.Options{Name: filepath.Base(file), Export: *export, Stdin: stdin, Stdout: stdout, Stderr: stderr,
		FuelBudget: *fuel, FuelSlice: *fuelSlice}
	switch *interrupt {
	case "epoch":
		opts.Interrupt = wasmtask.InterruptEpoch
	case "fuel":
		opts.Interrupt = wasmtask.InterruptFuel
	case "both":
		opts.Interrupt = wasmtask.InterruptBoth
	default:
		return usageErr("--interrupt must be epoch, fuel or both, got %q", *interrupt)
	}
	lifo := true
	switch *mode {
	case "deferred", "yield_now":
		opts.Policy = wasmtask.DeferredYield()
	case "immediate", "immediate-lifo":
		opts.Policy = wasmtask.ImmediateYield()
	case "immediate-nolifo":
		opts.Policy, lifo = wasmtask.ImmediateYield(), false
	case "never":
		opts.Policy = wasmtask.NeverYield()
	default:
		return usageErr("--mode must be deferred, immediate, immediate-nolifo or never, got %q", *mode)
	}
	if *fuel < 0 {
		return usageErr("--fuel must not be negative, got %d", *fuel)
	}
	if *fuelSlice <= 0 {
		return usageErr("--fuel-slice must be positive, got %d", *fuelSlice)
	}
	if *timeout < 0 {
		return usageErr("--timeout must not be negative, got %v", *timeout)
	}
	if *workers < 1 {
		return usageErr("--workers must be at least 1, got %d", *workers)
	}
	if *epochTick <= 0 {
		return usageErr("--epoch-tick must be positive, got %v", *epochTick)
	}
	if *memLimit != "" {
		pages, err := parsePages(*memLimit)
		if err != nil {
			return usageErr("--memory-limit: %v", err)
		}
		opts.MemoryLimitPages = pages
	}
	if opts.Export != "" {
		vals, err := parseArgs(guestArgs)
		if err != nil {
			return usageErr("arguments of --export %s: %v", opts.Export, err)
		}
		opts.Args = vals
	} else {
		opts.Argv = append([]string{opts.Name}, guestArgs...)
	}

	wasm, err := os.ReadFile(file)
	if err != nil {
		if b, gerr := wasmsched.Guest(file); gerr == nil && !strings.ContainsAny(file, "/.") {
			wasm = b
		} else {
			return usageErr("%v", err)
		}
	}

	rt, err := scheduler.New(scheduler.WithWorkers(*workers), scheduler.WithLIFOSlot(lifo))
	if err != nil {
		fmt.Fprintf(stderr, "wasmsched run: %v\n", err)
		return exitFailure
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(sctx)
	}()
	eng, err := wasmtask.NewEngine(ctx, wasmtask.EngineConfig{EpochTick: *epochTick})
	if err != nil {
		fmt.Fprintf(stderr, "wasmsched run: %v\n", err)
		return exitFailure
	}
	defer eng.Close(context.Background())
	mod, err := eng.Compile(ctx, wasm)
	if err != nil {
		fmt.Fprintf(stderr, "wasmsched run: %s: invalid module: %v\n", file, err)
		return exitUsage
	}

	// On a timeout or a signal the guest is stopped by its own policy at
	// its next deadline (a trap keeps its counters for the summary;
	// JoinHandle.Abort would not), with Abort as the fallback.
	var stopping atomic.Bool
	errStopped := errors.New("stopped")
	inner := opts.Policy
	opts.Policy = func(info wasmtask.GuestInfo) wasmtask.Action {
		if stopping.Load() {
			return wasmtask.Trap(errStopped)
		}
		return inner(info)
	}

	start := time.Now()
	h := wasmtask.Spawn(rt, mod, opts)
	wctx := ctx
	if *timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	res, err := h.Wait(wctx)
	why := ""
	if err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		// Timeout or signal: stop the guest at its next check and report
		// what it had done.
		why = "timed out after " + timeout.String()
		if ctx.Err() != nil {
			why = "interrupted"
		}
		stopping.Store(true)
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		res, err = h.Wait(sctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			h.Abort()
			res, err = h.Wait(context.Background())
		}
	}
	elapsed := time.Since(start)

	var gerr *wasmtask.Error
	var st wasmtask.GuestStats
	switch {
	case err == nil:
		st = res.Stats
	case errors.As(err, &gerr):
		st = gerr.Stats
	}
	summary := fmt.Sprintf("%s: %s in %v: fuel %d, yields %d (epoch %d, fuel %d), host waits %d, polls %d, migrations %d",
		opts.Name, "%s", elapsed.Round(time.Microsecond), st.FuelUsed, st.Yields(), st.EpochYields, st.FuelYields, st.HostWaits, st.Polls, st.Migrations)
	if err == nil {
		if opts.Export != "" {
			fmt.Fprintf(stdout, "%s(%s) = %s\n", opts.Export, strings.Join(guestArgs, ", "), formatValues(res.Values))
		}
		fmt.Fprintf(stderr, "wasmsched run: "+summary+"\n", "ok")
		return exitOK
	}
	if why != "" {
		fmt.Fprintf(stderr, "wasmsched run: "+summary+"\n", why)
		return exitFailure
	}
	var kind string
	switch {
	case errors.Is(err, wasmtask.ErrOutOfFuel):
		kind = fmt.Sprintf("out of fuel (budget %d)", *fuel)
	case errors.Is(err, wasmtask.ErrTrap):
		kind = "trapped"
	case errors.Is(err, wasmtask.ErrMemoryLimit):
		kind = "hit the memory limit (" + *memLimit + ")"
	case errors.Is(err, wasmtask.ErrExit):
		kind = "exited"
	case errors.Is(err, wasmtask.ErrInstantiate):
		kind = "could not be instantiated"
	case errors.Is(err, wasmtask.ErrHost):
		kind = "host function failed"
	default:
		kind = "failed"
	}
	fmt.Fprintf(stderr, "wasmsched run: %s %s: %v\n", opts.Name, kind, errCause(err))
	fmt.Fprintf(stderr, "wasmsched run: "+summary+"\n", kind)
	var exit *sys.ExitError
	if errors.Is(err, wasmtask.ErrExit) && errors.As(err, &exit) && exit.ExitCode() != 0 && exit.ExitCode() < 256 {
		return int(exit.ExitCode())
	}
	if errors.Is(err, wasmtask.ErrInstantiate) {
		return exitUsage
	}
	return exitFailure
}

// errCause is the most useful part of a guest error: its cause.
func errCause(err error) error {
	var ge *wasmtask.Error
	if errors.As(err, &ge) && ge.Cause != nil {
		return ge.Cause
	}
	return err
}

func formatValues(vs []uint64) string {
	var ss []string
	for _, v := range vs {
		ss = append(ss, strconv.FormatUint(v, 10))
	}
	if len(ss) == 1 {
		return ss[0]
	}
	return "(" + strings.Join(ss, ", ") + ")"
}

// parsePages parses a memory size (bytes, or with a KiB/MiB/GiB suffix)
// into 64 KiB Wasm pages, rounding up.
func parsePages(s string) (uint32, error) {
	mult := uint64(1)
	t := strings.TrimSpace(s)
	for _, u := range []struct {
		suf string
		m   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSuffix(t, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(t), 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a positive size (e.g. 64MiB)", s)
	}
	bytes := n * mult
	if bytes/mult != n || bytes > 4<<30 {
		return 0, fmt.Errorf("%q is over Wasm32's 4 GiB", s)
	}
	return uint32((bytes + 65535) / 65536), nil
}
