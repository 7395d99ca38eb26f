// Package wasmtask runs WebAssembly guests as tasks of a scheduler.Runtime,
// preemptible although Go cannot preempt wazero's compiled code.
//
// # How a guest is made preemptible
//
// Engine.Compile instruments and compiles a module once per distinct
// bytes (a cache keyed by SHA-256); the *Module keeps its compiled code
// until Module.Close (guests already running finish first) or Engine.Close.
//
// Instrumented (package instrument), the guest counts its own fuel in an
// exported i64 global and calls the host import wasmsched.check whenever
// the counter goes negative, at the latest at the next function entry or
// loop header. The guest runs on a stackful task
// (scheduler.SpawnFunc): wazero executes it on the task's coroutine, and
// the check — a Go host function — can suspend the whole wazero call stack
// by suspending the coroutine. While suspended the guest costs no worker.
//
// The counter is armed with the smallest of: the fuel budget left, the fuel
// slice left (fuel interrupt) and the poll interval (epoch interrupt,
// EngineConfig.PollInterval, default 20,000 fuel ≈ 1.5 µs of guest time).
// Fuel consumed is exact: Σ(written − replaced) − current, per the
// instrumenter's contract.
//
// The epoch advances with time (EpochTick, default 1 ms) and with
// IncrementEpoch. It is computed from the monotonic clock at the checks,
// not by a ticker goroutine: when guests hold every P a ticker cannot run,
// which is the very starvation this package exists to prevent. Most
// checks estimate the time from the fuel used since the last read and the
// guest's measured rate, and read the clock only when the estimate nears
// the next event, after 64 estimates in a row, and before acting
// (epochclock.go). On wazero's compiler the guest answers those polls
// itself: each check tells it how many of the next polls would be
// estimates with nothing to do, and it refills its own counter that many
// times without calling the host, unless its attention word is set — the
// runtime sets it when a task is pushed to the injector, a timer becomes
// the earliest or the guest is aborted (scheduler.Context.SetAttention).
// IncrementEpoch is seen at the next real check, within 64 polls
// (pollskip.go; GuestStats.SkippedChecks counts the skipped polls).
//
// A suspended guest holds its coroutine's goroutine stack, its wazero
// instance, and the call engines of the exports it calls, each of which
// starts with a small native stack that grows as the guest needs
// (callstack.go).
//
// # One-shot guests, instances, reactors
//
// Spawn runs a one-shot guest: instantiate, call one export (or a WASI
// command's _start), close — one module instance per task. An Instance
// (NewInstance) is a plugin: instantiated once, then called many times
// with its state kept; each Call runs on the instance's own task (parked
// between calls, so it keeps its grown stack), with its own fuel
// budget, deadlines and GuestStats, and calls on one instance run one at a
// time, in arrival order. A call that fails once the guest has run poisons
// the instance until Reset. CallBytes passes bytes in and out through a
// guest-exported allocator; WithMemory reads and writes guest memory
// between calls. A Pool holds up to Max instances of a module, so that
// that many calls run at once; it discards poisoned instances and closes
// idle ones after a while.
//
// Module.Kind tells a WASI reactor (it exports _initialize) from a command
// (it exports _start) and from a plain library: a reactor's _initialize is
// called once, inside the task that instantiates it, before any export;
// calling an export of a command is refused (its runtime was never set up
// by _start) unless Options.AllowCommandExports says the caller knows the
// module.
//
// # Deadlines and policies
//
// When the guest's epoch deadline passes (EpochDeadline epochs after it
// started or last resumed) or its fuel slice is spent, its Policy decides,
// as Wasmtime's epoch_deadline_callback does (here for fuel too):
// Continue(delta) keeps running; Yield(delta, path) suspends and re-enters
// through scheduler.PathImmediate (self-wake: LIFO slot, stealable) or
// PathDeferred (yield_now: after the worker's other ready work and a timer
// poll, never stolen); YieldCustom(delta, future) suspends until a future
// completes (a Sleep, a token bucket, a tenant gate); Trap(err) stops the
// guest with ErrPolicyTrap. The default is Yield on the deferred path.
// Deadlines are re-armed on resume, so time spent suspended is not charged.
// EpochDeadline counts epochs from the moment the guest started or
// resumed (elapsed EpochTicks plus IncrementEpoch calls), not to the next
// boundary of a global tick grid, so every slice is full length and guests
// sharing a worker get equal shares. In epoch mode a guest also gives way
// (reason epoch, counted in GuestStats.GiveWayYields) when a runtime timer
// is due — the check fires it onto the guest's worker — or when tasks wait
// in the injector (woken or spawned from outside): on the deferred path the
// woken task then runs within microseconds instead of after the slice.
// A fuel budget is exact per call: a guest that returns succeeds iff it
// consumed no more than FuelBudget.
//
// # Host functions
//
// EngineConfig.HostModules declares the embedder's host functions once per
// engine; each call finds its guest through the call's context. A host
// function may finish at once or call HostCall.Await to start Go-side work
// and suspend the guest until a completion callback runs on any goroutine.
// EngineConfig.WazeroHostModules brings host modules written for wazero's
// HostModuleBuilder unchanged (HostCallFrom gives them the HostCall).
// HostCall.FuelConsumed is the run's exact fuel at the host call.
// EngineConfig.StubMissingImports, for tools, turns imports nothing
// provides into functions returning zeros.
//
// # Untrusted guests: what is bounded
//
// Compile decodes a module with the instrumenter's own decoder before
// wazero sees it: every count is checked against the bytes that hold it,
// a name section that does not parse is dropped (one that does is
// re-encoded), other custom sections are kept within a budget, and
// Limits bound what the module may declare (defaults: the WebAssembly JS
// API's limits — see instrument.Limits — and 1 GiB of module). Every
// table is given a maximum (Limits.Module.TableMaximum), so table.grow
// cannot ask for 2^32 elements. A module that imports a function or memory
// the engine does not provide (WASI preview 1, and EngineConfig.HostModules)
// is refused, naming the import: it could never run. All of these fail
// with ErrInvalidModule; compiles are single-flight per module and at most
// MaxConcurrentCompiles at once.
//
// Every guest's linear memory is made by the guest's own allocator
// (memory.go): bounded by the guest's limit (Options.MemoryLimitPages, else
// EngineConfig.GuestMemoryLimit; default 4 GiB) and the engine's
// MemoryBudget (default none): a memory.grow past either returns -1, a
// minimum past either is refused before instantiation (ErrMemoryLimit,
// also from CheckCall). Growth is lazy (mmap'd, no zeroing or copying) and
// the pages are unmapped when the guest ends. WASI calls that wait
// (poll_oneoff's sleeps and stdin, sched_yield, stdin reads) suspend the
// guest's task instead of blocking its worker (wasi.go). Fuel budgets,
// epochs and Abort bound CPU.
//
// Not bounded by the budget: wazero's own structures for a guest (its call
// stack, which unbounded recursion grows to wazero's fixed ceiling, the
// compiled code, tables within their maximum); and compile time, which
// wazero's compiler spends superlinearly on some shapes (many loops in one
// function): bound it with the module size a service accepts.
//
// # Errors, cancellation, observability
//
// A guest's JoinHandle returns a Result or an *Error whose Kind is one of
// ErrInvalidModule, ErrUsage, ErrTrap, ErrOutOfFuel, ErrMemoryLimit,
// ErrInstantiate, ErrHost, ErrPolicyTrap, ErrExit, ErrEmbedder — or
// scheduler.ErrAborted / ErrShutdown, also when the guest is cancelled
// before it starts (its Stats are then zero). FailureKind names the kind
// and its family (an invalid module, a wrong call, the guest's failure,
// the embedder's bug, a cancellation).
//
// Every entry point that runs guest code takes a context.Context first
// (Spawn, NewInstance, Instance.Call, CallBytes, Reset). When it is
// cancelled or its deadline passes, the guest stops at its next check, or
// at once if it is suspended (yielded, asleep, waiting for a host function
// or stdin), and fails with Kind scheduler.ErrAborted and Cause
// context.Cause(ctx): errors.Is(err, context.Canceled) holds. Host
// functions receive that context (HostCall.Context). JoinHandle.Abort does
// the same without a cause. A one-shot guest's module instance is then
// closed; an Instance is poisoned. No goroutine is left. Each guest reports GuestStats (fuel, yields by reason and path,
// host waits, sleeps, polls, migrations, suspended time, peak memory); the
// engine aggregates them in EngineStats for the metrics package. The
// goroutine running a guest carries the pprof label
// wasm_guest=<Options.Name>, so CPU profiles show time per guest.
//
// # Invariants
//
//   - A guest is instantiated inside its task: a long start function is
//     preemptible and abortable like any other code.
//   - A one-shot guest has one module instance, closed when its task
//     ends, on every path. An Instance's module instance lives from
//     NewInstance to Close (or Reset); only the task of the call in
//     progress touches it.
//   - Fuel, stats and deadlines are per run (a one-shot guest, or one
//     Instance call): each run starts from zero.
//   - A guest never crashes a worker: traps, host errors and panics become
//     its *Error.
//   - A guest's memory is counted in the budget from its admission to its
//     end, on every path (admit, each grow, Free or release); an
//     Instance's, from NewInstance to Close.
//
// See Example for an embedding: engine, policy, spawn, async host function.
package wasmtask
