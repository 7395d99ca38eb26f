// Package compare is the experiment behind `wasmsched compare`: it runs
// CPU-bound Wasm guests on a wasmsched runtime under each scheduling mode
// and measures what DESIGN.md says the modes trade: guest throughput and
// fairness against timer and external-wake latency and migrations.
//
// # The experiment
//
// One run is a (scenario, mode) pair on a fresh runtime of Config.Workers
// workers. In it:
//
//   - Guests: instances of a Wasm export that runs "forever" (by default
//     spin(2^62) from testdata/spin.wasm: a tight CPU-bound loop, 14 fuel per
//     iteration, no memory, no host calls). Each guest is interrupted by the
//     engine's epoch (default: every 1 ms tick) or by its fuel slice, and its
//     deadline policy yields through the mode's path. The policy is also the
//     measuring instrument: at every deadline it records the guest's exact
//     fuel (wasmtask.GuestInfo.FuelUsed) and the worker it is on. A guest's
//     fuel in the window is its reading at the last deadline in the window
//     minus its reading at the last deadline before it, so every guest's
//     figure is off by at most one slice at each end, the same for all.
//     Migrations are counted the same way: one yield is followed by exactly
//     one resume, so consecutive deadlines on different workers are one
//     migration. At the end the policy traps (wasmtask.Trap), which is how
//     a never-ending guest is stopped with its counters intact
//     (JoinHandle.Abort would report scheduler.ErrAborted without the
//     guest's stats). A guest that returns (a user's --module) is started
//     again at once, and its final fuel is counted.
//   - A timer probe: a stackful task that sleeps 1 ms in a loop (co.Sleep)
//     and records how late each sleep ends.
//   - An external waker: a goroutine outside the runtime wakes a parked
//     task every 1 ms through Waker.Wake and the task records, at its next
//     poll, the delay since each send.
//
// The probe, the external waker, the uneven placement, the measurement of
// other processes' CPU and the statistics (quantiles, Jain's index) are
// internal/experiment's, the same instruments as the scheduler's yield
// experiment (TestYieldExperiment), so the two measure the same way.
//
// After a warm-up the window opens (Config.Duration); at its end the
// guests are stopped and the runtime is shut down, which publishes the
// workers' final counters. Steals, LIFO polls, deferred releases and parks
// are those counters over the whole run (warm-up, window and stop) divided
// by the run's wall time, as rates: per-worker counters are published only
// every EventInterval polls, which with guests polling for ~1 ms each would
// make a windowed difference lag by up to 61 ms at each end.
//
// # Modes and scenarios
//
// Modes: immediate-lifo (the self-wake through the LIFO slot, what
// Wasmtime's default yield did in issue 10667), immediate-nolifo (the
// self-wake to the back of the ring, Tokio's treatment of a self-wake),
// deferred (yield_now: the worker's deferred queue).
//
// Scenarios: saturated (2 guests per worker, spawned from outside through
// the injector), light (fewer guests than workers), uneven (the same
// number of guests as saturated, spawned by placer tasks running at the
// same time on every worker, three quarters of them on worker one's
// placer, so they start unevenly and the scheduler must even them out).
// Those three are the default (Scenarios); service (below) is run only
// when asked for, since it would take the default run to about 30 s
// (AllScenarios has the four).
//
// # The service scenario
//
// The question of someone embedding guests in a service: what do requests
// wait while batch guests keep the workers busy, and what does the batch
// lose? The batch guests are saturated's (2 per worker, the configured
// guest, spawned from outside, started again when they return), and the
// guest rows of its table (throughput, fairness, migrations) are theirs.
// Beside them, requests arrive from outside the runtime for the whole run:
// a goroutine submits one every ServiceRequestPeriod (1 ms), each a
// one-shot guest (wasmtask.Spawn from the goroutine, so through the
// injector) calling spin(n) of the embedded spin guest, whatever the batch
// guest is. n is calibrated once, before the scenario's first run, on a
// one-worker runtime of its own: the fastest of 5 plain calls of
// spin(2,000,000) gives spin's rate, and n is the iterations of
// ServiceRequestWork (50 µs) at that rate. Requests are interrupted like
// the batch guests and their policy yields through the mode's path at
// every deadline (it never traps: every request runs to its end), so the
// modes differ for them as for the batch.
//
// A request's latency runs from the moment it was due (k periods after the
// submitter started) to the moment the goroutine waiting on its JoinHandle
// has the result, as a service's handler would: when the submitter is late
// it submits the requests it owes at once, each keeping its due time, so
// its lateness is counted, not hidden (coordinated omission); the submit
// lag row shows that part alone. The submitter sleeps in nanosleep on
// Linux, since Go's timers wake an otherwise idle P at millisecond
// granularity. Counted are the requests due while the window is open (one
// the submitter is late for is submitted, and counted, after it closes).
// When the submitter's next request would be due after the window, it
// stops, and the run waits for every request before it stops the batch
// guests, so the last requests
// are served under the same load as the others; nothing is dropped, and a
// request that fails or returns another value than spin(n)'s (computed
// in Go) or another fuel than 14n+7 fails the run. Batch throughput is the
// batch guests' fuel per second of the window divided by the calibrated
// rate of a plain spin call: guest-seconds of spin work per second, at
// most the number of workers.
//
// # GOMAXPROCS
//
// The workers are goroutines that do not block while they have work, and
// Go cannot preempt compiled Wasm, so with GOMAXPROCS equal to the worker
// count the external waker goroutine would get a thread only when a guest
// reaches a check. Like the scheduler's yield experiment, Run sets
// GOMAXPROCS to Workers+1 for its duration (Config.GOMAXPROCS overrides it)
// and restores it afterwards; the machine's cores are unchanged. In the
// service scenario the request submitter and the goroutines waiting for
// the requests' results run on that extra P too.
//
// The package never prints: Run reports progress through a callback, and
// WriteTable / WriteHTML render a Report to a writer the caller provides.
package compare

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// Mode is one scheduling mode: the path guests yield through and whether
// the runtime's LIFO slot is on.
type Mode struct {
	Name string
	Path scheduler.YieldPath
	LIFO bool
}

// Modes are the modes compared by default, in column order.
var Modes = []Mode{
	{"immediate-lifo", scheduler.PathImmediate, true},
	{"immediate-nolifo", scheduler.PathImmediate, false},
	{"deferred", scheduler.PathDeferred, true},
}

// Scenarios are the scenarios run by default, in run order.
var Scenarios = []string{"saturated", "light", "uneven"}

// AllScenarios are every scenario: the default ones, then service, which
// is run only when asked for (see the package doc).
var AllScenarios = []string{"saturated", "light", "uneven", "service"}

// ModeByName finds a mode (also accepted: "immediate" for immediate-lifo,
// "nolifo" for immediate-nolifo, "yield_now" for deferred).
func ModeByName(name string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "immediate", "immediate-lifo":
		return Modes[0], nil
	case "nolifo", "immediate-nolifo":
		return Modes[1], nil
	case "deferred", "yield_now", "yield-now":
		return Modes[2], nil
	}
	return Mode{}, fmt.Errorf("unknown mode %q (want immediate-lifo, immediate-nolifo or deferred)", name)
}

// maxPollInterval bounds Config.PollInterval: 10^12 fuel is minutes of
// guest code between two polls, past any interval worth comparing.
const maxPollInterval = 1e12

// Config is one compare invocation. The zero value of every field but Wasm
// means its default; Validate reports bad values.
type Config struct {
	Scenarios []string      // default Scenarios
	Modes     []Mode        // default Modes
	Workers   int           // default 2
	Guests    int           // 0: per scenario (saturated, uneven and service's batch 2*Workers, light Workers-1, at least 1)
	Duration  time.Duration // measured window per run (default 2 s)
	Warmup    time.Duration // before the window (default 200 ms)
	Interrupt wasmtask.Interrupt
	EpochTick time.Duration // the engine's epoch period (default 1 ms)
	// PollInterval is the fuel between two checks of the epoch in epoch
	// mode (default wasmtask.DefaultPollInterval): the trade between a
	// guest's host calls and a deferred guest's give-way latency.
	PollInterval int64
	FuelSlice    int64 // fuel between deadlines in fuel mode (default 10,000,000)
	// GOMAXPROCS during the runs (default Workers+1; see the package doc).
	GOMAXPROCS int

	// The guest: Wasm bytes, the export to call with Args (empty: a WASI
	// command's _start, with Argv), and a name for reports.
	Wasm       []byte
	Export     string
	Args       []uint64
	Argv       []string
	ModuleName string

	// Progress, if set, is called before each run and with elapsed time
	// during it (about every 100 ms), from Run's goroutine.
	Progress func(Progress)

	// NoProbe and NoExternal leave out the timer probe or the external
	// waker (their latency rows are then empty), to see what the extra
	// tasks change: both are short-lived tasks among long-running guests,
	// and they take part in the workers' load balancing.
	NoProbe, NoExternal bool
}

// Progress is a progress report.
type Progress struct {
	Run, Runs        int // 1-based index of the current run, and how many
	Scenario, Mode   string
	Start            bool          // the first report of the run, before it starts
	Elapsed, Planned time.Duration // in the current run
}

// DefaultGuest is the export the default workload calls: spin(2^62), which
// would take years; the experiment stops it.
var DefaultGuest = struct {
	Export string
	Args   []uint64
}{"spin", []uint64{1 << 62}}

func (c *Config) defaults() {
	if len(c.Scenarios) == 0 {
		c.Scenarios = Scenarios
	}
	if len(c.Modes) == 0 {
		c.Modes = Modes
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.Duration == 0 {
		c.Duration = 2 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 200 * time.Millisecond
	}
	if c.EpochTick == 0 {
		c.EpochTick = time.Millisecond
	}
	if c.FuelSlice == 0 {
		c.FuelSlice = 10_000_000
	}
	if c.PollInterval == 0 {
		c.PollInterval = wasmtask.DefaultPollInterval
	}
	if c.GOMAXPROCS == 0 {
		c.GOMAXPROCS = c.Workers + 1
	}
	if c.ModuleName == "" {
		c.ModuleName = "guest"
	}
}

// Validate applies defaults and checks the configuration.
func (c *Config) Validate() error {
	c.defaults()
	var errs []error
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("workers must be 1..256, got %d", c.Workers))
	}
	if c.Guests < 0 || c.Guests > 10000 {
		errs = append(errs, fmt.Errorf("guests must be 0..10000 (0: per scenario), got %d", c.Guests))
	}
	if c.Duration < 10*time.Millisecond || c.Duration > time.Hour {
		errs = append(errs, fmt.Errorf("duration must be 10ms..1h, got %v", c.Duration))
	}
	if c.Warmup < 0 {
		errs = append(errs, fmt.Errorf("warm-up must not be negative, got %v", c.Warmup))
	}
	if c.EpochTick < 10*time.Microsecond || c.EpochTick > time.Second {
		errs = append(errs, fmt.Errorf("epoch tick must be 10µs..1s, got %v", c.EpochTick))
	}
	if c.PollInterval < 1 || c.PollInterval > maxPollInterval {
		errs = append(errs, fmt.Errorf("poll interval must be 1..%d fuel, got %d", int64(maxPollInterval), c.PollInterval))
	}
	if c.FuelSlice < 1000 {
		errs = append(errs, fmt.Errorf("fuel slice must be at least 1000, got %d", c.FuelSlice))
	}
	if c.Interrupt > wasmtask.InterruptBoth {
		errs = append(errs, fmt.Errorf("unknown interrupt %d", c.Interrupt))
	}
	if c.GOMAXPROCS < 1 {
		errs = append(errs, fmt.Errorf("GOMAXPROCS must be positive, got %d", c.GOMAXPROCS))
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(AllScenarios, s) {
			errs = append(errs, fmt.Errorf("unknown scenario %q (want saturated, light, uneven or service)", s))
		}
	}
	if len(c.Wasm) == 0 {
		errs = append(errs, errors.New("no guest module"))
	}
	return errors.Join(errs...)
}

// guestsFor is the number of guests of a scenario.
func (c *Config) guestsFor(scenario string) int {
	if c.Guests > 0 {
		return c.Guests
	}
	if scenario == "light" {
		return max(c.Workers-1, 1)
	}
	return 2 * c.Workers
}

// ErrInput is wrapped by Run's errors about its input: a module that does
// not compile, an export it lacks, an invalid configuration.
var ErrInput = errors.New("compare: bad input")
