package instrument

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// wat2wasm output of small modules, inlined so that the tests need no tool.
var (
	// (module)
	emptyModule = []byte("\x00asm\x01\x00\x00\x00")
	// (module (import "env" "f" (func $f (param i32)))
	//   (func $g (export "g") (param i32) (call $f (local.get 0)) (call $h))
	//   (func $h) (start $h)
	//   (@custom "keep" "\01\02\03"))  + a name section naming f, g, h
	importingModule = buildModule(
		sec(secType, 2, 0x60, 1, 0x7f, 0, 0x60, 0, 0),
		sec(secImport, 1, 3, 'e', 'n', 'v', 1, 'f', 0, 0),
		sec(secFunction, 2, 0, 1),
		sec(secExport, 1, 1, 'g', 0, 1),
		sec(secStart, 2),
		sec(secCode, 2,
			8, 0, opLocalGet, 0, opCall, 0, opCall, 2, opEnd,
			2, 0, opEnd),
		sec(secCustom, 4, 'k', 'e', 'e', 'p', 1, 2, 3),
		sec(secCustom, 4, 'n', 'a', 'm', 'e', 1, 10, 3, 0, 1, 'f', 1, 1, 'g', 2, 1, 'h'),
	)
)

func sec(id byte, payload ...byte) []byte {
	return append([]byte{id, byte(len(payload))}, payload...)
}

func buildModule(sections ...[]byte) []byte {
	m := append([]byte(nil), emptyModule...)
	for _, s := range sections {
		m = append(m, s...)
	}
	return m
}

func TestEmptyModuleGetsFuelGlobalAndCheck(t *testing.T) {
	ctx := context.Background()
	res, err := Instrument(emptyModule, Config{})
	if err != nil {
		t.Fatal(err)
	}
	m := unlimited()
	r := newMeteredRuntime(t, ctx, wazero.NewRuntimeConfig(), m)
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, res.Wasm)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := mod.ExportedGlobal(DefaultFuelExport).(api.MutableGlobal)
	if !ok || g.Type() != api.ValueTypeI64 || g.Get() != 0 {
		t.Fatalf("fuel global: %v %v", g, ok)
	}
	if res.Report.Functions != 0 || res.Report.Checks != 0 {
		t.Fatalf("report %+v", res.Report)
	}
}

func TestImportsStayFirstAndIndicesShift(t *testing.T) {
	ctx := context.Background()
	res, err := Instrument(importingModule, Config{ImportModule: "host", ImportName: "tick", FuelExport: "fuel"})
	if err != nil {
		t.Fatal(err)
	}
	// The custom section is copied byte for byte.
	if !bytes.Contains(res.Wasm, sec(secCustom, 4, 'k', 'e', 'e', 'p', 1, 2, 3)) {
		t.Fatal("custom section not preserved")
	}
	// Function names shift past the injected import (index 1).
	if !bytes.Contains(res.Wasm, []byte{1, 10, 3, 0, 1, 'f', 2, 1, 'g', 3, 1, 'h'}) {
		t.Fatal("name section not shifted")
	}
	var calls []int32
	checks := 0
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	_, err = r.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithFunc(func(_ context.Context, v int32) { calls = append(calls, v) }).Export("f").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.NewHostModuleBuilder("host").NewFunctionBuilder().
		WithFunc(func(_ context.Context, mod api.Module) {
			checks++
			mod.ExportedGlobal("fuel").(api.MutableGlobal).Set(1000)
		}).Export("tick").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, res.Wasm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mod.ExportedFunction("g").Call(ctx, 42); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0] != 42 {
		t.Fatalf("import calls %v", calls)
	}
	// start ran h (1 entry, no call: no check), then g: entry 1 + get + call
	// = 3 with a check (counter < 0 at g's entry), then h: 1.
	if g := int64(mod.ExportedGlobal("fuel").Get()); checks != 1 || g != 1000-1-1 {
		t.Fatalf("checks %d, fuel %d", checks, g)
	}
}

func TestErrors(t *testing.T) {
	spin := readTestdata(t, "spin.wasm")
	// Every truncation of a valid module inside a section is rejected with
	// a DecodeError (one that ends at a section boundary may be valid).
	ok := 0
	for n := 0; n < len(spin); n++ {
		_, err := Instrument(spin[:n], Config{})
		var de *DecodeError
		if err == nil {
			ok++
			continue
		}
		if !errors.As(err, &de) {
			t.Fatalf("prefix %d: got %v, want *DecodeError", n, err)
		}
		if de.Offset < 0 || de.Offset > n || de.Error() == "" {
			t.Fatalf("prefix %d: bad error %+v", n, de)
		}
	}
	if ok > 4 { // header only, +type, +function... at most a few boundaries
		t.Fatalf("%d prefixes accepted", ok)
	}
	// Exporting the fuel name already is a ConfigError.
	var ce *ConfigError
	if _, err := Instrument(spin, Config{FuelExport: "spin"}); !errors.As(err, &ce) {
		t.Fatalf("got %v, want *ConfigError", err)
	}
	// Bad costs are a ConfigError.
	c := DefaultCosts()
	c.PerByte = -1
	if _, err := Instrument(spin, Config{Costs: c}); !errors.As(err, &ce) {
		t.Fatalf("got %v, want *ConfigError", err)
	}
	// An out-of-range call must stay out of range (not hit an injected function).
	bad := buildModule(sec(secType, 1, 0x60, 0, 0), sec(secFunction, 1, 0), sec(secCode, 1, 4, 0, opCall, 1, opEnd))
	var de *DecodeError
	if _, err := Instrument(bad, Config{}); !errors.As(err, &de) {
		t.Fatalf("got %v, want *DecodeError", err)
	}
}

func TestCustomCosts(t *testing.T) {
	ctx := context.Background()
	c := DefaultCosts()
	c.PerByte = 0 // older Wasmtime: no per-byte cost
	c.FunctionEntry = 0
	c.Op[opLocalGet] = 10
	m := unlimited()
	r := newMeteredRuntime(t, ctx, wazero.NewRuntimeConfig().WithCoreFeatures(api.CoreFeaturesV2|experimental.CoreFeaturesTailCall), m)
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, mustInstrument(t, readTestdata(t, "fuel.wasm"), Config{Costs: c}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		fn   string
		arg  uint64
		want int64
	}{{"copyn", 1000, 2 + 10 + 1}, {"filln", 7, 13}, {"grown", 5, 1 + 10 + 1 + 5}} {
		before := m.consumed(mod)
		if _, err := mod.ExportedFunction(tc.fn).Call(ctx, tc.arg); err != nil {
			t.Fatal(err)
		}
		if got := m.consumed(mod) - before; got != tc.want {
			t.Errorf("%s(%d): %d, want %d", tc.fn, tc.arg, got, tc.want)
		}
	}
}

// TestTableMaximum: a table that declares no maximum, or one above
// Limits.TableMaximum, is given that maximum, so table.grow past it
// returns -1 instead of asking the runtime for 2^32 elements; a table with
// a smaller maximum keeps it; one whose maximum is below its minimum
// stays invalid.
func TestTableMaximum(t *testing.T) {
	ctx := context.Background()
	// (module (table $t <limits> funcref)
	//   (func (export "grow") (param i32) (result i32)
	//     (table.grow $t (ref.null func) (local.get 0))))
	module := func(limits ...byte) []byte {
		table := append([]byte{1, 0x70}, limits...)
		return buildModule(
			sec(secType, 1, 0x60, 1, 0x7f, 1, 0x7f),
			sec(secFunction, 1, 0),
			sec(secTable, table...),
			sec(secExport, 1, 4, 'g', 'r', 'o', 'w', 0, 0),
			sec(secCode, 1, 9, 0, 0xd0, 0x70, opLocalGet, 0, 0xfc, 15, 0, opEnd),
		)
	}
	for _, tc := range []struct {
		name    string
		limits  []byte
		capped  bool
		grow    uint32 // elements to grow by
		wantOld uint32 // table.grow's result
	}{
		{"no maximum", []byte{0, 1}, true, 2000, 0xffffffff},
		{"no maximum, within", []byte{0, 1}, true, 999, 1},
		{"huge grow", []byte{0, 1}, true, 0xfffffff0, 0xffffffff},
		{"maximum above", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, true, 1000, 0xffffffff},
		{"maximum below", []byte{1, 1, 10}, false, 9, 1},
		{"maximum below, past it", []byte{1, 1, 10}, false, 10, 0xffffffff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Instrument(module(tc.limits...), Config{Limits: Limits{TableMaximum: 1000}})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Report.TablesCapped == 1; got != tc.capped {
				t.Fatalf("TablesCapped %d, want capped %v", res.Report.TablesCapped, tc.capped)
			}
			r := newMeteredRuntime(t, ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(api.CoreFeaturesV2), unlimited())
			defer r.Close(ctx)
			mod, err := r.Instantiate(ctx, res.Wasm)
			if err != nil {
				t.Fatal(err)
			}
			out, err := mod.ExportedFunction("grow").Call(ctx, uint64(tc.grow))
			if err != nil || uint32(out[0]) != tc.wantOld {
				t.Fatalf("table.grow(%d) = %v, %v; want %d", tc.grow, out, err, int32(tc.wantOld))
			}
		})
	}
	// A maximum below the minimum is invalid before and after.
	res, err := Instrument(module(1, 5, 2), Config{Limits: Limits{TableMaximum: 1000}})
	if err == nil {
		if verr := validates(res.Wasm); verr == nil {
			t.Fatal("a table with max < min became valid")
		}
	}
}
