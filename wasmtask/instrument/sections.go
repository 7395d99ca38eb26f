package instrument

// The rewrite of the sections other than code, custom, element and data.

// declaredCount reads the count of a vector section whose entries the
// module's parse has counted (and checked against the bytes that hold
// them), or 0 for a missing section.
func declaredCount(r *reader, missing bool) uint32 {
	if missing {
		return 0
	}
	return r.u32()
}

// extendVec appends the vector of r's section, kept as it is, with its
// count raised by k for the entries the caller appends after it.
func extendVec(r *reader, p []byte, missing bool, k uint32) []byte {
	n := declaredCount(r, missing)
	p = appendU32(p, n+k)
	p = append(p, r.b[r.pos:]...)
	r.pos = len(r.b)
	return p
}

// copyUnparsed appends the whole payload of r's section, which the
// rewrite does not parse, to p, and marks it read.
func copyUnparsed(r *reader, p []byte) []byte {
	r.pos = len(r.b)
	return append(p, r.b...)
}

// copyParsed appends the whole payload of r's section, which the caller
// has parsed (and checked) without changing it, to p.
func copyParsed(r *reader, p []byte) []byte { return append(p, r.b...) }

// types appends the two injected function types: () -> () for the check
// import and (i64) -> (i64) for the helper.
func (w *rewriter) types(r *reader, p []byte, missing bool) []byte {
	p = extendVec(r, p, missing, 2)
	return append(p, typeFunc, 0, 0, typeFunc, 1, valI64, 1, valI64)
}

// imports appends the check import after the module's own imports (a
// module without functions gets none).
func (w *rewriter) imports(r *reader, p []byte, missing bool) []byte {
	if !w.hasCheck() {
		return copyUnparsed(r, p)
	}
	p = extendVec(r, p, missing, 1)
	p = appendName(p, w.cfg.ImportModule)
	p = appendName(p, w.cfg.ImportName)
	p = append(p, externFunc)
	return appendU32(p, w.checkType)
}

// functions appends the helper's type to the function section (a module
// without defined functions has nothing to rewrite and gets no helper).
func (w *rewriter) functions(r *reader, p []byte, missing bool) []byte {
	if !w.hasHelper() {
		return copyUnparsed(r, p)
	}
	p = extendVec(r, p, missing, 1)
	return appendU32(p, w.slowType)
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

// memories checks the memory section, which is copied unchanged.
func (w *rewriter) memories(r *reader, p []byte) []byte {
	n := r.count("memory")
	for i := uint32(0); i < n && r.err == nil; i++ {
		w.m.memory(r, false)
	}
	return copyParsed(r, p)
}

// tags checks the tag section, which is copied unchanged.
func (w *rewriter) tags(r *reader, p []byte) []byte {
	m := w.m
	n := r.count("tag")
	r.limit("Tags", uint64(m.nImpTags)+uint64(n), uint64(m.lim.Tags))
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.byte() // attribute: exception
		m.typeIdx(r)
	}
	return copyParsed(r, p)
}

// globals copies the global section, checking the initializers, and
// appends the fuel global (and the poll-skipping globals): mutable i64s
// initialised to 0.
func (w *rewriter) globals(r *reader, p []byte, missing bool) []byte {
	n := declaredCount(r, missing)
	p = appendU32(p, n+w.injectedGlobals())
	for i := uint32(0); i < n && r.err == nil; i++ {
		mark := r.pos
		w.m.valType(r)
		r.byte() // mutability
		p = append(p, r.b[mark:r.pos]...)
		p = w.constExpr(r, p)
	}
	for range w.injectedGlobals() {
		p = append(p, valI64, globalMutable, opI64Const, 0, opEnd)
	}
	return p
}

// exports copies the export section, shifting function indices and
// checking global indices, and appends the exports of the injected
// globals. A module that already exports one of their names cannot be
// instrumented.
func (w *rewriter) exports(r *reader, p []byte, missing bool) ([]byte, error) {
	var n uint32
	if !missing {
		n = r.count("export")
		r.limit("Exports", uint64(n), uint64(w.m.lim.Exports))
	}
	injected := w.injectedExports()
	p = appendU32(p, n+uint32(len(injected)))
	for i := uint32(0); i < n && r.err == nil; i++ {
		mark := r.pos
		name := r.name()
		if r.err == nil {
			for _, inj := range injected {
				if string(name) == inj {
					return nil, &ConfigError{Msg: "module already exports " + inj}
				}
			}
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
	for i, name := range injected {
		p = appendName(p, name)
		p = append(p, externGlobal)
		p = appendU32(p, w.fuelGlobal+uint32(i))
	}
	return p, nil
}

// start shifts the start function's index.
func (w *rewriter) start(r *reader, p []byte) []byte {
	start := r.pos
	idx := r.u32()
	return appendU32(p, w.shiftFunc(r, start, idx))
}

// dataCount checks the data count section, which is copied unchanged.
// wazero reads an empty one as 0 only at the end of the module (elsewhere
// it reads the next section's bytes): last says whether it is there.
func (w *rewriter) dataCount(r *reader, p []byte, last bool) []byte {
	if len(r.b) == 0 && !last {
		r.fail("empty data count section")
		return p
	}
	if len(r.b) > 0 {
		r.limit("DataSegments", uint64(r.u32()), uint64(w.m.lim.DataSegments))
	}
	return copyParsed(r, p)
}
