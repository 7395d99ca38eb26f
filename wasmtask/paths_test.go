package wasmtask

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
)

// busyScenario is the outcome of runBusyScenario: the guest's stats, the
// worker the guest yielded from first after mark, the workers the blockers
// ran on, and whether a blocker held the guest's worker.
type busyScenario struct {
	stats       GuestStats
	guestWorker int
	busyWorkers []int
	held        bool
}

// runBusyScenario runs a guest that, through the host's mark, spawns two
// blockers onto its own worker and then spins for about 50 ms with a
// deadline every epoch, yielding at each by policy.
//
// The scenario is built so that, whatever the wake-up timing, the guest's
// first yield after mark finds a blocker still queued on its worker and
// the other worker is free soon after:
//   - a blocker that runs on another worker spins until a blocker holds
//     the guest's worker (so it cannot drain that worker of the other
//     blocker first), then ends;
//   - a blocker that runs on the guest's worker holds it until the guest
//     has run elsewhere or hold has passed.
//
// So the guest is queued behind a blocker while its peer is idle, which is
// the situation the yield paths differ in.
func runBusyScenario(t *testing.T, e *env, policy Policy, hold time.Duration) busyScenario {
	var mu sync.Mutex
	var out busyScenario
	out.guestWorker = -1
	var marked bool
	var guestWorker atomic.Int64 // the worker of the first yield after mark, -1 before it
	var migrated atomic.Bool     // a yield after that on another worker
	var held atomic.Bool         // a blocker runs on the guest's worker
	guestWorker.Store(-1)
	const safety = 30 * time.Second // only if the scheduler is broken
	blocker := func(cx *scheduler.Context) (struct{}, bool) {
		mu.Lock()
		out.busyWorkers = append(out.busyWorkers, cx.WorkerID())
		mu.Unlock()
		t0 := time.Now()
		for guestWorker.Load() < 0 && time.Since(t0) < safety {
			runtime.Gosched() // let the guest's worker reach its yield on a busy machine
		}
		if int64(cx.WorkerID()) != guestWorker.Load() {
			// Stay until the guest's worker has taken the other blocker,
			// or this worker would steal it first.
			for !held.Load() && time.Since(t0) < safety {
				runtime.Gosched()
			}
			return struct{}{}, true
		}
		held.Store(true)
		for t0 := time.Now(); !migrated.Load() && time.Since(t0) < hold; {
		}
		return struct{}{}, true
	}
	ctx := context.WithValue(context.Background(), markKey{}, func(hc *HostCall) {
		mu.Lock()
		marked = true
		mu.Unlock()
		scheduler.Spawn(hc.Spawner(), scheduler.PollFunc[struct{}](blocker))
		scheduler.Spawn(hc.Spawner(), scheduler.PollFunc[struct{}](blocker))
	})
	recording := func(info GuestInfo) Action {
		mu.Lock()
		if marked && out.guestWorker < 0 {
			out.guestWorker = info.Worker
			guestWorker.Store(int64(info.Worker))
		}
		if out.guestWorker >= 0 && info.Worker != out.guestWorker {
			migrated.Store(true)
		}
		mu.Unlock()
		return policy(info)
	}
	n := uint64(60_000_000)
	r, err := waitGuest(t, Spawn(ctx, e.rt, e.mod, Options{Export: "mark_spin", Args: []uint64{n}, Policy: recording}))
	if err != nil {
		t.Fatal(err)
	}
	if r.Values[0] != spinRef(n) {
		t.Fatal("wrong result")
	}
	for e.rt.Stats().Alive != 0 { // the blockers
		time.Sleep(time.Millisecond)
	}
	out.stats = r.Stats
	out.held = held.Load()
	return out
}

// TestDeferredPathNeverStolen: on the deferred path a guest is not taken by
// the idle peer even while its own worker is held for 20 ms by a task that
// was ready when it yielded.
func TestDeferredPathNeverStolen(t *testing.T) {
	e := guestsEnv(t, nil, scheduler.WithWorkers(2))
	for attempt := 0; attempt < 3; attempt++ {
		o := runBusyScenario(t, e, DeferredYield(), 20*time.Millisecond)
		if o.stats.Migrations != 0 {
			t.Fatalf("deferred guest migrated %d times (guest on %d, blockers on %v)", o.stats.Migrations, o.guestWorker, o.busyWorkers)
		}
		if o.stats.Deferred == 0 {
			t.Fatal("guest never yielded")
		}
		if !o.held {
			t.Fatalf("no blocker held the guest's worker %d (blockers on %v): scenario not exercised", o.guestWorker, o.busyWorkers)
		}
	}
}

// TestImmediatePathCanBeStolen: with the LIFO slot off an immediate yield
// puts the guest at the back of its worker's ring and notifies a peer; when
// that worker is held by a blocker, the idle peer steals the guest, which
// resumes on another worker. The blocker holds until that happens, so the
// steal is the only way the run moves on (the hold's bound is a safety
// net for a broken scheduler, not a timing assumption).
func TestImmediatePathCanBeStolen(t *testing.T) {
	e := guestsEnv(t, nil, scheduler.WithWorkers(2), scheduler.WithLIFOSlot(false))
	for attempt := 0; attempt < 3; attempt++ {
		o := runBusyScenario(t, e, ImmediateYield(), 10*time.Second)
		if !o.held {
			t.Fatalf("no blocker held the guest's worker %d (blockers on %v): scenario not exercised", o.guestWorker, o.busyWorkers)
		}
		if o.stats.Migrations == 0 {
			t.Fatalf("attempt %d: the guest was never resumed on another worker while a blocker held its own (guest on %d, blockers on %v)",
				attempt+1, o.guestWorker, o.busyWorkers)
		}
	}
}

// TestImmediatePathWithLIFOResumesFirst: on one worker, an immediate yield
// with the LIFO slot puts the guest back in front of a task that was ready:
// the guest's yields 1-3 are each followed by a LIFO poll of the guest
// (MaxLIFOPollsPerTick = 3) and only its 4th goes behind the task. A
// deferred yield lets the task run after the first.
//
// The policy continues (no yield) until mark has run, so the LIFO streak
// starts after mark whatever the timing: the guest's deadline is armed
// before instantiation, and on a busy machine instantiating can outlast
// the 3 ms deadline, which put a yield (and the streak's first LIFO poll)
// before mark.
func TestImmediatePathWithLIFOResumesFirst(t *testing.T) {
	var order []string
	var marked bool
	var mu sync.Mutex
	e := guestsEnv(t, nil, scheduler.WithWorkers(1))
	ctx := context.WithValue(context.Background(), markKey{}, func(hc *HostCall) {
		mu.Lock()
		order = append(order, "mark")
		marked = true
		mu.Unlock()
		scheduler.Spawn(hc.Spawner(), scheduler.PollFunc[struct{}](func(*scheduler.Context) (struct{}, bool) {
			mu.Lock()
			order = append(order, "task")
			mu.Unlock()
			return struct{}{}, true
		}))
	})
	policy := func(path scheduler.YieldPath) Policy {
		return func(GuestInfo) Action {
			mu.Lock()
			defer mu.Unlock()
			if !marked {
				return Continue(0)
			}
			order = append(order, "yield")
			return Yield(0, path)
		}
	}
	for _, tc := range []struct {
		path scheduler.YieldPath
		want int // yields before the task ran
	}{{scheduler.PathImmediate, 4}, {scheduler.PathDeferred, 1}} {
		order, marked = nil, false
		_, err := waitGuest(t, Spawn(ctx, e.rt, e.mod, Options{Export: "mark_spin", Args: []uint64{20_000_000}, Policy: policy(tc.path),
			EpochDeadline: 3}))
		if err != nil {
			t.Fatal(err)
		}
		// Count the yields between mark (which spawned the task) and the
		// task's poll.
		got, seenMark := -1, false
		for _, s := range order {
			switch {
			case s == "mark":
				seenMark, got = true, 0
			case s == "yield" && seenMark:
				got++
			}
			if s == "task" {
				break
			}
		}
		if got != tc.want {
			t.Fatalf("%v: the ready task ran after %d yields (order %v), want %d", tc.path, got, order, tc.want)
		}
	}
}
