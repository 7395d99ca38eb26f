package wasmtask

import (
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/wasmsched/wasmsched/scheduler"
)

// The check: what happens when a guest's fuel counter goes negative —
// accounting, Abort, the fuel budget, deadlines and the policy's action —
// and the bookkeeping of its suspensions.

func (g *guest) consumed() int64 {
	if !g.fuel.ok() {
		return g.credit
	}
	if g.skips.armed != 0 {
		return g.credit + g.pendingSkips() - int64(g.fuel.Get())
	}
	return g.credit - int64(g.fuel.Get())
}

// arm writes the next fuel value: the smallest of the budget left, the
// slice left (fuel mode) and the poll interval (epoch mode).
//
// used is the guest's consumption, as consumed() would return it: the
// fuel global has not changed since it was read (the guest is inside the
// host call) and the guest's own refills are taken (takeSkips), so the
// current value is credit − used and needs no read. It returns the value
// written.
func (g *guest) arm(used int64) int64 {
	v := int64(math.MaxInt64 / 2)
	if g.opts.FuelBudget > 0 {
		v = min(v, g.opts.FuelBudget-used)
	}
	if g.hasF {
		v = min(v, g.sliceEnd-used)
	}
	if g.hasE {
		v = min(v, g.e.cfg.PollInterval)
	}
	v = max(v, 0)
	cur := g.credit - used
	g.fuel.Set(uint64(v))
	g.credit += v - cur
	return v
}

// check is the injected host call: the fuel counter went negative.
func (g *guest) check(mod api.Module) {
	if !g.findFuel(mod) {
		g.fail(ErrInstantiate, errors.New("module is not instrumented: no mutable fuel global"))
		panic(stop{})
	}
	g.stats.Checks++
	if g.skips.armed != 0 {
		g.takeSkips()
	}
	if g.hasE {
		g.clearAttention()
	}
	g.co.CheckCancelled() // Abort takes effect here, at the next check
	used := g.consumed()
	if g.opts.FuelBudget > 0 && used > g.opts.FuelBudget {
		g.fail(ErrOutOfFuel, fmt.Errorf("used %d of %d", used, g.opts.FuelBudget))
		panic(stop{})
	}
	// In epoch mode the time is read or estimated (epochclock.go); an
	// estimate is replaced by a reading before anything is done with it.
	// Fuel mode reads no clock unless a deadline is reached.
	now, estimated, deadline := int64(-1), false, int64(0)
	if g.hasE {
		deadline = g.epochDeadline()
		now, estimated = g.clock.now(used, g.nextEvent(deadline))
	}
	// A deadline, or work waiting that the guest should give way to,
	// makes the check act: ask the policy and carry out its answer. The
	// suspension is written out here, not in a helper: every frame on the
	// coroutine's stack while the guest is suspended is a return the CPU
	// mispredicts when the guest resumes (stackfulRunner).
	reason, act, acting := ReasonFuel, (*Action)(nil), false
	switch {
	case g.hasF && used >= g.sliceEnd:
		now = g.reading(now, estimated, used)
		if now < 0 && !g.hasConst {
			now = nanos() // the policy's GuestInfo, and the suspension's start
		}
		act, acting = g.decide(reason, used, now), true
	case g.hasE && now >= deadline:
		reason, now = ReasonEpoch, g.reading(now, estimated, used)
		act, acting = g.decide(reason, used, now), true
	case g.hasE && !estimated && g.co.Context().TimersDue():
		// A runtime timer has expired while this guest holds the worker:
		// fire it onto this worker and give way, so that the woken task
		// runs now instead of at the guest's next deadline.
		g.co.Context().FireTimers()
		reason = ReasonEpoch
		act, acting = g.giveWay(used, now)
	case g.hasE && g.co.Context().RemoteWorkWaiting():
		// A task woken or spawned from outside waits in the injector: give
		// way likewise (a worker with deferred tasks takes the injector
		// first), so an external wake does not wait for a whole slice.
		reason, now = ReasonEpoch, g.reading(now, estimated, used)
		act, acting = g.giveWay(used, now)
	}
	if acting {
		switch act.Kind {
		case ActYield, ActYieldCustom:
			sh := g.e.stats.shard(g.co.Context().WorkerID())
			path := g.countYield(sh, reason, act)
			var s suspension
			if now < 0 {
				s = g.suspendingUntimed(sh) // fuel mode, constant policy: the time is for stats only
			} else {
				s = g.suspendingOn(sh, now)
			}
			if act.Kind == ActYieldCustom {
				scheduler.Await(g.co, act.Future)
			} else {
				// g.co.YieldVia(path), written so that it inlines: the
				// worker requeues a task that parks with a yield set.
				g.co.Context().YieldVia(path)
				g.co.Park()
			}
			now = g.resumed(s)
		case ActTrap:
			g.policyTrap(act.Err)
		}
		g.rearm(reason, act, used, now)
	}
	v := g.arm(used)
	if g.hasE && g.skips.attn != nil {
		g.armSkips(used, v)
	}
}

// reading is now if it is a clock reading, else (an estimate) a new
// reading at consumption used.
func (g *guest) reading(now int64, estimated bool, used int64) int64 {
	if estimated {
		return g.clock.read(used)
	}
	return now
}

// giveWay asks the policy, as at an epoch deadline, and returns its
// answer to act on only if it is a deferred yield, a custom yield or a
// trap: only then does the worker get to the woken task (an immediate
// yield puts the guest straight back in front of it, and repeating that at
// every check would only shred the guest's slices).
func (g *guest) giveWay(used, now int64) (*Action, bool) {
	act := g.decide(ReasonEpoch, used, now)
	if act.Kind == ActContinue || (act.Kind == ActYield && g.resolvePath(act.Path) == scheduler.PathImmediate) {
		return act, false
	}
	g.stats.GiveWayYields++
	return act, true
}

func (g *guest) info(reason Reason, used, now int64) GuestInfo {
	cx := g.co.Context()
	return GuestInfo{Name: g.name, Task: cx.TaskID(), Worker: cx.WorkerID(), Epoch: g.e.epochAt(now),
		FuelUsed: used, Yields: g.stats.Yields(), Reason: reason}
}

func (g *guest) resolvePath(p scheduler.YieldPath) scheduler.YieldPath {
	if p == scheduler.PathDefault {
		return g.co.Context().Runtime().DefaultYield()
	}
	return p
}

// decide is the policy's action at a deadline: a built-in constant
// policy's without a call, or the policy's answer. now is the clock
// reading, or -1 if none was taken yet; one is taken for GuestInfo. The
// action is returned by reference (it is 56 bytes, and the check is the
// hot path of every suspension): it stays valid until the next decide.
func (g *guest) decide(reason Reason, used, now int64) *Action {
	if g.hasConst {
		return &g.constAct
	}
	return g.ask(reason, used, now)
}

// ask is decide for a policy that is not constant.
func (g *guest) ask(reason Reason, used, now int64) *Action {
	if now < 0 {
		now = nanos()
	}
	g.policyAct = g.callPolicy(g.info(reason, used, now))
	return &g.policyAct
}

// countYield counts a yield the policy asked for, at reason, on the
// worker's shard sh, and returns the path it takes (PathDefault resolved;
// unused for a custom yield).
func (g *guest) countYield(sh *counterShard, reason Reason, act *Action) scheduler.YieldPath {
	if reason == ReasonFuel {
		g.stats.FuelYields++
	} else {
		g.stats.EpochYields++
	}
	if act.Kind == ActYieldCustom {
		g.stats.Custom++
		sh.yields[reason][pathCustom].Inc()
		return scheduler.PathDefault
	}
	path := g.resolvePath(act.Path)
	if path == scheduler.PathImmediate {
		g.stats.Immediate++
		sh.yields[reason][pathImmediate].Inc()
	} else {
		g.stats.Deferred++
		sh.yields[reason][pathDeferred].Inc()
	}
	return path
}

// rearm sets the next deadlines after the check acted on act at
// consumption used; now is the clock reading after any suspension (-1 if
// none was taken: fuel mode). Time spent suspended is not charged.
func (g *guest) rearm(reason Reason, act *Action, used, now int64) {
	suspended := act.Kind != ActContinue
	if reason == ReasonFuel {
		slice := int64(act.Delta)
		if slice <= 0 {
			slice = g.opts.FuelSlice
		}
		g.sliceEnd = used + slice
	}
	if g.hasE && (reason == ReasonEpoch || suspended) {
		delta := g.opts.EpochDeadline
		if reason == ReasonEpoch && act.Delta > 0 {
			delta = act.Delta
		}
		g.armEpoch(delta, now)
	}
}

// policyTrap stops the guest as its policy said.
func (g *guest) policyTrap(err error) {
	if err == nil {
		err = errors.New("trapped by policy")
	}
	g.fail(ErrPolicyTrap, err)
	panic(stop{})
}

// callPolicy asks the policy. A panicking policy is the embedder's bug: the
// guest fails with ErrEmbedder, not as a trap of its own.
func (g *guest) callPolicy(info GuestInfo) Action {
	defer func() {
		if v := recover(); v != nil {
			g.fail(ErrEmbedder, &PanicError{Where: "policy", Value: v, Stack: debug.Stack()})
			panic(stop{})
		}
	}()
	return g.policy(info)
}

// armEpoch sets the epoch deadline delta epochs from now. Epochs are
// counted from this moment — elapsed EpochTicks plus IncrementEpoch calls
// — not to the next boundary of the engine's tick grid, so every slice is a
// full delta long: with grid deadlines a guest resumed just before a
// boundary would get a sliver of a slice, and guests sharing a worker
// would get unequal shares.
func (g *guest) armEpoch(delta uint64, now int64) {
	g.armedAt, g.armedBump, g.epochDelta = now, g.e.bump.Load(), delta
	g.clock.restart(now, g.consumed())
}

// epochDeadline is the nanos() time at which the guest reaches its epoch
// deadline: epochDelta epochs after the arming, counting the epochs
// IncrementEpoch added since (the arming time itself if they reach it).
// The guest has reached it at a reading now iff now >= epochDeadline():
// the epochs between the arming and now are (now−armedAt)/EpochTick plus
// the increments, and this is that comparison without the division. A
// deadline too far to represent is MaxInt64/2 (never, in practice).
func (g *guest) epochDeadline() int64 {
	bumps := g.e.bump.Load() - g.armedBump
	if bumps >= g.epochDelta {
		return g.armedAt
	}
	left, tick := g.epochDelta-bumps, uint64(g.e.cfg.EpochTick)
	if left > uint64(math.MaxInt64/4)/tick {
		return math.MaxInt64 / 2
	}
	return g.armedAt + int64(left*tick)
}

// suspension is a suspension of the guest in progress: the shard that
// counts it, the clock reading at its start, and the worker and its poll
// sequence then (scheduler.Context.PollSeq).
type suspension struct {
	sh     *counterShard
	start  int64
	worker int
	seq    uint64
}

// suspending counts the guest as suspended on its worker's shard, about to
// suspend at clock reading now (-1: none taken yet, read it).
func (g *guest) suspending(now int64) suspension {
	if now < 0 {
		now = nanos()
	}
	return g.suspendingOn(g.e.stats.shard(g.co.Context().WorkerID()), now)
}

// suspendingOn is suspending at clock reading now (or -1: see
// suspendingUntimed), counted on sh, the worker's shard.
func (g *guest) suspendingOn(sh *counterShard, now int64) suspension {
	if g.skips.armed != 0 {
		g.stopSkips()
	}
	cx := g.co.Context()
	s := suspension{sh: sh, start: now, worker: cx.WorkerID(), seq: cx.PollSeq()}
	sh.suspended.Inc()
	g.openWait = sh
	return s
}

// suspendingUntimed is suspending without a clock reading: the worker
// stamps the wait's start when it moves on (scheduler.Context.
// StampWhenLeft), so a hop, the common case of a lone guest, reads no
// clock at all. The resumption's now is then -1 after a hop. leftAt is 0
// here but after a steal race (StampWhenLeft), so it is reset only then.
func (g *guest) suspendingUntimed(sh *counterShard) suspension {
	s := g.suspendingOn(sh, -1)
	if g.leftAt.Load() != 0 {
		g.leftAt.Store(0)
	}
	g.co.Context().StampWhenLeft(&g.leftAt)
	return s
}

// resumed accounts for the suspension s and returns the clock reading at
// the resumption. A resumption that is the worker's next poll (PollSeq
// one past s's, on the same worker) was a hop of the scheduler (a
// microsecond or less: see scheduler.Context.PollSeq): it counts as no
// time suspended and needs no clock read, a tenth of a suspend + resume
// round trip. Any other resumption takes the reading the worker took as
// the poll began (scheduler.Context.PollBegan: when it moved on from a
// guest that suspended untimed, as another guest on the worker does), or
// reads the clock.
func (g *guest) resumed(s suspension) int64 {
	s.sh.suspended.Dec()
	g.openWait = nil
	now := s.start
	cx := g.co.Context()
	if cx.WorkerID() != s.worker || cx.PollSeq() != s.seq+1 {
		if now = cx.PollBegan(); now == 0 {
			now = nanos()
		}
		start := s.start
		if start < 0 { // suspendingUntimed
			if start = g.leftAt.Swap(0); start == 0 {
				start = now // stolen before its worker moved on: a moment
			}
		}
		g.stats.Suspended += time.Duration(now - start)
	}
	g.notePollOn(cx.WorkerID())
	return now
}

func (g *guest) notePoll() { g.notePollOn(g.co.Context().WorkerID()) }

// notePollOn counts a poll of the guest on worker w.
func (g *guest) notePollOn(w int) {
	g.stats.Polls++
	if g.lastWorker >= 0 && w != g.lastWorker {
		g.stats.Migrations++
	}
	g.lastWorker = w
}
