package wasmtask

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"go.uber.org/atomic"

	"github.com/wasmsched/wasmsched/wasmtask/instrument"
)

// EngineConfig configures an Engine. The zero value is valid.
type EngineConfig struct {
	// EpochTick is how often the epoch advances with time (default 1 ms).
	EpochTick time.Duration
	// PollInterval is the fuel between two checks of the epoch in epoch
	// mode (default 20,000: about 1.5 µs of guest time on wazero here, so
	// a passed deadline is noticed within microseconds).
	PollInterval int64
	// Costs is the instrumenter's cost table (nil: Wasmtime's default).
	Costs *instrument.CostTable
	// Interpreter forces wazero's interpreter instead of its compiler.
	Interpreter bool
	// HostModules are the embedder's host functions, importable by guests.
	HostModules []HostModule
}

// Engine owns wazero runtimes, a compile cache keyed by the module's hash,
// the instrumentation settings and the epoch.
type Engine struct {
	cfg        EngineConfig
	cache      wazero.CompilationCache
	startNanos int64
	bump       atomic.Uint64

	mu       sync.Mutex
	runtimes map[uint32]wazero.Runtime // by memory limit in pages (0: none)
	modules  map[[32]byte]*Module
	closed   bool

	stats engineCounters
}

// NewEngine creates an engine.
func NewEngine(ctx context.Context, cfg EngineConfig) (*Engine, error) {
	if cfg.EpochTick == 0 {
		cfg.EpochTick = time.Millisecond
	}
	if cfg.EpochTick < 0 {
		return nil, fmt.Errorf("wasmtask: EpochTick %v must be positive", cfg.EpochTick)
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20_000
	}
	if cfg.PollInterval < 0 {
		return nil, fmt.Errorf("wasmtask: PollInterval %d must be positive", cfg.PollInterval)
	}
	for _, hm := range cfg.HostModules {
		if err := hm.validate(); err != nil {
			return nil, err
		}
	}
	e := &Engine{
		cfg:        cfg,
		cache:      wazero.NewCompilationCache(),
		startNanos: nanos(),
		runtimes:   map[uint32]wazero.Runtime{},
		modules:    map[[32]byte]*Module{},
	}
	if _, err := e.runtime(ctx, 0); err != nil {
		e.cache.Close(ctx)
		return nil, err
	}
	return e, nil
}

// Epoch returns the engine's epoch: ticks of EpochTick since the engine
// started plus every IncrementEpoch. It is computed from the monotonic
// clock when read, so it advances even when no goroutine can run (guest
// code holding every P), which a ticker goroutine could not guarantee.
func (e *Engine) Epoch() uint64 { return e.epochAt(nanos()) }

func (e *Engine) epochAt(now int64) uint64 {
	return uint64((now-e.startNanos)/int64(e.cfg.EpochTick)) + e.bump.Load()
}

// clockBase anchors nanos: time.Since on a monotonic reading costs one
// vDSO clock read, where time.Now costs two.
var clockBase = time.Now()

func nanos() int64 { return int64(time.Since(clockBase)) }

// IncrementEpoch advances the epoch by one, like Wasmtime's
// Engine::increment_epoch.
func (e *Engine) IncrementEpoch() { e.bump.Inc() }

// runtime returns the wazero runtime for a memory limit, creating it (with
// WASI and the host modules) on first use.
func (e *Engine) runtime(ctx context.Context, limitPages uint32) (wazero.Runtime, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("wasmtask: engine closed")
	}
	if r, ok := e.runtimes[limitPages]; ok {
		return r, nil
	}
	rc := wazero.NewRuntimeConfig()
	if e.cfg.Interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	rc = rc.WithCompilationCache(e.cache)
	if limitPages > 0 {
		rc = rc.WithMemoryLimitPages(limitPages)
	}
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		r.Close(ctx)
		return nil, err
	}
	if err := instantiateCheck(ctx, r); err != nil {
		r.Close(ctx)
		return nil, err
	}
	for _, hm := range e.cfg.HostModules {
		if err := hm.instantiate(ctx, r); err != nil {
			r.Close(ctx)
			return nil, err
		}
	}
	e.runtimes[limitPages] = r
	return r, nil
}

// Module is an instrumented, compiled guest, safe to instantiate
// concurrently from many tasks. Its compiled code lives until Close (or the
// engine's Close).
type Module struct {
	engine *Engine
	hash   [32]byte
	wasm   []byte // instrumented
	report instrument.Report

	mu       sync.Mutex
	compiled map[uint32]wazero.CompiledModule
	name     string
	running  int  // guests between their start and their end
	closed   bool // Close was called; the code goes when running reaches 0
}

// errModuleClosed is the cause of ErrInstantiate for a guest of a closed
// module.
var errModuleClosed = errors.New("module closed")

// Report is the instrumenter's report for the module.
func (m *Module) Report() instrument.Report { return m.report }

// Compile instruments and compiles wasm, once per distinct module: a
// second call with the same bytes returns the cached *Module.
func (e *Engine) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	h := sha256.Sum256(wasm)
	e.mu.Lock()
	if m, ok := e.modules[h]; ok {
		e.mu.Unlock()
		return m, nil
	}
	e.mu.Unlock()
	res, err := instrument.Instrument(wasm, instrument.Config{Costs: e.cfg.Costs})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInstantiate, err)
	}
	m := &Module{engine: e, hash: h, wasm: res.Wasm, report: res.Report, compiled: map[uint32]wazero.CompiledModule{}}
	if _, err := m.compiledFor(ctx, 0); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInstantiate, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if prev, ok := e.modules[h]; ok { // a concurrent Compile won
		return prev, nil
	}
	e.modules[h] = m
	return m, nil
}

func (m *Module) compiledFor(ctx context.Context, limitPages uint32) (wazero.CompiledModule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errModuleClosed
	}
	if c, ok := m.compiled[limitPages]; ok {
		return c, nil
	}
	r, err := m.engine.runtime(ctx, limitPages)
	if err != nil {
		return nil, err
	}
	c, err := r.CompileModule(ctx, m.wasm)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	m.compiled[limitPages] = c
	return c, nil
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
	compiled := m.compiled
	m.compiled = nil
	m.mu.Unlock()
	e := m.engine
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil // the runtimes' Close released it
	}
	var errs []error
	for _, c := range compiled {
		errs = append(errs, c.Close(ctx))
	}
	return errors.Join(errs...)
}

// Exports lists the module's exported function names.
func (m *Module) Exports(ctx context.Context) ([]string, error) {
	c, err := m.compiledFor(ctx, 0)
	if err != nil {
		return nil, err
	}
	var out []string
	for name := range c.ExportedFunctions() {
		out = append(out, name)
	}
	return out, nil
}

// Close releases every runtime and compiled module. Guests still running
// fail at their next host call.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var errs []error
	for _, r := range e.runtimes {
		errs = append(errs, r.Close(ctx))
	}
	errs = append(errs, e.cache.Close(ctx))
	return errors.Join(errs...)
}

// instantiateCheck defines the host module that every instrumented guest
// imports: one function, the fuel check. It finds its guest through the
// call's context, so one definition serves every guest of the runtime.
func instantiateCheck(ctx context.Context, r wazero.Runtime) error {
	_, err := r.NewHostModuleBuilder(instrument.DefaultImportModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, _ []uint64) {
			guestFrom(ctx).check(mod)
		}), nil, nil).
		Export(instrument.DefaultImportName).
		Instantiate(ctx)
	return err
}
