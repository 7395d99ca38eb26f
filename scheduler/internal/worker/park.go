package worker

import "time"

// Parking (step 8) and unparking.

// Unpark wakes the worker if it is parked, or makes its next park return
// at once. Safe from any goroutine; never blocks.
func (w *Worker) Unpark() {
	w.unparkPending.Store(true)
	select {
	case w.unparkCh <- struct{}{}:
	default:
	}
}

func (w *Worker) park() {
	w.advanceSeq()
	if w.own.notifiedNoWork {
		w.own.c[StatNoopUnparks]++
	}
	if w.cfg.BeforePark != nil {
		w.cfg.BeforePark(w.id)
	}
	// Publish before registering as parked, so that a reader who sees
	// every worker parked also sees their final counters.
	w.load.Store(0)
	w.progress.Store(w.own.tick)
	w.own.c[StatParks]++
	w.mark()
	w.own.c[StatBusyNanos] += uint64(w.own.lastMark - w.own.busySince)
	w.own.busySince = w.own.lastMark
	w.publish()
	if w.shared.TransitionToParked(w.id, w.own.searching) {
		if w.workPending() {
			w.notifyParked()
		}
	}
	w.own.searching = false

	if d, ok := w.shared.ParkTimeout(w.id); ok {
		if w.own.timer == nil {
			w.own.timer = time.NewTimer(d)
		} else {
			w.own.timer.Reset(d)
		}
		select {
		case <-w.unparkCh:
		case <-w.own.timer.C:
		}
		w.own.timer.Stop()
	} else {
		<-w.unparkCh
	}

	w.unparkPending.Store(false)
	now := w.nanotime()
	w.own.busySince, w.own.lastMark = now, now
	if w.shared.TransitionFromParked(w.id) {
		w.own.searching = true
		w.own.notifiedNoWork = true
	}
	w.shared.AfterPark(w.id)
	w.shared.PollTimers(w)
	if w.cfg.AfterUnpark != nil {
		w.cfg.AfterUnpark(w.id)
	}
}

// workPending is the last searcher's re-check before it sleeps.
func (w *Worker) workPending() bool {
	if w.shared.InjectorLen() > 0 {
		return true
	}
	for _, v := range w.shared.Workers() {
		if v != w && v.Runnable() > 0 {
			return true
		}
	}
	return false
}
