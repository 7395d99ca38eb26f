package instrument

// Element segments, the data section's check, and the constant expressions
// they (and globals and tables) hold.

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
