package wasmtask

// A compiled module: what guests instantiate, its lifetime (Close), and
// what a caller can check about a call before spawning it.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/wasmsched/wasmsched/wasmtask/instrument"
)

// Module is an instrumented, compiled guest, safe to instantiate
// concurrently from many tasks. Its compiled code lives until Close (or the
// engine's Close).
type Module struct {
	engine *Engine
	hash   [32]byte
	report instrument.Report

	exports  map[string]api.FunctionDefinition
	kind     ModuleKind
	minPages uint32 // the largest minimum of the module's memories (0: none)

	// fuelOffset is where the fuel global's value lies in an instance's
	// context buffer, plus one (0: not found yet): the same for every
	// instance of the compiled module (fuelcell.go).
	fuelOffset atomic.Int64
	// skipOffset and attnOffset are the same for the poll-skipping
	// globals (pollskip.go).
	skipOffset, attnOffset atomic.Int64

	mu       sync.Mutex
	compiled wazero.CompiledModule // nil once released
	running  int                   // guests between their start and their end
	closed   bool                  // Close was called; the code goes when running reaches 0
}

// ModuleKind is what a module's exports say it is, in WASI's terms.
type ModuleKind uint8

const (
	// KindLibrary exports neither _start nor _initialize: its exports are
	// called directly (its start section, if any, runs at instantiation).
	KindLibrary ModuleKind = iota
	// KindCommand exports _start: a program that runs once, from _start,
	// during instantiation (Options.Export empty).
	KindCommand
	// KindReactor exports _initialize: a plugin whose _initialize is
	// called once, after instantiation and before any other export (a Go
	// -buildmode=c-shared module, a clang -mexec-model=reactor one).
	KindReactor
)

const (
	startExport      = "_start"
	initializeExport = "_initialize"
)

func (k ModuleKind) String() string {
	return [...]string{"library", "command", "reactor"}[k]
}

// kindOf tells the kind from the exported functions. A module exporting
// both is taken for a reactor: _initialize is the entry point that must
// run before its exports.
func kindOf(exports map[string]api.FunctionDefinition) ModuleKind {
	if _, ok := exports[initializeExport]; ok {
		return KindReactor
	}
	if _, ok := exports[startExport]; ok {
		return KindCommand
	}
	return KindLibrary
}

// Kind says whether the module is a WASI command, a reactor or neither.
func (m *Module) Kind() ModuleKind { return m.kind }

// ErrCommandExport is the cause of the ErrUsage error of a call of an
// export of a WASI command (a module exporting _start) that did not opt in
// with Options.AllowCommandExports.
var ErrCommandExport = errors.New("the module is a WASI command (it exports _start): its other exports run without its runtime (libc, Go's) set up")

// errModuleClosed is the cause of ErrInstantiate for a guest of a closed
// module.
var errModuleClosed = errors.New("module closed")

// Report is the instrumenter's report for the module.
func (m *Module) Report() instrument.Report { return m.report }

// compiledCode returns the module's compiled code, or errModuleClosed.
func (m *Module) compiledCode() (wazero.CompiledModule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.compiled == nil {
		return nil, errModuleClosed
	}
	return m.compiled, nil
}

// start counts a guest in, so that Close keeps the code until it ends;
// it fails once the module is closed.
func (m *Module) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errModuleClosed
	}
	m.running++
	return nil
}

// end counts a guest out and releases the code if it was the last guest of
// a closed module.
func (m *Module) end(ctx context.Context) {
	m.mu.Lock()
	m.running--
	release := m.closed && m.running == 0
	m.mu.Unlock()
	if release {
		m.release(ctx)
	}
}

// Close releases the module's compiled code. Guests of the module that
// have started run to their end (the code goes when the last one ends);
// guests that have not started yet, and later Spawns, fail with
// ErrInstantiate ("module closed"). The engine forgets the module, so a
// later Compile of the same bytes compiles it anew. Close is idempotent,
// and needless after the engine's Close, which releases everything.
//
// A long-running service that accepts many distinct modules closes those
// it no longer needs; the engine never evicts on its own, since it cannot
// know which modules the embedder still holds.
func (m *Module) Close(ctx context.Context) error {
	e := m.engine
	e.mu.Lock()
	if e.modules[m.hash] == m {
		delete(e.modules, m.hash)
	}
	e.mu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	release := m.running == 0
	m.mu.Unlock()
	if release {
		return m.release(ctx)
	}
	return nil
}

// release closes the compiled code; m is closed and no guest runs.
func (m *Module) release(ctx context.Context) error {
	m.mu.Lock()
	c := m.compiled
	m.compiled = nil
	m.mu.Unlock()
	e := m.engine
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || c == nil {
		return nil // the runtime's Close released it
	}
	return c.Close(ctx)
}

// Closed reports whether Close was called on the module.
func (m *Module) Closed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Exports lists the module's exported function names, sorted.
func (m *Module) Exports() []string {
	out := make([]string, 0, len(m.exports))
	for name := range m.exports {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// ExportSignature returns the parameter and result types of the exported
// function name, or ok false if the module exports no such function.
func (m *Module) ExportSignature(name string) (params, results []api.ValueType, ok bool) {
	d, ok := m.exports[name]
	if !ok {
		return nil, nil, false
	}
	return d.ParamTypes(), d.ResultTypes(), true
}

// CheckCall reports whether a guest of m with these options could not
// even start its call: with an error wrapping ErrUsage when the export
// does not exist, the number of arguments does not match its parameters,
// or arguments are given to a WASI command; with one wrapping
// ErrMemoryLimit when the module's minimum memory is over the guest's
// limit. Spawn makes the same checks; a service calls CheckCall to refuse
// such a request before accepting it. (Whether the engine's budget has
// room is known only when the guest starts.)
func (m *Module) CheckCall(opts Options) error {
	if cause := m.callProblem(opts); cause != nil {
		return fmt.Errorf("%w: %w", ErrUsage, cause)
	}
	if min, limit := int64(m.minPages)*pageSize, m.engine.guestMemoryLimit(opts); min > limit {
		return fmt.Errorf("%w: %w", ErrMemoryLimit, &memoryRefusal{what: fmt.Sprintf("minimum memory of %d pages", m.minPages), limit: limit, requested: min})
	}
	return nil
}

// guestMemoryLimit is the bound on a guest's linear memory, in bytes.
func (e *Engine) guestMemoryLimit(opts Options) int64 {
	if opts.MemoryLimitPages > 0 {
		return min(int64(opts.MemoryLimitPages)*pageSize, maxMemoryBytes)
	}
	return e.cfg.GuestMemoryLimit
}

func (m *Module) callProblem(opts Options) error {
	if opts.Export == "" {
		if len(opts.Args) > 0 {
			return errors.New("Args given without Export (a WASI command takes Argv)")
		}
		if m.kind == KindReactor {
			return fmt.Errorf("the module is a reactor (it exports %s): name the export to call (it exports: %s)", initializeExport, strings.Join(m.Exports(), ", "))
		}
		return nil
	}
	return m.exportProblem(opts.Export, opts.Args, opts.AllowCommandExports)
}

// exportProblem says why export cannot be called with args, or nil.
func (m *Module) exportProblem(export string, args []uint64, allowCommand bool) error {
	switch {
	case export == initializeExport || export == startExport:
		return fmt.Errorf("%s is the module's entry point, run by wasmtask itself", export)
	case m.kind == KindCommand && !allowCommand:
		return fmt.Errorf("%w: %s (opt in with AllowCommandExports)", ErrCommandExport, export)
	}
	params, _, ok := m.ExportSignature(export)
	if !ok {
		return fmt.Errorf("module exports no function %q (it exports: %s)", export, strings.Join(m.Exports(), ", "))
	}
	if len(args) != len(params) {
		return fmt.Errorf("%s takes %d arguments (%s), got %d", export, len(params), valueTypes(params), len(args))
	}
	return nil
}
