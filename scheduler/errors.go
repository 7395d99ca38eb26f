package scheduler

import (
	"errors"
	"fmt"
)

var (
	// ErrAborted is the result of a task stopped by JoinHandle.Abort.
	ErrAborted = errors.New("scheduler: task aborted")
	// ErrShutdown is the result of a task cancelled because the runtime
	// shut down, or spawned after Shutdown began.
	ErrShutdown = errors.New("scheduler: runtime shut down")
)

// PanicError is the result of a task whose poll panicked. The worker that
// ran it recovers and keeps running.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the panicking goroutine's stack (debug.Stack)
}

func (e *PanicError) Error() string { return fmt.Sprintf("scheduler: task panicked: %v", e.Value) }

// Unwrap returns the panic value if it is an error, so errors.Is/As see it.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
