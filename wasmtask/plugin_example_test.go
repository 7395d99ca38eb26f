package wasmtask_test

import (
	"context"
	"fmt"
	"os"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// The same small plugin host twice — on plain wazero, then on wasmsched —
// for the README's "Coming from wazero". The plugin is the Go reactor of
// testdata/goreactor: it imports test.add_async and exports next, spin
// and greet (the (ptr, len) convention).

// Example_pluginOnWazero is the plugin host on plain wazero.
func Example_pluginOnWazero() {
	wasmBytes, err := os.ReadFile("../testdata/goreactor.wasm")
	if err != nil {
		panic(err)
	}
	if err := pluginOnWazero(context.Background(), wasmBytes); err != nil {
		fmt.Println(err)
	}
	// Output:
	// next: 1 2
	// greet: hello, wazero
}

func pluginOnWazero(ctx context.Context, wasmBytes []byte) error {
	// README wazero begin
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	_, err := r.NewHostModuleBuilder("test").NewFunctionBuilder().
		WithFunc(func(ctx context.Context, a, b int64) int64 { return a + b }).
		Export("add_async").Instantiate(ctx)
	if err != nil {
		return err
	}
	mod, err := r.InstantiateWithConfig(ctx, wasmBytes,
		wazero.NewModuleConfig().WithStartFunctions("_initialize")) // a reactor
	if err != nil {
		return err
	}
	next := mod.ExportedFunction("next")
	a, _ := next.Call(ctx) // state persists: 1, then 2
	b, _ := next.Call(ctx)
	fmt.Println("next:", a[0], b[0])

	in := []byte("wazero") // bytes in and out, by hand
	p, err := mod.ExportedFunction("alloc").Call(ctx, uint64(len(in)))
	if err != nil {
		return err
	}
	mod.Memory().Write(uint32(p[0]), in)
	res, err := mod.ExportedFunction("greet").Call(ctx, p[0], uint64(len(in)))
	if err != nil {
		return err
	}
	out, _ := mod.Memory().Read(uint32(res[0]>>32), uint32(res[0]))
	fmt.Println("greet:", string(out))
	// README wazero end
	return nil
}

// Example_pluginOnWasmsched is the same host on wasmsched.
func Example_pluginOnWasmsched() {
	wasmBytes, err := os.ReadFile("../testdata/goreactor.wasm")
	if err != nil {
		panic(err)
	}
	if err := pluginOnWasmsched(context.Background(), wasmBytes); err != nil {
		fmt.Println(err)
	}
	// Output:
	// next: 1 2
	// greet: hello, wasmsched
}

func pluginOnWasmsched(ctx context.Context, wasmBytes []byte) error {
	// README wasmsched begin
	rt, err := scheduler.New() // the executor: guests are preemptible tasks on it
	if err != nil {
		return err
	}
	defer rt.Shutdown(ctx)
	eng, err := wasmtask.NewEngine(ctx, wasmtask.EngineConfig{
		WazeroHostModules: []wasmtask.WazeroHostModule{{Name: "test", // the same host function
			Define: func(b wazero.HostModuleBuilder) wazero.HostModuleBuilder {
				return b.NewFunctionBuilder().
					WithFunc(func(ctx context.Context, a, b int64) int64 { return a + b }).
					Export("add_async")
			}}},
		MemoryBudget: 1 << 30, // all guests' memory together
	})
	if err != nil {
		return err
	}
	defer eng.Close(ctx)
	mod, err := eng.Compile(ctx, wasmBytes) // instrumented: fuel checks make it preemptible
	if err != nil {
		return err
	}
	inst, err := wasmtask.NewInstance(ctx, rt, mod, wasmtask.Options{ // _initialize runs here
		FuelBudget: 1_000_000_000, // per call
	})
	if err != nil {
		return err
	}
	defer inst.Close(ctx)
	a, _ := inst.Call(ctx, "next") // preemptible; cancelling ctx stops it
	b, _ := inst.Call(ctx, "next")
	fmt.Println("next:", a.Values[0], b.Values[0])

	out, _, err := inst.CallBytes(ctx, "alloc", "greet", []byte("wasmsched"))
	if err != nil {
		return err // typed: errors.Is(err, wasmtask.ErrTrap), wasmtask.ErrPoisoned, ...
	}
	fmt.Println("greet:", string(out))
	// README wasmsched end
	return nil
}
