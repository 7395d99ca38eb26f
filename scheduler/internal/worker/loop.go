package worker

import "runtime"

// The worker loop and what runs next: steps 1–5 of the contract, and the
// order in which step 6 (deferred tasks) and step 7 (search) are tried.

// Run is the worker's loop. It returns when the runtime shuts down, after
// cancelling every task left in the worker's queues.
func (w *Worker) Run() {
	now := w.nanotime()
	w.own.busySince, w.own.lastMark = now, now
	for {
		w.own.tick++
		if w.own.unparkedPeer != nil {
			w.handOffToUnparkedPeer()
		}
		if w.own.eventInterval.divides(w.own.tick) {
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
		// t is polled here, not in a method of its own: while a
		// stackful task runs, every frame on this goroutine's stack is a
		// return the CPU mispredicts when the task's coroutine switches
		// back, and a method would be one more.
		w.beforePoll(t)
		t.runner.RunTask(w)
		w.afterPoll()
	}
	w.cancelQueued()
	w.publish()
}

// beforePoll is the worker's bookkeeping before a poll of t.
func (w *Worker) beforePoll(t *Task) {
	if w.own.searching {
		w.own.searching = false
		if w.shared.TransitionFromSearching() {
			// The last searcher found work: there may be more, so hand
			// the search on (Tokio's chained wake-up).
			w.notifyParked()
		}
	}
	w.own.notifiedNoWork = false
	w.own.c[StatPolls]++
	w.own.seq++
	w.own.pollBegan = 0
	if w.own.leftCell != nil {
		if t != w.own.leftTask {
			w.own.pollBegan = w.stampLeft()
		}
		w.own.leftCell, w.own.leftTask = nil, nil
	}
}

// afterPoll is the worker's bookkeeping after a poll.
func (w *Worker) afterPoll() {
	if w.own.handOff {
		// The task readied a goroutine (a JoinHandle.Wait caller): Go
		// put it on this worker's P, where it would wait for the next
		// shareP. Give it the P now.
		w.own.handOff = false
		w.advanceSeq()
		runtime.Gosched()
	}
}

// RepollSelf is asked by a task's runner after a poll of t in which t
// yielded (on the deferred path if deferred, else the immediate one) and
// nothing else happened to it: it reports whether this worker's next tick
// would poll t again with nothing else done first, and if so it does what
// queueing t and that tick would have done besides (the tick, the LIFO
// streak or the deferred release, the counters, the poll sequence, the
// notification of a parked peer) so that the runner resumes t at once,
// without queueing it. Such a yield then costs neither the task's two
// state transitions nor the queue's put and take.
//
// The answer is true only when the next tick would take t back at once:
// no P hand-off pending, not a maintenance tick, and no injector task due
// (a tick that looks at the injector first, with a non-empty injector).
// On the immediate path t would then run next from the empty LIFO slot
// while the streak lasts, whatever else is queued behind it, or, with the
// slot off or the streak spent, from an empty ring. The deferred path
// needs the worker to hold no other task at all (ring, LIFO slot, deferred
// queue, inbox), the injector empty, no peer with runnable tasks (the
// release would steal first) and no timer due (the release fires timers
// first, and a woken task runs before the released one). Otherwise the
// runner queues t the usual way.
func (w *Worker) RepollSelf(t *Task, deferred bool) bool {
	tick := w.own.tick + 1
	if w.own.unparkedPeer != nil || w.own.handOff || w.own.eventInterval.divides(tick) {
		return false
	}
	if deferred {
		if !w.alone() || w.shared.InjectorLen() != 0 || w.peerRunnable() || w.shared.TimersDue() {
			return false
		}
		w.own.c[StatDeferredYields]++
		w.own.deferredSince = w.own.tick
		w.own.tick = tick
		w.resetLIFO()
		w.progress.Store(tick)
		w.load.Store(1)
		w.own.c[StatDeferredReleases]++
		w.beforePoll(t)
		return true
	}
	if (w.own.globalInterval.divides(tick) || w.own.deferred.Len() != 0) && w.shared.InjectorLen() != 0 {
		return false
	}
	viaLIFO := w.cfg.LIFOSlot && !w.own.lifoDisabled
	if viaLIFO && w.lifo.Occupied() || !viaLIFO && w.own.local.len() != 0 {
		return false
	}
	w.own.c[StatLocalSchedules]++
	if !w.alone() {
		w.shared.NotifyParked() // as ScheduleYield
	}
	w.own.tick = tick
	if viaLIFO {
		w.countLIFOPoll()
	} else {
		w.resetLIFO()
	}
	w.beforePoll(t)
	return true
}

// peerRunnable reports whether a peer has a task another worker could
// take.
func (w *Worker) peerRunnable() bool {
	for _, v := range w.shared.Workers() {
		if v != w && v.Runnable() != 0 {
			return true
		}
	}
	return false
}

// nextTask implements steps 2–7 of the package doc.
func (w *Worker) nextTask() *Task {
	// Injector first on every tick while tasks are deferred here, one task:
	// those tasks asked to wait anyway, and a task woken from outside (a
	// timer, an I/O completion) should not queue behind the ring's next
	// full cycle (Tokio's yield_now leaves the run queue empty after every
	// poll, so it sees the injector each time). Otherwise every
	// GlobalQueueInterval ticks, and then a batch: one remote task per
	// interval would let a worker whose own work keeps to the LIFO slot
	// take in remote spawns at a few thousand a second.
	if w.own.deferred.Len() > 0 && w.shared.InjectorLen() > 0 {
		if w.shared.PopInjector(w.own.injectBuf[:1]) == 1 {
			t := w.own.injectBuf[0]
			w.own.injectBuf[0] = nil
			return t
		}
	} else if w.own.globalInterval.divides(w.own.tick) && w.shared.InjectorLen() > 0 {
		if t := w.popInjectorBatch(); t != nil {
			return t
		}
	}
	// A task from the injector does not end a LIFO streak: only the ring
	// does (below). Were it to, a self-waking task and a steady stream of
	// remote spawns (one between every two of its polls) would keep the
	// ring from running at all (TestLIFOStreakSurvivesInjectorTasks). In
	// Tokio the question does not arise: the slot is drained right after
	// the task that filled it, before the worker looks anywhere else.
	if w.cfg.LIFOSlot && !w.own.lifoDisabled {
		if t := w.lifo.Take(); t != nil {
			w.countLIFOPoll()
			return t
		}
	}
	w.resetLIFO()
	if t := w.own.local.pop(); t != nil {
		return t
	}
	if t := w.takeInbox(); t != nil {
		return t
	}
	if t := w.popInjectorBatch(); t != nil {
		return t
	}
	if n := w.own.deferred.Len(); n > 0 {
		if t := w.stealBalanced(n); t != nil {
			return t
		}
		w.shared.PollTimers(w)
		if w.cfg.LIFOSlot {
			if t := w.lifo.Take(); t != nil { // a timer wake-up (ScheduleTimerWake)
				w.own.c[StatLIFOPolls]++
				w.resetLIFO()
				return t
			}
		}
		if t := w.own.local.pop(); t != nil {
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
		w.progress.Store(w.own.tick)
		w.load.Store(int32(n - k)) // before donating: peers must not count the gift twice
		if k > 0 {
			w.donate(v, k)
		}
		first := w.own.deferred.PopFront()
		w.own.c[StatDeferredReleases]++
		w.releaseDeferred()
		return first
	}
	return w.search()
}

// countLIFOPoll counts a poll from the LIFO slot in the streak, and
// disables the slot when the streak reaches MaxLIFOPollsPerTick.
func (w *Worker) countLIFOPoll() {
	w.own.c[StatLIFOPolls]++
	w.own.lifoInRow++
	if w.own.lifoInRow >= w.cfg.MaxLIFOPollsPerTick {
		w.own.lifoDisabled = true
	}
}

func (w *Worker) resetLIFO() {
	w.own.lifoInRow = 0
	w.own.lifoDisabled = false
}

func (w *Worker) popInjectorBatch() *Task {
	n := w.shared.InjectorLen()
	if n == 0 {
		return nil
	}
	n = n/len(w.shared.Workers()) + 1
	if free := w.own.local.free() + 1; n > free {
		n = free
	}
	if n > len(w.own.injectBuf) {
		n = len(w.own.injectBuf)
	}
	got := w.shared.PopInjector(w.own.injectBuf[:n])
	if got == 0 {
		return nil
	}
	w.load.Add(int32(got))
	t := w.own.injectBuf[0]
	w.own.local.pushBackBatch(w.own.injectBuf[1:got])
	clear(w.own.injectBuf[:got])
	return t
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
	if w.own.deferred.Len() > 0 && w.own.tick-w.own.deferredSince >= w.cfg.EventInterval {
		w.releaseDeferred()
	}
	w.mark()
	w.publish()
	w.progress.Store(w.own.tick)
	return w.shared.ShuttingDown()
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
	for t := w.own.local.pop(); t != nil; t = w.own.local.pop() {
		t.runner.CancelTask()
	}
	w.own.deferred.Drain(func(t *Task) { t.runner.CancelTask() })
}
