package instrument

// Kinds of instrumentation points within a function body.
const (
	ptEntry     = iota // function entry: load counter, charge, check
	ptCharge           // start of a straight-line segment: charge only
	ptLoop             // loop header: charge, check
	ptReload           // after a call: reload counter from the global, charge, check
	ptWriteback        // before a call, return or exit: store the cached counter
	ptBulk             // before a bulk op with dynamic size: charge size*unit, check
	ptFuncIdx          // re-encode the function index immediate at [off, end)
)

type point struct {
	off  int
	end  int // ptFuncIdx: end of the original immediate
	kind uint8
	cost int64  // segment cost, or unit cost for ptBulk
	idx  uint32 // ptFuncIdx: new index
}

const (
	frBlock = iota
	frLoop
	frIf
	frTry      // legacy try
	frTryTable // try_table
	frFunc
)

type frame struct {
	kind           uint8
	startReachable bool
	branched       bool
}

// funcState is the reusable scratch state of one function's rewrite.
type funcState struct {
	points []point
	frames []frame
	body   []byte
	names  []byte
}

// code rewrites the code section and appends the body of the slow-path
// helper that stores the cached counter, calls the check and reloads it.
func (w *rewriter) code(r *reader, p []byte, missing bool) ([]byte, error) {
	var n uint32
	if !missing {
		n = r.count("code")
	}
	if r.err != nil {
		return nil, r.err
	}
	if n != uint32(len(w.m.funcTypes)) {
		r.fail("function and code section have inconsistent lengths")
		return nil, r.err
	}
	p = appendU32(p, n+1)
	for i := uint32(0); i < n; i++ {
		size := r.u32()
		off := r.pos
		body := r.bytes(int(size))
		if r.err == nil && uint64(size) > uint64(w.m.lim.FunctionBodySize) {
			r.pos = off
			r.limit("FunctionBodySize", uint64(size), uint64(w.m.lim.FunctionBodySize))
		}
		if r.err != nil {
			return nil, r.err
		}
		var err error
		p, err = w.function(p, body, r.base+off, i)
		if err != nil {
			return nil, err
		}
	}
	// Helper: (func (param i64) (result i64)
	//   local.get 0  global.set $fuel  call $check  global.get $fuel)
	h := []byte{0, opLocalGet, 0, opGlobalSet}
	h = appendU32(h, w.fuelGlobal)
	h = append(h, opCall)
	h = appendU32(h, w.checkFunc)
	h = append(h, opGlobalGet)
	h = appendU32(h, w.fuelGlobal)
	h = append(h, opEnd)
	p = appendU32(p, uint32(len(h)))
	p = append(p, h...)
	return p, nil
}

// maxSegmentCost is where a segment's cost saturates: far below the
// overflow of the i64 the guest subtracts it from, and far above any fuel
// a slice holds (the counter goes negative all the same, and the check
// fires).
const maxSegmentCost = 1 << 62

// satAdd adds two non-negative costs, saturating at maxSegmentCost.
func satAdd(a, b int64) int64 {
	if s := a + b; s >= a && s < maxSegmentCost {
		return s
	}
	return maxSegmentCost
}

// function decodes one body, finds its instrumentation points, and appends
// the rewritten body (size-prefixed) to p.
func (w *rewriter) function(p []byte, body []byte, base int, fidx uint32) ([]byte, error) {
	m := w.m
	costs := w.costs
	fs := &w.fn
	r := &reader{b: body, base: base, section: "code"}
	fail := func() error {
		if de, ok := r.err.(*DecodeError); ok {
			de.Func = int(fidx)
		}
		return r.err
	}

	// Locals.
	nParams := uint64(0)
	if t := m.funcTypes[fidx]; int(t) < len(m.typeParams) {
		nParams = uint64(m.typeParams[t])
	}
	nDecl := r.count("local declaration")
	declsStart := r.pos
	declared := uint64(0)
	for i := uint32(0); i < nDecl && r.err == nil; i++ {
		declared += uint64(r.u32()) // at most 2^32 * 2^32: no overflow
		m.valType(r)
	}
	nLocals := nParams + declared
	if r.err == nil && nLocals > uint64(m.lim.Locals) {
		r.pos = declsStart
		r.limit("Locals", nLocals, uint64(m.lim.Locals))
	}
	if r.err == nil {
		w.report.TotalLocals += declared
		if w.report.TotalLocals > uint64(m.lim.TotalLocals) {
			r.pos = declsStart
			r.limit("TotalLocals", w.report.TotalLocals, uint64(m.lim.TotalLocals))
		}
	}
	if r.err != nil {
		return nil, fail()
	}
	w.report.MaxLocals = max(w.report.MaxLocals, uint32(nLocals))
	declEnd := r.pos

	points := fs.points[:0]
	frames := append(fs.frames[:0], frame{kind: frFunc, startReachable: true})
	reachable := true
	cur := 0
	points = append(points, point{off: declEnd, kind: ptEntry, cost: costs.FunctionEntry})
	hasTry := false
	hasBulk := false
	hasCall := false
	nLoops := 0
	prevConst := false
	var constVal uint32

	newSeg := func(off int, kind uint8) {
		points = append(points, point{off: off, kind: kind})
		cur = len(points) - 1
	}
	label := func(start int, l uint32) *frame {
		if uint64(l) >= uint64(len(frames)) {
			r.pos = start
			r.fail("invalid label depth")
			return nil
		}
		f := &frames[len(frames)-1-int(l)]
		f.branched = true
		return f
	}
	writeback := func(off int) {
		if reachable {
			points = append(points, point{off: off, kind: ptWriteback})
		}
	}
	funcIdx := func(start int) {
		idx := r.u32()
		if r.err != nil {
			return
		}
		points = append(points, point{off: start, end: r.pos, kind: ptFuncIdx, idx: w.shiftFunc(r, start, idx)})
	}
	blockType := func() {
		start := r.pos
		v := r.s33()
		if r.err != nil {
			return
		}
		if v >= 0 {
			if uint64(v) >= uint64(m.nTypes) {
				r.pos = start
				r.fail("block type index out of range")
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
	memarg := func() {
		if a := r.u32(); a&memargHasMemIdx != 0 {
			r.u32()
		}
		r.u32()
	}

	for r.err == nil {
		if r.eof() {
			r.fail("function body not terminated by end")
			break
		}
		start := r.pos
		op := r.byte()
		cost := costs.Op[op]
		wasConst := prevConst
		prevConst = false
		switch op {
		case opUnreachable:
			writeback(start)
			reachable = false
		case opNop, opDrop, opSelect:
		case opBlock:
			blockType()
			frames = append(frames, frame{kind: frBlock, startReachable: reachable})
		case opLoop:
			blockType()
			frames = append(frames, frame{kind: frLoop, startReachable: reachable})
		case opIf:
			blockType()
			frames = append(frames, frame{kind: frIf, startReachable: reachable})
		case opElse:
			if f := &frames[len(frames)-1]; f.kind != frIf {
				r.pos = start
				r.fail("else without if")
			}
		case opTry:
			blockType()
			hasTry = true
			frames = append(frames, frame{kind: frTry, startReachable: reachable})
		case opCatch:
			m.tagIdx(r)
		case opCatchAll:
		case opThrow:
			m.tagIdx(r)
			writeback(start)
		case opRethrow:
			r.u32()
			writeback(start)
		case opThrowRef:
			writeback(start)
		case opDelegate:
			r.u32()
		case opTryTable:
			blockType()
			hasTry = true
			nc := r.count("catch")
			for i := uint32(0); i < nc && r.err == nil; i++ {
				kind := r.byte()
				switch kind {
				case catchKindTag, catchKindTagRef:
					m.tagIdx(r)
				case catchKindAll, catchKindAllRef:
				default:
					r.pos--
					r.fail("invalid catch kind")
				}
				ls := r.pos
				l := r.u32()
				if r.err == nil {
					// The label is relative to the try_table's enclosing
					// block; marking the one inside as well is harmless.
					label(ls, l)
					if uint64(l)+1 < uint64(len(frames)) {
						frames[len(frames)-2-int(l)].branched = true
					}
				}
			}
			frames = append(frames, frame{kind: frTryTable, startReachable: reachable})
		case opEnd:
		case opBr:
			ls := r.pos
			if f := label(ls, r.u32()); f != nil && f.kind == frFunc {
				writeback(start)
			}
		case opBrIf, opBrOnNull, opBrOnNonNull:
			ls := r.pos
			if f := label(ls, r.u32()); f != nil && f.kind == frFunc {
				writeback(start)
			}
		case opBrTable:
			n := r.count("br_table target")
			toFunc := false
			for i := uint32(0); i <= n && r.err == nil; i++ {
				ls := r.pos
				if f := label(ls, r.u32()); f != nil && f.kind == frFunc {
					toFunc = true
				}
			}
			if toFunc {
				writeback(start)
			}
		case opReturn:
			writeback(start)
		case opCall, opReturnCall:
			hasCall = true
			writeback(start)
			funcIdx(r.pos)
		case opCallIndirect, opReturnCallIndirect:
			hasCall = true
			writeback(start)
			m.typeIdx(r)
			r.u32()
		case opCallRef, opReturnCallRef:
			hasCall = true
			writeback(start)
			m.typeIdx(r)
		case opSelectT:
			n := r.count("select type")
			for i := uint32(0); i < n && r.err == nil; i++ {
				m.valType(r)
			}
		case opLocalGet, opLocalSet, opLocalTee:
			ls := r.pos
			if l := r.u32(); r.err == nil && uint64(l) >= nLocals {
				r.pos = ls
				r.fail("local index out of range")
			}
		case opGlobalGet, opGlobalSet:
			ls := r.pos
			if g := r.u32(); r.err == nil && g >= m.nGlobals {
				r.pos = ls
				r.fail("global index out of range")
			}
		case opTableGet, opTableSet:
			r.u32()
		case opMemorySize, opMemoryGrow:
			r.u32()
		case opI32Const:
			constVal = uint32(r.s32())
			prevConst = true
		case opI64Const:
			r.s64()
		case opF32Const:
			r.bytes(4)
		case opF64Const:
			r.bytes(8)
		case opRefNull:
			m.heapType(r)
		case opRefIsNull, opRefAsNonNull:
		case opRefFunc:
			funcIdx(r.pos)
		case opPrefixMisc:
			sub := r.u32()
			if sub >= uint32(len(costs.Misc)) {
				r.pos = start
				r.fail("unknown 0xfc operator")
				break
			}
			cost = costs.Misc[sub]
			unit := int64(0)
			switch sub {
			case 0, 1, 2, 3, 4, 5, 6, 7: // the non-trapping conversions (up to miscTruncSatLast)
			case miscMemoryInit:
				r.u32()
				r.u32()
				unit = costs.PerByte
			case miscDataDrop, miscElemDrop, miscTableSize:
				r.u32()
			case miscMemoryCopy:
				r.u32()
				r.u32()
				unit = costs.PerByte
			case miscMemoryFill:
				r.u32()
				unit = costs.PerByte
			case miscTableInit, miscTableCopy:
				r.u32()
				r.u32()
				unit = costs.PerElement
			case miscTableGrow, miscTableFill:
				r.u32()
				unit = costs.PerElement
			default:
				r.pos = start
				r.fail("unknown 0xfc operator")
			}
			if unit != 0 && reachable {
				if wasConst {
					cost = satAdd(cost, int64(constVal)*unit)
				} else {
					points = append(points, point{off: start, kind: ptBulk, cost: unit})
					hasBulk = true
				}
			}
		case opPrefixVec:
			sub := r.u32()
			if sub >= uint32(len(costs.Vec)) {
				r.pos = start
				r.fail("unknown 0xfd operator")
				break
			}
			cost = costs.Vec[sub]
			switch {
			case sub <= vecMemargLast || sub == vecLoad32Zero || sub == vecLoad64Zero:
				memarg()
			case sub >= vecMemLaneFirst && sub <= vecMemLaneLast:
				memarg()
				r.byte()
			case sub == vecConst || sub == vecShuffle:
				r.bytes(16)
			case sub >= vecLaneFirst && sub <= vecLaneLast:
				r.byte()
			}
		case opPrefixAtomic:
			sub := r.u32()
			if sub >= uint32(len(costs.Atomic)) || (sub > atomicFence && sub < atomicAccessFirst) || sub > atomicAccessLast {
				r.pos = start
				r.fail("unknown 0xfe operator")
				break
			}
			cost = costs.Atomic[sub]
			if sub == atomicFence {
				r.byte()
			} else {
				memarg()
			}
		default:
			if op >= opNumericFirst && op <= opNumericLast {
				break
			}
			if op >= opLoadFirst && op <= opStoreLast {
				memarg()
				break
			}
			r.pos = start
			r.fail("unknown operator")
		}
		if r.err != nil {
			break
		}
		// Charge the operator to the current segment.
		if reachable && cur >= 0 {
			points[cur].cost = satAdd(points[cur].cost, cost)
		}
		after := r.pos
		// Control effects: where the next segment starts and whether the
		// code after this operator is reachable.
		switch op {
		case opUnreachable, opBr, opBrTable, opReturn, opReturnCall, opReturnCallIndirect,
			opReturnCallRef, opThrow, opThrowRef, opRethrow:
			reachable = false
			cur = -1
		case opLoop:
			if reachable {
				nLoops++
				newSeg(after, ptLoop)
			}
		case opIf, opBrIf, opBrOnNull, opBrOnNonNull:
			if reachable {
				newSeg(after, ptCharge)
			}
		case opCall, opCallIndirect, opCallRef:
			if reachable {
				newSeg(after, ptReload)
			}
		case opElse, opCatch, opCatchAll:
			f := &frames[len(frames)-1]
			if op != opElse && f.kind != frTry {
				r.pos = start
				r.fail("catch without try")
				break
			}
			reachable = f.startReachable
			cur = -1
			if reachable {
				newSeg(after, ptCharge)
			}
		case opEnd, opDelegate:
			f := frames[len(frames)-1]
			frames = frames[:len(frames)-1]
			if f.kind == frFunc {
				if op == opDelegate {
					r.pos = start
					r.fail("delegate outside try")
					break
				}
				if reachable {
					points = append(points, point{off: start, kind: ptWriteback})
				}
				if !r.eof() {
					r.fail("trailing bytes after function end")
				}
				goto done
			}
			if op == opDelegate && f.kind != frTry {
				r.pos = start
				r.fail("delegate without try")
				break
			}
			switch {
			case f.kind == frLoop:
				// Not a join point: only the fall-through reaches here.
			case f.kind == frBlock && !f.branched, f.kind == frTryTable && !f.branched:
				// Not a join point either.
			default:
				reachable = f.startReachable
				cur = -1
				if reachable {
					newSeg(after, ptCharge)
				}
			}
		}
	}
	return nil, fail()

done:
	if r.err != nil {
		return nil, fail()
	}
	fs.points, fs.frames = points, frames
	w.report.Functions++
	w.report.Loops += nLoops
	// A function without calls needs no check at its entry: it runs
	// forward code and loops (whose headers check) and returns to a caller
	// that checks after the call. Only a function that calls can recurse.
	entryCheck := hasCall || w.knobs.allEntries
	return w.emit(p, body, declsStart, declEnd, nDecl, nLocals, points, hasTry, hasBulk, entryCheck)
}

func (m *module) tagIdx(r *reader) { r.u32() }

func appendI64Const(b []byte, v int64) []byte {
	return appendS64(append(b, opI64Const), v)
}

// emit writes the rewritten body: the local declarations plus the injected
// locals, then the original code with the injected sequences at the points.
func (w *rewriter) emit(p, body []byte, declsStart, declEnd int, nDecl uint32, nLocals uint64, points []point, hasTry, hasBulk, entryCheck bool) ([]byte, error) {
	useLocal := !hasTry
	added := uint32(0)
	if useLocal {
		added++
	}
	if hasBulk {
		added++
	}
	if nLocals+uint64(added) > maxU32 || uint64(nDecl)+uint64(added) > maxU32 {
		return nil, &LimitError{What: "Locals", Value: nLocals, Max: maxU32 - uint64(added), Offset: -1, Msg: "no room for the injected locals"}
	}
	var lbuf, tbuf, fbuf, sbuf, cbuf [5]byte
	L := appendU32(lbuf[:0], uint32(nLocals))
	tIdx := uint32(nLocals)
	if useLocal {
		tIdx++
	}
	T := appendU32(tbuf[:0], tIdx)
	F := appendU32(fbuf[:0], w.fuelGlobal)
	S := appendU32(sbuf[:0], w.slowFunc)
	C := appendU32(cbuf[:0], w.checkFunc)

	b := w.fn.body[:0]
	b = appendU32(b, nDecl+added)
	b = append(b, body[declsStart:declEnd]...)
	if useLocal {
		b = append(b, 1, valI64)
	}
	if hasBulk {
		b = append(b, 1, valI32)
	}
	checks := 0
	// checkLocal expects the new counter on the stack (from local.tee L).
	checkLocal := func(b []byte) []byte {
		checks++
		b = append(b, opI64Const, 0, opI64LtS, opIf, blockTypeNil, opLocalGet)
		b = append(b, L...)
		b = append(b, opCall)
		b = append(b, S...)
		b = append(b, opLocalSet)
		b = append(b, L...)
		return append(b, opEnd)
	}
	checkGlobal := func(b []byte) []byte {
		checks++
		b = append(b, opGlobalGet)
		b = append(b, F...)
		b = append(b, opI64Const, 0, opI64LtS, opIf, blockTypeNil, opCall)
		b = append(b, C...)
		return append(b, opEnd)
	}
	chargeGlobal := func(b []byte, c int64) []byte {
		if c == 0 {
			return b
		}
		b = append(b, opGlobalGet)
		b = append(b, F...)
		b = appendI64Const(b, c)
		b = append(b, opI64Sub, opGlobalSet)
		return append(b, F...)
	}
	pos := declEnd
	for i := range points {
		pt := &points[i]
		b = append(b, body[pos:pt.off]...)
		pos = pt.off
		switch pt.kind {
		case ptFuncIdx:
			b = appendU32(b, pt.idx)
			pos = pt.end
		case ptEntry, ptReload, ptLoop:
			check := (pt.kind == ptEntry && entryCheck) || (pt.kind == ptReload && w.knobs.reloadCheck) || pt.kind == ptLoop
			if !useLocal {
				b = chargeGlobal(b, pt.cost)
				if check {
					b = checkGlobal(b)
				}
				break
			}
			if pt.kind == ptLoop {
				b = append(b, opLocalGet)
				b = append(b, L...)
			} else {
				b = append(b, opGlobalGet)
				b = append(b, F...)
			}
			if pt.cost != 0 {
				b = appendI64Const(b, pt.cost)
				b = append(b, opI64Sub)
			}
			if !check {
				b = append(b, opLocalSet)
				b = append(b, L...)
				break
			}
			b = append(b, opLocalTee)
			b = append(b, L...)
			b = checkLocal(b)
		case ptCharge:
			if pt.cost == 0 && !w.knobs.checkEvery {
				break
			}
			if !useLocal {
				b = chargeGlobal(b, pt.cost)
				if w.knobs.checkEvery {
					b = checkGlobal(b)
				}
				break
			}
			b = append(b, opLocalGet)
			b = append(b, L...)
			if pt.cost != 0 {
				b = appendI64Const(b, pt.cost)
				b = append(b, opI64Sub)
			}
			if w.knobs.checkEvery {
				b = append(b, opLocalTee)
				b = append(b, L...)
				b = checkLocal(b)
			} else {
				b = append(b, opLocalSet)
				b = append(b, L...)
			}
		case ptWriteback:
			if useLocal {
				b = append(b, opLocalGet)
				b = append(b, L...)
				b = append(b, opGlobalSet)
				b = append(b, F...)
			}
		case ptBulk:
			b = append(b, opLocalTee)
			b = append(b, T...)
			if useLocal {
				b = append(b, opLocalGet)
				b = append(b, L...)
			} else {
				b = append(b, opGlobalGet)
				b = append(b, F...)
			}
			b = append(b, opLocalGet)
			b = append(b, T...)
			b = append(b, opI64ExtendI32U)
			b = appendI64Const(b, pt.cost)
			b = append(b, opI64Mul, opI64Sub)
			if useLocal {
				b = append(b, opLocalTee)
				b = append(b, L...)
				b = checkLocal(b)
			} else {
				b = append(b, opGlobalSet)
				b = append(b, F...)
				b = checkGlobal(b)
			}
		}
	}
	b = append(b, body[pos:]...)
	w.fn.body = b
	w.report.Checks += checks
	p = appendU32(p, uint32(len(b)))
	return append(p, b...), nil
}
