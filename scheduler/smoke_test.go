package scheduler

import (
	"context"
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	rt, err := New(WithWorkers(2))
	if err != nil {
		t.Fatal(err)
	}
	h := Spawn[int](rt, PollFunc[int](func(cx *Context) (int, bool) { return 42, true }))
	v, err := h.Wait(context.Background())
	if v != 42 || err != nil {
		t.Fatal(v, err)
	}
	h2 := SpawnFunc[int](rt, func(co *Co) (int, error) {
		s := 0
		for i := 0; i < 100; i++ {
			co.YieldNow()
			co.Yield()
			s++
		}
		co.Sleep(time.Millisecond)
		inner := SpawnFunc[int](co, func(co *Co) (int, error) { co.Sleep(time.Millisecond); return 5, nil })
		x, err := Join(co, inner)
		return s + x, err
	})
	v, err = h2.Wait(context.Background())
	if v != 105 || err != nil {
		t.Fatal(v, err)
	}
	h3 := SpawnFunc[int](rt, func(co *Co) (int, error) { co.Sleep(time.Hour); return 1, nil })
	time.Sleep(time.Millisecond)
	if err := rt.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = h3.Wait(context.Background())
	if err != ErrShutdown {
		t.Fatal(err)
	}
	t.Logf("%+v", rt.Stats())
}
