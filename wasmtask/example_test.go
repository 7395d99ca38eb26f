package wasmtask_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// Example embeds wasmsched: a runtime, an engine with an async host
// function, a policy, and a guest spawned as a task.
func Example() {
	ctx := context.Background()
	rt, _ := scheduler.New(scheduler.WithWorkers(2))
	defer rt.Shutdown(ctx)

	// An async host function: the guest is suspended (costing no worker)
	// until the Go side completes, from any goroutine.
	lookup := wasmtask.HostFunction{
		Name: "add_async", Params: []api.ValueType{api.ValueTypeI64, api.ValueTypeI64},
		Results: []api.ValueType{api.ValueTypeI64},
		Fn: func(hc *wasmtask.HostCall, p []uint64) ([]uint64, error) {
			return hc.Await(func(done func([]uint64, error)) {
				go func() { time.Sleep(time.Millisecond); done([]uint64{p[0] + p[1]}, nil) }()
			})
		},
	}
	noop := func(*wasmtask.HostCall, []uint64) ([]uint64, error) { return nil, nil }
	eng, _ := wasmtask.NewEngine(ctx, wasmtask.EngineConfig{HostModules: []wasmtask.HostModule{{
		Name: "test", Functions: []wasmtask.HostFunction{lookup,
			{Name: "fail", Params: []api.ValueType{api.ValueTypeI32}, Fn: noop},
			{Name: "boom", Fn: noop}, {Name: "mark", Fn: noop}},
	}}})
	defer eng.Close(ctx)

	wasm, _ := os.ReadFile("testdata/guests.wasm")
	mod, err := eng.Compile(ctx, wasm)
	if err != nil {
		panic(err)
	}
	h := wasmtask.Spawn(ctx, rt, mod, wasmtask.Options{
		Name: "tenant-1", Export: "async_sum", Args: []uint64{10},
		Interrupt:  wasmtask.InterruptEpoch,  // yield at every 1 ms epoch...
		Policy:     wasmtask.DeferredYield(), // ...through the yield_now path
		FuelBudget: 1_000_000_000,
	})
	res, err := h.Wait(ctx)
	fmt.Println(res.Values[0], err, res.Stats.HostWaits)
	// Output: 55 <nil> 10
}
