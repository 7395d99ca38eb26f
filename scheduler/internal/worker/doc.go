// Package worker implements one wasmsched worker: its run loop, its bounded
// local run queue (the ring), its LIFO slot and deferred queue, stealing from
// peers, and parking. This package doc is where the scheduling contract is
// stated (package scheduler links here); the terms are defined in
// ARCHITECTURE.md's glossary, and the measurements behind each rule are in
// RATIONALE.md.
//
// The package knows nothing of futures, join handles or timers. A task is a
// *Task whose Runner polls it; what is shared between workers (the injector,
// the idle set, the timer driver, the shutdown flag) is reached through the
// Shared interface, which package scheduler implements. This keeps the
// scheduling policy — which queue a task goes to and what runs next — in one
// place that the tests can drive directly.
//
// # Where a runnable task goes (on the worker's own goroutine)
//
//   - Schedule (spawn or wake): the LIFO slot if it is enabled, pushing the
//     slot's previous task to the back of the ring; otherwise the back of
//     the ring. A parked peer is notified only when the ring received a
//     task. Deviation from the founding design, on purpose: a task put into an
//     empty LIFO slot runs next on this worker, so waking a peer for it
//     costs a futex wake per spawn and at best makes the task migrate.
//   - ScheduleYield (immediate path, self-wake): as Schedule, but a parked
//     peer is notified whenever the worker holds another task (ring, LIFO
//     slot, deferred queue, inbox), so a peer can steal; a lone yielder
//     notifies no one, since a peer could only migrate it.
//   - ScheduleDeferred (deferred path, YieldNow): the deferred queue. No
//     notification; stealers never see it.
//   - ScheduleTimerWake (a task woken by a timer this worker fired): the
//     LIFO slot if it is enabled and empty, else the back of the ring. The
//     ring may hold deferred tasks released earlier, behind which a woken
//     sleeper would wait a whole guest slice. Only an empty slot is taken,
//     so a batch of timers never displaces a self-woken task or each other.
//   - A full ring moves half of itself, oldest first, plus the new task to
//     the injector in one batch.
//
// # What runs next (each tick)
//
//  0. Go P hand-offs. A worker goroutine readied by another worker (an
//     Unpark from this worker's code) lands on this worker's Go P, where it
//     waits; so if this worker has deferred tasks and unparked a peer that
//     has not run yet, it yields the P (runtime.Gosched) before anything
//     else. Likewise after a poll that completed a task whose JoinHandle a
//     goroutine waits on. See NoteUnparked and ReadiedGoroutine.
//  1. Every EventInterval ticks: maintenance — poll the timer driver without
//     blocking, publish stats, check for shutdown, and release the deferred
//     queue to the back of the ring if it has been non-empty for at least
//     EventInterval ticks (the starvation guard for a worker whose ring
//     never empties; released tasks are ordinary ring tasks from then on).
//  2. The injector first: every tick while the deferred queue is non-empty,
//     one task, so an external wake does not wait for a whole cycle of
//     yielding tasks; otherwise every GlobalQueueInterval ticks, a batch —
//     the worker's share, as in step 5 — whose first task runs and the
//     rest go to the back of the ring, so a busy worker cannot starve
//     remote spawns, even when its own work never leaves the LIFO slot
//     (Tokio takes one task here). A GlobalQueueInterval of 0 is tuned at
//     each maintenance to the ticks that last about 100 µs at the mean poll
//     time, within [2, 127], by Tokio's rule since 1.29 (whose target is
//     200 µs).
//  3. The LIFO slot, while fewer than MaxLIFOPollsPerTick LIFO polls have
//     happened in a row. When the limit is reached the slot is disabled
//     until the worker polls a task from anywhere else: meanwhile local
//     schedules go to the back of the ring, so two tasks that keep waking
//     each other cannot starve the ring.
//  4. The head of the ring, then the inbox (tasks a busier peer donated
//     to this worker, see step 6).
//  5. A batch from the injector (min(len/workers+1, capacity/2)).
//  6. If the deferred queue is non-empty, the worker is not idle: its load
//     is its d deferred tasks. It steals only from a peer whose load is at
//     least d+2, taking half the difference (rounded down), the steal that
//     evens the two out; a difference of one is left alone, so an odd
//     number of tasks does not ping-pong. A peer's load is the larger of
//     (its runnable tasks, plus the one it is running if any) and the size
//     of its last deferred release: the ring alone is the wrong signal for
//     yielding tasks, because identical spinners phase-lock and a peer
//     would always look at the moment the victim's ring is short. If no
//     peer qualifies, the worker polls the timer driver without blocking
//     and releases its deferred tasks, in yield order: the first runs at
//     once, the rest go to the back of the ring (and a parked peer is
//     notified, since they are now stealable). This is where wasmsched
//     departs from Tokio, which steals before it releases and so migrates
//     a third of all yields on a saturated runtime; here a deferred task
//     stays on its worker unless a peer is clearly busier. One exception,
//     the stall rule: a peer that has published no progress (maintenance,
//     deferred release, parking) for StallTimeout (50 ms) of this worker's
//     observation is stalled in a poll that does not return; its queued
//     tasks are stolen as if this worker were idle, so they cannot wait
//     behind it forever.
//  7. Otherwise, search: if fewer than half of the workers are searching,
//     become a searcher and steal half (rounded up) of a peer's ring,
//     visiting peers from a random start. A peer's LIFO task may be taken
//     only when that peer's ring is empty. Then look at the injector again.
//  8. Nothing found: park until notified or until the next timer deadline
//     (if this worker holds the timer driver). The last searcher to park
//     re-checks every queue after registering as a sleeper, so a task
//     pushed concurrently is never left with every worker asleep.
//
// # Repolling in place
//
// A task that yields is often queued only to be taken straight back: alone
// on its worker, or into the empty LIFO slot during its streak. RepollSelf,
// asked by the task's runner at the end of such a poll, answers whether
// the next tick would do exactly that (no hand-off pending, not a
// maintenance tick, no injector look at a non-empty injector; on the
// immediate path an empty LIFO slot with the streak not spent, or else an
// empty ring; on the deferred path nothing else on the worker, an empty
// injector, no peer with runnable tasks and no timer due, as the release
// would steal or fire them first) and then does what the queue and that
// tick would have done: tick, LIFO streak or deferred release, counters,
// poll sequence, a parked peer's notification. The runner polls the task
// again without its state leaving running. The answer and the worker's
// state after it are pinned against the queued path over every
// combination of queues, ticks, timers and peers
// (TestRepollSelfIsTheQueuedPath).
//
// # The stall rule and process-wide pauses
//
// A stalled peer and a paused process look alike to the clock: when the
// OS deschedules the whole process, a GC stops the world, or a container's
// CPU quota throttles every thread, no worker publishes progress, and the
// first worker to resume would see every peer silent for the length of
// the pause and take its queued tasks — migrating tasks off peers that
// were never stuck. The rule therefore counts only time this worker
// itself spent observing: it looks at a peer each time it considers a
// balanced steal, and a gap between two of its own looks counts for at
// most StallTimeout/4, however long it was. A pause of any length thus
// adds at most a quarter of the timeout; the peer still has the rest, in
// time this worker is running again, to publish progress. A peer that is
// stuck while this worker keeps running is still stolen from after
// StallTimeout; a worker whose own looks are more than StallTimeout/4
// apart (long polls of its own, or many tasks to cycle through) decides
// after five looks instead, later than StallTimeout but still in bounded
// time. (Restarting the count after a long gap, the other way to ignore a
// pause, would let such a worker never decide.)
//
// What the rule cannot tell apart is one peer's thread descheduled by the
// OS while this worker runs: that is indistinguishable from a poll that
// does not return, and after StallTimeout the peer's queued tasks are
// taken. Tests that mean "nothing stalls" set a long StallTimeout.
//
// # Files
//
// worker.go holds the types: Worker, split into peerVisible (what peers
// read and write: atomics, the ring's steal side, the LIFO slot, the inbox)
// and ownerState (what only the worker's goroutine touches), and the ring's
// two handles, localQueue for the owner and stealQueue for peers. Then one
// file per concern: place.go (where a task goes), loop.go (steps 1–5 and
// the order of the rest), balance.go (step 6: balanced steals, donation,
// the stall rule), steal.go (step 7), park.go (step 8), gop.go (step 0 and
// sharing the Go P), stats.go (the statistics table and publication).
//
// # Invariants
//
//   - The ring, the LIFO slot (for puts) and the deferred queue are written
//     only by the owning worker, or by code running synchronously on its
//     behalf (a stackful task's coroutine while the worker waits for it).
//   - A task is in at most one queue at a time; the scheduler's task state
//     machine guarantees one enqueue per wake, and this package never
//     duplicates or drops a task: overflow moves, steal moves, shutdown
//     cancels every task left in its queues.
//   - Stats are kept in plain fields by the owner and published to padded
//     atomics at maintenance and before parking.
package worker
