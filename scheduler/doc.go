// Package scheduler is wasmsched's public runtime: a Tokio-model
// work-stealing M:N executor. Config.Workers goroutines each run one
// worker (package scheduler/internal/worker) over its own LIFO slot,
// bounded ring and deferred queue; they share a FIFO injector, an idle set
// and a timer driver, which live here.
//
// # Tasks
//
// A task is polled. Two ways to write one:
//
//   - A Future (or PollFunc): Poll(cx) returns (value, true) when done, or
//     (_, false) after arranging to be woken — cx.Waker(), cx.WakeAt, or a
//     yield (cx.Yield, cx.YieldNow). Cheapest: no goroutine of its own.
//   - A stackful task (SpawnFunc): a plain function run as a coroutine with
//     iter.Pull. It may call co.Yield, co.YieldNow, co.Sleep, co.Park,
//     Await and Join anywhere in its call stack; each suspends the whole
//     stack, and the next poll — possibly on another worker — resumes it.
//     Wasm guests run this way (package wasmtask).
//
// Spawn from a goroutine with Spawn(rt, f); from inside a task with
// Spawn(cx, f) or Spawn(co, f). A JoinHandle gives the result through Wait
// (goroutines), Poll (futures) or Join (stackful tasks), or a typed error:
// *PanicError (value and stack; the worker keeps running), ErrAborted,
// ErrShutdown. A stackful task's body may wrap the cancellation's reason in
// an error of its own; SpawnFuncNotStarted gives that shape to a task
// cancelled before it ever ran, too.
//
// # Yield paths
//
// A task that is not done re-enters the scheduler by one of three paths:
//
//   - Immediate (Yield, PathImmediate; a self-wake): it is queued again at
//     once, in the worker's LIFO slot if enabled, and a parked worker is
//     notified if the worker holds other tasks, so some may be stolen.
//   - Deferred (YieldNow, PathDeferred; Tokio's yield_now): it waits in its
//     worker's deferred queue until the work that was ready on that worker
//     and a timer poll have run. It is never stolen; load is evened out by
//     balanced steals and by donation instead.
//   - Custom: it waits for a future (Await, a Sleep, a gate) and is queued
//     wherever the future's waker puts it.
//
// A task that yields and that its worker would poll again at once is
// polled again in place without being queued: same order, same counters,
// two state transitions and a queue round trip fewer (the worker package
// doc, "Repolling in place"). On the immediate path that is a yield into
// the empty LIFO slot while the streak lasts, or into an empty ring; on the
// deferred path, a yield with nothing else on the worker, nothing in the
// injector, nothing for a peer to steal and no timer due.
//
// An unqualified yield (YieldVia with PathDefault) takes Config.DefaultYield,
// PathDeferred unless configured. Waker.Wake queues a task from outside the
// runtime (through the injector, notifying a parked worker); Waker.WakeFrom
// from inside a task (the current worker). A task woken while it is running
// is re-queued after its poll as a self-wake.
//
// The whole scheduling contract — where each kind of task goes, what a
// worker runs next, when it steals, releases, donates and parks, and when
// it gives its Go P to other goroutines — is stated once, with numbered
// steps, in the doc of package scheduler/internal/worker (go doc
// ./scheduler/internal/worker). The terms are defined in ARCHITECTURE.md's
// glossary; why each rule is what it is, with the measurements, is in
// RATIONALE.md.
//
// # Timers
//
// Sleep and cx.WakeAt register in a heap. Timers never fire early. One
// parked worker (the driver) sleeps until the earliest deadline; busy
// workers fire expired timers at maintenance ticks and deferred releases,
// and a Wasm guest that notices a due timer at a check fires it and gives
// way. A woken sleeper takes its worker's LIFO slot if it is empty.
//
// A running task may register an attention word for the rest of its poll
// (Context.SetAttention): the runtime sets it when a task is pushed to the
// injector or a timer becomes the earliest, which is what a Wasm guest
// between deadlines gives way to, and when the running task is aborted, so
// that the guest can skip its checks while the word is clear.
//
// # Timing suspensions
//
// Context.PollSeq numbers a worker's activities (polls, parks, hand-offs
// of its P): a task that sees it one further at its next poll on the same
// worker was suspended for the scheduler's hop only. Context.StampWhenLeft
// lets it time any other wait without reading the clock as it suspends:
// the worker stores the time (Nanotime) when it next moves on from the
// task, which a hop never does, and Context.PollBegan hands the same
// reading to the task it moves on to, which may date its own resumption
// with it.
//
// A stackful task's poll keeps as few frames as it can on the worker's
// stack across the coroutine switch (a non-generic runner; the worker loop
// has the poll written into it): each is a return the CPU mispredicts when
// the coroutine switches back.
//
// # Invariants the tests pin down
//
//   - Every spawned task completes exactly once; a wake is never lost and a
//     task is queued at most once per wake (a CAS state machine: idle,
//     scheduled, running, notified, cancelled, complete).
//   - A deferred task is never taken out of its worker's deferred queue by
//     another worker, and runs again only after the tasks that were ready
//     on its worker when it yielded.
//   - Shutdown cancels every task that is not running — queued, idle,
//     sleeping, suspended, deferred — unwinds stackful coroutines, waits
//     for the workers, and leaves no goroutine behind.
//
// Stats returns counters that each worker publishes at maintenance and
// before parking: the hot path never takes a lock or a shared atomic for
// metrics.
package scheduler
