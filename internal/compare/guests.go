package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/wasmsched/wasmsched/internal/experiment"
	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

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

// account adds an instance that has ended (its JoinHandle gave r, err) to
// the slot's figures. sl.mu is held.
func (sl *slot) account(in *instance, r wasmtask.Result, err error, w *experiment.Window) {
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
}

// spawnGuests makes the scenario's slots and starts a guest in each: from
// outside, through the injector, or in the uneven scenario from placer
// tasks on every worker. It returns the uneven placement, for the report
// ("" otherwise).
func (r *run) spawnGuests() (string, error) {
	n := r.cfg.guestsFor(r.scenario)
	r.slots = make([]*slot, n)
	for i := range r.slots {
		r.slots[i] = &slot{}
	}
	if r.scenario == "uneven" {
		pl, err := experiment.PlaceUneven(r.ctx, r.rt, r.cfg.Workers, n, func(cx *scheduler.Context, i int) { r.startGuest(cx, i) })
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("guests spawned per worker: %v", pl.PerWorker), nil
	}
	for i := range r.slots {
		r.startGuest(r.rt, i)
	}
	return "", nil
}

// startGuest spawns a new instance in slot i from s.
func (r *run) startGuest(s scheduler.Spawner, i int) {
	in := &instance{lastWorker: -1, began: r.w.Measuring()}
	h := wasmtask.Spawn(context.Background(), s, r.mod, r.options(i, in))
	sl := r.slots[i]
	sl.mu.Lock()
	sl.cur, sl.curHandle = in, h
	sl.mu.Unlock()
}

// options are the wasmtask options of an instance in slot i: its policy
// is in's, yielding through the mode's path.
func (r *run) options(i int, in *instance) wasmtask.Options {
	cfg := r.cfg
	o := wasmtask.Options{
		Name: fmt.Sprintf("%s-%d", cfg.ModuleName, i), Export: cfg.Export, Args: cfg.Args, Argv: cfg.Argv,
		Stdout: io.Discard, Stderr: io.Discard,
		Interrupt: cfg.Interrupt, FuelSlice: cfg.FuelSlice, Policy: in.policy(&r.w, r.mode.Path),
	}
	if o.Export == "" && len(o.Argv) == 0 {
		o.Argv = []string{cfg.ModuleName}
	}
	return o
}

// superviseGuests starts a supervisor goroutine per slot (r.wg counts
// them).
func (r *run) superviseGuests() {
	for i, sl := range r.slots {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.supervise(i, sl)
		}()
	}
}

// supervise waits for slot i's instance; if it returned before the stop,
// it accounts for it and starts another (from outside), and so on until
// an instance ends at the stop (or fails).
func (r *run) supervise(i int, sl *slot) {
	for {
		sl.mu.Lock()
		h, in := sl.curHandle, sl.cur
		sl.mu.Unlock()
		res, err := h.Wait(context.Background())
		sl.mu.Lock()
		sl.account(in, res, err, &r.w)
		if err == nil && !r.w.Stopped() {
			sl.restarts++
			sl.mu.Unlock()
			r.startGuest(r.rt, i)
			continue
		}
		sl.mu.Unlock()
		return
	}
}
