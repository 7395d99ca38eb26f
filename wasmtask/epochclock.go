package wasmtask

import "math"

// The epoch check's clock. A guest in epoch mode checks in every
// PollInterval fuel (microseconds of guest time), and a clock read there,
// with the guest's code and data in the caches instead of the vDSO's,
// costs about half of the check. So most checks estimate the time instead,
// from the fuel used since the last read and the rate the guest has been
// running at (nanoseconds per fuel, measured between reads), and read the
// clock only when
//
//   - the estimate has covered half of the time left until the next event
//     (the guest's epoch deadline, the runtime's earliest timer), so a
//     guest running at least half as fast as estimated is never late by
//     more than the halving's last step: about log2(slice / check
//     interval) reads per slice instead of one per check;
//   - maxEstimatedChecks checks have passed since the last read, which
//     bounds the lateness of any misestimate (a guest whose rate changed,
//     time spent in a host function) by that many poll intervals;
//   - something is to be done: a deadline reached by a manual
//     IncrementEpoch, remote work to give way to. Every action, every
//     suspension's start and every deadline is taken on a real reading.
//
// Cancellation, the fuel budget and remote work need no clock and are
// tested at every check, as before.

// maxEstimatedChecks is how many checks in a row may go on an estimate.
const maxEstimatedChecks = 64

// epochClock is the clock of one guest's epoch checks.
type epochClock struct {
	readAt    int64   // nanos() at the last clock read (or resumption)
	usedAt    int64   // fuel consumed then
	nsPerFuel float64 // the guest's running rate, 0 until measured
	estimates int     // checks on an estimate since the last read
	rtOffset  int64   // nanos() minus the runtime's Now(), for its timers
}

// restart sets the clock at a real reading now with used consumed: after
// a suspension (time passed without fuel) or at a run's start.
func (c *epochClock) restart(now, used int64) {
	c.readAt, c.usedAt, c.estimates = now, used, 0
}

// read reads the clock at consumption used and updates the rate.
func (c *epochClock) read(used int64) int64 {
	now := nanos()
	if df := used - c.usedAt; df > 0 {
		rate := float64(now-c.readAt) / float64(df)
		if c.nsPerFuel == 0 {
			c.nsPerFuel = rate
		} else {
			c.nsPerFuel += (rate - c.nsPerFuel) / 4
		}
	}
	c.restart(now, used)
	return now
}

// now returns the time at consumption used, estimated (true) if it is
// safely short of next (a nanos() time: the next event), else read.
func (c *epochClock) now(used, next int64) (int64, bool) {
	if c.nsPerFuel > 0 && c.estimates < maxEstimatedChecks {
		est := c.readAt + int64(float64(used-c.usedAt)*c.nsPerFuel)
		if est-c.readAt < (next-c.readAt)/2 {
			c.estimates++
			return est, true
		}
	}
	return c.read(used), false
}

// nextEvent is the nanos() time of the guest's next event: its epoch
// deadline (epochDeadline's), or the runtime's earliest timer if sooner.
func (g *guest) nextEvent(deadline int64) int64 {
	next := deadline
	if due, ok := g.co.Context().NextTimer(); ok && due < math.MaxInt64/2 {
		next = min(next, int64(due)+g.clock.rtOffset)
	}
	return next
}
