// Package deferq implements a worker's deferred-yield queue.
//
// A task that yields on the deferred path (YieldNow, Tokio's yield_now) is
// parked here instead of in the run queue. The queue belongs to one worker
// and is never visible to other workers: a deferred task cannot be stolen,
// which is what keeps the deferred path local. At a release the worker
// takes the oldest task to run at once (PopFront) and moves the rest, in
// yield order, to the back of its own ring (Drain); when it donates surplus
// to a lighter peer it gives the most recently deferred tasks (PopBack).
// The contract for when a release happens is package worker's.
//
// Invariants:
//   - Single owner: Push, PopFront, PopBack, Len and Drain are called only
//     by the owning worker (or by code running synchronously on its
//     behalf), so there is no synchronisation. Depth for metrics is
//     published by the worker.
//   - FIFO: Drain hands tasks out in the order they were pushed, and a task
//     pushed during a Drain callback waits for the next Drain, so a task that
//     yields again right after its release cannot run twice in one release.
package deferq

// Queue is a FIFO of deferred tasks. The zero value is an empty queue.
//
// The live tasks are items[head:]. PopFront advances head instead of
// reslicing, and the queue rewinds to the start of its array whenever it
// empties: a worker that defers and releases one task at a time (the
// common case) reuses one slot forever instead of walking through the
// array and reallocating it every cap pushes.
type Queue[T any] struct {
	items []*T
	head  int
	spare []*T // the previous backing array, reused to avoid allocation per release
}

// Push appends t to the back of the queue.
func (q *Queue[T]) Push(t *T) {
	q.items = append(q.items, t)
}

// Len returns the number of deferred tasks.
func (q *Queue[T]) Len() int {
	return len(q.items) - q.head
}

// PopFront removes and returns the oldest task, or nil.
func (q *Queue[T]) PopFront() *T {
	if q.head == len(q.items) {
		return nil
	}
	t := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	q.rewindIfEmpty()
	return t
}

// PopBack removes and returns the newest task, or nil.
func (q *Queue[T]) PopBack() *T {
	if q.head == len(q.items) {
		return nil
	}
	t := q.items[len(q.items)-1]
	q.items[len(q.items)-1] = nil
	q.items = q.items[:len(q.items)-1]
	q.rewindIfEmpty()
	return t
}

func (q *Queue[T]) rewindIfEmpty() {
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
}

// Drain removes every task and calls fn on each, oldest first. It returns
// the number of tasks drained. Tasks pushed by fn stay queued for the next
// Drain.
func (q *Queue[T]) Drain(fn func(*T)) int {
	batch := q.items[q.head:]
	if len(batch) == 0 {
		return 0
	}
	full := q.items
	q.items, q.head, q.spare = q.spare[:0], 0, nil
	for i, t := range batch {
		batch[i] = nil // drop the reference: the queue must not keep released tasks alive
		fn(t)
	}
	if q.spare == nil {
		q.spare = full[:0]
	}
	return len(batch)
}
