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
// value the check reads through the cell is what the api reads.
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
			fg = newFuelGlobal(gl)
			if fg.cell == nil {
				t.Fatal("the fuel global's address was not found (has wazero's layout changed? see fuelcell.go)")
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
