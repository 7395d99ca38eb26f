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
	hasSec     [14]bool
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
// import, function and global sections.
func parse(wasm []byte) (*module, error) {
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
	m := &module{}
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
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69:
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
	case -0x10, -0x11, -0x17: // func, extern, exn
	default:
		r.pos = start
		r.fail("invalid heap type")
	}
}

func (m *module) parseTypes(s section) error {
	r := newReader(s)
	n := r.u32()
	if r.err != nil {
		return r.err
	}
	// Heap types inside the section may refer to any type of the section
	// (wazero checks forward references itself; they stay invalid because
	// the appended types come last).
	m.nTypes = 1<<32 - 1
	m.typeParams = make([]uint32, 0, min(n, 1<<16))
	funcType := func() {
		if r.byte() != 0x60 {
			r.pos--
			r.fail("unsupported type form (only func types)")
			return
		}
		np := r.u32()
		for j := uint32(0); j < np && r.err == nil; j++ {
			m.valType(r)
		}
		nr := r.u32()
		for j := uint32(0); j < nr && r.err == nil; j++ {
			m.valType(r)
		}
		m.typeParams = append(m.typeParams, np)
	}
	for i := uint32(0); i < n && r.err == nil; i++ {
		if r.pos < len(r.b) && r.b[r.pos] == 0x4e { // rec group of func types
			r.pos++
			k := r.u32()
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
	if uint64(len(m.typeParams)) > 1<<32-3 {
		return &LimitError{Msg: "too many types"}
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

func (m *module) limits(r *reader) {
	flags := r.byte()
	switch flags {
	case 0, 2:
		r.u32()
	case 1, 3:
		r.u32()
		r.u32()
	default:
		r.pos--
		r.fail("invalid limits flags")
	}
}

func (m *module) parseImports(s section) error {
	r := newReader(s)
	m.lenientHeap = true
	defer func() { m.lenientHeap = false }()
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.name()
		r.name()
		switch r.byte() {
		case 0:
			m.typeIdx(r)
			m.nImpFuncs++
		case 1:
			m.tableRefType(r)
			m.limits(r)
		case 2:
			m.limits(r)
		case 3:
			m.valType(r)
			r.byte()
			m.nImpGlobal++
		case 4:
			r.byte()
			m.typeIdx(r)
		default:
			r.pos--
			r.fail("invalid import kind")
		}
	}
	if r.err == nil && !r.eof() {
		r.fail("section size mismatch")
	}
	m.nGlobals = m.nImpGlobal
	return r.err
}

func (m *module) parseFunctions(s section) error {
	r := newReader(s)
	n := r.u32()
	if r.err == nil && uint64(n) > uint64(len(s.payload)) {
		r.fail("function count exceeds section size")
	}
	m.funcTypes = make([]uint32, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		m.funcTypes = append(m.funcTypes, m.typeIdx(r))
	}
	if r.err == nil && !r.eof() {
		r.fail("section size mismatch")
	}
	if r.err == nil && uint64(m.nImpFuncs)+uint64(n) > 1<<32-3 {
		return &LimitError{Msg: "too many functions"}
	}
	return r.err
}

func (m *module) parseGlobalCount(s section) error {
	r := newReader(s)
	n := r.u32()
	if r.err != nil {
		return r.err
	}
	if uint64(m.nImpGlobal)+uint64(n) > 1<<32-2 {
		return &LimitError{Msg: "too many globals"}
	}
	m.nGlobals = m.nImpGlobal + n
	return nil
}
