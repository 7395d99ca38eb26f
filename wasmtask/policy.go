package wasmtask

import (
	"reflect"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
)

// Reason says why the deadline policy was consulted.
type Reason uint8

const (
	// ReasonEpoch: the engine's epoch reached the guest's deadline.
	ReasonEpoch Reason = iota
	// ReasonFuel: the guest spent its fuel slice.
	ReasonFuel
	// ReasonSchedYield: the guest called WASI sched_yield. The policy's
	// answer is carried out as at a deadline (Delta is ignored); Continue
	// returns to the guest at once.
	ReasonSchedYield
)

func (r Reason) String() string {
	switch r {
	case ReasonFuel:
		return "fuel"
	case ReasonSchedYield:
		return "sched_yield"
	}
	return "epoch"
}

// GuestInfo is what a deadline policy sees.
type GuestInfo struct {
	Name     string
	Task     scheduler.TaskID
	Worker   int    // the worker running the guest now
	Epoch    uint64 // the engine's epoch now
	FuelUsed int64  // fuel consumed so far (exact at this point)
	Yields   int64  // yields so far
	Reason   Reason
}

// ActionKind is what a policy decides.
type ActionKind uint8

const (
	// ActContinue keeps running with a new deadline.
	ActContinue ActionKind = iota
	// ActYield suspends the guest and re-enters it through a yield path.
	ActYield
	// ActYieldCustom suspends the guest until a future completes.
	ActYieldCustom
	// ActTrap stops the guest with an error.
	ActTrap
)

// Action is a policy's decision. Build it with Continue, Yield,
// YieldCustom or Trap.
//
// Delta sets the next deadline: for ReasonEpoch, epochs from now (0: the
// guest's Options.EpochDeadline); for ReasonFuel, the fuel of the next
// slice (0: Options.FuelSlice).
type Action struct {
	Kind   ActionKind
	Delta  uint64
	Path   scheduler.YieldPath
	Future scheduler.Future[struct{}]
	Err    error
}

// Continue keeps the guest running with a new deadline delta away.
func Continue(delta uint64) Action { return Action{Kind: ActContinue, Delta: delta} }

// Yield suspends the guest and re-enters it through path (PathImmediate,
// PathDeferred, or PathDefault for the runtime's default).
func Yield(delta uint64, path scheduler.YieldPath) Action {
	return Action{Kind: ActYield, Delta: delta, Path: path}
}

// YieldCustom suspends the guest until f completes (a Sleep, a token
// bucket, a per-tenant gate), then resumes it with a new deadline.
func YieldCustom(delta uint64, f scheduler.Future[struct{}]) Action {
	return Action{Kind: ActYieldCustom, Delta: delta, Future: f}
}

// Trap stops the guest; its JoinHandle returns an *Error of kind
// ErrPolicyTrap wrapping err.
func Trap(err error) Action { return Action{Kind: ActTrap, Err: err} }

// Policy decides what happens at a deadline. It runs on the guest's task,
// inside the guest's check call: keep it short and do not block.
type Policy func(GuestInfo) Action

// YieldPolicy always yields through path with the guest's default delta.
func YieldPolicy(path scheduler.YieldPath) Policy {
	switch path {
	case scheduler.PathDefault:
		return yieldDefault
	case scheduler.PathImmediate:
		return yieldImmediate
	case scheduler.PathDeferred:
		return yieldDeferred
	}
	return func(GuestInfo) Action { return Yield(0, path) }
}

// DeferredYield is the default policy: Tokio's yield_now.
func DeferredYield() Policy { return yieldDeferred }

// ImmediateYield self-wakes the guest (LIFO slot if enabled, stealable).
func ImmediateYield() Policy { return yieldImmediate }

// NeverYield lets the guest run to completion (no preemption; for
// comparisons).
func NeverYield() Policy { return neverYield }

// The built-in constant policies are functions, not closures, so that a
// guest can tell them apart (constantAction) and skip the policy call at
// its deadlines: they ignore GuestInfo and cannot panic.
func yieldDefault(GuestInfo) Action   { return Yield(0, scheduler.PathDefault) }
func yieldImmediate(GuestInfo) Action { return Yield(0, scheduler.PathImmediate) }
func yieldDeferred(GuestInfo) Action  { return Yield(0, scheduler.PathDeferred) }
func neverYield(GuestInfo) Action     { return Continue(0) }

// constantAction returns the action of a built-in constant policy, and
// false for any other policy. A function value's code pointer identifies
// a top-level function; no closure shares it.
func constantAction(p Policy) (Action, bool) {
	code := reflect.ValueOf(p).Pointer()
	for _, c := range [...]Policy{yieldDefault, yieldImmediate, yieldDeferred, neverYield} {
		if reflect.ValueOf(c).Pointer() == code {
			return c(GuestInfo{}), true
		}
	}
	return Action{}, false
}

// SleepPolicy suspends the guest for d at every deadline (throttling).
func SleepPolicy(d time.Duration) Policy {
	return func(GuestInfo) Action { return YieldCustom(0, scheduler.Sleep(d)) }
}
