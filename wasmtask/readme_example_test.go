package wasmtask_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// ExampleSpawn is the README's embedding example (between the README
// markers, verbatim: TestREADMEExamples checks it), run on the spin guest.
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

// TestREADMEExamples: every block of Go code marked "// README [NAME]
// begin" ... "// README [NAME] end" in this package's examples appears in
// README.md verbatim (one tab of indentation removed), so the README's code
// compiles and runs (ExampleSpawn, Example_pluginOnWazero,
// Example_pluginOnWasmsched).
func TestREADMEExamples(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	marker := regexp.MustCompile(`(?m)^\t// README ?(\w*) begin\n`)
	blocks := 0
	for _, file := range []string{"readme_example_test.go", "plugin_example_test.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range marker.FindAllStringSubmatchIndex(string(src), -1) {
			name := string(src[m[2]:m[3]])
			end := "\t// README " + name + " end\n"
			if name == "" {
				end = "\t// README end\n"
			}
			rest := string(src[m[1]:])
			j := strings.Index(rest, end)
			if j < 0 {
				t.Fatalf("%s: README block %q has no end", file, name)
			}
			var lines []string
			for _, l := range strings.SplitAfter(rest[:j], "\n") {
				lines = append(lines, strings.TrimPrefix(l, "\t"))
			}
			want := "```go\n" + strings.Join(lines, "") + "```\n"
			if !strings.Contains(string(readme), want) {
				t.Errorf("README.md lacks the block %q of %s, which reads:\n%s", name, file, want)
			}
			blocks++
		}
	}
	if blocks != 3 {
		t.Fatalf("found %d README blocks, want 3", blocks)
	}
}
