package wasmtask

// Skipped polls. In epoch mode a guest calls the check every PollInterval
// fuel, and most of those calls find nothing to do: the clock is
// estimated (epochclock.go), no deadline is near, no timer is due, nothing
// waits in the injector. Each still costs a host call through wazero,
// which evicts some of the guest's working set, so epoch mode ran
// measurably slower than fuel mode with the same counting.
//
// Modules are instrumented with instrument.Config.PollSkipping: the
// slow-path helper refills the counter by PollInterval itself, without a
// host call, while the guest's skip global is positive and its attention
// global is zero. At each real check the host sets skip to the polls it
// would have answered with an estimate and nothing to do:
//
//   - no more than the estimator would have allowed on its own: until the
//     estimate covers half the time left to the next event (the epoch
//     deadline, the runtime's earliest timer), and maxEstimatedChecks
//     estimates in a row (skipped polls count as estimates);
//   - within the fuel budget and the fuel slice, so the real check that
//     enforces them is never skipped;
//   - none unless the attention word can be watched: the guest's own
//     attention global, registered with the worker for the rest of the
//     poll (scheduler.Context.SetAttention). The runtime sets it when a
//     task is pushed to the injector or a timer becomes the earliest,
//     which is what the check gives way to between deadlines, so external
//     wakes and new timers are seen at the next poll as before.
//
// Abort of a running task (and so a cancelled context, and Shutdown) sets
// the word too. What is not signalled, IncrementEpoch, is seen at the next
// real check, within maxEstimatedChecks polls (about a hundred
// microseconds of guest time at the default interval), as it was with the
// estimator already.
//
// Only wazero's compiler gets skips: the attention word is written by
// other goroutines while the guest reads it, which its machine code does
// with a plain load but the interpreter would do in Go code, racing.
//
// Accounting: each refill by the guest adds PollInterval to its counter,
// a write in the instrumenter's contract, so credit grows by PollInterval
// per skipped poll (takeSkips) and fuel stays exact.

import (
	"sync/atomic"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmsched/wasmsched/wasmtask/instrument"
)

// minSkipRefill is the shortest PollInterval with which guests skip
// polls. An interval that short is chosen for latency, not throughput,
// and the counter's overshoot at a check point (a loop iteration, a
// straight-line segment) can exceed it, which makes the guest call the
// check anyway: the skips would cost the check their arming and save
// nothing.
const minSkipRefill = 1_000

// pollSkip is a guest's poll-skipping globals and what the host last
// armed.
type pollSkip struct {
	skip   fuelGlobal // refills the guest may still do on its own
	attn   *uint64    // the attention word; nil: the guest never skips
	refill int64      // what a refill adds: the engine's PollInterval
	armed  int64      // skip's value as the host last wrote it
	// regWorker and regSeq identify the poll in which attn was last
	// registered (scheduler.Context.PollSeq): the registration lasts
	// until that poll ends.
	regWorker int
	regSeq    uint64
}

// findSkip finds mod's poll-skipping globals (with the fuel global) and
// writes the refill once.
func (g *guest) findSkip(mod api.Module) {
	g.skips = pollSkip{}
	sg, _ := mod.ExportedGlobal(instrument.SkipExport).(api.MutableGlobal)
	rg, _ := mod.ExportedGlobal(instrument.RefillExport).(api.MutableGlobal)
	ag, _ := mod.ExportedGlobal(instrument.AttentionExport).(api.MutableGlobal)
	if sg == nil || rg == nil || ag == nil || sg.Get() != 0 || g.e.cfg.PollInterval < minSkipRefill {
		return
	}
	attn, compiled := cellOf(ag, &g.m.attnOffset)
	if attn == nil || !compiled {
		return
	}
	rg.Set(uint64(g.e.cfg.PollInterval))
	g.skips = pollSkip{skip: newGlobalCell(sg, &g.m.skipOffset), attn: attn, refill: g.e.cfg.PollInterval, regWorker: -1}
}

// pendingSkips is the fuel the guest has added by its own refills since
// the host last armed skip. Callers test g.skips.armed != 0 first (inline,
// on the hot paths), as for takeSkips.
func (g *guest) pendingSkips() int64 {
	return (g.skips.armed - int64(g.skips.skip.Get())) * g.skips.refill
}

// takeSkips folds the guest's own refills since the last arming into
// credit, and counts them as estimated checks.
func (g *guest) takeSkips() {
	left := int64(g.skips.skip.Get())
	taken := g.skips.armed - left
	g.credit += taken * g.skips.refill
	g.clock.estimates += int(taken)
	g.stats.SkippedChecks += taken
	g.skips.armed = left
}

// stopSkips takes the guest's refills and allows no more until the next
// real check: it is about to suspend, and the attention word it watched
// is unregistered with the poll.
func (g *guest) stopSkips() {
	if g.skips.armed == 0 {
		return
	}
	g.takeSkips()
	g.skips.skip.Set(0)
	g.skips.armed = 0
}

// clearAttention clears the attention word at a real check, before the
// check looks at what it signals.
func (g *guest) clearAttention() {
	if a := g.skips.attn; a != nil && atomic.LoadUint64(a) != 0 {
		atomic.StoreUint64(a, 0)
	}
}

// armSkips sets how many polls the guest may skip after a real check at
// consumption used, whose counter was armed with v; the guest is in epoch
// mode and has an attention word (the caller tests both).
//
// The attention word is registered before the injector and the timers are
// looked at, and a push or a timer insertion stores its data before it
// looks for a registered word (all sequentially consistent atomics): so
// either the runtime sets the word, or this check sees what it would have
// signalled and allows no skip.
func (g *guest) armSkips(used, v int64) {
	k := int64(0)
	if v == g.skips.refill && g.clock.nsPerFuel > 0 {
		cx := g.co.Context()
		if w, seq := cx.WorkerID(), cx.PollSeq(); w != g.skips.regWorker || seq != g.skips.regSeq {
			cx.SetAttention(g.skips.attn)
			g.skips.regWorker, g.skips.regSeq = w, seq
		}
		if !cx.RemoteWorkWaiting() {
			k = g.skipsAllowed(used)
		}
	}
	if k != g.skips.armed {
		g.skips.skip.Set(uint64(k))
		g.skips.armed = k
	}
}

// skipsAllowed is armSkips' number (see the file's comment).
func (g *guest) skipsAllowed(used int64) int64 {
	p := g.skips.refill
	k := int64(maxEstimatedChecks-g.clock.estimates) - 1
	// The estimator estimates while the estimate stays short of half the
	// time from its last reading to the next event; the check after the
	// last skip must come no later.
	next := g.nextEvent(g.epochDeadline())
	allowed := float64(next-g.clock.readAt)/2/g.clock.nsPerFuel - float64(used-g.clock.usedAt)
	if allowed < float64(2*p) {
		return 0
	}
	k = min(k, int64(allowed)/p-1)
	if g.opts.FuelBudget > 0 {
		k = min(k, (g.opts.FuelBudget-used)/p-1)
	}
	if g.hasF {
		k = min(k, (g.sliceEnd-used)/p-1)
	}
	return max(k, 0)
}
