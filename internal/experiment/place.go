package experiment

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
)

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
	share := unevenShares(workers, n)
	for range 50 {
		a := &placing{share: share, rv: newRendezvous(workers), spawnedOn: make([]int, n), spawn: spawn}
		if err := a.run(ctx, rt); err != nil {
			return Placement{}, fmt.Errorf("uneven placement: %w", err)
		}
		switch got := a.placed.Load(); {
		case got == int64(n):
			pl := Placement{SpawnedOn: a.spawnedOn, PerWorker: make([]int, workers)}
			for _, w := range a.spawnedOn {
				pl.PerWorker[w]++
			}
			return pl, nil
		case got > 0:
			return Placement{}, fmt.Errorf("uneven placement: only %d of %d tasks placed", got, n)
		}
	}
	return Placement{}, errors.New("uneven placement: could not get a placer task onto every worker at once (is the machine very busy?)")
}

// unevenShares are the tasks each placer spawns: three quarters of the n
// tasks (rounded up; all of them on one worker) to the first, the rest
// round-robin to the others.
func unevenShares(workers, n int) [][]int {
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
	return share
}

// placing is one attempt at the placement: a placer task per worker, the
// rendezvous they agree at, and what they spawned.
type placing struct {
	share     [][]int // the tasks of each placer
	rv        *rendezvous
	spawn     func(cx *scheduler.Context, i int)
	placed    atomic.Int64
	spawnedOn []int // written by the placers, read after they end
}

// run spawns the placer tasks and waits for them (for up to 10 s).
func (a *placing) run(ctx context.Context, rt *scheduler.Runtime) error {
	var hs []*scheduler.JoinHandle[bool]
	for p := range a.share {
		hs = append(hs, scheduler.Spawn[bool](rt, scheduler.PollFunc[bool](func(cx *scheduler.Context) (bool, bool) {
			return a.place(cx, p), true
		})))
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, h := range hs {
		if _, err := h.Wait(wctx); err != nil {
			return err
		}
	}
	return nil
}

// place is placer p's poll: it meets the others at the rendezvous, then,
// if they go ahead, spawns its share and holds the worker a little so the
// other placers finish spawning before any worker goes looking for work.
// It reports whether it spawned.
func (a *placing) place(cx *scheduler.Context, p int) bool {
	me := cx.WorkerID()
	if !a.rv.meet(p, int64(me)) {
		return false
	}
	for _, i := range a.share[p] {
		a.spawn(cx, i)
		a.spawnedOn[i] = me
		a.placed.Add(1)
	}
	// Hold the worker.
	for t := time.Now(); time.Since(t) < time.Millisecond; {
	}
	return true
}

// rendezvous is where the placers agree before any spawns: once every one
// has arrived, the first to see it decides go; a placer whose wait times
// out first decides abort. The decision is final, so either all placers
// spawn their share or none does.
type rendezvous struct {
	arrived  []atomic.Int64 // the worker each placer runs on; -1 until it arrives
	decision atomic.Int32
}

// A rendezvous's decisions.
const (
	rvUndecided = iota
	rvGo
	rvAbort
)

func newRendezvous(placers int) *rendezvous {
	rv := &rendezvous{arrived: make([]atomic.Int64, placers)}
	for i := range rv.arrived {
		rv.arrived[i].Store(-1)
	}
	return rv
}

// meet records that placer p runs on worker me and spins, for up to
// 50 ms, until every placer runs at once (so each on a worker of its
// own). It reports whether the placers go ahead.
func (rv *rendezvous) meet(p int, me int64) bool {
	rv.arrived[p].Store(me)
	deadline := time.Now().Add(50 * time.Millisecond)
	for rv.decision.Load() == rvUndecided {
		switch {
		case rv.all():
			rv.decision.CompareAndSwap(rvUndecided, rvGo)
		case time.Now().After(deadline):
			rv.decision.CompareAndSwap(rvUndecided, rvAbort)
		}
	}
	return rv.decision.Load() != rvAbort
}

// all reports whether every placer has arrived.
func (rv *rendezvous) all() bool {
	for q := range rv.arrived {
		if rv.arrived[q].Load() < 0 {
			return false
		}
	}
	return true
}
