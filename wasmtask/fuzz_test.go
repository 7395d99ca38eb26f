package wasmtask

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
)

// FuzzEngine feeds arbitrary bytes to the whole path a module takes in a
// service: Engine.Compile (the instrumenter's bounded decoder, wazero's
// compiler, import resolution), then instantiation and one call (the
// first export with zero arguments, or the WASI _start) under a small fuel
// budget and memory limit. Properties: nothing panics or kills the
// process; Compile fails only with ErrInvalidModule; a guest ends with a
// wasmtask error kind; the Go heap allocated for one input stays bounded
// (the decode bombs asked for tens of gigabytes). The seed corpus — the
// hostile modules, the project's guests and a sample of the WebAssembly
// spec suite's binaries — runs in every go test.
func FuzzEngine(f *testing.F) {
	for _, dir := range []string{filepath.Join("..", "testdata", "hostile"), filepath.Join("..", "testdata"), "testdata"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.wasm"))
		for _, file := range files {
			if strings.Contains(file, "funcs-100k") || strings.Contains(file, "goguest") {
				continue // seconds to compile: the hostile suite runs them
			}
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	every := 25
	if testing.Short() {
		every = 100
	}
	for i, file := range specBinaries(f) {
		if i%every == 0 {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	var (
		once sync.Once
		rt   *scheduler.Runtime
		eng  *Engine
	)
	f.Cleanup(func() {
		if rt != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rt.Shutdown(ctx)
			eng.Close(ctx)
		}
	})
	f.Fuzz(func(t *testing.T, wasm []byte) {
		once.Do(func() {
			var err error
			if rt, err = scheduler.New(scheduler.WithWorkers(2)); err != nil {
				t.Fatal(err)
			}
			if eng, err = NewEngine(context.Background(), EngineConfig{GuestMemoryLimit: 16 << 20, MemoryBudget: 64 << 20}); err != nil {
				t.Fatal(err)
			}
		})
		before := heapAllocs()
		mod, err := eng.Compile(context.Background(), wasm)
		if err != nil {
			if !errors.Is(err, ErrInvalidModule) {
				t.Fatalf("Compile failed with %v, not ErrInvalidModule", err)
			}
			checkAllocs(t, before, len(wasm))
			return
		}
		defer mod.Close(context.Background())
		opts := Options{FuelBudget: 1_000_000, Interrupt: InterruptFuel}
		if exps := mod.Exports(); len(exps) > 0 && !slices.Contains(exps, "_start") {
			opts.Export = exps[0]
			params, _, _ := mod.ExportSignature(opts.Export)
			opts.Args = make([]uint64, len(params))
		}
		h := Spawn(context.Background(), rt, mod, opts)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = h.Wait(ctx) // a watchdog: a guest may sleep forever
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			h.Abort()
			_, err = h.Wait(context.Background())
		}
		if name, class := FailureKind(err); err != nil && (class == ClassOther || class == ClassEmbedder) {
			t.Fatalf("guest ended with %v (kind %q, class %v)", err, name, class)
		}
		checkAllocs(t, before, len(wasm))
	})
}

// heapAllocs is the Go heap allocated so far (cumulative bytes).
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// checkAllocs bounds the heap allocated for one input: 256 MiB plus 4 KiB
// per input byte covers wazero compiling (and this package running) any
// module that fits its limits; a decode bomb asks for gigabytes.
func checkAllocs(t *testing.T, before uint64, n int) {
	t.Helper()
	if grew, bound := heapAllocs()-before, uint64(256<<20)+4096*uint64(n); grew > bound {
		t.Fatalf("%d MiB allocated for a %d-byte module (bound %d MiB)", grew>>20, n, bound>>20)
	}
}

// specBinaries lists the WebAssembly spec suite's binaries that wazero's
// module carries.
func specBinaries(t testing.TB) []string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output()
	if err != nil {
		t.Fatalf("go list wazero: %v", err)
	}
	root := filepath.Join(strings.TrimSpace(string(out)), "internal", "integration_test", "spectest")
	files, _ := filepath.Glob(filepath.Join(root, "*", "testdata", "*.wasm"))
	if len(files) == 0 {
		t.Fatal("no spec binaries for the seed corpus")
	}
	return files
}
