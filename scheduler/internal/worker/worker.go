package worker

import (
	"fmt"
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
	// TimersDue reports whether a timer has expired and waits to be fired.
	TimersDue() bool
	// ParkTimeout returns how long worker id may block: ok is false when
	// it should block until notified. It may make id the timer driver.
	ParkTimeout(id int) (d time.Duration, ok bool)
	// AfterPark is called when worker id stops blocking (it releases the
	// timer driver role if id held it).
	AfterPark(id int)

	// ShuttingDown reports whether the worker should exit.
	ShuttingDown() bool
}

// Config is one worker's configuration; package scheduler validates it.
type Config struct {
	ID                  int
	LocalQueueCapacity  int // power of two
	LIFOSlot            bool
	MaxLIFOPollsPerTick int
	EventInterval       uint32
	// GlobalQueueInterval is the ticks between injector-first picks; 0
	// tunes it from the mean poll time (see tuneGlobalQueueInterval).
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

// Worker is one worker. Its state is split by who may touch it: the
// peerVisible part (embedded) is read and written by peers — atomics, the
// steal side of the ring, the LIFO slot, the inbox, the unpark token, the
// published stats — while own is touched only by the worker's own goroutine
// (or code running synchronously on its behalf: a stackful task's
// coroutine while the worker waits for it). A peer's code that reaches
// into v.own is a bug the type makes visible.
//
// Its exported methods that schedule work must be called from the
// worker's own goroutine (during a poll); the others are safe from
// anywhere.
type Worker struct {
	id     int
	cfg    Config
	shared Shared
	peerVisible
	own ownerState
}

// peerVisible is the part of a worker its peers touch.
type peerVisible struct {
	// steal is the peers' handle on the ring: steal half, count.
	steal stealQueue
	// lifo is the LIFO slot: the owner puts and takes; a peer takes the
	// task only when the owner's ring is empty.
	lifo lifo.Slot[Task]

	// load estimates how many tasks this worker is cycling through, for
	// deferred balancing: set to the size of each deferred release, raised
	// when it takes tasks from the injector or a peer, lowered by peers
	// that steal from it, zero when it parks. Peers read it; it changes a
	// few times per cycle, never per poll.
	load atomic.Int32

	// progress is this worker's tick, published at maintenance, at each
	// deferred release and when it parks: a peer that sees it unchanged
	// for a long time while this worker has queued tasks knows the current
	// poll is not returning (a guest that never yields, a blocking call)
	// and steals regardless of the balance rule (the stall rule).
	progress atomic.Uint32

	// inbox receives tasks donated by a busier peer (see surplus). Only
	// this worker takes from it; peers push under the mutex.
	inboxMu  sync.Mutex
	inbox    []*Task
	inboxLen atomic.Int32

	unparkCh      chan struct{} // the unpark token (buffered, one)
	unparkPending atomic.Bool   // Unpark was called and this worker has not run since
	pub           published     // stats, published at maintenance and before parking
}

// ownerState is the part of a worker only its own goroutine touches.
type ownerState struct {
	local    localQueue // the owner's handle on the ring: push, pop
	deferred deferq.Queue[Task]

	tick          uint32
	seq           uint64 // see Seq
	deferredSince uint32 // tick at which the deferred queue last became non-empty
	lifoInRow     int    // LIFO polls in a row
	lifoDisabled  bool   // MaxLIFOPollsPerTick reached: local schedules bypass the slot
	searching     bool
	rng           uint64

	// peerSeen is, per peer, the last progress value seen and how long
	// this worker has observed it unchanged (the stall rule).
	peerSeen []peerProgress

	timer           *time.Timer
	notifiedNoWork  bool // woken by a notification and has not polled since
	busySince       int64
	lastShare       int64   // nanotime of the last shareP decision
	handOff         bool    // the current poll readied a goroutine: yield the P after it
	unparkedPeer    *Worker // a peer this worker unparked since its last tick
	lastMark        int64
	pollsAtLastMark uint64
	startTime       time.Time
	clock           func() int64 // if set, replaces the monotonic clock (tests only)

	// leftCell, if set, is stamped with Nanotime when the worker next
	// advances seq for anything but a poll of leftTask (StampWhenLeft).
	leftCell *atomic.Int64
	leftTask *Task
	// pollBegan is the Nanotime reading taken as the current poll began
	// (for a StampWhenLeft), 0 if none was: see PollBegan.
	pollBegan int64

	injectBuf     []*Task
	c             counters
	meanPollNanos float64 // EWMA of the poll duration (see mark)
	// globalInterval is the ticks between injector-first picks: the
	// configured GlobalQueueInterval, or the tuned one.
	globalInterval divisor
	eventInterval  divisor // cfg.EventInterval
}

// DefaultStallTimeout is Config.StallTimeout's default: a poll that has
// not returned for this long is stuck, not slow. A guest's slice is about
// 1 ms and a healthy worker publishes progress at least every
// EventInterval polls, so 50 ms is dozens of slices without a false
// alarm, and short enough that tasks queued behind a stuck poll wait less
// than a human notices.
const DefaultStallTimeout = 50 * time.Millisecond

// Seed mixing for the steal-victim order: the golden-ratio and splitmix64
// multipliers (Steele, Lea and Flood, "Fast splittable pseudorandom number
// generators", 2014) spread the configured seed and the worker's ID over
// all 64 bits, so workers of one runtime start their victim scans at
// unrelated peers.
const (
	seedMulGolden    = 0x9E3779B97F4A7C15
	seedMulSplitmix1 = 0xBF58476D1CE4E5B9
)

// New creates a worker. Call Run on its own goroutine.
func New(cfg Config, shared Shared) *Worker {
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	r := newRing(cfg.LocalQueueCapacity)
	w := &Worker{id: cfg.ID, cfg: cfg, shared: shared}
	w.steal = stealQueue{r}
	w.unparkCh = make(chan struct{}, 1)
	w.own = ownerState{
		local:     localQueue{r},
		rng:       cfg.Seed*seedMulGolden + uint64(cfg.ID)*seedMulSplitmix1 + 1,
		injectBuf: make([]*Task, cfg.LocalQueueCapacity/2),
		startTime: time.Now(),

		eventInterval: newDivisor(cfg.EventInterval),
	}
	if cfg.GlobalQueueInterval == 0 {
		w.own.globalInterval = newDivisor(tunedIntervalSeed)
	} else {
		w.own.globalInterval = newDivisor(cfg.GlobalQueueInterval)
	}
	return w
}

// ID is the worker's index in Shared.Workers().
func (w *Worker) ID() int { return w.id }

// Stats returns the last published snapshot of the worker's counters.
func (w *Worker) Stats() Stats { return w.pub.load() }

// Seq advances at every poll, park and hand-off of the worker's P to other
// goroutines. A task that reads n during a poll and n+1 during its next
// poll on the same worker ran again with nothing in between on this worker
// but the scheduler's requeue and pick, maintenance without a park or a P
// hand-off, and at most one search (nextTask) that found it: its
// suspension was a hop, not a wait. Read it only from a
// task the worker is polling.
func (w *Worker) Seq() uint64 { return w.own.seq }

// PollBegan is the Nanotime reading the worker took just before the
// current poll began, or 0 if it took none: it reads the clock there only
// to stamp a StampWhenLeft request of the task it moved on from. It is the
// time the poll began, to within the worker's bookkeeping, however long
// the poll has run since.
func (w *Worker) PollBegan() int64 { return w.own.pollBegan }

// StampWhenLeft asks the worker to store Nanotime() in *cell, unless *cell
// is no longer 0, at its next activity that is not an immediate re-poll of
// t: the next time Seq advances for a park, a hand-off of the P or a poll
// of another task. It is cleared unused if the worker's next poll is t's.
// Only one request is held; a later one replaces it. Call it only from a
// task the worker is polling (t), near the end of the poll.
//
// It lets a task that suspends learn when its wait began without reading
// the clock at every suspension: a resumption at the worker's next Seq is
// a hop and needs no start time, and for any other the worker has read
// the clock for it once it moved on. A task stolen before its old worker
// moves on resumes with *cell still 0 (its wait was the steal's, a
// moment); the old worker's late store then does nothing, unless the task
// has meanwhile reset *cell to 0 for another wait, which it then dates a
// little late (by how long the old worker took to move on).
func (w *Worker) StampWhenLeft(t *Task, cell *atomic.Int64) {
	w.own.leftCell, w.own.leftTask = cell, t
}

// advanceSeq advances Seq for an activity other than a poll: the worker
// leaves whatever task was waiting for a StampWhenLeft.
func (w *Worker) advanceSeq() {
	w.own.seq++
	if w.own.leftCell != nil {
		w.stampLeft()
	}
}

// stampLeft stamps the StampWhenLeft request and returns the reading.
func (w *Worker) stampLeft() int64 {
	now := Nanotime()
	w.own.leftCell.CompareAndSwap(0, now)
	w.own.leftCell, w.own.leftTask = nil, nil
	return now
}

// clockBase anchors Nanotime.
var clockBase = time.Now()

// Nanotime is the process's monotonic clock in nanoseconds, the one
// StampWhenLeft stamps with: time.Since a fixed monotonic reading (one vDSO
// clock read, where time.Now costs two). It is at least 1.
func Nanotime() int64 { return max(int64(time.Since(clockBase)), 1) }

// Runnable is a snapshot of the tasks other workers could steal: the ring
// plus the LIFO slot. Safe from any goroutine.
func (w *Worker) Runnable() int {
	n := w.steal.len()
	if w.lifo.Occupied() {
		n++
	}
	return n
}

func (w *Worker) nanotime() int64 {
	if w.own.clock != nil {
		return w.own.clock()
	}
	return int64(time.Since(w.own.startTime))
}

// randN returns a pseudo-random number in [0, n) (xorshift64*).
func (w *Worker) randN(n int) int {
	w.own.rng ^= w.own.rng >> 12
	w.own.rng ^= w.own.rng << 25
	w.own.rng ^= w.own.rng >> 27
	return int((w.own.rng * 2685821657736338717) >> 33 % uint64(n))
}

// String describes the worker's queues, for diagnostics. It reads owner
// state without synchronisation, so call it only when the worker is idle
// or from its own goroutine.
func (w *Worker) String() string {
	return fmt.Sprintf("worker %d: ring %d, lifo %v (disabled %v, in row %d), deferred %d, inbox %d, load %d, searching %v",
		w.id, w.own.local.len(), w.lifo.Occupied(), w.own.lifoDisabled, w.own.lifoInRow, w.own.deferred.Len(),
		w.inboxLen.Load(), w.load.Load(), w.own.searching)
}
