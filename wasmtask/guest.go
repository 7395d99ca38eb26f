package wasmtask

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"regexp"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask/instrument"
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

func (g *guest) consumed() int64 {
	if g.fuel == nil {
		return g.credit
	}
	return g.credit - int64(g.fuel.Get())
}

// arm writes the next fuel value: the smallest of the budget left, the
// slice left (fuel mode) and the poll interval (epoch mode).
//
// used is the guest's consumption, as consumed() would return it: the
// fuel global has not changed since it was read (the guest is inside the
// host call), so the current value is credit − used and needs no read.
func (g *guest) arm(used int64) {
	v := int64(math.MaxInt64 / 2)
	if g.opts.FuelBudget > 0 {
		v = min(v, g.opts.FuelBudget-used)
	}
	if g.hasF {
		v = min(v, g.sliceEnd-used)
	}
	if g.hasE {
		v = min(v, g.e.cfg.PollInterval)
	}
	v = max(v, 0)
	cur := g.credit - used
	g.fuel.Set(uint64(v))
	g.credit += v - cur
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

// budgetCheck catches a budget overrun in the last segment before return,
// which no check point follows: the budget is exact for a whole call (it
// fails iff the guest consumed more than the budget).
func (g *guest) budgetCheck() error {
	if g.opts.FuelBudget > 0 && g.fuel != nil && g.consumed() > g.opts.FuelBudget {
		return g.fail(ErrOutOfFuel, fmt.Errorf("used %d of %d", g.consumed(), g.opts.FuelBudget))
	}
	return nil
}

// fail records the guest's failure (the first one wins).
func (g *guest) fail(kind, cause error) error {
	if g.failure == nil {
		g.failure = &Error{Kind: kind, Cause: cause, Guest: g.name}
	}
	return g.failure
}

// classify turns the error of an instantiation or a call into an *Error.
// A guest that failed after a memory.grow was refused (a C guest's abort
// on a failed malloc, a Go guest's "out of memory" exit) failed because of
// its memory bound: it is reported as ErrMemoryLimit, with both causes.
func (g *guest) classify(err error, instantiating bool) error {
	if g.failure != nil {
		return g.failure
	}
	if reason := g.co.CancelReason(); reason != nil {
		return g.fail(reason, nil) // Kind scheduler.ErrAborted or ErrShutdown
	}
	memory := func() error {
		return g.fail(ErrMemoryLimit, &afterRefusal{refusal: g.mem.refusal, err: err})
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch {
		case exit.ExitCode() == 0:
			return nil
		case g.mem.refusal != nil:
			return memory()
		}
		return g.fail(ErrExit, err)
	}
	switch {
	case isTrap(err):
		if g.mem.refusal != nil {
			return memory()
		}
		return g.fail(ErrTrap, err)
	case instantiating && g.mem.refusal != nil:
		return memory()
	case strings.Contains(err.Error(), "(recovered by wazero)"):
		return g.fail(ErrHost, err) // a Go panic inside one of wazero's WASI functions
	case instantiating && strings.Contains(err.Error(), "not instantiated"):
		return g.fail(ErrInvalidModule, err) // an import the engine's checks missed
	case instantiating:
		return g.fail(ErrInstantiate, err)
	}
	return g.fail(ErrTrap, err)
}

// segmentOutOfBounds is how wazero reports an active data or element
// segment that does not fit (a trap, in the spec's terms).
var segmentOutOfBounds = regexp.MustCompile(`^(data|element|elem)\[\d+\]: out of bounds`)

// isTrap reports whether err is a Wasm trap: wazero's runtime error (its
// type is internal: "wasm error: ..." from a call, bare inside a start
// function's failure) or a segment out of bounds at instantiation.
func isTrap(err error) bool {
	if strings.Contains(err.Error(), "wasm error:") {
		return true
	}
	for e := range errorChain(err) {
		if fmt.Sprintf("%T", e) == "*wasmruntime.Error" || segmentOutOfBounds.MatchString(e.Error()) {
			return true
		}
	}
	return false
}

// errorChain yields err and everything it wraps.
func errorChain(err error) iter.Seq[error] {
	return func(yield func(error) bool) {
		stack := []error{err}
		for len(stack) > 0 {
			e := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if e == nil {
				continue
			}
			if !yield(e) {
				return
			}
			switch u := e.(type) {
			case interface{ Unwrap() error }:
				stack = append(stack, u.Unwrap())
			case interface{ Unwrap() []error }:
				stack = append(stack, u.Unwrap()...)
			}
		}
	}
}

// afterRefusal is the cause of a guest that failed after its memory bound
// refused a grow: the refusal and how the guest ended.
type afterRefusal struct {
	refusal *memoryRefusal
	err     error
}

func (a *afterRefusal) Error() string {
	return fmt.Sprintf("%v; the guest then failed: %v", a.refusal, a.err)
}

func (a *afterRefusal) Unwrap() []error { return []error{a.refusal, a.err} }

// callPolicy asks the policy. A panicking policy is the embedder's bug: the
// guest fails with ErrEmbedder, not as a trap of its own.
func (g *guest) callPolicy(info GuestInfo) Action {
	defer func() {
		if v := recover(); v != nil {
			g.fail(ErrEmbedder, &PanicError{Where: "policy", Value: v, Stack: debug.Stack()})
			panic(stop{})
		}
	}()
	return g.policy(info)
}

// check is the injected host call: the fuel counter went negative.
func (g *guest) check(mod api.Module) {
	if g.fuel == nil {
		gl, ok := mod.ExportedGlobal(instrument.DefaultFuelExport).(api.MutableGlobal)
		if !ok {
			g.fail(ErrInstantiate, errors.New("module is not instrumented: no mutable fuel global"))
			panic(stop{})
		}
		g.fuel = gl
	}
	g.stats.Checks++
	g.co.CheckCancelled() // Abort takes effect here, at the next check
	used := g.consumed()
	if g.opts.FuelBudget > 0 && used > g.opts.FuelBudget {
		g.fail(ErrOutOfFuel, fmt.Errorf("used %d of %d", used, g.opts.FuelBudget))
		panic(stop{})
	}
	// One clock read per check in epoch mode (none in fuel mode unless a
	// deadline is reached), shared by the deadline test, the policy's info
	// and the suspension's start: at a 1-fuel slice the reads are a fifth
	// of a suspend + resume round trip.
	now := int64(-1)
	if g.hasE {
		now = nanos()
	}
	switch {
	case g.hasF && used >= g.sliceEnd:
		g.deadlineReached(ReasonFuel, used, now)
	case g.hasE && g.epochsAt(now) >= g.epochDelta:
		g.deadlineReached(ReasonEpoch, used, now)
	case g.hasE && g.co.Context().TimersDue():
		// A runtime timer has expired while this guest holds the worker:
		// fire it onto this worker and give way, so that the woken task
		// runs now instead of at the guest's next deadline.
		g.co.Context().FireTimers()
		g.giveWay(used, now)
	case g.hasE && g.co.Context().RemoteWorkWaiting():
		// A task woken or spawned from outside waits in the injector: give
		// way likewise (a worker with deferred tasks takes the injector
		// first), so an external wake does not wait for a whole slice.
		g.giveWay(used, now)
	}
	g.arm(used)
}

// giveWay asks the policy, as at an epoch deadline, but acts only if it
// answers with a deferred yield, a custom yield or a trap: only then does
// the worker get to the woken task (an immediate yield puts the guest
// straight back in front of it, and repeating that at every check would
// only shred the guest's slices).
func (g *guest) giveWay(used, now int64) {
	act := g.callPolicy(g.info(ReasonEpoch, used, now))
	if act.Kind == ActContinue || (act.Kind == ActYield && g.resolvePath(act.Path) == scheduler.PathImmediate) {
		return
	}
	g.stats.GiveWayYields++
	g.apply(ReasonEpoch, act, used, now)
}

func (g *guest) info(reason Reason, used, now int64) GuestInfo {
	cx := g.co.Context()
	return GuestInfo{Name: g.name, Task: cx.TaskID(), Worker: cx.WorkerID(), Epoch: g.e.epochAt(now),
		FuelUsed: used, Yields: g.stats.Yields(), Reason: reason}
}

func (g *guest) resolvePath(p scheduler.YieldPath) scheduler.YieldPath {
	if p == scheduler.PathDefault {
		return g.co.Context().Runtime().DefaultYield()
	}
	return p
}

// deadlineReached consults the policy and carries out its action. now is
// the check's clock reading, or -1 if it took none (fuel mode).
func (g *guest) deadlineReached(reason Reason, used, now int64) {
	if now < 0 {
		now = nanos()
	}
	g.apply(reason, g.callPolicy(g.info(reason, used, now)), used, now)
}

// apply carries out a policy's action at consumption used and clock
// reading now; after a suspension now becomes the resumption's reading.
func (g *guest) apply(reason Reason, act Action, used, now int64) {
	switch act.Kind {
	case ActYield, ActYieldCustom:
		if reason == ReasonFuel {
			g.stats.FuelYields++
		} else {
			g.stats.EpochYields++
		}
		sh := g.e.stats.shard(g.co.Context().WorkerID())
		sh.suspended.Inc()
		g.openWait = sh
		if act.Kind == ActYieldCustom {
			g.stats.Custom++
			sh.yields[reason][pathCustom].Inc()
			scheduler.Await(g.co, act.Future)
		} else {
			path := g.resolvePath(act.Path)
			if path == scheduler.PathImmediate {
				g.stats.Immediate++
				sh.yields[reason][pathImmediate].Inc()
			} else {
				g.stats.Deferred++
				sh.yields[reason][pathDeferred].Inc()
			}
			g.co.YieldVia(path)
		}
		now = g.resumed(sh, now)
	case ActTrap:
		g.policyTrap(act.Err)
	}
	// Re-arm relative to now: time spent suspended is not charged.
	suspended := act.Kind != ActContinue
	if reason == ReasonFuel {
		slice := int64(act.Delta)
		if slice <= 0 {
			slice = g.opts.FuelSlice
		}
		g.sliceEnd = used + slice
	}
	if g.hasE && (reason == ReasonEpoch || suspended) {
		delta := g.opts.EpochDeadline
		if reason == ReasonEpoch && act.Delta > 0 {
			delta = act.Delta
		}
		g.armEpoch(delta, now)
	}
}

// policyTrap stops the guest as its policy said.
func (g *guest) policyTrap(err error) {
	if err == nil {
		err = errors.New("trapped by policy")
	}
	g.fail(ErrPolicyTrap, err)
	panic(stop{})
}

// armEpoch sets the epoch deadline delta epochs from now. Epochs are
// counted from this moment — elapsed EpochTicks plus IncrementEpoch calls
// — not to the next boundary of the engine's tick grid, so every slice is a
// full delta long: with grid deadlines a guest resumed just before a
// boundary would get a sliver of a slice, and guests sharing a worker
// would get unequal shares.
func (g *guest) armEpoch(delta uint64, now int64) {
	g.armedAt, g.armedBump, g.epochDelta = now, g.e.bump.Load(), delta
}

// epochsAt is the number of epochs between the arming and now (a nanos()
// reading).
func (g *guest) epochsAt(now int64) uint64 {
	return uint64((now-g.armedAt)/int64(g.e.cfg.EpochTick)) + g.e.bump.Load() - g.armedBump
}

// resumed accounts for a suspension that started at start (a nanos()
// reading) and counted itself in sh, and returns the clock reading taken
// now: one read on each side of a suspension, no closure on the hot path.
func (g *guest) resumed(sh *counterShard, start int64) int64 {
	sh.suspended.Dec()
	g.openWait = nil
	now := nanos()
	g.stats.Suspended += time.Duration(now - start)
	g.notePoll()
	return now
}

func (g *guest) notePoll() {
	g.stats.Polls++
	w := g.co.Context().WorkerID()
	if g.lastWorker >= 0 && w != g.lastWorker {
		g.stats.Migrations++
	}
	g.lastWorker = w
}

// hostFailure records a host function's panic (an embedder bug) and stops
// the guest.
func (g *guest) hostFailure(fn string, v any) {
	if scheduler.IsUnwind(v) {
		panic(v) // cancellation must pass through
	}
	if _, ok := v.(stop); ok {
		panic(v)
	}
	g.fail(ErrEmbedder, &PanicError{Where: "host function " + fn, Value: v, Stack: debug.Stack()})
	panic(stop{})
}

type randReader struct{}

func (randReader) Read(p []byte) (int, error) { return cryptoRand(p) }
