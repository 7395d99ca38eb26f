// Package wasmsched holds the guests built into the wasmsched command: the
// Wasm modules of testdata/, embedded so that `wasmsched compare` and
// `wasmsched serve` work with no file at hand. The executor itself is in
// package scheduler, Wasm guests as tasks in package wasmtask, metrics in
// package metrics. (The embedding lives at the module root because
// go:embed cannot reach a parent directory from cmd/wasmsched.)
package wasmsched

import (
	"embed"
	"fmt"
	"sort"
)

//go:embed testdata/spin.wasm testdata/cguest.wasm testdata/goguest.wasm
var guestFS embed.FS

// EmbeddedGuest describes one built-in guest.
type EmbeddedGuest struct {
	Name string // "spin", "cguest", "goguest"
	File string // path inside the module, e.g. "testdata/spin.wasm"
	// About says what it exports and how it behaves.
	About string
}

var embedded = []EmbeddedGuest{
	{"spin", "testdata/spin.wasm", "exports spin(i64 n) -> i64 (n iterations of an LCG step: exactly 14n+7 fuel, CPU-bound, no memory) and fib(i32) -> i32 (naive recursion)"},
	{"cguest", "testdata/cguest.wasm", "a freestanding C guest: exports sieve(i32), hash(i32), memops(i32) and a WASI _start that prints their results"},
	{"goguest", "testdata/goguest.wasm", "a Go program for GOOS=wasip1 (WASI command): hashing, sorting, maps, big integers, compression; argv[1] scales the work"},
}

// EmbeddedGuests lists the built-in guests, sorted by name.
func EmbeddedGuests() []EmbeddedGuest {
	out := append([]EmbeddedGuest(nil), embedded...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Guest returns the bytes of the built-in guest name (see EmbeddedGuests).
func Guest(name string) ([]byte, error) {
	for _, g := range embedded {
		if g.Name == name {
			return guestFS.ReadFile(g.File)
		}
	}
	return nil, fmt.Errorf("wasmsched: no embedded guest %q (have spin, cguest, goguest)", name)
}
