package worker

// divisor tests whether a tick is a multiple of a fixed interval with a
// multiplication instead of a division: the worker loop asks twice per
// tick (maintenance, the global queue interval), and a 32-bit division
// costs tens of cycles where the multiply costs three.
//
// The test is Lemire, Kaser and Kurz's ("Faster remainder by direct
// computation", 2019): with m = ⌈2⁶⁴/n⌉, a 32-bit a is a multiple of n iff
// a·m mod 2⁶⁴ ≤ m − 1. For n = 1, m wraps to 0 and every a passes.
type divisor struct {
	n uint32
	m uint64
}

func newDivisor(n uint32) divisor {
	if n == 0 {
		panic("worker: interval 0")
	}
	return divisor{n: n, m: ^uint64(0)/uint64(n) + 1}
}

// divides reports whether a is a multiple of d.n.
func (d divisor) divides(a uint32) bool { return uint64(a)*d.m <= d.m-1 }
