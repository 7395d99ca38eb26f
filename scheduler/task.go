package scheduler

import (
	"context"
	"errors"
	"runtime/debug"
	"time"

	"go.uber.org/atomic"

	"github.com/wasmsched/wasmsched/scheduler/internal/worker"
)

// TaskID identifies a task for the life of the process; IDs are never reused.
type TaskID uint64

// Task state bits. A task is idle (0: waiting for a wake-up), scheduled (in
// exactly one queue), or running (being polled by one worker); notified
// records a wake-up that arrived while running; cancelled records an abort
// or shutdown request; complete is final.
//
// Every transition is a CAS, which gives the two guarantees the tests pin
// down: a wake is never lost (a wake while running sets notified, and the
// worker reschedules the task after the poll) and a task is never queued
// twice (only the idle -> scheduled transition enqueues).
const (
	stScheduled uint32 = 1 << iota
	stRunning
	stNotified
	stCancelled
	stByShutdown // with stCancelled: the reason is shutdown, not Abort
	stComplete
)

// typedTask is what the type-independent code (header, stackfulRunner)
// needs from a task[T]: the steps that touch its result. Each is called
// once per task, so its generic wrapper costs nothing that matters.
type typedTask interface {
	finishReady(cx *Context)
	finishCancelled(w *worker.Worker)
	CancelTask()
}

// header is the type-independent part of a task.
type header struct {
	wt         worker.Task
	state      atomic.Uint32
	id         TaskID
	rt         *Runtime
	lastWorker int32
	readyAt    int64 // runtime nanotime when last made runnable; only with an Observer
	prev, next *header
	join       atomic.Pointer[joinWaiter]
	// timers counts this task's entries in the timer heap; timerDead
	// (under the driver's lock) says they were counted dead when the task
	// completed (timerDriver.forget).
	timers    atomic.Int32
	timerDead bool
	typed     typedTask // the task[T] this header is part of
	co        *coCore   // a stackful task's coroutine; nil for a poll-based task
}

type joinWaiter struct {
	waker Waker
	ch    chan struct{}
}

var joinDone = &joinWaiter{}

type task[T any] struct {
	header
	fut    Future[T]  // a poll-based task
	body   *coBody[T] // otherwise: a stackful task's coroutine (header.co is &body.coCore)
	result T
	err    error
}

// wake makes an idle task runnable: onto w (the current worker) if w is
// one of this task's runtime's workers, else through the injector.
func (h *header) wake(cx *Context) {
	if h.transitionToScheduled() {
		h.markReady()
		if cx != nil && cx.w != nil && cx.rt == h.rt {
			cx.w.Schedule(&h.wt)
		} else {
			h.rt.scheduleRemote(h)
		}
	}
}

// wakeTimer is wake for timers fired by w (see Worker.ScheduleTimerWake).
func (h *header) wakeTimer(w *worker.Worker) {
	if h.transitionToScheduled() {
		h.markReady()
		w.ScheduleTimerWake(&h.wt)
	}
}

// markReady stamps the moment the task became runnable, for the Observer.
// Only the goroutine that won the transition to scheduled writes it, before
// enqueuing; the queue hand-off orders it before the worker's read.
func (h *header) markReady() {
	if h.rt.cfg.Observer != nil {
		h.readyAt = h.rt.nanotime()
	}
}

// transitionToScheduled returns true if the caller must enqueue the task.
func (h *header) transitionToScheduled() bool {
	for {
		s := h.state.Load()
		switch {
		case s&stComplete != 0:
			return false
		case s&stRunning != 0:
			if s&stNotified != 0 || h.state.CompareAndSwap(s, s|stNotified) {
				return false
			}
		case s&stScheduled != 0:
			return false
		default:
			if h.state.CompareAndSwap(s, s|stScheduled) {
				return true
			}
		}
	}
}

// requestCancel marks the task cancelled with reason and makes sure a
// worker will see it: an idle task is scheduled so that it is cancelled
// where it would have run. A running task sees the mark after its poll (a
// stackful task also at its next suspension point).
func (h *header) requestCancel(reason error) {
	for {
		s := h.state.Load()
		if s&(stComplete|stCancelled) != 0 {
			return
		}
		ns := s | stCancelled
		if reason == ErrShutdown {
			ns |= stByShutdown
		}
		idle := s&(stRunning|stScheduled) == 0
		if idle {
			ns |= stScheduled
		}
		if h.state.CompareAndSwap(s, ns) {
			if idle {
				h.markReady()
				h.rt.scheduleRemote(h)
			} else if s&stRunning != 0 {
				// A running task that watches an attention word (a
				// guest skipping its checks) sees the request at its
				// next check instead of after its skips. Which worker
				// runs it is not known here without a shared write on
				// every poll, so every registered word is set: the
				// others' guests each make one check that finds
				// nothing, and aborts are rare.
				h.rt.notifyAttention()
			}
			return
		}
	}
}

func (h *header) cancelRequested() bool { return h.state.Load()&stCancelled != 0 }

func (h *header) cancelReason() error {
	if h.state.Load()&stByShutdown != 0 {
		return ErrShutdown
	}
	return ErrAborted
}

// RunTask polls a poll-based task once. It implements worker.Runner; a
// stackful task's runner is stackfulRunner.
func (t *task[T]) RunTask(w *worker.Worker) {
	cx := t.beginPoll(w)
	if cx == nil {
		return
	}
	ready := t.pollGuarded(cx)
	for !ready && t.repollInPlace(w, cx) {
		ready = t.pollGuarded(cx)
	}
	if t.endPoll(w, cx, ready) {
		t.finishReady(cx)
	}
}

// stackfulRunner runs a stackful task: the header of a task[T] whose body
// is a coroutine. It is not generic, so that the frames on the worker's
// stack while the coroutine runs are the fewest there can be: the worker
// loop, RunTask and the coroutine's resume. Every one of them is a return
// the CPU mispredicts when the coroutine switches back (the return stack
// buffer holds the coroutine's calls), and a generic RunTask adds two
// wrapper frames of its own and pollGuarded's recover. The coroutine
// recovers its own panics (coBody.run), so nothing here needs to.
type stackfulRunner header

func (r *stackfulRunner) RunTask(w *worker.Worker) {
	h := (*header)(r)
	cx := h.beginPoll(w)
	if cx == nil {
		return
	}
	// The coroutine runs until it suspends (more) or returns. This is
	// not a method of coCore: that would be one more frame.
	c := h.co
	c.co.cx, c.co.h = cx, h
	if c.next == nil {
		c.start()
	}
	_, more := c.next()
	for more && h.repollInPlace(w, cx) {
		_, more = c.next()
	}
	c.ended = !more
	if h.endPoll(w, cx, !more) {
		h.typed.finishReady(cx)
	}
}

func (r *stackfulRunner) CancelTask() { (*header)(r).typed.CancelTask() }

// repollInPlace ends a poll of a task that yielded and begins the next one
// without queueing the task, when the worker would poll it again at once
// anyway (worker.Worker.RepollSelf). The task stays running throughout, so
// a wake or a cancellation that arrives meanwhile is seen as if it had
// arrived during the next poll; one that arrived during the poll just
// ended (the state is not plain running) takes the usual way. With an
// Observer every poll goes the usual way, so that it sees each.
func (h *header) repollInPlace(w *worker.Worker, cx *Context) bool {
	if !cx.yielded || h.rt.cfg.Observer != nil || h.state.Load() != stRunning ||
		!w.RepollSelf(&h.wt, cx.yield == PathDeferred) {
		return false
	}
	if cx.attnSet {
		cx.SetAttention(nil)
	}
	cx.yield, cx.yielded = PathDefault, false
	return true
}

// beginPoll moves the task from scheduled to running on w and returns the
// Context to poll it with, or nil if it is not to be polled: not
// scheduled (cannot happen: queued tasks are), or cancelled, in which case
// it has been completed as such.
func (h *header) beginPoll(w *worker.Worker) *Context {
	var s uint32
	for {
		s = h.state.Load()
		if s&stComplete != 0 || s&stScheduled == 0 {
			return nil
		}
		if h.state.CompareAndSwap(s, (s&^(stScheduled|stNotified))|stRunning) {
			break
		}
	}
	if id := int32(w.ID()); h.lastWorker != id {
		if h.lastWorker >= 0 {
			w.NoteMigration()
		}
		h.lastWorker = id
	}
	if s&stCancelled != 0 {
		h.typed.finishCancelled(w)
		return nil
	}
	cx := h.rt.contexts[w.ID()]
	cx.cur, cx.yield = h, PathDefault
	cx.yielded = false
	if obs := h.rt.cfg.Observer; obs != nil {
		cx.pollStart = h.rt.nanotime()
		obs.ObserveScheduleLatency(w.ID(), time.Duration(cx.pollStart-h.readyAt))
	}
	return cx
}

// endPoll ends a poll begun by beginPoll that returned ready. If the task
// is ready it returns true and the caller completes it (typedTask's
// finishReady); otherwise the task is rescheduled if it yielded or was
// woken during the poll, completed if it was cancelled, or left idle.
func (h *header) endPoll(w *worker.Worker, cx *Context, ready bool) bool {
	if obs := h.rt.cfg.Observer; obs != nil {
		obs.ObservePoll(w.ID(), time.Duration(h.rt.nanotime()-cx.pollStart))
	}
	yielded, path := cx.yielded, cx.yield
	cx.cur = nil
	if cx.attnSet {
		cx.SetAttention(nil)
	}
	if ready {
		return true
	}
	for {
		s := h.state.Load()
		if s&stCancelled != 0 {
			h.typed.finishCancelled(w)
			return false
		}
		if yielded || s&stNotified != 0 {
			if !h.state.CompareAndSwap(s, stScheduled) {
				continue
			}
			h.markReady()
			switch {
			case !yielded:
				w.ScheduleYield(&h.wt) // woken during its own poll: a self-wake
			case path == PathDeferred:
				w.ScheduleDeferred(&h.wt)
			default:
				w.ScheduleYield(&h.wt)
			}
			return false
		}
		if h.state.CompareAndSwap(s, 0) {
			return false
		}
	}
}

// finishReady completes a task whose poll returned ready, with what its
// body produced. A cancellation requested meanwhile replaces an error that
// does not already say why the task stopped.
func (t *task[T]) finishReady(cx *Context) {
	if t.body != nil {
		t.result, t.err = t.body.res, t.body.err
	}
	err := t.err
	if reason := t.cancelReason(); t.cancelRequested() && err != nil && !errors.Is(err, reason) {
		err = reason // an error that already says why it stopped is kept
	}
	t.complete(t.result, err, cx)
}

// pollGuarded polls a poll-based task once. When it reports ready, the
// value is in t.result, or a panic's error in t.err.
func (t *task[T]) pollGuarded(cx *Context) (ready bool) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			t.result, t.err, ready = zero, &PanicError{Value: r, Stack: debug.Stack()}, true
		}
	}()
	v, ok := t.fut.Poll(cx)
	if ok {
		t.result = v
	}
	return ok
}

// finishCancelled completes a cancelled task; the caller owns it (running).
// Off a worker (shutdown), cleanup code runs with a detached Context: one
// with no worker, through which spawns and wakes go to the injector.
func (t *task[T]) finishCancelled(w *worker.Worker) {
	cx := &Context{rt: t.rt}
	if w != nil {
		cx = t.rt.contexts[w.ID()]
	}
	cx.cur = &t.header
	var v T
	err := t.cancelReason()
	if t.body != nil {
		// Keep what the unwound body returned (or, if it never started,
		// what its notStarted gave) if its error says why it stopped
		// (wasmtask's *Error carries the guest's stats).
		v, err = t.body.outcome(cx, err)
	}
	cx.cur = nil
	t.complete(v, err, cx)
}

// CancelTask cancels a task found in a queue at shutdown (worker.Runner),
// or one that sits in no queue once the workers have stopped.
func (t *task[T]) CancelTask() {
	for {
		s := t.state.Load()
		if s&(stComplete|stRunning) != 0 {
			return
		}
		ns := stRunning | stCancelled | stByShutdown
		if s&stCancelled != 0 {
			ns = stRunning | s&(stCancelled|stByShutdown) // keep an earlier Abort's reason
		}
		if t.state.CompareAndSwap(s, ns) {
			t.finishCancelled(nil)
			return
		}
	}
}

// complete publishes the result, retires the task and wakes its joiner.
func (t *task[T]) complete(v T, err error, cx *Context) {
	t.result, t.err = v, err
	t.fut, t.body, t.co = nil, nil, nil // a finished task must not pin its captures
	t.state.Store(stComplete)
	t.rt.owned.remove(&t.header)
	if t.timers.Load() > 0 {
		t.rt.timers.forget(&t.header)
	}
	if jw := t.join.Swap(joinDone); jw != nil {
		if jw.ch != nil {
			close(jw.ch)
			if cx != nil && cx.w != nil {
				cx.w.ReadiedGoroutine()
			}
		}
		if jw.waker.h != nil {
			jw.waker.h.wake(cx)
		}
	}
}

// Waker wakes one task. The zero Waker does nothing. Copy it freely.
type Waker struct{ h *header }

// Wake schedules the task through the injector and notifies a parked
// worker. Safe from any goroutine; several wakes before the task runs
// queue it once.
func (w Waker) Wake() {
	if w.h != nil {
		w.h.wake(nil)
	}
}

// WakeFrom wakes the task from inside a running task: it is scheduled on
// cx's worker (LIFO slot or ring) when the task belongs to the same runtime.
func (w Waker) WakeFrom(cx *Context) {
	if w.h != nil {
		w.h.wake(cx)
	}
}

// TaskID returns the ID of the task this waker wakes (0 for the zero Waker).
func (w Waker) TaskID() TaskID {
	if w.h == nil {
		return 0
	}
	return w.h.id
}

// JoinHandle is the owner's handle on a spawned task. The task lives inside
// its handle, so a spawn is one allocation.
type JoinHandle[T any] struct{ task task[T] }

func (h *JoinHandle[T]) tk() *task[T] { return &h.task }

// Result is a task's outcome.
type Result[T any] struct {
	Value T
	Err   error
}

// ID returns the task's ID.
func (h *JoinHandle[T]) ID() TaskID { return h.tk().id }

// Abort cancels the task wherever it is: a queued or idle task is completed
// with ErrAborted without being polled again; a running poll-based task
// after its current poll; a running stackful task at its next suspension
// point. Aborting a finished task does nothing.
func (h *JoinHandle[T]) Abort() { h.tk().requestCancel(ErrAborted) }

// IsFinished reports whether the task has completed (any outcome).
func (h *JoinHandle[T]) IsFinished() bool { return h.tk().state.Load()&stComplete != 0 }

func (h *JoinHandle[T]) result() (T, error) { return h.tk().result, h.tk().err }

// Poll makes a JoinHandle a Future: ready with the task's result once it
// completes. The awaiting task is woken on the completing worker.
func (h *JoinHandle[T]) Poll(cx *Context) (Result[T], bool) {
	if h.IsFinished() {
		v, err := h.result()
		return Result[T]{v, err}, true
	}
	if h.register(&joinWaiter{waker: cx.Waker()}) {
		v, err := h.result()
		return Result[T]{v, err}, true
	}
	return Result[T]{}, false
}

// register installs jw as the joiner; true if the task already completed.
// A channel installed by an earlier Wait is kept, so a Wait from a
// goroutine and an await from a task can both be pending.
func (h *JoinHandle[T]) register(jw *joinWaiter) bool {
	for {
		old := h.tk().join.Load()
		if old == joinDone {
			return true
		}
		if old != nil {
			if jw.ch == nil {
				jw.ch = old.ch
			}
			if jw.waker.h == nil {
				jw.waker = old.waker
			}
		}
		if h.tk().join.CompareAndSwap(old, jw) {
			return false
		}
	}
}

// Wait blocks the calling goroutine (not a task: use Await or Poll there)
// until the task completes or ctx is done.
func (h *JoinHandle[T]) Wait(ctx context.Context) (T, error) {
	if !h.IsFinished() {
		var ch chan struct{}
		if old := h.tk().join.Load(); old != nil && old != joinDone && old.ch != nil {
			ch = old.ch
		} else {
			ch = make(chan struct{})
			if h.register(&joinWaiter{ch: ch}) {
				return h.result()
			}
			ch = h.tk().join.Load().ch
		}
		if ch != nil {
			select {
			case <-ch:
			case <-ctx.Done():
				var zero T
				return zero, ctx.Err()
			}
		}
	}
	return h.result()
}
