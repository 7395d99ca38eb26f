package wasmtask

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
)

// TestSuspendedTime: a guest's Suspended time counts every wait. A
// resumption that is its worker's very next poll is a hop and counts as
// none (no clock read); any other is timed.
func TestSuspendedTime(t *testing.T) {
	const n, slice = 1_000_000, 1_000_000
	t.Run("sleeps", func(t *testing.T) {
		// Timers never fire early: each suspension lasts at least the sleep.
		e := newEnv(t, "spin.wasm", EngineConfig{}, scheduler.WithWorkers(1))
		const sleep = 2 * time.Millisecond
		r, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{n},
			Interrupt: InterruptFuel, FuelSlice: slice, Policy: SleepPolicy(sleep)}))
		if err != nil {
			t.Fatal(err)
		}
		if r.Stats.Custom == 0 || r.Stats.Suspended < time.Duration(r.Stats.Custom)*sleep {
			t.Fatalf("%d sleeps of %v counted as %v suspended", r.Stats.Custom, sleep, r.Stats.Suspended)
		}
	})
	t.Run("sharing a worker", func(t *testing.T) {
		// Two guests on one worker, yielding on the immediate path: each
		// resumption of one follows a poll of the other (the LIFO slot
		// is off, so the yielder goes behind the other), so none is a hop.
		// A task spawns both, so that both are in the worker's ring before
		// either runs (spawned from outside, the second could wait in the
		// injector until the first has finished).
		//
		// With a constant policy in fuel mode the check reads no clock: the
		// worker stamps each wait's start as it moves on to the other
		// guest (StampWhenLeft). One worker runs one guest at a time, so
		// while both live each is suspended for the other's running time:
		// the two Suspended times add up to about the time both lived. Half
		// of the time from the spawn to the second result leaves room for
		// the guests' start-up and the last one's run alone. A resumption
		// is dated with the worker's reading at the switch (PollBegan).
		e := newEnv(t, "spin.wasm", EngineConfig{}, scheduler.WithWorkers(1), scheduler.WithLIFOSlot(false))
		const n = 10 * n
		spawned := make(chan []*scheduler.JoinHandle[Result], 1)
		start := time.Now()
		scheduler.SpawnFunc(e.rt, func(co *scheduler.Co) (int, error) {
			var hs []*scheduler.JoinHandle[Result]
			for range 2 {
				hs = append(hs, Spawn(context.Background(), co, e.mod, Options{Export: "spin", Args: []uint64{n},
					Interrupt: InterruptFuel, FuelSlice: slice / 10, Policy: ImmediateYield()}))
			}
			spawned <- hs
			return 0, nil
		})
		hs := <-spawned
		var sum time.Duration
		for i, h := range hs {
			r, err := waitGuest(t, h)
			if err != nil {
				t.Fatal(err)
			}
			if r.Stats.Immediate == 0 || r.Stats.Suspended <= 0 {
				t.Fatalf("guest %d: %d immediate yields while sharing its worker counted as %v suspended", i, r.Stats.Immediate, r.Stats.Suspended)
			}
			sum += r.Stats.Suspended
		}
		lived := time.Since(start)
		if sum < lived/2 {
			t.Fatalf("the guests' suspended times add up to %v, want at least half of the %v they shared the worker", sum, lived)
		}
		if sum > 2*lived {
			t.Fatalf("the guests' suspended times add up to %v, more than twice the %v they lived", sum, lived)
		}
	})
}

// TestConstantPolicies: the built-in constant policies are recognised (the
// guest takes their action without a call); any other function, including
// a closure returning the same action, is called.
func TestConstantPolicies(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		want bool
		kind ActionKind
		path scheduler.YieldPath
	}{
		{"DeferredYield", DeferredYield(), true, ActYield, scheduler.PathDeferred},
		{"ImmediateYield", ImmediateYield(), true, ActYield, scheduler.PathImmediate},
		{"YieldPolicy(PathDefault)", YieldPolicy(scheduler.PathDefault), true, ActYield, scheduler.PathDefault},
		{"YieldPolicy(PathDeferred)", YieldPolicy(scheduler.PathDeferred), true, ActYield, scheduler.PathDeferred},
		{"NeverYield", NeverYield(), true, ActContinue, 0},
		{"a closure", func(GuestInfo) Action { return Yield(0, scheduler.PathDeferred) }, false, 0, 0},
		{"SleepPolicy", SleepPolicy(time.Millisecond), false, 0, 0},
	} {
		act, ok := constantAction(tc.p)
		if ok != tc.want || ok && (act.Kind != tc.kind || act.Path != tc.path) {
			t.Errorf("%s: constantAction = %+v, %v; want kind %v path %v, %v", tc.name, act, ok, tc.kind, tc.path, tc.want)
		}
	}
	// A policy that is not constant is still called, and its panic is the
	// embedder's error.
	e := newEnv(t, "spin.wasm", EngineConfig{}, scheduler.WithWorkers(1))
	_, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{100_000},
		Interrupt: InterruptFuel, FuelSlice: 1000, Policy: func(GuestInfo) Action { panic("policy bug") }}))
	if !errors.Is(err, ErrEmbedder) {
		t.Fatalf("panicking policy: %v, want ErrEmbedder", err)
	}
}
