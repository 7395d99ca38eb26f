package instrument

// Config selects the names of the injected import and export, the cost
// table, the limits a module must respect and what becomes of custom
// sections. The zero value is valid and means the defaults.
type Config struct {
	ImportModule string     // default "wasmsched"
	ImportName   string     // default "check"; signature () -> ()
	FuelExport   string     // default "wasmsched_fuel": exported mutable i64 global = remaining fuel of the current slice
	Costs        *CostTable // nil = DefaultCosts() (Wasmtime's default rule)

	// Limits bounds what the module may declare (zero fields: defaults).
	Limits Limits

	// MaxCustomBytes is the budget, in payload bytes (section name
	// included), of the custom sections other than "name" that the output
	// keeps: in module order, a section is kept if it fits in what remains
	// of the budget, else dropped. 0 means DefaultMaxCustomBytes; a negative
	// value keeps none.
	MaxCustomBytes int
	// StripCustom drops every custom section, the name section included.
	// (Custom sections other than "name" with no content after their name
	// are always dropped: see the package documentation.)
	StripCustom bool

	// PollSkipping lets the slow-path helper refill the counter itself,
	// without calling the check, while the host allows it: three more
	// mutable i64 globals, exported as SkipExport, RefillExport and
	// AttentionExport (see "Skipped polls" in the package documentation).
	PollSkipping bool
}

// DefaultMaxCustomBytes is the default Config.MaxCustomBytes: 1 MiB. Custom
// sections mean nothing to execution, but they ride along in the output,
// which an embedder keeps in memory for the module's lifetime (and which
// wazero copies into memory when it keeps custom sections or DWARF). 1 MiB
// keeps the usual metadata ("producers", "target_features", build ids,
// source map URLs, small debug info) and drops the multi-megabyte DWARF of
// debug builds, so the sections add at most 1 MiB to the output.
const DefaultMaxCustomBytes = 1 << 20

// NameStatus says what became of the input's "name" section.
type NameStatus uint8

const (
	NameAbsent    NameStatus = iota // the input has no name section
	NameReencoded                   // parsed and written back, function indices shifted
	NameDropped                     // malformed: dropped (Report.NameDropReason says why)
	NameStripped                    // dropped by Config.StripCustom
)

func (s NameStatus) String() string {
	switch s {
	case NameAbsent:
		return "absent"
	case NameReencoded:
		return "re-encoded"
	case NameDropped:
		return "dropped"
	case NameStripped:
		return "stripped"
	}
	return "NameStatus(?)"
}

// Report summarises one instrumentation. The figures about the module
// describe the input (the output adds the entities listed in the package
// documentation); an embedder can use them to bound what it hands its
// runtime and to admit memory before instantiating.
type Report struct {
	Functions int // defined functions instrumented (the injected helper excluded)
	Loops     int // loop headers given a charge and a check
	Checks    int // check sites inserted (entries of calling functions, loop headers, dynamic bulk ops)
	BytesIn   int
	BytesOut  int

	ImportedFunctions int // function imports of the input (the injected check excluded)

	// Memory: HasMemory if the module imports or defines one. MemoryMinPages
	// is the largest minimum (in 64 KiB pages) of its memories, and
	// MemoryMaxPages the largest declared maximum, meaningful only if
	// MemoryHasMax (every memory declares a maximum).
	HasMemory      bool
	MemoryImported bool // a memory is imported
	MemoryShared   bool // a memory is shared (threads)
	MemoryMinPages uint32
	MemoryMaxPages uint32
	MemoryHasMax   bool

	Tables           int    // imported + defined tables
	TablesCapped     int    // defined tables given a maximum of Limits.TableMaximum
	TableMinElements uint32 // largest table minimum, in elements
	TableMinTotal    uint64 // sum of the table minimums, in elements

	DataSegments    int
	DataBytes       uint64 // bytes of all data segments
	ElementSegments int
	Elements        uint64 // elements of all element segments

	MaxLocals   uint32 // largest locals count of a function, parameters included (what Limits.Locals bounds)
	TotalLocals uint64 // declared locals of all functions, parameters excluded (what Limits.TotalLocals bounds)

	// Custom sections other than "name": kept within Config.MaxCustomBytes.
	// CustomDropped and CustomDroppedBytes count every dropped custom
	// section, name sections included (bytes are payload bytes).
	CustomKept         int
	CustomKeptBytes    int
	CustomDropped      int
	CustomDroppedBytes int

	Name           NameStatus // what became of the (first) name section
	NameDropReason string     // why it was dropped, if Name == NameDropped
	// NameSubsectionsDropped counts subsections of a kept name section that
	// the output leaves out (ids other than 0, 1 and 2, which wazero skips).
	NameSubsectionsDropped int
}

// Result is the instrumented module and its report.
type Result struct {
	Wasm   []byte
	Report Report
}

const (
	DefaultImportModule = "wasmsched"
	DefaultImportName   = "check"
	DefaultFuelExport   = "wasmsched_fuel"

	// The globals Config.PollSkipping adds (all mutable i64, initialised
	// to 0): the refills the helper may still do on its own, the fuel each
	// adds, and the word that, when nonzero, sends every slow path to the
	// check.
	SkipExport      = "wasmsched_skip"
	RefillExport    = "wasmsched_refill"
	AttentionExport = "wasmsched_attention"
)

var defaultCosts = DefaultCosts()

// Instrument rewrites wasm so that it meters its own fuel (see the package
// documentation). It never panics; malformed input yields a *DecodeError,
// an unusable configuration a *ConfigError, and a module beyond
// Config.Limits a *LimitError.
func Instrument(wasm []byte, cfg Config) (res Result, err error) {
	defer func() {
		// Defence in depth: the decoder is bounds-checked everywhere, but a
		// bug must surface as an error, never as a panic in the embedder.
		if p := recover(); p != nil {
			res = Result{}
			err = &DecodeError{Offset: -1, Section: "?", Func: -1, Msg: "internal error: " + sprint(p)}
		}
	}()
	if cfg.ImportModule == "" {
		cfg.ImportModule = DefaultImportModule
	}
	if cfg.ImportName == "" {
		cfg.ImportName = DefaultImportName
	}
	if cfg.FuelExport == "" {
		cfg.FuelExport = DefaultFuelExport
	}
	costs := cfg.Costs
	if costs == nil {
		costs = defaultCosts
	} else if err := costs.validate(); err != nil {
		return Result{}, err
	}
	w := &rewriter{cfg: cfg, costs: costs, knobs: defaultKnobs}
	m, err := parse(wasm, cfg.Limits.resolved(), &w.report)
	if err != nil {
		return Result{}, err
	}
	w.m = m
	out, err := w.run(wasm)
	if err != nil {
		return Result{}, err
	}
	w.report.BytesIn = len(wasm)
	w.report.BytesOut = len(out)
	return Result{Wasm: out, Report: w.report}, nil
}

func sprint(p any) string {
	switch v := p.(type) {
	case error:
		return v.Error()
	case string:
		return v
	}
	return "panic"
}
