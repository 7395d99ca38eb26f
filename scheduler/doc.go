// Package scheduler is wasmsched's public runtime: a Tokio-model
// work-stealing M:N executor. Config.Workers goroutines each run one
// worker (package worker) over its own LIFO slot, bounded ring and
// deferred queue; they share a FIFO injector, an idle set and a timer
// driver, which live here.
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
// ErrShutdown.
//
// # Where a runnable task goes
//
//	event                    on a worker (cx given)           from elsewhere
//	spawn / wake             LIFO slot if on (old occupant to  injector, notify a
//	                         the back of the ring), else back  parked worker
//	                         of the ring
//	Yield (immediate path)   LIFO slot if on, else back of     —
//	                         the ring; always notify a parked
//	                         worker, so it can be stolen
//	YieldNow (deferred)      this worker's deferred queue: not —
//	                         stealable, no notification
//	ring full                half the ring plus the task move  —
//	                         to the injector in one batch
//
// Waker.Wake is the "from elsewhere" column; Waker.WakeFrom(cx) the "on a
// worker" one. A task woken while it is running is re-queued after its poll
// as a self-wake (immediate path). An unqualified yield (YieldVia with
// PathDefault) takes Config.DefaultYield, PathDeferred unless configured.
//
// What a worker runs next is documented in package worker: maintenance
// every EventInterval ticks (timers, deferred release, stats, shutdown),
// the injector first every GlobalQueueInterval ticks, the LIFO slot at most
// MaxLIFOPollsPerTick times in a row, the ring, the injector, then — only
// when the ring is empty — deferred balancing or release, then stealing,
// then parking.
//
// # Departures from DESIGN.md, and why
//
//   - A spawn or wake that lands in an empty LIFO slot does not notify a
//     parked worker (Tokio's rule too). The task runs next on this worker;
//     waking a peer costs a futex wake per spawn and at best makes the task
//     migrate. A task displaced from the slot into the ring does notify.
//   - The deferred path is balanced without stealing from deferred queues.
//     Each worker advertises its load (the size of its last deferred
//     release, adjusted as tasks are stolen from or given to it). A worker
//     whose ring is empty steals from a peer only if the peer's load
//     exceeds its own deferred count by two or more, and only half the
//     difference; a worker releasing its deferred tasks gives half the gap
//     to the lightest peer's inbox when that gap is two or more. A
//     difference of one is left alone, so an odd number of tasks never
//     ping-pongs. Pull alone did not work: identical spinners phase-lock
//     and the lighter worker always looked when the busy one's ring was
//     empty.
//   - When the deferred queue is released because nothing else is ready,
//     its first task runs at once instead of passing through the ring, so a
//     peer never sees an already-even load as uneven. A maintenance tick
//     releases the deferred queue only if it has waited a whole
//     EventInterval (the starvation guard for a worker whose ring never
//     empties): a task that yielded a moment ago is never made stealable.
//     A timer that fires at a release runs its task first and leaves the
//     deferred tasks deferred, for the same reason.
//   - A worker with deferred tasks takes the injector first on every tick:
//     its yielders asked to wait anyway, and an external wake should not
//     queue behind a whole cycle of them (Tokio's yield_now leaves the run
//     queue empty after every poll, so it sees the injector each time).
//   - Workers yield their P (runtime.Gosched) once per millisecond of
//     continuous work, so a goroutine readied onto a busy worker's P (the
//     rest of the service, a goroutine spawning into the runtime) does not
//     wait the ~10 ms Go's sysmon takes to preempt it. And a worker whose
//     poll completed a task with a goroutine blocked in JoinHandle.Wait
//     yields its P right after that poll: Go
//     readies the waiter onto the completing worker's P, so without the
//     hand-off a Wait on a busy runtime returned ~1 ms late (p50 1.02 ms,
//     now 0.5 µs; TestWaitReturnsPromptlyOnBusyRuntime). Goroutines that
//     task code readies by other means (a channel send) get the P at the
//     next once-per-millisecond yield; give the rest of the service a P of
//     its own (Workers = GOMAXPROCS-1) where that matters.
//   - A worker with deferred tasks that unparks a peer (a task queued in
//     its ring, a deferred release, a timer handed to an idle driver)
//     yields its P at its next tick if the peer has not started running by
//     then. Go readies the peer's goroutine onto the unparker's P, where it
//     waits for that P: a busy worker keeps it, and an idle P steals a
//     readied goroutine from a running one only after a sleep of its own
//     (~50 µs on this VM). All that time the peer counts as searching, so
//     nobody else is woken for new work: in the yield experiment's
//     1-spinner case a quarter of the external wakes waited ~38 µs for the
//     spinner's poll to end (p99 46 µs; with the hand-off 12–15 µs, Tokio
//     23). Only workers with deferred tasks hand off, because the hand-off
//     delays their next poll, which yield_now tasks accept by contract; on
//     the immediate path the woken peer stole the yielder (light-load
//     migrations 10–33 per 1,000 yields instead of 1.4), and a self-wake
//     never hands off. Counted in WorkerStats.HandOffs.
//   - A worker that publishes no progress for StallTimeout (50 ms) is taken
//     to be stuck in a poll that does not return (a guest on a Continue
//     policy, blocking Go code); peers steal its queued tasks regardless of
//     the balance rule. The threshold is in time because a healthy worker
//     can look idle for milliseconds (long polls, OS descheduling) and a
//     tick count cannot tell the two apart. It counts only time the
//     observing peer itself ran: a pause of the whole process (the OS
//     descheduling it, a GC stop-the-world, a CPU quota) does not make
//     every worker look stuck to the first one to resume. One worker's
//     thread descheduled while the others run does look stuck, and its
//     queued tasks may move: tests that mean "nothing stalls" set a long
//     StallTimeout (WithStallTimeout).
//
// # Timers
//
// Sleep and cx.WakeAt register in a heap; workers fire expired entries at
// maintenance ticks, before releasing deferred tasks, and around parking,
// onto their own LIFO slot if it is empty, else the back of their ring
// (see worker.ScheduleTimerWake); a guest that notices a due timer at a
// check fires it the same way and gives way. One parked worker (the driver) sleeps
// until the earliest deadline; a new earlier deadline unparks it, and a
// timer registered while no driver is parked wakes a sleeping worker to
// take the role. Timers never fire early. When every worker is busy,
// timers wait for a maintenance tick or a deferred release, which is why
// the deferred path has the better timer latency under load.
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
