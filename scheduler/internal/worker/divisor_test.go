package worker

import (
	"math"
	"testing"
)

// TestDivisor checks the multiplication test against the division on
// every interval a worker can be configured or tuned to, over ticks that
// include the wrap of the 32-bit counter.
func TestDivisor(t *testing.T) {
	ticks := []uint32{0, 1, 2, 3, 60, 61, 62, 122, 127, 128, 1 << 16, 1<<31 - 1, 1 << 31, math.MaxUint32 - 1, math.MaxUint32}
	for k := uint32(0); k < 5000; k++ {
		ticks = append(ticks, k, k*7919, math.MaxUint32-k)
	}
	ns := []uint32{1, 2, 3, 4, 7, 31, 61, 64, 127, 1000, 65537, 1 << 30, math.MaxUint32}
	for n := uint32(1); n <= 300; n++ {
		ns = append(ns, n)
	}
	for _, n := range ns {
		d := newDivisor(n)
		for _, a := range ticks {
			if got, want := d.divides(a), a%n == 0; got != want {
				t.Fatalf("divisor %d: divides(%d) = %v, want %v", n, a, got, want)
			}
		}
	}
}
