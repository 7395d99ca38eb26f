package instrument

// Loop checks
//
// A loop header's check is a compare and a branch, but the call it guards
// — taken once in thousands of iterations — costs more than that when it
// sits in the loop's body: wazero's register allocator keeps the values
// that live across a call in stack slots for the whole loop, so a tight
// loop reloads and stores its variables on every iteration
// (RATIONALE.md: "Why does a loop's check branch out of the loop?"). So
// a loop is wrapped, and its check branches out of it to a cold path
// after its end, which calls the slow-path helper and re-enters the loop:
//
//	block bt                 ;; $exit: the loop's results
//	  loop bt                ;; $again
//	    block                ;; $cold
//	      loop bt            ;; the loop itself
//	        local.get $c  i64.const K  i64.sub  local.tee $c
//	        i64.const 0  i64.lt_s  br_if $cold
//	        ...the body...
//	      end
//	      br $exit
//	    end
//	    local.get $c  call $slow  i64.const K  i64.add  local.set $c
//	    br $again
//	  end
//	end
//
// The cold path adds the header's charge K back before re-entering, where
// the header takes it again: the counter, and what the check saw, are the
// same as with the call inline, so fuel stays exact. A check that leaves
// the counter negative is called again at once, before the body runs (the
// package documentation's contract). The three frames around the loop
// shift every label in its body that targets a frame outside it: those
// are re-encoded (ptLabel).
//
// Every loop is wrapped, a loop whose body calls as well: wrapping only
// the leaves of a loop nest (no call, no inner loop) was measured slower,
// and a wrapper costs one more branch per loop exit. Not wrapped: loops
// with parameters (their values would have to travel out to the cold path
// and back), and the loops of functions that do not cache the counter in
// a local: a function with a try works on the global, and its try_table,
// rethrow and delegate labels are left as they are.

// wrapFrames is the number of frames a wrapped loop adds around itself.
const wrapFrames = 3

// wrapOpen appends the wrapper's opening: block bt, loop bt, block. bt is
// the loop's block type (encoded), and the loop itself follows.
func wrapOpen(b, bt []byte) []byte {
	b = append(append(b, opBlock), bt...)
	b = append(append(b, opLoop), bt...)
	return append(b, opBlock, blockTypeNil)
}

// coldCheck appends a wrapped loop's check of the counter on the stack
// (from local.tee): branch to the cold path if negative.
func (e *emitter) coldCheck(b []byte) []byte {
	e.checks++
	return append(b, opI64Const, 0, opI64LtS, opBrIf, 1)
}

// wrapClose appends the rest of the wrapper after the loop's end: the exit
// with the loop's results, then the cold path for a header charge of cost.
func (e *emitter) wrapClose(b []byte, cost int64) []byte {
	b = append(b, opBr, 2, opEnd)
	b = appendOpIdx(b, opLocalGet, e.counter)
	b = appendOpIdx(b, opCall, e.slow)
	if cost != 0 {
		b = appendI64Const(b, cost)
		b = append(b, opI64Add)
	}
	b = appendOpIdx(b, opLocalSet, e.counter)
	return append(b, opBr, 0, opEnd, opEnd)
}
