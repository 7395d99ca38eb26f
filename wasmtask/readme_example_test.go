package wasmtask_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// ExampleSpawn is the README's embedding example (between the README
// markers, verbatim: TestREADMEExample checks it), run on the spin guest.
func ExampleSpawn() {
	wasmBytes, err := os.ReadFile("../testdata/spin.wasm")
	if err != nil {
		panic(err)
	}
	if err := embed(context.Background(), wasmBytes); err != nil {
		fmt.Println(err)
	}
	// Output: spin = 12993449213116384565, fuel 14007
}

func embed(ctx context.Context, wasmBytes []byte) error {
	// README begin
	rt, err := scheduler.New(scheduler.WithWorkers(max(runtime.GOMAXPROCS(0)-1, 1))) // leave a P for the rest of the service
	if err != nil {
		return err
	}
	defer rt.Shutdown(ctx)
	eng, err := wasmtask.NewEngine(ctx, wasmtask.EngineConfig{}) // 1 ms epochs; add HostModules for host functions
	if err != nil {
		return err
	}
	defer eng.Close(ctx)

	mod, err := eng.Compile(ctx, wasmBytes) // instrument + compile, cached by hash
	if err != nil {
		return err // errors.Is(err, wasmtask.ErrInvalidModule): refused, with the reason
	}
	defer mod.Close(ctx) // releases the compiled code once its running guests end

	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second) // its end stops the guest
	defer cancel()
	h := wasmtask.Spawn(callCtx, rt, mod, wasmtask.Options{
		Name:   "tenant-42",
		Export: "spin", Args: []uint64{1000}, // or leave Export empty to run a WASI _start
		Interrupt:  wasmtask.InterruptEpoch,  // suspend when the 1 ms epoch deadline passes...
		Policy:     wasmtask.DeferredYield(), // ...and come back through the yield_now path
		FuelBudget: 10_000_000_000,           // ErrOutOfFuel beyond this
	})
	res, err := h.Wait(ctx) // or h.Abort()
	if err != nil {
		return err // errors.Is(err, wasmtask.ErrTrap), context.DeadlineExceeded, ...
	}
	fmt.Printf("spin = %d, fuel %d\n", res.Values[0], res.Stats.FuelUsed)
	// README end
	return nil
}

// TestREADMEExample: the README's embedding example is the body of embed,
// verbatim, so it compiles and runs (ExampleSpawn).
func TestREADMEExample(t *testing.T) {
	src, err := os.ReadFile("readme_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	body := between(string(src), "\t// README begin\n", "\t// README end\n")
	var lines []string
	for _, l := range strings.SplitAfter(body, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	want := "```go\n" + strings.Join(lines, "") + "```\n"
	if !strings.Contains(string(readme), want) {
		t.Fatalf("README.md's embedding example differs from embed in readme_example_test.go; it should read:\n%s", want)
	}
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	j := strings.Index(s, to)
	if i < 0 || j < i {
		return ""
	}
	return s[i+len(from) : j]
}
