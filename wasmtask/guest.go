package wasmtask

import (
	"context"
	"errors"
	"io"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/wasmsched/wasmsched/scheduler"
)

// Interrupt selects what makes a guest reach its deadline.
type Interrupt uint8

const (
	// InterruptEpoch: the engine's epoch reaching the guest's deadline
	// (EpochDeadline epochs after it started or last resumed).
	InterruptEpoch Interrupt = iota
	// InterruptFuel: the guest spending its fuel slice.
	InterruptFuel
	// InterruptBoth: whichever comes first.
	InterruptBoth
)

func (i Interrupt) String() string {
	switch i {
	case InterruptFuel:
		return "fuel"
	case InterruptBoth:
		return "both"
	}
	return "epoch"
}

// Options configure one guest.
type Options struct {
	// Name labels the guest in errors, stats and CPU profiles.
	Name string
	// Export is the function to call after instantiation, with Args. Empty
	// means a WASI command: _start runs during instantiation with Argv,
	// Env, Stdin, Stdout, Stderr and FS. A reactor (a module exporting
	// _initialize) is initialized before Export is called, and must be
	// given one.
	Export string
	Args   []uint64
	// AllowCommandExports lets Export name a function of a WASI command
	// (a module exporting _start). Such a function runs without _start
	// having run: a command's runtime (libc, Go's) is then not set up, so
	// this is refused unless the caller says it knows the module.
	AllowCommandExports bool
	Argv                []string
	Env                 map[string]string
	Stdin               io.Reader
	Stdout              io.Writer
	Stderr              io.Writer
	FS                  wazero.FSConfig

	Interrupt Interrupt
	// EpochDeadline is how many epochs the guest runs before its policy is
	// consulted (default 1).
	EpochDeadline uint64
	// FuelBudget is the guest's total fuel: a guest that consumes more
	// fails with ErrOutOfFuel (0: unlimited). It is detected at the first
	// check point past the budget, and at the end of the call, so a guest
	// that returns succeeds iff it stayed within the budget.
	FuelBudget int64
	// FuelSlice is the fuel between two policy calls in fuel mode
	// (default 10,000,000: about 1 ms of guest time here).
	FuelSlice int64
	// MemoryLimitPages caps each memory of the instance (0: wazero's 4 GiB).
	MemoryLimitPages uint32
	// Policy decides at each deadline (default DeferredYield()).
	Policy Policy
}

// GuestStats are one guest's counters.
type GuestStats struct {
	FuelUsed      int64         // exact, per the instrumenter's cost rule
	Checks        int64         // host check calls
	SkippedChecks int64         // polls the guest answered itself, skipping the check (epoch mode: pollskip.go)
	EpochYields   int64         // suspensions at an epoch deadline
	FuelYields    int64         // suspensions at a fuel deadline
	GiveWayYields int64         // of EpochYields, those taken because a runtime timer was due or remote work waited
	HostWaits     int64         // suspensions in async host functions
	Immediate     int64         // yields through the immediate path
	Deferred      int64         // yields through the deferred path
	Custom        int64         // YieldCustom suspensions
	Polls         int64         // times the guest's task was polled
	Migrations    int64         // polls on another worker than the previous one
	Sleeps        int64         // WASI sleeps (poll_oneoff clock waits), each a suspension
	SchedYields   int64         // WASI sched_yield calls
	StdinWaits    int64         // suspensions waiting for Options.Stdin
	Suspended     time.Duration // time spent suspended
	MemoryPeak    int64         // largest linear memory, bytes
}

// Yields is the number of policy suspensions (epoch and fuel).
func (s GuestStats) Yields() int64 { return s.EpochYields + s.FuelYields }

// Result is a successful guest's outcome.
type Result struct {
	Values   []uint64 // the export's results
	ExitCode uint32   // a WASI command's exit code (0 here; non-zero is an error)
	Stats    GuestStats
}

type guestKey struct{}

// guestContext is the context a guest's calls run with: its embedder's,
// carrying the guest. wazero hands it to host functions as it was given,
// so the check finds the guest with one type test instead of a walk up
// the context chain (Value, for contexts derived from it).
type guestContext struct {
	context.Context
	g *guest
}

func (c *guestContext) Value(key any) any {
	if _, ok := key.(guestKey); ok {
		return c.g
	}
	return c.Context.Value(key)
}

// guestOf returns the guest a host function's ctx carries, or nil.
func guestOf(ctx context.Context) *guest {
	if c, ok := ctx.(*guestContext); ok {
		return c.g
	}
	g, _ := ctx.Value(guestKey{}).(*guest)
	return g
}

func guestFrom(ctx context.Context) *guest {
	g := guestOf(ctx)
	if g == nil {
		panic("wasmtask: host function called outside a wasmtask guest")
	}
	return g
}

// guest is one running instance. All its fields are used only from its
// task's coroutine.
type guest struct {
	m      *Module
	e      *Engine
	opts   Options
	co     *scheduler.Co   // the task of the current run (see begin)
	ctx    context.Context // the current run's context, carrying g
	mod    api.Module      // the instance, between open and close
	funcs  []exportFunc    // mod's exports called so far (see prepare)
	name   string
	hasE   bool // epoch interrupt
	hasF   bool // fuel interrupt
	policy Policy
	// constAct is the action of a built-in constant policy (hasConst):
	// the guest takes it without calling the policy.
	constAct Action
	hasConst bool
	// policyAct is the last answer of a policy that is not constant
	// (decide).
	policyAct Action

	fuel       fuelGlobal
	skips      pollSkip // the poll-skipping globals (pollskip.go)
	credit     int64    // Σ (value written − value replaced) on the fuel global
	sliceEnd   int64    // consumption at which the fuel slice ends
	armedAt    int64    // nanos() when the epoch deadline was last armed
	armedBump  uint64   // the engine's manual epoch increments then
	epochDelta uint64   // epochs from armedAt to the deadline
	clock      epochClock
	lastWorker int
	mem        *guestMemory // the guest's linear memory and its bounds
	stdin      *guestStdin  // Options.Stdin, read without blocking a worker
	// leftAt is when the worker moved on from the guest's current
	// suspension, if the check asked for it (suspendingUntimed); 0 while
	// it has not.
	leftAt   atomic.Int64
	openWait *counterShard // shard counting this guest as suspended, while it is
	failure  *Error
	stats    GuestStats

	labelled    *scheduler.Co // the task whose goroutine carries the pprof label
	noStart     bool          // an Instance: a command's _start is not run (NewInstance)
	holdsModule bool          // open counted the guest in the module (m.start)
	holdsMemory bool          // open admitted mem
}

// stop is panicked through wazero's frames to end a guest whose failure is
// already recorded (wazero turns a host panic into an error from Call).
type stop struct{}

// Spawn runs m as a task of the runtime (s may be a *scheduler.Runtime, or
// a Context/Co to spawn from inside a task). The guest is instantiated
// inside its task, so a long start function is preemptible too. Its
// JoinHandle yields a Result or an *Error.
//
// ctx is the guest's context. When it is cancelled or its deadline passes,
// the guest stops at its next check (at once if it is suspended) and fails
// with an *Error of Kind scheduler.ErrAborted whose Cause is
// context.Cause(ctx), so errors.Is(err, context.Canceled) (or
// DeadlineExceeded) holds. Host functions receive ctx, with wasmtask's own
// value added (HostCall.Context).
func Spawn(ctx context.Context, s scheduler.Spawner, m *Module, opts Options) *scheduler.JoinHandle[Result] {
	// The closure holds g, not a second copy of opts: it lives as long as
	// the task.
	g := newGuest(m, opts)
	return spawnGuestTask(ctx, s, g.name, func(co *scheduler.Co) (Result, error) {
		return g.runOnce(ctx, co)
	})
}

// spawnGuestTask spawns body as a stackful task that ctx's end aborts. A
// task cancelled before it starts (JoinHandle.Abort, the runtime's
// shutdown) fails with an *Error too, of the guest named name, with zero
// stats: its guest never ran.
func spawnGuestTask(ctx context.Context, s scheduler.Spawner, name string, body func(co *scheduler.Co) (Result, error)) *scheduler.JoinHandle[Result] {
	notStarted := func(reason error) (Result, error) {
		return Result{}, &Error{Kind: reason, Guest: name}
	}
	if ctx.Done() == nil {
		return scheduler.SpawnFuncNotStarted(s, body, notStarted)
	}
	var handle atomic.Pointer[scheduler.JoinHandle[Result]]
	h := scheduler.SpawnFuncNotStarted(s, func(co *scheduler.Co) (Result, error) {
		// Registered by the task itself, so that it is unregistered when
		// the task ends, on every path, and so that it only ever aborts a
		// task that has started (whose error then says why: see begin and
		// classify).
		stop := abortWhenDone(ctx, &handle)
		defer stop()
		return body(co)
	}, notStarted)
	handle.Store(h)
	return h
}

// abortWhenDone arms ctx's end to abort the task whose handle is (or will
// soon be) in handle, and returns the function that disarms it (false if
// it had fired). It is armed by the task itself, so the handle may not be
// stored yet when ctx ends: the abort waits the few instructions until it
// is.
func abortWhenDone(ctx context.Context, handle *atomic.Pointer[scheduler.JoinHandle[Result]]) (stop func() bool) {
	if ctx.Done() == nil {
		return func() bool { return true }
	}
	return context.AfterFunc(ctx, func() {
		h := handle.Load()
		for h == nil {
			runtime.Gosched()
			h = handle.Load()
		}
		h.Abort()
	})
}

func newGuest(m *Module, opts Options) *guest {
	if opts.EpochDeadline == 0 {
		opts.EpochDeadline = 1
	}
	if opts.FuelSlice <= 0 {
		opts.FuelSlice = 10_000_000
	}
	g := &guest{m: m, e: m.engine, opts: opts, name: opts.Name, policy: opts.Policy, lastWorker: -1}
	if g.policy == nil {
		g.policy = DeferredYield()
	}
	g.constAct, g.hasConst = constantAction(g.policy)
	g.hasE = opts.Interrupt == InterruptEpoch || opts.Interrupt == InterruptBoth
	g.hasF = opts.Interrupt == InterruptFuel || opts.Interrupt == InterruptBoth
	return g
}

// runOnce is a one-shot guest: instantiate (and initialize), call, close.
// The deferred calls also run when the task is unwound (Abort, Shutdown).
func (g *guest) runOnce(ctx context.Context, co *scheduler.Co) (res Result, err error) {
	defer func() { res, err = g.end(res, err) }()
	if err := g.begin(ctx, co); err != nil {
		return res, err
	}
	if err := g.callProblem(); err != nil {
		return res, err
	}
	defer g.close()
	if err := g.open(); err != nil {
		return res, err
	}
	if g.opts.Export == "" {
		return res, g.budgetCheck() // a WASI command that returned from _start: exit code 0
	}
	res.Values, err = g.call(g.opts.Export, g.opts.Args)
	return res, err
}

// begin binds g to the task that runs it and to ctx for one run: a
// one-shot guest's whole life, an Instance's creation or one of its calls.
// Stats, fuel and deadlines start from zero; the fuel global, if the
// instance already has one, is re-armed for this run's budget. It fails if
// ctx has already ended.
func (g *guest) begin(ctx context.Context, co *scheduler.Co) error {
	g.co, g.ctx = co, &guestContext{Context: ctx, g: g}
	g.failure, g.stats, g.lastWorker, g.openWait = nil, GuestStats{}, -1, nil
	g.e.stats.started.Inc()
	g.notePoll()
	if co != g.labelled { // an Instance's runs share its task: label it once
		g.labelled = co
		pprof.SetGoroutineLabels(g.e.labelContext(g.name))
	}
	g.sliceEnd = g.opts.FuelSlice
	g.credit = 0
	if g.fuel.ok() {
		g.stopSkips()                  // an Instance's previous call may have left some
		g.credit = int64(g.fuel.Get()) // consumed() is 0
		g.arm(0)
	}
	g.clock.rtOffset = nanos() - int64(co.Context().Runtime().Now())
	g.armEpoch(g.opts.EpochDeadline, nanos())
	if ctx.Err() != nil {
		return g.fail(scheduler.ErrAborted, context.Cause(ctx))
	}
	return nil
}

// end closes a run begun by begin: the run's stats go into the Result, the
// *Error and the engine's counters.
func (g *guest) end(res Result, err error) (Result, error) {
	if g.openWait != nil { // unwound (abort, shutdown) while suspended
		g.openWait.suspended.Dec()
		g.openWait = nil
	}
	g.e.stats.finished.Inc()
	g.stats.FuelUsed = g.consumed()
	if g.mem != nil {
		g.stats.MemoryPeak = g.mem.peak
	}
	g.e.stats.fuel.Add(g.stats.FuelUsed)
	res.Stats = g.stats
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Stats = g.stats
			g.e.stats.countFailure(e.Kind)
		}
	}
	return res, err
}

// callProblem is CheckCall's usage check, as an *Error.
func (g *guest) callProblem() error {
	if cause := g.m.callProblem(g.opts); cause != nil {
		return g.fail(ErrUsage, cause)
	}
	return nil
}

// open creates the instance: the module counted in (its code stays until
// close), the memory admitted against the guest's limit and the engine's
// budget before anything is allocated, the instance created (a command's
// _start runs here) and a reactor's _initialize called. On failure the
// caller calls close, which releases what open took.
func (g *guest) open() error {
	if err := g.m.start(); err != nil {
		return g.fail(ErrInstantiate, err)
	}
	g.holdsModule = true
	compiled, cerr := g.m.compiledCode()
	if cerr != nil {
		return g.fail(ErrInstantiate, cerr)
	}
	g.mem = &guestMemory{budget: &g.e.memory, limit: g.e.guestMemoryLimit(g.opts)}
	g.holdsMemory = true
	if refusal := g.mem.admit(g.m.minPages); refusal != nil {
		return g.fail(ErrMemoryLimit, refusal)
	}
	if g.opts.Stdin != nil && !inMemoryReader(g.opts.Stdin) {
		g.stdin = newGuestStdin(g, g.opts.Stdin)
	}
	mod, ierr := g.instantiate(experimental.WithMemoryAllocator(g.ctx, g.mem), compiled, g.moduleConfig())
	g.mod = mod
	if ierr != nil {
		return g.classify(ierr, true)
	}
	g.findFuel(mod)
	// The exports this guest is known to call get their call engines now,
	// with a small first stack (callstack.go); call finds them in funcs.
	if g.m.kind == KindReactor {
		g.prepare(initializeExport)
	}
	if g.opts.Export != "" {
		g.prepare(g.opts.Export)
	}
	if g.m.kind == KindReactor {
		if _, err := g.call(initializeExport, nil); err != nil {
			return err
		}
	}
	return nil
}

// call calls an export of the open instance. The api.Function is kept
// for the instance's later calls: wazero makes a new call engine (and its
// stack) for each ExportedFunction, more than a trivial call costs.
func (g *guest) call(export string, args []uint64) ([]uint64, error) {
	fn := g.function(export)
	if fn == nil {
		g.prepare(export) // an Instance's export called for the first time
		fn = g.function(export)
	}
	vals, err := fn.Call(g.ctx, args...)
	if err != nil {
		return nil, g.classify(err, false)
	}
	return vals, g.budgetCheck()
}

// close releases what open took, in reverse order; it may be called
// after a partial open, and more than once.
func (g *guest) close() {
	if g.fuel.ok() {
		g.credit, g.fuel = g.consumed(), fuelGlobal{} // consumed() stays right without the global
	}
	if g.mod != nil {
		g.mod.Close(context.Background())
		g.mod, g.funcs = nil, nil
	}
	if g.holdsMemory {
		g.mem.Free() // the instance's Close has freed it, unless instantiation failed half-way
		g.mem.release()
		g.holdsMemory = false
	}
	if g.holdsModule {
		g.m.end(context.Background())
		g.holdsModule = false
	}
}

// moduleConfig is the instance's configuration: WASI's clocks, its sleeps
// and sched_yield made suspensions of the guest's task (wasi.go), argv,
// env, stdio and files.
//
// The settings every guest shares are the engine's (baseModuleConfig):
// each With call copies the whole configuration, so the guest pays only
// for its own. wazero runs no start function: instantiate runs a
// command's _start, and open a reactor's _initialize.
func (g *guest) moduleConfig() wazero.ModuleConfig {
	mc := g.e.moduleConfig.WithNanosleep(g.nanosleep).WithOsyield(g.schedYield)
	if len(g.opts.Argv) > 0 {
		mc = mc.WithArgs(g.opts.Argv...)
	}
	for k, v := range g.opts.Env {
		mc = mc.WithEnv(k, v)
	}
	if g.stdin != nil {
		mc = mc.WithStdin(g.stdin)
	} else if g.opts.Stdin != nil {
		mc = mc.WithStdin(g.opts.Stdin)
	}
	if g.opts.Stdout != nil {
		mc = mc.WithStdout(g.opts.Stdout)
	}
	if g.opts.Stderr != nil {
		mc = mc.WithStderr(g.opts.Stderr)
	}
	if g.opts.FS != nil {
		mc = mc.WithFSConfig(g.opts.FS)
	}
	return mc
}

// instantiate instantiates the guest and runs a command's _start
// (Options.Export empty), as wazero's InstantiateModule would with its
// default start functions (runStart: on a smaller first stack). wazero
// indexes the slice its allocator returns for the memory's minimum
// without checking for nil, so a minimum refused inside instantiation (one
// admit could not see: an unexported memory) surfaces as a panic, turned
// back here into the refusal it is.
func (g *guest) instantiate(ctx context.Context, c wazero.CompiledModule, mc wazero.ModuleConfig) (mod api.Module, err error) {
	defer func() {
		if v := recover(); v != nil {
			if g.mem.refusal == nil || scheduler.IsUnwind(v) {
				panic(v)
			}
			if _, ok := v.(stop); ok {
				panic(v)
			}
			mod, err = nil, g.fail(ErrMemoryLimit, g.mem.refusal)
		}
	}()
	mod, err = g.e.rt.InstantiateModule(ctx, c, mc)
	if err == nil && g.opts.Export == "" && g.m.kind == KindCommand && !g.noStart {
		err = runStart(ctx, mod)
	}
	return mod, err
}

type randReader struct{}

func (randReader) Read(p []byte) (int, error) { return cryptoRand(p) }
