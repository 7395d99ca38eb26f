package wasmtask

import (
	"context"
	"runtime"
	"testing"
)

// TestReactorGuests runs the committed reactors as plugins — the Go one
// (testdata/goreactor, -buildmode=c-shared and //go:wasmexport) and the C
// one (testdata/creactor, clang -mexec-model=reactor on wasi-libc):
// initialized once (Go's runtime refuses calls before _initialize; the C
// one's next answers -1 unless its constructor ran exactly once), state
// kept across calls, a CPU-heavy export preempted while another task runs
// on the same worker, an async host function, and the (ptr, len)
// convention on each one's allocator.
func TestReactorGuests(t *testing.T) {
	for _, guest := range []string{"goreactor.wasm", "creactor.wasm"} {
		t.Run(guest, func(t *testing.T) { testReactorGuest(t, guest) })
	}
}

func testReactorGuest(t *testing.T, guest string) {
	re := newReactorEnv(t, 1, EngineConfig{})
	mod, err := re.eng.Compile(context.Background(), readGuest(t, guest))
	if err != nil {
		t.Fatal(err)
	}
	if mod.Kind() != KindReactor {
		t.Fatalf("kind %v, want reactor", mod.Kind())
	}
	inst, err := NewInstance(context.Background(), re.rt, mod, Options{Name: "go-plugin"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	for want := uint64(1); want <= 3; want++ {
		if got := callValue(t, inst, "next"); got != want {
			t.Fatalf("next = %d, want %d", got, want)
		}
	}

	// A long spin, with a short guest spawned beside it on the one worker:
	// the short one finishes first, and the long one yielded.
	const long = 200_000_000
	type out struct {
		r   Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := inst.Call(context.Background(), "spin", long)
		done <- out{r, err}
	}()
	for re.eng.Stats().Running == 0 {
		runtime.Gosched()
	}
	short, err := waitGuest(t, Spawn(context.Background(), re.rt, mod, Options{Export: "spin", Args: []uint64{1000}}))
	if err != nil || short.Values[0] != spinRef(1000) {
		t.Fatalf("short spin: %v %v", short.Values, err)
	}
	select {
	case o := <-done:
		t.Fatalf("the long spin ended before the short one: %v", o.err)
	default:
	}
	o := <-done
	if o.err != nil || o.r.Values[0] != spinRef(long) {
		t.Fatalf("long spin: %v %v", o.r.Values, o.err)
	}
	if o.r.Stats.Yields() == 0 {
		t.Fatalf("the long spin never yielded: %+v", o.r.Stats)
	}

	r, err := inst.Call(context.Background(), "async_add", 40, 2)
	if err != nil || r.Values[0] != 42 || r.Stats.HostWaits != 1 {
		t.Fatalf("async_add: %v %v (host waits %d)", r.Values, err, r.Stats.HostWaits)
	}
	for _, in := range []string{"plugin", ""} {
		got, _, err := inst.CallBytes(context.Background(), "alloc", "greet", []byte(in))
		if err != nil || string(got) != "hello, "+in {
			t.Fatalf("greet(%q) = %q, %v", in, got, err)
		}
	}
	if got := callValue(t, inst, "next"); got != 4 {
		t.Fatalf("next after the other calls = %d, want 4", got)
	}
}
