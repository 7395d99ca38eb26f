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
//
// # GOMAXPROCS
//
// The workers are goroutines that do not block while they have work, and
// Go cannot preempt compiled Wasm, so with GOMAXPROCS equal to the worker
// count the external waker goroutine would get a thread only when a guest
// reaches a check. Like the scheduler's yield experiment, Run sets
// GOMAXPROCS to Workers+1 for its duration (Config.GOMAXPROCS overrides it)
// and restores it afterwards; the machine's cores are unchanged.
//
// The package never prints: Run reports progress through a callback, and
// WriteTable / WriteHTML render a Report to a writer the caller provides.
package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wasmsched/wasmsched/internal/experiment"
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

// Scenarios are the scenario names, in run order.
var Scenarios = []string{"saturated", "light", "uneven"}

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

// Config is one compare invocation. The zero value of every field but Wasm
// means its default; Validate reports bad values.
type Config struct {
	Scenarios []string      // default Scenarios
	Modes     []Mode        // default Modes
	Workers   int           // default 2
	Guests    int           // 0: per scenario (saturated and uneven 2*Workers, light Workers-1, at least 1)
	Duration  time.Duration // measured window per run (default 2 s)
	Warmup    time.Duration // before the window (default 200 ms)
	Interrupt wasmtask.Interrupt
	EpochTick time.Duration // the engine's epoch period (default 1 ms)
	FuelSlice int64         // fuel between deadlines in fuel mode (default 10,000,000)
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
		if !slices.Contains(Scenarios, s) {
			errs = append(errs, fmt.Errorf("unknown scenario %q (want saturated, light or uneven)", s))
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

// Report is the result of Run.
type Report struct {
	Started    time.Time        `json:"started"`
	GoVersion  string           `json:"go_version"`
	NumCPU     int              `json:"num_cpu"`
	GOMAXPROCS int              `json:"gomaxprocs"`
	Workers    int              `json:"workers"`
	Interrupt  string           `json:"interrupt"`
	EpochTick  string           `json:"epoch_tick"`
	FuelSlice  int64            `json:"fuel_slice"`
	Duration   string           `json:"duration"`
	Guest      string           `json:"guest"`
	Scenarios  []ScenarioResult `json:"scenarios"`
	// Incomplete is set when Run stopped before every run finished
	// (its context was cancelled, or a run failed): Scenarios then hold the
	// runs that finished, and a scenario only if one of its runs did.
	Incomplete *Incomplete `json:"incomplete,omitempty"`
}

// ScenarioResult is one scenario: one result per mode.
type ScenarioResult struct {
	Name   string       `json:"name"`
	About  string       `json:"about"`
	Guests int          `json:"guests"`
	Modes  []ModeResult `json:"modes"`
}

// ModeResult is one run's measurements.
type ModeResult struct {
	Mode            string             `json:"mode"`
	Path            string             `json:"path"`
	LIFO            bool               `json:"lifo"`
	WindowSeconds   float64            `json:"window_seconds"`
	RunSeconds      float64            `json:"run_seconds"`
	FuelPerSecond   float64            `json:"fuel_per_second"`
	GuestFuel       []int64            `json:"guest_fuel"` // per guest, in the window
	Jain            experiment.Num     `json:"jain"`
	Probe           experiment.Latency `json:"probe_late"`
	ExternalWake    experiment.Latency `json:"external_wake"`
	GuestYields     int64              `json:"guest_yields"`     // in the window
	GuestMigrations int64              `json:"guest_migrations"` // in the window
	MigrationsPer1k experiment.Num     `json:"migrations_per_1k_yields"`
	// Runtime counters over the whole run, per second of run time.
	StealsPerSec           float64   `json:"steals_per_second"`
	LIFOPollsPerSec        float64   `json:"lifo_polls_per_second"`
	DeferredReleasesPerSec float64   `json:"deferred_releases_per_second"`
	ParksPerSec            float64   `json:"parks_per_second"`
	WorkerBusy             []float64 `json:"worker_busy"` // fraction of run time each worker was not parked
	// ForeignCores is how many cores other processes kept busy during the
	// window (Linux; null elsewhere): when it is not near 0, latency
	// figures are inflated by them, not by the scheduler.
	ForeignCores experiment.Num `json:"foreign_cores"`
	Placement    string         `json:"placement,omitempty"`
	Restarts     int            `json:"guest_restarts,omitempty"`
	Errors       []string       `json:"errors,omitempty"`
}

var scenarioAbout = map[string]string{
	"saturated": "2 guests per worker, spawned from outside",
	"light":     "fewer guests than workers",
	"uneven":    "guests spawned on the workers unevenly (3/4 on one)",
}

// Run runs every (scenario, mode) pair in turn. If it stops early (ctx is
// cancelled, or a run fails), it returns the error and, once the guest
// module is compiled, a Report of the runs that finished, with Incomplete
// set.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	prev := runtime.GOMAXPROCS(cfg.GOMAXPROCS)
	defer runtime.GOMAXPROCS(prev)

	eng, err := wasmtask.NewEngine(ctx, wasmtask.EngineConfig{EpochTick: cfg.EpochTick})
	if err != nil {
		return nil, err
	}
	defer eng.Close(context.Background())
	mod, err := eng.Compile(ctx, cfg.Wasm)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: guest module: %w", ErrInput, err)
	}
	if cfg.Export != "" {
		if exps := mod.Exports(); !slices.Contains(exps, cfg.Export) {
			return nil, fmt.Errorf("%w: guest module has no export %q (it exports: %s)", ErrInput, cfg.Export, strings.Join(exps, ", "))
		}
	}

	rep := &Report{
		Started: time.Now().UTC(), GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
		GOMAXPROCS: cfg.GOMAXPROCS, Workers: cfg.Workers, Interrupt: cfg.Interrupt.String(),
		EpochTick: cfg.EpochTick.String(), FuelSlice: cfg.FuelSlice, Duration: cfg.Duration.String(),
		Guest: cfg.ModuleName, Scenarios: []ScenarioResult{},
	}
	if cfg.Export != "" {
		rep.Guest += " " + cfg.Export + fmt.Sprint(cfg.Args)
	}
	total := len(cfg.Scenarios) * len(cfg.Modes)
	i := 0
	for _, sc := range cfg.Scenarios {
		sr := ScenarioResult{Name: sc, About: scenarioAbout[sc], Guests: cfg.guestsFor(sc)}
		// stopped keeps the runs that finished, in the report returned
		// with err.
		stopped := func(run string, err error) (*Report, error) {
			if len(sr.Modes) > 0 {
				rep.Scenarios = append(rep.Scenarios, sr)
			}
			rep.Incomplete = &Incomplete{Finished: i - 1, Planned: total, During: run, Reason: err.Error()}
			if run != "" {
				err = fmt.Errorf("%s: %w", run, err)
			}
			return rep, err
		}
		for _, m := range cfg.Modes {
			i++
			if err := ctx.Err(); err != nil {
				return stopped("", err)
			}
			r, err := runOne(ctx, &cfg, eng, mod, sc, m, i, total)
			if err != nil {
				return stopped(sc+"/"+m.Name, err)
			}
			sr.Modes = append(sr.Modes, r)
		}
		rep.Scenarios = append(rep.Scenarios, sr)
	}
	return rep, nil
}

// Incomplete says why a Report holds fewer runs than planned.
type Incomplete struct {
	Finished int    `json:"runs_finished"`
	Planned  int    `json:"runs_planned"`
	During   string `json:"during,omitempty"` // the run that was stopped ("scenario/mode"), if one had started
	Reason   string `json:"reason"`           // the error that stopped it (context canceled, a guest failure, ...)
}

// ErrInput is wrapped by Run's errors about its input: a module that does
// not compile, an export it lacks, an invalid configuration.
var ErrInput = errors.New("compare: bad input")

// errStopped is the policy's trap at the end of a run.
var errStopped = errors.New("compare: run over")

// instance is one guest instance's measurements, written by its policy on
// the guest's task and read after the guest's JoinHandle completes.
type instance struct {
	began      bool  // has had a deadline in the window
	base       int64 // fuel at the last deadline before the window
	last       int64 // fuel at the latest deadline
	lastWorker int
	yields     int64 // in the window
	migrations int64 // in the window
}

func (in *instance) policy(w *experiment.Window, path scheduler.YieldPath) wasmtask.Policy {
	return func(info wasmtask.GuestInfo) wasmtask.Action {
		if w.Stopped() {
			return wasmtask.Trap(errStopped)
		}
		switch {
		case w.Measuring():
			if !in.began {
				in.began, in.base = true, in.last
			}
			in.yields++
			if in.lastWorker >= 0 && info.Worker != in.lastWorker {
				in.migrations++
			}
			in.last = info.FuelUsed
		case !w.Over():
			in.last = info.FuelUsed
		}
		// After the window, last stays at the window's final deadline: a
		// deadline between the window's end and the stop must add neither
		// fuel nor a yield, or the two disagree.
		in.lastWorker = info.Worker
		return wasmtask.Yield(0, path)
	}
}

// slot is one guest position: its instances over the run (more than one
// only if the guest returns and is restarted).
type slot struct {
	mu        sync.Mutex
	fuel      int64 // window fuel of finished instances
	yields    int64
	migs      int64
	restarts  int
	firstErr  error
	cur       *instance
	curHandle *scheduler.JoinHandle[wasmtask.Result]
}

func runOne(ctx context.Context, cfg *Config, eng *wasmtask.Engine, mod *wasmtask.Module, scenario string, m Mode, idx, total int) (ModeResult, error) {
	res := ModeResult{Mode: m.Name, Path: m.Path.String(), LIFO: m.LIFO}
	report := func(start bool, el time.Duration) {
		if cfg.Progress != nil {
			cfg.Progress(Progress{Run: idx, Runs: total, Scenario: scenario, Mode: m.Name, Start: start, Elapsed: el, Planned: cfg.Warmup + cfg.Duration})
		}
	}
	report(true, 0)
	runStart := time.Now()
	rt, err := scheduler.New(scheduler.WithWorkers(cfg.Workers), scheduler.WithLIFOSlot(m.LIFO), scheduler.WithDefaultYield(m.Path))
	if err != nil {
		return res, err
	}
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return rt.Shutdown(sctx)
	}
	var w experiment.Window
	var wg sync.WaitGroup // goroutines of this run
	var ext *experiment.ExternalWaker
	var probe *experiment.TimerProbe
	defer func() {
		w.Stop()
		shutdown()
		wg.Wait()
		if ext != nil {
			ext.Wait(context.Background()) // after the shutdown: at once
		}
		if probe != nil {
			probe.Wait(context.Background())
		}
	}()

	// The external waker and the timer probe.
	if !cfg.NoExternal {
		ext = experiment.StartExternalWaker(rt, &w, time.Millisecond)
	}
	if !cfg.NoProbe {
		probe = experiment.StartTimerProbe(rt, &w, time.Millisecond)
	}

	// The guests.
	n := cfg.guestsFor(scenario)
	slots := make([]*slot, n)
	for i := range slots {
		slots[i] = &slot{}
	}
	opts := func(i int, in *instance) wasmtask.Options {
		o := wasmtask.Options{
			Name: fmt.Sprintf("%s-%d", cfg.ModuleName, i), Export: cfg.Export, Args: cfg.Args, Argv: cfg.Argv,
			Stdout: io.Discard, Stderr: io.Discard,
			Interrupt: cfg.Interrupt, FuelSlice: cfg.FuelSlice, Policy: in.policy(&w, m.Path),
		}
		if o.Export == "" && len(o.Argv) == 0 {
			o.Argv = []string{cfg.ModuleName}
		}
		return o
	}
	newInstance := func() *instance { return &instance{lastWorker: -1, began: w.Measuring()} }
	start := func(s scheduler.Spawner, i int) *scheduler.JoinHandle[wasmtask.Result] {
		in := newInstance()
		h := wasmtask.Spawn(s, mod, opts(i, in))
		sl := slots[i]
		sl.mu.Lock()
		sl.cur, sl.curHandle = in, h
		sl.mu.Unlock()
		return h
	}
	if scenario == "uneven" {
		pl, err := experiment.PlaceUneven(ctx, rt, cfg.Workers, n, func(cx *scheduler.Context, i int) { start(cx, i) })
		if err != nil {
			return res, err
		}
		res.Placement = fmt.Sprintf("guests spawned per worker: %v", pl.PerWorker)
	} else {
		for i := range slots {
			start(rt, i)
		}
	}
	// A supervisor per slot: wait for the instance; if it returned before
	// the stop, account for it and start another (from outside).
	for i, sl := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				sl.mu.Lock()
				h, in := sl.curHandle, sl.cur
				sl.mu.Unlock()
				r, err := h.Wait(context.Background())
				sl.mu.Lock()
				switch {
				case err == nil:
					// Returned by itself: count its fuel since the window
					// began (none if it finished before the window).
					switch {
					case w.Measuring():
						// Inside the window: everything since its start.
						if !in.began {
							in.base = in.last
						}
						sl.fuel += r.Stats.FuelUsed - in.base
					case in.began:
						// After the window: up to its final deadline.
						sl.fuel += in.last - in.base
					}
				case in.began:
					sl.fuel += in.last - in.base
				}
				sl.yields += in.yields
				sl.migs += in.migrations
				if err != nil && !errors.Is(err, errStopped) && !errors.Is(err, scheduler.ErrShutdown) && sl.firstErr == nil {
					sl.firstErr = err
				}
				if err == nil && !w.Stopped() {
					sl.restarts++
					sl.mu.Unlock()
					start(rt, i)
					continue
				}
				sl.mu.Unlock()
				return
			}
		}()
	}

	// Warm up, measure, stop.
	tick := func(until time.Time) error {
		for {
			now := time.Now()
			if !now.Before(until) {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(min(until.Sub(now), 100*time.Millisecond)):
			}
			report(false, time.Since(runStart))
		}
	}
	if err := tick(time.Now().Add(cfg.Warmup)); err != nil {
		return res, err
	}
	cpu0 := experiment.SampleCPU()
	w.Open()
	w0 := time.Now()
	err = tick(w0.Add(cfg.Duration))
	w.Close()
	window := time.Since(w0)
	res.ForeignCores = experiment.Num(experiment.ForeignCores(cpu0, experiment.SampleCPU()))
	w.Stop()
	if err != nil {
		return res, err
	}

	// Wait for the tasks, then shut down (publishes final worker stats).
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if probe != nil {
		if err := probe.Wait(wctx); err != nil {
			return res, fmt.Errorf("timer probe: %w", err)
		}
	}
	if ext != nil {
		if err := ext.Wait(wctx); err != nil {
			return res, fmt.Errorf("external-wake task: %w", err)
		}
	}
	for i, sl := range slots {
		sl.mu.Lock()
		h := sl.curHandle
		sl.mu.Unlock()
		if _, err := h.Wait(wctx); errors.Is(err, context.DeadlineExceeded) {
			return res, fmt.Errorf("guest %d did not stop: %w", i, err)
		}
	}
	if err := shutdown(); err != nil {
		return res, fmt.Errorf("runtime shutdown: %w", err)
	}
	wg.Wait()
	runSecs := time.Since(runStart).Seconds()
	st := rt.Stats()

	res.WindowSeconds = window.Seconds()
	res.RunSeconds = runSecs
	var sum int64
	for i, sl := range slots {
		res.GuestFuel = append(res.GuestFuel, sl.fuel)
		sum += sl.fuel
		res.GuestYields += sl.yields
		res.GuestMigrations += sl.migs
		res.Restarts += sl.restarts
		if sl.firstErr != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("guest %d: %v", i, sl.firstErr))
		}
	}
	for i, sl := range slots {
		if sl.firstErr != nil {
			return res, fmt.Errorf("guest failed: guest %d: %w", i, sl.firstErr)
		}
	}
	res.FuelPerSecond = float64(sum) / res.WindowSeconds
	res.Jain = experiment.Num(experiment.Jain(res.GuestFuel))
	if res.GuestYields > 0 {
		res.MigrationsPer1k = experiment.Num(1000 * float64(res.GuestMigrations) / float64(res.GuestYields))
	} else {
		res.MigrationsPer1k = experiment.Num(math.NaN())
	}
	res.Probe, res.ExternalWake = experiment.Summarise(nil), experiment.Summarise(nil)
	if probe != nil {
		res.Probe = experiment.Summarise(probe.Late())
	}
	if ext != nil {
		res.ExternalWake = experiment.Summarise(ext.Delays())
	}
	tot := st.Total()
	res.StealsPerSec = float64(tot.StealTasks) / runSecs
	res.LIFOPollsPerSec = float64(tot.LIFOPolls) / runSecs
	res.DeferredReleasesPerSec = float64(tot.DeferredReleases) / runSecs
	res.ParksPerSec = float64(tot.Parks) / runSecs
	for _, w := range st.Workers {
		res.WorkerBusy = append(res.WorkerBusy, float64(w.BusyNanos)/1e9/runSecs)
	}
	report(false, time.Since(runStart))
	return res, nil
}
