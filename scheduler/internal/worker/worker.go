// Package worker implements one wasmsched worker: its run loop, its bounded
// local run queue (the ring), its LIFO slot and deferred queue, stealing from
// peers, and parking.
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
//     task. Deviation from DESIGN.md's table, on purpose: a task put into an
//     empty LIFO slot runs next on this worker, so waking a peer for it
//     costs a futex wake per spawn and at best makes the task migrate.
//   - ScheduleYield (immediate path, self-wake): as Schedule, but a parked
//     peer is always notified, so a peer can steal the task.
//   - ScheduleDeferred (deferred path, YieldNow): the deferred queue. No
//     notification; stealers never see it.
//   - ScheduleBack: the back of the ring.
//   - ScheduleTimerWake (a task woken by a timer this worker fired): the
//     LIFO slot if it is enabled and empty, else the back of the ring. The
//     ring may hold deferred tasks released earlier; behind them a woken
//     sleeper waited a whole guest slice (compare's saturated deferred
//     probe: p99 ~1 ms, now ~10 µs). Only an empty slot is taken, so a
//     batch of timers never displaces a self-woken task or each other.
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
//  2. Every GlobalQueueInterval ticks — and every tick while the deferred
//     queue is non-empty — one task from the injector first, so a busy
//     worker cannot starve remote spawns and an external wake does not wait
//     for a whole cycle of yielding tasks.
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

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmsched/wasmsched/scheduler/internal/deferq"
	"github.com/wasmsched/wasmsched/scheduler/internal/lifo"
)

// Runner is what a Task does. Package scheduler implements it.
type Runner interface {
	// RunTask polls the task once on w. It is responsible for the task's
	// state transitions and for rescheduling it through w's Schedule*
	// methods if it is to run again.
	RunTask(w *Worker)
	// CancelTask is called, once, for a task left in a queue when the
	// runtime shuts down.
	CancelTask()
}

// Task is the unit the worker queues. It is embedded in the scheduler's
// task header, so queuing a task allocates nothing.
type Task struct {
	runner Runner
}

// Init binds a Task to its runner. Call it once, before first queuing.
func (t *Task) Init(r Runner) { t.runner = r }

// Runner returns the runner bound by Init.
func (t *Task) Runner() Runner { return t.runner }

// Shared is what a worker needs from the runtime it belongs to.
type Shared interface {
	// Workers returns every worker, indexed by ID. The slice never changes.
	Workers() []*Worker
	// InjectorLen is the number of tasks in the global injector (a hint).
	InjectorLen() int
	// PopInjector moves up to len(dst) tasks from the injector into dst
	// and returns how many it moved.
	PopInjector(dst []*Task) int
	// PushInjector appends a batch to the injector (overflow). If the
	// runtime is shutting down, the implementation cancels the tasks.
	PushInjector(batch []*Task)

	// TransitionToSearching asks to become a searcher; false when half
	// the workers are already searching.
	TransitionToSearching() bool
	// TransitionFromSearching ends searching; true if this was the last
	// searcher (the caller then notifies another worker).
	TransitionFromSearching() (wasLast bool)
	// TransitionToParked registers worker id as a sleeper; true if it was
	// the last searcher (the caller then re-checks all queues).
	TransitionToParked(id int, searching bool) (wasLastSearcher bool)
	// TransitionFromParked unregisters id after it wakes; true if it was
	// woken by a notification (and is now counted as searching).
	TransitionFromParked(id int) (notified bool)
	// NotifyParked wakes one parked worker if no worker is searching, and
	// returns it (nil if it woke none).
	NotifyParked() *Worker

	// PollTimers fires expired timers, waking their tasks onto w.
	PollTimers(w *Worker)
	// ParkTimeout returns how long worker id may block: ok is false when
	// it should block until notified. It may make id the timer driver.
	ParkTimeout(id int) (d time.Duration, ok bool)
	// AfterPark is called when worker id stops blocking (it releases the
	// timer driver role if id held it).
	AfterPark(id int)

	// ShuttingDown reports whether the worker should exit.
	ShuttingDown() bool
}

// peerProgress is one worker's view of a peer's progress (see stalled).
type peerProgress struct {
	seen     bool   // value and lastLook are set
	value    uint32 // the peer's progress at the last look
	lastLook int64  // nanotime of this worker's last look at the peer
	silent   int64  // observed time without progress, each gap capped
}

// Config is one worker's configuration; package scheduler validates it.
type Config struct {
	ID                  int
	LocalQueueCapacity  int // power of two
	LIFOSlot            bool
	MaxLIFOPollsPerTick int
	EventInterval       uint32
	GlobalQueueInterval uint32
	Seed                uint64 // steal-victim order; 0 gives a fixed default
	// StallTimeout: a peer that publishes no progress for this long, in
	// time this worker spent observing it (see "The stall rule and
	// process-wide pauses"), is stalled (a poll that does not return) and
	// its queue is stolen from regardless of the balance rule. Zero means
	// 50 ms.
	StallTimeout time.Duration
	BeforePark   func(id int)
	AfterUnpark  func(id int)
}

// Worker is one worker. Its exported methods that schedule work must be
// called from the worker's own goroutine (during a poll); the others are
// safe from anywhere.
type Worker struct {
	id     int
	cfg    Config
	shared Shared

	ring     *ring
	lifo     lifo.Slot[Task]
	deferred deferq.Queue[Task]

	// load estimates how many tasks this worker is cycling through, for
	// deferred balancing: set to the size of each deferred release, raised
	// when it takes tasks from the injector or a peer, lowered by peers
	// that steal from it, zero when it parks. Peers read it; it changes a
	// few times per cycle, never per poll.
	load atomic.Int32

	// progress is this worker's tick, published at maintenance, at each
	// deferred release and when it parks: a peer that sees it unchanged for a long time while this
	// worker has queued tasks knows the current poll is not returning
	// (a guest that never yields, a blocking call) and steals regardless of
	// the balance rule.
	progress atomic.Uint32
	// peerSeen is, per peer, the last progress value seen and how long this
	// worker has observed it unchanged. Owner only.
	peerSeen []peerProgress
	// clock, if set, replaces the monotonic clock (tests only).
	clock func() int64

	// inbox receives tasks donated by a busier peer (see surplus). Only
	// this worker takes from it; peers push under the mutex.
	inboxMu  sync.Mutex
	inbox    []*Task
	inboxLen atomic.Int32

	tick          uint32
	deferredSince uint32 // tick at which the deferred queue last became non-empty
	lifoInRow     int    // LIFO polls in a row
	lifoDisabled  bool   // MaxLIFOPollsPerTick reached: local schedules bypass the slot
	searching     bool
	rng           uint64

	unparkCh        chan struct{}
	timer           *time.Timer
	notifiedNoWork  bool // woken by a notification and has not polled since
	busySince       int64
	lastShare       int64       // nanotime of the last shareP decision
	handOff         bool        // the current poll readied a goroutine: yield the P after it
	unparkedPeer    *Worker     // a peer this worker unparked since its last tick
	unparkPending   atomic.Bool // Unpark was called and this worker has not run since
	lastMark        int64
	pollsAtLastMark uint64
	startTime       time.Time

	injectBuf     []*Task
	c             counters
	meanPollNanos float64 // EWMA of the poll duration (see mark)
	pub           published
}

// New creates a worker. Call Run on its own goroutine.
func New(cfg Config, shared Shared) *Worker {
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 50 * time.Millisecond
	}
	seed := cfg.Seed*0x9E3779B97F4A7C15 + uint64(cfg.ID)*0xBF58476D1CE4E5B9 + 1
	w := &Worker{
		id:        cfg.ID,
		cfg:       cfg,
		shared:    shared,
		ring:      newRing(cfg.LocalQueueCapacity),
		rng:       seed,
		unparkCh:  make(chan struct{}, 1),
		injectBuf: make([]*Task, cfg.LocalQueueCapacity/2),
		startTime: time.Now(),
	}
	return w
}

// ID is the worker's index in Shared.Workers().
func (w *Worker) ID() int { return w.id }

// Unpark wakes the worker if it is parked, or makes its next park return
// at once. Safe from any goroutine; never blocks.
func (w *Worker) Unpark() {
	w.unparkPending.Store(true)
	select {
	case w.unparkCh <- struct{}{}:
	default:
	}
}

// Stats returns the last published snapshot of the worker's counters.
func (w *Worker) Stats() Stats { return w.pub.load() }

// Runnable is a snapshot of the tasks other workers could steal: the ring
// plus the LIFO slot. Safe from any goroutine.
func (w *Worker) Runnable() int {
	n := w.ring.len()
	if w.lifo.Occupied() {
		n++
	}
	return n
}

// RingLen is the number of tasks in the ring (a snapshot).
func (w *Worker) RingLen() int { return w.ring.len() }

// DeferredLen is the number of deferred tasks. Owner only.
func (w *Worker) DeferredLen() int { return w.deferred.Len() }

// Schedule queues t, woken or spawned by the task running on this worker.
func (w *Worker) Schedule(t *Task) {
	w.c[StatLocalSchedules]++
	if w.cfg.LIFOSlot && !w.lifoDisabled {
		prev := w.lifo.Put(t)
		if prev == nil {
			return
		}
		t = prev
	}
	w.pushBack(t)
	w.notifyParked()
}

// ScheduleYield re-queues t, which yielded on the immediate path: like
// Schedule, but always notifies a parked peer so t can be stolen.
func (w *Worker) ScheduleYield(t *Task) {
	w.c[StatLocalSchedules]++
	if w.cfg.LIFOSlot && !w.lifoDisabled {
		if prev := w.lifo.Put(t); prev != nil {
			w.pushBack(prev)
		}
	} else {
		w.pushBack(t)
	}
	// Notify, but no P hand-off (NoteUnparked): this worker goes on with
	// t at once, and handing the P to the woken peer would only let it
	// steal t, migrating a lone yielder at every yield (935 per 1,000 in
	// the yield experiment's 1x-immediate case, against 26 without).
	w.shared.NotifyParked()
}

// ScheduleDeferred puts t, which yielded on the deferred path, into this
// worker's deferred queue.
func (w *Worker) ScheduleDeferred(t *Task) {
	w.c[StatDeferredYields]++
	if w.deferred.Len() == 0 {
		w.deferredSince = w.tick
	}
	w.deferred.Push(t)
}

// ScheduleBack queues t at the back of the ring and notifies a parked peer.
func (w *Worker) ScheduleBack(t *Task) {
	w.c[StatLocalSchedules]++
	w.pushBack(t)
	w.notifyParked()
}

// ScheduleTimerWake queues t, woken by a timer this worker fired: into the
// LIFO slot if it is enabled and empty, otherwise at the back of the ring.
// The slot runs before the ring, which may hold deferred tasks released
// earlier: a guest that gave way to a due timer on a worker with two
// guests otherwise handed the worker to the other guest, and the woken
// task waited a whole slice (compare's saturated deferred probe p99 was one
// epoch, ~1 ms). A batch fills the slot with its first task only, so
// timers never displace each other or a self-woken task.
func (w *Worker) ScheduleTimerWake(t *Task) {
	if w.cfg.LIFOSlot && !w.lifo.Occupied() {
		w.c[StatLocalSchedules]++
		w.lifo.Put(t)
		return
	}
	w.ScheduleBack(t)
}

// NoteMigration counts a poll of a task that last ran on another worker.
// Called by the runner during RunTask.
func (w *Worker) NoteMigration() { w.c[StatMigrations]++ }

func (w *Worker) pushBack(t *Task) {
	if batch := w.ring.pushBack(t); batch != nil {
		w.c[StatOverflows]++
		w.shared.PushInjector(batch)
	}
}

// Run is the worker's loop. It returns when the runtime shuts down, after
// cancelling every task left in the worker's queues.
func (w *Worker) Run() {
	now := w.nanotime()
	w.busySince, w.lastMark = now, now
	for {
		w.tick++
		if w.unparkedPeer != nil {
			w.handOffToUnparkedPeer()
		}
		if w.tick%w.cfg.EventInterval == 0 {
			if w.maintenance() {
				break
			}
		}
		t := w.nextTask()
		if t == nil {
			if w.shared.ShuttingDown() {
				break
			}
			w.park()
			if w.shared.ShuttingDown() {
				break
			}
			continue
		}
		w.run(t)
	}
	w.cancelQueued()
	w.publish()
}

func (w *Worker) run(t *Task) {
	if w.searching {
		w.searching = false
		if w.shared.TransitionFromSearching() {
			// The last searcher found work: there may be more, so hand
			// the search on (Tokio's chained wake-up).
			w.notifyParked()
		}
	}
	w.notifiedNoWork = false
	w.c[StatPolls]++
	t.runner.RunTask(w)
	if w.handOff {
		// The task readied a goroutine (a JoinHandle.Wait caller): Go
		// put it on this worker's P, where it would wait for the next
		// shareP. Give it the P now.
		w.handOff = false
		runtime.Gosched()
	}
}

// notifyParked wakes a parked peer if the protocol says so, and remembers
// it for the hand-off check at the next tick.
func (w *Worker) notifyParked() {
	if v := w.shared.NotifyParked(); v != nil {
		w.NoteUnparked(v)
	}
}

// NoteUnparked records that code running on w (the worker itself, or a
// task it polls) unparked v. Go readies v's goroutine onto w's P, where it
// waits until w gives the P up: a worker never blocks while it has tasks,
// and an idle P steals a readied goroutine from a running P only after a
// sleep of its own (tens of microseconds here). Meanwhile v counts as
// searching, so no one else is woken for new work either. At its next tick
// w therefore yields its P if v has not started running by then.
func (w *Worker) NoteUnparked(v *Worker) {
	if v != w {
		w.unparkedPeer = v
	}
}

// handOffToUnparkedPeer is NoteUnparked's check. It hands off only while
// this worker has deferred tasks: the hand-off delays this worker's next
// poll, which tasks that asked to wait (yield_now) accept by contract,
// while a task that yielded on the immediate path asked to go on at once
// and, with the P handed over, was stolen by the woken peer (light load on
// the immediate path: 10–33 migrations per 1,000 yields instead of 1.4).
// It does not ask whether the work the peer was woken for is still queued:
// a peer stuck on this P counts as searching, which stops every other
// notification, so it must get to run (and park again) either way.
func (w *Worker) handOffToUnparkedPeer() {
	v := w.unparkedPeer
	w.unparkedPeer = nil
	if v.unparkPending.Load() && w.deferred.Len() > 0 {
		w.c[StatHandOffs]++
		runtime.Gosched()
	}
}

// ReadiedGoroutine tells the worker that the running task readied a
// goroutine outside the runtime; the worker yields its P after the poll.
func (w *Worker) ReadiedGoroutine() { w.handOff = true }

// nextTask implements steps 2–7 of the package doc.
func (w *Worker) nextTask() *Task {
	// Injector first every GlobalQueueInterval ticks, and on every tick
	// while tasks are deferred here: those tasks asked to wait anyway, and
	// a task woken from outside (a timer, an I/O completion) should not
	// queue behind the ring's next full cycle (Tokio's yield_now leaves the
	// run queue empty after every poll, so it sees the injector each time).
	if (w.tick%w.cfg.GlobalQueueInterval == 0 || w.deferred.Len() > 0) && w.shared.InjectorLen() > 0 {
		if w.shared.PopInjector(w.injectBuf[:1]) == 1 {
			w.resetLIFO()
			t := w.injectBuf[0]
			w.injectBuf[0] = nil
			return t
		}
	}
	if w.cfg.LIFOSlot && !w.lifoDisabled {
		if t := w.lifo.Take(); t != nil {
			w.c[StatLIFOPolls]++
			w.lifoInRow++
			if w.lifoInRow >= w.cfg.MaxLIFOPollsPerTick {
				w.lifoDisabled = true
			}
			return t
		}
	}
	w.resetLIFO()
	if t := w.ring.pop(); t != nil {
		return t
	}
	if t := w.takeInbox(); t != nil {
		return t
	}
	if t := w.popInjectorBatch(); t != nil {
		return t
	}
	if n := w.deferred.Len(); n > 0 {
		if t := w.stealBalanced(n); t != nil {
			return t
		}
		w.shared.PollTimers(w)
		if w.cfg.LIFOSlot {
			if t := w.lifo.Take(); t != nil { // a timer wake-up (ScheduleTimerWake)
				w.c[StatLIFOPolls]++
				w.resetLIFO()
				return t
			}
		}
		if t := w.ring.pop(); t != nil {
			// A timer woke a task: it runs first, and the deferred tasks
			// stay deferred (unstealable) until the ring is empty again.
			// Releasing them into the ring here would let a peer steal
			// them whenever a timer fires.
			w.resetLIFO()
			return t
		}
		// Run the first deferred task directly rather than through the
		// ring: otherwise, between the push and the pop, a peer would see
		// every task of this worker as runnable and steal to "balance"
		// a load that is already even.
		v, k := w.surplus(n)
		w.progress.Store(w.tick)
		w.load.Store(int32(n - k)) // before donating: peers must not count the gift twice
		if k > 0 {
			w.donate(v, k)
		}
		first := w.deferred.PopFront()
		w.c[StatDeferredReleases]++
		w.releaseDeferred()
		return first
	}
	return w.search()
}

func (w *Worker) resetLIFO() {
	w.lifoInRow = 0
	w.lifoDisabled = false
}

func (w *Worker) popInjectorBatch() *Task {
	n := w.shared.InjectorLen()
	if n == 0 {
		return nil
	}
	n = n/len(w.shared.Workers()) + 1
	if free := w.ring.free() + 1; n > free {
		n = free
	}
	if n > len(w.injectBuf) {
		n = len(w.injectBuf)
	}
	got := w.shared.PopInjector(w.injectBuf[:n])
	if got == 0 {
		return nil
	}
	w.load.Add(int32(got))
	t := w.injectBuf[0]
	w.ring.pushBackBatch(w.injectBuf[1:got])
	clear(w.injectBuf[:got])
	return t
}

// releaseDeferred moves every deferred task to the back of the ring. The
// tasks become stealable, so a parked peer is notified: without it, a peer
// that parked while this worker held every task would never come back.
func (w *Worker) releaseDeferred() {
	if n := w.deferred.Drain(w.pushBack); n > 0 {
		w.c[StatDeferredReleases] += uint64(n)
		w.notifyParked()
	}
}

// stealBalanced is step 6: steal only from a peer whose load exceeds this
// worker's deferred load by two or more, and only enough to even them out.
func (w *Worker) stealBalanced(deferred int) *Task {
	peers := w.shared.Workers()
	if len(peers) < 2 {
		return nil
	}
	start := w.randN(len(peers))
	now := int64(-1) // read the clock only if a peer has runnable work
	for i := range peers {
		v := peers[(start+i)%len(peers)]
		if v == w {
			continue
		}
		if v.Runnable() == 0 {
			continue // nothing to steal, whatever its load says
		}
		if now < 0 {
			now = w.nanotime()
		}
		if w.stalled(v, now) {
			if t := w.stealFrom(v, 0); t != nil {
				return t
			}
			continue
		}
		load := v.loadEstimate()
		if load-deferred < 2 {
			continue
		}
		if t := w.stealFrom(v, (load-deferred)/2); t != nil {
			return t
		}
	}
	return nil
}

// stalled reports whether v has published no progress (maintenance,
// deferred release, parking) for Config.StallTimeout of this worker's
// observation. A time threshold, not a tick count: a healthy peer can look
// idle for a few milliseconds (its polls may be much longer than ours, or
// the OS may have descheduled its thread), while a poll that never returns
// stalls it for good.
//
// Observed time is the sum of the gaps between this worker's looks at v,
// each counted for at most StallTimeout/4 (see the package doc): a long gap
// means this worker did not run either — a process-wide pause, or a long
// poll of its own — so it is not evidence against v.
func (w *Worker) stalled(v *Worker, now int64) bool {
	if w.peerSeen == nil {
		w.peerSeen = make([]peerProgress, len(w.shared.Workers()))
	}
	seen := &w.peerSeen[v.id]
	if p := v.progress.Load(); p != seen.value || !seen.seen {
		*seen = peerProgress{seen: true, value: p, lastLook: now}
		return false
	}
	seen.silent += min(now-seen.lastLook, w.stallGapCredit())
	seen.lastLook = now
	return seen.silent > int64(w.cfg.StallTimeout)
}

// stallGapCredit is the most one gap between two looks at a peer adds to
// its observed silence (at least 1 ns, so any StallTimeout is reached).
func (w *Worker) stallGapCredit() int64 { return max(int64(w.cfg.StallTimeout/4), 1) }

// surplus is the push half of deferred balancing. Pulling alone is not
// enough: identical spinners phase-lock, and a lighter peer may always look
// at this worker's ring at the moment it is empty. So at each release the
// busier worker compares its n yielding tasks with the lightest peer's load
// and, when the gap is two or more, returns that peer and half the gap.
func (w *Worker) surplus(n int) (*Worker, int) {
	if n < 2 {
		return nil, 0
	}
	var lightest *Worker
	least := n
	for _, v := range w.shared.Workers() {
		if v == w {
			continue
		}
		if l := v.loadEstimate(); l < least {
			lightest, least = v, l
		}
	}
	if lightest == nil || n-least < 2 {
		return nil, 0
	}
	return lightest, (n - least) / 2
}

// loadEstimate is what peers think this worker is busy with: the larger of
// its runnable tasks (plus the one it runs, if it has any queued) and its
// advertised load.
func (w *Worker) loadEstimate() int {
	l := w.Runnable()
	if l > 0 {
		l++
	}
	return max(l, int(w.load.Load()), 0)
}

// donate moves the k most recently deferred tasks into v's inbox, counts
// them in v's load at once (so no one gives or steals twice for one gap),
// and unparks v. The unpark token is buffered: if v is about to park it
// returns at once and finds the inbox; if v is running, the token only
// costs it one extra loop later.
func (w *Worker) donate(v *Worker, k int) {
	v.inboxMu.Lock()
	for i := 0; i < k; i++ {
		v.inbox = append(v.inbox, w.deferred.PopBack())
	}
	v.inboxLen.Store(int32(len(v.inbox)))
	v.inboxMu.Unlock()
	v.load.Add(int32(k))
	w.c[StatDonated] += uint64(k)
	v.Unpark()
}

// takeInbox returns one donated task and queues the rest in the ring.
func (w *Worker) takeInbox() *Task {
	if w.inboxLen.Load() == 0 {
		return nil
	}
	w.inboxMu.Lock()
	batch := w.inbox
	w.inbox = nil
	w.inboxLen.Store(0)
	w.inboxMu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	for _, t := range batch[1:] {
		w.pushBack(t)
	}
	w.resetLIFO()
	return batch[0]
}

// search is step 7.
func (w *Worker) search() *Task {
	if !w.searching {
		if !w.shared.TransitionToSearching() {
			return nil
		}
		w.searching = true
	}
	peers := w.shared.Workers()
	start := w.randN(len(peers))
	for i := range peers {
		v := peers[(start+i)%len(peers)]
		if v == w {
			continue
		}
		if t := w.stealFrom(v, 0); t != nil {
			return t
		}
	}
	return w.popInjectorBatch()
}

// stealFrom takes up to limit tasks (0: half, rounded up) from v's ring,
// or v's LIFO task when v's ring is empty.
func (w *Worker) stealFrom(v *Worker, limit int) *Task {
	t, n := v.ring.stealInto(w.ring, limit)
	if t == nil && v.cfg.LIFOSlot && v.ring.len() == 0 {
		if t = v.lifo.Take(); t != nil {
			n = 1
		}
	}
	if t == nil {
		return nil
	}
	w.c[StatStealOps]++
	w.c[StatStealTasks] += uint64(n)
	w.resetLIFO()
	// The victim's advertised load shrinks now, not at its next release:
	// a stale figure would invite a second, unbalancing steal. (It may go
	// below zero for a moment; readers take the max with the ring.)
	v.load.Add(-int32(n))
	w.load.Add(int32(n))
	return t
}

// shareP lets other goroutines of the process run. A worker that has tasks
// never blocks, so without this a goroutine readied onto its P (the rest of
// the service, a goroutine that spawns into the runtime) waits for Go's
// sysmon to preempt the worker, about 10 ms. Once per millisecond of
// continuous work, at a maintenance tick, the worker yields its P
// (runtime.Gosched: it goes to the back of Go's global run queue and is
// picked up again at once if nothing else waits). The cost is one Gosched
// per millisecond.
//
// Tried and dropped: yielding whenever runtime/metrics reports runnable
// goroutines (checked every 100 µs). spawn_many_remote_busy1 went from 370
// to 300 ns/task, but yield_many from 21 to 46 ns/yield, for reasons not
// understood; a heuristic with an unexplained cost does not stay.
func (w *Worker) shareP() {
	now := w.nanotime()
	if now-w.lastShare < int64(time.Millisecond) {
		return
	}
	w.lastShare = now
	if now-w.busySince > int64(time.Millisecond) {
		runtime.Gosched()
	}
}

// maintenance is step 1. It returns true when the worker must exit.
func (w *Worker) maintenance() bool {
	w.shared.PollTimers(w)
	w.shareP()
	// Starvation guard only: release deferred tasks here if the queue has
	// stayed non-empty for a whole interval (the ring never ran dry). A
	// task that yielded a moment ago waits for step 6 instead, where it is
	// released unstealably; releasing it into the ring now would let an
	// idle peer steal it while this worker runs whatever was ready.
	if w.deferred.Len() > 0 && w.tick-w.deferredSince >= w.cfg.EventInterval {
		w.releaseDeferred()
	}
	w.mark()
	w.publish()
	w.progress.Store(w.tick)
	return w.shared.ShuttingDown()
}

func (w *Worker) park() {
	if w.notifiedNoWork {
		w.c[StatNoopUnparks]++
	}
	if w.cfg.BeforePark != nil {
		w.cfg.BeforePark(w.id)
	}
	// Publish before registering as parked, so that a reader who sees
	// every worker parked also sees their final counters.
	w.load.Store(0)
	w.progress.Store(w.tick)
	w.c[StatParks]++
	w.mark()
	w.c[StatBusyNanos] += uint64(w.lastMark - w.busySince)
	w.busySince = w.lastMark
	w.publish()
	if w.shared.TransitionToParked(w.id, w.searching) {
		if w.workPending() {
			w.notifyParked()
		}
	}
	w.searching = false

	if d, ok := w.shared.ParkTimeout(w.id); ok {
		if w.timer == nil {
			w.timer = time.NewTimer(d)
		} else {
			w.timer.Reset(d)
		}
		select {
		case <-w.unparkCh:
		case <-w.timer.C:
		}
		w.timer.Stop()
	} else {
		<-w.unparkCh
	}

	w.unparkPending.Store(false)
	now := w.nanotime()
	w.busySince, w.lastMark = now, now
	if w.shared.TransitionFromParked(w.id) {
		w.searching = true
		w.notifiedNoWork = true
	}
	w.shared.AfterPark(w.id)
	w.shared.PollTimers(w)
	if w.cfg.AfterUnpark != nil {
		w.cfg.AfterUnpark(w.id)
	}
}

// workPending is the last searcher's re-check before it sleeps.
func (w *Worker) workPending() bool {
	if w.shared.InjectorLen() > 0 {
		return true
	}
	for _, v := range w.shared.Workers() {
		if v != w && v.Runnable() > 0 {
			return true
		}
	}
	return false
}

// meanPollWeight is the weight of a new sample in the mean poll time, an
// exponentially weighted moving average over about the last ten marks
// (each one EventInterval polls): quick to follow a change of workload,
// steady enough for a dashboard.
const meanPollWeight = 0.1

// mark folds the time since the last mark into busy time and the poll-time
// average. Called at maintenance and when parking: two clock reads per
// EventInterval polls instead of two per poll.
func (w *Worker) mark() {
	now := w.nanotime()
	if polls := w.c[StatPolls] - w.pollsAtLastMark; polls > 0 {
		sample := float64(now-w.lastMark) / float64(polls)
		if w.meanPollNanos == 0 {
			w.meanPollNanos = sample
		} else {
			w.meanPollNanos = meanPollWeight*sample + (1-meanPollWeight)*w.meanPollNanos
		}
	}
	w.pollsAtLastMark = w.c[StatPolls]
	w.lastMark = now
}

func (w *Worker) publish() {
	local := w.ring.len()
	if w.lifo.Occupied() {
		local++
	}
	c := w.c
	c[StatBusyNanos] += uint64(w.lastMark - w.busySince)
	c[StatMeanPollNanos] = uint64(w.meanPollNanos)
	c[StatLocalQueueDepth] = uint64(local)
	c[StatDeferredDepth] = uint64(w.deferred.Len())
	w.pub.store(&c)
}

func (w *Worker) cancelQueued() {
	w.inboxMu.Lock()
	donated := w.inbox
	w.inbox = nil
	w.inboxLen.Store(0)
	w.inboxMu.Unlock()
	for _, t := range donated {
		t.runner.CancelTask()
	}
	if t := w.lifo.Take(); t != nil {
		t.runner.CancelTask()
	}
	for t := w.ring.pop(); t != nil; t = w.ring.pop() {
		t.runner.CancelTask()
	}
	w.deferred.Drain(func(t *Task) { t.runner.CancelTask() })
}

func (w *Worker) nanotime() int64 {
	if w.clock != nil {
		return w.clock()
	}
	return int64(time.Since(w.startTime))
}

// randN returns a pseudo-random number in [0, n) (xorshift64*).
func (w *Worker) randN(n int) int {
	w.rng ^= w.rng >> 12
	w.rng ^= w.rng << 25
	w.rng ^= w.rng >> 27
	return int((w.rng * 2685821657736338717) >> 33 % uint64(n))
}

// String describes the worker's queues, for diagnostics. It reads owner
// state without synchronisation, so call it only when the worker is idle
// or from its own goroutine.
func (w *Worker) String() string {
	return fmt.Sprintf("worker %d: ring %d, lifo %v (disabled %v, in row %d), deferred %d, inbox %d, load %d, searching %v",
		w.id, w.ring.len(), w.lifo.Occupied(), w.lifoDisabled, w.lifoInRow, w.deferred.Len(),
		w.inboxLen.Load(), w.load.Load(), w.searching)
}
