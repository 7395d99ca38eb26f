package wasmtask

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask/instrument"
)

// HostModule is a set of host functions guests import as Name.Function.
type HostModule struct {
	Name      string
	Functions []HostFunction
}

// HostFunction is one host function. Fn runs on the guest's task (its
// coroutine): it may return at once, or call hc.Await to suspend the guest
// while Go-side work completes, without blocking a worker.
type HostFunction struct {
	Name    string
	Params  []api.ValueType
	Results []api.ValueType
	// Fn receives the raw Wasm parameters and returns the results. An
	// error fails the guest with ErrHost; a panic is a bug of the
	// embedder's and fails it with ErrEmbedder (cause *PanicError).
	// Pointers and lengths the guest passes are untrusted: read guest
	// memory through hc.Memory(), whose Read/Write report out-of-range
	// accesses instead of panicking.
	Fn func(hc *HostCall, params []uint64) ([]uint64, error)
}

func (hm HostModule) validate() error {
	switch hm.Name {
	case "":
		return errors.New("wasmtask: host module needs a name")
	case instrument.DefaultImportModule, "wasi_snapshot_preview1":
		return fmt.Errorf("wasmtask: host module name %q is reserved", hm.Name)
	}
	seen := map[string]bool{}
	for _, f := range hm.Functions {
		if f.Name == "" || f.Fn == nil {
			return fmt.Errorf("wasmtask: host module %q: function needs a name and Fn", hm.Name)
		}
		if seen[f.Name] {
			return fmt.Errorf("wasmtask: host module %q: duplicate function %q", hm.Name, f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

// WazeroHostModule is a host module defined with wazero's own
// HostModuleBuilder, as a wazero embedder writes it: Define receives the
// builder for module Name and returns it with its functions, e.g.
//
//	Define: func(b wazero.HostModuleBuilder) wazero.HostModuleBuilder {
//		return b.NewFunctionBuilder().
//			WithFunc(func(ctx context.Context, m api.Module, x uint32) uint32 { return x * 2 }).
//			Export("double")
//	}
//
// (wasmtask instantiates it in the engine's runtime.) The functions run on
// the guest's task like HostModules' and receive the run's context; one
// that needs wasmtask — to suspend the guest on Go-side work (Await), to
// read its fuel — gets the HostCall with HostCallFrom(ctx, m). A panic in
// one is recovered by wazero and fails the guest with ErrHost. One that
// blocks holds the worker: use Await for anything that waits.
type WazeroHostModule struct {
	Name   string
	Define func(wazero.HostModuleBuilder) wazero.HostModuleBuilder
}

func (wm WazeroHostModule) validate() error {
	switch {
	case wm.Name == "" || wm.Define == nil:
		return errors.New("wasmtask: wazero host module needs a Name and Define")
	case wm.Name == instrument.DefaultImportModule || wm.Name == "wasi_snapshot_preview1":
		return fmt.Errorf("wasmtask: host module name %q is reserved", wm.Name)
	}
	return nil
}

// HostCallFrom returns the HostCall of a host function's call from the
// context and module wazero passed it (for WazeroHostModules' functions),
// or ok false when the call does not come from a wasmtask guest.
func HostCallFrom(ctx context.Context, mod api.Module) (hc *HostCall, ok bool) {
	g := guestOf(ctx)
	if g == nil {
		return nil, false
	}
	return &HostCall{g: g, mod: mod, ctx: ctx}, true
}

func (hm HostModule) instantiate(ctx context.Context, r wazero.Runtime) (api.Module, error) {
	b := r.NewHostModuleBuilder(hm.Name)
	for _, f := range hm.Functions {
		qualified := hm.Name + "." + f.Name
		nParams, nResults := len(f.Params), len(f.Results)
		b = b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			g := guestFrom(ctx)
			defer func() {
				if v := recover(); v != nil {
					g.hostFailure(qualified, v)
				}
			}()
			params := append([]uint64(nil), stack[:nParams]...)
			res, err := f.Fn(&HostCall{g: g, mod: mod, ctx: ctx}, params)
			if err != nil {
				g.fail(ErrHost, fmt.Errorf("%s: %w", qualified, err))
				panic(stop{})
			}
			if len(res) != nResults {
				g.fail(ErrHost, fmt.Errorf("%s returned %d results, declared %d", qualified, len(res), nResults))
				panic(stop{})
			}
			copy(stack, res)
		}), f.Params, f.Results).Export(f.Name)
	}
	return b.Instantiate(ctx)
}

// HostCall is a host function's view of the calling guest.
type HostCall struct {
	g   *guest
	mod api.Module
	ctx context.Context
}

// Context is the context of the guest's run — the one given to Spawn, to
// NewInstance (for _initialize) or to the Instance call in progress — with
// wasmtask's own value added. It is done when the run is cancelled.
func (hc *HostCall) Context() context.Context { return hc.ctx }

// FuelConsumed is the fuel the guest has consumed in this run (the
// one-shot guest's life, or the Instance call in progress) up to this host
// call. It is exact: the instrumenter charges every instruction before
// the call that reaches the host (see package instrument, "Runtime
// contract"), so metering the region between two host calls is a
// subtraction.
func (hc *HostCall) FuelConsumed() int64 {
	g := hc.g
	g.findFuel(hc.mod)
	return g.consumed()
}

// Memory is the guest's memory (nil if it has none). It is safe to use
// while the guest cannot run: in the host function itself, and during an
// Await from any goroutine until complete is called (the guest stays
// suspended until then, and complete orders those accesses before it
// resumes). Not after complete: the guest may be running and growing it.
func (hc *HostCall) Memory() api.Memory { return hc.mod.Memory() }

// Spawner spawns tasks from the host function onto the guest's current
// worker (LIFO slot or ring), as a task would.
func (hc *HostCall) Spawner() scheduler.Spawner { return hc.g.co }

// GuestName is Options.Name.
func (hc *HostCall) GuestName() string { return hc.g.name }

// Await suspends the guest until complete is called, from any goroutine,
// and returns what was passed to it. start is called once, on the guest's
// task, with the completion function; it must not block (start a goroutine
// or hand complete to an event loop). While suspended the guest costs no
// worker, and the time is not charged to its epoch deadline (fuel is only
// spent by guest code). A second call of complete is ignored. If the guest
// is aborted while waiting, Await does not return: the guest unwinds.
func (hc *HostCall) Await(start func(complete func(results []uint64, err error))) ([]uint64, error) {
	g := hc.g
	var mu sync.Mutex
	var done bool
	var results []uint64
	var rerr error
	waker := g.co.Context().Waker()
	start(func(r []uint64, err error) {
		mu.Lock()
		if done {
			mu.Unlock()
			return
		}
		done, results, rerr = true, r, err
		mu.Unlock()
		waker.Wake()
	})
	g.stats.HostWaits++
	s := g.suspending(-1)
	s.sh.hostWaits.Inc()
	for {
		mu.Lock()
		d := done
		mu.Unlock()
		if d {
			break
		}
		g.co.Park()
	}
	now := g.resumed(s)
	if g.hasE {
		g.armEpoch(g.opts.EpochDeadline, now)
	}
	return results, rerr
}
