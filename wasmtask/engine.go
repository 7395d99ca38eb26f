package wasmtask

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"go.uber.org/atomic"

	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask/instrument"
)

// DefaultPollInterval is EngineConfig.PollInterval's default, in fuel.
const DefaultPollInterval = 20_000

// EngineConfig configures an Engine. The zero value is valid.
type EngineConfig struct {
	// EpochTick is how often the epoch advances with time (default 1 ms).
	EpochTick time.Duration
	// PollInterval is the fuel between two checks of the epoch in epoch
	// mode (default DefaultPollInterval: about 1.5 µs of guest time on
	// wazero here, so a passed deadline, a due timer or remote work is
	// noticed within microseconds). A larger interval costs the guest
	// fewer host calls and a deferred guest's give-way more latency
	// (RATIONALE.md measures both).
	PollInterval int64
	// Costs is the instrumenter's cost table (nil: Wasmtime's default).
	Costs *instrument.CostTable
	// Interpreter forces wazero's interpreter instead of its compiler.
	Interpreter bool
	// HostModules are the embedder's host functions, importable by guests.
	HostModules []HostModule
	// WazeroHostModules are host modules written for wazero, brought in
	// unchanged: typed Go functions (WithFunc) or api.GoModuleFunction, on
	// wazero's own HostModuleBuilder.
	WazeroHostModules []WazeroHostModule
	// StubMissingImports, when set, makes Compile define each function
	// import that no host module provides as a stub that returns zeros,
	// and call the hook once per stub (to warn): a guest that imports a
	// harness's bench.start and bench.end, say, then runs. Only modules
	// nothing provides are stubbed: an import from a provided module that
	// lacks the function, or has it with another signature, is refused as
	// before. Meant for tools (wasmsched run --stub-imports), not for
	// services: a stub hides that the guest expected something.
	StubMissingImports func(module, name string, params, results []api.ValueType)

	// Limits bound what Compile accepts (zero fields: the defaults).
	Limits Limits
	// MemoryBudget bounds the linear memory of all running guests
	// together, in bytes (0: no shared budget). A memory.grow that would
	// pass it fails (returns -1); a guest whose minimum memory would pass it
	// fails with ErrMemoryLimit before it is instantiated.
	MemoryBudget int64
	// GuestMemoryLimit bounds each guest's linear memory, in bytes, unless
	// Options.MemoryLimitPages says otherwise (0: 4 GiB, Wasm32's maximum).
	GuestMemoryLimit int64
	// MaxConcurrentCompiles bounds compilations running at once (0:
	// GOMAXPROCS). Compiling a large module takes a core for up to seconds;
	// more at once only slows every one of them and the guests.
	MaxConcurrentCompiles int
}

// Limits bound the modules Engine.Compile accepts. Zero fields mean the
// defaults.
type Limits struct {
	// MaxModuleBytes bounds a module's size (default
	// DefaultMaxModuleBytes).
	MaxModuleBytes int
	// Module bounds what a module may declare: types, functions, imports,
	// exports, globals, segments, locals per function and in all, function
	// body size, table and memory minimums (a module over one fails Compile
	// with an *instrument.LimitError naming it), and the size tables may
	// grow to (TableMaximum: tables are given it as their maximum). The
	// defaults are the WebAssembly JS API's limits, which browsers enforce;
	// see instrument.Limits. A table element costs the host 8 bytes outside
	// the memory budget: a service sets TableInitial and TableMaximum well
	// below the default 10,000,000.
	Module instrument.Limits
	// MaxCustomBytes bounds the custom sections (other than "name") kept
	// in the compiled module (0: instrument.DefaultMaxCustomBytes; negative:
	// none); StripCustom drops them all, the name section included.
	MaxCustomBytes int
	StripCustom    bool
}

// DefaultMaxModuleBytes is the module size limit of the WebAssembly JS API
// (https://webassembly.github.io/spec/js-api/#limits), which browsers
// enforce.
const DefaultMaxModuleBytes = 1 << 30

func (l Limits) withDefaults() Limits {
	if l.MaxModuleBytes <= 0 {
		l.MaxModuleBytes = DefaultMaxModuleBytes
	}
	return l
}

// Engine owns a wazero runtime, a compile cache keyed by the module's hash,
// the instrumentation settings, the memory budget and the epoch.
type Engine struct {
	cfg        EngineConfig
	cache      wazero.CompilationCache
	rt         wazero.Runtime
	startNanos int64
	bump       atomic.Uint64
	providedMu sync.Mutex
	provided   map[importKey]funcSig // every function a guest may import (stubs are added under providedMu)
	compiles   chan struct{}         // semaphore: compilations running
	memory     memBudget
	labels     atomic.Pointer[guestLabels] // the last pprof label set made (labels.go)
	// moduleConfig is what every guest's configuration starts from
	// (guest.moduleConfig).
	moduleConfig wazero.ModuleConfig

	mu       sync.Mutex
	modules  map[[32]byte]*Module
	inflight map[[32]byte]*compileCall
	closed   bool

	stats engineCounters
}

type importKey struct{ module, name string }

type funcSig struct{ params, results []api.ValueType }

func (s funcSig) String() string {
	return "(" + valueTypes(s.params) + ") -> (" + valueTypes(s.results) + ")"
}

func valueTypes(ts []api.ValueType) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(api.ValueTypeName(t))
	}
	return b.String()
}

// compileCall is a Compile in progress, which later Compiles of the same
// bytes wait for instead of compiling again.
type compileCall struct {
	done chan struct{}
	mod  *Module
	err  error
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
		cfg.PollInterval = DefaultPollInterval
	}
	switch {
	case cfg.PollInterval < 0:
		return nil, fmt.Errorf("wasmtask: PollInterval %d must be positive", cfg.PollInterval)
	case cfg.MemoryBudget < 0:
		return nil, fmt.Errorf("wasmtask: MemoryBudget %d must not be negative", cfg.MemoryBudget)
	case cfg.GuestMemoryLimit < 0:
		return nil, fmt.Errorf("wasmtask: GuestMemoryLimit %d must not be negative", cfg.GuestMemoryLimit)
	case cfg.MaxConcurrentCompiles < 0:
		return nil, fmt.Errorf("wasmtask: MaxConcurrentCompiles %d must not be negative", cfg.MaxConcurrentCompiles)
	}
	if cfg.GuestMemoryLimit == 0 || cfg.GuestMemoryLimit > maxMemoryBytes {
		cfg.GuestMemoryLimit = maxMemoryBytes
	}
	if cfg.MaxConcurrentCompiles == 0 {
		cfg.MaxConcurrentCompiles = runtime.GOMAXPROCS(0)
	}
	cfg.Limits = cfg.Limits.withDefaults()
	names := map[string]bool{}
	for _, hm := range cfg.HostModules {
		if err := hm.validate(); err != nil {
			return nil, err
		}
		names[hm.Name] = true
	}
	for _, wm := range cfg.WazeroHostModules {
		if err := wm.validate(); err != nil {
			return nil, err
		}
		if names[wm.Name] {
			return nil, fmt.Errorf("wasmtask: host module %q defined twice", wm.Name)
		}
		names[wm.Name] = true
	}
	e := &Engine{
		cfg:        cfg,
		cache:      wazero.NewCompilationCache(),
		startNanos: nanos(),
		compiles:   make(chan struct{}, cfg.MaxConcurrentCompiles),
		memory:     memBudget{limit: cfg.MemoryBudget},
		modules:    map[[32]byte]*Module{},
		inflight:   map[[32]byte]*compileCall{},
	}
	e.moduleConfig = baseModuleConfig()
	if err := e.newRuntime(ctx); err != nil {
		e.cache.Close(ctx)
		return nil, err
	}
	return e, nil
}

// baseModuleConfig is the settings of every guest's instance: no module
// name, WASI's clocks and random source, and no start function (wazero's
// default runs _start: see guest.instantiate). A wazero.ModuleConfig is
// immutable (each With returns a copy), so guests share it.
func baseModuleConfig() wazero.ModuleConfig {
	return wazero.NewModuleConfig().WithName("").
		WithSysNanotime().WithSysWalltime().
		WithRandSource(randReader{}).
		WithStartFunctions()
}

// maxMemoryBytes is Wasm32's largest memory: 65,536 pages of 64 KiB.
const maxMemoryBytes = 65536 * pageSize

// Epoch returns the engine's epoch: ticks of EpochTick since the engine
// started plus every IncrementEpoch. It is computed from the monotonic
// clock when read, so it advances even when no goroutine can run (guest
// code holding every P), which a ticker goroutine could not guarantee.
func (e *Engine) Epoch() uint64 { return e.epochAt(nanos()) }

func (e *Engine) epochAt(now int64) uint64 {
	return uint64((now-e.startNanos)/int64(e.cfg.EpochTick)) + e.bump.Load()
}

// nanos is the guests' clock: the scheduler's, which also dates the
// suspensions a worker stamps (Context.StampWhenLeft).
func nanos() int64 { return scheduler.Nanotime() }

// IncrementEpoch advances the epoch by one, like Wasmtime's
// Engine::increment_epoch.
func (e *Engine) IncrementEpoch() { e.bump.Inc() }

// newRuntime creates the engine's wazero runtime with WASI, the check
// import and the host modules, and records every function they provide.
// Memory limits are not the runtime's: each guest's allocator enforces
// its own (memory.go), so one runtime and one compilation serve guests of
// every limit.
func (e *Engine) newRuntime(ctx context.Context) error {
	rc := wazero.NewRuntimeConfig()
	if e.cfg.Interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	rc = rc.WithCompilationCache(e.cache)
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	var provided []api.Module
	wasi, err := instantiateWASI(ctx, r)
	if err != nil {
		r.Close(ctx)
		return err
	}
	provided = append(provided, wasi)
	check, err := instantiateCheck(ctx, r)
	if err != nil {
		r.Close(ctx)
		return err
	}
	provided = append(provided, check)
	for _, hm := range e.cfg.HostModules {
		m, err := hm.instantiate(ctx, r)
		if err != nil {
			r.Close(ctx)
			return err
		}
		provided = append(provided, m)
	}
	for _, wm := range e.cfg.WazeroHostModules {
		m, err := wm.Define(r.NewHostModuleBuilder(wm.Name)).Instantiate(ctx)
		if err != nil {
			r.Close(ctx)
			return fmt.Errorf("wasmtask: wazero host module %q: %w", wm.Name, err)
		}
		provided = append(provided, m)
	}
	e.provided = map[importKey]funcSig{}
	for _, m := range provided {
		for name, d := range m.ExportedFunctionDefinitions() {
			e.provided[importKey{m.Name(), name}] = funcSig{d.ParamTypes(), d.ResultTypes()}
		}
	}
	e.rt = r
	return nil
}

// Compile validates, instruments and compiles wasm, once per distinct
// module: a second call with the same bytes returns the cached *Module,
// and calls racing for the same bytes wait for one compilation. At most
// MaxConcurrentCompiles compilations run at once; a call waiting for its
// turn (or for another's compilation) gives up when ctx is done.
//
// An error wraps ErrInvalidModule (the bytes do not decode or validate,
// pass a Limit — cause *instrument.LimitError —, or import what the
// engine does not provide — cause *ImportError), or ctx's error, or says
// the engine is closed.
func (e *Engine) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	if len(wasm) > e.cfg.Limits.MaxModuleBytes {
		return nil, fmt.Errorf("%w: %w", ErrInvalidModule, &instrument.LimitError{
			Msg: fmt.Sprintf("module of %d bytes is over the limit of %d", len(wasm), e.cfg.Limits.MaxModuleBytes)})
	}
	h := sha256.Sum256(wasm)
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return nil, errEngineClosed
		}
		if m, ok := e.modules[h]; ok {
			e.mu.Unlock()
			return m, nil
		}
		call, busy := e.inflight[h]
		if !busy {
			call = &compileCall{done: make(chan struct{})}
			e.inflight[h] = call
			e.mu.Unlock()
			call.mod, call.err = e.compile(ctx, h, wasm)
			e.mu.Lock()
			delete(e.inflight, h)
			if call.err == nil {
				if e.closed {
					call.mod, call.err = nil, errEngineClosed
				} else {
					e.modules[h] = call.mod
				}
			}
			e.mu.Unlock()
			close(call.done)
			return call.mod, call.err
		}
		e.mu.Unlock()
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if call.err == nil || !isContextError(call.err) {
			return call.mod, call.err
		}
		// The compiling call gave up on its own context: try ourselves.
	}
}

var errEngineClosed = errors.New("wasmtask: engine closed")

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// compile does the work of Compile for one module, within the semaphore.
func (e *Engine) compile(ctx context.Context, h [32]byte, wasm []byte) (*Module, error) {
	select {
	case e.compiles <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-e.compiles }()
	lim := e.cfg.Limits
	res, err := instrument.Instrument(wasm, instrument.Config{PollSkipping: true, Costs: e.cfg.Costs, Limits: lim.Module,
		MaxCustomBytes: lim.MaxCustomBytes, StripCustom: lim.StripCustom})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	c, err := e.rt.CompileModule(ctx, res.Wasm)
	if err != nil {
		if e.isClosed() {
			return nil, errEngineClosed
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	if err := e.resolveImports(c); err != nil {
		c.Close(ctx)
		return nil, fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	exports := c.ExportedFunctions()
	return &Module{engine: e, hash: h, report: res.Report, compiled: c, exports: exports,
		kind: kindOf(exports), minPages: res.Report.MemoryMinPages}, nil
}

func (e *Engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// resolveImports checks that every import of c is something the engine
// provides, with the same signature: a module that could never be
// instantiated is refused at Compile, naming what is missing, rather than
// failing every guest later.
func (e *Engine) resolveImports(c wazero.CompiledModule) error {
	e.providedMu.Lock()
	defer e.providedMu.Unlock()
	if e.cfg.StubMissingImports != nil {
		if err := e.defineStubs(c); err != nil {
			return err
		}
	}
	for _, d := range c.ImportedFunctions() {
		mod, name, _ := d.Import()
		want := funcSig{d.ParamTypes(), d.ResultTypes()}
		got, ok := e.provided[importKey{mod, name}]
		switch {
		case !ok:
			return &ImportError{Module: mod, Name: name, Kind: "function", Reason: "not provided by the engine (WASI preview 1, and the host modules in EngineConfig.HostModules and WazeroHostModules)"}
		case !slices.Equal(got.params, want.params) || !slices.Equal(got.results, want.results):
			return &ImportError{Module: mod, Name: name, Kind: "function",
				Reason: fmt.Sprintf("imported as %v but the engine provides %v", want, got)}
		}
	}
	for _, d := range c.ImportedMemories() {
		mod, name, _ := d.Import()
		return &ImportError{Module: mod, Name: name, Kind: "memory", Reason: "the engine provides no memories; define the memory in the module"}
	}
	return nil
}

// defineStubs defines, for each module that c imports functions from and
// that nothing provides, a host module of stubs returning zeros;
// providedMu is held.
func (e *Engine) defineStubs(c wazero.CompiledModule) error {
	missing := map[string][]api.FunctionDefinition{}
	var order []string
	for _, d := range c.ImportedFunctions() {
		mod, _, _ := d.Import()
		if e.rt.Module(mod) != nil {
			continue // provided (perhaps partly: resolution judges)
		}
		if missing[mod] == nil {
			order = append(order, mod)
		}
		missing[mod] = append(missing[mod], d)
	}
	for _, mod := range order {
		b := e.rt.NewHostModuleBuilder(mod)
		seen := map[string]bool{}
		for _, d := range missing[mod] {
			_, name, _ := d.Import()
			if seen[name] {
				continue
			}
			seen[name] = true
			nResults := len(d.ResultTypes())
			b = b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
				clear(stack[:nResults])
			}), d.ParamTypes(), d.ResultTypes()).Export(name)
		}
		if _, err := b.Instantiate(context.Background()); err != nil {
			return fmt.Errorf("%w: stubbing imports of %q: %w", ErrInvalidModule, mod, err)
		}
		for _, d := range missing[mod] {
			_, name, _ := d.Import()
			e.provided[importKey{mod, name}] = funcSig{d.ParamTypes(), d.ResultTypes()}
			if seen[name] {
				seen[name] = false
				e.cfg.StubMissingImports(mod, name, d.ParamTypes(), d.ResultTypes())
			}
		}
	}
	return nil
}

// Close releases the runtime and every compiled module. Guests still
// running fail at their next host call.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	return errors.Join(e.rt.Close(ctx), e.cache.Close(ctx))
}

// instantiateWASI defines WASI preview 1: wazero's functions, with
// poll_oneoff replaced by this package's (wasi.go).
func instantiateWASI(ctx context.Context, r wazero.Runtime) (api.Module, error) {
	b := r.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	i32 := api.ValueTypeI32
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			g := guestFrom(ctx)
			stack[0] = uint64(g.pollOneoff(mod, uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])))
		}), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("in", "out", "nsubscriptions", "result.nevents").
		Export("poll_oneoff")
	return b.Instantiate(ctx)
}

// instantiateCheck defines the host module that every instrumented guest
// imports: one function, the fuel check. It finds its guest through the
// call's context, so one definition serves every guest of the runtime.
// checkFunction is the check's host function. It is a type of its own, not
// an api.GoModuleFunc closure, so that a suspended guest's stack holds one
// frame fewer between wazero and the coroutine switch (each is a return
// the CPU mispredicts at the resumption: see scheduler's stackfulRunner).
type checkFunction struct{}

func (*checkFunction) Call(ctx context.Context, mod api.Module, _ []uint64) {
	guestFrom(ctx).check(mod)
}

func instantiateCheck(ctx context.Context, r wazero.Runtime) (api.Module, error) {
	return r.NewHostModuleBuilder(instrument.DefaultImportModule).
		NewFunctionBuilder().
		WithGoModuleFunction(&checkFunction{}, nil, nil).
		Export(instrument.DefaultImportName).
		Instantiate(ctx)
}
