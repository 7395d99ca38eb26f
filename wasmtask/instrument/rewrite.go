package instrument

type rewriter struct {
	m      *module
	cfg    Config
	costs  *CostTable
	report Report

	checkType, slowType uint32
	checkFunc, slowFunc uint32
	fuelGlobal          uint32
	scratch             []byte
	knobs               knobs
	fn                  funcState
	nameBuf             []byte // scratch of names
	nameSeen            bool   // a name section was met (only the first counts)
}

// shiftFunc maps an input function index to the output index space, in
// which the check import follows the existing function imports.
func (w *rewriter) shiftFunc(r *reader, start int, idx uint32) uint32 {
	if idx >= w.m.nFuncs() {
		r.pos = start
		r.fail("function index out of range")
		return 0
	}
	if idx >= w.m.nImpFuncs {
		return idx + 1
	}
	return idx
}

func (w *rewriter) run(in []byte) ([]byte, error) {
	m := w.m
	w.checkType, w.slowType = m.nTypes, m.nTypes+1
	w.checkFunc = m.nImpFuncs
	w.slowFunc = m.nFuncs() + 1
	w.fuelGlobal = m.nGlobals
	if m.nTypes > maxU32-2 {
		return nil, &LimitError{What: "Types", Value: uint64(m.nTypes), Max: maxU32 - 2, Offset: -1, Msg: "no room for the injected types"}
	}
	if uint32(len(m.funcTypes)) > 0 && !m.hasSec[secCode] {
		return nil, &DecodeError{Offset: len(in), Section: "code", Func: -1, Msg: "function and code section have inconsistent lengths"}
	}

	out := make([]byte, 0, len(in)+len(in)/3+128)
	out = append(out, in[:8]...)
	// A missing section the output needs goes right after the last known
	// section that must precede it (or first), so that trailing custom
	// sections stay last.
	after := make([][]byte, len(m.sections)+1) // after[i+1]: ids to emit after section i
	for _, id := range []byte{secType, secImport, secFunction, secGlobal, secExport, secCode} {
		if m.hasSec[id] || ((id == secFunction || id == secCode) && !w.hasHelper()) || (id == secImport && !w.hasCheck()) {
			continue
		}
		pos := 0
		for i, s := range m.sections {
			if s.id != secCustom && sectionRank[s.id] < sectionRank[id] {
				pos = i + 1
			}
		}
		after[pos] = append(after[pos], id)
	}
	emit := func(ids []byte) error {
		for _, id := range ids {
			var err error
			if out, err = w.section(out, section{id: id}, false); err != nil {
				return err
			}
		}
		return nil
	}
	if err := emit(after[0]); err != nil {
		return nil, err
	}
	for i, s := range m.sections {
		var err error
		if s.id == secCustom {
			out, err = w.custom(out, s)
		} else {
			out, err = w.section(out, s, i == m.lastSec)
		}
		if err != nil {
			return nil, err
		}
		if err := emit(after[i+1]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func appendSection(out []byte, id byte, payload []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(payload)))
	return append(out, payload...)
}

// copyAll appends the whole payload of r's section to p, as read.
func copyAll(r *reader, p []byte) []byte {
	r.pos = len(r.b)
	return append(p, r.b...)
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}

// section appends the rewritten form of s (not a custom section) to out. A
// section with a nil payload and no offset is one that the input lacks and
// the output needs. last says whether s is the input's last section.
func (w *rewriter) section(out []byte, s section, last bool) ([]byte, error) {
	missing := s.payload == nil && s.off == 0
	r := newReader(s)
	p := w.scratch[:0]
	count := func() uint32 {
		if missing {
			return 0
		}
		return r.u32()
	}
	switch s.id {
	case secType:
		n := count()
		p = appendU32(p, n+2)
		p = append(p, r.b[r.pos:]...)
		r.pos = len(r.b)
		p = append(p, typeFunc, 0, 0, typeFunc, 1, valI64, 1, valI64)
	case secImport:
		if !w.hasCheck() {
			p = append(p, s.payload...)
			r.pos = len(r.b)
			break
		}
		n := count()
		p = appendU32(p, n+1)
		p = append(p, r.b[r.pos:]...)
		r.pos = len(r.b)
		p = appendName(p, w.cfg.ImportModule)
		p = appendName(p, w.cfg.ImportName)
		p = append(p, externFunc)
		p = appendU32(p, w.checkType)
	case secCode:
		var err error
		p, err = w.code(r, p, missing)
		if err != nil {
			return nil, err
		}
	case secFunction:
		if !w.hasHelper() { // no defined function: nothing to rewrite, no helper
			p = copyAll(r, p)
			break
		}
		n := count()
		p = appendU32(p, n+1)
		p = append(p, r.b[r.pos:]...)
		r.pos = len(r.b)
		p = appendU32(p, w.slowType)
	case secTable:
		p = w.tables(r, p)
	case secTag:
		m := w.m
		n := r.count("tag")
		r.limit("Tags", uint64(m.nImpTags)+uint64(n), uint64(m.lim.Tags))
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.byte() // attribute: exception
			m.typeIdx(r)
		}
		p = append(p, s.payload...)
	case secMemory:
		n := r.count("memory")
		for i := uint32(0); i < n && r.err == nil; i++ {
			w.m.memory(r, false)
		}
		p = append(p, s.payload...)
	case secDataCount:
		// wazero reads an empty data count section as 0 only at the end of
		// the module (elsewhere it reads the next section's bytes).
		if len(s.payload) == 0 && !last {
			r.fail("empty data count section")
			break
		}
		if len(s.payload) > 0 {
			r.limit("DataSegments", uint64(r.u32()), uint64(w.m.lim.DataSegments))
		}
		p = append(p, s.payload...)
	case secGlobal:
		n := count()
		p = appendU32(p, n+1)
		for i := uint32(0); i < n && r.err == nil; i++ {
			mark := r.pos
			w.m.valType(r)
			r.byte() // mutability
			p = append(p, r.b[mark:r.pos]...)
			p = w.constExpr(r, p)
		}
		p = append(p, valI64, globalMutable, opI64Const, 0, opEnd)
	case secExport:
		var n uint32
		if !missing {
			n = r.count("export")
			r.limit("Exports", uint64(n), uint64(w.m.lim.Exports))
		}
		p = appendU32(p, n+1)
		for i := uint32(0); i < n && r.err == nil; i++ {
			mark := r.pos
			name := r.name()
			if r.err == nil && string(name) == w.cfg.FuelExport {
				return nil, &ConfigError{Msg: "module already exports " + w.cfg.FuelExport}
			}
			kind := r.byte()
			p = append(p, r.b[mark:r.pos]...)
			start := r.pos
			idx := r.u32()
			switch kind {
			case externFunc:
				idx = w.shiftFunc(r, start, idx)
			case externGlobal:
				if r.err == nil && idx >= w.m.nGlobals {
					r.pos = start
					r.fail("global index out of range")
				}
			}
			p = appendU32(p, idx)
		}
		p = appendName(p, w.cfg.FuelExport)
		p = append(p, externGlobal)
		p = appendU32(p, w.fuelGlobal)
	case secStart:
		start := r.pos
		idx := r.u32()
		p = appendU32(p, w.shiftFunc(r, start, idx))
	case secElement:
		p = w.elements(r, p)
	case secData:
		w.checkData(r)
		p = append(p, s.payload...)
	default:
		r.fail("unexpected section")
	}
	if r.err != nil {
		return nil, r.err
	}
	if !r.eof() {
		r.fail("section size mismatch")
		return nil, r.err
	}
	w.scratch = p
	return appendSection(out, s.id, p), nil
}

// tables copies the table section, giving every table a maximum of at
// most Limits.TableMaximum (see there).
func (w *rewriter) tables(r *reader, p []byte) []byte {
	n := r.count("table")
	p = appendU32(p, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		mark := r.pos
		init := r.pos < len(r.b) && r.b[r.pos] == tableHasInit
		if init {
			r.byte()
			if r.byte() != 0 { // reserved
				r.fail("invalid table initializer prefix")
			}
		}
		w.m.tableRefType(r)
		p = append(p, r.b[mark:r.pos]...)
		lo, hi, hasMax, shared := w.m.table(r)
		if r.err != nil {
			break
		}
		// A maximum below the minimum stays as it is (the module is
		// invalid and must stay so); otherwise the cap never goes below
		// the minimum, which TableInitial has bounded.
		if top := w.m.lim.TableMaximum; !hasMax || (hi > top && hi >= lo) {
			hi = max(top, lo)
			w.report.TablesCapped++
		}
		flags := byte(limitsHasMax)
		if shared {
			flags |= limitsShared // not valid for a table: kept so that wazero still refuses it
		}
		p = append(p, flags)
		p = appendU32(p, lo)
		p = appendU32(p, hi)
		if init {
			p = w.constExpr(r, p)
		}
	}
	return p
}

// constExpr copies a constant expression, shifting ref.func indices and
// checking global and function indices (an out-of-range index must not
// become valid because of the entities the rewrite appends).
func (w *rewriter) constExpr(r *reader, p []byte) []byte {
	for r.err == nil {
		mark := r.pos
		op := r.byte()
		switch op {
		case opEnd:
			return append(p, opEnd)
		case opI32Const:
			r.s32()
		case opI64Const:
			r.s64()
		case opF32Const:
			r.bytes(4)
		case opF64Const:
			r.bytes(8)
		case opGlobalGet:
			start := r.pos
			if g := r.u32(); r.err == nil && g >= w.m.nGlobals {
				r.pos = start
				r.fail("global index out of range")
			}
		case opRefNull:
			// Decoded as wazero decodes it in a constant expression: one of
			// the abstract heap-type bytes (func, extern, exn), or else an
			// unsigned LEB128 type index that is not range-checked. (A
			// signed s33 reading would reject 0x41, which wazero accepts.)
			start := r.pos
			if b := r.byte(); b != valFuncRef && b != valExternRef && b != valExnRef {
				r.pos = start
				r.u32()
			}
		case opRefFunc:
			start := r.pos
			idx := w.shiftFunc(r, start, r.u32())
			p = append(p, opRefFunc)
			p = appendU32(p, idx)
			continue
		case opI32Add, opI32Sub, opI32Mul, opI64Add, opI64Sub, opI64Mul:
		case opPrefixVec:
			if r.u32() != vecConst {
				r.fail("unsupported constant expression operator")
			}
			r.bytes(16)
		default:
			r.pos = mark
			r.fail("unsupported constant expression operator")
		}
		p = append(p, r.b[mark:r.pos]...)
	}
	return p
}

// elemCount reads the length of a segment's element vector and checks it
// and the running total against the limits.
func (w *rewriter) elemCount(r *reader) uint32 {
	start := r.pos
	n := r.count("element")
	if r.err != nil {
		return 0
	}
	w.report.Elements += uint64(n)
	if w.report.Elements > uint64(w.m.lim.Elements) {
		r.pos = start
		r.limit("Elements", w.report.Elements, uint64(w.m.lim.Elements))
		return 0
	}
	return n
}

func (w *rewriter) funcIdxVec(r *reader, p []byte) []byte {
	n := w.elemCount(r)
	p = appendU32(p, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		start := r.pos
		p = appendU32(p, w.shiftFunc(r, start, r.u32()))
	}
	return p
}

func (w *rewriter) exprVec(r *reader, p []byte) []byte {
	n := w.elemCount(r)
	p = appendU32(p, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		p = w.constExpr(r, p)
	}
	return p
}

func (w *rewriter) elements(r *reader, p []byte) []byte {
	n := r.count("element segment")
	r.limit("ElementSegments", uint64(n), uint64(w.m.lim.ElementSegments))
	w.report.ElementSegments = int(n)
	p = appendU32(p, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		mark := r.pos
		flags := r.u32()
		if r.err != nil {
			break
		}
		// The flags' bit 0 makes a segment passive (or, with bit 1,
		// declarative), bit 1 on an active one gives its table index, and
		// bit 2 gives its elements as expressions of an explicit type (the
		// others are function indices with an element kind byte, or none).
		switch flags {
		case 0: // active, table 0: offset, function indices
			p = append(p, r.b[mark:r.pos]...)
			p = w.constExpr(r, p)
			p = w.funcIdxVec(r, p)
		case 1, 3: // passive, declarative: element kind, function indices
			r.byte()
			p = append(p, r.b[mark:r.pos]...)
			p = w.funcIdxVec(r, p)
		case 2: // active: table, offset, element kind, function indices
			r.u32()
			p = append(p, r.b[mark:r.pos]...)
			p = w.constExpr(r, p)
			mark = r.pos
			r.byte()
			p = append(p, r.b[mark:r.pos]...)
			p = w.funcIdxVec(r, p)
		case 4: // active, table 0: offset, expressions
			p = append(p, r.b[mark:r.pos]...)
			p = w.constExpr(r, p)
			p = w.exprVec(r, p)
		case 5, 7: // passive, declarative: type, expressions
			w.m.valType(r)
			p = append(p, r.b[mark:r.pos]...)
			p = w.exprVec(r, p)
		case 6: // active: table, offset, type, expressions
			r.u32()
			p = append(p, r.b[mark:r.pos]...)
			p = w.constExpr(r, p)
			mark = r.pos
			w.m.valType(r)
			p = append(p, r.b[mark:r.pos]...)
			p = w.exprVec(r, p)
		default:
			r.pos = mark
			r.fail("invalid element segment flags")
		}
	}
	return p
}

// checkData checks the data section (which is copied unchanged): its
// counts and lengths, the limits, and the offset expressions against the
// input's global index space.
func (w *rewriter) checkData(r *reader) {
	n := r.count("data segment")
	r.limit("DataSegments", uint64(n), uint64(w.m.lim.DataSegments))
	w.report.DataSegments = int(n)
	var sink []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		flags := r.u32()
		switch flags {
		case 0: // active, memory 0: offset
			sink = w.constExpr(r, sink[:0])
		case 1: // passive
		case 2: // active: memory, offset
			r.u32()
			sink = w.constExpr(r, sink[:0])
		default:
			r.fail("invalid data segment flags")
		}
		w.report.DataBytes += uint64(len(r.name()))
	}
	if r.err == nil && !r.eof() {
		r.fail("section size mismatch")
	}
}

// knobs are internal variants of the injected code, kept for measurement.
type knobs struct {
	checkEvery  bool // check after every charge, not only at check points
	reloadCheck bool // check after every call returns
	allEntries  bool // check at every function entry, not only in functions that call
}

// defaultKnobs is what Instrument uses (tests may change it).
var defaultKnobs = knobs{}

// hasHelper reports whether the output gets the slow-path helper function:
// only modules with defined functions need it (and a module without them
// keeps its function and code sections, if any, unchanged).
func (w *rewriter) hasHelper() bool { return len(w.m.funcTypes) > 0 }

// hasCheck reports whether the output imports the check function: a module
// without any function runs no code, so it gets only the fuel global. (This
// also keeps function index 0 absent where the input has none, which wazero's
// validation of table initialisers depends on.)
func (w *rewriter) hasCheck() bool { return w.m.nFuncs() > 0 }
