package wasmtask

import (
	"bytes"
	"context"
	"errors"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmsched/wasmsched/scheduler"
)

// TestFuelModeDeterministic: in fuel mode the same guest with the same
// slice yields the same number of times and uses exactly the fuel the cost
// rule gives (spin(n) costs 14n+7: see testdata/spin.wat), whatever the
// slice and the path.
func TestFuelModeDeterministic(t *testing.T) {
	e := newEnv(t, "spin.wasm", EngineConfig{}, scheduler.WithWorkers(2))
	const n = 5_000_000
	want := int64(14*n + 7)
	var yields []int64
	for _, tc := range []struct {
		slice int64
		pol   Policy
	}{
		{1_000_000, DeferredYield()}, {1_000_000, DeferredYield()}, {1_000_000, ImmediateYield()},
		{333_333, DeferredYield()}, {10_000_000_000, DeferredYield()},
	} {
		r, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{n},
			Interrupt: InterruptFuel, FuelSlice: tc.slice, Policy: tc.pol}))
		if err != nil {
			t.Fatal(err)
		}
		if r.Stats.FuelUsed != want {
			t.Fatalf("slice %d: fuel used %d, want %d", tc.slice, r.Stats.FuelUsed, want)
		}
		// A slice ends at the first check at or past its end, so the
		// number of yields is floor(used / slice) give or take the last.
		if got, lo := r.Stats.FuelYields, want/tc.slice-1; got < lo || got > want/tc.slice {
			t.Fatalf("slice %d: %d yields, want about %d", tc.slice, got, want/tc.slice)
		}
		yields = append(yields, r.Stats.FuelYields)
		if r.Stats.EpochYields != 0 {
			t.Fatalf("epoch yields in fuel mode: %d", r.Stats.EpochYields)
		}
	}
	if yields[0] != yields[1] || yields[0] != yields[2] {
		t.Fatalf("same slice, different yield counts: %v", yields)
	}
	// The exact budget: a budget of exactly the cost completes; one less
	// fails with ErrOutOfFuel.
	if _, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{n}, Interrupt: InterruptFuel, FuelBudget: want})); err != nil {
		t.Fatalf("budget = cost: %v", err)
	}
	if _, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{n}, Interrupt: InterruptFuel, FuelBudget: want - 1})); !errors.Is(err, ErrOutOfFuel) {
		t.Fatalf("budget = cost-1: %v", err)
	}
}

// TestWASIGoGuest runs the Go-built WASI guest as a task, preempted at
// every epoch, and compares its output with plain wazero's.
func TestWASIGoGuest(t *testing.T) {
	wasm := readGuest(t, "goguest.wasm")
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	var want bytes.Buffer
	if _, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStdout(&want).WithArgs("goguest", "1")); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "goguest.wasm", EngineConfig{}, scheduler.WithWorkers(2))
	var hs []*scheduler.JoinHandle[Result]
	outs := make([]*bytes.Buffer, 3)
	for i := range outs {
		outs[i] = &bytes.Buffer{}
		hs = append(hs, Spawn(context.Background(), e.rt, e.mod, Options{Name: "goguest", Argv: []string{"goguest", "1"}, Stdout: outs[i]}))
	}
	for i, h := range hs {
		res, err := waitGuest(t, h)
		if err != nil {
			t.Fatal(err)
		}
		if outs[i].String() != want.String() {
			t.Fatalf("output differs:\n%s\nwant:\n%s", outs[i], &want)
		}
		if res.Stats.Yields() == 0 {
			t.Fatalf("guest %d never yielded (fuel %d)", i, res.Stats.FuelUsed)
		}
	}
	if want.Len() == 0 {
		t.Fatal("the guest printed nothing")
	}
}

// TestGuestGoroutineLabelled: the goroutine running guest code carries the
// pprof label wasm_guest=<name>, so CPU profiles attribute guest time.
func TestGuestGoroutineLabelled(t *testing.T) {
	var dump string
	host := testHost(nil)
	host.Functions = append(host.Functions[:0:0], host.Functions...)
	for i := range host.Functions {
		if host.Functions[i].Name == "mark" {
			host.Functions[i].Fn = func(*HostCall, []uint64) ([]uint64, error) {
				var b strings.Builder
				pprof.Lookup("goroutine").WriteTo(&b, 1)
				dump = b.String()
				return nil, nil
			}
		}
	}
	e := newEnv(t, "", EngineConfig{HostModules: []HostModule{host}}, scheduler.WithWorkers(1))
	mod, err := e.eng.Compile(context.Background(), localGuest(t, "guests.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := waitGuest(t, Spawn(context.Background(), e.rt, mod, Options{Name: "tenant-7", Export: "mark_spin", Args: []uint64{10}})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dump, `"wasm_guest":"tenant-7"`) {
		t.Fatalf("no goroutine labelled wasm_guest=tenant-7 while the guest ran:\n%.2000s", dump)
	}
}

// TestCompileCache: the same bytes compile once.
func TestCompileCache(t *testing.T) {
	e := newEnv(t, "spin.wasm", EngineConfig{}, scheduler.WithWorkers(1))
	m2, err := e.eng.Compile(context.Background(), readGuest(t, "spin.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if m2 != e.mod {
		t.Fatal("second Compile of the same module did not hit the cache")
	}
	if e.mod.Report().Loops == 0 || e.mod.Report().Checks == 0 {
		t.Fatalf("instrumentation report empty: %+v", e.mod.Report())
	}
}

// TestEpochAdvancesWithClockAndIncrement: the epoch is derived from the
// clock, and IncrementEpoch adds to it.
func TestEpochAdvancesWithClockAndIncrement(t *testing.T) {
	e := newEnv(t, "", EngineConfig{EpochTick: 100 * 1000}, scheduler.WithWorkers(1)) // 100 µs
	a := e.eng.Epoch()
	e.eng.IncrementEpoch()
	e.eng.IncrementEpoch()
	if b := e.eng.Epoch(); b < a+2 {
		t.Fatalf("epoch %d -> %d after two increments", a, b)
	}
	before := e.eng.Epoch()
	for t0 := e.eng.Epoch(); e.eng.Epoch() < t0+3; {
	}
	if e.eng.Epoch() < before+3 {
		t.Fatal("epoch did not advance with time")
	}
}
