package instrument

// emitter writes the injected code of one function. The indices it uses
// are encoded once per function.
type emitter struct {
	// useLocal: the function caches the counter in a local (else, in a
	// function that catches, the code works on the fuel global).
	useLocal   bool
	checkEvery bool // knobs.checkEvery: check at every charge
	checks     int  // checks emitted

	// The encoded indices.
	counter []byte // the i64 local caching the counter
	scratch []byte // the i32 local holding a dynamic bulk size
	fuel    []byte // the fuel global
	slow    []byte // the slow-path helper
	check   []byte // the check import
	buf     [5][maxLEB32]byte
}

// emit appends the rewritten body, size-prefixed, to p: the local
// declarations and the injected locals, then the original code with the
// injected code at the points.
func (fs *funcState) emit(p []byte) ([]byte, error) {
	e := &fs.em
	if err := fs.setupEmitter(); err != nil {
		return nil, err
	}
	w, body := fs.w, fs.r.b
	// A function without calls needs no check at its entry: it runs
	// forward code and loops (whose headers check) and returns to a caller
	// that checks after the call. Only a function that calls can recurse.
	entryCheck := fs.hasCall || w.knobs.allEntries
	b := fs.declarations(fs.body[:0])
	pos := fs.declEnd
	for i := range fs.points {
		pt := &fs.points[i]
		b = append(b, body[pos:pt.off]...)
		pos = pt.off
		switch pt.kind {
		case ptFuncIdx:
			b = appendU32(b, pt.idx)
			pos = pt.end
		case ptEntry:
			b = e.charge(b, true, pt.cost, entryCheck)
		case ptReload:
			b = e.charge(b, true, pt.cost, w.knobs.reloadCheck)
		case ptLoop:
			b = e.charge(b, false, pt.cost, true)
		case ptLoopCold:
			if !e.useLocal { // not wrapped: see cold.go
				b = e.charge(b, false, pt.cost, true)
				break
			}
			b = e.coldCheck(e.chargeTee(b, false, pt.cost))
		case ptLoopWrap:
			if e.useLocal {
				b = wrapOpen(b, body[pt.off+1:pt.end])
			}
		case ptLoopEnd:
			if e.useLocal {
				b = e.wrapClose(b, fs.points[pt.idx].cost)
			}
		case ptLabel:
			if e.useLocal {
				b = appendU32(b, pt.idx)
				pos = pt.end
			}
		case ptCharge:
			if pt.cost != 0 || e.checkEvery {
				b = e.charge(b, false, pt.cost, e.checkEvery)
			}
		case ptWriteback:
			b = e.writeback(b)
		case ptBulk:
			b = e.bulk(b, pt.cost)
		}
	}
	b = append(b, body[pos:]...)
	fs.body = b
	w.report.Checks += e.checks
	p = appendU32(p, uint32(len(b)))
	return append(p, b...), nil
}

// setupEmitter decides the injected locals (the counter unless the
// function catches, the scratch if a bulk size is dynamic) and encodes the
// indices the injected code uses.
func (fs *funcState) setupEmitter() error {
	e := &fs.em
	e.useLocal = !fs.hasTry
	added := fs.injectedLocals()
	if fs.nLocals+uint64(added) > maxU32 || uint64(fs.nDecl)+uint64(added) > maxU32 {
		return &LimitError{What: "Locals", Value: fs.nLocals, Max: maxU32 - uint64(added), Offset: -1, Msg: "no room for the injected locals"}
	}
	scratch := uint32(fs.nLocals) // after the counter, if any
	if e.useLocal {
		scratch++
	}
	w := fs.w
	e.counter = appendU32(e.buf[0][:0], uint32(fs.nLocals))
	e.scratch = appendU32(e.buf[1][:0], scratch)
	e.fuel = appendU32(e.buf[2][:0], w.fuelGlobal)
	e.slow = appendU32(e.buf[3][:0], w.slowFunc)
	e.check = appendU32(e.buf[4][:0], w.checkFunc)
	e.checkEvery = w.knobs.checkEvery
	e.checks = 0
	return nil
}

// injectedLocals returns the number of locals the function gets.
func (fs *funcState) injectedLocals() uint32 {
	added := uint32(0)
	if !fs.hasTry {
		added++
	}
	if fs.hasBulk {
		added++
	}
	return added
}

// declarations appends the local declarations: the original ones, then
// one i64 (the counter) and one i32 (the scratch) if the function gets
// them.
func (fs *funcState) declarations(b []byte) []byte {
	b = appendU32(b, fs.nDecl+fs.injectedLocals())
	b = append(b, fs.r.b[fs.declsStart:fs.declEnd]...)
	if fs.em.useLocal {
		b = append(b, 1, valI64)
	}
	if fs.hasBulk {
		b = append(b, 1, valI32)
	}
	return b
}

// appendOpIdx appends an instruction with one encoded index immediate.
func appendOpIdx(b []byte, op byte, idx []byte) []byte {
	return append(append(b, op), idx...)
}

func appendI64Const(b []byte, v int64) []byte {
	return appendS64(append(b, opI64Const), v)
}

// charge appends the charge of a segment's cost, and the check if check.
// In a function that caches the counter, reload says whether to start from
// the global (at the function's entry and after a call, where the global
// holds the value) rather than from the local.
func (e *emitter) charge(b []byte, reload bool, cost int64, check bool) []byte {
	if !e.useLocal {
		b = e.chargeGlobal(b, cost)
		if check {
			b = e.checkGlobal(b)
		}
		return b
	}
	if !check {
		return appendOpIdx(e.chargeValue(b, reload, cost), opLocalSet, e.counter)
	}
	return e.checkLocal(e.chargeTee(b, reload, cost))
}

// chargeValue appends the counter, from the global if reload, else from
// the local, less cost.
func (e *emitter) chargeValue(b []byte, reload bool, cost int64) []byte {
	if reload {
		b = appendOpIdx(b, opGlobalGet, e.fuel)
	} else {
		b = appendOpIdx(b, opLocalGet, e.counter)
	}
	if cost != 0 {
		b = appendI64Const(b, cost)
		b = append(b, opI64Sub)
	}
	return b
}

// chargeTee appends the charge into the local, leaving the new counter on
// the stack for a check.
func (e *emitter) chargeTee(b []byte, reload bool, cost int64) []byte {
	return appendOpIdx(e.chargeValue(b, reload, cost), opLocalTee, e.counter)
}

// chargeGlobal appends the subtraction of c from the fuel global.
func (e *emitter) chargeGlobal(b []byte, c int64) []byte {
	if c == 0 {
		return b
	}
	b = appendOpIdx(b, opGlobalGet, e.fuel)
	b = appendI64Const(b, c)
	b = append(b, opI64Sub)
	return appendOpIdx(b, opGlobalSet, e.fuel)
}

// checkLocal appends the check of a cached counter, which the stack holds
// (from local.tee): if negative, the slow-path helper stores it, calls the
// check and returns the new value.
func (e *emitter) checkLocal(b []byte) []byte {
	e.checks++
	b = append(b, opI64Const, 0, opI64LtS, opIf, blockTypeNil)
	b = appendOpIdx(b, opLocalGet, e.counter)
	b = appendOpIdx(b, opCall, e.slow)
	b = appendOpIdx(b, opLocalSet, e.counter)
	return append(b, opEnd)
}

// checkGlobal appends the check of the fuel global: if negative, call the
// check.
func (e *emitter) checkGlobal(b []byte) []byte {
	e.checks++
	b = appendOpIdx(b, opGlobalGet, e.fuel)
	b = append(b, opI64Const, 0, opI64LtS, opIf, blockTypeNil)
	b = appendOpIdx(b, opCall, e.check)
	return append(b, opEnd)
}

// writeback appends the store of the cached counter into the fuel global.
func (e *emitter) writeback(b []byte) []byte {
	if !e.useLocal {
		return b
	}
	b = appendOpIdx(b, opLocalGet, e.counter)
	return appendOpIdx(b, opGlobalSet, e.fuel)
}

// bulk appends the charge of a bulk operation of dynamic size, size*unit,
// and a check. The size is on top of the stack, and stays there.
func (e *emitter) bulk(b []byte, unit int64) []byte {
	b = appendOpIdx(b, opLocalTee, e.scratch)
	if e.useLocal {
		b = appendOpIdx(b, opLocalGet, e.counter)
	} else {
		b = appendOpIdx(b, opGlobalGet, e.fuel)
	}
	b = appendOpIdx(b, opLocalGet, e.scratch)
	b = append(b, opI64ExtendI32U)
	b = appendI64Const(b, unit)
	b = append(b, opI64Mul, opI64Sub)
	if e.useLocal {
		b = appendOpIdx(b, opLocalTee, e.counter)
		return e.checkLocal(b)
	}
	b = appendOpIdx(b, opGlobalSet, e.fuel)
	return e.checkGlobal(b)
}
