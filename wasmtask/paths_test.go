package wasmtask

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
)

// busyScenario runs a guest that, through the host's mark, spawns two Go
// tasks onto its own worker that spin 20 ms each, then spins itself for
// about 50 ms with a deadline every epoch. It reports the guest's stats,
// the worker the guest yielded from first, and the workers the busy tasks
// ran on.
type busyScenario struct {
	stats       GuestStats
	guestWorker int
	busyWorkers []int
}

func runBusyScenario(t *testing.T, e *env, policy Policy) busyScenario {
	var mu sync.Mutex
	var out busyScenario
	out.guestWorker = -1
	busy := func(cx *scheduler.Context) (struct{}, bool) {
		mu.Lock()
		out.busyWorkers = append(out.busyWorkers, cx.WorkerID())
		mu.Unlock()
		for t0 := time.Now(); time.Since(t0) < 20*time.Millisecond; {
		}
		return struct{}{}, true
	}
	ctx := context.WithValue(context.Background(), markKey{}, func(hc *HostCall) {
		scheduler.Spawn(hc.Spawner(), scheduler.PollFunc[struct{}](busy))
		scheduler.Spawn(hc.Spawner(), scheduler.PollFunc[struct{}](busy))
	})
	recording := func(info GuestInfo) Action {
		mu.Lock()
		if out.guestWorker < 0 {
			out.guestWorker = info.Worker
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
	for e.rt.Stats().Alive != 0 { // the busy tasks
		time.Sleep(time.Millisecond)
	}
	out.stats = r.Stats
	return out
}

// TestDeferredPathNeverStolen: on the deferred path a guest is not taken by
// the idle peer even while its own worker is blocked for 20 ms by a task
// that was ready when it yielded. Stealing the busy tasks themselves is
// allowed, so the scenario is repeated until a busy task did run on the
// guest's worker, and in every run the guest must not migrate.
func TestDeferredPathNeverStolen(t *testing.T) {
	e := guestsEnv(t, nil, scheduler.WithWorkers(2))
	exercised := 0
	for attempt := 0; attempt < 10 && exercised < 2; attempt++ {
		o := runBusyScenario(t, e, DeferredYield())
		if o.stats.Migrations != 0 {
			t.Fatalf("deferred guest migrated %d times (guest on %d, busy on %v)", o.stats.Migrations, o.guestWorker, o.busyWorkers)
		}
		if o.stats.Deferred == 0 {
			t.Fatal("guest never yielded")
		}
		for _, w := range o.busyWorkers {
			if w == o.guestWorker {
				exercised++
				break
			}
		}
	}
	if exercised == 0 {
		t.Fatal("no run had a busy task on the guest's worker: scenario not exercised")
	}
}

// TestImmediatePathCanBeStolen: with the LIFO slot off an immediate yield
// puts the guest at the back of its worker's ring and notifies a peer; when
// that worker is blocked by a busy task, the peer steals the guest, which
// resumes on another worker. Whether a given run gets there depends on
// wake-up timing, so it is repeated until it happens.
func TestImmediatePathCanBeStolen(t *testing.T) {
	e := guestsEnv(t, nil, scheduler.WithWorkers(2), scheduler.WithLIFOSlot(false))
	for attempt := 0; attempt < 10; attempt++ {
		if o := runBusyScenario(t, e, ImmediateYield()); o.stats.Migrations > 0 {
			t.Logf("stolen on attempt %d: %d migrations in %d polls", attempt+1, o.stats.Migrations, o.stats.Polls)
			return
		}
	}
	t.Fatal("an immediately-yielding guest was never resumed on another worker in 10 runs")
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
