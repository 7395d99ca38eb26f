package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// runtime a test starts must be shut down without leaking a worker or a
// stackful task's coroutine.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newRT(t testing.TB, opts ...Option) *Runtime {
	t.Helper()
	rt, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return rt
}

func wait[T any](t testing.TB, h *JoinHandle[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := h.Wait(ctx)
	if err != nil {
		t.Fatalf("task %d: %v", h.ID(), err)
	}
	return v
}

// event is one poll, recorded by name and worker.
type event struct {
	name   string
	worker int
}

type recorder struct {
	mu     sync.Mutex
	events []event
}

func (r *recorder) add(cx *Context, name string) {
	r.mu.Lock()
	r.events = append(r.events, event{name, cx.WorkerID()})
	r.mu.Unlock()
}

func (r *recorder) names() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ""
	for i, e := range r.events {
		if i > 0 {
			s += " "
		}
		s += e.name
	}
	return s
}

func (r *recorder) of(name string) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range r.events {
		if e.name == name {
			out = append(out, e)
		}
	}
	return out
}

// once is a task that records its single poll.
func once(r *recorder, name string) Future[struct{}] {
	return PollFunc[struct{}](func(cx *Context) (struct{}, bool) {
		r.add(cx, name)
		return struct{}{}, true
	})
}

// yielder records each poll and yields via path until it has run n times.
func yielder(r *recorder, name string, n int, path YieldPath) Future[struct{}] {
	polls := 0
	return PollFunc[struct{}](func(cx *Context) (struct{}, bool) {
		r.add(cx, name)
		polls++
		if polls == n {
			return struct{}{}, true
		}
		cx.YieldVia(path)
		return struct{}{}, false
	})
}

func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}
