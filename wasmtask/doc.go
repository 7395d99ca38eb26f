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
// IncrementEpoch. It is computed from the monotonic clock at each check,
// not by a ticker goroutine: when guests hold every P a ticker cannot run,
// which is the very starvation this package exists to prevent.
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
//
// # Untrusted guests: what is bounded
//
// Compile refuses a module over Limits.MaxModuleBytes, one that does not
// decode or validate, and one that imports a function or memory the engine
// does not provide (WASI preview 1, and EngineConfig.HostModules), naming
// it: such a module could never run. Every guest's linear memory is made by
// the guest's own allocator (memory.go): bounded by the guest's limit and
// the engine's MemoryBudget (a memory.grow past either returns -1; a
// minimum past either is refused before instantiation), grown lazily
// (mmap'd, no zeroing or copying) and unmapped when the guest ends. WASI
// calls that wait (sleeps, sched_yield, stdin) suspend the guest's task
// instead of blocking its worker (wasi.go). Fuel, epochs and Abort bound
// CPU. Not bounded by the budget: wazero's own structures for a guest
// (its call stack, up to wazero's fixed ceiling, and its tables).
//
// # Errors, cancellation, observability
//
// A guest's JoinHandle returns a Result or an *Error whose Kind is one of
// ErrInvalidModule, ErrUsage, ErrTrap, ErrOutOfFuel, ErrMemoryLimit,
// ErrInstantiate, ErrHost, ErrPolicyTrap, ErrExit, ErrEmbedder — or
// scheduler.ErrAborted / ErrShutdown. FailureKind names the kind and its
// family (an invalid module, a wrong call, the guest's failure, the
// embedder's bug, a cancellation). Abort stops a running guest at its next
// check and a suspended one (yielded, asleep, waiting for a host function
// or stdin) at once; the module instance is closed and no goroutine is
// left. Each guest reports GuestStats (fuel, yields by reason and path,
// host waits, sleeps, polls, migrations, suspended time, peak memory); the
// engine aggregates them in EngineStats for the metrics package. The
// goroutine running a guest carries the pprof label
// wasm_guest=<Options.Name>, so CPU profiles show time per guest.
//
// # Invariants
//
//   - A guest is instantiated inside its task: a long start function is
//     preemptible and abortable like any other code.
//   - One module instance per task; it is closed when the task ends, on
//     every path.
//   - A guest never crashes a worker: traps, host errors and panics become
//     its *Error.
//   - A guest's memory is counted in the budget from its admission to its
//     end, on every path (admit, each grow, Free or release).
//
// See Example for an embedding: engine, policy, spawn, async host function.
package wasmtask
