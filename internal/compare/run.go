package compare

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/wasmsched/wasmsched/internal/experiment"
	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// run is one (scenario, mode) run on a fresh runtime, and the state its
// steps hand on: set up (the runtime, the instruments), spawn the guests
// and supervise them, measure (the warm-up, the window), stop (wait for
// every task, shut down), summarise.
type run struct {
	ctx        context.Context
	cfg        *Config
	mod        *wasmtask.Module
	scenario   string
	mode       Mode
	idx, total int // this run's 1-based index, and how many, for Progress

	start time.Time // before the runtime was made
	rt    *scheduler.Runtime
	w     experiment.Window
	wg    sync.WaitGroup            // the slots' supervisors
	ext   *experiment.ExternalWaker // nil with NoExternal
	probe *experiment.TimerProbe    // nil with NoProbe
	slots []*slot

	svc  *service  // the service scenario's request (nil in the others)
	reqs *requests // its requests, once started
}

// measured is what the window gives the summary.
type measured struct {
	window  time.Duration  // how long it was open
	foreign experiment.Num // the cores other processes kept busy meanwhile
}

// ended is the run after its stop: how long it took in all, and the
// workers' final counters (published by the shutdown).
type ended struct {
	seconds float64
	stats   scheduler.Stats
}

// do carries the run out and returns its measurements.
func (r *run) do() (ModeResult, error) {
	res := ModeResult{Mode: r.mode.Name, Path: r.mode.Path.String(), LIFO: r.mode.LIFO}
	r.progress(true)
	if err := r.newRuntime(); err != nil {
		return res, err
	}
	defer r.tearDown()
	r.startInstruments()
	placement, err := r.spawnGuests()
	if err != nil {
		return res, err
	}
	res.Placement = placement
	r.superviseGuests()
	if r.svc != nil {
		r.startRequests()
	}

	m, err := r.measure()
	res.ForeignCores = m.foreign
	if err != nil {
		return res, err
	}
	e, err := r.stop()
	if err != nil {
		return res, err
	}
	if err := r.summarise(&res, m, e); err != nil {
		return res, err
	}
	r.progress(false)
	return res, nil
}

// progress reports the run to Config.Progress: its start, or how long it
// has been going.
func (r *run) progress(start bool) {
	if r.cfg.Progress == nil {
		return
	}
	var el time.Duration
	if !start {
		el = time.Since(r.start)
	}
	r.cfg.Progress(Progress{Run: r.idx, Runs: r.total, Scenario: r.scenario, Mode: r.mode.Name,
		Start: start, Elapsed: el, Planned: r.cfg.Warmup + r.cfg.Duration})
}

// newRuntime makes the run's runtime, with the mode's LIFO slot and
// default yield path.
func (r *run) newRuntime() error {
	r.start = time.Now()
	rt, err := scheduler.New(scheduler.WithWorkers(r.cfg.Workers), scheduler.WithLIFOSlot(r.mode.LIFO), scheduler.WithDefaultYield(r.mode.Path))
	if err != nil {
		return err
	}
	r.rt = rt
	return nil
}

// startInstruments starts the external waker and the timer probe, unless
// the configuration leaves them out.
func (r *run) startInstruments() {
	if !r.cfg.NoExternal {
		r.ext = experiment.StartExternalWaker(r.rt, &r.w, time.Millisecond)
	}
	if !r.cfg.NoProbe {
		r.probe = experiment.StartTimerProbe(r.rt, &r.w, time.Millisecond)
	}
}

// shutdown shuts the runtime down, giving it 20 s.
func (r *run) shutdown() error {
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return r.rt.Shutdown(sctx)
}

// tearDown ends whatever of the run is still going, whichever step it
// stopped at: every task, goroutine and the runtime. After a complete
// run it has nothing left to wait for.
func (r *run) tearDown() {
	r.w.Stop()
	r.shutdown()
	r.wg.Wait()
	if r.ext != nil {
		r.ext.Wait(context.Background()) // after the shutdown: at once
	}
	if r.probe != nil {
		r.probe.Wait(context.Background())
	}
	if r.reqs != nil {
		<-r.reqs.all // after the shutdown: at once
	}
}

// measure warms up, then opens the window for Config.Duration; at its end
// the window stops the guests and the instruments, once the service
// scenario's requests have drained.
func (r *run) measure() (measured, error) {
	if err := r.waitUntil(time.Now().Add(r.cfg.Warmup)); err != nil {
		return measured{}, err
	}
	cpu0 := experiment.SampleCPU()
	r.w.Open()
	w0 := time.Now()
	if r.reqs != nil {
		r.reqs.mark(&r.reqs.open, w0)
	}
	err := r.waitUntil(w0.Add(r.cfg.Duration))
	r.w.Close()
	m := measured{window: time.Since(w0)}
	if r.reqs != nil {
		r.reqs.mark(&r.reqs.close, w0.Add(m.window))
	}
	m.foreign = experiment.Num(experiment.ForeignCores(cpu0, experiment.SampleCPU()))
	if err == nil && r.reqs != nil {
		err = r.reqs.drain(r.ctx)
	}
	r.w.Stop()
	return m, err
}

// waitUntil waits until the time given or the run's context is done,
// reporting progress about every 100 ms.
func (r *run) waitUntil(until time.Time) error {
	for {
		now := time.Now()
		if !now.Before(until) {
			return nil
		}
		select {
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-time.After(min(until.Sub(now), 100*time.Millisecond)):
		}
		r.progress(false)
	}
}

// stop waits for the instruments' tasks and the guests to end, then shuts
// the runtime down, which publishes the workers' final counters.
func (r *run) stop() (ended, error) {
	wctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
	defer cancel()
	if r.probe != nil {
		if err := r.probe.Wait(wctx); err != nil {
			return ended{}, fmt.Errorf("timer probe: %w", err)
		}
	}
	if r.ext != nil {
		if err := r.ext.Wait(wctx); err != nil {
			return ended{}, fmt.Errorf("external-wake task: %w", err)
		}
	}
	for i, sl := range r.slots {
		sl.mu.Lock()
		h := sl.curHandle
		sl.mu.Unlock()
		if _, err := h.Wait(wctx); errors.Is(err, context.DeadlineExceeded) {
			return ended{}, fmt.Errorf("guest %d did not stop: %w", i, err)
		}
	}
	if err := r.shutdown(); err != nil {
		return ended{}, fmt.Errorf("runtime shutdown: %w", err)
	}
	r.wg.Wait()
	return ended{seconds: time.Since(r.start).Seconds(), stats: r.rt.Stats()}, nil
}

// summarise fills res from the slots, the instruments and the runtime's
// counters. A guest that failed fails the run.
func (r *run) summarise(res *ModeResult, m measured, e ended) error {
	res.WindowSeconds = m.window.Seconds()
	res.RunSeconds = e.seconds
	var sum int64
	for i, sl := range r.slots {
		res.GuestFuel = append(res.GuestFuel, sl.fuel)
		sum += sl.fuel
		res.GuestYields += sl.yields
		res.GuestMigrations += sl.migs
		res.Restarts += sl.restarts
		if sl.firstErr != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("guest %d: %v", i, sl.firstErr))
		}
	}
	for i, sl := range r.slots {
		if sl.firstErr != nil {
			return fmt.Errorf("guest failed: guest %d: %w", i, sl.firstErr)
		}
	}
	res.FuelPerSecond = float64(sum) / res.WindowSeconds
	if r.reqs != nil {
		svc, err := r.reqs.result(res.FuelPerSecond)
		if err != nil {
			return err
		}
		res.Service = svc
	}
	res.Jain = experiment.Num(experiment.Jain(res.GuestFuel))
	if res.GuestYields > 0 {
		res.MigrationsPer1k = experiment.Num(1000 * float64(res.GuestMigrations) / float64(res.GuestYields))
	} else {
		res.MigrationsPer1k = experiment.Num(math.NaN())
	}
	res.Probe, res.ExternalWake = experiment.Summarise(nil), experiment.Summarise(nil)
	if r.probe != nil {
		res.Probe = experiment.Summarise(r.probe.Late())
	}
	if r.ext != nil {
		res.ExternalWake = experiment.Summarise(r.ext.Delays())
	}
	tot := e.stats.Total()
	res.StealsPerSec = float64(tot.StealTasks) / e.seconds
	res.LIFOPollsPerSec = float64(tot.LIFOPolls) / e.seconds
	res.DeferredReleasesPerSec = float64(tot.DeferredReleases) / e.seconds
	res.ParksPerSec = float64(tot.Parks) / e.seconds
	for _, w := range e.stats.Workers {
		res.WorkerBusy = append(res.WorkerBusy, float64(w.BusyNanos)/1e9/e.seconds)
	}
	return nil
}
