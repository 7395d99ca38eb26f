package wasmtask

import (
	"context"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmsched/wasmsched/scheduler"
)

// TestWazeroHostModules: host functions written for wazero — a typed Go
// function, and one that suspends the guest through HostCallFrom — work
// unchanged, one-shot and on an Instance.
func TestWazeroHostModules(t *testing.T) {
	var reads []int64
	env := WazeroHostModule{Name: "env", Define: func(b wazero.HostModuleBuilder) wazero.HostModuleBuilder {
		return b.
			NewFunctionBuilder().WithFunc(func(ctx context.Context, x uint32) uint32 { return 2 * x }).Export("double").
			NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, a, b uint64) uint64 {
			hc, ok := HostCallFrom(ctx, m)
			if !ok {
				panic("not a wasmtask guest")
			}
			res, err := hc.Await(func(done func([]uint64, error)) { go done([]uint64{a + b}, nil) })
			if err != nil {
				panic(err)
			}
			return res[0]
		}).Export("add_later").
			NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module) int64 {
			hc, _ := HostCallFrom(ctx, m)
			reads = append(reads, hc.FuelConsumed())
			return hc.FuelConsumed()
		}).Export("fuel")
	}}
	e := newEnv(t, "", EngineConfig{WazeroHostModules: []WazeroHostModule{env}}, scheduler.WithWorkers(1))
	mod, err := e.eng.Compile(context.Background(), readTestdata(t, "wazerohost.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := waitGuest(t, Spawn(context.Background(), e.rt, mod, Options{Export: "double_plus_one", Args: []uint64{20}}))
	if err != nil || r.Values[0] != 41 {
		t.Fatalf("double_plus_one(20) = %v, %v", r.Values, err)
	}
	inst, err := NewInstance(context.Background(), e.rt, mod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	r, err = inst.Call(context.Background(), "add_later", 40, 2)
	if err != nil || r.Values[0] != 42 || r.Stats.HostWaits != 1 {
		t.Fatalf("add_later = %v, %v, host waits %d", r.Values, err, r.Stats.HostWaits)
	}
	r, err = inst.Call(context.Background(), "fuel_twice")
	if err != nil {
		t.Fatal(err)
	}
	if len(reads) != 2 || reads[0] <= 0 || reads[1] <= reads[0] || reads[1] > r.Stats.FuelUsed || int64(r.Values[0]) != reads[0]-reads[1] {
		t.Fatalf("fuel reads %v, result %d, fuel used %d", reads, int64(r.Values[0]), r.Stats.FuelUsed)
	}
	// A module importing what no host module provides is refused, naming it.
	_, err = e.eng.Compile(context.Background(), readTestdata(t, "reactor.wasm"))
	var ie *ImportError
	if !errors.As(err, &ie) || ie.Module != "test" {
		t.Fatalf("missing import: %v", err)
	}
	// Names are checked.
	for _, bad := range []EngineConfig{
		{WazeroHostModules: []WazeroHostModule{{Name: "env"}}},
		{WazeroHostModules: []WazeroHostModule{{Name: "wasi_snapshot_preview1", Define: env.Define}}},
		{WazeroHostModules: []WazeroHostModule{env}, HostModules: []HostModule{{Name: "env", Functions: []HostFunction{{Name: "f", Fn: func(*HostCall, []uint64) ([]uint64, error) { return nil, nil }}}}}},
	} {
		if eng, err := NewEngine(context.Background(), bad); err == nil {
			eng.Close(context.Background())
			t.Fatalf("config %+v accepted", bad)
		}
	}
}
