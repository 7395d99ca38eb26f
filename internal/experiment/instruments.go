package experiment

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
)

// TimerProbe sleeps Period in a loop until the window stops and records,
// while the window is open, how late each sleep ended (actual − period).
type TimerProbe struct {
	period time.Duration
	late   []time.Duration // written by the probe's task or goroutine only
	h      *scheduler.JoinHandle[struct{}]
	done   chan struct{}
}

// StartTimerProbe spawns the probe as a stackful task on rt: each sleep is
// co.Sleep, so it measures the runtime's timer driver and how soon a
// worker polls the woken task.
func StartTimerProbe(rt *scheduler.Runtime, w *Window, period time.Duration) *TimerProbe {
	p := &TimerProbe{period: period}
	p.h = scheduler.SpawnFunc(rt, func(co *scheduler.Co) (struct{}, error) {
		p.loop(w, co.Sleep)
		return struct{}{}, nil
	})
	return p
}

// StartGoroutineProbe runs the probe as a plain goroutine calling
// time.Sleep: the reference for what Go's own timers give on the machine.
func StartGoroutineProbe(w *Window, period time.Duration) *TimerProbe {
	p := &TimerProbe{period: period, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.loop(w, time.Sleep)
	}()
	return p
}

func (p *TimerProbe) loop(w *Window, sleep func(time.Duration)) {
	for !w.Stopped() {
		t0 := time.Now()
		sleep(p.period)
		if late := time.Since(t0) - p.period; w.Measuring() {
			p.late = append(p.late, late)
		}
	}
}

// Wait waits for the probe to end (after Window.Stop, within one period).
func (p *TimerProbe) Wait(ctx context.Context) error {
	if p.h != nil {
		_, err := p.h.Wait(ctx)
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Late is how late each sleep in the window ended; read it after Wait.
func (p *TimerProbe) Late() []time.Duration { return p.late }

// ExternalWaker is a goroutine outside the runtime that wakes a parked
// task every period through scheduler.Waker.Wake, as a network poller or
// a channel from the rest of a service would. The task records, at each
// poll while the window is open, the delay from every send it has not
// seen yet to the poll.
type ExternalWaker struct {
	t    *extTask
	h    *scheduler.JoinHandle[struct{}]
	done chan struct{}
}

// StartExternalWaker spawns the woken task on rt, waits for its first
// poll (which hands over its waker) and starts the sending goroutine.
func StartExternalWaker(rt *scheduler.Runtime, w *Window, period time.Duration) *ExternalWaker {
	e := &ExternalWaker{t: &extTask{w: w, wakerCh: make(chan scheduler.Waker, 1)}, done: make(chan struct{})}
	e.h = scheduler.Spawn[struct{}](rt, e.t)
	waker := <-e.t.wakerCh
	go func() {
		defer close(e.done)
		for !w.Stopped() {
			time.Sleep(period)
			e.t.mu.Lock()
			e.t.sent = append(e.t.sent, time.Now())
			e.t.mu.Unlock()
			waker.Wake()
		}
		waker.Wake() // let the task see the stop
	}()
	return e
}

// Wait waits for the sending goroutine (it ends within one period of
// Window.Stop) and then for the task.
func (e *ExternalWaker) Wait(ctx context.Context) error {
	select {
	case <-e.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err := e.h.Wait(ctx)
	return err
}

// Delays are the send → poll delays in the window; read them after Wait.
func (e *ExternalWaker) Delays() []time.Duration { return e.t.delays }

// extTask is the task the external goroutine wakes.
type extTask struct {
	w       *Window
	wakerCh chan scheduler.Waker
	mu      sync.Mutex
	sent    []time.Time // sends not yet seen by a poll
	delays  []time.Duration
	started bool
}

func (e *extTask) Poll(cx *scheduler.Context) (struct{}, bool) {
	now := time.Now()
	if !e.started {
		e.started = true
		e.wakerCh <- cx.Waker()
	}
	e.mu.Lock()
	if e.w.Measuring() {
		for _, s := range e.sent {
			e.delays = append(e.delays, now.Sub(s))
		}
	}
	e.sent = e.sent[:0]
	e.mu.Unlock()
	return struct{}{}, e.w.Stopped()
}

// Placement is where PlaceUneven spawned its tasks.
type Placement struct {
	SpawnedOn []int // the worker each task was spawned on, by index
	PerWorker []int // how many tasks were spawned on each worker
}

// PlaceUneven spawns n tasks (spawn(cx, i) spawns task i from the placer
// task cx) unevenly over the runtime's workers workers: one placer task
// per worker, all running at the same time on distinct workers (a
// rendezvous: each waits, for up to 50 ms, until every placer is running
// on a worker of its own), so no worker is idle to steal while they spawn.
// The first placer spawns three quarters of the tasks (rounded up; tasks
// 0, 1, ...), the others the rest round-robin; then each holds its worker
// for 1 ms more so that the others finish spawning before any worker goes
// looking for work. A rendezvous that fails (the workers were busy) is
// retried, up to 50 times, with nothing spawned.
func PlaceUneven(ctx context.Context, rt *scheduler.Runtime, workers, n int, spawn func(cx *scheduler.Context, i int)) (Placement, error) {
	share := make([][]int, workers)
	first := min(n, (3*n+3)/4)
	if workers == 1 {
		first = n
	}
	for i := 0; i < n; i++ {
		if i < first {
			share[0] = append(share[0], i)
		} else {
			p := 1 + (i-first)%(workers-1)
			share[p] = append(share[p], i)
		}
	}
	for attempt := 0; attempt < 50; attempt++ {
		arrived := make([]atomic.Int64, workers)
		for i := range arrived {
			arrived[i].Store(-1)
		}
		// The placers agree before any spawns: once every one has
		// arrived, the first to see it decides go; a placer whose wait
		// times out first decides abort. The decision is final, so
		// either all placers spawn their share or none does.
		const undecided, goAhead, abort = 0, 1, 2
		var decision atomic.Int32
		var placed atomic.Int64
		spawnedOn := make([]int, n)
		var hs []*scheduler.JoinHandle[bool]
		for p := 0; p < workers; p++ {
			hs = append(hs, scheduler.Spawn[bool](rt, scheduler.PollFunc[bool](func(cx *scheduler.Context) (bool, bool) {
				me := int64(cx.WorkerID())
				arrived[p].Store(me)
				// Rendezvous: every placer running at once (so each on a
				// worker of its own).
				deadline := time.Now().Add(50 * time.Millisecond)
				for decision.Load() == undecided {
					all := true
					for q := range arrived {
						if arrived[q].Load() < 0 {
							all = false
							break
						}
					}
					switch {
					case all:
						decision.CompareAndSwap(undecided, goAhead)
					case time.Now().After(deadline):
						decision.CompareAndSwap(undecided, abort)
					}
				}
				if decision.Load() == abort {
					return false, true
				}
				for _, i := range share[p] {
					spawn(cx, i)
					spawnedOn[i] = int(me)
					placed.Add(1)
				}
				// Hold the worker a little so the other placers finish
				// spawning before any worker goes looking for work.
				for t := time.Now(); time.Since(t) < time.Millisecond; {
				}
				return true, true
			})))
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		for _, h := range hs {
			if _, err := h.Wait(wctx); err != nil {
				cancel()
				return Placement{}, fmt.Errorf("uneven placement: %w", err)
			}
		}
		cancel()
		switch got := placed.Load(); {
		case got == int64(n):
			pl := Placement{SpawnedOn: spawnedOn, PerWorker: make([]int, workers)}
			for _, w := range spawnedOn {
				pl.PerWorker[w]++
			}
			return pl, nil
		case got > 0:
			return Placement{}, fmt.Errorf("uneven placement: only %d of %d tasks placed", got, n)
		}
	}
	return Placement{}, errors.New("uneven placement: could not get a placer task onto every worker at once (is the machine very busy?)")
}
