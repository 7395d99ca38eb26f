package scheduler

import (
	"sync"

	"go.uber.org/atomic"
)

// idleSet coordinates searching and parked workers, after Tokio's idle.rs.
//
// state packs the number of unparked workers (high 32 bits) and of
// searching workers (low 32 bits). Notifiers read it without the lock: a
// notification is needed only if no worker is searching (a searcher will
// find the new work) and some worker is parked. Transitions that change the
// sleeper list take the mutex.
//
// No lost wake-up: a notifier publishes its work and then reads state; a
// worker going to sleep decrements state and then, if it was the last
// searcher, re-checks every queue. With sequentially consistent atomics one
// of the two sees the other, so either the notifier wakes a sleeper or the
// last searcher finds the work.
type idleSet struct {
	state    atomic.Uint64
	mu       sync.Mutex
	sleepers []int  // parked worker IDs, most recently parked last
	sleeping []bool // sleeping[id]: id is in sleepers
	n        int
}

const unparkedOne = 1 << 32

func (s *idleSet) init(n int) {
	s.n = n
	s.sleeping = make([]bool, n)
	s.state.Store(uint64(n) * unparkedOne)
}

func split(st uint64) (unparked, searching int) { return int(st >> 32), int(uint32(st)) }

func (s *idleSet) toSearching() bool {
	_, searching := split(s.state.Load())
	if 2*searching >= s.n {
		return false
	}
	s.state.Add(1)
	return true
}

// fromSearching returns true if the caller was the last searcher.
func (s *idleSet) fromSearching() bool {
	_, searching := split(s.state.Sub(1) + 1)
	return searching == 1
}

func (s *idleSet) toParked(id int, searching bool) (wasLastSearcher bool) {
	s.mu.Lock()
	dec := uint64(unparkedOne)
	if searching {
		dec++
	}
	_, prevSearching := split(s.state.Sub(dec) + dec)
	s.sleepers = append(s.sleepers, id)
	s.sleeping[id] = true
	s.mu.Unlock()
	return searching && prevSearching == 1
}

// fromParked returns true if id was woken by a notification (which already
// counted it unparked and searching); otherwise (timeout, stale token) it
// takes id off the sleeper list itself.
func (s *idleSet) fromParked(id int) (notified bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.sleeping[id] {
		return true
	}
	s.sleeping[id] = false
	for i, v := range s.sleepers {
		if v == id {
			s.sleepers = append(s.sleepers[:i], s.sleepers[i+1:]...)
			break
		}
	}
	s.state.Add(unparkedOne)
	return false
}

// wakeOne picks a sleeper to wake, or -1. With needNoSearcher it does
// nothing while some worker is searching (the notify rule); without it, it
// wakes one whenever one sleeps (used to hand a new timer to an idle
// worker).
func (s *idleSet) wakeOne(needNoSearcher bool) int {
	unparked, searching := split(s.state.Load())
	if unparked >= s.n || (needNoSearcher && searching > 0) {
		return -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	unparked, searching = split(s.state.Load())
	if len(s.sleepers) == 0 || (needNoSearcher && searching > 0) {
		return -1
	}
	id := s.sleepers[len(s.sleepers)-1]
	s.sleepers = s.sleepers[:len(s.sleepers)-1]
	s.sleeping[id] = false
	s.state.Add(unparkedOne + 1)
	return id
}

func (s *idleSet) numSleeping() int {
	unparked, _ := split(s.state.Load())
	return s.n - unparked
}
