package wasmtask

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmsched/wasmsched/scheduler"
)

func localGuest(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testHost is the "test" host module guests.wat imports. add_async
// completes from a foreign goroutine after a short delay.
func testHost(asyncCalls *atomic.Int64) HostModule {
	i64 := api.ValueTypeI64
	return HostModule{Name: "test", Functions: []HostFunction{
		{Name: "add_async", Params: []api.ValueType{i64, i64}, Results: []api.ValueType{i64},
			Fn: func(hc *HostCall, p []uint64) ([]uint64, error) {
				return hc.Await(func(done func([]uint64, error)) {
					go func() {
						if asyncCalls != nil {
							asyncCalls.Add(1)
						}
						time.Sleep(50 * time.Microsecond)
						done([]uint64{p[0] + p[1]}, nil)
					}()
				})
			}},
		{Name: "fail", Params: []api.ValueType{api.ValueTypeI32},
			Fn: func(hc *HostCall, p []uint64) ([]uint64, error) {
				return nil, errors.New("fail called")
			}},
		{Name: "boom", Fn: func(*HostCall, []uint64) ([]uint64, error) { panic("boom") }},
		{Name: "mark", Fn: func(hc *HostCall, _ []uint64) ([]uint64, error) {
			if f, ok := hc.Context().Value(markKey{}).(func(*HostCall)); ok {
				f(hc)
			}
			return nil, nil
		}},
	}}
}

// markKey carries a test's callback for the "mark" host function.
type markKey struct{}

func guestsEnv(t testing.TB, calls *atomic.Int64, opts ...scheduler.Option) *env {
	t.Helper()
	e := newEnv(t, "", EngineConfig{HostModules: []HostModule{testHost(calls)}}, opts...)
	var err error
	e.mod, err = e.eng.Compile(context.Background(), localGuest(t, "guests.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestErrorKinds(t *testing.T) {
	e := guestsEnv(t, nil, scheduler.WithWorkers(2))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts Options
		mod  string
		want error
	}{
		{"trap", Options{Export: "trap"}, "", ErrTrap},
		{"out of fuel", Options{Export: "forever", FuelBudget: 5_000_000}, "", ErrOutOfFuel},
		{"memory limit", Options{Export: "grow", MemoryLimitPages: 8}, "", ErrMemoryLimit},
		{"instantiate over limit", Options{Export: "f", MemoryLimitPages: 10}, "bigmem.wasm", ErrMemoryLimit},
		{"no such export", Options{Export: "nope"}, "", ErrUsage},
		{"wrong argument count", Options{Export: "spin"}, "", ErrUsage},
		{"args to a command", Options{Args: []uint64{1}}, "", ErrUsage},
		{"host error", Options{Export: "host_error"}, "", ErrHost},
		{"host panic", Options{Export: "host_panic"}, "", ErrEmbedder},
		{"policy panic", Options{Export: "forever", Policy: func(GuestInfo) Action { panic("policy bug") }}, "", ErrEmbedder},
		{"policy trap", Options{Export: "forever", Policy: func(GuestInfo) Action { return Trap(errors.New("tenant over quota")) }}, "", ErrPolicyTrap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := e.mod
			if tc.mod != "" {
				var err error
				if m, err = e.eng.Compile(ctx, localGuest(t, tc.mod)); err != nil {
					t.Fatal(err)
				}
			}
			tc.opts.Name = tc.name
			_, err := waitGuest(t, Spawn(context.Background(), e.rt, m, tc.opts))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ge *Error
			if !errors.As(err, &ge) || ge.Guest != tc.name {
				t.Fatalf("not a *Error naming the guest: %#v", err)
			}
			if tc.want == ErrOutOfFuel && ge.Stats.FuelUsed < tc.opts.FuelBudget {
				t.Fatalf("out of fuel after %d of %d", ge.Stats.FuelUsed, tc.opts.FuelBudget)
			}
			var pe *PanicError
			switch {
			case tc.name == "host panic" && (!errors.As(err, &pe) || pe.Value != "boom" || pe.Where != "host function test.boom"):
				t.Fatalf("host panic not reported as a PanicError of test.boom: %v", err)
			case tc.name == "policy panic" && (!errors.As(err, &pe) || pe.Value != "policy bug" || pe.Where != "policy" || len(pe.Stack) == 0):
				t.Fatalf("policy panic not reported as a PanicError of the policy: %v", err)
			}
			if _, class := FailureKind(err); class != classOf(tc.want) {
				t.Fatalf("FailureKind(%v) class %v, want %v", err, class, classOf(tc.want))
			}
		})
	}
	if _, err := e.eng.Compile(ctx, []byte("not wasm")); !errors.Is(err, ErrInvalidModule) {
		t.Fatalf("invalid module: %v", err)
	}
	// The workers survived every failure.
	r, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{10}}))
	if err != nil || r.Values[0] != spinRef(10) {
		t.Fatalf("after failures: %v %v", r.Values, err)
	}
	st := e.eng.Stats()
	kinds := FailureKinds()
	want := map[string]int64{"trap": 1, "out_of_fuel": 1, "memory_limit": 2, "usage": 3, "host": 1, "embedder": 2, "policy": 1}
	for i, n := range st.Failures {
		if n != want[kinds[i]] {
			t.Fatalf("failures of kind %s: %d, want %d (all: %v)", kinds[i], n, want[kinds[i]], st.Failures)
		}
	}
}

// classOf is the family of an error kind.
func classOf(kind error) FailureClass {
	_, c := FailureKind(&Error{Kind: kind})
	return c
}

func TestAsyncHostFunctionFromForeignGoroutine(t *testing.T) {
	var calls atomic.Int64
	e := guestsEnv(t, &calls, scheduler.WithWorkers(2))
	const n = 50
	var hs []*scheduler.JoinHandle[Result]
	for i := 0; i < 8; i++ {
		hs = append(hs, Spawn(context.Background(), e.rt, e.mod, Options{Export: "async_sum", Args: []uint64{n}}))
	}
	for _, h := range hs {
		r, err := waitGuest(t, h)
		if err != nil {
			t.Fatal(err)
		}
		if r.Values[0] != n*(n+1)/2 {
			t.Fatalf("sum = %d", r.Values[0])
		}
		if r.Stats.HostWaits != n {
			t.Fatalf("host waits = %d, want %d", r.Stats.HostWaits, n)
		}
	}
	if calls.Load() != 8*n {
		t.Fatalf("async completions %d", calls.Load())
	}
}

// TestAsyncWaitCostsNoWorker: with one worker, a guest waiting in an async
// host function does not stop another guest from running.
func TestAsyncWaitCostsNoWorker(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	host := HostModule{Name: "test", Functions: []HostFunction{
		{Name: "add_async", Params: []api.ValueType{api.ValueTypeI64, api.ValueTypeI64}, Results: []api.ValueType{api.ValueTypeI64},
			Fn: func(hc *HostCall, p []uint64) ([]uint64, error) {
				return hc.Await(func(done func([]uint64, error)) {
					started <- struct{}{}
					go func() { <-release; done([]uint64{p[0] + p[1]}, nil) }()
				})
			}},
		{Name: "fail", Params: []api.ValueType{api.ValueTypeI32}, Fn: func(*HostCall, []uint64) ([]uint64, error) { return nil, nil }},
		{Name: "boom", Fn: func(*HostCall, []uint64) ([]uint64, error) { return nil, nil }},
		{Name: "mark", Fn: func(*HostCall, []uint64) ([]uint64, error) { return nil, nil }},
	}}
	e := newEnv(t, "", EngineConfig{HostModules: []HostModule{host}}, scheduler.WithWorkers(1))
	mod, err := e.eng.Compile(context.Background(), localGuest(t, "guests.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	waiting := Spawn(context.Background(), e.rt, mod, Options{Export: "async_sum", Args: []uint64{1}})
	<-started
	r, err := waitGuest(t, Spawn(context.Background(), e.rt, mod, Options{Export: "spin", Args: []uint64{1000}}))
	if err != nil || r.Values[0] != spinRef(1000) {
		t.Fatalf("second guest: %v", err)
	}
	if waiting.IsFinished() {
		t.Fatal("waiting guest finished before its host call completed")
	}
	if s := e.eng.Stats(); s.Suspended != 1 {
		t.Fatalf("suspended guests = %d, want 1", s.Suspended)
	}
	close(release)
	if r, err := waitGuest(t, waiting); err != nil || r.Values[0] != 1 {
		t.Fatalf("waiting guest: %v %v", r.Values, err)
	}
}

func TestAbortInEachState(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	host := testHost(nil)
	host.Functions[0].Fn = func(hc *HostCall, p []uint64) ([]uint64, error) {
		return hc.Await(func(done func([]uint64, error)) {
			go func() { <-release; done([]uint64{0}, nil) }()
		})
	}
	e := newEnv(t, "", EngineConfig{HostModules: []HostModule{host}}, scheduler.WithWorkers(2))
	ctx := context.Background()
	mod, err := e.eng.Compile(ctx, localGuest(t, "guests.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	startLoop, err := e.eng.Compile(ctx, localGuest(t, "startloop.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]*scheduler.JoinHandle[Result]{
		// running: an endless loop that never yields (policy Continue)
		"running": Spawn(context.Background(), e.rt, mod, Options{Export: "forever", Policy: NeverYield()}),
		// suspended: yields every deadline
		"suspended": Spawn(context.Background(), e.rt, mod, Options{Export: "forever", Policy: SleepPolicy(time.Hour)}),
		// waiting in an async host function
		"host wait": Spawn(context.Background(), e.rt, mod, Options{Export: "async_sum", Args: []uint64{1}}),
		// inside an endless start function
		"instantiating": Spawn(context.Background(), e.rt, startLoop, Options{}), // its start function loops
	}
	// Every guest has started, and two are suspended (the yielder and the
	// host wait): each is in the state it is named for.
	for deadline := time.Now().Add(guestTimeout); ; time.Sleep(time.Millisecond) {
		if s := e.eng.Stats(); s.Started == 4 && s.Suspended >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("guests did not reach their states: %+v", e.eng.Stats())
		}
	}
	for name, h := range cases {
		h.Abort()
		t.Logf("aborting %s", name)
		if _, err := waitGuest(t, h); !errors.Is(err, scheduler.ErrAborted) {
			t.Fatalf("%s: err = %v, want ErrAborted", name, err)
		}
	}
	queued := Spawn(context.Background(), e.rt, mod, Options{Export: "forever"})
	queued.Abort()
	if _, err := waitGuest(t, queued); !errors.Is(err, scheduler.ErrAborted) {
		t.Fatalf("queued: %v", err)
	}
}

func TestShutdownWithManyGuestsInFlight(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	ctx := context.Background()
	rt, err := scheduler.New(scheduler.WithWorkers(2))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := NewEngine(ctx, EngineConfig{HostModules: []HostModule{testHost(nil)}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	mod, err := eng.Compile(ctx, localGuest(t, "guests.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	var hs []*scheduler.JoinHandle[Result]
	for i := 0; i < n; i++ {
		opts := Options{Export: "forever"}
		if i%3 == 0 {
			opts.Policy = SleepPolicy(time.Hour)
		}
		hs = append(hs, Spawn(context.Background(), rt, mod, opts))
	}
	// Let some start and suspend (how many does not matter: Shutdown must
	// end guests in every state, not yet started included).
	for deadline := time.Now().Add(guestTimeout); eng.Stats().Suspended == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := rt.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	for i, h := range hs {
		if _, err := waitGuest(t, h); !errors.Is(err, scheduler.ErrShutdown) {
			t.Fatalf("guest %d: %v", i, err)
		}
	}
	if s := eng.Stats(); s.Running != 0 || s.Suspended != 0 || s.Finished != s.Started {
		t.Fatalf("engine stats after shutdown: %+v", s)
	}
}
