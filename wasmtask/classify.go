package wasmtask

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/tetratelabs/wazero/sys"
	"github.com/wasmsched/wasmsched/scheduler"
)

// How a guest's end becomes a Result or an *Error of the right kind.

// budgetCheck catches a budget overrun in the last segment before return,
// which no check point follows: the budget is exact for a whole call (it
// fails iff the guest consumed more than the budget).
func (g *guest) budgetCheck() error {
	if g.opts.FuelBudget > 0 && g.fuel.ok() && g.consumed() > g.opts.FuelBudget {
		return g.fail(ErrOutOfFuel, fmt.Errorf("used %d of %d", g.consumed(), g.opts.FuelBudget))
	}
	return nil
}

// fail records the guest's failure (the first one wins).
func (g *guest) fail(kind, cause error) error {
	if g.failure == nil {
		g.failure = &Error{Kind: kind, Cause: cause, Guest: g.name}
	}
	return g.failure
}

// classify turns the error of an instantiation or a call into an *Error.
// A guest that failed after a memory.grow was refused (a C guest's abort
// on a failed malloc, a Go guest's "out of memory" exit) failed because of
// its memory bound: it is reported as ErrMemoryLimit, with both causes.
func (g *guest) classify(err error, instantiating bool) error {
	if g.failure != nil {
		return g.failure
	}
	if reason := g.co.CancelReason(); reason != nil {
		return g.fail(reason, g.cancelCause(reason)) // Kind scheduler.ErrAborted or ErrShutdown
	}
	memory := func() error {
		return g.fail(ErrMemoryLimit, &afterRefusal{refusal: g.mem.refusal, err: err})
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch {
		case exit.ExitCode() == 0:
			return nil
		case g.mem.refusal != nil:
			return memory()
		}
		return g.fail(ErrExit, err)
	}
	switch {
	case isTrap(err):
		if g.mem.refusal != nil {
			return memory()
		}
		return g.fail(ErrTrap, err)
	case instantiating && g.mem.refusal != nil:
		return memory()
	case strings.Contains(err.Error(), "(recovered by wazero)"):
		return g.fail(ErrHost, err) // a Go panic inside one of wazero's WASI functions
	case instantiating && strings.Contains(err.Error(), "not instantiated"):
		return g.fail(ErrInvalidModule, err) // an import the engine's checks missed
	case instantiating:
		return g.fail(ErrInstantiate, err)
	}
	return g.fail(ErrTrap, err)
}

// cancelCause is why an aborted guest was aborted when its context's end
// did it: context.Cause of the run's context. Otherwise nil (Abort,
// Shutdown).
func (g *guest) cancelCause(reason error) error {
	if reason == scheduler.ErrAborted && g.ctx.Err() != nil {
		return context.Cause(g.ctx)
	}
	return nil
}

// segmentOutOfBounds is how wazero reports an active data or element
// segment that does not fit (a trap, in the spec's terms).
var segmentOutOfBounds = regexp.MustCompile(`^(data|element|elem)\[\d+\]: out of bounds`)

// isTrap reports whether err is a Wasm trap: wazero's runtime error (its
// type is internal: "wasm error: ..." from a call, bare inside a start
// function's failure) or a segment out of bounds at instantiation.
func isTrap(err error) bool {
	if strings.Contains(err.Error(), "wasm error:") {
		return true
	}
	for e := range errorChain(err) {
		if fmt.Sprintf("%T", e) == "*wasmruntime.Error" || segmentOutOfBounds.MatchString(e.Error()) {
			return true
		}
	}
	return false
}

// errorChain yields err and everything it wraps.
func errorChain(err error) iter.Seq[error] {
	return func(yield func(error) bool) {
		stack := []error{err}
		for len(stack) > 0 {
			e := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if e == nil {
				continue
			}
			if !yield(e) {
				return
			}
			switch u := e.(type) {
			case interface{ Unwrap() error }:
				stack = append(stack, u.Unwrap())
			case interface{ Unwrap() []error }:
				stack = append(stack, u.Unwrap()...)
			}
		}
	}
}

// afterRefusal is the cause of a guest that failed after its memory bound
// refused a grow: the refusal and how the guest ended.
type afterRefusal struct {
	refusal *memoryRefusal
	err     error
}

func (a *afterRefusal) Error() string {
	return fmt.Sprintf("%v; the guest then failed: %v", a.refusal, a.err)
}

func (a *afterRefusal) Unwrap() []error { return []error{a.refusal, a.err} }

// hostFailure records a host function's panic (an embedder bug) and stops
// the guest.
func (g *guest) hostFailure(fn string, v any) {
	if scheduler.IsUnwind(v) {
		panic(v) // cancellation must pass through
	}
	if _, ok := v.(stop); ok {
		panic(v)
	}
	g.fail(ErrEmbedder, &PanicError{Where: "host function " + fn, Value: v, Stack: debug.Stack()})
	panic(stop{})
}
