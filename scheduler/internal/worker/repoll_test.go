package worker

import (
	"fmt"
	"testing"
)

// repollCase is one worker state in which a task y has just yielded.
type repollCase struct {
	lifoCfg      bool // Config.LIFOSlot
	deferred     bool // y yielded on the deferred path
	ring         bool // another task in the ring
	lifoTask     bool // another task in the LIFO slot
	deferredTask bool // another task in the deferred queue
	inbox        bool // a donated task in the inbox
	injector     bool // a task in the injector
	peerTask     bool // the peer has a runnable task
	timer        bool // the next timer poll wakes a task onto this worker
	handOff      bool // a P hand-off is pending
	lifoInRow    int
	lifoDisabled bool
	tick         uint32
}

const (
	repollEventInterval  = 5
	repollGlobalInterval = 3
)

// build makes the two-worker rig of c: y and the worker that polled it.
func (c repollCase) build() (*fakeShared, *Worker, *Task) {
	f, ws := newWorkers(2, func(cfg *Config) {
		cfg.LIFOSlot = c.lifoCfg
		cfg.EventInterval = repollEventInterval
		cfg.GlobalQueueInterval = repollGlobalInterval
	})
	w := ws[0]
	if c.ring {
		w.own.local.pushBack(newTask("ring"))
	}
	if c.lifoTask {
		w.lifo.Put(newTask("lifo"))
	}
	if c.deferredTask {
		w.own.deferred.Push(newTask("deferred"))
	}
	if c.inbox {
		w.inbox = append(w.inbox, newTask("inbox"))
		w.inboxLen.Store(1)
	}
	if c.injector {
		f.injector = append(f.injector, newTask("injector"))
	}
	if c.peerTask {
		ws[1].own.local.pushBack(newTask("peer"))
	}
	if c.timer {
		fired := false
		f.onPollTimers = func(w *Worker) {
			if !fired {
				fired = true
				w.ScheduleTimerWake(newTask("timer"))
			}
		}
		f.timersDue = func() bool { return !fired }
	}
	w.own.handOff = c.handOff
	w.own.lifoInRow, w.own.lifoDisabled = c.lifoInRow, c.lifoDisabled
	w.own.tick = c.tick
	y := newTask("y")
	w.beforePoll(y) // y's poll, which yielded
	return f, w, y
}

// queued is the usual way: y is queued and the worker's next tick picks.
func queued(w *Worker, y *Task, deferred bool) *Task {
	if deferred {
		w.ScheduleDeferred(y)
	} else {
		w.ScheduleYield(y)
	}
	x := next(w)
	if x != nil {
		w.beforePoll(x)
	}
	return x
}

// workerState is what RepollSelf must leave as the queued path does. The
// rng is left out: the deferred path's balanced steal draws a victim order
// even when no peer has anything to steal.
func workerState(w *Worker) string {
	return fmt.Sprintf("tick %d seq %d lifo %d/%v deferredSince %d progress %d load %d counters %v ring %d lifo %v deferred %d inbox %d",
		w.own.tick, w.own.seq, w.own.lifoInRow, w.own.lifoDisabled, w.own.deferredSince, w.progress.Load(), w.load.Load(),
		w.own.c, w.own.local.len(), w.lifo.Occupied(), w.own.deferred.Len(), w.inboxLen.Load())
}

// TestRepollSelfIsTheQueuedPath pins RepollSelf against the queued path
// over every combination of a worker's queues, its LIFO streak, the
// maintenance and injector ticks, timers, a busy peer and a pending
// hand-off: where it answers true, queueing y would have picked y next and
// left the worker in the same state, parked peers notified or not alike;
// where it answers false, the queued path after it picks what it would
// have picked alone.
// And it answers true exactly where the package's rule says.
func TestRepollSelfIsTheQueuedPath(t *testing.T) {
	var cases []repollCase
	for bits := 0; bits < 1<<12; bits++ {
		b := func(i int) bool { return bits&(1<<i) != 0 }
		for tick := uint32(0); tick < repollEventInterval*repollGlobalInterval; tick++ {
			cases = append(cases, repollCase{lifoCfg: b(0), deferred: b(1), ring: b(2), lifoTask: b(3),
				deferredTask: b(4), inbox: b(5), injector: b(6), peerTask: b(7), timer: b(8), handOff: b(9),
				lifoInRow: 2 * int(bits>>10&1), lifoDisabled: b(11), tick: tick})
		}
	}
	repolled := map[bool]int{}
	for _, c := range cases {
		fq, wq, yq := c.build()
		wantTask := queued(wq, yq, c.deferred)

		fr, wr, yr := c.build()
		before := workerState(wr)
		ok := wr.RepollSelf(yr, c.deferred)

		next := c.tick + 1
		want := !c.handOff && next%repollEventInterval != 0
		if c.deferred {
			want = want && !c.ring && !c.lifoTask && !c.deferredTask && !c.inbox && !c.injector && !c.peerTask && !c.timer
		} else {
			want = want && !(c.injector && (next%repollGlobalInterval == 0 || c.deferredTask))
			if c.lifoCfg && !c.lifoDisabled {
				want = want && !c.lifoTask
			} else {
				want = want && !c.ring
			}
		}
		if ok != want {
			t.Fatalf("%+v: RepollSelf = %v, want %v", c, ok, want)
		}
		if ok {
			repolled[c.deferred]++
			if wantTask != yq {
				t.Fatalf("%+v: RepollSelf repolled y, but the queued path picks %s", c, nameOf(wantTask))
			}
			if got, want := workerState(wr), workerState(wq); got != want {
				t.Fatalf("%+v: after RepollSelf\n  %s\nafter the queued path\n  %s", c, got, want)
			}
			if fq.notifies != fr.notifies {
				t.Fatalf("%+v: notifications %d after RepollSelf, %d queued", c, fr.notifies, fq.notifies)
			}
			continue
		}
		if after := workerState(wr); after != before || fr.timerPoll != 0 {
			t.Fatalf("%+v: RepollSelf answered false but changed the worker (%d timer polls):\n  %s\n  %s", c, fr.timerPoll, before, after)
		}
		got := queued(wr, yr, c.deferred)
		if nameOf(got) != nameOf(wantTask) {
			t.Fatalf("%+v: after RepollSelf's false the queued path picks %s, alone %s", c, nameOf(got), nameOf(wantTask))
		}
		if got, want := workerState(wr), workerState(wq); got != want {
			t.Fatalf("%+v: after RepollSelf's false and the queued path\n  %s\nthe queued path alone\n  %s", c, got, want)
		}
	}
	if repolled[false] == 0 || repolled[true] == 0 {
		t.Fatalf("repolled in place: %d immediate, %d deferred; want some of each", repolled[false], repolled[true])
	}
}
