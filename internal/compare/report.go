package compare

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/wasmsched/wasmsched/internal/experiment"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// Report is the result of Run.
type Report struct {
	Started      time.Time        `json:"started"`
	GoVersion    string           `json:"go_version"`
	NumCPU       int              `json:"num_cpu"`
	GOMAXPROCS   int              `json:"gomaxprocs"`
	Workers      int              `json:"workers"`
	Interrupt    string           `json:"interrupt"`
	EpochTick    string           `json:"epoch_tick"`
	FuelSlice    int64            `json:"fuel_slice"`
	PollInterval int64            `json:"poll_interval"` // the engine's, in fuel (epoch mode)
	Duration     string           `json:"duration"`
	Guest        string           `json:"guest"`
	Scenarios    []ScenarioResult `json:"scenarios"`
	// Incomplete is set when Run stopped before every run finished
	// (its context was cancelled, or a run failed): Scenarios then hold the
	// runs that finished, and a scenario only if one of its runs did.
	Incomplete *Incomplete `json:"incomplete,omitempty"`
}

// ScenarioResult is one scenario: one result per mode.
type ScenarioResult struct {
	Name   string `json:"name"`
	About  string `json:"about"`
	Guests int    `json:"guests"`
	// Service is the service scenario's calibrated request (nil in the
	// others).
	Service *ServiceSetup `json:"service,omitempty"`
	Modes   []ModeResult  `json:"modes"`
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
	// Service holds the service scenario's figures (nil in the others);
	// the fields above are then the batch guests'.
	Service *ServiceResult `json:"service,omitempty"`
}

var scenarioAbout = map[string]string{
	"saturated": "2 guests per worker, spawned from outside",
	"light":     "fewer guests than workers",
	"uneven":    "guests spawned on the workers unevenly (3/4 on one)",
	"service":   "2 batch guests per worker, and a ~50 µs request due every 1 ms from outside",
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

	eng, err := wasmtask.NewEngine(ctx, wasmtask.EngineConfig{EpochTick: cfg.EpochTick, PollInterval: cfg.PollInterval})
	if err != nil {
		return nil, err
	}
	defer eng.Close(context.Background())
	mod, err := compileGuest(ctx, eng, &cfg)
	if err != nil {
		return nil, err
	}

	rep := newReport(&cfg)
	total := len(cfg.Scenarios) * len(cfg.Modes)
	i := 0
	var svc *service // calibrated once, before the first service run
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
			r := &run{ctx: ctx, cfg: &cfg, mod: mod, scenario: sc, mode: m, idx: i, total: total}
			if sc == "service" {
				if svc == nil {
					if svc, err = newService(ctx, eng); err != nil {
						return stopped(sc+"/"+m.Name, err)
					}
				}
				r.svc, sr.Service = svc, &svc.setup
			}
			res, err := r.do()
			if err != nil {
				return stopped(sc+"/"+m.Name, err)
			}
			sr.Modes = append(sr.Modes, res)
		}
		rep.Scenarios = append(rep.Scenarios, sr)
	}
	return rep, nil
}

// compileGuest compiles the guest module and checks that it has the
// export to call. Its errors about the module wrap ErrInput.
func compileGuest(ctx context.Context, eng *wasmtask.Engine, cfg *Config) (*wasmtask.Module, error) {
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
	return mod, nil
}

// newReport is the report's header, from the validated configuration,
// with no scenarios yet.
func newReport(cfg *Config) *Report {
	rep := &Report{
		Started: time.Now().UTC(), GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
		GOMAXPROCS: cfg.GOMAXPROCS, Workers: cfg.Workers, Interrupt: cfg.Interrupt.String(),
		EpochTick: cfg.EpochTick.String(), FuelSlice: cfg.FuelSlice, PollInterval: cfg.PollInterval, Duration: cfg.Duration.String(),
		Guest: cfg.ModuleName, Scenarios: []ScenarioResult{},
	}
	if cfg.Export != "" {
		rep.Guest += " " + cfg.Export + fmt.Sprint(cfg.Args)
	}
	return rep
}

// Incomplete says why a Report holds fewer runs than planned.
type Incomplete struct {
	Finished int    `json:"runs_finished"`
	Planned  int    `json:"runs_planned"`
	During   string `json:"during,omitempty"` // the run that was stopped ("scenario/mode"), if one had started
	Reason   string `json:"reason"`           // the error that stopped it (context canceled, a guest failure, ...)
}
