package instrument

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// Builders for hand-made modules of any size.

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func u32(v uint32) []byte { return appendU32(nil, v) }

// mksec returns section id with the concatenated parts as payload.
func mksec(id byte, parts ...[]byte) []byte { return appendSection(nil, id, cat(parts...)) }

// vec returns n copies of elem preceded by n.
func vec(n int, elem []byte) []byte {
	b := u32(uint32(n))
	for i := 0; i < n; i++ {
		b = append(b, elem...)
	}
	return b
}

func str(s string) []byte { return appendName(nil, s) }

// codeSec returns a code section with one body made of parts.
func codeSec(parts ...[]byte) []byte {
	b := cat(parts...)
	return mksec(secCode, u32(1), u32(uint32(len(b))), b)
}

// huge is a u32 count of 2^32-1 in 5 bytes.
var huge = []byte{0xff, 0xff, 0xff, 0xff, 0x0f}

var (
	secOneType  = mksec(secType, vec(1, []byte{0x60, 0, 0}))
	secOneFunc  = mksec(secFunction, vec(1, []byte{0}))
	secOneBody  = mksec(secCode, vec(1, []byte{2, 0, opEnd}))
	secOneTable = mksec(secTable, vec(1, []byte{0x70, 0, 1}))
	secOneMem   = mksec(secMemory, vec(1, []byte{0, 1}))
)

// oneFunc is a module with one function () -> () doing nothing, plus the
// given sections (each put in its place; custom sections last).
func oneFunc(more ...[]byte) []byte {
	secs := append([][]byte{secOneType, secOneFunc, secOneBody}, more...)
	rank := func(s []byte) int {
		if s[0] == secCustom {
			return 100
		}
		return sectionRank[s[0]]
	}
	sort.SliceStable(secs, func(i, j int) bool { return rank(secs[i]) < rank(secs[j]) })
	return buildModule(secs...)
}

// nameSection returns a "name" custom section with the given subsections
// (each already encoded as id, size, content).
func nameSection(subs ...[]byte) []byte { return mksec(secCustom, str("name"), cat(subs...)) }

func subsection(id byte, parts ...[]byte) []byte { return appendSection(nil, id, cat(parts...)) }

type boundSeed struct {
	name string
	wasm []byte
	// want: "ok" (instrumented), "decode" (*DecodeError) or the What of a
	// *LimitError.
	want string
}

// boundSeeds are modules whose counts would make a preallocating decoder
// (wazero's) allocate far more than their size: each must be refused, or
// instrumented into an output that wazero compiles with bounded allocation.
// They seed FuzzInstrument and drive TestBoundSeeds.
func boundSeeds() []boundSeed {
	// A body declaring n i32 locals.
	localsBody := func(n uint32) []byte {
		b := cat(u32(1), u32(n), []byte{valI32, opEnd})
		return cat(u32(uint32(len(b))), b)
	}
	manyLocals := func(funcs int, per uint32) []byte {
		return buildModule(secOneType,
			mksec(secFunction, vec(funcs, []byte{0})),
			mksec(secCode, vec(funcs, localsBody(per))))
	}
	activeElem := []byte{0, opI32Const, 0, opEnd}
	seeds := []boundSeed{
		// wazero: decodeFunctionNames makes a NameMap of 2^32-1 entries.
		{"name section, function names count", oneFunc(nameSection(subsection(nameFuncs, huge))), "ok"},
		// The same count, the subsection size pretending it is short.
		{"name section, function names count past subsection", oneFunc(mksec(secCustom, str("name"), []byte{nameFuncs, 1}, huge)), "ok"},
		// wazero: decodeLocalNames makes an IndirectNameMap of 2^32-1.
		{"name section, local names count", oneFunc(nameSection(subsection(nameLocals, huge))), "ok"},
		{"name section, local names inner count", oneFunc(nameSection(subsection(nameLocals, u32(1), u32(0), huge))), "ok"},
		{"name section, module name length", oneFunc(nameSection(subsection(nameModule, huge))), "ok"},
		// wazero: decodeCode makes []ValueType with capacity 2^32-1.
		{"locals bomb", manyLocals(1, 1<<32-1), "Locals"},
		{"locals at the function limit", manyLocals(1, DefaultMaxLocals), "ok"},
		{"locals spread below the total limit", manyLocals(19, DefaultMaxLocals), "ok"},
		{"locals spread over the total limit", manyLocals(21, DefaultMaxLocals), "TotalLocals"},
		// wazero: element.go makes []ConstantExpression of 2^32-1.
		{"element vector count", oneFunc(secOneTable, mksec(secElement, u32(1), activeElem, huge)), "decode"},
		{"element expression vector count", oneFunc(mksec(secElement, u32(1), []byte{5, 0x70}, huge)), "decode"},
		{"element segment count", oneFunc(secOneTable, mksec(secElement, huge)), "decode"},
		// wazero: section.go makes []DataSegment of 2^32-1, data.go a
		// []byte of the segment's length.
		{"data segment count", buildModule(secOneMem, mksec(secData, huge)), "decode"},
		{"data segment length", buildModule(secOneMem, mksec(secData, u32(1), []byte{1}, huge)), "decode"},
		{"data count value", buildModule(secOneMem, mksec(secDataCount, huge)), "DataSegments"},
	}
	return seeds
}

// checkOutcome fails t unless err (and res) match want (see boundSeed).
func checkOutcome(t *testing.T, res Result, err error, want string) {
	t.Helper()
	var de *DecodeError
	var le *LimitError
	switch {
	case want == "ok":
		if err != nil {
			t.Fatalf("Instrument: %v", err)
		}
		if n, verr := compileAllocs(res.Wasm); verr != nil || n > compileBound(res) {
			t.Fatalf("wazero: %v, %d bytes allocated (bound %d)", verr, n, compileBound(res))
		}
	case want == "decode":
		if !errors.As(err, &de) {
			t.Fatalf("got %v, want a *DecodeError", err)
		}
	default:
		if !errors.As(err, &le) || le.What != want {
			t.Fatalf("got %v, want a *LimitError for %s", err, want)
		}
	}
}

func TestBoundSeeds(t *testing.T) {
	for _, s := range boundSeeds() {
		t.Run(s.name, func(t *testing.T) {
			before := heapAllocs()
			res, err := Instrument(s.wasm, Config{})
			if n := heapAllocs() - before; n > 1<<20+64*uint64(len(s.wasm)) {
				t.Errorf("Instrument allocated %d bytes for %d bytes of input", n, len(s.wasm))
			}
			checkOutcome(t, res, err, s.want)
			if s.want == "ok" && strings.HasPrefix(s.name, "name section") && res.Report.Name != NameDropped {
				t.Errorf("name section %v, want dropped", res.Report.Name)
			}
		})
	}
}

// TestCountsBoundedByRemainingBytes gives every vector count of every
// section a value (2^32-1) larger than the bytes that remain: each must be
// refused as malformed, without panicking and without allocating by it.
func TestCountsBoundedByRemainingBytes(t *testing.T) {
	activeElem := []byte{0, opI32Const, 0, opEnd}
	cases := []struct {
		name string
		wasm []byte
	}{
		{"type count", buildModule(mksec(secType, huge))},
		{"type params", buildModule(mksec(secType, u32(1), []byte{0x60}, huge))},
		{"type results", buildModule(mksec(secType, u32(1), []byte{0x60, 0}, huge))},
		{"rec group", buildModule(mksec(secType, u32(1), []byte{0x4e}, huge))},
		{"import count", buildModule(mksec(secImport, huge))},
		{"import module name", buildModule(mksec(secImport, u32(1), huge))},
		{"function count", buildModule(secOneType, mksec(secFunction, huge))},
		{"table count", buildModule(mksec(secTable, huge))},
		{"memory count", buildModule(mksec(secMemory, huge))},
		{"tag count", buildModule(secOneType, mksec(secTag, huge))},
		{"global count", buildModule(mksec(secGlobal, huge))},
		{"export count", buildModule(mksec(secExport, huge))},
		{"export name", buildModule(mksec(secExport, u32(1), huge))},
		{"element segment count", oneFunc(secOneTable, mksec(secElement, huge))},
		{"element index vector", oneFunc(secOneTable, mksec(secElement, u32(1), activeElem, huge))},
		{"element passive index vector", oneFunc(mksec(secElement, u32(1), []byte{1, 0}, huge))},
		{"element expression vector", oneFunc(mksec(secElement, u32(1), []byte{5, 0x70}, huge))},
		{"code count", buildModule(secOneType, secOneFunc, mksec(secCode, huge))},
		{"local declarations", buildModule(secOneType, secOneFunc, codeSec(huge, []byte{opEnd}))},
		{"data segment count", buildModule(secOneMem, mksec(secData, huge))},
		{"data segment bytes", buildModule(secOneMem, mksec(secData, u32(1), activeElem, huge))},
		{"custom section name", buildModule(mksec(secCustom, huge))},
		{"select type vector", buildModule(secOneType, secOneFunc, codeSec([]byte{0, opSelectT}, huge, []byte{opEnd}))},
		{"try_table catches", buildModule(secOneType, secOneFunc, codeSec([]byte{0, opTryTable, 0x40}, huge, []byte{opEnd}))},
		{"br_table targets", buildModule(secOneType, secOneFunc, codeSec([]byte{0, opBrTable}, huge, []byte{0, opEnd}))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := heapAllocs()
			_, err := Instrument(c.wasm, Config{})
			n := heapAllocs() - before
			var de *DecodeError
			if !errors.As(err, &de) || strings.Contains(err.Error(), "internal error") {
				t.Fatalf("got %v, want a *DecodeError", err)
			}
			if n > 64<<10 {
				t.Errorf("Instrument allocated %d bytes", n)
			}
		})
	}
}

// TestLimits builds, for every limit, a module at the limit (accepted, and
// compiled by wazero) and one past it (refused with the limit's What, the
// module's value and the limit).
func TestLimits(t *testing.T) {
	funcs := func(n int) []byte {
		return cat(mksec(secFunction, vec(n, []byte{0})), mksec(secCode, vec(n, []byte{2, 0, opEnd})))
	}
	body := func(size int) []byte { // a body of exactly size bytes
		b := make([]byte, size)
		for i := range b {
			b[i] = opNop
		}
		b[0], b[size-1] = 0, opEnd
		return cat(u32(uint32(size)), b)
	}
	localsBody := func(n uint32) []byte {
		b := cat(u32(1), u32(n), []byte{valI32, opEnd})
		return cat(u32(uint32(len(b))), b)
	}
	exports := func(n int) []byte {
		b := u32(uint32(n))
		for i := 0; i < n; i++ {
			b = append(b, str(fmt.Sprint("e", i))...)
			b = append(b, 0, 0)
		}
		return b
	}
	cases := []struct {
		what  string
		limit func(*Limits, uint32)
		max   uint32 // configured (0: the default)
		def   uint32 // the default
		build func(n uint32) []byte
	}{
		{"Types", func(l *Limits, v uint32) { l.Types = v }, 3, DefaultMaxTypes, func(n uint32) []byte {
			return buildModule(mksec(secType, vec(int(n), []byte{0x60, 0, 0})))
		}},
		{"Types", func(l *Limits, v uint32) { l.Types = v }, 3, DefaultMaxTypes, func(n uint32) []byte { // in a rec group
			return buildModule(mksec(secType, u32(1), []byte{0x4e}, vec(int(n), []byte{0x60, 0, 0})))
		}},
		{"Functions", func(l *Limits, v uint32) { l.Functions = v }, 4, DefaultMaxFunctions, func(n uint32) []byte {
			imp := mksec(secImport, vec(1, cat(str("m"), str("f"), []byte{0, 0})))
			return buildModule(secOneType, imp, funcs(int(n)-1))
		}},
		{"Imports", func(l *Limits, v uint32) { l.Imports = v }, 5, DefaultMaxImports, func(n uint32) []byte {
			return buildModule(secOneType, mksec(secImport, vec(int(n), cat(str("m"), str("f"), []byte{0, 0}))))
		}},
		{"Exports", func(l *Limits, v uint32) { l.Exports = v }, 5, DefaultMaxExports, func(n uint32) []byte {
			return buildModule(secOneType, secOneFunc, mksec(secExport, exports(int(n))), secOneBody)
		}},
		{"Globals", func(l *Limits, v uint32) { l.Globals = v }, 5, DefaultMaxGlobals, func(n uint32) []byte {
			imp := mksec(secImport, vec(1, cat(str("m"), str("g"), []byte{3, valI32, 0})))
			return buildModule(imp, mksec(secGlobal, vec(int(n)-1, []byte{valI32, 0, opI32Const, 0, opEnd})))
		}},
		{"Tags", func(l *Limits, v uint32) { l.Tags = v }, 5, DefaultMaxTags, func(n uint32) []byte {
			return buildModule(secOneType, mksec(secTag, vec(int(n), []byte{0, 0})))
		}},
		{"DataSegments", func(l *Limits, v uint32) { l.DataSegments = v }, 5, DefaultMaxDataSegments, func(n uint32) []byte {
			return buildModule(secOneMem, mksec(secData, vec(int(n), []byte{1, 0})))
		}},
		{"DataSegments", func(l *Limits, v uint32) { l.DataSegments = v }, 5, DefaultMaxDataSegments, func(n uint32) []byte { // data count
			return buildModule(secOneMem, mksec(secDataCount, u32(n)), mksec(secData, vec(int(n), []byte{1, 0})))
		}},
		{"Tables", func(l *Limits, v uint32) { l.Tables = v }, 5, DefaultMaxTables, func(n uint32) []byte {
			imp := mksec(secImport, vec(1, cat(str("m"), str("t"), []byte{1, 0x70, 0, 0})))
			return buildModule(imp, mksec(secTable, vec(int(n)-1, []byte{0x70, 0, 0})))
		}},
		{"Memories", func(l *Limits, v uint32) { l.Memories = v }, 0, DefaultMaxMemories, func(n uint32) []byte {
			return buildModule(mksec(secMemory, vec(int(n), []byte{0, 0})))
		}},
		{"Memories", func(l *Limits, v uint32) { l.Memories = v }, 0, DefaultMaxMemories, func(n uint32) []byte { // imported
			imp := mksec(secImport, vec(1, cat(str("m"), str("m"), []byte{2, 0, 0})))
			return buildModule(imp, mksec(secMemory, vec(int(n)-1, []byte{0, 0})))
		}},
		{"ElementSegments", func(l *Limits, v uint32) { l.ElementSegments = v }, 5, DefaultMaxElementSegments, func(n uint32) []byte {
			return oneFunc(mksec(secElement, vec(int(n), []byte{1, 0, 0})))
		}},
		{"Elements", func(l *Limits, v uint32) { l.Elements = v }, 7, DefaultMaxElements, func(n uint32) []byte {
			return oneFunc(mksec(secElement, u32(2), []byte{1, 0}, vec(3, []byte{0}), []byte{5, 0x70}, vec(int(n)-3, []byte{opRefFunc, 0, opEnd})))
		}},
		{"TableInitial", func(l *Limits, v uint32) { l.TableInitial = v }, 0, DefaultMaxTableInitial, func(n uint32) []byte {
			return buildModule(mksec(secTable, vec(1, cat([]byte{0x70, 0}, u32(n)))))
		}},
		{"TableInitial", func(l *Limits, v uint32) { l.TableInitial = v }, 100, DefaultMaxTableInitial, func(n uint32) []byte { // imported
			return buildModule(mksec(secImport, vec(1, cat(str("m"), str("t"), []byte{1, 0x70, 0}, u32(n)))))
		}},
		{"MemoryInitialPages", func(l *Limits, v uint32) { l.MemoryInitialPages = v }, 0, DefaultMaxMemoryInitialPages, func(n uint32) []byte {
			return buildModule(mksec(secMemory, vec(1, cat([]byte{0}, u32(n)))))
		}},
		{"MemoryInitialPages", func(l *Limits, v uint32) { l.MemoryInitialPages = v }, 10, DefaultMaxMemoryInitialPages, func(n uint32) []byte { // imported, with a maximum
			return buildModule(mksec(secImport, vec(1, cat(str("m"), str("m"), []byte{2, 1}, u32(n), u32(n)))))
		}},
		{"FunctionBodySize", func(l *Limits, v uint32) { l.FunctionBodySize = v }, 0, DefaultMaxFunctionBodySize, func(n uint32) []byte {
			return buildModule(secOneType, secOneFunc, mksec(secCode, u32(1), body(int(n))))
		}},
		{"Locals", func(l *Limits, v uint32) { l.Locals = v }, 0, DefaultMaxLocals, func(n uint32) []byte { // one parameter
			return buildModule(mksec(secType, vec(1, []byte{0x60, 1, valI32, 0})), secOneFunc, mksec(secCode, u32(1), localsBody(n-1)))
		}},
		{"TotalLocals", func(l *Limits, v uint32) { l.TotalLocals = v }, 1000, DefaultMaxTotalLocals, func(n uint32) []byte {
			return buildModule(secOneType, mksec(secFunction, vec(2, []byte{0})), mksec(secCode, u32(2), localsBody(400), localsBody(n-400)))
		}},
		{"Params", func(l *Limits, v uint32) { l.Params = v }, 0, DefaultMaxParams, func(n uint32) []byte {
			return buildModule(mksec(secType, u32(1), []byte{0x60}, vec(int(n), []byte{valI32}), u32(0)))
		}},
		{"Results", func(l *Limits, v uint32) { l.Results = v }, 0, DefaultMaxResults, func(n uint32) []byte {
			return buildModule(mksec(secType, u32(1), []byte{0x60, 0}, vec(int(n), []byte{valI32})))
		}},
	}
	for _, c := range cases {
		max := c.max
		if max == 0 {
			max = c.def
		}
		t.Run(fmt.Sprintf("%s=%d", c.what, max), func(t *testing.T) {
			var cfg Config
			c.limit(&cfg.Limits, c.max)
			res, err := Instrument(c.build(max), cfg)
			if err != nil {
				t.Fatalf("at the limit: %v", err)
			}
			if err := validates(res.Wasm); err != nil {
				t.Fatalf("at the limit: output rejected by wazero: %v", err)
			}
			_, err = Instrument(c.build(max+1), cfg)
			var le *LimitError
			if !errors.As(err, &le) {
				t.Fatalf("past the limit: got %v, want a *LimitError", err)
			}
			if le.What != c.what || le.Value != uint64(max)+1 || le.Max != uint64(max) {
				t.Fatalf("past the limit: got %+v, want What %s, Value %d, Max %d", le, c.what, max+1, max)
			}
			if le.Error() == "" {
				t.Fatal("empty message")
			}
		})
	}
}
