package wasmtask

// An Instance's task: one stackful task per instance runs its
// instantiation and then every call, parked between calls.
//
// Why one task for all calls rather than one per call: a task's coroutine
// starts with a small stack, and wazero's call path grows it by several
// copies, deep in its frames. On a short call that cost more than the rest
// of the call together (BenchmarkInstanceCall against BenchmarkTaskRoundTrip
// in the same run). The instance's task keeps its grown stack, and a call
// is a message and a wake.
//
// The protocol. A caller holds the instance's sem, posts one request in
// the mailbox and wakes the task; the task takes it, runs it and closes
// its done channel. The task ends when told to stop (Close, Reset), when a
// call it ran failed (the instance is poisoned: nothing more to run), or
// when it is cancelled (a call's context ended, runtime shutdown). Whenever
// it ends it closes its guest and fails a request still in the mailbox, and
// later posts fail at once: no caller waits for a task that is gone.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/wasmsched/wasmsched/scheduler"
)

// callRequest is one call posted to an instance's task.
type callRequest struct {
	ctx  context.Context
	body func(g *guest) ([]uint64, error)
	done chan struct{}
	// Written by the task before done is closed.
	res Result
	err error
	ran bool // the guest ran (begin succeeded): a failure poisons
}

// actor is an instance's task and its mailbox.
type actor struct {
	handle atomic.Pointer[scheduler.JoinHandle[Result]]

	mu      sync.Mutex
	req     *callRequest    // posted, not yet taken
	stop    bool            // end after the request in progress
	ended   error           // why the task ended (non-nil once it has)
	waiting bool            // the task is parked on waker
	waker   scheduler.Waker // the task's, while waiting
}

// errActorStopped is why a task told to stop ended.
var errActorStopped = errors.New("instance closed")

// startActor spawns the task of g on s, runs the instantiation (and
// _initialize) in it under ctx, and returns once it is done: the task then
// waits for calls. On failure the task has ended and closed g.
func startActor(ctx context.Context, s scheduler.Spawner, g *guest) (*actor, error) {
	a := &actor{}
	open := &callRequest{ctx: ctx, done: make(chan struct{})}
	// A task cancelled before it starts (the runtime shut down, or shuts
	// down before a worker takes the task) never runs serve: it ends the
	// actor and answers the open request itself, or this would wait for
	// ever.
	notStarted := func(reason error) (Result, error) {
		err := &Error{Kind: reason, Guest: g.name}
		g.close()
		a.end(reason)
		open.err = err
		close(open.done)
		return Result{}, err
	}
	h := scheduler.SpawnFuncNotStarted(s, func(co *scheduler.Co) (Result, error) {
		return a.serve(co, g, open)
	}, notStarted)
	a.handle.Store(h)
	<-open.done
	return a, open.err
}

// serve is the task: open, then run requests until told to stop or a
// request fails.
func (a *actor) serve(co *scheduler.Co, g *guest, open *callRequest) (res Result, err error) {
	var ended error // set on every path that returns; nil when unwound
	defer func() {
		if ended == nil { // unwound while parked: a late abort, or the runtime's shutdown
			ended = co.CancelReason()
			if ended == nil {
				ended = errors.New("instance task ended")
			}
		}
		g.close()
		a.end(ended)
	}()
	a.run(co, g, open, func(g *guest) ([]uint64, error) { return nil, g.open() })
	close(open.done)
	if open.err != nil {
		ended = open.err
		return res, nil
	}
	for {
		req := a.next(co)
		if req == nil {
			ended = errActorStopped
			return res, nil
		}
		a.run(co, g, req, req.body)
		close(req.done)
		if req.err != nil && req.ran {
			ended = req.err // poisoned: the guest is closed with the task
			return res, nil
		}
	}
}

// run runs one request on the task: ctx's end aborts the task (the guest
// stops at its next check, at once if suspended), and the run's stats go
// to its Result and error. If ctx ended as the call returned, the call is
// reported cancelled: the abort is under way and the task will not survive
// it.
func (a *actor) run(co *scheduler.Co, g *guest, req *callRequest, body func(*guest) ([]uint64, error)) {
	var res Result
	err := g.begin(req.ctx, co) // fails if ctx has already ended: nothing runs, nothing to abort
	if err == nil {
		req.ran = true
		stop := abortWhenDone(req.ctx, &a.handle)
		res.Values, err = body(g)
		if !stop() && err == nil {
			err = g.fail(scheduler.ErrAborted, context.Cause(req.ctx))
		}
	}
	req.res, req.err = g.end(res, err)
}

// next waits for a request; nil when told to stop.
func (a *actor) next(co *scheduler.Co) *callRequest {
	for {
		a.mu.Lock()
		if req := a.req; req != nil {
			a.req = nil
			a.mu.Unlock()
			return req
		}
		if a.stop {
			a.mu.Unlock()
			return nil
		}
		a.waker, a.waiting = co.Context().Waker(), true
		a.mu.Unlock()
		co.Park() // a wake before the park is not lost: the task is re-polled
	}
}

// end records that the task ended and fails a request left in the mailbox.
func (a *actor) end(why error) {
	a.mu.Lock()
	a.ended = why
	req := a.req
	a.req, a.waiting = nil, false
	a.mu.Unlock()
	if req != nil {
		req.err = endedError(why)
		close(req.done)
	}
}

// endedError is the error of a request the task could not take: it had
// ended, for reason why.
func endedError(why error) error {
	if errors.Is(why, scheduler.ErrShutdown) {
		return &Error{Kind: scheduler.ErrShutdown, Cause: errors.New("the runtime shut down the instance's task")}
	}
	return &Error{Kind: ErrUsage, Cause: fmt.Errorf("%w (the instance's task ended: %v): Reset it or Close it", ErrPoisoned, why)}
}

// post hands req to the task and waits for it to be done. The caller holds
// the instance's sem, so the mailbox is empty.
func (a *actor) post(req *callRequest) {
	a.mu.Lock()
	if ended := a.ended; ended != nil {
		a.mu.Unlock()
		req.err = endedError(ended)
		return
	}
	a.req = req
	a.wakeUnlock()
	<-req.done
}

// wakeUnlock wakes the task if it waits for the mailbox, and unlocks it;
// a.mu is held.
func (a *actor) wakeUnlock() {
	w, wake := a.waker, a.waiting
	a.waiting = false
	a.mu.Unlock()
	if wake {
		w.Wake()
	}
}

// shutdown tells the task to stop after the request in progress and waits
// for it to end (it closes its guest).
func (a *actor) shutdown() {
	a.mu.Lock()
	a.stop = true
	a.wakeUnlock()
	if h := a.handle.Load(); h != nil {
		h.Wait(context.Background())
	}
}
