package wasmtask

import (
	"errors"
	"fmt"
)

// Error kinds. A guest that fails returns an *Error whose Kind is one of
// these (or scheduler.ErrAborted / scheduler.ErrShutdown); errors.Is
// matches the kind and the underlying cause. They fall in four families,
// which a service maps to its own answers (see FailureClass):
//
//   - the module is invalid: ErrInvalidModule (it does not decode or
//     validate, exceeds a limit, or imports what the engine does not
//     provide). Engine.Compile returns it; no guest of it ever runs.
//   - the call is wrong: ErrUsage (no such export, an export that is not a
//     function, a wrong number of arguments, a module or engine closed).
//   - the guest failed: ErrTrap, ErrOutOfFuel, ErrMemoryLimit, ErrExit,
//     ErrHost (a host function returned an error), ErrPolicyTrap (the
//     deadline policy stopped it), ErrInstantiate (instantiation failed for
//     another reason).
//   - the embedder failed: ErrEmbedder (a Policy or a host function
//     panicked). The cause is a *PanicError carrying the value and stack.
var (
	ErrInvalidModule = errors.New("wasmtask: invalid module")
	ErrUsage         = errors.New("wasmtask: invalid call")
	ErrTrap          = errors.New("wasmtask: guest trapped")
	ErrOutOfFuel     = errors.New("wasmtask: guest ran out of fuel")
	ErrMemoryLimit   = errors.New("wasmtask: guest hit its memory limit")
	ErrInstantiate   = errors.New("wasmtask: guest instantiation failed")
	ErrHost          = errors.New("wasmtask: host function failed")
	ErrPolicyTrap    = errors.New("wasmtask: deadline policy trapped the guest")
	ErrExit          = errors.New("wasmtask: guest exited with a non-zero code")
	ErrEmbedder      = errors.New("wasmtask: embedder code panicked")
)

// Error is a failed guest's outcome (Kind scheduler.ErrAborted or
// scheduler.ErrShutdown for a cancelled one): what kind of failure, its cause, and
// the guest's counters at the end.
type Error struct {
	Kind  error
	Cause error
	Guest string
	Stats GuestStats
}

func (e *Error) Error() string {
	name := e.Guest
	if name == "" {
		name = "guest"
	}
	if e.Cause == nil {
		return fmt.Sprintf("%s: %v", name, e.Kind)
	}
	return fmt.Sprintf("%s: %v: %v", name, e.Kind, e.Cause)
}

// Unwrap returns the kind and the cause, so errors.Is/As see both.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

// PanicError is the cause of an ErrEmbedder failure: embedder code that
// runs on the guest's task panicked. Where says which code ("policy", or
// "host function MODULE.NAME").
type PanicError struct {
	Where string
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("%s panicked: %v", e.Where, e.Value)
}

// HostPanicError is kept as the name of a host function's panic: it is the
// same type as PanicError.
type HostPanicError = PanicError

// ImportError is the cause of an ErrInvalidModule failure from
// Engine.Compile when the module imports something the engine does not
// provide (or provides with another signature).
type ImportError struct {
	Module, Name string
	Kind         string // "function", "memory", "table", "global", "tag"
	Reason       string // e.g. "not provided", "signature (i32) -> () but the engine provides (i64) -> ()"
}

func (e *ImportError) Error() string {
	return fmt.Sprintf("import %s %s.%s: %s", e.Kind, e.Module, e.Name, e.Reason)
}

// FailureClass is the family of a guest error (see the Err* kinds).
type FailureClass uint8

const (
	ClassNone          FailureClass = iota // not a failure (nil error)
	ClassInvalidModule                     // ErrInvalidModule
	ClassUsage                             // ErrUsage
	ClassGuest                             // the guest failed (trap, fuel, memory, exit, host error, policy)
	ClassEmbedder                          // ErrEmbedder
	ClassCancelled                         // scheduler.ErrAborted or ErrShutdown
	ClassOther                             // not a wasmtask error (a context error, say)
)

func (c FailureClass) String() string {
	return [...]string{"none", "invalid_module", "usage", "guest", "embedder", "cancelled", "other"}[c]
}
