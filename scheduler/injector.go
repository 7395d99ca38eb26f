package scheduler

import (
	"sync"

	"go.uber.org/atomic"

	"github.com/wasmsched/wasmsched/scheduler/internal/worker"
)

// injector is the global FIFO queue: remote spawns and wakes, and ring
// overflow. A mutex guards a growable ring buffer; the length is mirrored in
// an atomic so that workers can check for work without taking the lock.
// Once closed (shutdown), pushes are refused and the caller cancels the
// task instead.
type injector struct {
	mu     sync.Mutex
	buf    []*worker.Task
	head   int
	n      int
	closed bool
	length atomic.Int64
}

func (q *injector) len() int { return int(q.length.Load()) }

// push appends ts in order; false if the injector is closed.
func (q *injector) push(ts ...*worker.Task) bool {
	lockSpinning(&q.mu)
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if q.n+len(ts) > len(q.buf) {
		q.grow(q.n + len(ts))
	}
	for _, t := range ts {
		q.buf[(q.head+q.n)%len(q.buf)] = t
		q.n++
	}
	q.length.Store(int64(q.n))
	q.mu.Unlock()
	return true
}

// injectorMinCapacity is the injector's first allocation: a burst of
// spawns from outside grows it by doubling from here.
const injectorMinCapacity = 64

func (q *injector) grow(need int) {
	size := max(2*len(q.buf), injectorMinCapacity)
	for size < need {
		size *= 2
	}
	nb := make([]*worker.Task, size)
	for i := 0; i < q.n; i++ {
		nb[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = nb, 0
}

// pop moves up to len(dst) tasks, oldest first, into dst.
func (q *injector) pop(dst []*worker.Task) int {
	if q.length.Load() == 0 {
		return 0
	}
	q.mu.Lock()
	k := min(len(dst), q.n)
	for i := 0; i < k; i++ {
		dst[i] = q.buf[q.head]
		q.buf[q.head] = nil
		q.head = (q.head + 1) % len(q.buf)
	}
	q.n -= k
	q.length.Store(int64(q.n))
	q.mu.Unlock()
	return k
}

// close refuses further pushes and returns what was queued.
func (q *injector) close() []*worker.Task {
	q.mu.Lock()
	q.closed = true
	out := make([]*worker.Task, 0, q.n)
	for q.n > 0 {
		out = append(out, q.buf[q.head])
		q.buf[q.head] = nil
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
	q.length.Store(0)
	q.mu.Unlock()
	return out
}

// lockSpinning locks mu, retrying TryLock before it falls back to a
// blocking Lock. push uses it because its callers are mostly goroutines
// outside the runtime (Spawn, Waker.Wake) and parking is costly for them
// in a way particular to this runtime: the goroutine that unlocks readies
// the waiter onto its own P, and if that is a worker, which never blocks
// while it has tasks, the waiter waits for the worker's next P hand-over
// (up to a millisecond) instead of nanoseconds. pop does not spin:
// spinning workers against a spawning goroutine slowed remote spawns
// (RATIONALE.md: "Why does the injector push spin on TryLock…").
func lockSpinning(mu *sync.Mutex) {
	for range lockSpins {
		if mu.TryLock() {
			return
		}
	}
	mu.Lock()
}

// lockSpins bounds lockSpinning's retries (about a microsecond), so a
// holder descheduled inside its critical section costs spinners little
// before they park.
const lockSpins = 200
