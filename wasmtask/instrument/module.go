package instrument

import "bytes"

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

var sectionNames = [...]string{"custom", "type", "import", "function", "table", "memory", "global", "export", "start", "element", "code", "data", "datacount", "tag"}

// sectionRank orders the known sections as the binary format requires
// (the tag section sits between memory and global).
var sectionRank = [...]int{0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 11, 6}

type section struct {
	id      byte
	payload []byte
	off     int // absolute offset of payload
}

// module holds what the rewrite needs to know about the input.
type module struct {
	sections   []section
	typeParams []uint32 // number of params of each function type
	nTypes     uint32
	nImpFuncs  uint32
	nImpGlobal uint32
	funcTypes  []uint32 // type index of each defined function
	nGlobals   uint32   // imported + defined
	hasSec     [len(sectionNames)]bool
	lastSec    int    // index in sections of the last section
	nMems      uint32 // imported + defined memories
	nImpTags   uint32
	lim        Limits  // resolved
	rep        *Report // filled while parsing and rewriting
	// lenientHeap skips the range check of concrete heap types: wazero does
	// not check them in imports (elsewhere it does, and so does this package,
	// so that an appended type never makes an invalid module valid).
	lenientHeap bool
}

func (m *module) nFuncs() uint32 { return m.nImpFuncs + uint32(len(m.funcTypes)) }

func newReader(s section) *reader {
	return &reader{b: s.payload, base: s.off, section: sectionNames[s.id]}
}

// parse splits the module into sections and reads the metadata of the type,
// import, function and global sections, checking their counts and lim.
func parse(wasm []byte, lim Limits, rep *Report) (*module, error) {
	r := &reader{b: wasm, section: "header"}
	magic := r.bytes(4)
	version := r.bytes(4)
	if r.err != nil {
		return nil, r.err
	}
	if !bytes.Equal(magic, []byte("\x00asm")) {
		return nil, &DecodeError{Offset: 0, Section: "header", Func: -1, Msg: "invalid magic number"}
	}
	if !bytes.Equal(version, []byte{1, 0, 0, 0}) {
		return nil, &DecodeError{Offset: 4, Section: "header", Func: -1, Msg: "unsupported version"}
	}
	m := &module{lim: lim, rep: rep}
	lastRank := 0
	for !r.eof() {
		r.section = "header"
		start := r.pos
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			return nil, r.err
		}
		if int(id) >= len(sectionNames) {
			return nil, &DecodeError{Offset: start, Section: "header", Func: -1, Msg: "unknown section id"}
		}
		r.section = sectionNames[id]
		off := r.pos
		payload := r.bytes(int(size))
		if r.err != nil {
			return nil, r.err
		}
		if id != secCustom {
			rank := sectionRank[id]
			if rank <= lastRank {
				return nil, &DecodeError{Offset: start, Section: sectionNames[id], Func: -1, Msg: "section out of order or duplicated"}
			}
			lastRank = rank
			m.hasSec[id] = true
		}
		m.sections = append(m.sections, section{id: id, payload: payload, off: off})
	}
	m.lastSec = len(m.sections) - 1
	for _, s := range m.sections {
		var err error
		switch s.id {
		case secType:
			err = m.parseTypes(s)
		case secImport:
			err = m.parseImports(s)
		case secFunction:
			err = m.parseFunctions(s)
		case secGlobal:
			err = m.parseGlobalCount(s)
		}
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *module) valType(r *reader) {
	c := r.byte()
	switch c {
	case valI32, valI64, valF32, valF64, valV128, valFuncRef, valExternRef, valExnRef:
	case valRef, valRefNull:
		m.heapType(r)
	default:
		r.fail("invalid value type")
	}
}

// tableRefType reads a table's element type. Like wazero, it accepts any
// single-byte type here (validation of the value is left to the runtime);
// only the two-byte (ref null? ht) forms need decoding.
func (m *module) tableRefType(r *reader) {
	if c := r.byte(); c == valRef || c == valRefNull {
		m.heapType(r)
	}
}

func (m *module) heapType(r *reader) {
	start := r.pos
	v := r.s33()
	if r.err != nil {
		return
	}
	if v >= 0 {
		if !m.lenientHeap && uint64(v) >= uint64(m.nTypes) {
			r.pos = start
			r.fail("heap type index out of range")
		}
		return
	}
	switch v {
	case heapFunc, heapExtern, heapExn:
	default:
		r.pos = start
		r.fail("invalid heap type")
	}
}

func (m *module) parseTypes(s section) error {
	r := newReader(s)
	n := r.count("type")
	r.limit("Types", uint64(n), uint64(m.lim.Types))
	if r.err != nil {
		return r.err
	}
	// Heap types inside the section may refer to any type of the section
	// (wazero checks forward references itself; they stay invalid because
	// the appended types come last).
	m.nTypes = maxU32
	m.typeParams = make([]uint32, 0, n)
	funcType := func() {
		if r.byte() != typeFunc {
			r.pos--
			r.fail("unsupported type form (only func types)")
			return
		}
		if !r.limit("Types", uint64(len(m.typeParams))+1, uint64(m.lim.Types)) {
			return
		}
		np := r.count("parameter")
		r.limit("Params", uint64(np), uint64(m.lim.Params))
		for j := uint32(0); j < np && r.err == nil; j++ {
			m.valType(r)
		}
		nr := r.count("result")
		r.limit("Results", uint64(nr), uint64(m.lim.Results))
		for j := uint32(0); j < nr && r.err == nil; j++ {
			m.valType(r)
		}
		m.typeParams = append(m.typeParams, np)
	}
	for i := uint32(0); i < n && r.err == nil; i++ {
		if r.pos < len(r.b) && r.b[r.pos] == typeRecGroup { // of func types
			r.pos++
			k := r.count("rec group")
			for j := uint32(0); j < k && r.err == nil; j++ {
				funcType()
			}
			continue
		}
		funcType()
	}
	if r.err == nil && !r.eof() {
		r.fail("section size mismatch")
	}
	m.nTypes = uint32(len(m.typeParams))
	return r.err
}

func (m *module) typeIdx(r *reader) uint32 {
	start := r.pos
	t := r.u32()
	if r.err == nil && t >= m.nTypes {
		r.pos = start
		r.fail("type index out of range")
	}
	return t
}

// limitsType reads the limits of a table or memory type: its minimum, and
// its maximum if it has one; shared is the threads proposal's flag.
func (m *module) limitsType(r *reader) (lo, hi uint32, hasMax, shared bool) {
	flags := r.byte()
	switch flags {
	case 0, limitsShared:
		lo = r.u32()
	case limitsHasMax, limitsHasMax | limitsShared:
		lo = r.u32()
		hi = r.u32()
		hasMax = true
	default:
		r.pos--
		r.fail("invalid limits flags")
	}
	return lo, hi, hasMax, flags&limitsShared != 0
}

// table reads a table type's limits (the element type is read by the
// caller), checks them against the limits and notes them in the report.
// It returns the limits as read.
func (m *module) table(r *reader) (lo, hi uint32, hasMax, shared bool) {
	start := r.pos
	lo, hi, hasMax, shared = m.limitsType(r)
	if r.err != nil {
		return
	}
	m.rep.Tables++
	if !r.limit("Tables", uint64(m.rep.Tables), uint64(m.lim.Tables)) {
		return
	}
	if uint64(lo) > uint64(m.lim.TableInitial) {
		r.pos = start
		r.limit("TableInitial", uint64(lo), uint64(m.lim.TableInitial))
		return
	}
	m.rep.TableMinElements = max(m.rep.TableMinElements, lo)
	m.rep.TableMinTotal += uint64(lo)
	return
}

// memory reads a memory type, checks it against the limits and notes it in
// the report.
func (m *module) memory(r *reader, imported bool) {
	start := r.pos
	lo, hi, hasMax, shared := m.limitsType(r)
	if r.err != nil {
		return
	}
	rep := m.rep
	m.nMems++
	if !r.limit("Memories", uint64(m.nMems), uint64(m.lim.Memories)) {
		return
	}
	if uint64(lo) > uint64(m.lim.MemoryInitialPages) {
		r.pos = start
		r.limit("MemoryInitialPages", uint64(lo), uint64(m.lim.MemoryInitialPages))
		return
	}
	if !rep.HasMemory {
		rep.MemoryHasMax = true
	}
	rep.HasMemory = true
	rep.MemoryImported = rep.MemoryImported || imported
	rep.MemoryShared = rep.MemoryShared || shared
	rep.MemoryMinPages = max(rep.MemoryMinPages, lo)
	rep.MemoryHasMax = rep.MemoryHasMax && hasMax
	if hasMax {
		rep.MemoryMaxPages = max(rep.MemoryMaxPages, hi)
	}
}

func (m *module) parseImports(s section) error {
	r := newReader(s)
	m.lenientHeap = true
	defer func() { m.lenientHeap = false }()
	n := r.count("import")
	r.limit("Imports", uint64(n), uint64(m.lim.Imports))
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.name()
		r.name()
		switch r.byte() {
		case externFunc:
			m.typeIdx(r)
			m.nImpFuncs++
			r.limit("Functions", uint64(m.nImpFuncs), uint64(m.lim.Functions))
		case externTable:
			m.tableRefType(r)
			m.table(r)
		case externMemory:
			m.memory(r, true)
		case externGlobal:
			m.valType(r)
			r.byte() // mutability
			m.nImpGlobal++
			r.limit("Globals", uint64(m.nImpGlobal), uint64(m.lim.Globals))
		case externTag:
			r.byte() // attribute: exception
			m.typeIdx(r)
			m.nImpTags++
			r.limit("Tags", uint64(m.nImpTags), uint64(m.lim.Tags))
		default:
			r.pos--
			r.fail("invalid import kind")
		}
	}
	if r.err == nil && !r.eof() {
		r.fail("section size mismatch")
	}
	m.nGlobals = m.nImpGlobal
	m.rep.ImportedFunctions = int(m.nImpFuncs)
	return r.err
}

func (m *module) parseFunctions(s section) error {
	r := newReader(s)
	n := r.count("function")
	r.limit("Functions", uint64(m.nImpFuncs)+uint64(n), uint64(m.lim.Functions))
	if r.err != nil {
		return r.err
	}
	m.funcTypes = make([]uint32, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		m.funcTypes = append(m.funcTypes, m.typeIdx(r))
	}
	if r.err == nil && !r.eof() {
		r.fail("section size mismatch")
	}
	return r.err
}

func (m *module) parseGlobalCount(s section) error {
	r := newReader(s)
	n := r.count("global")
	r.limit("Globals", uint64(m.nImpGlobal)+uint64(n), uint64(m.lim.Globals))
	if r.err != nil {
		return r.err
	}
	m.nGlobals = m.nImpGlobal + n
	return nil
}
