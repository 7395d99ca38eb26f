package wasmtask

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask/instrument"
)

// recurseWasm is
//
//	(module
//	  (func $depth (export "depth") (param $n i32) (result i32)
//	    (if (result i32) (i32.eqz (local.get $n))
//	      (then (i32.const 0))
//	      (else (i32.add (i32.const 1) (call $depth (i32.sub (local.get $n) (i32.const 1))))))))
//
// depth(n) recurses n calls deep and returns n.
var recurseWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60,
	0x01, 0x7f, 0x01, 0x7f, 0x03, 0x02, 0x01, 0x00, 0x07, 0x09, 0x01, 0x05,
	0x64, 0x65, 0x70, 0x74, 0x68, 0x00, 0x00, 0x0a, 0x17, 0x01, 0x15, 0x00,
	0x20, 0x00, 0x45, 0x04, 0x7f, 0x41, 0x00, 0x05, 0x41, 0x01, 0x20, 0x00,
	0x41, 0x01, 0x6b, 0x10, 0x00, 0x6a, 0x0b, 0x0b,
}

// callStackLen is the length of fn's native stack, or -1 if fn is not a
// call engine shrinkCallStack knows.
func callStackLen(fn api.Function) int {
	l := layoutOf(reflect.TypeOf(fn))
	if l == nil {
		return -1
	}
	return len(*(*[]byte)(unsafe.Add(reflect.ValueOf(fn).UnsafePointer(), l.stack)))
}

// TestShrinkCallStack: wazero's compiler's call engines are recognised and
// get the small first stack, and still compute the right result; the
// interpreter's are left alone.
func TestShrinkCallStack(t *testing.T) {
	for _, interp := range []bool{false, true} {
		e := newEnv(t, "spin.wasm", EngineConfig{Interpreter: interp}, scheduler.WithWorkers(1))
		ctx := context.Background()
		mod, err := e.eng.rt.InstantiateModule(ctx, e.mod.compiled, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		fn := mod.ExportedFunction("fib")
		before := callStackLen(fn)
		shrinkCallStack(fn)
		after := callStackLen(fn)
		switch {
		case interp && (before != -1 || after != -1):
			t.Errorf("interpreter: stack %d -> %d, want a call engine left alone", before, after)
		case !interp && (before != 10240 || after != callStackInitial):
			// 10240 is wazero v1.12's initial stack: a new wazero may
			// change it, or the fields (then -1: nothing is shrunk).
			t.Errorf("compiler: stack %d -> %d, want 10240 -> %d", before, after, callStackInitial)
		}
		// Fuel enough for fib(20) without a check (which needs a guest).
		if g, ok := mod.ExportedGlobal(instrument.DefaultFuelExport).(api.MutableGlobal); ok {
			g.Set(1 << 40)
		}
		v, err := fn.Call(ctx, 20)
		if err != nil || v[0] != 6765 {
			t.Errorf("interpreter %v: fib(20) = %v, %v", interp, v, err)
		}
		mod.Close(ctx)
	}
}

// TestGuestCallStackGrows: a guest recursing far deeper than the small
// first stack holds returns the right result (the stack grows as wazero
// grows it), as deep as it could with wazero's own first stack, and one
// recursing without bound still traps with wazero's stack overflow.
func TestGuestCallStackGrows(t *testing.T) {
	e := newEnv(t, "", EngineConfig{}, scheduler.WithWorkers(2))
	m, err := e.eng.Compile(context.Background(), recurseWasm)
	if err != nil {
		t.Fatal(err)
	}
	// 1,514,345 is the deepest depth(n) that returned with wazero v1.12's
	// 10 KiB first stack (its ceiling refuses to grow a stack over
	// 50,000,000 bytes).
	for _, n := range []uint64{100_000, 1_514_345} {
		r, err := waitGuest(t, Spawn(context.Background(), e.rt, m, Options{Export: "depth", Args: []uint64{n}, Policy: ImmediateYield()}))
		if err != nil || r.Values[0] != n {
			t.Fatalf("depth(%d) = %v, %v", n, r.Values, err)
		}
	}
	_, err = waitGuest(t, Spawn(context.Background(), e.rt, m, Options{Export: "depth", Args: []uint64{1<<32 - 1}}))
	if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "stack overflow") {
		t.Fatalf("unbounded recursion: %v, want a stack overflow trap", err)
	}
}

// trapStartWasm is (module (func (export "_start") unreachable)).
var trapStartWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60,
	0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x07, 0x0a, 0x01, 0x06, 0x5f, 0x73,
	0x74, 0x61, 0x72, 0x74, 0x00, 0x00, 0x0a, 0x05, 0x01, 0x03, 0x00, 0x00,
	0x0b,
}

// TestRunStartAsWazero: runStart ends a command's _start as wazero's
// InstantiateModule does with its default start functions: the same error
// (or none) and the module closed or not, for exit code 0, another exit
// code, and a trap.
func TestRunStartAsWazero(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	wasienv := readGuest(t, "wasienv.wasm")
	for _, tc := range []struct {
		name string
		wasm []byte
		mc   wazero.ModuleConfig
	}{
		{"exit 0", wasienv, wazero.NewModuleConfig().WithFSConfig(wazero.NewFSConfig().WithDirMount(t.TempDir(), "/"))},
		{"exit 28", wasienv, wazero.NewModuleConfig().WithEnv("A", "1").WithEnv("B", "2")},
		{"trap", trapStartWasm, wazero.NewModuleConfig()},
	} {
		c, err := r.CompileModule(ctx, tc.wasm)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := r.InstantiateModule(ctx, c, tc.mc.WithName(""))
		got, gotErr := r.InstantiateModule(ctx, c, tc.mc.WithName("").WithStartFunctions())
		if gotErr == nil {
			gotErr = runStart(ctx, got)
		}
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || reflect.TypeOf(gotErr) != reflect.TypeOf(wantErr) {
			t.Errorf("%s: runStart: %v (%T), wazero: %v (%T)", tc.name, gotErr, gotErr, wantErr, wantErr)
		}
		t.Logf("%s: %v, closed %v", tc.name, gotErr, got.IsClosed())
		if got.IsClosed() != want.IsClosed() {
			t.Errorf("%s: module closed %v, wazero's %v", tc.name, got.IsClosed(), want.IsClosed())
		}
		got.Close(ctx)
		want.Close(ctx)
		c.Close(ctx)
	}
}
