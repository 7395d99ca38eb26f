package wasmtask_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// The runtime overhead of preemptibility on real programs (issue 12):
// Wasmtime's sightglass benchmarks run plain on wazero, and as wasmtask
// guests with the fuel and the epoch interrupt. The corpus lives on
// development machines only (../shared/corpus/sightglass, never committed;
// override with WASMSCHED_SIGHTGLASS): everything here skips without it.
//
// The instrument package's BenchmarkSightglass measures instrumentation
// alone (an instrumented module on a bare wazero runtime); this one measures
// what an embedder pays: instrumentation plus wasmtask's check, its policy
// and the scheduler's yields, against plain wazero.

// sgModes are the modes each module runs in; plain first (the ratios'
// base).
var sgModes = [...]string{"plain", "fuel", "epoch"}

// sgPollIntervalEnv, when set, is EngineConfig.PollInterval of the epoch
// mode's engine: the knob for tuning the epoch poll against this benchmark.
const sgPollIntervalEnv = "WASMSCHED_POLL_INTERVAL"

// sgRoot returns the corpus directory, or skips tb when it is absent.
func sgRoot(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("WASMSCHED_SIGHTGLASS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "corpus", "sightglass")
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		tb.Skipf("sightglass corpus absent (%s): runtime-overhead benchmark skipped", dir)
	}
	return abs
}

// sgModule is one corpus program: NAME is its directory's name for
// DIR/benchmark.wasm, or the file's base name (shootout/shootout-*.wasm).
type sgModule struct {
	name, dir, wasm string
}

// sgModules lists the corpus modules, sorted by name. All are kept, even
// those a ratio says little about:
//
//   - Short windows. noop's is empty, and a few shootout programs run for
//     well under a millisecond, where the clock's and the harness's noise
//     is large against the window. The report
//     (scripts/sightglass-overhead.sh) shows every module's ratios but
//     takes the geometric means only over modules whose plain median
//     window is at least 1 ms, and says so.
//   - Nondeterminism. hashset ships no expected output: it prints its own
//     elapsed time, and it reads random_get (fresh random bytes in every
//     mode). Its amount of work does not depend on either, so the report
//     keeps it in the means, like Wasmtime's; the benchmark cannot check
//     its stdout, and TestSightglassOverheadRuns compares its modes'
//     stdouts with the numbers masked (comparable).
func sgModules(tb testing.TB) []sgModule {
	root := sgRoot(tb)
	files, _ := filepath.Glob(filepath.Join(root, "*", "*.wasm"))
	var mods []sgModule
	for _, f := range files {
		dir := filepath.Dir(f)
		name := filepath.Base(dir)
		if base := strings.TrimSuffix(filepath.Base(f), ".wasm"); base != "benchmark" {
			name = base
		}
		mods = append(mods, sgModule{name: name, dir: dir, wasm: f})
	}
	if len(mods) == 0 {
		tb.Skipf("sightglass corpus %s holds no modules", root)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].name < mods[j].name })
	return mods
}

// expected returns the module's expected stdout, if the corpus has one.
func (m sgModule) expected() (string, bool) {
	base := "benchmark"
	if filepath.Base(m.dir) == "shootout" {
		base = m.name
	}
	b, err := os.ReadFile(filepath.Join(m.dir, base+".stdout.expected"))
	return string(b), err == nil
}

// digits matches the numbers of a stdout, for comparable.
var digits = regexp.MustCompile(`[0-9]+`)

// comparable is what of a run's stdout must agree between runs: all of it
// when the corpus has the expected output; without one (hashset, which
// prints its own elapsed time), its text with every number masked.
func (m sgModule) comparable(stdout string) string {
	if _, ok := m.expected(); ok {
		return stdout
	}
	return digits.ReplaceAllString(stdout, "N")
}

// fsConfig is what each mode gives the guest: the module's own directory,
// read-only, preopened as "/" (its working directory), where the programs
// that read input find default.input and the like. argv and env stay
// empty, as in sightglass's own harness.
func (m sgModule) fsConfig() wazero.FSConfig {
	return wazero.NewFSConfig().WithReadOnlyDirMount(m.dir, "/")
}

// sgWindow records one run's bench.start..bench.end. The host functions
// find it in the call's context (both wazero and wasmtask pass the run's
// context to host functions), so one host module serves every run.
type sgWindow struct {
	starts, ends int
	t0           time.Time
	d            time.Duration
	// wasmtask is set when the host functions must run inside a wasmtask
	// guest (fuel and epoch modes); notGuest records a call that did not.
	wasmtask, notGuest bool
}

type sgWindowKey struct{}

// sgBenchHost defines the harness's bench module: start and end, no
// parameters or results. The clock is read last in start and first in
// end, so the window holds the guest's work and two host-call transitions,
// as in sightglass.
func sgBenchHost(b wazero.HostModuleBuilder) wazero.HostModuleBuilder {
	start := func(ctx context.Context, mod api.Module) {
		w, _ := ctx.Value(sgWindowKey{}).(*sgWindow)
		if w == nil {
			return
		}
		if w.wasmtask {
			if _, ok := wasmtask.HostCallFrom(ctx, mod); !ok {
				w.notGuest = true
			}
		}
		w.starts++
		w.t0 = time.Now()
	}
	end := func(ctx context.Context, _ api.Module) {
		t := time.Now()
		w, _ := ctx.Value(sgWindowKey{}).(*sgWindow)
		if w == nil {
			return
		}
		w.ends++
		w.d = t.Sub(w.t0)
	}
	return b.NewFunctionBuilder().WithFunc(start).Export("start").
		NewFunctionBuilder().WithFunc(end).Export("end")
}

// sgRun is one run's outcome.
type sgRun struct {
	window time.Duration
	stats  wasmtask.GuestStats // zero in plain mode
}

// sgRunner runs one module in one mode, compiled once.
type sgRunner interface {
	run(ctx context.Context, stdout io.Writer) (sgRun, error)
	close(ctx context.Context)
}

// checkWindow turns a run's window record into its outcome: the harness
// calls start and end exactly once each.
func checkWindow(w *sgWindow, err error) (time.Duration, error) {
	switch {
	case err != nil:
		return 0, err
	case w.starts != 1 || w.ends != 1:
		return 0, fmt.Errorf("bench.start called %d times, bench.end %d times; want 1 and 1", w.starts, w.ends)
	case w.notGuest:
		return 0, errors.New("bench.start ran outside a wasmtask guest (HostCallFrom failed)")
	}
	return w.d, nil
}

// sgPlain is plain wazero: its compiler, WASI preview 1, the bench module.
type sgPlain struct {
	m        sgModule
	r        wazero.Runtime
	compiled wazero.CompiledModule
}

func newSGPlain(ctx context.Context, m sgModule, wasm []byte) (*sgPlain, error) {
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	if _, err := sgBenchHost(r.NewHostModuleBuilder("bench")).Instantiate(ctx); err != nil {
		r.Close(ctx)
		return nil, err
	}
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		r.Close(ctx)
		return nil, err
	}
	return &sgPlain{m: m, r: r, compiled: compiled}, nil
}

func (p *sgPlain) run(ctx context.Context, stdout io.Writer) (sgRun, error) {
	w := &sgWindow{}
	ctx = context.WithValue(ctx, sgWindowKey{}, w)
	// The clocks and random source wasmtask gives its guests (guest.go's
	// moduleConfig), rather than wazero's fakes, so that a module reading
	// them does the same work in every mode.
	cfg := wazero.NewModuleConfig().WithName("").
		WithSysNanotime().WithSysWalltime().WithRandSource(rand.Reader).
		WithStdout(stdout).WithStderr(io.Discard).WithFSConfig(p.m.fsConfig())
	mod, err := p.r.InstantiateModule(ctx, p.compiled, cfg)
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 0 {
		err = nil
	}
	if mod != nil {
		mod.Close(ctx)
	}
	d, err := checkWindow(w, err)
	return sgRun{window: d}, err
}

func (p *sgPlain) close(ctx context.Context) { p.r.Close(ctx) }

// sgEnv is what the fuel and epoch modes share: one 1-worker runtime (the
// guest has its worker to itself, so every yield resumes it at once and
// the window shows the yields' cost, not other tasks' time) and one engine
// per mode, each with the bench module. The engines keep their defaults,
// but for the epoch mode's PollInterval when sgPollIntervalEnv is set.
type sgEnv struct {
	rt   *scheduler.Runtime
	engs map[string]*wasmtask.Engine
}

func newSGEnv(tb testing.TB) *sgEnv {
	tb.Helper()
	ctx := context.Background()
	poll := int64(0)
	if v := os.Getenv(sgPollIntervalEnv); v != "" {
		var err error
		if poll, err = strconv.ParseInt(v, 10, 64); err != nil || poll <= 0 {
			tb.Fatalf("%s=%q: want a positive fuel count", sgPollIntervalEnv, v)
		}
	}
	rt, err := scheduler.New(scheduler.WithWorkers(1))
	if err != nil {
		tb.Fatal(err)
	}
	e := &sgEnv{rt: rt, engs: map[string]*wasmtask.Engine{}}
	tb.Cleanup(func() { e.close() })
	for _, mode := range []string{"fuel", "epoch"} {
		cfg := wasmtask.EngineConfig{
			WazeroHostModules: []wasmtask.WazeroHostModule{{Name: "bench", Define: sgBenchHost}},
		}
		if mode == "epoch" {
			cfg.PollInterval = poll // 0: the default
		}
		eng, err := wasmtask.NewEngine(ctx, cfg)
		if err != nil {
			tb.Fatal(err)
		}
		e.engs[mode] = eng
	}
	return e
}

func (e *sgEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, eng := range e.engs {
		eng.Close(ctx)
	}
	e.rt.Shutdown(ctx)
}

// newRunner compiles m for mode.
func (e *sgEnv) newRunner(ctx context.Context, m sgModule, mode string) (sgRunner, error) {
	wasm, err := os.ReadFile(m.wasm)
	if err != nil {
		return nil, err
	}
	if mode == "plain" {
		return newSGPlain(ctx, m, wasm)
	}
	mod, err := e.engs[mode].Compile(ctx, wasm)
	if err != nil {
		return nil, err
	}
	interrupt := wasmtask.InterruptEpoch
	if mode == "fuel" {
		interrupt = wasmtask.InterruptFuel
	}
	// Policy, FuelSlice and EpochDeadline stay zero: production's defaults
	// (deferred yields every 10,000,000 fuel or every epoch).
	opts := wasmtask.Options{Name: m.name, FS: m.fsConfig(), Stderr: io.Discard, Interrupt: interrupt}
	return &sgTask{rt: e.rt, mod: mod, opts: opts}, nil
}

// sgTask runs the module as a wasmtask guest.
type sgTask struct {
	rt   *scheduler.Runtime
	mod  *wasmtask.Module
	opts wasmtask.Options
}

func (t *sgTask) run(ctx context.Context, stdout io.Writer) (sgRun, error) {
	w := &sgWindow{wasmtask: true}
	opts := t.opts
	opts.Stdout = stdout
	res, err := wasmtask.Spawn(context.WithValue(ctx, sgWindowKey{}, w), t.rt, t.mod, opts).Wait(ctx)
	d, err := checkWindow(w, err)
	return sgRun{window: d, stats: res.Stats}, err
}

func (t *sgTask) close(ctx context.Context) { t.mod.Close(ctx) }

// warm makes r's first, untimed run (compiled code paged in, the Go heap
// grown to the module's needs) and checks its stdout against the
// module's expected output, when there is one. It returns the stdout.
func (m sgModule) warm(ctx context.Context, r sgRunner) (string, error) {
	var out bytes.Buffer
	if _, err := r.run(ctx, &out); err != nil {
		return "", err
	}
	if want, ok := m.expected(); ok && out.String() != want {
		return "", fmt.Errorf("stdout differs from the expected output:\n%.1000s", out.String())
	}
	return out.String(), nil
}

// timedRun makes one measured run, its stdout discarded, with the garbage
// collector off: a collection during the window would land on whichever
// run happened to cross the heap goal, and mostly on plain's (its linear
// memory is Go heap, a wasmtask guest's is mmapped), noise unrelated to
// the interrupt. The corpus's programs allocate a few tens of MB at most.
func timedRun(ctx context.Context, r sgRunner) (sgRun, error) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	return r.run(ctx, io.Discard)
}

// BenchmarkSightglassOverhead measures what preemptibility costs real
// programs: each sightglass module runs plain on wazero (plain), and as a
// wasmtask guest with the fuel interrupt (fuel) and with the epoch
// interrupt (epoch), each guest on a 1-worker runtime with the engine's
// and the policy's defaults, so it is preempted (yields) as in
// production.
//
// Each iteration runs the module in the three modes back to back, in an
// order that rotates with the iteration, and the ratios are paired: a
// mode's window over plain's in the same iteration. This host's speed
// moves on its own, for seconds to minutes, by up to 2x for memory-bound
// programs (plain wazero included); runs of one mode after another would
// put such a change between the modes, runs a few seconds apart put it on
// both sides of one ratio.
//
// The measure is the window: the guest's own timed span, bench.start to
// bench.end, read with the monotonic clock in the bench host functions.
// Metrics: MODE-ns/window, the mean window per mode; fuel/plain and
// epoch/plain, the geometric mean over the iterations of the paired
// ratios; MODE-yields/op, the guest's policy yields (it was preempted as
// in production), MODE-checks/op, its host checks, and
// MODE-suspended-ns/op, the time it spent suspended (part of the window: a
// window far longer than usual with little time suspended was the process
// kept off the CPU, not the scheduler). ns/op stays the whole iteration
// (instantiation, _start, close, three times), so that -benchtime sizes b.N
// by what a run really costs. Each run starts after a runtime.GC (outside
// the window) and runs with the collector off (timedRun).
//
// plain is wazero as an embedder gets it, with its default linear memory:
// a Go slice that memory.grow reallocates and copies. A wasmtask guest's
// memory is mmapped and grows in place (memory.go), so for the programs
// that grow their memory a lot the ratios hold that saving too, next to
// the interrupt's cost, and may fall below 1.
//
// Each mode is compiled and run once untimed before it is measured; that
// run's stdout is checked against NAME.stdout.expected where the corpus
// has one, so the three modes are shown to compute the same thing.
// WASMSCHED_POLL_INTERVAL, when set, is the epoch engine's PollInterval.
//
// The table: scripts/sightglass-overhead.sh.
func BenchmarkSightglassOverhead(b *testing.B) {
	ctx := context.Background()
	mods := sgModules(b)
	env := newSGEnv(b)
	for _, m := range mods {
		var runners []sgRunner // indexed like sgModes; made on the first call
		b.Run("module="+m.name, func(b *testing.B) {
			// The function runs once per b.N tried: set up on the first.
			if runners == nil {
				for _, mode := range sgModes {
					r, err := env.newRunner(ctx, m, mode)
					if err != nil {
						b.Fatal(err)
					}
					runners = append(runners, r)
					if _, err := m.warm(ctx, r); err != nil {
						b.Fatalf("%s, %s: warm-up run: %v", m.name, mode, err)
					}
				}
			}
			var window, suspended [len(sgModes)]time.Duration
			var yields, checks, skipped [len(sgModes)]int64
			var logRatio [len(sgModes)]float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var w [len(sgModes)]time.Duration
				for k := range sgModes {
					j := (i + k) % len(sgModes)
					b.StopTimer()
					runtime.GC()
					b.StartTimer()
					res, err := timedRun(ctx, runners[j])
					if err != nil {
						b.Fatal(err)
					}
					w[j] = max(res.window, 1)
					yields[j] += res.stats.Yields()
					checks[j] += res.stats.Checks
					skipped[j] += res.stats.SkippedChecks
					suspended[j] += res.stats.Suspended
				}
				for j := range sgModes {
					window[j] += w[j]
					logRatio[j] += math.Log(float64(w[j]) / float64(w[0]))
				}
			}
			n := float64(b.N)
			for j, mode := range sgModes {
				b.ReportMetric(float64(window[j].Nanoseconds())/n, mode+"-ns/window")
				if j == 0 {
					continue
				}
				b.ReportMetric(math.Exp(logRatio[j]/n), mode+"/plain")
				b.ReportMetric(float64(yields[j])/n, mode+"-yields/op")
				b.ReportMetric(float64(checks[j])/n, mode+"-checks/op")
				b.ReportMetric(float64(skipped[j])/n, mode+"-skipped/op")
				b.ReportMetric(float64(suspended[j].Nanoseconds())/n, mode+"-suspended-ns/op")
			}
		})
		// Release the module's compiled code before the next module's.
		for _, r := range runners {
			r.close(ctx)
		}
	}
}

// sgLongModules are the corpus modules whose single run takes about half a
// second or more on wazero here (seconds for ed25519 and seqhash): running
// them three times each would add over a minute to go test ./wasmtask/.
// TestSightglassOverheadRuns leaves them to the benchmark, whose warm-up
// runs check them the same way:
//
//	go test -run '^$' -bench SightglassOverhead -benchtime 1x ./wasmtask/
var sgLongModules = map[string]bool{
	"shootout-ctype": true, "shootout-ed25519": true, "shootout-fib2": true,
	"shootout-heapsort": true, "shootout-matrix": true, "shootout-minicsv": true,
	"shootout-seqhash": true, "shootout-sieve": true,
}

// TestSightglassOverheadRuns runs each sightglass module but the long ones
// (sgLongModules) once in each of the benchmark's modes, on the
// benchmark's own setup, and checks that the three stdouts agree and match
// the expected output where the corpus has one.
func TestSightglassOverheadRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("sightglass runs skipped in -short mode")
	}
	ctx := context.Background()
	mods := sgModules(t)
	env := newSGEnv(t)
	ran := 0
	for _, m := range mods {
		if sgLongModules[m.name] {
			continue
		}
		ran++
		t.Run(m.name, func(t *testing.T) {
			outs := map[string]string{}
			for _, mode := range sgModes {
				r, err := env.newRunner(ctx, m, mode)
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				out, err := m.warm(ctx, r)
				r.close(ctx)
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				outs[mode] = out
			}
			for _, mode := range sgModes[1:] {
				if m.comparable(outs[mode]) != m.comparable(outs["plain"]) {
					t.Errorf("stdout of %s differs from plain's:\n%s: %.500q\nplain: %.500q", mode, mode, outs[mode], outs["plain"])
				}
			}
		})
	}
	if ran == 0 {
		t.Skip("only long modules in the corpus: see sgLongModules")
	}
}
