package wasmtask

import (
	"context"
	"runtime/pprof"
)

// guestLabels is the pprof label set wasm_guest=name, in the context that
// pprof.SetGoroutineLabels takes.
type guestLabels struct {
	name string
	ctx  context.Context
}

// labelContext returns the context carrying the pprof label
// wasm_guest=name. The last one made is kept and shared by the next guests
// of the same name (usually all of a service's guests, or long runs of
// them): a label set is immutable, and a goroutine keeps only a pointer to
// it, so each guest's goroutine does not hold its own copy (56 bytes, two
// allocations).
func (e *Engine) labelContext(name string) context.Context {
	if l := e.labels.Load(); l != nil && l.name == name {
		return l.ctx
	}
	l := &guestLabels{name: name, ctx: pprof.WithLabels(context.Background(), pprof.Labels("wasm_guest", name))}
	e.labels.Store(l)
	return l.ctx
}
