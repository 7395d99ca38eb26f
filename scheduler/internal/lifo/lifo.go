// Package lifo implements the LIFO slot of a wasmsched worker.
//
// The slot holds at most one task: the task most recently woken or spawned by
// the task that is running on the worker. Running it next keeps a
// message-passing pair (A wakes B, B wakes A) on one core with its data still
// in cache, which is why Tokio has the slot and why wasmsched copies it.
//
// Invariants:
//   - Only the owning worker puts into the slot (Put). A task put into an
//     occupied slot displaces the old one, which the caller must then queue
//     elsewhere (the worker pushes it to the back of its ring): nothing is
//     ever dropped.
//   - Both the owner and a stealing peer may take from the slot (Take). The
//     take is an atomic swap, so exactly one taker gets a given task. The
//     worker package decides when a peer may take (only while the owner's
//     ring is empty); this package only makes the hand-over race-free.
package lifo

import "sync/atomic"

// Slot is a single-task slot, owned by one worker and takeable by peers.
// The zero value is an empty slot.
type Slot[T any] struct {
	p atomic.Pointer[T]
}

// Put stores t and returns the task it displaced, or nil. Owner only.
func (s *Slot[T]) Put(t *T) (displaced *T) {
	return s.p.Swap(t)
}

// Take removes and returns the task in the slot, or nil if it is empty.
// Safe from any goroutine; each task is returned to exactly one taker.
func (s *Slot[T]) Take() *T {
	if s.p.Load() == nil { // cheap check first: avoids a locked swap on the hot path
		return nil
	}
	return s.p.Swap(nil)
}

// Occupied reports whether the slot held a task at the moment of the call.
func (s *Slot[T]) Occupied() bool {
	return s.p.Load() != nil
}
