package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func waitErr[T any](t testing.TB, h *JoinHandle[T]) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := h.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("task %d did not finish", h.ID())
	}
	return err
}

// parked returns a task that stays pending until its waker (sent on ch)
// is used, and counts its polls.
func parked(polls *atomic.Int64, ch chan<- Waker) Future[int] {
	sent := false
	return PollFunc[int](func(cx *Context) (int, bool) {
		polls.Add(1)
		if !sent {
			sent = true
			ch <- cx.Waker()
			return 0, false
		}
		return 7, true
	})
}

func TestAbortIdleTask(t *testing.T) {
	rt := newRT(t, WithWorkers(2))
	var polls atomic.Int64
	ch := make(chan Waker, 1)
	h := Spawn(rt, parked(&polls, ch))
	wk := <-ch
	h.Abort()
	if err := waitErr(t, h); !errors.Is(err, ErrAborted) {
		t.Fatalf("err = %v, want ErrAborted", err)
	}
	wk.Wake() // a late wake of a finished task does nothing
	time.Sleep(5 * time.Millisecond)
	if polls.Load() != 1 {
		t.Fatalf("aborted task polled %d times, want 1", polls.Load())
	}
}

func TestAbortQueuedTaskIsNeverPolled(t *testing.T) {
	rt := newRT(t, WithWorkers(1))
	release := make(chan struct{})
	blocker := Spawn(rt, PollFunc[int](func(*Context) (int, bool) { <-release; return 0, true }))
	var polls atomic.Int64
	h := Spawn(rt, PollFunc[int](func(*Context) (int, bool) { polls.Add(1); return 1, true }))
	h.Abort()
	close(release)
	wait(t, blocker)
	if err := waitErr(t, h); !errors.Is(err, ErrAborted) {
		t.Fatalf("err = %v", err)
	}
	if polls.Load() != 0 {
		t.Fatal("queued task was polled after Abort")
	}
}

func TestAbortRunningPollTaskAfterPoll(t *testing.T) {
	rt := newRT(t, WithWorkers(2))
	started := make(chan struct{})
	aborted := make(chan struct{})
	var polls atomic.Int64
	h := Spawn(rt, PollFunc[int](func(cx *Context) (int, bool) {
		if polls.Add(1) == 1 {
			close(started)
			<-aborted
			cx.Yield() // would run again, but the abort wins
			return 0, false
		}
		return 1, true
	}))
	<-started
	h.Abort()
	close(aborted)
	if err := waitErr(t, h); !errors.Is(err, ErrAborted) {
		t.Fatalf("err = %v", err)
	}
	if polls.Load() != 1 {
		t.Fatalf("polled %d times", polls.Load())
	}
}

func TestAbortRunningStackfulAtNextSuspension(t *testing.T) {
	rt := newRT(t, WithWorkers(2))
	started := make(chan struct{})
	var after atomic.Bool
	var deferred atomic.Bool
	h := SpawnFunc(rt, func(co *Co) (int, error) {
		defer deferred.Store(true)
		close(started)
		for !co.Aborted() {
		}
		co.Yield() // the next suspension point unwinds the task
		after.Store(true)
		return 1, nil
	})
	<-started
	h.Abort()
	if err := waitErr(t, h); !errors.Is(err, ErrAborted) {
		t.Fatalf("err = %v", err)
	}
	if after.Load() || !deferred.Load() {
		t.Fatalf("after suspension ran: %v; deferred ran: %v", after.Load(), deferred.Load())
	}
}

func TestAbortSuspendedStackfulRunsDefers(t *testing.T) {
	rt := newRT(t, WithWorkers(2))
	var deferred atomic.Bool
	ready := make(chan struct{})
	h := SpawnFunc(rt, func(co *Co) (int, error) {
		defer deferred.Store(true)
		close(ready)
		co.Sleep(time.Hour)
		return 1, nil
	})
	<-ready
	time.Sleep(time.Millisecond)
	h.Abort()
	if err := waitErr(t, h); !errors.Is(err, ErrAborted) {
		t.Fatalf("err = %v", err)
	}
	if !deferred.Load() {
		t.Fatal("defers of the aborted coroutine did not run")
	}
}

func TestAbortFinishedKeepsResult(t *testing.T) {
	rt := newRT(t, WithWorkers(1))
	h := Spawn(rt, PollFunc[int](func(*Context) (int, bool) { return 9, true }))
	wait(t, h)
	h.Abort()
	if v, err := h.Wait(context.Background()); v != 9 || err != nil {
		t.Fatalf("got %d, %v", v, err)
	}
}

func TestPanicBecomesErrorAndWorkerSurvives(t *testing.T) {
	rt := newRT(t, WithWorkers(1))
	boom := errors.New("boom")
	h := Spawn(rt, PollFunc[int](func(*Context) (int, bool) { panic(boom) }))
	err := waitErr(t, h)
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != boom || !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(string(pe.Stack), "TestPanicBecomesErrorAndWorkerSurvives") {
		t.Fatalf("stack does not show the panicking function:\n%s", pe.Stack)
	}
	hs := SpawnFunc(rt, func(co *Co) (int, error) {
		co.Yield()
		panic("in coroutine")
	})
	err = waitErr(t, hs)
	if !errors.As(err, &pe) || pe.Value != "in coroutine" || !strings.Contains(string(pe.Stack), "TestPanicBecomesErrorAndWorkerSurvives") {
		t.Fatalf("stackful panic: %v\n%s", err, pe.Stack)
	}
	// The single worker still runs tasks.
	if v := wait(t, Spawn(rt, PollFunc[int](func(*Context) (int, bool) { return 3, true }))); v != 3 {
		t.Fatal(v)
	}
}

// TestShutdownCancelsEveryState: queued, idle, sleeping, deferred, stackful
// suspended, running and finished tasks all end with the right result, and
// no goroutine survives (TestMain checks with goleak).
func TestShutdownCancelsEveryState(t *testing.T) {
	rt, err := New(WithWorkers(2))
	if err != nil {
		t.Fatal(err)
	}
	finished := Spawn(rt, PollFunc[int](func(*Context) (int, bool) { return 1, true }))
	wait(t, finished)

	var idlePolls atomic.Int64
	ch := make(chan Waker, 1)
	idle := Spawn(rt, parked(&idlePolls, ch))
	<-ch
	sleeping := Spawn(rt, Sleep(time.Hour))
	coStarted := make(chan struct{})
	var coDeferred atomic.Bool
	stackful := SpawnFunc(rt, func(co *Co) (int, error) {
		defer coDeferred.Store(true)
		close(coStarted)
		co.Park()
		return 1, nil
	})
	<-coStarted
	deferred := Spawn(rt, PollFunc[int](func(cx *Context) (int, bool) {
		cx.YieldNow()
		return 0, false
	}))
	runStarted := make(chan struct{})
	running := Spawn(rt, PollFunc[int](func(cx *Context) (int, bool) {
		close(runStarted)
		spin(20 * time.Millisecond)
		// Spawned during shutdown: rejected or cancelled, never lost.
		Spawn(cx, PollFunc[int](func(*Context) (int, bool) { return 0, true }))
		return 5, true
	}))
	<-runStarted
	blockedWorker := make(chan struct{})
	queued := []*JoinHandle[int]{}
	Spawn(rt, PollFunc[int](func(cx *Context) (int, bool) {
		for i := 0; i < 50; i++ {
			queued = append(queued, Spawn(cx, PollFunc[int](func(*Context) (int, bool) { return 1, true })))
		}
		close(blockedWorker)
		spin(20 * time.Millisecond)
		return 0, true
	}))
	<-blockedWorker

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	late := Spawn(rt, PollFunc[int](func(*Context) (int, bool) { return 1, true }))

	for name, h := range map[string]*JoinHandle[int]{"idle": idle, "stackful": stackful, "deferred": deferred, "late": late} {
		if err := waitErr(t, h); !errors.Is(err, ErrShutdown) {
			t.Fatalf("%s: err = %v, want ErrShutdown", name, err)
		}
	}
	if err := waitErr(t, sleeping); !errors.Is(err, ErrShutdown) {
		t.Fatalf("sleeping: %v", err)
	}
	if v, err := running.Wait(ctx); v != 5 || err != nil {
		t.Fatalf("running task: %d, %v (a running poll finishes)", v, err)
	}
	if v, err := finished.Wait(ctx); v != 1 || err != nil {
		t.Fatal("finished result changed")
	}
	for _, h := range queued {
		if !h.IsFinished() {
			t.Fatal("a queued task was left unfinished")
		}
		if _, err := h.Wait(ctx); err != nil && !errors.Is(err, ErrShutdown) {
			t.Fatalf("queued: %v", err)
		}
	}
	if !coDeferred.Load() {
		t.Fatal("suspended coroutine was not unwound")
	}
	if s := rt.Stats(); s.Alive != 0 {
		t.Fatalf("%d tasks alive after shutdown", s.Alive)
	}
}

func TestShutdownTimesOutOnStuckPoll(t *testing.T) {
	rt, err := New(WithWorkers(1))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan struct{})
	Spawn(rt, PollFunc[int](func(*Context) (int, bool) { close(started); <-release; return 0, true }))
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := rt.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded while a poll is stuck", err)
	}
	close(release)
	if err := rt.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidConfig(t *testing.T) {
	shift := 32
	tooBig := int(uint64(1) << shift) // 0 where int is 32 bits: refused all the same
	for _, o := range []Option{
		WithWorkers(0), WithLocalQueueCapacity(100), WithLocalQueueCapacity(2),
		WithMaxLIFOPollsPerTick(0), WithEventInterval(0), WithGlobalQueueInterval(-1),
		// Tick intervals are 32-bit: one that would truncate to 0 (or to
		// another interval) is refused, not taken modulo 2^32.
		WithEventInterval(tooBig), WithGlobalQueueInterval(tooBig),
		WithDefaultYield(PathDefault), WithStallTimeout(0),
	} {
		if _, err := New(o); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("err = %v, want ErrInvalidConfig", err)
		}
	}
}

func TestParkHooksRun(t *testing.T) {
	var before, after atomic.Int64
	rt := newRT(t, WithWorkers(2), WithParkHooks(
		func(int) { before.Add(1) }, func(int) { after.Add(1) }))
	for i := 0; i < 10; i++ {
		wait(t, Spawn(rt, PollFunc[int](func(*Context) (int, bool) { return 0, true })))
		time.Sleep(time.Millisecond)
	}
	// A worker parks after its task on its own schedule (the OS may not
	// have run its thread yet): wait for the hooks rather than sample.
	for deadline := time.Now().Add(10 * time.Second); before.Load() == 0 || after.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("hooks: before %d after %d", before.Load(), after.Load())
		}
	}
}

type countingObserver struct {
	polls, latencies atomic.Int64
	maxLatency       atomic.Int64
}

func (o *countingObserver) ObservePoll(int, time.Duration) { o.polls.Add(1) }
func (o *countingObserver) ObserveScheduleLatency(_ int, d time.Duration) {
	o.latencies.Add(1)
	for {
		m := o.maxLatency.Load()
		if int64(d) <= m || o.maxLatency.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// TestObserverSeesEveryPoll: with an Observer, every poll reports its
// duration and its schedule latency, and a task that waited behind a 5 ms
// poll reports at least that wait.
func TestObserverSeesEveryPoll(t *testing.T) {
	o := &countingObserver{}
	rt := newRT(t, WithWorkers(1), WithObserver(o))
	wait(t, Spawn(rt, PollFunc[int](func(cx *Context) (int, bool) {
		Spawn(cx, PollFunc[int](func(*Context) (int, bool) { return 0, true })) // waits behind us
		spin(5 * time.Millisecond)
		return 0, true
	})))
	wait(t, Spawn(rt, yielder(&recorder{}, "y", 10, PathDeferred)))
	waitAlive(t, rt)
	if o.polls.Load() != 12 || o.latencies.Load() != 12 {
		t.Fatalf("observed %d polls and %d latencies, want 12 and 12", o.polls.Load(), o.latencies.Load())
	}
	if time.Duration(o.maxLatency.Load()) < 5*time.Millisecond {
		t.Fatalf("max schedule latency %v, want >= 5ms (the spawned task waited behind a 5 ms poll)", time.Duration(o.maxLatency.Load()))
	}
}

// TestAbortedSleepersLeaveTheTimerHeap: tasks aborted during a long sleep
// do not stay in the timer heap until their deadline (they would keep the
// task and its result reachable for that long): once the dead entries are
// more than half of the heap, it is rebuilt without them. A live sleeper
// among them stays, and a sleep after the rebuild still fires.
func TestAbortedSleepersLeaveTheTimerHeap(t *testing.T) {
	rt := newRT(t, WithWorkers(2))
	const n = 1000
	var started sync.WaitGroup
	started.Add(n)
	var hs []*JoinHandle[int]
	for range n {
		hs = append(hs, SpawnFunc(rt, func(co *Co) (int, error) {
			started.Done()
			co.Sleep(100 * 365 * 24 * time.Hour)
			return 0, nil
		}))
	}
	live := SpawnFunc(rt, func(co *Co) (int, error) {
		co.Sleep(time.Hour)
		return 1, nil
	})
	t.Cleanup(live.Abort)
	started.Wait()
	waitTimers := func(want func(int) bool) int {
		deadline := time.Now().Add(30 * time.Second)
		for {
			rt.timers.mu.Lock()
			l := len(rt.timers.h)
			rt.timers.mu.Unlock()
			if want(l) || time.Now().After(deadline) {
				return l
			}
			time.Sleep(time.Millisecond)
		}
	}
	if l := waitTimers(func(l int) bool { return l == n+1 }); l != n+1 {
		t.Fatalf("%d timers pending, want %d", l, n+1)
	}
	for _, h := range hs {
		h.Abort()
	}
	for _, h := range hs {
		if err := waitErr(t, h); !errors.Is(err, ErrAborted) {
			t.Fatalf("err = %v, want ErrAborted", err)
		}
	}
	rt.timers.mu.Lock()
	l, dead := len(rt.timers.h), rt.timers.dead
	rt.timers.mu.Unlock()
	if l-dead != 1 || l > 2*minCompaction {
		t.Fatalf("after %d aborted sleepers: %d timers in the heap, %d of them dead; want 1 live and at most %d in all", n, l, dead, 2*minCompaction)
	}
	short := SpawnFunc(rt, func(co *Co) (int, error) {
		co.Sleep(time.Millisecond)
		return 2, nil
	})
	if v, err := short.Wait(context.Background()); err != nil || v != 2 {
		t.Fatalf("a sleep after the rebuild: %v, %v", v, err)
	}
	if l := waitTimers(func(l int) bool { return l == dead+1 }); l != dead+1 {
		t.Fatalf("%d timers left after the short sleep fired, want the live one and the %d dead", l, dead)
	}
}

// notStartedErr is a body's own error type wrapping a cancellation reason.
type notStartedErr struct{ reason error }

func (e *notStartedErr) Error() string { return "not started: " + e.reason.Error() }
func (e *notStartedErr) Unwrap() error { return e.reason }

// TestSpawnFuncNotStarted: a stackful task cancelled before its first poll
// completes with what notStarted returned for the reason, Abort's or
// shutdown's, on every path a task can be cancelled before it starts; an
// answer that does not match the reason, or a panic, gives the reason;
// once the body has started, notStarted is not called.
func TestSpawnFuncNotStarted(t *testing.T) {
	var calls atomic.Int64
	var ran atomic.Bool
	body := func(co *Co) (int, error) { ran.Store(true); co.Park(); return 1, nil }
	wrap := func(reason error) (int, error) { calls.Add(1); return 42, &notStartedErr{reason} }
	check := func(name string, h *JoinHandle[int], want error) {
		t.Helper()
		v, err := h.Wait(context.Background())
		var ne *notStartedErr
		if v != 42 || !errors.As(err, &ne) || !errors.Is(err, want) {
			t.Fatalf("%s: %d, %v; want 42 and notStarted's error wrapping %v", name, v, err, want)
		}
	}

	rt := newRT(t, WithWorkers(1))
	release := make(chan struct{})
	blocker := Spawn(rt, PollFunc[int](func(*Context) (int, bool) { <-release; return 0, true }))
	aborted := SpawnFuncNotStarted(rt, body, wrap)
	aborted.Abort()
	mismatched := SpawnFuncNotStarted(rt, body, func(reason error) (int, error) { return 9, errors.New("something else") })
	mismatched.Abort()
	panicking := SpawnFuncNotStarted(rt, body, func(reason error) (int, error) { panic("embedder bug") })
	panicking.Abort()
	close(release)
	wait(t, blocker)
	check("aborted while queued", aborted, ErrAborted)
	for name, h := range map[string]*JoinHandle[int]{"mismatched": mismatched, "panicking": panicking} {
		if v, err := h.Wait(context.Background()); v != 0 || err != ErrAborted {
			t.Fatalf("%s: %d, %v; want 0 and ErrAborted itself", name, v, err)
		}
	}

	// Started, then aborted: the body's own outcome, not notStarted's.
	parking := make(chan struct{})
	started := SpawnFuncNotStarted(rt, func(co *Co) (int, error) { close(parking); co.Park(); return 1, nil }, wrap)
	<-parking
	started.Abort()
	if v, err := started.Wait(context.Background()); v != 0 || err != ErrAborted {
		t.Fatalf("started: %d, %v; want the body's unwinding (0, ErrAborted)", v, err)
	}

	// Queued at shutdown, and spawned after it.
	rt2, err := New(WithWorkers(1))
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	Spawn(rt2, PollFunc[int](func(*Context) (int, bool) { <-hold; return 0, true }))
	queued := SpawnFuncNotStarted(rt2, body, wrap)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { time.Sleep(5 * time.Millisecond); close(hold) }()
	if err := rt2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	check("queued at shutdown", queued, ErrShutdown)
	check("spawned after shutdown", SpawnFuncNotStarted(rt2, body, wrap), ErrShutdown)

	if ran.Load() {
		t.Fatal("a body cancelled before it started ran")
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("notStarted called %d times, want 3 (once per task cancelled before it started)", n)
	}
}
