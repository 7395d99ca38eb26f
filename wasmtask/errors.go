package wasmtask

import (
	"errors"
	"fmt"
)

// Error kinds. A guest that fails returns an *Error whose Kind is one of
// these (or scheduler.ErrAborted / scheduler.ErrShutdown); errors.Is
// matches the kind and the underlying cause.
var (
	ErrTrap        = errors.New("wasmtask: guest trapped")
	ErrOutOfFuel   = errors.New("wasmtask: guest ran out of fuel")
	ErrMemoryLimit = errors.New("wasmtask: guest hit its memory limit")
	ErrInstantiate = errors.New("wasmtask: guest instantiation failed")
	ErrHost        = errors.New("wasmtask: host function failed")
	ErrPolicyTrap  = errors.New("wasmtask: deadline policy trapped the guest")
	ErrExit        = errors.New("wasmtask: guest exited with a non-zero code")
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

// HostPanicError is the cause of an ErrHost failure when a host function
// panicked.
type HostPanicError struct {
	Function string
	Value    any
	Stack    []byte
}

func (e *HostPanicError) Error() string {
	return fmt.Sprintf("host function %s panicked: %v", e.Function, e.Value)
}
