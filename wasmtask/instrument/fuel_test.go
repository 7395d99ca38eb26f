package instrument

import (
	"context"
	"fmt"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
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

// TestExactFuelConstructed runs testdata/fuel.wasm, whose functions have
// fuel known by construction (see the comments in fuel.wat), under several
// slice sizes, and checks every call's consumption exactly.
func TestExactFuelConstructed(t *testing.T) {
	// The measured variants of the injected code must be exact too.
	variants := map[string]knobs{
		"default":        defaultKnobs,
		"check-every":    {checkEvery: true, reloadCheck: true, allEntries: true},
		"no-call-checks": {},
	}
	for name, k := range variants {
		t.Run(name, func(t *testing.T) {
			saved := defaultKnobs
			defaultKnobs = k
			wasm := mustInstrument(t, readTestdata(t, "fuel.wasm"), Config{})
			defaultKnobs = saved
			testExactFuelConstructed(t, wasm, 0)
		})
	}
	// The guest's own refills (PollSkipping) are exact too, including
	// where a bulk charge leaves the counter below -refill and the helper
	// must call the check.
	for _, skip := range []int64{1, 3, 1000} {
		t.Run(fmt.Sprintf("skip-%d", skip), func(t *testing.T) {
			testExactFuelConstructed(t, mustInstrument(t, readTestdata(t, "fuel.wasm"), Config{PollSkipping: true}), skip)
		})
	}
}

func testExactFuelConstructed(t *testing.T, wasm []byte, skip int64) {
	ctx := context.Background()
	type tc struct {
		fn   string
		args []uint64
		want int64
	}
	var cases []tc
	for i := uint64(0); i < 4; i++ {
		cases = append(cases, tc{"brtable", []uint64{i}, []int64{6, 4, 4, 4}[i]})
	}
	cases = append(cases,
		tc{"indirect", []uint64{21, 0}, 8}, tc{"indirect", []uint64{21, 1}, 8},
		tc{"copy50", nil, 55},
		tc{"copyn", []uint64{0}, 5}, tc{"copyn", []uint64{1000}, 1005}, tc{"copyn", []uint64{65000}, 65005},
		tc{"filln", []uint64{12345}, 12350},
		tc{"init4", nil, 9},
		tc{"grown", []uint64{0}, 4}, tc{"grown", []uint64{10}, 14},
		tc{"tcopy2", nil, 7},
		tc{"tailcall", []uint64{0}, 5}, tc{"tailcall", []uint64{1000}, 8005},
		tc{"dead", nil, 3},
		tc{"nested", []uint64{1, 1}, 4 + 1*(9+7*1)}, tc{"nested", []uint64{7, 13}, 4 + 7*(9+7*13)},
	)
	for _, refill := range []int64{1, 2, 7, 1000, 1 << 62} {
		m := &meter{refill: refill, skip: skip}
		r := newMeteredRuntime(t, ctx, wazero.NewRuntimeConfigCompiler().WithCoreFeatures(api.CoreFeaturesV2|experimental.CoreFeaturesTailCall), m)
		mod, err := r.Instantiate(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			before := m.consumed(mod)
			if _, err := mod.ExportedFunction(c.fn).Call(ctx, c.args...); err != nil {
				t.Fatalf("%s%v: %v", c.fn, c.args, err)
			}
			if got := m.consumed(mod) - before; got != c.want {
				t.Errorf("refill %d: %s%v consumed %d, want %d", refill, c.fn, c.args, got, c.want)
			}
		}
		// A trapping call: its segment was charged ahead; the charge may be
		// lost with the frame (documented), but never over-counted.
		before := m.consumed(mod)
		if _, err := mod.ExportedFunction("divzero").Call(ctx); err == nil {
			t.Fatal("divzero did not trap")
		}
		if got := m.consumed(mod) - before; got < 0 || got > 4 {
			t.Errorf("refill %d: divzero consumed %d, want within [0, 4]", refill, got)
		}
		r.Close(ctx)
	}
}
