package instrument

// Default limits. Unless noted otherwise, each is the implementation limit
// of the WebAssembly JS API (https://webassembly.github.io/spec/js-api/#limits),
// the limits V8 and SpiderMonkey enforce on every module they compile, so a
// module a browser accepts is accepted here too.
const (
	// DefaultMaxTypes: JS API limits, types defined in the type section
	// (each member of a rec group counts).
	DefaultMaxTypes = 1_000_000
	// DefaultMaxFunctions: JS API limits, functions defined in a module
	// (counted here with the imported ones).
	DefaultMaxFunctions = 1_000_000
	// DefaultMaxImports: JS API limits, imports declared in a module.
	DefaultMaxImports = 100_000
	// DefaultMaxExports: JS API limits, exports declared in a module.
	DefaultMaxExports = 100_000
	// DefaultMaxGlobals: JS API limits, globals defined in a module
	// (counted here with the imported ones).
	DefaultMaxGlobals = 1_000_000
	// DefaultMaxTags: JS API limits, tags defined in a module (counted here
	// with the imported ones).
	DefaultMaxTags = 1_000_000
	// DefaultMaxDataSegments: JS API limits, data segments defined in a
	// module (also bounds the data count section's value).
	DefaultMaxDataSegments = 100_000
	// DefaultMaxTables: JS API limits, tables including declared or
	// imported tables.
	DefaultMaxTables = 100_000
	// DefaultMaxMemories: JS API limits, memories including declared or
	// imported memories, before the introduction of multiple memories
	// (which wazero does not support).
	DefaultMaxMemories = 1
	// DefaultMaxElementSegments: JS API limits (as enforced by V8 and
	// SpiderMonkey), element segments defined in a module.
	DefaultMaxElementSegments = 10_000_000
	// DefaultMaxElements bounds the elements of all element segments
	// together. The JS API bounds the entries of any one table
	// initialisation to 10,000,000; the same figure bounds the total here.
	DefaultMaxElements = 10_000_000
	// DefaultMaxTableInitial: JS API limits, the maximum (initial) size of a
	// table, in elements.
	DefaultMaxTableInitial = 10_000_000
	// DefaultMaxTableMaximum: JS API limits, the maximum size of a table
	// (growth included), in elements.
	DefaultMaxTableMaximum = 10_000_000
	// DefaultMaxMemoryInitialPages: JS API limits, the maximum valid initial
	// size of a 32-bit memory, in 64 KiB pages (also the format's limit).
	DefaultMaxMemoryInitialPages = 65_536
	// DefaultMaxFunctionBodySize: JS API limits, the size of a function body
	// in bytes, including its local declarations.
	DefaultMaxFunctionBodySize = 7_654_321
	// DefaultMaxLocals: JS API limits, the locals of a function, including
	// the parameters.
	DefaultMaxLocals = 50_000
	// DefaultMaxParams: JS API limits, parameters of a function type.
	DefaultMaxParams = 1_000
	// DefaultMaxResults: JS API limits, results of a function type.
	DefaultMaxResults = 1_000
	// DefaultMaxTotalLocals is not a JS API limit (browsers bound locals per
	// function only). It bounds the declared locals (parameters excluded) of
	// all functions together: locals are the one thing a module declares
	// whose number is not bounded by its size (a 6-byte body can declare
	// 50,000 of them), and wazero materialises every one (1 byte in the
	// decoder, a constant-load operation of about 64 bytes retained, and
	// 100 to 450 bytes allocated, in the interpreter's compiled code). The
	// 3 MB Go guest declares 9,057 and the sightglass corpus at most 4,184;
	// 1,000,000 leaves two orders of magnitude to real programs.
	DefaultMaxTotalLocals = 1_000_000
)

// Limits bounds what a module may declare. Every field is checked while the
// module is parsed, and exceeding one fails Instrument with a *LimitError
// whose What is the field's name. A zero field means its default (the
// DefaultMax* constants). Counts of functions, globals, tables, memories and
// tags include the imported ones. The limits apply to the input: the output
// has two more types, one more import (a function), one more defined
// function, one more global, one more export and up to two more locals per
// function.
type Limits struct {
	Types           uint32 // function types, rec group members included
	Functions       uint32 // imported + defined functions
	Imports         uint32
	Exports         uint32
	Globals         uint32 // imported + defined globals
	Tags            uint32 // imported + defined tags
	DataSegments    uint32 // data segments, and the data count section's value
	Tables          uint32 // imported + defined tables
	Memories        uint32 // imported + defined memories
	ElementSegments uint32
	Elements        uint32 // elements of all element segments together
	TableInitial    uint32 // minimum size of any table, in elements
	// TableMaximum is the largest size a table may grow to, in elements.
	// Unlike the other limits it refuses nothing: a table that declares no
	// maximum, or a larger one, is given this one, so table.grow beyond it
	// fails (returns -1) as Wasm allows. Without it a single table.grow
	// can ask wazero for 2^32 elements of 8 bytes.
	TableMaximum       uint32
	MemoryInitialPages uint32 // minimum size of any memory, in 64 KiB pages
	FunctionBodySize   uint32 // bytes of one function body, local declarations included
	Locals             uint32 // locals of one function, parameters included
	TotalLocals        uint32 // declared locals of all functions together, parameters excluded
	Params             uint32 // parameters of one function type
	Results            uint32 // results of one function type
}

// resolved returns l with every zero field replaced by its default, and
// every field capped where the binary format leaves less room once the
// instrumentation's additions are counted (indices are u32: two types, two
// functions, one global, one import, one export and two locals are added).
func (l Limits) resolved() Limits {
	def := func(v *uint32, d, cap uint32) {
		if *v == 0 {
			*v = d
		}
		*v = min(*v, cap)
	}
	const u32 = 1<<32 - 1
	def(&l.Types, DefaultMaxTypes, u32-2)
	def(&l.Functions, DefaultMaxFunctions, u32-2)
	def(&l.Imports, DefaultMaxImports, u32-1)
	def(&l.Exports, DefaultMaxExports, u32-1)
	def(&l.Globals, DefaultMaxGlobals, u32-1)
	def(&l.Tags, DefaultMaxTags, u32)
	def(&l.DataSegments, DefaultMaxDataSegments, u32)
	def(&l.Tables, DefaultMaxTables, u32)
	def(&l.Memories, DefaultMaxMemories, u32)
	def(&l.ElementSegments, DefaultMaxElementSegments, u32)
	def(&l.Elements, DefaultMaxElements, u32)
	def(&l.TableInitial, DefaultMaxTableInitial, u32)
	def(&l.TableMaximum, DefaultMaxTableMaximum, u32)
	def(&l.MemoryInitialPages, DefaultMaxMemoryInitialPages, u32)
	def(&l.FunctionBodySize, DefaultMaxFunctionBodySize, u32)
	def(&l.Locals, DefaultMaxLocals, u32-2)
	def(&l.TotalLocals, DefaultMaxTotalLocals, u32)
	def(&l.Params, DefaultMaxParams, u32)
	def(&l.Results, DefaultMaxResults, u32)
	return l
}
