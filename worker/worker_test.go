package worker

import (
	"testing"
	"time"
)

// fakeShared drives workers from the test goroutine: no goroutines, no
// timers, an injector slice, and counters for notifications.
type fakeShared struct {
	workers   []*Worker
	injector  []*Task
	notifies  int
	searching int
	timerPoll int
	wake      *Worker // the peer NotifyParked unparks and returns, if set
	// onPollTimers, if set, runs at each PollTimers (fires "timers").
	onPollTimers func(*Worker)
}

func (f *fakeShared) Workers() []*Worker { return f.workers }
func (f *fakeShared) InjectorLen() int   { return len(f.injector) }
func (f *fakeShared) PopInjector(dst []*Task) int {
	n := copy(dst, f.injector)
	f.injector = f.injector[n:]
	return n
}
func (f *fakeShared) PushInjector(b []*Task)            { f.injector = append(f.injector, b...) }
func (f *fakeShared) TransitionToSearching() bool       { f.searching++; return true }
func (f *fakeShared) TransitionFromSearching() bool     { f.searching--; return f.searching == 0 }
func (f *fakeShared) TransitionToParked(int, bool) bool { return false }
func (f *fakeShared) TransitionFromParked(int) bool     { return false }
func (f *fakeShared) NotifyParked() *Worker {
	f.notifies++
	if f.wake != nil {
		f.wake.Unpark()
	}
	return f.wake
}
func (f *fakeShared) PollTimers(w *Worker) {
	f.timerPoll++
	if f.onPollTimers != nil {
		f.onPollTimers(w)
	}
}
func (f *fakeShared) ParkTimeout(int) (time.Duration, bool) { return 0, false }
func (f *fakeShared) AfterPark(int)                         {}
func (f *fakeShared) ShuttingDown() bool                    { return false }

// named is a Runner that records nothing; tests compare *Task identities.
type named struct{ name string }

func (named) RunTask(*Worker) {}
func (named) CancelTask()     {}

func newTask(name string) *Task {
	t := &Task{}
	t.Init(named{name})
	return t
}

func nameOf(t *Task) string {
	if t == nil {
		return "<nil>"
	}
	return t.runner.(named).name
}

func newWorkers(n int, mod func(*Config)) (*fakeShared, []*Worker) {
	f := &fakeShared{}
	for i := 0; i < n; i++ {
		cfg := Config{ID: i, LocalQueueCapacity: 8, LIFOSlot: true, MaxLIFOPollsPerTick: 3,
			EventInterval: 1 << 30, GlobalQueueInterval: 1 << 30}
		if mod != nil {
			mod(&cfg)
		}
		f.workers = append(f.workers, New(cfg, f))
	}
	return f, f.workers
}

// next runs one tick's selection, as Run does, without polling the task.
func next(w *Worker) *Task {
	w.tick++
	return w.nextTask()
}

func TestScheduleUsesLIFOSlotAndDisplacesToBack(t *testing.T) {
	f, ws := newWorkers(1, nil)
	w := ws[0]
	a, b, c := newTask("a"), newTask("b"), newTask("c")
	w.Schedule(a)
	if f.notifies != 0 {
		t.Fatalf("a spawn into an empty LIFO slot notified a peer")
	}
	w.Schedule(b) // a -> ring
	w.Schedule(c) // b -> ring
	if f.notifies != 2 {
		t.Fatalf("notifies = %d, want 2 (one per task displaced into the ring)", f.notifies)
	}
	var got []string
	for x := next(w); x != nil; x = next(w) {
		got = append(got, nameOf(x))
	}
	if want := "c a b"; join(got) != want {
		t.Fatalf("run order %q, want %q", join(got), want)
	}
}

func TestScheduleYieldAlwaysNotifies(t *testing.T) {
	f, ws := newWorkers(1, nil)
	ws[0].ScheduleYield(newTask("y"))
	if f.notifies != 1 {
		t.Fatalf("immediate yield did not notify a parked peer")
	}
	if !ws[0].lifo.Occupied() {
		t.Fatalf("immediate yield with LIFO on must use the LIFO slot")
	}
}

func TestLIFOOffGoesToBack(t *testing.T) {
	_, ws := newWorkers(1, func(c *Config) { c.LIFOSlot = false })
	w := ws[0]
	for _, n := range []string{"a", "b", "y"} {
		w.Schedule(newTask(n))
	}
	if w.lifo.Occupied() {
		t.Fatal("LIFO slot used while disabled")
	}
	if got := nameOf(next(w)); got != "a" {
		t.Fatalf("first = %s, want a (FIFO)", got)
	}
}

func TestLIFOPollsCappedInARow(t *testing.T) {
	_, ws := newWorkers(1, nil)
	w := ws[0]
	w.ScheduleBack(newTask("a"))
	w.ScheduleBack(newTask("b"))
	y := newTask("y")
	w.Schedule(y)
	var got []string
	for i := 0; i < 8; i++ {
		x := next(w)
		got = append(got, nameOf(x))
		if x == y {
			w.ScheduleYield(y) // y yields on the immediate path every time
		}
	}
	// Three LIFO polls, then the slot is bypassed: y's yield goes to the
	// back of the ring behind a and b.
	if want := "y y y a b y y y"; join(got) != want {
		t.Fatalf("order %q, want %q", join(got), want)
	}
	if w.c.lifoPolls != 5 {
		t.Fatalf("lifoPolls = %d, want 5", w.c.lifoPolls)
	}
}

func TestRingOverflowGoesToInjectorInOneBatch(t *testing.T) {
	f, ws := newWorkers(1, func(c *Config) { c.LIFOSlot = false })
	w := ws[0]
	for i := 0; i < 9; i++ {
		w.Schedule(newTask(string(rune('a' + i))))
	}
	if len(f.injector) != 5 || w.ring.len() != 4 || w.c.overflows != 1 {
		t.Fatalf("injector %d ring %d overflows %d; want 5, 4, 1", len(f.injector), w.ring.len(), w.c.overflows)
	}
	if got := names(f.injector); got != "a b c d i" {
		t.Fatalf("injector got %q", got)
	}
}

func TestDeferredReleasedAfterReadyWorkAndTimerPoll(t *testing.T) {
	f, ws := newWorkers(1, nil)
	w := ws[0]
	d := newTask("d")
	w.ScheduleDeferred(d)
	w.ScheduleBack(newTask("a"))
	w.Schedule(newTask("b"))
	var got []string
	for x := next(w); x != nil; x = next(w) {
		got = append(got, nameOf(x))
		if x == d && f.timerPoll == 0 {
			t.Fatal("deferred task released before a timer poll")
		}
	}
	if want := "b a d"; join(got) != want {
		t.Fatalf("order %q, want %q", join(got), want)
	}
	if w.c.deferredReleases != 1 {
		t.Fatalf("releases = %d", w.c.deferredReleases)
	}
}

func TestDeferredNeverStolen(t *testing.T) {
	_, ws := newWorkers(2, nil)
	ws[0].ScheduleDeferred(newTask("d"))
	if x := next(ws[1]); x != nil {
		t.Fatalf("peer took %s from a deferred queue", nameOf(x))
	}
	if ws[0].DeferredLen() != 1 {
		t.Fatal("deferred task lost")
	}
}

// TestBalancedStealRule pins step 6: a worker with deferred tasks steals
// only from a peer with more runnable tasks than it has deferred, and only
// half the difference (rounded up).
func TestBalancedStealRule(t *testing.T) {
	for _, tc := range []struct {
		deferred, victim, wantStolen int
	}{
		{1, 1, 0}, // even: release own deferred instead
		{2, 2, 0},
		{1, 2, 1}, // 3 vs 1 start: one moves and both have 2
		{1, 4, 2},
		{0, 4, 2}, // no deferred: the plain steal takes half
	} {
		_, ws := newWorkers(2, nil)
		thief, victim := ws[1], ws[0]
		for i := 0; i < tc.victim; i++ {
			victim.ScheduleBack(newTask("v"))
		}
		for i := 0; i < tc.deferred; i++ {
			thief.ScheduleDeferred(newTask("d"))
		}
		x := next(thief)
		stolen := int(thief.c.stealTasks)
		if stolen != tc.wantStolen {
			t.Fatalf("deferred %d victim %d: stole %d, want %d", tc.deferred, tc.victim, stolen, tc.wantStolen)
		}
		if x == nil {
			t.Fatalf("deferred %d victim %d: no task", tc.deferred, tc.victim)
		}
		if tc.wantStolen == 0 && nameOf(x) != "d" {
			t.Fatalf("expected own deferred task released, got %s", nameOf(x))
		}
	}
}

func TestStealLIFOOnlyWhenRingEmpty(t *testing.T) {
	_, ws := newWorkers(2, nil)
	victim, thief := ws[0], ws[1]
	l := newTask("l")
	victim.Schedule(l)
	victim.ScheduleBack(newTask("r"))
	if x := next(thief); nameOf(x) != "r" {
		t.Fatalf("thief took %s, want the ring task r", nameOf(x))
	}
	if x := next(thief); x != l {
		t.Fatalf("thief took %s, want the LIFO task once the ring is empty", nameOf(x))
	}
}

func TestCancelQueuedOnExit(t *testing.T) {
	_, ws := newWorkers(1, nil)
	w := ws[0]
	cancelled := 0
	mk := func() *Task { t := &Task{}; t.Init(countCancel{&cancelled}); return t }
	w.Schedule(mk())
	w.ScheduleBack(mk())
	w.ScheduleDeferred(mk())
	w.cancelQueued()
	if cancelled != 3 {
		t.Fatalf("cancelled %d of 3 queued tasks", cancelled)
	}
}

type countCancel struct{ n *int }

func (countCancel) RunTask(*Worker) {}
func (c countCancel) CancelTask()   { *c.n++ }

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

func names(ts []*Task) string {
	var s []string
	for _, t := range ts {
		s = append(s, nameOf(t))
	}
	return join(s)
}

// TestDonationToLightestPeer pins the push half of deferred balancing: a
// worker releasing 3 deferred tasks while its peer cycles 1 hands its most
// recent yielder to the peer's inbox, counts it in the peer's load, and the
// peer runs it before its own deferred task.
func TestDonationToLightestPeer(t *testing.T) {
	_, ws := newWorkers(2, nil)
	busy, light := ws[0], ws[1]
	light.load.Store(1)
	light.ScheduleDeferred(newTask("own"))
	for _, n := range []string{"a", "b", "c"} {
		busy.ScheduleDeferred(newTask(n))
	}
	if x := next(busy); nameOf(x) != "a" {
		t.Fatalf("busy ran %s, want a (first released)", nameOf(x))
	}
	if busy.c.donated != 1 || light.load.Load() != 2 || busy.load.Load() != 2 {
		t.Fatalf("donated %d, light load %d, busy load %d; want 1, 2, 2",
			busy.c.donated, light.load.Load(), busy.load.Load())
	}
	if x := next(light); nameOf(x) != "c" {
		t.Fatalf("light ran %s, want the donated c", nameOf(x))
	}
	if x := next(busy); nameOf(x) != "b" {
		t.Fatalf("busy ran %s, want b", nameOf(x))
	}
}

func TestNoDonationWhenEven(t *testing.T) {
	_, ws := newWorkers(2, nil)
	ws[1].load.Store(2)
	ws[0].ScheduleDeferred(newTask("a"))
	ws[0].ScheduleDeferred(newTask("b"))
	next(ws[0])
	if ws[0].c.donated != 0 {
		t.Fatal("donated with an even load")
	}
}

// TestStalledPeerIsStolenFrom: a worker cycling one deferred task does not
// steal from a peer with one queued task (the balance rule) until that
// peer has published no progress for StallTimeout; then it does.
func TestStalledPeerIsStolenFrom(t *testing.T) {
	_, ws := newWorkers(2, func(c *Config) { c.StallTimeout = 20 * time.Millisecond })
	thief, victim := ws[1], ws[0]
	victim.ScheduleBack(newTask("queued"))
	start := time.Now()
	var stolenAfter time.Duration
	for time.Since(start) < time.Second && stolenAfter == 0 {
		thief.ScheduleDeferred(newTask("own"))
		if x := next(thief); nameOf(x) == "queued" {
			stolenAfter = time.Since(start)
		}
		time.Sleep(time.Millisecond)
	}
	if stolenAfter < 20*time.Millisecond {
		t.Fatalf("stolen after %v: before the peer could be judged stalled (20 ms), or never", stolenAfter)
	}
}

// TestUnparkedPeerGetsTheP: a worker that unparks a peer yields its P at
// its next tick if the peer has not started running (Go readies the peer's
// goroutine onto the unparker's P, where it would wait for that P).
func TestUnparkedPeerGetsTheP(t *testing.T) {
	f, ws := newWorkers(2, func(c *Config) { c.LIFOSlot = false })
	w, peer := ws[0], ws[1]
	f.wake = peer
	w.ScheduleDeferred(newTask("yielder")) // the hand-off is for workers running yield_now tasks
	w.Schedule(newTask("a"))               // into the ring: notifies, unparks peer
	if w.unparkedPeer != peer {
		t.Fatalf("the unparked peer was not recorded")
	}
	w.handOffToUnparkedPeer()
	if w.c.handOffs != 1 || w.unparkedPeer != nil {
		t.Fatalf("hand-offs %d, recorded peer %v: want one hand-off to a peer that has not run", w.c.handOffs, w.unparkedPeer)
	}

	// A peer that has run since (its park returned) needs no hand-off.
	w.Schedule(newTask("b"))
	peer.unparkPending.Store(false) // what park does when the peer wakes
	w.handOffToUnparkedPeer()
	if w.c.handOffs != 1 {
		t.Fatalf("handed off to a peer that was already running")
	}

	// Nor a worker without deferred tasks: its next task asked to run at
	// once.
	w.deferred.PopFront()
	w.Schedule(newTask("d"))
	w.handOffToUnparkedPeer()
	if w.c.handOffs != 1 {
		t.Fatalf("handed off while running no yield_now task")
	}
}

// TestImmediateYieldNotifiesWithoutHandOff: a self-wake notifies a parked
// peer (so other work can be stolen) but does not hand it the P: the
// yielder runs again at once, and the peer would only steal it.
func TestImmediateYieldNotifiesWithoutHandOff(t *testing.T) {
	f, ws := newWorkers(2, nil)
	f.wake = ws[1]
	ws[0].ScheduleYield(newTask("y"))
	if f.notifies != 1 || ws[0].unparkedPeer != nil {
		t.Fatalf("notifies %d, recorded peer %v: want a notification and no hand-off", f.notifies, ws[0].unparkedPeer)
	}
}

// TestTimerWakeRunsBeforeTheRing: a task woken by a timer this worker fires
// takes the empty LIFO slot, so it runs before tasks already in the ring
// (deferred tasks released earlier, say); with the slot taken, or off, it
// goes to the back of the ring.
func TestTimerWakeRunsBeforeTheRing(t *testing.T) {
	_, ws := newWorkers(1, nil)
	w := ws[0]
	w.ScheduleBack(newTask("released"))
	w.ScheduleTimerWake(newTask("timer1"))
	w.ScheduleTimerWake(newTask("timer2")) // the slot is taken: back of the ring
	var got []string
	for x := next(w); x != nil; x = next(w) {
		got = append(got, nameOf(x))
	}
	if want := "timer1 released timer2"; join(got) != want {
		t.Fatalf("run order %q, want %q", join(got), want)
	}

	_, ws = newWorkers(1, func(c *Config) { c.LIFOSlot = false })
	w = ws[0]
	w.ScheduleBack(newTask("released"))
	w.ScheduleTimerWake(newTask("timer"))
	got = got[:0]
	for x := next(w); x != nil; x = next(w) {
		got = append(got, nameOf(x))
	}
	if want := "released timer"; join(got) != want {
		t.Fatalf("LIFO off: run order %q, want %q", join(got), want)
	}
}

// TestTimerWakeAtReleaseRunsFirst: a timer that fires when the worker is
// about to release its deferred tasks runs before any of them.
func TestTimerWakeAtReleaseRunsFirst(t *testing.T) {
	f, ws := newWorkers(1, nil)
	w := ws[0]
	w.ScheduleDeferred(newTask("yielder"))
	fired := false
	f.onPollTimers = func(w *Worker) {
		if !fired {
			fired = true
			w.ScheduleTimerWake(newTask("sleeper"))
		}
	}
	var got []string
	for x := next(w); x != nil; x = next(w) {
		got = append(got, nameOf(x))
	}
	if want := "sleeper yielder"; join(got) != want {
		t.Fatalf("run order %q, want %q", join(got), want)
	}
}
