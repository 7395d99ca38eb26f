package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmsched/wasmsched"
	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
	"github.com/wasmsched/wasmsched/wasmtask/instrument"
)

// The hostile suite: each module of testdata/hostile is an attack on the
// host (its source and what it does are beside it). Every attack runs
// through the library and through serve, in this process, and must leave
// the process alive, let a well-behaved job beside it complete, end with
// its own specific error, and keep the process's peak memory within the
// configured budget plus a fixed allowance.

// Limits the attacks meet: the same kinds as serve's defaults, smaller.
const (
	hostileGuestMemory = 64 << 20
	hostileBudget      = 128 << 20
	// hostileAllowance is what the process may grow by beyond the memory
	// budget during one attack: wazero's own structures for a guest (its
	// call stack grows to wazero's fixed ceiling in deep recursion, its
	// tables, the compiled code of a large module) and the test's own
	// allocations.
	hostileAllowance = 256 << 20
)

// outcome is what an attack must end with.
type outcome struct {
	compile error  // Engine.Compile's error kind (nil: it compiles)
	run     error  // the guest's error kind (nil: it succeeds)
	says    string // text the error must contain
	// serve: the answer to the submission, then the job's end
	code   int
	status string
	kind   string
	// name: what the instrumenter must have done with the name section
	name instrument.NameStatus
}

type attack struct {
	file   string
	export string   // "" runs the WASI _start
	args   []uint64 // of export
	query  string   // serve's query (export, args, timeout...)
	opts   func(*wasmtask.Options)
	// stop: the attack never ends by itself; the library aborts it once
	// the well-behaved guest has completed (an ordering, not a delay)
	stop bool
	want outcome
}

func hostileAttacks() []attack {
	aborted := outcome{run: scheduler.ErrAborted, code: 202, status: "failed", kind: "timeout"}
	return []attack{
		// A name section that does not parse is dropped (names mean nothing
		// to execution): the module runs. One whose section overruns the
		// module is malformed.
		{file: "namebomb-locals.wasm", want: outcome{compile: wasmtask.ErrInvalidModule, says: "custom section", code: 400}},
		{file: "namebomb-funcs.wasm", want: outcome{code: 202, status: "done", name: instrument.NameDropped}},
		{file: "locals-bomb.wasm", want: outcome{compile: wasmtask.ErrInvalidModule, says: "Locals", code: 400}},
		{file: "data-bomb.wasm", want: outcome{compile: wasmtask.ErrInvalidModule, code: 400}},
		{file: "mem-4gib-min.wasm", want: outcome{run: wasmtask.ErrMemoryLimit, says: "minimum memory of 65536 pages refused", code: 400}},
		{file: "grow-huge.wasm", want: outcome{run: wasmtask.ErrMemoryLimit, says: "memory.grow to 65536 pages refused", code: 202, status: "failed", kind: "memory_limit"}},
		{file: "grow-loop.wasm", want: outcome{run: wasmtask.ErrMemoryLimit, says: "memory.grow to 1025 pages refused", code: 202, status: "failed", kind: "memory_limit"}},
		{file: "deep-recursion.wasm", want: outcome{run: wasmtask.ErrTrap, says: "stack overflow", code: 202, status: "failed", kind: "trap"}},
		{file: "start-loop.wasm", stop: true, query: "timeout=300ms", want: aborted},
		{file: "start-loop.wasm", opts: func(o *wasmtask.Options) { o.FuelBudget = 50_000_000 }, query: "fuel=50000000",
			want: outcome{run: wasmtask.ErrOutOfFuel, code: 202, status: "failed", kind: "out_of_fuel"}},
		{file: "spin-forever.wasm", stop: true, query: "timeout=300ms", want: aborted},
		{file: "sleep-forever.wasm", stop: true, query: "timeout=300ms", want: aborted},
		{file: "table-million.wasm", want: outcome{compile: wasmtask.ErrInvalidModule, says: "TableInitial", code: 400}},
		{file: "table-grow.wasm", want: outcome{code: 202, status: "done"}},
		{file: "data-outside.wasm", want: outcome{run: wasmtask.ErrTrap, says: "out of bounds", code: 202, status: "failed", kind: "trap"}},
		{file: "funcs-100k.wasm", export: "f", args: []uint64{7}, query: "export=f&args=7", want: outcome{code: 202, status: "done"}},
		{file: "wasi-garbage.wasm", want: outcome{code: 202, status: "done"}},
	}
}

func hostileModule(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "hostile", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (a attack) name() string {
	n := strings.TrimSuffix(a.file, ".wasm")
	if a.query != "" {
		n += "?" + a.query
	}
	return n
}

// TestHostileLibrary runs every attack through the library: an engine and
// runtime configured like serve's, a well-behaved guest beside each attack.
func TestHostileLibrary(t *testing.T) {
	ctx := context.Background()
	for _, a := range hostileAttacks() {
		t.Run(a.name(), func(t *testing.T) {
			rt, err := scheduler.New(scheduler.WithWorkers(2))
			if err != nil {
				t.Fatal(err)
			}
			eng, err := wasmtask.NewEngine(ctx, hostileEngineConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				if err := rt.Shutdown(sctx); err != nil {
					t.Errorf("shutdown: %v", err)
				}
				eng.Close(ctx)
			}()
			good := wellBehaved(t, ctx, eng)
			peak := startPeakRSS(t)
			mod, err := eng.Compile(ctx, hostileModule(t, a.file))
			if a.want.compile != nil {
				wantKind(t, "Compile", err, a.want.compile, a.want.says)
				checkPeak(t, peak)
				return
			}
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if a.want.name != 0 && mod.Report().Name != a.want.name {
				t.Fatalf("name section %v, want %v", mod.Report().Name, a.want.name)
			}
			opts := wasmtask.Options{Name: a.file, Export: a.export, Args: a.args, Policy: wasmtask.DeferredYield()}
			if a.opts != nil {
				a.opts(&opts)
			}
			h := wasmtask.Spawn(context.Background(), rt, mod, opts)
			// The well-behaved guest completes beside the attack.
			r, err := waitHandle(t, wasmtask.Spawn(context.Background(), rt, good, wasmtask.Options{Export: "spin", Args: []uint64{2_000_000}}))
			if err != nil || r.Values[0] != spinRef(2_000_000) {
				t.Fatalf("well-behaved guest beside %s: %v %v", a.file, r.Values, err)
			}
			if a.stop {
				h.Abort()
			}
			_, err = waitHandle(t, h)
			wantKind(t, "run", err, a.want.run, a.want.says)
			checkPeak(t, peak)
			if s := eng.Stats(); s.MemoryInUse != 0 {
				t.Fatalf("%d bytes of guest memory still counted after the guests ended", s.MemoryInUse)
			}
		})
	}
}

func hostileEngineConfig() wasmtask.EngineConfig {
	return wasmtask.EngineConfig{GuestMemoryLimit: hostileGuestMemory, MemoryBudget: hostileBudget,
		Limits: wasmtask.Limits{Module: instrument.Limits{TableInitial: 100_000, TableMaximum: 100_000}}}
}

func wellBehaved(t *testing.T, ctx context.Context, eng *wasmtask.Engine) *wasmtask.Module {
	t.Helper()
	b, err := wasmsched.Guest("spin")
	if err != nil {
		t.Fatal(err)
	}
	m, err := eng.Compile(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func waitHandle(t *testing.T, h *scheduler.JoinHandle[wasmtask.Result]) (wasmtask.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := h.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("guest did not end within a minute")
	}
	return r, err
}

func wantKind(t *testing.T, what string, err, kind error, says string) {
	t.Helper()
	if kind == nil {
		var exit *sys.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("%s: the guest exited with %d", what, exit.ExitCode())
		}
		if err != nil {
			t.Fatalf("%s: %v, want success", what, err)
		}
		return
	}
	if !errors.Is(err, kind) || !strings.Contains(fmt.Sprint(err), says) {
		t.Fatalf("%s: %v, want %v saying %q", what, err, kind, says)
	}
}

// startPeakRSS resets the kernel's record of the process's peak resident
// set (Linux: /proc/self/clear_refs) and returns the resident set now; 0
// where that is not available or meaningful (the race detector).
func startPeakRSS(t *testing.T) int64 {
	if runtime.GOOS != "linux" || raceEnabled {
		return 0
	}
	runtime.GC()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Logf("peak RSS not measured: %v", err)
		return 0
	}
	return procStatus(t, "VmRSS")
}

// checkPeak: the process's peak resident set since startPeakRSS stayed
// within the memory budget plus the allowance.
func checkPeak(t *testing.T, before int64) {
	t.Helper()
	if before == 0 {
		return
	}
	peak := procStatus(t, "VmHWM")
	t.Logf("peak RSS %+d MiB", (peak-before)>>20)
	if grew := peak - before; grew > hostileBudget+hostileAllowance {
		t.Fatalf("peak RSS grew by %d MiB, beyond the budget %d MiB + allowance %d MiB", grew>>20, hostileBudget>>20, hostileAllowance>>20)
	}
}

func procStatus(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestHostileServe submits every attack to serve: the answer and the
// job's end are the attack's own, a well-behaved job completes beside it,
// and the process survives within its memory budget.
func TestHostileServe(t *testing.T) {
	_, hs := testServer(t, serveConfig{guestMemory: hostileGuestMemory, memoryBudget: hostileBudget, maxBody: 2 << 20,
		maxTable: 100_000, maxJobs: 8})
	for _, a := range hostileAttacks() {
		t.Run(a.name(), func(t *testing.T) {
			peak := startPeakRSS(t)
			code, m, raw := do(t, "POST", hs.URL+"/jobs?"+a.query, hostileModule(t, a.file))
			if code != a.want.code {
				t.Fatalf("POST: %d %s, want %d", code, raw, a.want.code)
			}
			if code != http.StatusAccepted {
				if a.want.says != "" && !strings.Contains(raw, a.want.says) {
					t.Fatalf("POST answered %d %s, want it to say %q", code, raw, a.want.says)
				}
				checkPeak(t, peak)
				return
			}
			good := postOK(t, hs.URL+"/jobs?guest=spin&export=spin&args=2000000", nil)
			if got := waitJob(t, hs.URL, good); got["status"] != "done" {
				t.Fatalf("well-behaved job beside %s: %v", a.file, got)
			}
			got := waitJob(t, hs.URL, fmt.Sprint(m["id"]))
			if got["status"] != a.want.status || fmt.Sprint(got["error_kind"]) != a.want.kind && a.want.kind != "" {
				t.Fatalf("job ended %v, want status %q kind %q", got, a.want.status, a.want.kind)
			}
			checkPeak(t, peak)
		})
	}
}
