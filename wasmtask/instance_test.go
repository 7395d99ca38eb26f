package wasmtask

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmsched/wasmsched/scheduler"
)

// reactorEnv is a runtime and engine with the host functions
// testdata/reactor.wat imports: add_async (never completes when its first
// argument is 999), and mark, which records the guest's FuelConsumed.
type reactorEnv struct {
	rt  *scheduler.Runtime
	eng *Engine
	mod *Module

	mu      sync.Mutex
	marks   []int64
	gate    chan struct{}       // add_async(777, x) waits for it to close
	waiting map[api.Memory]bool // the instances (by memory) waiting at the gate
}

func newReactorEnv(t *testing.T, workers int, ecfg EngineConfig) *reactorEnv {
	t.Helper()
	re := &reactorEnv{gate: make(chan struct{}), waiting: map[api.Memory]bool{}}
	i64 := api.ValueTypeI64
	ecfg.HostModules = []HostModule{{Name: "test", Functions: []HostFunction{
		{Name: "add_async", Params: []api.ValueType{i64, i64}, Results: []api.ValueType{i64},
			Fn: func(hc *HostCall, p []uint64) ([]uint64, error) {
				return hc.Await(func(done func([]uint64, error)) {
					switch p[0] {
					case 999:
						return // never completes: only cancellation ends the wait
					case 777:
						re.mu.Lock()
						re.waiting[hc.Memory()] = true
						re.mu.Unlock()
						go func() { <-re.gate; done([]uint64{777 + p[1]}, nil) }()
						return
					}
					go done([]uint64{p[0] + p[1]}, nil)
				})
			}},
		{Name: "mark", Fn: func(hc *HostCall, _ []uint64) ([]uint64, error) {
			re.mu.Lock()
			re.marks = append(re.marks, hc.FuelConsumed())
			re.mu.Unlock()
			return nil, nil
		}},
	}}}
	e := newEnv(t, "", ecfg, scheduler.WithWorkers(workers))
	re.rt, re.eng = e.rt, e.eng
	var err error
	if re.mod, err = re.eng.Compile(context.Background(), readTestdata(t, "reactor.wasm")); err != nil {
		t.Fatal(err)
	}
	return re
}

func (re *reactorEnv) takeMarks() []int64 {
	re.mu.Lock()
	defer re.mu.Unlock()
	m := re.marks
	re.marks = nil
	return m
}

func (re *reactorEnv) instance(t *testing.T, opts Options) *Instance {
	t.Helper()
	inst, err := NewInstance(context.Background(), re.rt, re.mod, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := inst.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return inst
}

func callValue(t *testing.T, inst *Instance, export string, args ...uint64) uint64 {
	t.Helper()
	r, err := inst.Call(context.Background(), export, args...)
	if err != nil {
		t.Fatalf("%s: %v", export, err)
	}
	return r.Values[0]
}

// TestInstanceStatePersists: _initialize runs exactly once, before the
// first call; globals persist from call to call; each call has its own
// stats.
func TestInstanceStatePersists(t *testing.T) {
	re := newReactorEnv(t, 2, EngineConfig{})
	if re.mod.Kind() != KindReactor {
		t.Fatalf("kind %v, want reactor", re.mod.Kind())
	}
	inst := re.instance(t, Options{Name: "plugin"})
	var fuel []int64
	for want := uint64(101); want <= 105; want++ {
		r, err := inst.Call(context.Background(), "next")
		if err != nil {
			t.Fatal(err)
		}
		if r.Values[0] != want {
			t.Fatalf("next = %d, want %d (state lost between calls?)", r.Values[0], want)
		}
		fuel = append(fuel, r.Stats.FuelUsed)
	}
	if got := callValue(t, inst, "inits"); got != 1 {
		t.Fatalf("_initialize ran %d times, want 1", got)
	}
	// The same call costs the same fuel each time: stats are per call.
	for _, f := range fuel {
		if f != fuel[0] || f <= 0 {
			t.Fatalf("fuel per call %v: want equal, positive", fuel)
		}
	}
	// A second instance has its own state.
	other := re.instance(t, Options{})
	if got := callValue(t, other, "next"); got != 101 {
		t.Fatalf("second instance: next = %d, want 101", got)
	}
}

// TestReactorOneShot: Spawn initializes a reactor before calling its
// export, and refuses a reactor without an export; a WASI command's
// exports are refused unless allowed.
func TestReactorOneShot(t *testing.T) {
	re := newReactorEnv(t, 1, EngineConfig{})
	r, err := waitGuest(t, Spawn(context.Background(), re.rt, re.mod, Options{Export: "next"}))
	if err != nil || r.Values[0] != 101 {
		t.Fatalf("one-shot next = %v, %v; want 101 (initialized first)", r.Values, err)
	}
	if _, err := waitGuest(t, Spawn(context.Background(), re.rt, re.mod, Options{})); !errors.Is(err, ErrUsage) {
		t.Fatalf("reactor without export: %v, want ErrUsage", err)
	}
	if _, err := waitGuest(t, Spawn(context.Background(), re.rt, re.mod, Options{Export: "_initialize"})); !errors.Is(err, ErrUsage) {
		t.Fatalf("calling _initialize: %v, want ErrUsage", err)
	}
	cmd, err := re.eng.Compile(context.Background(), readGuest(t, "goguest.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Kind() != KindCommand {
		t.Fatalf("goguest kind %v, want command", cmd.Kind())
	}
	if _, err := NewInstance(context.Background(), re.rt, cmd, Options{}); !errors.Is(err, ErrUsage) {
		t.Fatalf("instance of a command: %v, want ErrUsage", err)
	}
	if err := cmd.CheckCall(Options{Export: "anything"}); !errors.Is(err, ErrUsage) {
		t.Fatalf("export of a command: %v, want ErrUsage", err)
	}
}

// TestInstanceCallPreempted: on one worker, a call that never returns is
// preempted, and a task spawned after it runs to completion meanwhile;
// cancelling the call's context then stops it.
func TestInstanceCallPreempted(t *testing.T) {
	re := newReactorEnv(t, 1, EngineConfig{})
	inst := re.instance(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := inst.Call(ctx, "forever")
		done <- err
	}()
	// Wait until the call is running, then run another guest beside it.
	for re.eng.Stats().Running == 0 {
		time.Sleep(time.Millisecond)
	}
	r, err := waitGuest(t, Spawn(context.Background(), re.rt, re.mod, Options{Export: "spin", Args: []uint64{100_000}}))
	if err != nil || r.Values[0] != spinRef(100_000) {
		t.Fatalf("task beside the long call: %v %v", r.Values, err)
	}
	select {
	case err := <-done:
		t.Fatalf("the endless call ended before its cancellation: %v", err)
	default:
	}
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) || !errors.Is(err, scheduler.ErrAborted) {
		t.Fatalf("cancelled call: %v, want ErrAborted wrapping context.Canceled", err)
	}
}

// TestInstanceCancelPoisonsAndReset: a call cancelled while running or
// while suspended in a host function returns the context's error and
// poisons the instance; a call refused before it runs does not; Reset
// starts afresh.
func TestInstanceCancelPoisonsAndReset(t *testing.T) {
	re := newReactorEnv(t, 2, EngineConfig{})
	inst := re.instance(t, Options{})
	callValue(t, inst, "next") // 101

	// A context that has already ended: refused, no poisoning.
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := inst.Call(ended, "next"); !errors.Is(err, context.Canceled) {
		t.Fatalf("call with an ended context: %v", err)
	}
	if inst.Poisoned() != nil {
		t.Fatalf("poisoned by a call that never ran: %v", inst.Poisoned())
	}
	// Usage errors do not poison either.
	if _, err := inst.Call(context.Background(), "nope"); !errors.Is(err, ErrUsage) {
		t.Fatalf("no such export: %v", err)
	}
	if _, err := inst.Call(context.Background(), "spin"); !errors.Is(err, ErrUsage) {
		t.Fatalf("wrong arg count: %v", err)
	}
	if got := callValue(t, inst, "next"); got != 102 {
		t.Fatalf("next = %d, want 102", got)
	}

	for _, tc := range []struct {
		name   string
		export string
		args   []uint64
		ctx    func() (context.Context, context.CancelFunc)
		want   error
	}{
		{"running, cancelled", "forever", nil, cancelSoon, context.Canceled},
		{"suspended, cancelled", "async_add", []uint64{999, 1}, cancelSoon, context.Canceled},
		{"running, deadline", "forever", nil, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, context.DeadlineExceeded},
	} {
		ctx, cancel := tc.ctx()
		_, err := inst.Call(ctx, tc.export, tc.args...)
		cancel()
		if !errors.Is(err, tc.want) || !errors.Is(err, scheduler.ErrAborted) {
			t.Fatalf("%s: %v, want ErrAborted wrapping %v", tc.name, err, tc.want)
		}
		if inst.Poisoned() == nil {
			t.Fatalf("%s: not poisoned", tc.name)
		}
		if _, err := inst.Call(context.Background(), "next"); !errors.Is(err, ErrPoisoned) || !errors.Is(err, ErrUsage) {
			t.Fatalf("%s: call on a poisoned instance: %v", tc.name, err)
		}
		if err := inst.Reset(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := callValue(t, inst, "next"); got != 101 {
			t.Fatalf("%s: after Reset next = %d, want 101 (fresh state)", tc.name, got)
		}
		if got := callValue(t, inst, "inits"); got != 1 {
			t.Fatalf("%s: after Reset inits = %d, want 1", tc.name, got)
		}
	}
	if st := re.eng.Stats(); st.Suspended != 0 {
		t.Fatalf("%d guests still counted suspended", st.Suspended)
	}
}

// cancelSoon is a context cancelled shortly after the call starts.
func cancelSoon() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	return ctx, cancel
}

// TestInstanceTrapPoisons: a trapping call poisons its instance; Close
// makes later calls fail with ErrUsage.
func TestInstanceTrapPoisons(t *testing.T) {
	re := newReactorEnv(t, 1, EngineConfig{})
	inst := re.instance(t, Options{})
	if _, err := inst.Call(context.Background(), "next_then_trap"); !errors.Is(err, ErrTrap) {
		t.Fatalf("trap: %v", err)
	}
	if !errors.Is(inst.Poisoned(), ErrTrap) {
		t.Fatalf("Poisoned() = %v, want the trap", inst.Poisoned())
	}
	_, err := inst.Call(context.Background(), "next")
	if !errors.Is(err, ErrPoisoned) {
		t.Fatalf("after a trap: %v", err)
	}
	if name, class := FailureKind(err); name != "usage" || class != ClassUsage {
		t.Fatalf("poisoned call classified %s/%v, want usage", name, class)
	}
	if err := inst.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := inst.Call(context.Background(), "next"); !errors.Is(err, ErrUsage) || !errors.Is(err, errInstanceClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := inst.Reset(context.Background()); !errors.Is(err, ErrUsage) {
		t.Fatalf("Reset after Close: %v", err)
	}
}

// TestInstanceCallsSerialized: many goroutines calling one instance at
// once: every call runs alone (the counter's values are each returned
// exactly once; the race detector sees the instance's state), none is lost.
func TestInstanceCallsSerialized(t *testing.T) {
	re := newReactorEnv(t, 2, EngineConfig{})
	inst := re.instance(t, Options{Interrupt: InterruptFuel, FuelSlice: 50})
	const callers, calls = 16, 25
	got := make(chan uint64, callers*calls)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				r, err := inst.Call(context.Background(), "next")
				if err != nil {
					t.Error(err)
					return
				}
				got <- r.Values[0]
			}
		}()
	}
	wg.Wait()
	close(got)
	var vals []uint64
	for v := range got {
		vals = append(vals, v)
	}
	slices.Sort(vals)
	if len(vals) != callers*calls {
		t.Fatalf("%d results, want %d", len(vals), callers*calls)
	}
	for k, v := range vals {
		if v != uint64(101+k) {
			t.Fatalf("value %d is %d, want %d: calls overlapped or were lost", k, v, 101+k)
		}
	}
}

// TestHostCallFuelConsumed: the fuel a host function reads is exact: the
// same work between two host calls reads as the same step, and one more
// step of work costs exactly that step more at return.
func TestHostCallFuelConsumed(t *testing.T) {
	re := newReactorEnv(t, 1, EngineConfig{})
	inst := re.instance(t, Options{})
	used := func(n uint64) (int64, []int64) {
		r, err := inst.Call(context.Background(), "marks", n)
		if err != nil {
			t.Fatal(err)
		}
		return r.Stats.FuelUsed, re.takeMarks()
	}
	f10, m10 := used(10)
	f11, m11 := used(11)
	if len(m10) != 11 || len(m11) != 12 {
		t.Fatalf("marks %d and %d, want 11 and 12", len(m10), len(m11))
	}
	// From the second mark on, the work between two marks is one loop
	// iteration (the first step also enters the block and the loop).
	step := m10[2] - m10[1]
	if step <= 0 {
		t.Fatalf("step %d", step)
	}
	for k := 2; k < len(m11); k++ {
		if m11[k]-m11[k-1] != step {
			t.Fatalf("steps %v: not constant", m11)
		}
	}
	if !slices.Equal(m10, m11[:11]) {
		t.Fatalf("same prefix, different fuel: %v vs %v (per-call fuel must start at 0)", m10, m11)
	}
	if f11-f10 != step {
		t.Fatalf("fuel at return: %d vs %d, differ by %d, want the step %d", f11, f10, f11-f10, step)
	}
	if tail := f10 - m10[len(m10)-1]; tail < 0 || tail >= step {
		t.Fatalf("fuel after the last mark %d, want in [0, %d)", tail, step)
	}
}

// TestInstanceCallBytes: the (ptr, len) convention, and a guest that
// breaks it.
func TestInstanceCallBytes(t *testing.T) {
	re := newReactorEnv(t, 1, EngineConfig{})
	inst := re.instance(t, Options{})
	for _, in := range []string{"hello, plugin", "", "MiXeD 123"} {
		out, res, err := inst.CallBytes(context.Background(), "alloc", "upper", []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		want := []byte(in)
		for k, c := range want {
			if c >= 'a' && c <= 'z' {
				want[k] = c - 32
			}
		}
		if string(out) != string(want) || len(res.Values) != 1 {
			t.Fatalf("upper(%q) = %q, %v", in, out, res.Values)
		}
	}
	if _, _, err := inst.CallBytes(context.Background(), "alloc", "next", nil); !errors.Is(err, ErrUsage) {
		t.Fatalf("export of the wrong type: %v", err)
	}
	if _, _, err := inst.CallBytes(context.Background(), "spin", "upper", nil); !errors.Is(err, ErrUsage) {
		t.Fatalf("allocator of the wrong type: %v", err)
	}
	if inst.Poisoned() != nil {
		t.Fatal("usage errors poisoned the instance")
	}
	// A bump allocator that runs out answers 0: no room.
	if _, _, err := inst.CallBytes(context.Background(), "alloc", "upper", make([]byte, 70_000)); !errors.Is(err, ErrTrap) {
		t.Fatalf("input larger than the guest's memory: %v", err)
	}
	if err := inst.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := inst.CallBytes(context.Background(), "alloc", "bad_result", []byte("x")); !errors.Is(err, ErrTrap) {
		t.Fatalf("result outside memory: %v", err)
	}
	if inst.Poisoned() == nil {
		t.Fatal("a guest breaking the convention did not poison its instance")
	}
}

// TestInstanceMemory: an instance holds its memory in the engine's budget
// from NewInstance to Close; WithMemory sees the state calls left.
func TestInstanceMemory(t *testing.T) {
	re := newReactorEnv(t, 1, EngineConfig{MemoryBudget: 1 << 20})
	inst, err := NewInstance(context.Background(), re.rt, re.mod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := re.eng.Stats().MemoryInUse; got != pageSize {
		t.Fatalf("memory in use %d, want one page", got)
	}
	out, _, err := inst.CallBytes(context.Background(), "alloc", "upper", []byte("abc"))
	if err != nil || string(out) != "ABC" {
		t.Fatal(out, err)
	}
	err = inst.WithMemory(context.Background(), func(m api.Memory) error {
		b, ok := m.Read(1024, 6) // the input, then the output, from the bump allocator's start
		if !ok || string(b) != "abcABC" {
			t.Errorf("memory at 1024: %q %v", b, ok)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The budget has room for 16 pages: 15 more instances fit, a 17th not.
	var more []*Instance
	for range 15 {
		i, err := NewInstance(context.Background(), re.rt, re.mod, Options{})
		if err != nil {
			t.Fatal(err)
		}
		more = append(more, i)
	}
	if _, err := NewInstance(context.Background(), re.rt, re.mod, Options{}); !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("instance over the budget: %v", err)
	}
	for _, i := range append(more, inst) {
		if err := i.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := re.eng.Stats().MemoryInUse; got != 0 {
		t.Fatalf("memory in use after Close: %d", got)
	}
	if err := inst.WithMemory(context.Background(), func(api.Memory) error { return nil }); !errors.Is(err, ErrUsage) {
		t.Fatalf("WithMemory after Close: %v", err)
	}
}

// TestSpawnContext: a one-shot guest stops when its context ends, running
// or suspended, with the context's error.
func TestSpawnContext(t *testing.T) {
	re := newReactorEnv(t, 1, EngineConfig{})
	for _, tc := range []struct {
		export string
		args   []uint64
	}{{"forever", nil}, {"async_add", []uint64{999, 0}}} {
		ctx, cancel := cancelSoon()
		_, err := waitGuest(t, Spawn(ctx, re.rt, re.mod, Options{Export: tc.export, Args: tc.args}))
		cancel()
		if !errors.Is(err, context.Canceled) || !errors.Is(err, scheduler.ErrAborted) {
			t.Fatalf("%s: %v, want ErrAborted wrapping context.Canceled", tc.export, err)
		}
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := waitGuest(t, Spawn(ended, re.rt, re.mod, Options{Export: "next"})); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context: %v", err)
	}
	if st := re.eng.Stats(); st.Running != 0 || st.MemoryInUse != 0 {
		t.Fatalf("after cancellations: running %d, memory %d", st.Running, st.MemoryInUse)
	}
}

func (re *reactorEnv) atGate() int {
	re.mu.Lock()
	defer re.mu.Unlock()
	return len(re.waiting)
}

// TestInstanceRuntimeShutdown: shutting the runtime down while calls run,
// wait in a host function or wait for their turn ends every one of them
// (no caller is left waiting for a task that is gone), and later calls
// fail at once.
func TestInstanceRuntimeShutdown(t *testing.T) {
	re := newReactorEnv(t, 2, EngineConfig{})
	inst := re.instance(t, Options{})
	errs := make(chan error, 6)
	for k := range 6 {
		go func() {
			var err error
			switch k % 3 {
			case 0:
				_, err = inst.Call(context.Background(), "forever")
			case 1:
				_, err = inst.Call(context.Background(), "async_add", 999, 0)
			default:
				_, err = inst.Call(context.Background(), "next")
			}
			errs <- err
		}()
	}
	for re.eng.Stats().Started < 2 { // the instantiation and the first call
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := re.rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for range 6 {
		if err := <-errs; err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no call failed, though one never returns by itself")
	}
	if _, err := inst.Call(context.Background(), "next"); err == nil {
		t.Fatal("a call after shutdown succeeded")
	}
	if got := re.eng.Stats().MemoryInUse; got != 0 {
		t.Fatalf("memory in use after shutdown: %d", got)
	}
}

// TestInstanceOfCommandSkipsStart: an Instance of a WASI command (allowed
// by AllowCommandExports) calls its exports without running _start, as
// NewInstance says; a one-shot run of the command runs _start, and a
// one-shot call of an export does not.
func TestInstanceOfCommandSkipsStart(t *testing.T) {
	e := newEnv(t, "", EngineConfig{}, scheduler.WithWorkers(1))
	m, err := e.eng.Compile(context.Background(), readTestdata(t, "cmdexport.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind() != KindCommand {
		t.Fatalf("kind %v, want command", m.Kind())
	}
	if _, err := NewInstance(context.Background(), e.rt, m, Options{}); !errors.Is(err, ErrCommandExport) {
		t.Fatalf("instance of a command without the opt-in: %v, want ErrCommandExport", err)
	}
	inst, err := NewInstance(context.Background(), e.rt, m, Options{AllowCommandExports: true})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	if got := callValue(t, inst, "started"); got != 0 {
		t.Fatalf("an Instance of a command ran _start (started = %d)", got)
	}
	r, err := waitGuest(t, Spawn(context.Background(), e.rt, m, Options{Export: "started", AllowCommandExports: true}))
	if err != nil || r.Values[0] != 0 {
		t.Fatalf("one-shot call of an export: %v, %v; want 0 (no _start)", r.Values, err)
	}
	if _, err := waitGuest(t, Spawn(context.Background(), e.rt, m, Options{})); err != nil {
		t.Fatalf("one-shot run of the command: %v", err)
	}
}
