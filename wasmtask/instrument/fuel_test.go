package instrument

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
)

func fibFuel(n int) int64 {
	if n < 2 {
		return 6 // entry 1 + get, const, lt_u, if + get
	}
	return 14 + fibFuel(n-1) + fibFuel(n-2)
}

func TestExactFuelSpin(t *testing.T) {
	ctx := context.Background()
	wasm := mustInstrument(t, readTestdata(t, "spin.wasm"), Config{})
	for _, refill := range []int64{1, 3, 14, 100, 1 << 20, 1<<63 - 1} {
		m := &meter{refill: refill}
		r := newMeteredRuntime(t, ctx, wazero.NewRuntimeConfigCompiler(), m)
		mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("spin"))
		if err != nil {
			t.Fatal(err)
		}
		var want int64
		for _, n := range []uint64{0, 1, 2, 10, 1000} {
			res, err := mod.ExportedFunction("spin").Call(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			want += 14*int64(n) + 7
			if got := m.consumed(mod); got != want {
				t.Fatalf("refill %d: spin(%d): consumed %d, want %d (result %d)", refill, n, got, want, res[0])
			}
		}
		for _, n := range []uint64{0, 1, 2, 5, 15} {
			if _, err := mod.ExportedFunction("fib").Call(ctx, n); err != nil {
				t.Fatal(err)
			}
			want += fibFuel(int(n))
			if got := m.consumed(mod); got != want {
				t.Fatalf("refill %d: fib(%d): consumed %d, want %d", refill, n, got, want)
			}
		}
		if refill == 1 && m.checks < 1000 {
			t.Fatalf("refill 1: only %d checks", m.checks)
		}
		r.Close(ctx)
	}
}
