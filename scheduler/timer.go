package scheduler

import (
	"container/heap"
	"sync"
	"time"

	"go.uber.org/atomic"

	"github.com/wasmsched/wasmsched/scheduler/internal/worker"
)

// timerDriver holds every pending sleep in a min-heap ordered by deadline
// (then by registration order). There is no timer goroutine: workers fire
// expired timers when they poll the driver — at maintenance ticks, before
// releasing deferred tasks, and around parking — and one parked worker at a
// time (the driver) parks with a timeout equal to the earliest deadline.
//
// Invariants:
//   - A timer never fires early: it fires only once the runtime's monotonic
//     clock has reached its deadline.
//   - If any worker is parked while a timer is pending, some parked worker
//     will wake by the earliest deadline: registering a timer that is
//     earlier than the driver's wake-up time unparks the driver, and
//     registering one when no driver is parked wakes a sleeper to take the
//     role. When every worker is busy, timers are fired at their
//     maintenance ticks.
//   - The heap holds at most about twice the entries of live tasks: the
//     entries of a task that completes before they fire (an aborted
//     sleeper) are counted dead, and once they are more than half of the
//     heap it is rebuilt without them, so a task aborted during a long
//     sleep does not stay reachable until its deadline.
type timerDriver struct {
	rt         *Runtime
	mu         sync.Mutex
	h          timerHeap
	seq        uint64
	driver     int   // worker parked as driver, or -1
	driverWhen int64 // the deadline the driver will wake at
	pending    atomic.Int64
	next       atomic.Int64 // earliest deadline, or maxWhen when none
	dead       int          // entries of completed tasks still in h
}

// minCompaction is the fewest dead entries worth a rebuild of the heap.
const minCompaction = 64

// forget counts t's pending entries dead: t completed, so they would only
// keep it reachable until they fire. Called once, at t's completion.
func (d *timerDriver) forget(t *header) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.timerDead {
		return
	}
	t.timerDead = true
	d.dead += int(t.timers.Load())
	if d.dead < minCompaction || d.dead <= len(d.h)/2 {
		return
	}
	live := d.h[:0]
	for _, e := range d.h {
		if e.task.timerDead {
			e.task.timers.Add(-1)
		} else {
			live = append(live, e)
		}
	}
	clear(d.h[len(live):])
	d.h = live
	heap.Init(&d.h)
	d.dead = 0
	d.pending.Store(int64(len(d.h)))
	d.setNext()
}

const maxWhen = int64(^uint64(0) >> 1)

// setNext publishes the earliest deadline; call with mu held.
func (d *timerDriver) setNext() {
	if len(d.h) == 0 {
		d.next.Store(maxWhen)
	} else {
		d.next.Store(d.h[0].when)
	}
}

// nextDue returns, without locking, the earliest pending deadline.
func (d *timerDriver) nextDue() (int64, bool) {
	if d.pending.Load() == 0 {
		return 0, false
	}
	return d.next.Load(), true
}

// due reports, without locking, whether some timer has expired.
func (d *timerDriver) due() bool {
	return d.pending.Load() > 0 && d.rt.nanotime() >= d.next.Load()
}

type timerEntry struct {
	when int64 // runtime nanotime
	seq  uint64
	task *header
}

type timerHeap []timerEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	return h[i].when < h[j].when || (h[i].when == h[j].when && h[i].seq < h[j].seq)
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = timerEntry{}
	*h = old[:len(old)-1]
	return e
}

// add registers a wake-up of t at when (runtime nanotime).
//
// from is the worker whose task asks (nil off the workers): a peer it
// unparks to drive the timer is reported to it, for the P hand-off.
func (d *timerDriver) add(when int64, t *header, from *worker.Worker) {
	d.mu.Lock()
	d.seq++
	t.timers.Add(1)
	heap.Push(&d.h, timerEntry{when: when, seq: d.seq, task: t})
	d.pending.Store(int64(len(d.h)))
	d.setNext()
	wakeDriver := -1
	if d.driver >= 0 && when < d.driverWhen {
		wakeDriver, d.driverWhen = d.driver, when
	}
	noDriver := d.driver < 0
	earliest := d.h[0].seq == d.seq
	d.mu.Unlock()
	if earliest {
		d.rt.notifyAttention()
	}
	woke := -1
	if wakeDriver >= 0 {
		woke = wakeDriver
	} else if noDriver {
		woke = d.rt.idle.wakeOne(false)
	}
	if woke >= 0 {
		v := d.rt.workers[woke]
		v.Unpark()
		if from != nil {
			from.NoteUnparked(v)
		}
	}
}

// poll fires every expired timer, waking its task onto w.
func (d *timerDriver) poll(w *worker.Worker, buf *[]*header) {
	if d.pending.Load() == 0 {
		return
	}
	now := d.rt.nanotime()
	fired := (*buf)[:0]
	d.mu.Lock()
	for len(d.h) > 0 && d.h[0].when <= now {
		t := heap.Pop(&d.h).(timerEntry).task
		t.timers.Add(-1)
		if t.timerDead {
			d.dead-- // its task completed: nothing to wake
			continue
		}
		fired = append(fired, t)
	}
	d.pending.Store(int64(len(d.h)))
	d.setNext()
	d.mu.Unlock()
	for i, t := range fired {
		t.wakeTimer(w)
		fired[i] = nil
	}
	*buf = fired[:0]
}

// parkTimeout makes id the driver if timers are pending and no driver is
// parked, and returns how long it may sleep.
func (d *timerDriver) parkTimeout(id int) (time.Duration, bool) {
	if d.pending.Load() == 0 {
		return 0, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.h) == 0 || d.driver >= 0 {
		return 0, false
	}
	d.driver, d.driverWhen = id, d.h[0].when
	return time.Duration(max(d.driverWhen-d.rt.nanotime(), 0)), true
}

func (d *timerDriver) afterPark(id int) {
	d.mu.Lock()
	if d.driver == id {
		d.driver = -1
	}
	d.mu.Unlock()
}

// drain removes every pending timer (shutdown).
func (d *timerDriver) drain() {
	d.mu.Lock()
	d.h, d.dead = nil, 0
	d.pending.Store(0)
	d.setNext()
	d.mu.Unlock()
}
