package worker

// Placement: where a runnable task goes. Every method here runs on the
// worker's own goroutine (inside a poll, or the worker loop itself).

// Schedule queues t, woken or spawned by the task running on this worker.
func (w *Worker) Schedule(t *Task) {
	w.own.c[StatLocalSchedules]++
	if w.cfg.LIFOSlot && !w.own.lifoDisabled {
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
// Schedule, but it notifies a parked peer whenever this worker holds
// another task, even if t took an empty LIFO slot, so that a peer can
// take some of the work.
func (w *Worker) ScheduleYield(t *Task) {
	w.own.c[StatLocalSchedules]++
	alone := w.alone()
	if w.cfg.LIFOSlot && !w.own.lifoDisabled {
		if prev := w.lifo.Put(t); prev != nil {
			w.pushBack(prev)
		}
	} else {
		w.pushBack(t)
	}
	// Notify if this worker holds other tasks, so that a peer can take
	// some; a lone yielder runs again at once here, and a peer could only
	// migrate it. No P hand-off (NoteUnparked): this worker goes on with
	// t at once, and handing the P to the woken peer would only let it
	// steal t (RATIONALE.md: "Why hand the P to an unparked peer…").
	if !alone {
		w.shared.NotifyParked()
	}
}

// alone reports whether this worker holds no task: none in its ring, LIFO
// slot, deferred queue or inbox (the one it is polling aside).
func (w *Worker) alone() bool {
	return w.own.local.len() == 0 && w.own.deferred.Len() == 0 && !w.lifo.Occupied() && w.inboxLen.Load() == 0
}

// ScheduleDeferred puts t, which yielded on the deferred path, into this
// worker's deferred queue.
func (w *Worker) ScheduleDeferred(t *Task) {
	w.own.c[StatDeferredYields]++
	if w.own.deferred.Len() == 0 {
		w.own.deferredSince = w.own.tick
	}
	w.own.deferred.Push(t)
}

// scheduleBack queues t at the back of the ring and notifies a parked peer.
func (w *Worker) scheduleBack(t *Task) {
	w.own.c[StatLocalSchedules]++
	w.pushBack(t)
	w.notifyParked()
}

// ScheduleTimerWake queues t, woken by a timer this worker fired: into the
// LIFO slot if it is enabled and empty, otherwise at the back of the ring.
// The slot runs before the ring, which may hold deferred tasks released
// earlier: a guest that gave way to a due timer on a worker with two
// guests would otherwise hand the worker to the other guest, and the woken
// task would wait a whole slice (RATIONALE.md: "Why do timer wake-ups take
// the empty LIFO slot?"). A batch fills the slot with its first task only,
// so timers never displace each other or a self-woken task.
func (w *Worker) ScheduleTimerWake(t *Task) {
	if w.cfg.LIFOSlot && !w.lifo.Occupied() {
		w.own.c[StatLocalSchedules]++
		w.lifo.Put(t)
		return
	}
	w.scheduleBack(t)
}

// NoteMigration counts a poll of a task that last ran on another worker.
// Called by the runner during RunTask.
func (w *Worker) NoteMigration() { w.own.c[StatMigrations]++ }

func (w *Worker) pushBack(t *Task) {
	if batch := w.own.local.pushBack(t); batch != nil {
		w.own.c[StatOverflows]++
		w.shared.PushInjector(batch)
	}
}

// notifyParked wakes a parked peer if the protocol says so, and remembers
// it for the hand-off check at the next tick.
func (w *Worker) notifyParked() {
	if v := w.shared.NotifyParked(); v != nil {
		w.NoteUnparked(v)
	}
}
