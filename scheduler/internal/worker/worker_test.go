package worker

import (
	"fmt"
	"sync/atomic"
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
	// timersDue, if set, answers TimersDue.
	timersDue func() bool
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
func (f *fakeShared) TimersDue() bool                       { return f.timersDue != nil && f.timersDue() }
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
	w.own.tick++
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

// TestScheduleYieldNotifiesWhenNotAlone: an immediate yield notifies a
// parked peer when its worker holds another task (in the ring, the LIFO
// slot, the deferred queue or the inbox), which the peer could take; a lone
// yielder notifies no one, with the LIFO slot on or off: it runs again at
// once, and a peer could only migrate it.
func TestScheduleYieldNotifiesWhenNotAlone(t *testing.T) {
	for _, c := range []struct {
		name  string
		lifo  bool
		setup func(w *Worker)
		want  int
	}{
		{"alone", true, func(*Worker) {}, 0},
		{"alone, LIFO off", false, func(*Worker) {}, 0},
		{"ring", true, func(w *Worker) { w.own.local.pushBack(newTask("r")) }, 1},
		{"ring, LIFO off", false, func(w *Worker) { w.own.local.pushBack(newTask("r")) }, 1},
		{"LIFO slot", true, func(w *Worker) { w.lifo.Put(newTask("l")) }, 1},
		{"deferred", true, func(w *Worker) { w.own.deferred.Push(newTask("d")) }, 1},
		{"inbox", true, func(w *Worker) { w.inbox = append(w.inbox, newTask("i")); w.inboxLen.Store(1) }, 1},
	} {
		f, ws := newWorkers(1, func(cfg *Config) { cfg.LIFOSlot = c.lifo })
		c.setup(ws[0])
		ws[0].ScheduleYield(newTask("y"))
		if f.notifies != c.want {
			t.Errorf("%s: %d notifications, want %d", c.name, f.notifies, c.want)
		}
		if c.lifo && !ws[0].lifo.Occupied() {
			t.Errorf("%s: immediate yield with LIFO on must use the LIFO slot", c.name)
		}
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
	w.scheduleBack(newTask("a"))
	w.scheduleBack(newTask("b"))
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
	if w.own.c[StatLIFOPolls] != 5 {
		t.Fatalf("lifoPolls = %d, want 5", w.own.c[StatLIFOPolls])
	}
}

func TestRingOverflowGoesToInjectorInOneBatch(t *testing.T) {
	f, ws := newWorkers(1, func(c *Config) { c.LIFOSlot = false })
	w := ws[0]
	for i := 0; i < 9; i++ {
		w.Schedule(newTask(string(rune('a' + i))))
	}
	if len(f.injector) != 5 || w.own.local.len() != 4 || w.own.c[StatOverflows] != 1 {
		t.Fatalf("injector %d ring %d overflows %d; want 5, 4, 1", len(f.injector), w.own.local.len(), w.own.c[StatOverflows])
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
	w.scheduleBack(newTask("a"))
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
	if w.own.c[StatDeferredReleases] != 1 {
		t.Fatalf("releases = %d", w.own.c[StatDeferredReleases])
	}
}

func TestDeferredNeverStolen(t *testing.T) {
	_, ws := newWorkers(2, nil)
	ws[0].ScheduleDeferred(newTask("d"))
	if x := next(ws[1]); x != nil {
		t.Fatalf("peer took %s from a deferred queue", nameOf(x))
	}
	if ws[0].own.deferred.Len() != 1 {
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
			victim.scheduleBack(newTask("v"))
		}
		for i := 0; i < tc.deferred; i++ {
			thief.ScheduleDeferred(newTask("d"))
		}
		x := next(thief)
		stolen := int(thief.own.c[StatStealTasks])
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
	victim.scheduleBack(newTask("r"))
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
	w.scheduleBack(mk())
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
	if busy.own.c[StatDonated] != 1 || light.load.Load() != 2 || busy.load.Load() != 2 {
		t.Fatalf("donated %d, light load %d, busy load %d; want 1, 2, 2",
			busy.own.c[StatDonated], light.load.Load(), busy.load.Load())
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
	if ws[0].own.c[StatDonated] != 0 {
		t.Fatal("donated with an even load")
	}
}

// TestStalledPeerIsStolenFrom: a worker cycling one deferred task does not
// steal from a peer with one queued task (the balance rule) until that
// peer has published no progress for StallTimeout; then it does.
func TestStalledPeerIsStolenFrom(t *testing.T) {
	_, ws := newWorkers(2, func(c *Config) { c.StallTimeout = 20 * time.Millisecond })
	thief, victim := ws[1], ws[0]
	victim.scheduleBack(newTask("queued"))
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
	if w.own.unparkedPeer != peer {
		t.Fatalf("the unparked peer was not recorded")
	}
	w.handOffToUnparkedPeer()
	if w.own.c[StatHandOffs] != 1 || w.own.unparkedPeer != nil {
		t.Fatalf("hand-offs %d, recorded peer %v: want one hand-off to a peer that has not run", w.own.c[StatHandOffs], w.own.unparkedPeer)
	}

	// A peer that has run since (its park returned) needs no hand-off.
	w.Schedule(newTask("b"))
	peer.unparkPending.Store(false) // what park does when the peer wakes
	w.handOffToUnparkedPeer()
	if w.own.c[StatHandOffs] != 1 {
		t.Fatalf("handed off to a peer that was already running")
	}

	// Nor a worker without deferred tasks: its next task asked to run at
	// once.
	w.own.deferred.PopFront()
	w.Schedule(newTask("d"))
	w.handOffToUnparkedPeer()
	if w.own.c[StatHandOffs] != 1 {
		t.Fatalf("handed off while running no yield_now task")
	}
}

// TestImmediateYieldNotifiesWithoutHandOff: a self-wake notifies a parked
// peer (so other work can be stolen) but does not hand it the P: the
// yielder runs again at once, and the peer would only steal it.
func TestImmediateYieldNotifiesWithoutHandOff(t *testing.T) {
	f, ws := newWorkers(2, nil)
	f.wake = ws[1]
	ws[0].own.local.pushBack(newTask("other")) // something the peer could take
	ws[0].ScheduleYield(newTask("y"))
	if f.notifies != 1 || ws[0].own.unparkedPeer != nil {
		t.Fatalf("notifies %d, recorded peer %v: want a notification and no hand-off", f.notifies, ws[0].own.unparkedPeer)
	}
}

// TestTimerWakeRunsBeforeTheRing: a task woken by a timer this worker fires
// takes the empty LIFO slot, so it runs before tasks already in the ring
// (deferred tasks released earlier, say); with the slot taken, or off, it
// goes to the back of the ring.
func TestTimerWakeRunsBeforeTheRing(t *testing.T) {
	_, ws := newWorkers(1, nil)
	w := ws[0]
	w.scheduleBack(newTask("released"))
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
	w.scheduleBack(newTask("released"))
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

// stallRig is a thief cycling one deferred task beside a victim that holds
// one queued task and publishes no progress, with the thief's clock in the
// test's hands. Under the balance rule alone the thief never takes the
// victim's task (loads 1 and 2); only the stall rule can.
type stallRig struct {
	thief, victim *Worker
	clock         int64
}

func newStallRig(t *testing.T, stallTimeout time.Duration) *stallRig {
	t.Helper()
	r := &stallRig{clock: int64(time.Second)}
	_, ws := newWorkers(2, func(c *Config) { c.StallTimeout = stallTimeout })
	r.thief, r.victim = ws[1], ws[0]
	r.thief.own.clock = func() int64 { return r.clock }
	r.victim.scheduleBack(newTask("queued"))
	return r
}

// look advances the thief's clock by d and runs one tick of the thief, in
// which it looks at the victim once; it reports whether it stole.
func (r *stallRig) look(t *testing.T, d time.Duration) bool {
	t.Helper()
	r.clock += int64(d)
	r.thief.ScheduleDeferred(newTask("own"))
	switch x := next(r.thief); nameOf(x) {
	case "queued":
		return true
	case "own":
		return false
	default:
		t.Fatalf("thief ran %s", nameOf(x))
		return false
	}
}

// TestStallRuleIgnoresProcessPause: a gap in the thief's own looks (the
// whole process paused: OS, GC, CPU quota) is not taken as the victim's
// silence. The thief has watched the victim for 20 ms of a 40 ms timeout
// when its clock jumps 10 s: the next look must not steal. A victim that
// publishes progress after the pause is not stolen from; one that stays
// silent is, once the thief has itself watched it for the rest of the
// timeout.
func TestStallRuleIgnoresProcessPause(t *testing.T) {
	const timeout = 40 * time.Millisecond // gaps count for at most 10 ms
	r := newStallRig(t, timeout)
	for i := 0; i <= 20; i++ { // baseline look, then 20 ms of 1 ms looks
		if r.look(t, time.Millisecond) {
			t.Fatalf("stole after %d ms of a %v timeout", i, timeout)
		}
	}
	if r.look(t, 10*time.Second) {
		t.Fatal("a 10 s gap in the thief's own looks was taken as the victim's silence: stolen right after a process-wide pause")
	}
	// 30 ms counted so far (20 + at most 10 for the gap).
	r.victim.progress.Add(1) // the victim resumes and reaches maintenance
	for i := 0; i <= 40; i++ {
		if r.look(t, time.Millisecond) {
			t.Fatalf("stole from a victim that published progress after the pause, %d ms later", i)
		}
	}
	// The victim has now been silent for 40 ms of looks since its
	// progress: one more millisecond passes the timeout.
	if !r.look(t, time.Millisecond) {
		t.Fatal("not stolen after 41 ms of observed silence, timeout 40 ms")
	}

	// Without the progress the pause still counts, but only 10 ms: the
	// steal comes after 31 more ms of looks, not at once.
	r = newStallRig(t, timeout)
	for i := 0; i <= 20; i++ {
		r.look(t, time.Millisecond)
	}
	if r.look(t, 10*time.Second) {
		t.Fatal("stolen right after the pause")
	}
	n := 0
	for !r.look(t, time.Millisecond) {
		if n++; n > 100 {
			t.Fatal("a silent victim was never stolen from after the pause")
		}
	}
	if n+1 != 11 {
		t.Fatalf("stolen at the %d-th 1 ms look after the pause, want the 11th (20 + 10 + 11 ms > 40 ms)", n+1)
	}
}

// TestStallRuleWithSlowObserver: a thief whose looks are farther apart
// than a quarter of the timeout (its own polls are long) credits each gap
// with a quarter only, so it takes five looks, but it does decide: a
// stuck victim's queue does not wait forever behind a busy thief.
func TestStallRuleWithSlowObserver(t *testing.T) {
	const timeout = 40 * time.Millisecond
	r := newStallRig(t, timeout)
	r.look(t, 0) // baseline
	for i := 1; i <= 4; i++ {
		if r.look(t, 30*time.Millisecond) {
			t.Fatalf("stolen at look %d, gaps 30 ms, each counting 10 ms toward 40", i)
		}
	}
	if !r.look(t, 30*time.Millisecond) {
		t.Fatal("not stolen after five 30 ms gaps (50 ms counted, timeout 40 ms)")
	}
}

// TestTunedGlobalQueueInterval: with GlobalQueueInterval 0 the interval is
// tuned at each mark to the polls that fill 100 µs at the mean poll time,
// within [2, 127], ignoring changes of 2 or less; an injected task is then
// taken first within that many ticks though the LIFO slot and the ring
// stay full. A configured interval is never tuned.
func TestTunedGlobalQueueInterval(t *testing.T) {
	for _, tc := range []struct {
		pollNanos  int64
		configured uint32
		want       uint32
	}{
		{25_000, 0, 4},   // 100 µs / 25 µs
		{50_000, 0, 2},   // 100 µs / 50 µs
		{1_000, 0, 100},  // 100 polls
		{500, 0, 127},    // 200 polls: capped
		{500_000, 0, 2},  // 0.2: at least 2
		{1_650, 0, 61},   // 60.6 from the seed 61: within the jitter, kept
		{3_300, 0, 30},   // 30.3: out of the jitter
		{50_000, 31, 31}, // configured: never tuned
	} {
		f, ws := newWorkers(1, func(c *Config) { c.GlobalQueueInterval = tc.configured })
		w := ws[0]
		var now int64
		w.own.clock = func() int64 { return now }
		for range 5 { // marks of 10 polls each
			w.own.c[StatPolls] += 10
			now += 10 * tc.pollNanos
			w.mark()
		}
		if w.own.globalInterval.n != tc.want {
			t.Fatalf("poll %d ns, configured %d: interval %d, want %d", tc.pollNanos, tc.configured, w.own.globalInterval.n, tc.want)
		}
		// Keep the LIFO slot and the ring full; the injected task comes
		// first at the next tick that is a multiple of the interval.
		var ring []*Task
		for k := range 6 {
			ring = append(ring, newTask(fmt.Sprint("r", k)))
			w.Schedule(ring[k])
		}
		remote := newTask("remote")
		f.injector = append(f.injector, remote)
		w.own.tick = 0
		ticks := 0
		for {
			x := next(w)
			ticks++
			if x == remote {
				break
			}
			if x == nil || ticks > int(tc.want) {
				t.Fatalf("poll %d ns: the injected task not taken within %d ticks (got %s)", tc.pollNanos, tc.want, nameOf(x))
			}
			w.Schedule(x) // keep the worker busy, as a self-waking task does
		}
		if ticks != int(tc.want) {
			t.Fatalf("poll %d ns: injected task taken at tick %d, want %d", tc.pollNanos, ticks, tc.want)
		}
	}
}

// TestGlobalIntervalTakesBatch: at the global queue interval a worker with
// no deferred task takes its share of the injector (len/workers+1, at most
// half its ring's capacity and within its room): the first runs, the rest go to the back of the ring,
// behind the local work already there. So remote spawns among local work
// that never leaves the LIFO slot (Tokio's spawn_many_remote_busy2) get
// through a batch at a time, not one per interval. A worker with deferred
// tasks looks at the injector every tick and takes one task each time.
func TestGlobalIntervalTakesBatch(t *testing.T) {
	f, ws := newWorkers(2, func(c *Config) { c.GlobalQueueInterval = 4 })
	w := ws[0]
	l0, l1 := newTask("l0"), newTask("l1")
	w.Schedule(l0)
	w.Schedule(l1) // l0 to the ring, l1 in the LIFO slot
	for k := range 10 {
		f.injector = append(f.injector, newTask(fmt.Sprint("i", k)))
	}
	w.own.tick = 3
	if x := next(w); nameOf(x) != "i0" { // tick 4: the interval
		t.Fatalf("at the interval: %s, want i0", nameOf(x))
	}
	// Its share is 10/2+1 = 6, bounded by half the ring's capacity of 8.
	if len(f.injector) != 6 || w.own.local.len() != 4 {
		t.Fatalf("after the batch: injector %d, ring %d; want 6 left, l0 + i1..i3", len(f.injector), w.own.local.len())
	}
	var got []string
	for range 3 {
		got = append(got, nameOf(next(w)))
	}
	if want := "l1 l0 i1"; join(got) != want {
		t.Fatalf("then %q, want %q (the LIFO task, then the ring in order)", join(got), want)
	}

	f2, ws2 := newWorkers(2, func(c *Config) { c.GlobalQueueInterval = 4 })
	d := ws2[0]
	d.own.deferred.Push(newTask("d0"))
	for k := range 3 {
		f2.injector = append(f2.injector, newTask(fmt.Sprint("j", k)))
	}
	for k := range 3 {
		if x := next(d); nameOf(x) != fmt.Sprint("j", k) || d.own.local.len() != 0 {
			t.Fatalf("tick %d with a deferred task: %s, ring %d; want j%d alone", k+1, nameOf(x), d.own.local.len(), k)
		}
	}
}

// seqRecorder is a Runner that records the worker's Seq during its polls.
// seqRecorder records Seq at each of its polls and, with task set, asks
// for a StampWhenLeft in each and records whether the previous one was
// stamped.
type seqRecorder struct {
	seen    []uint64
	task    *Task
	cell    atomic.Int64
	stamped []bool
}

func (r *seqRecorder) RunTask(w *Worker) {
	r.seen = append(r.seen, w.Seq())
	if r.task != nil {
		r.stamped = append(r.stamped, r.cell.Load() != 0)
		r.cell.Store(0)
		w.StampWhenLeft(r.task, &r.cell)
	}
}
func (r *seqRecorder) CancelTask() {}

// TestSeqAdvancesAtEveryActivity pins Seq's contract: a task polled twice
// in a row sees it advance by one; a poll of another task, a park, a P
// hand-off after a poll (ReadiedGoroutine) and the P share of a long busy
// stretch each advance it once more, so a resumption after any of them is
// not taken for a hop. A StampWhenLeft asked for in a poll is stamped by
// exactly those activities, and cleared unstamped by a hop.
func TestSeqAdvancesAtEveryActivity(t *testing.T) {
	run := func(w *Worker, tk *Task) { // a poll as Run does it
		w.beforePoll(tk)
		tk.runner.RunTask(w)
		w.afterPoll()
	}
	_, ws := newWorkers(1, nil)
	w := ws[0]
	var now int64
	w.own.clock = func() int64 { return now }
	a, b := &seqRecorder{}, &seqRecorder{}
	ta, tb := &Task{}, &Task{}
	ta.Init(a)
	tb.Init(b)
	a.task = ta
	steps := []struct {
		what string
		do   func()
		want uint64 // a's Seq at its next poll, minus at its previous one
	}{
		{"back to back", func() {}, 1},
		{"another task polled", func() { run(w, tb) }, 2},
		{"a park", func() { w.Unpark(); w.park() }, 2},
		{"a P hand-off after a poll", func() { w.own.handOff = true }, 1}, // counted in the next step's poll of a
		{"after the hand-off", func() {}, 2},
		{"a P share", func() { now += int64(2 * sharePInterval); w.shareP() }, 2},
	}
	run(w, ta)
	for _, s := range steps {
		s.do()
		prev := a.seen[len(a.seen)-1]
		run(w, ta)
		if got := a.seen[len(a.seen)-1] - prev; got != s.want {
			t.Fatalf("%s: Seq advanced by %d between a's polls, want %d", s.what, got, s.want)
		}
		if got, want := a.stamped[len(a.stamped)-1], s.want != 1; got != want {
			t.Fatalf("%s: a's wait stamped %v, want %v", s.what, got, want)
		}
	}
}

// TestStampWhenLeftKeepsAnEarlierStamp: the stamp is a compare-and-swap
// from 0, so an old worker that moves on late (its task was stolen and has
// already resumed and dated its next wait) does not overwrite it.
func TestStampWhenLeftKeepsAnEarlierStamp(t *testing.T) {
	_, ws := newWorkers(1, nil)
	w := ws[0]
	var cell atomic.Int64
	cell.Store(5)
	w.StampWhenLeft(&Task{}, &cell)
	w.Unpark()
	w.park()
	if got := cell.Load(); got != 5 {
		t.Fatalf("cell = %d after a park, want the earlier stamp 5 kept", got)
	}
	cell.Store(0)
	before := Nanotime()
	w.StampWhenLeft(&Task{}, &cell)
	w.Unpark()
	w.park()
	if got := cell.Load(); got < before || got > Nanotime() {
		t.Fatalf("cell = %d after a park, want a Nanotime reading taken during it (from %d)", got, before)
	}
}

// TestPollBeganIsTheSwitchReading: PollBegan is the reading the worker
// stamped a StampWhenLeft request with as the poll began, and 0 for a poll
// that began without one: a hop, a poll with no request pending, and the
// first poll after a park (which stamped the request while parking).
func TestPollBeganIsTheSwitchReading(t *testing.T) {
	_, ws := newWorkers(1, nil)
	w := ws[0]
	ta, tb := newTask("a"), newTask("b")
	var cell atomic.Int64
	w.beforePoll(ta)
	w.StampWhenLeft(ta, &cell)
	w.beforePoll(ta) // a hop
	if w.PollBegan() != 0 || cell.Load() != 0 {
		t.Fatalf("after a hop: PollBegan %d, cell %d; want 0, 0", w.PollBegan(), cell.Load())
	}
	w.StampWhenLeft(ta, &cell)
	before := Nanotime()
	w.beforePoll(tb) // a switch
	if got := w.PollBegan(); got < before || got != cell.Load() {
		t.Fatalf("after a switch: PollBegan %d, cell %d; want the stamp, taken from %d", got, cell.Load(), before)
	}
	w.beforePoll(ta) // nothing asked
	if w.PollBegan() != 0 {
		t.Fatalf("PollBegan %d with no request pending, want 0", w.PollBegan())
	}
	cell.Store(0)
	w.StampWhenLeft(ta, &cell)
	w.Unpark()
	w.park()
	w.beforePoll(tb)
	if w.PollBegan() != 0 || cell.Load() == 0 {
		t.Fatalf("after a park: PollBegan %d, cell %d; want 0 and a stamp", w.PollBegan(), cell.Load())
	}
}
