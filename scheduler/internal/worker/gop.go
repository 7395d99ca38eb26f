package worker

import (
	"runtime"
	"time"
)

// Sharing the Go P (step 0 and maintenance). A worker is a goroutine that
// never blocks while it has tasks, so it decides when the other goroutines
// of the process get its P: once per millisecond of work (shareP), after
// a poll that readied a goroutine (ReadiedGoroutine), and when a peer it
// unparked landed on its P (NoteUnparked). Package scheduler adds the one
// place outside the worker: the injector push spins on TryLock before it
// parks (see its doc).

// NoteUnparked records that code running on w (the worker itself, or a
// task it polls) unparked v. Go readies v's goroutine onto w's P, where it
// waits until w gives the P up: a worker never blocks while it has tasks,
// and an idle P steals a readied goroutine from a running P only after a
// sleep of its own (tens of microseconds here). Meanwhile v counts as
// searching, so no one else is woken for new work either. At its next tick
// w therefore yields its P if v has not started running by then.
func (w *Worker) NoteUnparked(v *Worker) {
	if v != w {
		w.own.unparkedPeer = v
	}
}

// handOffToUnparkedPeer is NoteUnparked's check. It hands off only while
// this worker has deferred tasks: the hand-off delays this worker's next
// poll, which tasks that asked to wait (yield_now) accept by contract,
// while a task that yielded on the immediate path asked to go on at once
// and, with the P handed over, was stolen by the woken peer (RATIONALE.md:
// "Why hand the P to an unparked peer…").
// It does not ask whether the work the peer was woken for is still queued:
// a peer stuck on this P counts as searching, which stops every other
// notification, so it must get to run (and park again) either way.
func (w *Worker) handOffToUnparkedPeer() {
	v := w.own.unparkedPeer
	w.own.unparkedPeer = nil
	if v.unparkPending.Load() && w.own.deferred.Len() > 0 {
		w.own.c[StatHandOffs]++
		w.advanceSeq()
		runtime.Gosched()
	}
}

// ReadiedGoroutine tells the worker that the running task readied a
// goroutine outside the runtime; the worker yields its P after the poll.
func (w *Worker) ReadiedGoroutine() { w.own.handOff = true }

// sharePInterval is how much continuous work a worker does before it lets
// other goroutines have its P. Go's sysmon would preempt it only after
// 10 ms (forcePreemptNS in Go's runtime); a millisecond bounds the wait of
// a goroutine readied onto a busy worker's P at the cost of one Gosched per
// millisecond (RATIONALE.md: "Why does a worker yield its P…").
const sharePInterval = time.Millisecond

// shareP lets other goroutines of the process run. A worker that has tasks
// never blocks, so without this a goroutine readied onto its P (the rest of
// the service, a goroutine that spawns into the runtime) waits for Go's
// sysmon to preempt the worker. Once per sharePInterval of continuous
// work, at a maintenance tick, the worker yields its P (runtime.Gosched:
// it goes to the back of Go's global run queue and is picked up again at
// once if nothing else waits).
func (w *Worker) shareP() {
	now := w.nanotime()
	if now-w.own.lastShare < int64(sharePInterval) {
		return
	}
	w.own.lastShare = now
	if now-w.own.busySince > int64(sharePInterval) {
		w.advanceSeq()
		runtime.Gosched()
	}
}
