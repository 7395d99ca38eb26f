package instrument

// instr is what decode learns about one operator, for scan (besides
// its static cost, which decode returns).
type instr struct {
	unit int64 // a bulk operation's cost per byte or element (0: not one)
	// A block, loop, if or try's block type ends at btEnd; btParams says
	// whether it takes parameters (set by blockType).
	btEnd    int
	btParams bool
	i32      uint32 // i32.const: the value
	toFunc   bool   // a branch: one of its targets is the function's own label
	// call, return_call, ref.func: the function index immediate, at
	// [funcOff, funcEnd) in the body, and its output value.
	hasFunc          bool
	funcOff, funcEnd int
	funcIdx          uint32
}

// decode reads the immediates of operator op (whose byte starts at start),
// checks them, and returns the operator's static cost. It notes in fs.ins
// what scan needs: label targets (resolved against the control stack,
// each frame branched to marked as such), function indices, bulk unit
// costs and i32 constants. It changes nothing else: the control stack's
// frames come and go in control.
//
// decode is one flat dispatch over the opcodes, kept whole: each case is a
// line or two, and together they read as the table of the instruction
// set's immediates; the prefixed opcodes have their own tables below.
func (fs *funcState) decode(op byte, start int) (cost int64) {
	r, m := &fs.r, fs.m
	in := &fs.ins
	in.unit, in.toFunc, in.hasFunc = 0, false, false
	switch op {
	case opUnreachable, opNop, opElse, opCatchAll, opEnd, opReturn, opThrowRef,
		opDrop, opSelect, opRefIsNull, opRefAsNonNull:
		// no immediate
	case opBlock, opLoop, opIf, opTry:
		fs.blockType()
		in.btEnd = r.pos
	case opTryTable:
		fs.blockType()
		fs.catches()
	case opCatch, opThrow:
		m.tagIdx(r)
	case opRethrow, opDelegate:
		r.u32() // label
	case opBr, opBrIf, opBrOnNull, opBrOnNonNull:
		fs.branch()
	case opBrTable:
		n := r.count("br_table target")
		for i := uint32(0); i <= n && r.err == nil; i++ { // n targets and the default
			fs.branch()
		}
	case opCall, opReturnCall, opRefFunc:
		fs.funcIdx()
	case opCallIndirect, opReturnCallIndirect:
		m.typeIdx(r)
		r.u32() // table
	case opCallRef, opReturnCallRef:
		m.typeIdx(r)
	case opSelectT:
		n := r.count("select type")
		for i := uint32(0); i < n && r.err == nil; i++ {
			m.valType(r)
		}
	case opLocalGet, opLocalSet, opLocalTee:
		ls := r.pos
		if l := r.u32(); r.err == nil && uint64(l) >= fs.nLocals {
			r.pos = ls
			r.fail("local index out of range")
		}
	case opGlobalGet, opGlobalSet:
		gs := r.pos
		if g := r.u32(); r.err == nil && g >= m.nGlobals {
			r.pos = gs
			r.fail("global index out of range")
		}
	case opTableGet, opTableSet, opMemorySize, opMemoryGrow:
		r.u32() // table or memory
	case opI32Const:
		in.i32 = uint32(r.s32())
	case opI64Const:
		r.s64()
	case opF32Const:
		r.bytes(4)
	case opF64Const:
		r.bytes(8)
	case opRefNull:
		m.heapType(r)
	case opPrefixMisc:
		return fs.misc(start)
	case opPrefixVec:
		return fs.vec(start)
	case opPrefixAtomic:
		return fs.atomic(start)
	default:
		switch {
		case op >= opNumericFirst && op <= opNumericLast:
		case op >= opLoadFirst && op <= opStoreLast:
			fs.memarg()
		default:
			r.pos = start
			r.fail("unknown operator")
		}
	}
	return fs.costs.Op[op]
}

// misc decodes a 0xFC-prefixed operator and returns its cost; it notes
// the unit cost of a bulk operation.
func (fs *funcState) misc(start int) int64 {
	r, in, costs := &fs.r, &fs.ins, fs.costs
	sub := r.u32()
	if sub >= uint32(len(costs.Misc)) {
		r.pos = start
		r.fail("unknown 0xfc operator")
		return 0
	}
	switch sub {
	case 0, 1, 2, 3, 4, 5, 6, 7: // the non-trapping conversions (up to miscTruncSatLast)
	case miscMemoryInit:
		r.u32() // data segment
		r.u32() // memory
		in.unit = costs.PerByte
	case miscDataDrop, miscElemDrop, miscTableSize:
		r.u32()
	case miscMemoryCopy:
		r.u32() // memories
		r.u32()
		in.unit = costs.PerByte
	case miscMemoryFill:
		r.u32() // memory
		in.unit = costs.PerByte
	case miscTableInit, miscTableCopy:
		r.u32() // element segment and table, or tables
		r.u32()
		in.unit = costs.PerElement
	case miscTableGrow, miscTableFill:
		r.u32() // table
		in.unit = costs.PerElement
	default:
		r.pos = start
		r.fail("unknown 0xfc operator")
	}
	return costs.Misc[sub]
}

// vec decodes a 0xFD-prefixed (SIMD) operator and returns its cost.
func (fs *funcState) vec(start int) int64 {
	r := &fs.r
	sub := r.u32()
	if sub >= uint32(len(fs.costs.Vec)) {
		r.pos = start
		r.fail("unknown 0xfd operator")
		return 0
	}
	switch {
	case sub <= vecMemargLast || sub == vecLoad32Zero || sub == vecLoad64Zero:
		fs.memarg()
	case sub >= vecMemLaneFirst && sub <= vecMemLaneLast:
		fs.memarg()
		r.byte() // lane
	case sub == vecConst || sub == vecShuffle:
		r.bytes(16)
	case sub >= vecLaneFirst && sub <= vecLaneLast:
		r.byte() // lane
	}
	return fs.costs.Vec[sub]
}

// atomic decodes a 0xFE-prefixed (threads) operator and returns its cost.
func (fs *funcState) atomic(start int) int64 {
	r := &fs.r
	sub := r.u32()
	if sub >= uint32(len(fs.costs.Atomic)) || (sub > atomicFence && sub < atomicAccessFirst) || sub > atomicAccessLast {
		r.pos = start
		r.fail("unknown 0xfe operator")
		return 0
	}
	if sub == atomicFence {
		r.byte() // reserved
	} else {
		fs.memarg()
	}
	return fs.costs.Atomic[sub]
}

// memarg reads a memory access's alignment (with, under multi-memory, its
// memory index) and offset.
func (fs *funcState) memarg() {
	r := &fs.r
	if a := r.u32(); a&memargHasMemIdx != 0 {
		r.u32()
	}
	r.u32()
}

// blockType reads the type of a block, loop, if, try or try_table.
func (fs *funcState) blockType() {
	r, m := &fs.r, fs.m
	start := r.pos
	v := r.s33()
	fs.ins.btParams = false
	if r.err != nil {
		return
	}
	if v >= 0 {
		if uint64(v) >= uint64(m.nTypes) {
			r.pos = start
			r.fail("block type index out of range")
		} else if int(v) >= len(m.typeParams) || m.typeParams[v] != 0 {
			fs.ins.btParams = true
		}
		return
	}
	// A value type, possibly in a non-canonical (longer) s33 encoding,
	// which wazero accepts: decode it from the value, not the byte.
	switch c := byte(v & 0x7f); c { // the low 7 bits are the type's byte
	case blockTypeNil, valI32, valI64, valF32, valF64, valV128, valFuncRef, valExternRef, valExnRef:
	case valRef, valRefNull:
		m.heapType(r)
	default:
		r.pos = start
		r.fail("invalid block type")
	}
}

// label reads a label immediate and returns the frame it targets, marked
// as branched to (nil on an error).
func (fs *funcState) label() *frame {
	r := &fs.r
	start := r.pos
	l := r.u32()
	if r.err != nil {
		return nil
	}
	return fs.target(start, l)
}

// target returns the frame that label l (read at start) targets, marked as
// branched to, or fails. A label that crosses wrapped loops (cold.go)
// gets a point that re-encodes it.
func (fs *funcState) target(start int, l uint32) *frame {
	if uint64(l) >= uint64(len(fs.frames)) {
		fs.r.pos = start
		fs.r.fail("invalid label depth")
		return nil
	}
	f := &fs.frames[len(fs.frames)-1-int(l)]
	f.branched = true
	if crossed := fs.frames[len(fs.frames)-1].wraps - f.wraps; crossed > 0 {
		fs.labelFixes = append(fs.labelFixes, point{off: start, end: fs.r.pos, kind: ptLabel, idx: l + wrapFrames*uint32(crossed)})
	}
	return f
}

// branch reads the label of a branch and notes whether it leaves the
// function.
func (fs *funcState) branch() {
	if f := fs.label(); f != nil && f.kind == frFunc {
		fs.ins.toFunc = true
	}
}

// catches reads the catch clauses of a try_table. Their labels are
// relative to the try_table's enclosing block, which is at the top of the
// control stack (the try_table's own frame is pushed by control). The frame
// enclosing each target is marked as branched to as well: harmless (at
// worst a segment start too many, at the end of that frame).
func (fs *funcState) catches() {
	r, m := &fs.r, fs.m
	n := r.count("catch")
	for i := uint32(0); i < n && r.err == nil; i++ {
		switch r.byte() {
		case catchKindTag, catchKindTagRef:
			m.tagIdx(r)
		case catchKindAll, catchKindAllRef:
		default:
			r.pos--
			r.fail("invalid catch kind")
		}
		start := r.pos
		l := r.u32()
		if r.err == nil && fs.target(start, l) != nil && uint64(l)+1 < uint64(len(fs.frames)) {
			fs.frames[len(fs.frames)-2-int(l)].branched = true
		}
	}
}

// funcIdx reads a function index immediate and notes its output value.
func (fs *funcState) funcIdx() {
	r, in := &fs.r, &fs.ins
	start := r.pos
	idx := r.u32()
	if r.err != nil {
		return
	}
	in.hasFunc, in.funcOff, in.funcIdx = true, start, fs.w.shiftFunc(r, start, idx)
	in.funcEnd = r.pos
}

func (m *module) tagIdx(r *reader) { r.u32() }
