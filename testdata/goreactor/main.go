// goreactor is a Go reactor — a plugin built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
//
// exporting functions with //go:wasmexport. The host instantiates it once,
// calls _initialize (which starts the Go runtime and runs init), then calls
// its exports as often as it likes: Go state (the counter, the heap)
// survives from one call to the next.
//
// Exports:
//   - next() int64: the call counter, incremented (state across calls);
//   - spin(n int64) int64: n steps of an LCG, CPU-bound (preemption);
//   - async_add(a, b int64) int64: calls the host's test.add_async, which
//     suspends the guest while the host computes a+b;
//   - alloc(n int32) int32, free(p int32) and greet(p, n int32) int64: the
//     (ptr, len) convention of wasmtask's CallBytes — greet answers
//     "hello, <input>" as (ptr << 32) | len.
package main

import "unsafe"

// counter is next's state.
var counter int64

// live keeps the buffers handed to the host reachable until freed: the Go
// collector does not know the host holds their addresses.
var live = map[int32][]byte{}

//go:wasmimport test add_async
func addAsync(a, b int64) int64

func main() {}

//go:wasmexport next
func next() int64 {
	counter++
	return counter
}

//go:wasmexport spin
func spin(n int64) int64 {
	acc := int64(1)
	for ; n != 0; n-- {
		acc = acc*6364136223846793005 + n
	}
	return acc
}

//go:wasmexport async_add
func asyncAdd(a, b int64) int64 { return addAsync(a, b) }

//go:wasmexport alloc
func alloc(n int32) int32 {
	b := make([]byte, n+1) // +1: a zero-length input still gets a distinct address
	p := int32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	live[p] = b
	return p
}

//go:wasmexport free
func free(p int32) { delete(live, p) }

//go:wasmexport greet
func greet(p, n int32) int64 {
	in := live[p]
	if int(n) > len(in) {
		return 0 // not an allocation of ours: an empty answer
	}
	out := append([]byte("hello, "), in[:n]...)
	delete(live, p)
	q := alloc(int32(len(out)))
	copy(live[q], out)
	return int64(q)<<32 | int64(len(out))
}
