package instrument

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// TestPollSkipping runs spin's loop and fib's recursion with the guest
// refilling its own counter between checks (Config.PollSkipping), on both
// of wazero's engines: the fuel consumed stays exact, the checks fall by
// the skips the host allowed, and a nonzero attention word sends every
// slow path to the check, exactly as without skipping.
func TestPollSkipping(t *testing.T) {
	ctx := context.Background()
	wasm := mustInstrument(t, readTestdata(t, "spin.wasm"), Config{PollSkipping: true})
	engines := map[string]func() wazero.RuntimeConfig{
		"compiler":    wazero.NewRuntimeConfigCompiler,
		"interpreter": wazero.NewRuntimeConfigInterpreter,
	}
	// run calls spin and fib with the meter's settings and returns the
	// meter after checking every call's consumption.
	run := func(t *testing.T, newCfg func() wazero.RuntimeConfig, refill, skip int64, attention bool) *meter {
		m := &meter{refill: refill, skip: skip}
		r := newMeteredRuntime(t, ctx, newCfg(), m)
		defer r.Close(ctx)
		mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("spin"))
		if err != nil {
			t.Fatal(err)
		}
		if attention {
			mod.ExportedGlobal(AttentionExport).(api.MutableGlobal).Set(1)
		}
		var want int64
		for _, n := range []uint64{0, 1, 2, 10, 1000, 5000} {
			if _, err := mod.ExportedFunction("spin").Call(ctx, n); err != nil {
				t.Fatal(err)
			}
			want += 14*int64(n) + 7
			if got := m.consumed(mod); got != want {
				t.Fatalf("refill %d skip %d: spin(%d): consumed %d, want %d", refill, skip, n, got, want)
			}
		}
		for _, n := range []uint64{0, 1, 2, 5, 15} {
			if _, err := mod.ExportedFunction("fib").Call(ctx, n); err != nil {
				t.Fatal(err)
			}
			want += fibFuel(int(n))
			if got := m.consumed(mod); got != want {
				t.Fatalf("refill %d skip %d: fib(%d): consumed %d, want %d", refill, skip, n, got, want)
			}
		}
		return m
	}
	for name, newCfg := range engines {
		t.Run(name, func(t *testing.T) {
			for _, refill := range []int64{1, 3, 14, 100, 1 << 20} {
				base := run(t, newCfg, refill, 0, false)
				if base.skipsTaken != 0 {
					t.Fatalf("refill %d: %d refills by the guest with no skips allowed", refill, base.skipsTaken)
				}
				for _, skip := range []int64{1, 5, 1000} {
					m := run(t, newCfg, refill, skip, false)
					// A refill below an iteration's cost (14) leaves the
					// counter negative, and the helper calls the check;
					// at 2^20 the calls need no refill at all.
					if refill >= 14 && refill <= 100 && (m.skipsTaken == 0 || m.checks >= base.checks) {
						t.Errorf("refill %d skip %d: %d checks and %d skipped polls, against %d checks without skipping",
							refill, skip, m.checks, m.skipsTaken, base.checks)
					}
					if m.skipsTaken > skip*int64(m.checks) {
						t.Errorf("refill %d skip %d: %d skipped polls in %d checks: more than allowed", refill, skip, m.skipsTaken, m.checks)
					}
					att := run(t, newCfg, refill, skip, true)
					if att.skipsTaken != 0 || att.checks != base.checks {
						t.Errorf("refill %d skip %d, attention set: %d checks and %d skipped polls, want %d checks and none",
							refill, skip, att.checks, att.skipsTaken, base.checks)
					}
				}
			}
		})
	}
}

// TestPollSkippingExports: the three globals are exported only with
// PollSkipping, and a module that already exports one of their names is
// refused.
func TestPollSkippingExports(t *testing.T) {
	ctx := context.Background()
	r := newMeteredRuntime(t, ctx, wazero.NewRuntimeConfigInterpreter(), unlimited())
	defer r.Close(ctx)
	for _, skipping := range []bool{false, true} {
		wasm := mustInstrument(t, readTestdata(t, "spin.wasm"), Config{PollSkipping: skipping})
		mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName(fmt.Sprint(skipping)))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{SkipExport, RefillExport, AttentionExport} {
			if ok := mod.ExportedGlobal(name) != nil; ok != skipping {
				t.Errorf("PollSkipping %v: export %s present: %v", skipping, name, ok)
			}
		}
		if mod.ExportedGlobal(DefaultFuelExport) == nil {
			t.Errorf("PollSkipping %v: no fuel export", skipping)
		}
	}
	// (module (global (mut i64) (i64.const 0)) (export "wasmsched_attention" (global 0)))
	clash := []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		6, 6, 1, 0x7e, 1, 0x42, 0, 0x0b,
		7, 23, 1, 19}
	clash = append(clash, AttentionExport...)
	clash = append(clash, 3, 0)
	if _, err := Instrument(clash, Config{}); err != nil {
		t.Fatalf("without PollSkipping the name is free: %v", err)
	}
	var ce *ConfigError
	if _, err := Instrument(clash, Config{PollSkipping: true}); !errors.As(err, &ce) {
		t.Fatalf("with PollSkipping: err = %v, want a *ConfigError", err)
	}
}
