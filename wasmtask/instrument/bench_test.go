package instrument

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// BenchmarkInstrumentGoGuest measures instrumentation speed on the Go-built
// guest (testdata/goguest.wasm, a few MB with thousands of functions).
func BenchmarkInstrumentGoGuest(b *testing.B) {
	wasm := readTestdata(b, "goguest.wasm")
	b.SetBytes(int64(len(wasm)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Instrument(wasm, Config{}); err != nil {
			b.Fatal(err)
		}
	}
}

// sightglassDir is the benchmark corpus of development machines (see its
// README); benchmarks skip when it is absent. Override with
// WASMSCHED_SIGHTGLASS.
func sightglassDir(tb testing.TB) string {
	dir := os.Getenv("WASMSCHED_SIGHTGLASS")
	if dir == "" {
		dir = filepath.Join(repoRoot(tb), "..", "shared", "corpus", "sightglass")
	}
	if _, err := os.Stat(dir); err != nil {
		tb.Skipf("sightglass corpus absent (%s): runtime-overhead benchmark skipped", dir)
	}
	return dir
}

type sgModule struct {
	name, dir, wasm string
}

// sightglassModules lists the corpus modules. noop is left out: its timed
// window is empty, so a ratio on it measures only timer noise.
func sightglassModules(tb testing.TB) []sgModule {
	root := sightglassDir(tb)
	var mods []sgModule
	files, _ := filepath.Glob(filepath.Join(root, "*", "*.wasm"))
	for _, f := range files {
		dir := filepath.Dir(f)
		name := filepath.Base(dir)
		if base := strings.TrimSuffix(filepath.Base(f), ".wasm"); base != "benchmark" {
			name = base
		}
		if name == "noop" {
			continue
		}
		mods = append(mods, sgModule{name: name, dir: dir, wasm: f})
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].name < mods[j].name })
	return mods
}

// sgRunner holds one compiled module (plain or instrumented) in its own
// runtime, ready to be instantiated and run.
type sgRunner struct {
	r        wazero.Runtime
	compiled wazero.CompiledModule
	mod      sgModule
	onStart  func()
	onEnd    func()
	// onInstantiate, if set, runs between instantiation and _start.
	onInstantiate func(api.Module)
}

func newSGRunner(tb testing.TB, ctx context.Context, m sgModule, instrumented bool) *sgRunner {
	wasm, err := os.ReadFile(m.wasm)
	if err != nil {
		tb.Fatal(err)
	}
	s := &sgRunner{mod: m, onStart: func() {}, onEnd: func() {}}
	cfg := wazero.NewRuntimeConfigCompiler()
	if instrumented {
		wasm = mustInstrument(tb, wasm, Config{})
		// The host check simply refills the counter with a large slice.
		s.r = newMeteredRuntime(tb, ctx, cfg, &meter{refill: 1 << 40})

	} else {
		s.r = wazero.NewRuntimeWithConfig(ctx, cfg)
	}
	wasi_snapshot_preview1.MustInstantiate(ctx, s.r)
	_, err = s.r.NewHostModuleBuilder("bench").
		NewFunctionBuilder().WithFunc(func(context.Context, api.Module) { s.onStart() }).Export("start").
		NewFunctionBuilder().WithFunc(func(context.Context, api.Module) { s.onEnd() }).Export("end").
		Instantiate(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	s.compiled, err = s.r.CompileModule(ctx, wasm)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func (s *sgRunner) run(ctx context.Context, stdout, stderr io.Writer) error {
	cfg := wazero.NewModuleConfig().WithName("").WithStdout(stdout).WithStderr(stderr).
		WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(s.mod.dir, "/")).
		WithStartFunctions()
	mod, err := s.r.InstantiateModule(ctx, s.compiled, cfg)
	if err != nil {
		return err
	}
	defer mod.Close(ctx)
	if s.onInstantiate != nil {
		s.onInstantiate(mod)
	}
	_, err = mod.ExportedFunction("_start").Call(ctx)
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 0 {
		err = nil
	}
	return err
}

// expected returns the module's expected stdout, if the corpus has one.
func (m sgModule) expected() (string, bool) {
	name := "benchmark"
	if filepath.Base(m.dir) == "shootout" {
		name = m.name
	}
	b, err := os.ReadFile(filepath.Join(m.dir, name+".stdout.expected"))
	return string(b), err == nil
}

// BenchmarkSightglass measures the runtime overhead of instrumentation:
// each corpus module runs plain and instrumented on wazero's compiler in the
// same process; the timed window is the guest's bench.start..bench.end. Both
// runners are warmed by one untimed run, which also checks stdout.
//
// Compare with: benchstat -col /mode <output>
func BenchmarkSightglass(b *testing.B) {
	ctx := context.Background()
	// One runner per module and mode, compiled and warmed once and reused
	// by every b.N trial of its sub-benchmark.
	runners := map[string]*sgRunner{}
	defer func() {
		for _, s := range runners {
			s.r.Close(ctx)
		}
	}()
	for _, m := range sightglassModules(b) {
		modes := []string{"plain", "instrumented"}
		if os.Getenv("WASMSCHED_VARIANT") != "" {
			modes = append(modes, "variant")
		}
		for _, mode := range modes {
			b.Run("module="+m.name+"/mode="+mode, func(b *testing.B) {
				s := runners[m.name+"/"+mode]
				if s == nil {
					saved := defaultKnobs
					if mode == "variant" {
						v := os.Getenv("WASMSCHED_VARIANT")
						defaultKnobs.checkEvery = strings.Contains(v, "checkEvery")
						defaultKnobs.reloadCheck = strings.Contains(v, "reloadCheck")
						defaultKnobs.allEntries = strings.Contains(v, "allEntries")
					}
					s = newSGRunner(b, ctx, m, mode != "plain")
					defaultKnobs = saved
					runners[m.name+"/"+mode] = s
					var out bytes.Buffer
					if err := s.run(ctx, &out, io.Discard); err != nil {
						b.Fatal(err)
					}
					if want, ok := m.expected(); ok && out.String() != want {
						b.Fatalf("stdout differs from %s.stdout.expected:\n%s", m.name, out.String())
					}
				}
				s.onStart = b.StartTimer
				s.onEnd = b.StopTimer
				b.ResetTimer()
				b.StopTimer()
				for i := 0; i < b.N; i++ {
					if err := s.run(ctx, io.Discard, io.Discard); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
