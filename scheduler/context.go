package scheduler

import (
	"sync/atomic"
	"time"

	"github.com/wasmsched/wasmsched/scheduler/internal/worker"
)

// Future is a poll-based task body, as in Rust: Poll returns (value, true)
// when done, or (_, false) after arranging to be woken (through
// cx.Waker(), a timer, or a yield) when it can make progress.
type Future[T any] interface {
	Poll(cx *Context) (T, bool)
}

// PollFunc adapts a function to a Future.
type PollFunc[T any] func(cx *Context) (T, bool)

// Poll calls f.
func (f PollFunc[T]) Poll(cx *Context) (T, bool) { return f(cx) }

// Context is what a poll receives: the running task, its worker and its
// runtime. There is one Context per worker, reused for every poll; it is
// valid only during the poll (do not keep it, do not pass it to another
// goroutine — pass a Waker instead).
type Context struct {
	rt      *Runtime
	w       *worker.Worker
	cur     *header
	yield   YieldPath
	yielded bool
	timers  []*header // scratch for timer polls on this worker
	attnSet bool      // the poll registered an attention word (SetAttention)
	// pollStart is the runtime nanotime at the poll's start; only with an
	// Observer.
	pollStart int64
}

// Runtime returns the runtime the task runs on.
func (cx *Context) Runtime() *Runtime { return cx.rt }

// WorkerID returns the index of the worker running the task, or -1 when
// the task is being cancelled off any worker (during shutdown).
func (cx *Context) WorkerID() int {
	if cx.w == nil {
		return -1
	}
	return cx.w.ID()
}

// PollSeq identifies the worker's current activity: it advances at every
// poll, park, and hand-off of the worker's Go P to other goroutines. A task
// that reads n during one poll and n+1 during its next poll, on the same
// worker (WorkerID), was suspended for a hop of the scheduler only (its
// requeue and pick, at most one search for work that found it woken):
// nothing else ran on that worker, which did not park or give its P away,
// so the suspension needs no clock to be timed. The
// goroutine scheduler may still have preempted the worker in between, as
// it may preempt any poll. It is 0 off any worker.
func (cx *Context) PollSeq() uint64 {
	if cx.w == nil {
		return 0
	}
	return cx.w.Seq()
}

// StampWhenLeft asks the worker to store Nanotime() in *cell, unless *cell
// is no longer 0, when it next moves on from the running task: when
// PollSeq next advances for anything but a poll of this task (another
// task's poll, a park, a hand-off of the P). If the worker's next poll is
// this task's — a hop — the request lapses and *cell stays 0. One request
// per worker is held, the last; call it just before suspending.
//
// A task that times its suspensions uses it instead of reading the clock
// as it suspends: a hop needs no time (PollSeq), and any other wait began
// when the worker moved on, which the worker reads the clock for then. A
// task stolen before its old worker moves on finds *cell still 0: its wait
// was the steal's, a moment. Off any worker it does nothing.
func (cx *Context) StampWhenLeft(cell *atomic.Int64) {
	if cx.w != nil && cx.cur != nil {
		cx.w.StampWhenLeft(&cx.cur.wt, cell)
	}
}

// PollBegan is the Nanotime at which the worker began the current poll, if
// it read the clock then, else 0. It reads it when it moves on from a task
// that asked StampWhenLeft, so a task that resumes after such a switch can
// date its resumption without a clock read of its own: the reading is the
// poll's start to within the worker's bookkeeping (well under a
// microsecond), however long the poll has run since. 0 off any worker.
func (cx *Context) PollBegan() int64 {
	if cx.w == nil {
		return 0
	}
	return cx.w.PollBegan()
}

// Nanotime is the monotonic clock StampWhenLeft stamps with, in
// nanoseconds from an arbitrary process-wide origin; it is at least 1.
func Nanotime() int64 { return worker.Nanotime() }

// TaskID returns the running task's ID.
func (cx *Context) TaskID() TaskID { return cx.cur.id }

// Waker returns a waker for the running task.
func (cx *Context) Waker() Waker { return Waker{cx.cur} }

// Aborted reports whether the running task has been asked to stop.
func (cx *Context) Aborted() bool { return cx.cur.cancelRequested() }

// Yield asks for the running task to be polled again through the immediate
// path once this poll returns pending.
func (cx *Context) Yield() { cx.YieldVia(PathImmediate) }

// YieldNow asks for the running task to be polled again through the
// deferred path once this poll returns pending.
func (cx *Context) YieldNow() { cx.YieldVia(PathDeferred) }

// YieldVia asks for the running task to be polled again through path
// (PathDefault: the runtime's Config.DefaultYield) once this poll returns
// pending. The last call in a poll wins.
func (cx *Context) YieldVia(path YieldPath) {
	if path == PathDefault {
		path = cx.rt.cfg.DefaultYield
	}
	cx.yield, cx.yielded = path, true
}

// WakeAt arranges for the running task to be woken at or after the
// deadline (a time from Runtime.Now). Timers never fire early.
func (cx *Context) WakeAt(deadline time.Duration) {
	cx.rt.timers.add(int64(deadline), cx.cur, cx.w)
}

// TimersDue reports whether a timer of the runtime has expired and waits to
// be fired. Long-running code that checks in often (a Wasm guest's fuel
// check) uses it to give way to timers without waiting for its deadline.
// Cheap: one atomic load, plus a clock read while any timer is pending.
func (cx *Context) TimersDue() bool { return cx.rt.timers.due() }

// NextTimer returns the deadline of the runtime's earliest pending timer
// (a time from Runtime.Now), and false if none is pending. Two atomic
// loads and no clock read: code that estimates the time between clock
// reads (a guest's epoch check) compares its estimate with it, and calls
// TimersDue only when the estimate has reached it.
func (cx *Context) NextTimer() (time.Duration, bool) {
	when, ok := cx.rt.timers.nextDue()
	return time.Duration(when), ok
}

// SetAttention registers cell as the running task's attention word for the
// rest of this poll: whenever a task is pushed to the injector (spawned or
// woken from outside), a timer becomes the runtime's earliest or a running
// task is aborted, the runtime stores 1 into it (atomically, from
// whichever goroutine did it).
// Code that checks in at intervals and skips its checks while nothing is
// due (a Wasm guest refilling its own fuel counter) reads the word instead
// of calling RemoteWorkWaiting and NextTimer, and clears it itself. The
// registration ends with the poll, or with SetAttention(nil); at most one
// word is registered per worker, the last one set. The cell must stay
// writable for as long as it may be registered.
func (cx *Context) SetAttention(cell *uint64) {
	if cx.w == nil {
		return
	}
	cx.rt.attention[cx.w.ID()].cell.Store(cell)
	cx.attnSet = cell != nil
}

// RemoteWorkWaiting reports whether tasks wait in the injector (spawned or
// woken from outside the runtime). One atomic load.
func (cx *Context) RemoteWorkWaiting() bool { return cx.rt.inj.len() > 0 }

// FireTimers fires every expired timer now, waking their tasks onto this
// worker as the worker itself would at its next timer poll: the first into
// the LIFO slot if it is enabled and empty, the others to the back of the
// ring.
func (cx *Context) FireTimers() {
	if cx.w != nil {
		cx.rt.timers.poll(cx.w, &cx.timers)
	}
}

// Spawner is where a task can be spawned: a *Runtime (from any goroutine:
// the task goes through the injector) or a *Context / *Co (from inside a
// task: it goes to the current worker's LIFO slot or ring).
type Spawner interface {
	spawnTarget() (*Runtime, *Context)
}

func (rt *Runtime) spawnTarget() (*Runtime, *Context) { return rt, nil }
func (cx *Context) spawnTarget() (*Runtime, *Context) { return cx.rt, cx }

// Spawn starts a poll-based task and returns its handle. After Shutdown
// has begun, the handle is already complete with ErrShutdown.
func Spawn[T any](s Spawner, f Future[T]) *JoinHandle[T] {
	return spawnBody(s, f, nil)
}

func spawnBody[T any](s Spawner, f Future[T], body *coBody[T]) *JoinHandle[T] {
	rt, cx := s.spawnTarget()
	h := &JoinHandle[T]{}
	t := h.tk()
	t.fut, t.body, t.typed = f, body, t
	if body != nil {
		t.co = &body.coCore
		t.wt.Init((*stackfulRunner)(&t.header))
	} else {
		t.wt.Init(t)
	}
	t.rt = rt
	t.id = TaskID(rt.nextID.Inc())
	t.lastWorker = -1
	t.state.Store(stScheduled)
	t.markReady()
	if !rt.owned.insert(&t.header) {
		var zero T
		t.result, t.err = zero, ErrShutdown
		if body != nil {
			t.result, t.err = body.outcome(nil, ErrShutdown)
		}
		t.fut, t.body, t.co = nil, nil, nil
		t.state.Store(stComplete)
		t.join.Store(joinDone)
		return h
	}
	if cx != nil && cx.w != nil && cx.cur != nil && cx.rt == rt {
		cx.w.Schedule(&t.wt)
	} else {
		rt.scheduleRemote(&t.header)
	}
	return h
}

// Yield is a Future that yields once through the immediate path.
func Yield() Future[struct{}] { return &yieldFuture{path: PathImmediate} }

// YieldNow is a Future that yields once through the deferred path.
func YieldNow() Future[struct{}] { return &yieldFuture{path: PathDeferred} }

type yieldFuture struct {
	path YieldPath
	done bool
}

func (y *yieldFuture) Poll(cx *Context) (struct{}, bool) {
	if y.done {
		return struct{}{}, true
	}
	y.done = true
	cx.YieldVia(y.path)
	return struct{}{}, false
}

// Sleep is a Future that completes once d has elapsed since its first poll.
func Sleep(d time.Duration) Future[struct{}] { return &sleepFuture{d: d} }

type sleepFuture struct {
	d        time.Duration
	deadline time.Duration
	started  bool
}

func (s *sleepFuture) Poll(cx *Context) (struct{}, bool) {
	now := cx.rt.Now()
	if !s.started {
		s.started, s.deadline = true, now+s.d
	}
	if now >= s.deadline {
		return struct{}{}, true
	}
	cx.WakeAt(s.deadline)
	return struct{}{}, false
}
