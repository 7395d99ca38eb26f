package wasmtask

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestPoolConcurrentCalls: Max calls run at once, each on its own
// instance (all are inside the host function together, with distinct
// memories); the next call waits for an instance, and takes the one given
// back rather than making another.
func TestPoolConcurrentCalls(t *testing.T) {
	re := newReactorEnv(t, 2, EngineConfig{})
	const max = 4
	pool, err := NewPool(re.rt, re.mod, Options{}, PoolConfig{Max: max})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close(context.Background())
	var wg sync.WaitGroup
	results := make(chan uint64, max+1)
	for k := range max + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := pool.Call(context.Background(), "async_add", 777, uint64(k))
			if err != nil {
				t.Error(err)
				return
			}
			results <- r.Values[0]
		}()
	}
	for re.atGate() < max {
		time.Sleep(time.Millisecond)
	}
	if st := pool.Stats(); st.Busy != max || st.Created != max || st.Idle != 0 {
		t.Fatalf("at the gate: %+v, want %d busy, %d created", st, max, max)
	}
	// The fifth call waits for an instance: it cannot be at the gate.
	time.Sleep(10 * time.Millisecond)
	if n := re.atGate(); n != max {
		t.Fatalf("%d distinct instances at the gate, want %d", n, max)
	}
	close(re.gate)
	wg.Wait()
	close(results)
	sum := uint64(0)
	for v := range results {
		sum += v
	}
	if want := uint64((max+1)*777 + max*(max+1)/2); sum != want {
		t.Fatalf("sum of results %d, want %d", sum, want)
	}
	if st := pool.Stats(); st.Created != max || st.Busy != 0 || st.Idle != max {
		t.Fatalf("after: %+v, want %d created, all idle", st, max)
	}
}

// TestPoolPoisonedDiscarded: an instance a call poisons is closed, and the
// next call gets a fresh one; a usage error keeps the instance.
func TestPoolPoisonedDiscarded(t *testing.T) {
	re := newReactorEnv(t, 1, EngineConfig{})
	pool, err := NewPool(re.rt, re.mod, Options{}, PoolConfig{Max: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close(context.Background())
	call := func(export string) (uint64, error) {
		r, err := pool.Call(context.Background(), export)
		if err != nil {
			return 0, err
		}
		return r.Values[0], nil
	}
	if v, err := call("next"); v != 101 || err != nil {
		t.Fatal(v, err)
	}
	if v, err := call("next"); v != 102 || err != nil {
		t.Fatalf("the idle instance was not reused: %d %v", v, err)
	}
	if _, err := call("nope"); !errors.Is(err, ErrUsage) {
		t.Fatal(err)
	}
	if _, err := call("next_then_trap"); !errors.Is(err, ErrTrap) {
		t.Fatal(err)
	}
	if v, err := call("next"); v != 101 || err != nil {
		t.Fatalf("after a trap: %d %v, want a fresh instance", v, err)
	}
	if st := pool.Stats(); st.Discarded != 1 || st.Created != 2 {
		t.Fatalf("stats %+v", st)
	}
	if st := re.eng.Stats(); st.MemoryInUse != pageSize {
		t.Fatalf("memory in use %d: the discarded instance was not released", st.MemoryInUse)
	}
}

// TestPoolIdleReclaim: an idle instance is closed after IdleTimeout (its
// memory released), and a later call makes a new one; Close refuses
// further calls.
func TestPoolIdleReclaim(t *testing.T) {
	re := newReactorEnv(t, 1, EngineConfig{})
	pool, err := NewPool(re.rt, re.mod, Options{}, PoolConfig{Max: 2, IdleTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Call(context.Background(), "next"); err != nil {
		t.Fatal(err)
	}
	for pool.Stats().Reclaimed == 0 {
		time.Sleep(time.Millisecond)
	}
	if st := pool.Stats(); st.Idle != 0 || re.eng.Stats().MemoryInUse != 0 {
		t.Fatalf("after reclaim: %+v, memory %d", st, re.eng.Stats().MemoryInUse)
	}
	r, err := pool.Call(context.Background(), "next")
	if err != nil || r.Values[0] != 101 {
		t.Fatalf("after reclaim: %v %v", r.Values, err)
	}
	if err := pool.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Call(context.Background(), "next"); !errors.Is(err, ErrUsage) {
		t.Fatalf("call after Close: %v", err)
	}
	if st := re.eng.Stats(); st.MemoryInUse != 0 {
		t.Fatalf("memory after Close: %d", st.MemoryInUse)
	}
}

// TestPoolWaitHonoursContext: a call waiting for an instance gives up when
// its context ends, with the context's error; Close waits for the call in
// progress.
func TestPoolWaitHonoursContext(t *testing.T) {
	re := newReactorEnv(t, 1, EngineConfig{})
	pool, err := NewPool(re.rt, re.mod, Options{}, PoolConfig{Max: 1})
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		_, err := pool.Call(context.Background(), "async_add", 777, 1)
		held <- err
	}()
	for re.atGate() < 1 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := pool.Call(ctx, "next"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting call: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- pool.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned while a call was in progress: %v", err)
	case <-time.After(10 * time.Millisecond):
	}
	close(re.gate)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if st := re.eng.Stats(); st.MemoryInUse != 0 {
		t.Fatalf("memory after Close: %d", st.MemoryInUse)
	}
}

// TestPoolStress: goroutines hammer a pool with calls that succeed, trap,
// suspend in a host function or are cancelled while running; every call
// returns exactly once with its own outcome, and the pool ends consistent:
// nothing busy, every instance made is idle or was discarded, and the
// memory in use is that of the idle instances.
func TestPoolStress(t *testing.T) {
	re := newReactorEnv(t, 2, EngineConfig{})
	pool, err := NewPool(re.rt, re.mod, Options{}, PoolConfig{Max: 3, IdleTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close(context.Background())
	const goroutines = 8
	calls := 40
	if testing.Short() {
		calls = 10
	}
	var mu sync.Mutex
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range calls {
				var err error
				want := ""
				switch (g + k) % 4 {
				case 0:
					_, err = pool.Call(context.Background(), "next")
					want = "ok"
				case 1:
					_, err = pool.Call(context.Background(), "next_then_trap")
					want = "trap"
				case 2:
					var r Result
					r, err = pool.Call(context.Background(), "async_add", 1, 2)
					if err == nil && r.Values[0] != 3 {
						t.Errorf("async_add = %d", r.Values[0])
					}
					want = "ok"
				case 3:
					ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
					_, err = pool.Call(ctx, "forever")
					cancel()
					want = "aborted"
				}
				got := "ok"
				switch {
				case errors.Is(err, ErrTrap):
					got = "trap"
				case errors.Is(err, context.DeadlineExceeded):
					got = "aborted"
				case err != nil:
					got = err.Error()
				}
				if got != want {
					t.Errorf("call %d/%d: %s, want %s", g, k, got, want)
				}
				mu.Lock()
				outcomes[got]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range outcomes {
		total += n
	}
	if total != goroutines*calls {
		t.Fatalf("%d outcomes for %d calls: %v", total, goroutines*calls, outcomes)
	}
	st := pool.Stats()
	if st.Busy != 0 || int64(st.Idle) != st.Created-st.Discarded || st.Idle > 3 {
		t.Fatalf("pool after the storm: %+v", st)
	}
	// A trap always poisons its instance; a cancelled call only if it had
	// started running (its context may end while it waits for an instance).
	if lo, hi := int64(outcomes["trap"]), int64(outcomes["trap"]+outcomes["aborted"]); st.Discarded < lo || st.Discarded > hi {
		t.Fatalf("discarded %d instances, want between %d and %d", st.Discarded, lo, hi)
	}
	if mem := re.eng.Stats().MemoryInUse; mem != int64(st.Idle)*pageSize {
		t.Fatalf("memory in use %d, want %d idle instances' pages", mem, st.Idle)
	}
}
