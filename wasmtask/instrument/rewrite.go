package instrument

// rewriter is the state of one Instrument call, after the module's parse.
type rewriter struct {
	m      *module
	cfg    Config
	costs  *CostTable
	report Report

	// Indices of the injected entities in the output.
	checkType, slowType uint32 // the check import's and the helper's types
	checkFunc, slowFunc uint32 // the check import and the helper
	fuelGlobal          uint32
	// With Config.PollSkipping: the skip, refill and attention globals.
	skipGlobal, refillGlobal, attnGlobal uint32

	knobs    knobs
	scratch  []byte    // a section's rewritten payload
	fn       funcState // a function's rewrite
	nameBuf  []byte    // the name section's re-encoded subsections
	nameSeen bool      // a name section was met (only the first counts)
}

// shiftFunc maps an input function index to the output index space, in
// which the check import follows the existing function imports.
func (w *rewriter) shiftFunc(r *reader, start int, idx uint32) uint32 {
	if idx >= w.m.nFuncs() {
		r.pos = start
		r.fail("function index out of range")
		return 0
	}
	return w.outFunc(idx)
}

// outFunc maps a function index of the input (in range) to the output's.
func (w *rewriter) outFunc(idx uint32) uint32 {
	if idx >= w.m.nImpFuncs {
		return idx + 1
	}
	return idx
}

// run writes the output: the header, then every section of the input
// rewritten (or copied, or dropped), with the sections the output needs
// and the input lacks in their places.
func (w *rewriter) run(in []byte) ([]byte, error) {
	m := w.m
	w.checkType, w.slowType = m.nTypes, m.nTypes+1
	w.checkFunc = m.nImpFuncs
	w.slowFunc = m.nFuncs() + 1
	w.fuelGlobal = m.nGlobals
	w.skipGlobal, w.refillGlobal, w.attnGlobal = m.nGlobals+1, m.nGlobals+2, m.nGlobals+3
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
	var err error
	switch s.id {
	case secType:
		p = w.types(r, p, missing)
	case secImport:
		p = w.imports(r, p, missing)
	case secFunction:
		p = w.functions(r, p, missing)
	case secTable:
		p = w.tables(r, p)
	case secMemory:
		p = w.memories(r, p)
	case secTag:
		p = w.tags(r, p)
	case secGlobal:
		p = w.globals(r, p, missing)
	case secExport:
		p, err = w.exports(r, p, missing)
	case secStart:
		p = w.start(r, p)
	case secElement:
		p = w.elements(r, p)
	case secDataCount:
		p = w.dataCount(r, p, last)
	case secCode:
		p, err = w.code(r, p, missing)
	case secData:
		w.checkData(r)
		p = copyParsed(r, p)
	default:
		r.fail("unexpected section")
	}
	if err != nil {
		return nil, err
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

// injectedGlobals is how many globals the output appends: the fuel global,
// and with Config.PollSkipping the skip, refill and attention globals.
func (w *rewriter) injectedGlobals() uint32 { return uint32(len(w.injectedExports())) }

// injectedExports names the globals the output exports, in index order
// from fuelGlobal.
func (w *rewriter) injectedExports() []string {
	if w.cfg.PollSkipping {
		return []string{w.cfg.FuelExport, SkipExport, RefillExport, AttentionExport}
	}
	return []string{w.cfg.FuelExport}
}

// hasCheck reports whether the output imports the check function: a module
// without any function runs no code, so it gets only the fuel global. (This
// also keeps function index 0 absent where the input has none, which wazero's
// validation of table initialisers depends on.)
func (w *rewriter) hasCheck() bool { return w.m.nFuncs() > 0 }
