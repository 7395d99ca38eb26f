package scheduler

import (
	"errors"
	"iter"
	"runtime/debug"
	"time"
)

// Co is the handle a stackful task's function receives. Its methods suspend
// the function (the whole goroutine stack, via iter.Pull) and return when
// the task is polled again — possibly by another worker. A Co is used only
// by its own function.
type Co struct {
	cx      *Context
	h       *header
	yield   func(struct{}) bool
	stopped bool
}

// errUnwind is panicked through a stackful task's frames to stop it when it
// is aborted or the runtime shuts down. Code between the suspension point
// and the task function that recovers panics must re-panic it (or return).
var errUnwind = errors.New("scheduler: stackful task unwinding")

// IsUnwind reports whether a recovered panic value is the signal that stops
// a cancelled stackful task. Code that recovers panics around suspension
// points (a host-function adapter, say) must let it through.
func IsUnwind(v any) bool { return v == errUnwind }

func (co *Co) spawnTarget() (*Runtime, *Context) { return co.cx.rt, co.cx }

// Context returns the Context of the current poll. It changes after every
// suspension.
func (co *Co) Context() *Context { return co.cx }

// Aborted reports whether the task has been asked to stop; the next
// suspension will unwind it.
func (co *Co) Aborted() bool { return co.h.cancelRequested() }

// CancelReason is ErrAborted or ErrShutdown once the task has been asked
// to stop, nil before.
func (co *Co) CancelReason() error {
	if !co.h.cancelRequested() {
		return nil
	}
	return co.h.cancelReason()
}

// CheckCancelled unwinds the task now if it has been aborted or the
// runtime is shutting down; otherwise it returns at once. Long-running code
// that is not about to suspend (a guest's fuel check that decides to keep
// running) calls it so that Abort takes effect at that point.
func (co *Co) CheckCancelled() {
	if co.h.cancelRequested() {
		co.stopped = true
		panic(errUnwind)
	}
}

// suspend returns control to the worker with the task pending. It unwinds
// the task if it is cancelled.
//
// A task already cancelled suspends all the same: the worker sees the
// cancellation when the poll ends and stops the coroutine, whose yield then
// returns false. That keeps suspend small enough to inline into its
// callers (YieldVia, and through it a guest's check), which keeps a frame
// off the coroutine's stack while it is suspended. A task stopped once
// whose code recovered the unwind and suspends again gets false at once.
func (co *Co) suspend() {
	if !co.yield(struct{}{}) {
		co.unwind()
	}
}

// unwind stops the task: see errUnwind.
func (co *Co) unwind() {
	co.stopped = true
	panic(errUnwind)
}

// Yield suspends the task and re-enters it through the immediate path.
func (co *Co) Yield() { co.YieldVia(PathImmediate) }

// YieldNow suspends the task and re-enters it through the deferred path.
func (co *Co) YieldNow() { co.YieldVia(PathDeferred) }

// YieldVia suspends the task and re-enters it through path.
func (co *Co) YieldVia(path YieldPath) {
	co.cx.YieldVia(path)
	co.suspend()
}

// Park suspends the task until something wakes it through a Waker taken
// with co.Context().Waker() before the call. A wake that happened before
// Park is not lost: the task is then polled again at once.
func (co *Co) Park() { co.suspend() }

// Sleep suspends the task for at least d.
func (co *Co) Sleep(d time.Duration) {
	deadline := co.cx.rt.Now() + d
	for co.cx.rt.Now() < deadline {
		co.cx.WakeAt(deadline)
		co.suspend()
	}
}

// Await polls f, suspending the task between polls, until it is ready.
func Await[T any](co *Co, f Future[T]) T {
	for {
		if v, ok := f.Poll(co.cx); ok {
			return v
		}
		co.suspend()
	}
}

// Join awaits a JoinHandle from a stackful task.
func Join[T any](co *Co, h *JoinHandle[T]) (T, error) {
	r := Await[Result[T]](co, h)
	return r.Value, r.Err
}

// SpawnFunc starts a stackful task: fn runs as a coroutine that can
// suspend anywhere in its call stack through co. Its goroutine is created
// at the first poll, so a task cancelled before it runs costs none.
func SpawnFunc[T any](s Spawner, fn func(co *Co) (T, error)) *JoinHandle[T] {
	return SpawnFuncNotStarted(s, fn, nil)
}

// SpawnFuncNotStarted is SpawnFunc for a body whose errors say more than
// the cancellation's reason (a type that wraps it, with what the task had
// done): a task cancelled before its first poll (JoinHandle.Abort, or the
// runtime's shutdown) completes with what notStarted(reason) returns,
// where SpawnFunc's completes with (zero, reason). So its JoinHandle gives
// one shape of error whether or not fn had begun. reason is ErrAborted or
// ErrShutdown; an error from notStarted that does not match it (errors.Is)
// is replaced by reason, as is fn's when fn swallows its unwinding.
// notStarted runs once, on whichever goroutine completes the task (a
// worker, or Shutdown's caller), and must not block. A nil notStarted is
// SpawnFunc.
func SpawnFuncNotStarted[T any](s Spawner, fn func(co *Co) (T, error), notStarted func(reason error) (T, error)) *JoinHandle[T] {
	b := &coBody[T]{fn: fn, notStarted: notStarted}
	b.coCore.run = b.run
	return spawnBody[T](s, nil, b)
}

// coBody is a stackful task's body: the coroutine (coCore, which the
// worker resumes without generic code in between: see stackfulRunner) and
// what the function returned.
type coBody[T any] struct {
	coCore
	fn         func(*Co) (T, error)
	notStarted func(reason error) (T, error) // nil: (zero, reason)
	res        T
	err        error
}

// coCore is the type-independent part of a stackful task's coroutine.
type coCore struct {
	co    Co
	run   func(yield func(struct{}) bool) // the coroutine's function (coBody.run)
	next  func() (struct{}, bool)
	stop  func()
	ended bool
}

// start creates the coroutine's goroutine, at the first poll: a task
// cancelled before it runs costs none. stackfulRunner.RunTask resumes it.
func (c *coCore) start() { c.next, c.stop = iter.Pull(c.run) }

// run is the coroutine. Panics are recovered here, on the coroutine's own
// stack, so the PanicError carries the stack where the panic happened.
func (b *coBody[T]) run(yield func(struct{}) bool) {
	b.co.yield = yield
	defer func() {
		if r := recover(); r != nil {
			if r == errUnwind {
				b.err = b.co.h.cancelReason()
			} else {
				b.err = &PanicError{Value: r, Stack: debug.Stack()}
			}
		}
	}()
	b.res, b.err = b.fn(&b.co)
	if reason := b.co.h.cancelReason(); b.co.stopped && !errors.Is(b.err, reason) {
		// fn swallowed the unwind (e.g. a wazero host call turned the
		// panic into an error): report the cancellation, not that error.
		// An error that already says why (wraps the reason) is kept.
		b.err = reason
	}
}

// cancel stops a suspended coroutine: its pending suspension panics with
// errUnwind, which runs its deferred calls with cx as their Context. It
// returns what the function returned while unwinding; for a coroutine
// that never started, what notStarted returns (false without one).
func (b *coBody[T]) cancel(cx *Context, reason error) (T, error, bool) {
	if b.stop == nil && !b.ended && b.notStarted != nil {
		b.ended = true
		return b.callNotStarted(reason)
	}
	if b.stop == nil || b.ended {
		var zero T
		return zero, nil, false
	}
	b.ended = true
	b.co.cx = cx
	b.stop()
	return b.res, b.err, true
}

// outcome cancels the body (cancel) and returns what the task completes
// with: the body's answer if its error matches reason, else reason.
func (b *coBody[T]) outcome(cx *Context, reason error) (T, error) {
	if v, err, ok := b.cancel(cx, reason); ok && errors.Is(err, reason) {
		return v, err
	}
	var zero T
	return zero, reason
}

// callNotStarted calls notStarted. A panic in it is not the task's to
// report (the task never ran): the task then completes with the reason.
func (b *coBody[T]) callNotStarted(reason error) (v T, err error, ok bool) {
	defer func() {
		if recover() != nil {
			var zero T
			v, err, ok = zero, nil, false
		}
	}()
	v, err = b.notStarted(reason)
	return v, err, true
}
