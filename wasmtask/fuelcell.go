package wasmtask

// Direct access to a guest's fuel global.
//
// The check reads the guest's fuel global at every call and writes it
// before returning; in epoch mode that is every PollInterval fuel. Through
// wazero's api.MutableGlobal each of those is an interface call that
// resolves the module engine by a type assertion (getitab) and slices the
// module's context buffer, a sizeable part of what a poll costs beyond
// wazero's host call itself (BenchmarkEpochPoll measures a poll). The
// value lives at a fixed address for the instance's lifetime, so
// cellOf finds that address once, at the guest's first use of the
// global, and Get and Set are then a load and a store.
//
// Where the value lives depends on the engine:
//
//   - wazero's compiler (wazevo) keeps a defined global in the module's
//     context buffer (moduleEngine.opaque), which the compiled code reads
//     and writes: the global instance's Me is that module engine. The
//     buffer is allocated at instantiation and never moved.
//   - the interpreter keeps it in the global instance's Val field (its
//     module engine does not own globals: Me is nil).
//
// The fields are found by name and type through reflection. The offset in
// the context buffer is not computed from wazero's layout: it is found by
// writing two sentinels through the api and looking for the one 8-byte
// word that follows both. Anything unexpected (another wazero, another
// engine, two candidate words) leaves the cell nil, and the api is used as
// before; TestFuelCell fails then, so that a wazero upgrade that changes
// these internals is noticed.
//
// Only the guest's own goroutine touches the global (the check and the
// other host calls run on it, and the guest is not running when its run
// starts or ends), so plain loads and stores are enough, as for the
// compiled code.

import (
	"reflect"
	"sync/atomic"
	"unsafe"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmsched/wasmsched/wasmtask/instrument"
)

// fuelGlobal is a guest's fuel global: the api's handle, and the address
// of its value when cellOf found it.
type fuelGlobal struct {
	gl   api.MutableGlobal
	cell *uint64
}

// newFuelGlobal returns the fuel global of gl (nil gl: none), an
// instance of m.
func newFuelGlobal(gl api.MutableGlobal, m *Module) fuelGlobal {
	return newGlobalCell(gl, &m.fuelOffset)
}

// newGlobalCell is newFuelGlobal for any of a guest's injected i64
// globals, offset caching where its value lies (see cellOf).
func newGlobalCell(gl api.MutableGlobal, offset *atomic.Int64) fuelGlobal {
	if gl == nil {
		return fuelGlobal{}
	}
	cell, _ := cellOf(gl, offset)
	return fuelGlobal{gl: gl, cell: cell}
}

// findFuel sets g.fuel to mod's fuel global if it is not set yet, and
// reports whether the guest has one.
func (g *guest) findFuel(mod api.Module) bool {
	return g.fuel.ok() || g.bindFuel(mod)
}

// bindFuel is findFuel's first time for an instance.
func (g *guest) bindFuel(mod api.Module) bool {
	gl, _ := mod.ExportedGlobal(instrument.DefaultFuelExport).(api.MutableGlobal)
	g.fuel = newFuelGlobal(gl, g.m)
	if g.fuel.ok() {
		g.findSkip(mod)
	}
	return g.fuel.ok()
}

// ok reports whether the guest has a fuel global.
func (f *fuelGlobal) ok() bool { return f.gl != nil }

// Get returns the global's value.
func (f *fuelGlobal) Get() uint64 {
	if f.cell != nil {
		return *f.cell
	}
	return f.gl.Get()
}

// Set sets the global's value.
func (f *fuelGlobal) Set(v uint64) {
	if f.cell != nil {
		*f.cell = v
		return
	}
	f.gl.Set(v)
}

const wazeroWasmPkgPath = "github.com/tetratelabs/wazero/internal/wasm"

// cellOf returns the address of the value of gl, an i64 global, or nil
// if gl is not one of the wazero globals this file knows; compiled says
// the value is in a compiled module's context buffer, which only the
// guest's machine code reads (not the interpreter's Go code). offset
// caches, for the compiled module, where the value lies in the context
// buffer (plus one; 0: unknown), so that only a module's first instance
// looks for it: the buffer grows with the module's imports and globals.
func cellOf(gl api.MutableGlobal, offset *atomic.Int64) (cell *uint64, compiled bool) {
	if gl.Type() != api.ValueTypeI64 {
		return nil, false
	}
	// gl: wasm.mutableGlobal{g *GlobalInstance}.
	v := reflect.ValueOf(gl)
	if v.Kind() != reflect.Struct || v.Type().Name() != "mutableGlobal" || v.Type().PkgPath() != wazeroWasmPkgPath {
		return nil, false
	}
	gp := v.FieldByName("g")
	if gp.Kind() != reflect.Pointer || gp.IsNil() || gp.Type().Elem().Name() != "GlobalInstance" {
		return nil, false
	}
	gi := gp.Elem()
	val, me := gi.FieldByName("Val"), gi.FieldByName("Me")
	if val.Kind() != reflect.Uint64 || me.Kind() != reflect.Interface {
		return nil, false
	}
	if me.IsNil() {
		// The interpreter: the value is the instance's Val.
		return verifyCell(gl, (*uint64)(unsafe.Pointer(val.UnsafeAddr()))), false
	}
	// wazevo: the value is in the module engine's context buffer.
	eng := me.Elem()
	if eng.Kind() != reflect.Pointer || eng.IsNil() || eng.Type().Elem().Name() != "moduleEngine" || eng.Type().Elem().PkgPath() != wazevoPkgPath {
		return nil, false
	}
	opaque := eng.Elem().FieldByName("opaque")
	if opaque.Kind() != reflect.Slice || opaque.Type().Elem().Kind() != reflect.Uint8 || opaque.Len() < 8 {
		return nil, false
	}
	buf := unsafe.Slice((*byte)(unsafe.Pointer(opaque.Pointer())), opaque.Len())
	if off := offset.Load() - 1; off >= 0 && off+8 <= int64(len(buf)) {
		if cell := verifyCell(gl, (*uint64)(unsafe.Pointer(&buf[off]))); cell != nil {
			return cell, true
		}
	}
	cell = verifyCell(gl, findWord(gl, buf))
	if cell != nil {
		offset.Store(int64(uintptr(unsafe.Pointer(cell))-uintptr(unsafe.Pointer(&buf[0]))) + 1)
	}
	return cell, cell != nil
}

// Two sentinels no counter holds: the fuel global is armed with at most
// MaxInt64/2.
const (
	cellSentinelA = 0xa5c3_96e1_0f4b_7d28
	cellSentinelB = 0xd2e1_4b87_3c59_a06f
)

// findWord returns the address of the one 8-byte aligned word of buf that
// holds the value of gl, or nil if there is not exactly one.
func findWord(gl api.MutableGlobal, buf []byte) *uint64 {
	old := gl.Get()
	defer gl.Set(old)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	start := (8 - base%8) % 8
	words := func(want uint64, in []int) []int {
		var out []int
		for off := int(start); off+8 <= len(buf); off += 8 {
			if *(*uint64)(unsafe.Pointer(&buf[off])) == want {
				out = append(out, off)
			}
		}
		if in == nil {
			return out
		}
		var both []int
		for _, o := range out {
			for _, p := range in {
				if o == p {
					both = append(both, o)
				}
			}
		}
		return both
	}
	gl.Set(cellSentinelA)
	a := words(cellSentinelA, nil)
	gl.Set(cellSentinelB)
	ab := words(cellSentinelB, a)
	if len(ab) != 1 {
		return nil
	}
	return (*uint64)(unsafe.Pointer(&buf[ab[0]]))
}

// verifyCell returns cell if reading and writing it agrees with the api
// both ways, else nil.
func verifyCell(gl api.MutableGlobal, cell *uint64) *uint64 {
	if cell == nil || uintptr(unsafe.Pointer(cell))%8 != 0 {
		return nil
	}
	old := gl.Get()
	defer gl.Set(old)
	gl.Set(cellSentinelA)
	if *cell != cellSentinelA {
		return nil
	}
	*cell = cellSentinelB
	if gl.Get() != cellSentinelB {
		return nil
	}
	return cell
}
