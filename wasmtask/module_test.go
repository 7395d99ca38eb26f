package wasmtask

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
)

func isModuleClosed(err error) bool {
	return errors.Is(err, ErrInstantiate) && strings.Contains(err.Error(), "module closed")
}

func (m *Module) state() (running int, closed, released bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running, m.closed, m.compiled == nil
}

// TestModuleCloseIdle: a closed module releases its code at once, refuses
// new guests with ErrInstantiate, and the engine compiles the same bytes
// anew afterwards.
func TestModuleCloseIdle(t *testing.T) {
	e := newEnv(t, "spin.wasm", EngineConfig{}, scheduler.WithWorkers(1))
	ctx := context.Background()
	if err := e.mod.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.mod.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, released := e.mod.state(); !released {
		t.Fatal("an unused closed module kept its code")
	}
	_, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{10}}))
	if !isModuleClosed(err) {
		t.Fatalf("guest of a closed module: %v, want ErrInstantiate (module closed)", err)
	}
	again, err := e.eng.Compile(ctx, readGuest(t, "spin.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if again == e.mod {
		t.Fatal("Compile returned the closed module")
	}
	r, err := waitGuest(t, Spawn(context.Background(), e.rt, again, Options{Export: "spin", Args: []uint64{10}}))
	if err != nil || r.Values[0] != spinRef(10) {
		t.Fatalf("recompiled module: %v %v", r.Values, err)
	}
}

// TestModuleCloseWhileRunning: a guest that has started keeps running
// after Close (its policy is consulted at later deadlines), and the code is
// released when it ends, not before.
func TestModuleCloseWhileRunning(t *testing.T) {
	e := newEnv(t, "spin.wasm", EngineConfig{}, scheduler.WithWorkers(1))
	started := make(chan struct{})
	var first sync.Once
	var moduleClosed atomic.Bool
	var deadlinesAfterClose atomic.Int32
	errDone := errors.New("enough")
	policy := func(GuestInfo) Action {
		first.Do(func() { close(started) })
		if moduleClosed.Load() && deadlinesAfterClose.Add(1) >= 3 {
			return Trap(errDone)
		}
		return Yield(0, scheduler.PathDeferred)
	}
	h := Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{1 << 62}, Interrupt: InterruptFuel, FuelSlice: 100_000, Policy: policy})
	select {
	case <-started:
	case <-time.After(guestTimeout):
		t.Fatal("the guest did not start")
	}
	if err := e.mod.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if running, closed, released := e.mod.state(); running != 1 || !closed || released {
		t.Fatalf("after Close with a guest running: running %d, closed %v, released %v", running, closed, released)
	}
	moduleClosed.Store(true)
	_, err := waitGuest(t, h)
	if !errors.Is(err, ErrPolicyTrap) || !errors.Is(err, errDone) || deadlinesAfterClose.Load() < 3 {
		t.Fatalf("guest running at Close: %v after %d deadlines past Close, want it to run on until its policy stops it", err, deadlinesAfterClose.Load())
	}
	if running, _, released := e.mod.state(); running != 0 || !released {
		t.Fatalf("after the last guest: running %d, released %v", running, released)
	}
}

// TestModuleCloseRace: guests spawned while another goroutine closes the
// module each either run to the right result or fail with "module closed";
// none is lost, and the code is released once the last one ends.
func TestModuleCloseRace(t *testing.T) {
	e := newEnv(t, "spin.wasm", EngineConfig{}, scheduler.WithWorkers(2))
	const spawners, each = 4, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, closed := 0, 0
	someRan := make(chan struct{})
	for s := range spawners {
		wg.Go(func() {
			for i := range each {
				n := uint64(1000 * (s*each + i + 1))
				ctx, cancel := context.WithTimeout(context.Background(), guestTimeout)
				r, err := Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{n}, Interrupt: InterruptFuel, FuelSlice: 5_000}).Wait(ctx)
				cancel()
				mu.Lock()
				switch {
				case err == nil && r.Values[0] == spinRef(n):
					ok++
					if ok == 20 {
						close(someRan)
					}
				case isModuleClosed(err):
					closed++
				default:
					t.Errorf("guest spin(%d): %v %v", n, r.Values, err)
				}
				mu.Unlock()
			}
		})
	}
	select { // close in the middle of the stream, not before or after it
	case <-someRan:
	case <-time.After(guestTimeout):
		t.Fatal("20 guests did not run")
	}
	if err := e.mod.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if ok+closed != spawners*each || closed == 0 {
		t.Fatalf("%d ran, %d refused as closed, of %d (want all accounted for, some refused)", ok, closed, spawners*each)
	}
	if running, _, released := e.mod.state(); running != 0 || !released {
		t.Fatalf("after every guest: running %d, released %v", running, released)
	}
	t.Logf("%d guests ran, %d refused after Close", ok, closed)
}
