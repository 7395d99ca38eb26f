package instrument

// The rewrite of the code section. Each function body goes through these
// steps (see function), in four files:
//
//   - code.go (this file): the code section, the body of the slow-path
//     helper, and for each function its local declarations (locals);
//   - charge.go: the operators in turn (scan): each is decoded, its cost
//     goes to the current straight-line segment, and the control stack
//     says where segments start, where the cached counter must be written
//     back and which code is unreachable (control); the result is the list
//     of instrumentation points;
//   - decode.go: one operator, its immediates read and checked (decode);
//   - emit.go: the rewritten body, with the injected code at the points
//     (emit).
//
// funcState carries one function through the steps.

// funcState is the rewrite of one function in progress. The rewriter keeps
// one and reuses its slices from function to function.
type funcState struct {
	w     *rewriter
	m     *module
	costs *CostTable
	r     reader // over the body
	fidx  uint32 // index of the function in the code section

	// The local declarations: body[declsStart:declEnd] holds nDecl entries
	// declaring nLocals locals with the parameters.
	declsStart, declEnd int
	nDecl               uint32
	nLocals             uint64

	ins    instr   // what decode noted about the operator being scanned
	points []point // in increasing offset order
	frames []frame // the control stack, the function's own frame first
	// labelFixes are the ptLabel points of the operator being decoded,
	// appended to points by control.
	labelFixes []point

	reachable bool   // the code at the cursor can run
	cur       int    // index in points of the current segment's start, or -1 in unreachable code
	prevConst bool   // the previous operator is an i32.const ...
	constVal  uint32 // ... of this value
	ended     bool   // the function's final end has been accounted for

	hasTry  bool // the function has a try or try_table: it works on the fuel global, not a local
	hasBulk bool // a bulk operation has a dynamic size: the function needs the i32 scratch local
	hasCall bool // the function calls: its entry checks
	nLoops  int  // loop headers in reachable code

	em   emitter // writes the injected code (set up by emit)
	body []byte  // the rewritten body (scratch)
}

// code rewrites the code section and appends the body of the slow-path
// helper that stores the cached counter, calls the check and reloads it. A
// module without defined functions keeps its code section (if any) as it
// is.
func (w *rewriter) code(r *reader, p []byte, missing bool) ([]byte, error) {
	if !w.hasHelper() {
		r.u32()
		if r.err == nil && !r.eof() {
			r.fail("function and code section have inconsistent lengths")
		}
		return copyUnparsed(r, p), nil
	}
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
	return w.helper(p), nil
}

// helper appends the body of the slow-path helper:
//
//	(func (param i64) (result i64)
//	  local.get 0  global.set $fuel  call $check  global.get $fuel)
//
// With Config.PollSkipping it first refills the counter itself while the
// host allows (see "Skipped polls" in the package documentation):
//
//	(func (param $c i64) (result i64) (local $n i64)
//	  block
//	    global.get $skip  i64.eqz  br_if 0
//	    global.get $attention  i64.const 0  i64.ne  br_if 0
//	    local.get $c  global.get $refill  i64.add  local.tee $n
//	    i64.const 0  i64.lt_s  br_if 0
//	    global.get $skip  i64.const 1  i64.sub  global.set $skip
//	    local.get $n  return
//	  end
//	  ...the body above)
func (w *rewriter) helper(p []byte) []byte {
	h := []byte{0 /* no locals */}
	if w.cfg.PollSkipping {
		g := func(h []byte, op byte, idx uint32) []byte { return appendU32(append(h, op), idx) }
		h = []byte{1, 1, valI64, opBlock, blockTypeNil}
		h = g(h, opGlobalGet, w.skipGlobal)
		h = append(h, opI64Eqz, opBrIf, 0)
		h = g(h, opGlobalGet, w.attnGlobal)
		h = append(h, opI64Const, 0, opI64Ne, opBrIf, 0, opLocalGet, 0)
		h = g(h, opGlobalGet, w.refillGlobal)
		h = append(h, opI64Add, opLocalTee, 1, opI64Const, 0, opI64LtS, opBrIf, 0)
		h = g(h, opGlobalGet, w.skipGlobal)
		h = append(h, opI64Const, 1, opI64Sub)
		h = g(h, opGlobalSet, w.skipGlobal)
		h = append(h, opLocalGet, 1, opReturn, opEnd)
	}
	h = append(h, opLocalGet, 0, opGlobalSet)
	h = appendU32(h, w.fuelGlobal)
	h = append(h, opCall)
	h = appendU32(h, w.checkFunc)
	h = append(h, opGlobalGet)
	h = appendU32(h, w.fuelGlobal)
	h = append(h, opEnd)
	p = appendU32(p, uint32(len(h)))
	return append(p, h...)
}

// function rewrites one body: its local declarations, then its operators
// scanned for the instrumentation points, then the rewritten body
// (size-prefixed) appended to p.
func (w *rewriter) function(p []byte, body []byte, base int, fidx uint32) ([]byte, error) {
	fs := &w.fn
	fs.reset(w, body, base, fidx)
	if !fs.locals() {
		return nil, fs.err()
	}
	fs.begin()
	if !fs.scan() {
		return nil, fs.err()
	}
	w.report.Functions++
	w.report.Loops += fs.nLoops
	return fs.emit(p)
}

// reset readies fs for function fidx, whose body starts at offset base of
// the module.
func (fs *funcState) reset(w *rewriter, body []byte, base int, fidx uint32) {
	fs.w, fs.m, fs.costs = w, w.m, w.costs
	fs.r = reader{b: body, base: base, section: "code"}
	fs.fidx = fidx
}

// err returns the error that ended the function's rewrite, a decoding error
// naming the function.
func (fs *funcState) err() error {
	if de, ok := fs.r.err.(*DecodeError); ok {
		de.Func = int(fs.fidx)
	}
	return fs.r.err
}

// locals decodes the local declarations, checks them against the limits
// and notes them in the report. It reports whether they are fine.
func (fs *funcState) locals() bool {
	r, m, rep := &fs.r, fs.m, &fs.w.report
	nParams := uint64(0)
	if t := m.funcTypes[fs.fidx]; int(t) < len(m.typeParams) {
		nParams = uint64(m.typeParams[t])
	}
	fs.nDecl = r.count("local declaration")
	fs.declsStart = r.pos
	declared := uint64(0)
	for i := uint32(0); i < fs.nDecl && r.err == nil; i++ {
		declared += uint64(r.u32()) // at most 2^32 * 2^32: no overflow
		m.valType(r)
	}
	fs.nLocals = nParams + declared
	if r.err == nil && fs.nLocals > uint64(m.lim.Locals) {
		r.pos = fs.declsStart
		r.limit("Locals", fs.nLocals, uint64(m.lim.Locals))
	}
	if r.err == nil {
		rep.TotalLocals += declared
		if rep.TotalLocals > uint64(m.lim.TotalLocals) {
			r.pos = fs.declsStart
			r.limit("TotalLocals", rep.TotalLocals, uint64(m.lim.TotalLocals))
		}
	}
	if r.err != nil {
		return false
	}
	rep.MaxLocals = max(rep.MaxLocals, uint32(fs.nLocals))
	fs.declEnd = r.pos
	return true
}
