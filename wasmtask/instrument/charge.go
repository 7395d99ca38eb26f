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
	ptLoopWrap         // before a wrapped loop: open its wrapper (cold.go); end: its block type's end
	ptLoopCold         // a wrapped loop's header: charge, check that branches to the cold path
	ptLoopEnd          // after a wrapped loop's end: close the wrapper, with the cold path; idx: its ptLoopCold
	ptLabel            // re-encode the label immediate at [off, end) as idx (it crosses wrapped loops)
)

type point struct {
	off  int
	end  int // ptFuncIdx, ptLabel: end of the original immediate; ptLoopWrap: of the block type
	kind uint8
	cost int64  // segment cost, or unit cost for ptBulk
	idx  uint32 // ptFuncIdx: new index; ptLabel: new depth; ptLoopEnd: index of the loop's ptLoopCold
}

// Kinds of frames of the control stack.
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
	startReachable bool // the code at the frame's start is reachable
	branched       bool // a branch targets the frame's label
	// wraps counts the wrapped loops (cold.go) among this frame and those
	// enclosing it; a wrapped loop's frame has headPt, the index of its
	// ptLoopCold point (else -1).
	wraps  int
	headPt int
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

// begin starts the function's accounting: the function's own frame, and
// the first segment at the entry, charged the entry cost.
func (fs *funcState) begin() {
	fs.points = append(fs.points[:0], point{off: fs.declEnd, kind: ptEntry, cost: fs.costs.FunctionEntry})
	fs.frames = append(fs.frames[:0], frame{kind: frFunc, startReachable: true, headPt: -1})
	fs.labelFixes = fs.labelFixes[:0]
	fs.reachable, fs.cur, fs.ended = true, 0, false
	fs.prevConst = false
	fs.hasTry, fs.hasBulk, fs.hasCall = false, false, false
	fs.nLoops = 0
}

// scan decodes each operator up to the function's final end and accounts
// for it: in reachable code its static cost goes to the current segment
// (with size*unit for a bulk operation whose size is the constant just
// before it; one of dynamic size gets a charge point of its own), then the
// operators that have control effects apply them. It reports false on an
// error.
//
// The accounting is written out in the loop: it runs for every operator,
// and a function of its own (too large to be inlined) made Instrument
// about 6% slower on the Go guest. What is not common is in bulk and
// control.
func (fs *funcState) scan() bool {
	r := &fs.r
	for !fs.ended {
		if r.eof() {
			r.fail("function body not terminated by end")
			return false
		}
		start := r.pos
		op := r.byte()
		cost := fs.decode(op, start)
		if r.err != nil {
			return false
		}
		if fs.ins.unit != 0 && fs.reachable {
			cost = fs.bulk(start, cost)
		}
		fs.prevConst = op == opI32Const
		if fs.prevConst {
			fs.constVal = fs.ins.i32
		}
		// unreachable is not charged: it only traps.
		if fs.reachable && fs.cur >= 0 && op != opUnreachable {
			fs.points[fs.cur].cost = satAdd(fs.points[fs.cur].cost, cost)
		}
		if controlOps[op] {
			fs.control(op, start)
			if r.err != nil {
				return false
			}
		}
	}
	return true
}

// bulk returns the cost of a reachable bulk operation (at start): its
// static cost plus size*unit if the size is the constant just before it,
// else its static cost alone, the size being charged by a point of its
// own.
func (fs *funcState) bulk(start int, cost int64) int64 {
	if fs.prevConst {
		return satAdd(cost, int64(fs.constVal)*fs.ins.unit)
	}
	fs.points = append(fs.points, point{off: start, kind: ptBulk, cost: fs.ins.unit})
	fs.hasBulk = true
	return cost
}

// controlOps are the operators with control effects: the operators that
// control acts on (TestControlOps checks that it acts on no other).
var controlOps = [256]bool{
	opUnreachable: true, opBlock: true, opLoop: true, opIf: true, opElse: true,
	opTry: true, opCatch: true, opThrow: true, opRethrow: true, opThrowRef: true,
	opEnd: true, opBr: true, opBrIf: true, opBrTable: true, opReturn: true,
	opCall: true, opCallIndirect: true, opReturnCall: true, opReturnCallIndirect: true,
	opCallRef: true, opReturnCallRef: true, opDelegate: true, opCatchAll: true,
	opTryTable: true, opRefFunc: true, opBrOnNull: true, opBrOnNonNull: true,
}

// control applies the control effects of operator op (at start): the
// write-back of the cached counter before an operator that hands over
// control (a call, whose callee or host reads the global, or leaving the
// function), the function index to rewrite, the control stack, whether
// the code after it is reachable, and where the next segment starts and of
// which kind.
func (fs *funcState) control(op byte, start int) {
	if fs.ins.toFunc || writesBack(op) {
		fs.writeback(start)
	}
	if in := &fs.ins; in.hasFunc {
		fs.points = append(fs.points, point{off: in.funcOff, end: in.funcEnd, kind: ptFuncIdx, idx: in.funcIdx})
	}
	// The labels decode re-encodes come after the write-back at start.
	fs.points = append(fs.points, fs.labelFixes...)
	fs.labelFixes = fs.labelFixes[:0]
	after := fs.r.pos
	switch op {
	case opBlock:
		fs.push(frBlock)
	case opLoop:
		if !fs.reachable {
			fs.push(frLoop)
			break
		}
		fs.nLoops++
		if fs.ins.btParams {
			fs.push(frLoop)
			fs.newSegment(after, ptLoop)
			break
		}
		fs.points = append(fs.points, point{off: start, end: fs.ins.btEnd, kind: ptLoopWrap})
		fs.newSegment(after, ptLoopCold)
		fs.pushWrapped(fs.cur)
	case opIf:
		fs.push(frIf)
		if fs.reachable {
			fs.newSegment(after, ptCharge)
		}
	case opTry:
		fs.hasTry = true
		fs.push(frTry)
	case opTryTable:
		fs.hasTry = true
		fs.push(frTryTable)
	case opBrIf, opBrOnNull, opBrOnNonNull:
		if fs.reachable {
			fs.newSegment(after, ptCharge)
		}
	case opCall, opCallIndirect, opCallRef:
		fs.hasCall = true
		if fs.reachable {
			fs.newSegment(after, ptReload)
		}
	case opReturnCall, opReturnCallIndirect, opReturnCallRef:
		fs.hasCall = true
		fs.unreachable()
	case opUnreachable, opBr, opBrTable, opReturn, opThrow, opThrowRef, opRethrow:
		fs.unreachable()
	case opElse, opCatch, opCatchAll:
		fs.clause(op, start, after)
	case opEnd, opDelegate:
		fs.end(op, start, after)
	}
}

// writesBack reports whether op needs the cached counter in the global
// before it runs: it calls, or leaves the function other than by a branch
// (decode tells the branches to the function's label).
func writesBack(op byte) bool {
	switch op {
	case opCall, opCallIndirect, opCallRef, opReturnCall, opReturnCallIndirect, opReturnCallRef,
		opReturn, opUnreachable, opThrow, opThrowRef, opRethrow:
		return true
	}
	return false
}

// push opens a frame of the given kind at the cursor.
func (fs *funcState) push(kind uint8) {
	fs.frames = append(fs.frames, frame{kind: kind, startReachable: fs.reachable,
		wraps: fs.frames[len(fs.frames)-1].wraps, headPt: -1})
}

// pushWrapped opens the frame of a wrapped loop whose header is point
// headPt.
func (fs *funcState) pushWrapped(headPt int) {
	fs.frames = append(fs.frames, frame{kind: frLoop, startReachable: true,
		wraps: fs.frames[len(fs.frames)-1].wraps + 1, headPt: headPt})
}

// newSegment starts a segment of the given kind (a charge point) at off.
func (fs *funcState) newSegment(off int, kind uint8) {
	fs.points = append(fs.points, point{off: off, kind: kind})
	fs.cur = len(fs.points) - 1
}

// unreachable notes that the code after an unconditional transfer is
// unreachable, up to the next join point.
func (fs *funcState) unreachable() {
	fs.reachable = false
	fs.cur = -1
}

// writeback adds a write-back of the cached counter at off, if reachable.
func (fs *funcState) writeback(off int) {
	if fs.reachable {
		fs.points = append(fs.points, point{off: off, kind: ptWriteback})
	}
}

// clause applies else, catch or catch_all (at start, after it the cursor):
// the code after it is reachable if the start of its if or try is, and it
// starts a segment.
func (fs *funcState) clause(op byte, start, after int) {
	r := &fs.r
	f := &fs.frames[len(fs.frames)-1]
	switch {
	case op == opElse && f.kind != frIf:
		r.pos = start
		r.fail("else without if")
		return
	case op != opElse && f.kind != frTry:
		r.pos = start
		r.fail("catch without try")
		return
	}
	fs.reachable = f.startReachable
	fs.cur = -1
	if fs.reachable {
		fs.newSegment(after, ptCharge)
	}
}

// end applies end or delegate (at start, after it the cursor): it closes
// the innermost frame. The end of the function's own frame ends the
// function (with a write-back if reachable); the end of an if or a try, or
// of a block or try_table that is branched to, is a join point, whose code
// is reachable if the frame's start is, and starts a segment.
func (fs *funcState) end(op byte, start, after int) {
	r := &fs.r
	f := fs.frames[len(fs.frames)-1]
	fs.frames = fs.frames[:len(fs.frames)-1]
	if f.kind == frFunc {
		if op == opDelegate {
			r.pos = start
			r.fail("delegate outside try")
			return
		}
		fs.writeback(start)
		if !r.eof() {
			r.fail("trailing bytes after function end")
		}
		fs.ended = true
		return
	}
	if op == opDelegate && f.kind != frTry {
		r.pos = start
		r.fail("delegate without try")
		return
	}
	if f.headPt >= 0 {
		fs.points = append(fs.points, point{off: after, kind: ptLoopEnd, idx: uint32(f.headPt)})
	}
	switch {
	case f.kind == frLoop:
		// Not a join point: only the fall-through reaches here.
	case f.kind == frBlock && !f.branched, f.kind == frTryTable && !f.branched:
		// Not a join point either.
	default:
		fs.reachable = f.startReachable
		fs.cur = -1
		if fs.reachable {
			fs.newSegment(after, ptCharge)
		}
	}
}
