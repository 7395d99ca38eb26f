package wasmtask

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmsched/wasmsched/wasmtask/instrument"
)

// TestFuelCell checks that the fuel global's address is found on both of
// wazero's engines (a wazero upgrade that moves it fails here, and guests
// fall back to the api), that the cell and the api see the same value both
// ways, and that the guest's own charges and checks go through it: spin,
// armed through the cell, calls the check once its fuel is spent, and the
// value the check reads through the cell is what the api reads. A second
// instance of the module finds its cell at the offset the first one
// cached (compiler), or its own Val (interpreter).
func TestFuelCell(t *testing.T) {
	ctx := context.Background()
	res, err := instrument.Instrument(readGuest(t, "spin.wasm"), instrument.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  wazero.RuntimeConfig
	}{
		{"compiler", wazero.NewRuntimeConfigCompiler()},
		{"interpreter", wazero.NewRuntimeConfigInterpreter()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := wazero.NewRuntimeWithConfig(ctx, tc.cfg)
			defer r.Close(ctx)
			var fg fuelGlobal
			m := &Module{}
			var checks int
			var seen []uint64
			_, err := r.NewHostModuleBuilder(instrument.DefaultImportModule).NewFunctionBuilder().
				WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, _ []uint64) {
					checks++
					v := fg.Get()
					if api := fg.gl.Get(); api != v {
						t.Errorf("check %d: cell %d, api %d", checks, int64(v), int64(api))
					}
					seen = append(seen, v)
					fg.Set(1000)
				}), nil, nil).Export(instrument.DefaultImportName).Instantiate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mod, err := r.Instantiate(ctx, res.Wasm)
			if err != nil {
				t.Fatal(err)
			}
			gl, ok := mod.ExportedGlobal(instrument.DefaultFuelExport).(api.MutableGlobal)
			if !ok {
				t.Fatal("no mutable fuel global")
			}
			fg = newFuelGlobal(gl, m)
			if fg.cell == nil {
				t.Fatal("the fuel global's address was not found (has wazero's layout changed? see fuelcell.go)")
			}
			if tc.name == "compiler" && m.fuelOffset.Load() == 0 {
				t.Fatal("the offset was not cached for the module's other instances")
			}
			mod2, err := r.InstantiateWithConfig(ctx, res.Wasm, wazero.NewModuleConfig().WithName("second"))
			if err != nil {
				t.Fatal(err)
			}
			gl2 := mod2.ExportedGlobal(instrument.DefaultFuelExport).(api.MutableGlobal)
			fg2 := newFuelGlobal(gl2, m)
			if fg2.cell == nil || fg2.cell == fg.cell {
				t.Fatalf("second instance's cell %p (first's %p)", fg2.cell, fg.cell)
			}
			fg2.Set(4242)
			if gl2.Get() != 4242 || gl.Get() == 4242 {
				t.Fatalf("second instance: api reads %d, first instance's %d", gl2.Get(), gl.Get())
			}
			fg.Set(12345)
			if got := gl.Get(); got != 12345 {
				t.Fatalf("after a write to the cell the api reads %d", got)
			}
			gl.Set(777)
			if got := fg.Get(); got != 777 {
				t.Fatalf("after a write through the api the cell reads %d", got)
			}
			fg.Set(1000)
			if _, err := mod.ExportedFunction("spin").Call(ctx, 10_000); err != nil {
				t.Fatal(err)
			}
			// 10,000 iterations of more than 10 fuel each spend 1,000 fuel
			// more than 100 times; each check finds the counter negative.
			if checks < 100 {
				t.Fatalf("%d checks; want at least 100", checks)
			}
			for i, v := range seen {
				if int64(v) >= 0 {
					t.Fatalf("check %d read %d through the cell; want a negative counter", i+1, int64(v))
				}
			}
		})
	}
}
