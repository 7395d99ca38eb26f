package wasmtask

import (
	"context"
	"errors"
	"io"
	"runtime/pprof"
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
	// Env, Stdin, Stdout, Stderr and FS.
	Export string
	Args   []uint64
	Argv   []string
	Env    map[string]string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	FS     wazero.FSConfig

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
	// Context is passed to host functions (default context.Background()).
	Context context.Context
}

// GuestStats are one guest's counters.
type GuestStats struct {
	FuelUsed      int64         // exact, per the instrumenter's cost rule
	Checks        int64         // host check calls
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

func guestFrom(ctx context.Context) *guest {
	g, _ := ctx.Value(guestKey{}).(*guest)
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
	co     *scheduler.Co
	name   string
	hasE   bool // epoch interrupt
	hasF   bool // fuel interrupt
	policy Policy

	fuel       api.MutableGlobal
	credit     int64  // Σ (value written − value replaced) on the fuel global
	sliceEnd   int64  // consumption at which the fuel slice ends
	armedAt    int64  // nanos() when the epoch deadline was last armed
	armedBump  uint64 // the engine's manual epoch increments then
	epochDelta uint64 // epochs from armedAt to the deadline
	lastWorker int
	mem        *guestMemory  // the guest's linear memory and its bounds
	stdin      *guestStdin   // Options.Stdin, read without blocking a worker
	openWait   *counterShard // shard counting this guest as suspended, while it is
	failure    *Error
	stats      GuestStats
}

// stop is panicked through wazero's frames to end a guest whose failure is
// already recorded (wazero turns a host panic into an error from Call).
type stop struct{}

// Spawn runs m as a task of the runtime (s may be a *scheduler.Runtime, or
// a Context/Co to spawn from inside a task). The guest is instantiated
// inside its task, so a long start function is preemptible too. Its
// JoinHandle yields a Result or an *Error.
func Spawn(s scheduler.Spawner, m *Module, opts Options) *scheduler.JoinHandle[Result] {
	return scheduler.SpawnFunc(s, func(co *scheduler.Co) (Result, error) {
		g := newGuest(m, opts, co)
		return g.run()
	})
}

func newGuest(m *Module, opts Options, co *scheduler.Co) *guest {
	if opts.EpochDeadline == 0 {
		opts.EpochDeadline = 1
	}
	if opts.FuelSlice <= 0 {
		opts.FuelSlice = 10_000_000
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	g := &guest{m: m, e: m.engine, opts: opts, co: co, name: opts.Name, policy: opts.Policy, lastWorker: -1}
	if g.policy == nil {
		g.policy = DeferredYield()
	}
	g.hasE = opts.Interrupt == InterruptEpoch || opts.Interrupt == InterruptBoth
	g.hasF = opts.Interrupt == InterruptFuel || opts.Interrupt == InterruptBoth
	return g
}

func (g *guest) run() (res Result, err error) {
	g.e.stats.started.Inc()
	g.notePoll()
	defer func() {
		if g.openWait != nil { // unwound (abort, shutdown) while suspended
			g.openWait.suspended.Dec()
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
	}()
	labels := pprof.Labels("wasm_guest", g.name)
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), labels))
	ctx := context.WithValue(g.opts.Context, guestKey{}, g)

	g.sliceEnd = g.opts.FuelSlice
	g.armEpoch(g.opts.EpochDeadline, nanos())
	if err := g.m.start(); err != nil {
		return res, g.fail(ErrInstantiate, err)
	}
	defer g.m.end(context.Background())
	compiled, cerr := g.m.compiledCode()
	if cerr != nil {
		return res, g.fail(ErrInstantiate, cerr)
	}
	if cause := g.m.callProblem(g.opts); cause != nil {
		return res, g.fail(ErrUsage, cause)
	}
	// Memory is admitted before anything is allocated: the module's
	// minimum against the guest's limit and the engine's budget.
	g.mem = &guestMemory{budget: &g.e.memory, limit: g.e.guestMemoryLimit(g.opts)}
	defer func() {
		g.mem.Free() // the instance's Close has freed it, unless instantiation failed half-way
		g.mem.release()
	}()
	if refusal := g.mem.admit(g.m.minPages); refusal != nil {
		return res, g.fail(ErrMemoryLimit, refusal)
	}
	if g.opts.Stdin != nil && !inMemoryReader(g.opts.Stdin) {
		g.stdin = newGuestStdin(g, g.opts.Stdin)
	}
	mod, ierr := g.instantiate(experimental.WithMemoryAllocator(ctx, g.mem), compiled, g.moduleConfig())
	if mod != nil {
		defer mod.Close(context.Background())
	}
	if ierr != nil {
		return res, g.classify(ierr, true)
	}
	if g.opts.Export == "" {
		return res, g.budgetCheck() // a WASI command that returned from _start: exit code 0
	}
	vals, cerr2 := mod.ExportedFunction(g.opts.Export).Call(ctx, g.opts.Args...)
	if cerr2 != nil {
		return res, g.classify(cerr2, false)
	}
	res.Values = vals
	return res, g.budgetCheck()
}

// moduleConfig is the instance's configuration: WASI's clocks, its sleeps
// and sched_yield made suspensions of the guest's task (wasi.go), argv,
// env, stdio and files.
func (g *guest) moduleConfig() wazero.ModuleConfig {
	mc := wazero.NewModuleConfig().WithName("").
		WithSysNanotime().WithSysWalltime().
		WithNanosleep(g.nanosleep).WithOsyield(g.schedYield).
		WithRandSource(randReader{})
	if g.opts.Export != "" {
		mc = mc.WithStartFunctions()
	}
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

// instantiate instantiates the guest. wazero indexes the slice its
// allocator returns for the memory's minimum without checking for nil, so
// a minimum refused inside instantiation (one admit could not see: an
// unexported memory) surfaces as a panic, turned back here into the
// refusal it is.
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
	return g.e.rt.InstantiateModule(ctx, c, mc)
}

type randReader struct{}

func (randReader) Read(p []byte) (int, error) { return cryptoRand(p) }
