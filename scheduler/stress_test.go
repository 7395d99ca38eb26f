package scheduler

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestExactlyOnce spawns tasks from inside tasks and from foreign
// goroutines; each task is woken a random number of times, from workers
// (WakeFrom, including self-wakes) and from foreign goroutines (Wake). Each
// wake is issued only after the previous one was consumed, so the poll
// count of every task is exact: 1 + its number of wakes. Every task must
// complete exactly once and the totals must match.
func TestExactlyOnce(t *testing.T) {
	total := 1_000_000
	if testing.Short() {
		total = 20_000
	}
	if raceEnabled && !testing.Short() {
		total = 200_000 // the race detector is ~10x slower; CI runs both modes
	}
	rt := newRT(t, WithWorkers(2), WithLocalQueueCapacity(64))
	foreign := make(chan Waker, 1024)
	var fwg sync.WaitGroup
	for i := 0; i < 4; i++ {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			for w := range foreign {
				w.Wake()
			}
		}()
	}
	completions := make([]atomic.Int32, total)
	var polls, wakes atomic.Int64
	var done sync.WaitGroup
	done.Add(total)
	mkTask := func(id int, seed uint64) Future[int] {
		r := rand.New(rand.NewPCG(seed, uint64(id)))
		left := r.IntN(4)
		return PollFunc[int](func(cx *Context) (int, bool) {
			polls.Add(1)
			if left == 0 {
				if completions[id].Add(1) == 1 {
					done.Done()
				}
				return id, true
			}
			left--
			wakes.Add(1)
			switch r.IntN(3) {
			case 0:
				cx.Waker().WakeFrom(cx) // self-wake while running
			case 1:
				foreign <- cx.Waker()
			default:
				cx.Yield()
			}
			return 0, false
		})
	}
	// Half from a foreign goroutine, half from inside spawner tasks.
	var hmu sync.Mutex
	handles := make([]*JoinHandle[int], total)
	half := total / 2
	go func() {
		for i := 0; i < half; i++ {
			handles[i] = Spawn(rt, mkTask(i, 1))
		}
	}()
	const spawners = 100
	per := (total - half) / spawners
	for s := 0; s < spawners; s++ {
		lo, hi := half+s*per, half+(s+1)*per
		if s == spawners-1 {
			hi = total
		}
		Spawn(rt, PollFunc[struct{}](func(cx *Context) (struct{}, bool) {
			for i := lo; i < hi; i++ {
				h := Spawn(cx, mkTask(i, 2))
				hmu.Lock()
				handles[i] = h
				hmu.Unlock()
			}
			return struct{}{}, true
		}))
	}
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(5 * time.Minute):
		t.Fatalf("lost tasks: %d of %d not completed", total-int(countDone(completions)), total)
	}
	close(foreign)
	fwg.Wait()
	for i := range completions {
		if c := completions[i].Load(); c != 1 {
			t.Fatalf("task %d completed %d times", i, c)
		}
	}
	if got, want := polls.Load(), int64(total)+wakes.Load(); got != want {
		t.Fatalf("polls = %d, want tasks + wakes = %d", got, want)
	}
	hmu.Lock()
	defer hmu.Unlock()
	for i, h := range handles {
		if v, err := h.Wait(context.Background()); v != i || err != nil {
			t.Fatalf("handle %d: %d, %v", i, v, err)
		}
	}
	waitAlive(t, rt)
	t.Logf("%d tasks, %d wakes, %d polls; stats %+v", total, wakes.Load(), polls.Load(), rt.Stats().Total())
}

func countDone(c []atomic.Int32) int64 {
	var n int64
	for i := range c {
		n += int64(c[i].Load())
	}
	return n
}

// TestManyWakesWhileQueuedPollOnce: wakes that arrive while a task is
// already queued do not queue it again.
func TestManyWakesWhileQueuedPollOnce(t *testing.T) {
	rt := newRT(t, WithWorkers(1))
	var polls atomic.Int64
	ch := make(chan Waker, 1)
	h := Spawn(rt, PollFunc[int](func(cx *Context) (int, bool) {
		if polls.Add(1) == 1 {
			ch <- cx.Waker()
			return 0, false
		}
		return 1, true
	}))
	wk := <-ch
	time.Sleep(time.Millisecond) // let the first poll return
	release := make(chan struct{})
	started := make(chan struct{})
	blocker := Spawn(rt, PollFunc[int](func(*Context) (int, bool) { close(started); <-release; return 0, true }))
	<-started
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); wk.Wake() }()
	}
	wg.Wait()
	if d := rt.Stats().InjectorDepth; d != 1 {
		t.Fatalf("injector holds %d entries after 100 wakes, want 1", d)
	}
	close(release)
	wait(t, blocker)
	wait(t, h)
	if polls.Load() != 2 {
		t.Fatalf("polls = %d, want 2", polls.Load())
	}
}

// TestNoLostWakeup races foreign wakes against workers going idle: rounds
// of short-lived tasks that park and are woken from goroutines after a
// random short delay, with pauses so workers park between rounds. A lost
// wake-up leaves a task pending forever, which the timeout turns into a
// failure. The timeout is per task, 30 s after its wake: how long all the
// rounds take depends on the machine (the race detector, other load).
func TestNoLostWakeup(t *testing.T) {
	rounds, perRound := 400, 50
	if testing.Short() {
		rounds = 60
	}
	rt := newRT(t, WithWorkers(2))
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		hs := make([]*JoinHandle[int], perRound)
		for i := range hs {
			ch := make(chan Waker, 1)
			var polls atomic.Int64
			hs[i] = Spawn(rt, parked(&polls, ch))
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := <-ch
				if i%3 == 0 {
					time.Sleep(time.Duration(rand.IntN(50)) * time.Microsecond)
				}
				w.Wake()
			}()
		}
		wg.Wait()
		deadline := time.After(30 * time.Second)
		for i, h := range hs {
			done := make(chan struct{})
			go func() { h.Wait(context.Background()); close(done) }()
			select {
			case <-done:
			case <-deadline:
				t.Fatalf("round %d task %d did not run within 30 s of its wake: lost wake-up", r, i)
			}
		}
		if r%4 == 0 {
			time.Sleep(200 * time.Microsecond) // let workers park
		}
	}
	if s := rt.Stats().Total(); s.Parks == 0 {
		t.Fatal("workers never parked: the test did not exercise park/unpark")
	}
}

// TestLoneYielderRacesWakesAndAborts: a task alone on its worker is polled
// again in place after each yield, its state staying running, while
// foreign goroutines wake it and then abort it at random moments. Every
// round must end with the task aborted (a stackful task's deferred calls
// run) or finished after all its yields, never lost or polled after its
// end; once Abort has returned, the task runs at most the rest of one poll
// (its suspension that follows is its last); and the workers keep running
// tasks.
func TestLoneYielderRacesWakesAndAborts(t *testing.T) {
	rounds := 400
	if testing.Short() || raceEnabled {
		rounds = 60
	}
	rt := newRT(t, WithWorkers(2))
	r := rand.New(rand.NewPCG(7, 7))
	for round := range rounds {
		const yields = 2000
		path := []YieldPath{PathImmediate, PathDeferred}[round%2]
		var polls, afterEnd, afterAbort atomic.Int64
		var ended, deferred, abortReturned atomic.Bool
		wakers := make(chan Waker, 1)
		var h *JoinHandle[int]
		if round%4 < 2 {
			h = SpawnFunc(rt, func(co *Co) (int, error) {
				defer deferred.Store(true)
				wakers <- co.Context().Waker()
				for range yields {
					polls.Add(1)
					co.YieldVia(path)
					if abortReturned.Load() {
						afterAbort.Add(1)
					}
				}
				ended.Store(true)
				return yields, nil
			})
		} else {
			left := yields
			h = Spawn(rt, PollFunc[int](func(cx *Context) (int, bool) {
				if ended.Load() {
					afterEnd.Add(1)
				}
				if abortReturned.Load() {
					afterAbort.Add(1)
				}
				if polls.Add(1) == 1 {
					wakers <- cx.Waker()
				}
				if left == 0 {
					ended.Store(true)
					return yields, true
				}
				left--
				cx.YieldVia(path)
				return 0, false
			}))
		}
		w := <-wakers
		for range r.IntN(4) {
			w.Wake()
			time.Sleep(time.Duration(r.IntN(20)) * time.Microsecond)
		}
		aborted := r.IntN(2) == 0
		if aborted {
			h.Abort()
			abortReturned.Store(true)
		}
		v, err := h.Wait(context.Background())
		switch {
		case err == nil:
			if v != yields || !ended.Load() {
				t.Fatalf("round %d: finished with %d, ended %v; want %d after every yield", round, v, ended.Load(), yields)
			}
		case errors.Is(err, ErrAborted):
			if !aborted {
				t.Fatalf("round %d: aborted without an Abort", round)
			}
		default:
			t.Fatalf("round %d: %v", round, err)
		}
		if n := afterAbort.Load(); n > 1 {
			t.Fatalf("round %d: %d resumptions after Abort returned, want at most 1", round, n)
		}
		if stackful := round%4 < 2; stackful && !deferred.Load() || afterEnd.Load() != 0 {
			t.Fatalf("round %d (stackful %v): deferred calls ran %v, polls after the end %d", round, stackful, deferred.Load(), afterEnd.Load())
		}
	}
	waitAlive(t, rt)
	if v := wait(t, Spawn(rt, PollFunc[int](func(*Context) (int, bool) { return 3, true }))); v != 3 {
		t.Fatal(v)
	}
}

// TestNotStartedRacesFirstPoll: tasks spawned with SpawnFuncNotStarted
// from outside are aborted at random moments around their first poll.
// Each completes exactly once, either by its body (which then ran, and
// notStarted was not called for it) or by notStarted (and its body never
// ran): never both, never neither.
func TestNotStartedRacesFirstPoll(t *testing.T) {
	rounds := 1000
	if testing.Short() || raceEnabled {
		rounds = 150
	}
	const perRound = 8
	rt := newRT(t, WithWorkers(2))
	r := rand.New(rand.NewPCG(3, 5))
	var bodies, notStarted atomic.Int64
	for round := range rounds {
		var ran, answered [perRound]atomic.Bool
		hs := make([]*JoinHandle[int], perRound)
		for i := range hs {
			hs[i] = SpawnFuncNotStarted(rt, func(co *Co) (int, error) {
				ran[i].Store(true)
				bodies.Add(1)
				return 1, nil
			}, func(reason error) (int, error) {
				answered[i].Store(true)
				notStarted.Add(1)
				return 2, &notStartedErr{reason}
			})
		}
		for _, h := range hs {
			if d := r.IntN(3); d > 0 {
				time.Sleep(time.Duration(r.IntN(10*d)) * time.Microsecond)
			}
			h.Abort()
		}
		for i, h := range hs {
			v, err := h.Wait(context.Background())
			switch {
			case v == 1 && err == nil && ran[i].Load() && !answered[i].Load():
			case v == 2 && errors.Is(err, ErrAborted) && answered[i].Load() && !ran[i].Load():
			default:
				t.Fatalf("round %d task %d: %d, %v; body ran %v, notStarted called %v", round, i, v, err, ran[i].Load(), answered[i].Load())
			}
		}
	}
	if got := bodies.Load() + notStarted.Load(); got != int64(rounds*perRound) {
		t.Fatalf("%d bodies and %d notStarted answers for %d tasks", bodies.Load(), notStarted.Load(), rounds*perRound)
	}
	t.Logf("%d bodies ran, %d tasks answered by notStarted", bodies.Load(), notStarted.Load())
	if notStarted.Load() == 0 || bodies.Load() == 0 {
		t.Fatalf("only one side was exercised: %d bodies, %d notStarted answers", bodies.Load(), notStarted.Load())
	}
}
