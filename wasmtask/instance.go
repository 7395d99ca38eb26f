package wasmtask

// Instance: a module instantiated once and called many times, with its
// state (linear memory, globals, tables) kept between calls.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmsched/wasmsched/scheduler"
)

// ErrPoisoned is the cause of the ErrUsage error of a call on an Instance
// whose earlier call failed part-way (a trap, the fuel budget, the memory
// bound, a host error, a cancellation): the guest's state is then whatever
// the failed call left, so the instance takes no more calls until Reset.
var ErrPoisoned = errors.New("wasmtask: instance poisoned by a failed call")

// errInstanceClosed is the cause of the ErrUsage error of a call on a
// closed Instance.
var errInstanceClosed = errors.New("instance closed")

// Instance is a long-lived instance of a module — a plugin: instantiated
// (and, for a reactor, initialized) once by NewInstance, then called any
// number of times; linear memory, globals and tables persist from one call
// to the next.
//
// An instance has a task of the runtime that instantiates it and then
// runs its calls, parked between them (actor.go). Each call is preemptible
// like a one-shot guest, with its own fuel budget, slice, deadline policy
// and GuestStats (the Options given to NewInstance apply to every call,
// and to _initialize).
// Calls on one instance run one at a time, in the order they arrive:
// wazero instances do not take concurrent calls. For concurrent calls use
// several instances (Pool).
//
// A call that fails once the guest has started running it (a trap, the fuel
// budget, the memory bound, a host function's error, a cancellation)
// poisons the instance: later calls fail with ErrUsage and ErrPoisoned
// until Reset, which instantiates the module afresh. A call refused before
// the guest runs (no such export, a wrong argument count, a context that
// had already ended) does not poison it.
//
// Call and the other methods block the calling goroutine until the call
// ends: call them from goroutines, not from inside a task of the same
// runtime (that would hold its worker).
type Instance struct {
	m    *Module
	s    scheduler.Spawner
	opts Options
	// sem is held by the call, Reset or Close in progress. A channel, not
	// a mutex: waiting for it honours the caller's context, and its
	// waiters are served in arrival order.
	sem chan struct{}

	// Owned by the holder of sem.
	g     *guest // the open guest, or nil after Close or a failed Reset
	actor *actor // g's task (actor.go), nil with g

	// Written by the holder of sem, under mu; read under mu.
	mu     sync.Mutex
	poison error // the failure of the call that poisoned the instance
	closed bool
}

// NewInstance instantiates m as an Instance whose task (which runs the
// instantiation and every call) is spawned on s. opts configures the instance (Name, Argv, Env, stdio, FS,
// MemoryLimitPages) and every call (Interrupt, EpochDeadline, FuelBudget,
// FuelSlice, Policy); Export and Args must be empty: they are the calls'.
// A reactor's _initialize is called here, inside a task, preemptibly and
// with the calls' fuel budget; the initialization's stats are in the
// returned error if it fails. A WASI command is refused (ErrUsage) unless
// opts.AllowCommandExports is set, in which case _start is not run.
//
// ctx bounds the instantiation; cancelling it later does not affect the
// instance.
func NewInstance(ctx context.Context, s scheduler.Spawner, m *Module, opts Options) (*Instance, error) {
	if opts.Export != "" || len(opts.Args) > 0 {
		return nil, &Error{Kind: ErrUsage, Cause: errors.New("Options.Export and Args are given to each call, not to NewInstance"), Guest: opts.Name}
	}
	if m.kind == KindCommand && !opts.AllowCommandExports {
		return nil, &Error{Kind: ErrUsage, Cause: fmt.Errorf("%w: it is not a reactor or a library (opt in with AllowCommandExports)", ErrCommandExport), Guest: opts.Name}
	}
	i := &Instance{m: m, s: s, opts: opts, sem: make(chan struct{}, 1)}
	if err := i.open(ctx); err != nil {
		return nil, err
	}
	return i, nil
}

// Module is the module the instance was made from.
func (i *Instance) Module() *Module { return i.m }

// open instantiates (and initializes) a fresh guest in a task of its own,
// which then runs the calls; the caller holds sem, or i is not yet shared.
func (i *Instance) open(ctx context.Context) error {
	g := newGuest(i.m, i.opts)
	g.noStart = true // a command's exports are called without _start (NewInstance)
	a, err := startActor(ctx, i.s, g)
	if err != nil {
		return err
	}
	i.g, i.actor = g, a
	return nil
}

// closeGuest stops the guest's task, which closes the guest; sem is held.
func (i *Instance) closeGuest() {
	if i.actor != nil {
		i.actor.shutdown()
	}
	i.g, i.actor = nil, nil
}

// acquire takes sem, or fails when ctx ends first.
func (i *Instance) acquire(ctx context.Context) error {
	select {
	case i.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &Error{Kind: scheduler.ErrAborted, Cause: context.Cause(ctx), Guest: i.opts.Name}
	}
}

func (i *Instance) release() { <-i.sem }

// usable says why the instance cannot take a call, or nil; sem is held.
func (i *Instance) usable() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	switch {
	case i.closed:
		return &Error{Kind: ErrUsage, Cause: errInstanceClosed, Guest: i.opts.Name}
	case i.poison != nil:
		return &Error{Kind: ErrUsage, Cause: fmt.Errorf("%w (%v): Reset it or Close it", ErrPoisoned, i.poison), Guest: i.opts.Name}
	case i.g == nil:
		return &Error{Kind: ErrUsage, Cause: errors.New("instance not instantiated (its last Reset failed)"), Guest: i.opts.Name}
	}
	return nil
}

// Call calls the exported function export with args as a task on the
// instance's runtime and waits for it: Result.Values are its results,
// Result.Stats this call's counters. It waits first for the calls before
// it on this instance. When ctx is cancelled or its deadline passes — while
// waiting, while running (at the guest's next check) or while suspended (at
// once) — Call returns an *Error of Kind scheduler.ErrAborted wrapping
// context.Cause(ctx); a call stopped while running poisons the instance.
// Host functions receive ctx (HostCall.Context).
func (i *Instance) Call(ctx context.Context, export string, args ...uint64) (Result, error) {
	return i.run(ctx, func() error { return i.m.exportProblem(export, args, true) },
		func(g *guest) ([]uint64, error) { return g.call(export, args) })
}

// CallBytes calls export with a byte slice and returns the bytes it
// answers, by the convention most plugin hosts use:
//
//   - the guest exports an allocator, named alloc, of type (i32) -> i32:
//     alloc(n) returns the address of n bytes the caller may write (0 when
//     it cannot);
//   - export has type (i32, i32) -> i64: it takes (ptr, len) of the input
//     and returns its output's address and length packed as
//     (ptr << 32) | len.
//
// The allocation, the copy in, the call and the copy out are one task:
// one Result (Values holds export's packed result), one fuel budget. The
// output is copied out of guest memory, so it stays valid after later
// calls. Memory the guest allocated is the guest's to reuse or free (a
// guest that never frees grows until its memory bound). An allocator
// that returns an address the input does not fit at, or a result outside
// guest memory, fails the call with ErrTrap (and poisons the instance, as
// any failure of the guest's).
func (i *Instance) CallBytes(ctx context.Context, alloc, export string, in []byte) ([]byte, Result, error) {
	var out []byte
	res, err := i.run(ctx, func() error { return i.m.bytesProblem(alloc, export, len(in)) },
		func(g *guest) ([]uint64, error) {
			v, err := g.call(alloc, []uint64{uint64(len(in))})
			if err != nil {
				return nil, err
			}
			ptr := uint32(v[0])
			mem := g.mod.Memory()
			if mem == nil || (ptr == 0 && len(in) > 0) || !mem.Write(ptr, in) {
				return nil, g.fail(ErrTrap, fmt.Errorf("%s(%d) returned %#x: no room for the input there", alloc, len(in), ptr))
			}
			v, err = g.call(export, []uint64{uint64(ptr), uint64(len(in))})
			if err != nil {
				return nil, err
			}
			p, n := uint32(v[0]>>32), uint32(v[0])
			b, ok := mem.Read(p, n)
			if !ok {
				return nil, g.fail(ErrTrap, fmt.Errorf("%s returned (ptr %#x, len %d): outside guest memory of %d bytes", export, p, n, mem.Size()))
			}
			out = bytes.Clone(b)
			return v, nil
		})
	return out, res, err
}

// bytesProblem says why CallBytes(alloc, export, n bytes) cannot be made.
func (m *Module) bytesProblem(alloc, export string, n int) error {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	for _, f := range []struct {
		name            string
		params, results []api.ValueType
		shape           string
	}{{alloc, []api.ValueType{i32}, []api.ValueType{i32}, "(i32) -> i32"}, {export, []api.ValueType{i32, i32}, []api.ValueType{i64}, "(i32, i32) -> i64"}} {
		if err := m.exportProblem(f.name, make([]uint64, len(f.params)), true); err != nil {
			return err
		}
		p, r, _ := m.ExportSignature(f.name)
		if !slices.Equal(p, f.params) || !slices.Equal(r, f.results) {
			return fmt.Errorf("%s has type (%s) -> (%s), the convention needs %s", f.name, valueTypes(p), valueTypes(r), f.shape)
		}
	}
	if int64(n) > math.MaxUint32 {
		return fmt.Errorf("input of %d bytes: over 4 GiB", n)
	}
	return nil
}

// run runs one call on the instance: it waits for its turn, refuses the
// call (ErrUsage, no poisoning) if the instance is closed, poisoned or
// problem says so, then runs body in a task, and poisons the instance if
// the guest failed once it had started.
func (i *Instance) run(ctx context.Context, problem func() error, body func(g *guest) ([]uint64, error)) (Result, error) {
	if err := i.acquire(ctx); err != nil {
		return Result{}, err
	}
	defer i.release()
	if err := i.usable(); err != nil {
		return Result{}, err
	}
	if cause := problem(); cause != nil {
		return Result{}, &Error{Kind: ErrUsage, Cause: cause, Guest: i.opts.Name}
	}
	req := &callRequest{ctx: ctx, body: body, done: make(chan struct{})}
	i.actor.post(req)
	if req.err != nil && (req.ran || i.actorEnded()) {
		// The call failed part-way (its task ended with it, closing the
		// guest), or the task was already gone (cancelled while idle, the
		// runtime shut down): the instance's state is lost.
		i.setState(req.err, false)
	}
	return req.res, req.err
}

// actorEnded reports whether the instance's task has ended; sem is held.
func (i *Instance) actorEnded() bool {
	i.actor.mu.Lock()
	defer i.actor.mu.Unlock()
	return i.actor.ended != nil
}

func (i *Instance) setState(poison error, closed bool) {
	i.mu.Lock()
	i.poison, i.closed = poison, closed
	i.mu.Unlock()
}

// Poisoned returns the failure that poisoned the instance, or nil.
func (i *Instance) Poisoned() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.poison
}

// Closed reports whether Close was called.
func (i *Instance) Closed() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.closed
}

// Reset discards the instance's state and instantiates (and initializes)
// the module afresh, clearing a poisoning. It waits for the call in
// progress. If the new instantiation fails, the instance takes no calls
// until a Reset succeeds.
func (i *Instance) Reset(ctx context.Context) error {
	if err := i.acquire(ctx); err != nil {
		return err
	}
	defer i.release()
	if i.Closed() {
		return &Error{Kind: ErrUsage, Cause: errInstanceClosed, Guest: i.opts.Name}
	}
	i.closeGuest()
	i.setState(nil, false)
	return i.open(ctx)
}

// WithMemory runs fn with the instance's linear memory (nil if it has
// none) while no call runs: the way to read and write guest memory
// between calls. fn must not keep the api.Memory: the next call may grow
// it, which can move it. Addresses read from guest memory are untrusted:
// api.Memory's Read and Write report out-of-range accesses with ok false.
func (i *Instance) WithMemory(ctx context.Context, fn func(api.Memory) error) error {
	if err := i.acquire(ctx); err != nil {
		return err
	}
	defer i.release()
	if i.Closed() || i.g == nil {
		return &Error{Kind: ErrUsage, Cause: errInstanceClosed, Guest: i.opts.Name}
	}
	return fn(i.g.mod.Memory())
}

// Close releases the instance: its wazero module, its memory (returned to
// the engine's budget) and its hold on the module's compiled code. It
// waits for the call in progress (cancel that call's context to stop it),
// or until ctx ends. Close is idempotent; later calls fail with ErrUsage.
func (i *Instance) Close(ctx context.Context) error {
	if err := i.acquire(ctx); err != nil {
		return err
	}
	defer i.release()
	if i.Closed() {
		return nil
	}
	i.setState(i.Poisoned(), true)
	i.closeGuest()
	return nil
}
