// Package instrument rewrites a WebAssembly binary so that the guest meters
// its own fuel and calls the host at bounded intervals. It is a pure
// function from bytes to bytes: it knows nothing about scheduling and does
// not import wazero. wasmtask uses it to make guests preemptible: the host
// suspends (or traps) the guest from inside the injected check call.
//
// # What is injected
//
// Instrument decodes every section and every instruction (Wasm 2.0 with
// multi-value, bulk memory, reference types, SIMD, sign extension and
// non-trapping conversions, plus the experimental features wazero v1.12
// enables: tail calls, extended constant expressions, threads/atomics,
// exception handling in both the legacy and the try_table form, typed
// function references and rec groups of function types). It adds:
//
//   - two function types at the end of the type section: () -> () and
//     (i64) -> (i64);
//   - one imported function, Config.ImportModule/ImportName (default
//     "wasmsched"/"check"), of type () -> (), placed after the module's own
//     function imports. Every defined function's index shifts by one, and
//     every reference is rewritten: call, return_call and ref.func in code,
//     ref.func in global, table and element initialisers, element segments of
//     all eight forms, exports, the start function, and the function and
//     local name maps of the "name" section;
//   - one mutable i64 global, initialised to 0, appended after the existing
//     globals and exported as Config.FuelExport (default "wasmsched_fuel"):
//     the remaining fuel of the current slice;
//   - one helper function after the defined functions: it stores its
//     argument into the global, calls the check import and returns the
//     global (the slow path of a check in functions that cache the counter;
//     with Config.PollSkipping it may refill the counter itself instead,
//     see "Skipped polls");
//     a module without defined functions gets no helper, and one without any
//     function at all (it runs no code) gets only the global;
//   - in every function an i64 local caching the counter (except in
//     functions with exception handlers, which work on the global directly
//     because a caught exception would lose the cached value), and an i32
//     scratch local where a bulk operation has a non-constant size.
//
// Type, global and local indices of the input are unchanged (the additions
// come last); indices that are out of range in the input are rejected, so
// an invalid module can never become valid by naming an appended entity.
// Sections the rewrite does not change (memory, data, data count, tag, and
// the custom sections other than "name" that are kept) are checked (see
// below) and copied byte for byte, as is every instruction except the
// function indices above. A module with no memory, no exports or no
// functions gets the missing sections it needs.
//
// # Bounding what the output costs
//
// A runtime's decoder may preallocate by the counts a module declares
// (wazero's does: a 52-byte module whose name section declares 2^32-1
// function names, or one whose 8-byte function body declares 2^32-1 locals,
// makes it allocate gigabytes and kills the process). Instrument therefore
// guarantees that every count and length in its output is consistent with
// the bytes that hold it, so that a decoder allocates at most a small
// multiple of the output's size, plus what the Limits allow the module to
// declare:
//
//   - Every vector count and byte length, in every section (type, with rec
//     groups, parameter and result vectors; import; function; table;
//     memory; global; export; element segments and their element vectors;
//     code, with the local declarations of every body; data segments and
//     their bytes; tag; the names of custom sections) and in the immediates
//     of br_table, select and try_table, is checked against the bytes that
//     remain in its section, subsection or body before anything is
//     allocated or copied: every element takes at least one byte, so a
//     count larger than the remaining bytes is malformed (*DecodeError).
//     Sections the rewrite copies unchanged are parsed for this. A data
//     count section must hold exactly one u32 (or be empty, as wazero
//     accepts, only as the last section).
//   - The "name" section is parsed strictly and re-encoded, or dropped.
//     Subsections 0 (module name), 1 (function names) and 2 (local names)
//     must each occur at most once, have exact sizes, counts bounded by the
//     bytes that remain, valid UTF-8 names (wazero requires it), function
//     indices below the number of functions and, in every map, strictly
//     increasing indices (the spec's rule). They are written back, in
//     increasing id order, with exact sizes and the function indices
//     shifted; other subsections (label, type, field names..., which wazero
//     skips) are left out and counted in Report.NameSubsectionsDropped. If
//     anything fails to parse, the whole name section is dropped and the
//     module is still instrumented: a name section is a custom section,
//     which the spec lets a consumer ignore (Report.Name and
//     Report.NameDropReason say so). Only the first name section counts: a
//     later one (which wazero rejects) is dropped. A name section that is
//     not last (the spec wants it after the data section; wazero does not
//     care) is re-encoded where it is.
//   - Other custom sections are copied byte for byte as long as they fit in
//     Config.MaxCustomBytes (default DefaultMaxCustomBytes, 1 MiB, of
//     payload in total; in module order, a section that does not fit in
//     what remains is dropped); Config.StripCustom drops every custom
//     section, the name section included. A custom section other than
//     "name" with nothing after its name is dropped (wazero, with debug info
//     on, its default, rejects one at the end of a module, and dropping a
//     later section could put it there). A custom section whose own name is
//     cut off or not valid UTF-8 makes the module malformed, as in wazero.
//     Report.CustomKept, CustomKeptBytes, CustomDropped and
//     CustomDroppedBytes count what was kept and dropped.
//   - Config.Limits bounds what the module may declare, while it is parsed;
//     exceeding a limit fails with a *LimitError whose What names the
//     Limits field, with the declared Value and the Max in force. The
//     defaults are the implementation limits of the WebAssembly JS API
//     (https://webassembly.github.io/spec/js-api/#limits), which V8 and
//     SpiderMonkey enforce: 1,000,000 types, 1,000,000 functions, 100,000
//     imports, 100,000 exports, 1,000,000 globals, 1,000,000 tags, 100,000
//     data segments, 100,000 tables, 1 memory, 10,000,000 element segments,
//     10,000,000 elements per table (here: in all element segments
//     together), an initial table size of 10,000,000, an initial memory size
//     of 65,536 pages, function bodies of 7,654,321 bytes, 50,000 locals per
//     function (parameters included), 1,000 parameters and 1,000 results per
//     function type. One default is not from the JS API: 1,000,000 declared
//     locals in all functions together (Limits.TotalLocals), because locals
//     are the one thing whose number is not bounded by the module's size
//     and wazero materialises every one (its interpreter allocates 100 to
//     450 bytes per local while compiling). Counts of functions, globals,
//     tables, memories and tags include imports. An embedder sets tighter
//     limits for its own budget.
//   - Limits.TableMaximum (default 10,000,000, the JS API's maximum table
//     size) refuses nothing: every defined table that declares no maximum,
//     or a larger one, is written with this maximum (never below its
//     minimum; Report.TablesCapped counts them), so table.grow past it
//     returns -1, as Wasm allows a grow to. Otherwise one table.grow could
//     ask the runtime for 2^32 elements of 8 bytes at once.
//   - The Report describes what the input declares, for an embedder to
//     bound what it hands its runtime and to admit memory before
//     instantiating: the memories (HasMemory, MemoryImported, MemoryShared,
//     the largest MemoryMinPages and MemoryMaxPages if MemoryHasMax), the
//     tables (Tables, the largest TableMinElements and their TableMinTotal),
//     DataSegments and DataBytes, ElementSegments and Elements, the largest
//     locals count of a function (MaxLocals) and the TotalLocals declared,
//     the ImportedFunctions, and what became of custom sections.
//
// This bounds decoding. Compiling costs more, in proportion to the code:
// wazero's interpreter allocates up to about 400 bytes per byte of code,
// and its optimizing compiler more on some shapes (measured on wazero
// v1.12: about 2.7 KB per br_table target, and time quadratic in the number
// of loops of one function); an embedder bounds that with the size of what
// it accepts (the module's size, Limits.FunctionBodySize).
//
// The fuzz target hands every output to wazero (interpreter) and fails if
// compiling it allocates more than 64 MiB + 512 bytes per output byte + 512
// bytes per declared local (see compileBound in fuzz_test.go for the
// measurements behind the figures).
//
// # Cost rule
//
// The default CostTable is Wasmtime's, so fuel figures are comparable with
// Wasmtime's: 0 for nop, drop, block, loop, unreachable, return, else and
// end; 1 for every other operator (including prefixed ones); 1 on every
// function entry; plus 1 per byte for memory.copy, memory.fill and
// memory.init and 1 per element for table.copy, table.fill, table.init and
// table.grow. Operators in unreachable code cost nothing (they never run).
// Every entry of the table is configurable.
//
// # Where the counter is charged and checked
//
// Each function body is cut into straight-line segments. A segment starts at
// the function entry, at every loop header, after if, else, br_if,
// br_on_null, br_on_non_null, catch and catch_all, after every call
// (call, call_indirect, call_ref), and after the end of every if, try and
// branched-to block or try_table (the join points); code after an
// unconditional transfer (br, br_table, return, unreachable, throw,
// rethrow, throw_ref, return_call*) up to the next join is unreachable and
// gets no charge. The static cost of a whole segment (its operators, plus
// size*unit for a bulk operation whose size is an i32.const immediately
// before it) is subtracted from the counter at the segment's start, before
// any of its operators runs. A bulk operation with a non-constant size is
// charged size*unit just before it runs (in i64, so 2^32-1 units at
// MaxUnitCost cannot overflow).
//
// Check points are the entry of every function that contains a call
// instruction, every loop header (so every loop iteration), and every
// dynamic bulk charge. At a check point, if the counter is negative after
// the charge, the guest stores it into the global, calls the check import,
// and reloads the global when the call returns. Other charges only
// subtract: segment starts after a forward branch, at a join or after a
// call returns, and the entry of a function without calls (it can neither
// recurse nor call; it runs forward code and loops, whose headers check).
// A negative counter there is seen at the next check point. Code that runs
// between two check points passes no loop header and enters no calling
// function: it is forward code of the current function, of call-free
// callees, and, after a return, of the callers' remaining code. So an infinite loop or an
// infinite recursion always reaches the host within bounded fuel; the
// overshoot past a spent slice is at most one forward path per frame that
// returns before the next check point. This is Wasmtime's placement for
// fuel (function entry and loop headers), minus the entry of call-free
// functions; checking after every call return or after every charge (both
// measured, see the knobs in rewrite.go) costs more on call-heavy code.
//
// A loop header's check does not call in the loop's body: the loop is
// wrapped in three frames, and a negative counter branches out to a cold
// path after the loop's end, which calls the helper, adds the header's
// charge back and re-enters the loop (cold.go has the layout and why:
// wazero keeps every value live across a call in a stack slot for the
// whole loop). The counter and what the check sees are the same as with
// the call inline. Loops with parameters, and the loops of functions that
// catch, keep the call inline.
//
// In functions that cache the counter in a local, the local is written to
// the global before every call (so the callee, and a host function, see the
// exact value), before return, return_call*, throw*, unreachable, branches
// to the function's outermost label and the final end, and the global is
// reloaded after every call.
//
// # Runtime contract and what is exact
//
// The host (wasmtask) sets the global to the fuel of a slice; when the
// check is called the counter is negative, and the host may read it, set a
// new value (refill) before returning, or suspend or trap inside the call.
// A check called at a loop header that returns with the counter still
// negative is called again at once, before the loop's body runs: a host
// lets a guest progress only by refilling.
// Let the host's k-th write replace value u_k with v_k (the initial value is
// 0). Then, whenever the guest is inside a host call (the check or any
// other import) or an export call has returned,
//
//	fuel consumed = Σ_k (v_k − u_k) − current value
//
// exactly, where "consumed" is the cost, under the CostTable, of every
// operator the guest has executed, plus the not-yet-executed remainder of
// the segment being started when the check is called (charging is ahead of
// execution by at most one segment). A host that always refills from a
// negative counter with a fixed slice S therefore sees consumption S − c
// for each completed slice whose final counter was c. The figure is
// independent of the slice size (tests check this on real guests).
//
// Not exact: when a call traps (and the trap ends the export call), the
// trapping segment was charged in full, and in frames that cache the
// counter the charges since their last write-back are lost; a host should
// treat fuel after a trap as approximate. Exceptions are exact: functions
// that catch use the global directly, and every frame writes back before
// throwing or calling.
//
// # Skipped polls
//
// With Config.PollSkipping the output has three more mutable i64 globals,
// initialised to 0, after the fuel global and exported as SkipExport,
// RefillExport and AttentionExport, and the slow-path helper first tries
// to refill the counter itself: if skip is not 0, attention is 0 and
// counter + refill is not negative, it decrements skip and returns
// counter + refill without calling the check; otherwise it calls the check
// as above. A host that polls at a fixed interval only to look around
// (wasmtask's epoch mode) sets refill to the interval and skip to the
// number of polls at which it knows it would have nothing to do, and sets
// attention (from any thread: the guest only reads it) when something
// needs the guest sooner. Functions that work on the fuel global directly
// (those with exception handlers) call the check at every check point,
// skipping nothing.
//
// A refill by the guest is a write in the sense of the contract above: it
// adds refill. So a host that writes skip = s at a check, with refill r in
// force until the next, adds (s − skip's value at the next check) × r to
// its sum of writes there, and the consumption stays exact.
//
// Instrument never panics. Malformed input yields a *DecodeError (with the
// byte offset, section, and function), an unusable Config a *ConfigError
// (including a module that already exports Config.FuelExport), and an
// input beyond Config.Limits (or at a format limit once the additions are
// counted) a *LimitError. For every input that wazero accepts and that is
// within the limits, the output is accepted too (spec suites and fuzzing
// check this).
package instrument
