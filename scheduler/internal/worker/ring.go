package worker

import (
	"sync/atomic"
)

// ring is a worker's bounded local run queue: a single-producer ring that
// the owner pushes to and pops from, and that peers steal half of.
//
// head packs two 32-bit positions: the steal head (high half) and the real
// head (low half). They are equal unless a steal is in progress, in which
// case [steal, real) is the range a stealer has claimed and is still
// copying. The owner never writes into that range: capacity is measured from
// the steal head. Only the owner writes tail. Positions are free-running
// uint32 counters; indexes are position & mask.
//
// Slots are plain (non-atomic) memory. The protocol orders every access:
// the owner writes a slot before publishing it with a store to tail; a
// stealer reads slots only after claiming them with a CAS on head and
// releases them with a second CAS; the owner reuses a slot only after it
// has observed that release.
type ring struct {
	head atomic.Uint64
	tail atomic.Uint32
	mask uint32
	buf  []*Task
}

func newRing(capacity int) *ring {
	return &ring{mask: uint32(capacity - 1), buf: make([]*Task, capacity)}
}

func pack(steal, real uint32) uint64       { return uint64(steal)<<32 | uint64(real) }
func unpack(h uint64) (steal, real uint32) { return uint32(h >> 32), uint32(h) }

func (r *ring) capacity() uint32 { return r.mask + 1 }

// len is the number of tasks in the ring, including any being stolen.
// Exact for the owner; a snapshot for anyone else.
func (r *ring) len() int {
	_, real := unpack(r.head.Load())
	return int(r.tail.Load() - real)
}

// pushBack appends t. If the ring is full it returns, without pushing, the
// batch that must go to the injector: half of the ring (oldest first) plus
// t. Owner only.
func (r *ring) pushBack(t *Task) (overflow []*Task) {
	for {
		steal, real := unpack(r.head.Load())
		tail := r.tail.Load()
		if tail-steal < r.capacity() {
			r.buf[tail&r.mask] = t
			r.tail.Store(tail + 1)
			return nil
		}
		if steal != real {
			// A stealer is emptying the ring right now; it will free
			// space, but we cannot move half of a ring that is being
			// copied. Send just this task to the injector.
			return []*Task{t}
		}
		half := r.capacity() / 2
		if !r.head.CompareAndSwap(pack(steal, real), pack(steal+half, real+half)) {
			continue // a stealer took some: there may be room now
		}
		batch := make([]*Task, 0, half+1)
		for i := uint32(0); i < half; i++ {
			idx := (real + i) & r.mask
			batch = append(batch, r.buf[idx])
			r.buf[idx] = nil
		}
		return append(batch, t)
	}
}

// pushBackBatch appends tasks that are known to fit (the caller checked
// free space). Owner only.
func (r *ring) pushBackBatch(ts []*Task) {
	tail := r.tail.Load()
	for _, t := range ts {
		r.buf[tail&r.mask] = t
		tail++
	}
	r.tail.Store(tail)
}

// free returns how many tasks can be pushed without overflow. Owner only.
func (r *ring) free() int {
	steal, _ := unpack(r.head.Load())
	return int(r.capacity() - (r.tail.Load() - steal))
}

// pop removes the task at the head (the oldest). Owner only.
func (r *ring) pop() *Task {
	for {
		h := r.head.Load()
		steal, real := unpack(h)
		if real == r.tail.Load() {
			return nil
		}
		next := pack(steal, real+1)
		if steal == real {
			next = pack(real+1, real+1)
		}
		if r.head.CompareAndSwap(h, next) {
			idx := real & r.mask
			t := r.buf[idx]
			r.buf[idx] = nil
			return t
		}
	}
}

// stealInto moves tasks from r (a peer's ring) into dst (the caller's own
// ring, which must be empty) and returns one of them to run now, plus how
// many were taken in all. It takes half of r, rounded up, but no more than
// limit (limit <= 0 means no limit). It gives up (returns nil) when another
// stealer is active on r, rather than spin.
func (r *ring) stealInto(dst *ring, limit int) (*Task, int) {
	dstTail := dst.tail.Load()
	if dstSteal, _ := unpack(dst.head.Load()); dstTail-dstSteal > dst.capacity()/2 {
		return nil, 0 // our own ring is not empty enough to receive a batch
	}
	var n, first uint32
	for {
		h := r.head.Load()
		steal, real := unpack(h)
		if steal != real {
			return nil, 0
		}
		avail := r.tail.Load() - real
		n = avail - avail/2
		if limit > 0 && n > uint32(limit) {
			n = uint32(limit)
		}
		if n > dst.capacity()/2 {
			n = dst.capacity() / 2
		}
		if n == 0 {
			return nil, 0
		}
		if r.head.CompareAndSwap(h, pack(steal, real+n)) {
			first = real
			break
		}
	}
	for i := uint32(0); i < n; i++ {
		src := (first + i) & r.mask
		dst.buf[(dstTail+i)&dst.mask] = r.buf[src]
		r.buf[src] = nil
	}
	// Release the claimed range: the steal head catches up with the real
	// head, which the owner may have advanced meanwhile by popping.
	for {
		h := r.head.Load()
		_, real := unpack(h)
		if r.head.CompareAndSwap(h, pack(real, real)) {
			break
		}
	}
	// Run the last stolen task now and publish the rest in dst.
	last := (dstTail + n - 1) & dst.mask
	t := dst.buf[last]
	dst.buf[last] = nil
	if n > 1 {
		dst.tail.Store(dstTail + n - 1)
	}
	return t, int(n)
}

// localQueue is the owner's handle on its ring: push, pop and count. Only
// the worker's own goroutine holds one (ownerState.local), which is how
// the ring's single-producer rule is kept by construction.
type localQueue struct{ r *ring }

func (q localQueue) len() int                            { return q.r.len() }
func (q localQueue) pushBack(t *Task) (overflow []*Task) { return q.r.pushBack(t) }
func (q localQueue) pushBackBatch(ts []*Task)            { q.r.pushBackBatch(ts) }
func (q localQueue) free() int                           { return q.r.free() }
func (q localQueue) pop() *Task                          { return q.r.pop() }

// stealQueue is a peer's handle on a worker's ring (peerVisible.steal):
// it can only count and steal.
type stealQueue struct{ r *ring }

func (q stealQueue) len() int { return q.r.len() }

// stealInto moves up to limit tasks (0: half, rounded up) from q into
// dst, the stealer's own ring; see ring.stealInto.
func (q stealQueue) stealInto(dst localQueue, limit int) (*Task, int) {
	return q.r.stealInto(dst.r, limit)
}
