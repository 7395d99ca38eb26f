package lifo

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestPutDisplacesAndTakeEmpties(t *testing.T) {
	var s Slot[int]
	a, b := new(int), new(int)
	if s.Occupied() || s.Take() != nil {
		t.Fatal("zero slot not empty")
	}
	if s.Put(a) != nil || s.Put(b) != a {
		t.Fatal("Put must return the displaced task")
	}
	if s.Take() != b || s.Occupied() {
		t.Fatal("Take must return the last put and empty the slot")
	}
}

// TestConcurrentTakeExactlyOnce: while the owner puts tasks, thieves and
// the owner take; every task is taken exactly once (run under -race).
func TestConcurrentTakeExactlyOnce(t *testing.T) {
	n := 200000
	if testing.Short() {
		n = 20000
	}
	var s Slot[int]
	vals := make([]int, n)
	taken := make([]atomic.Int32, n)
	var done atomic.Bool
	var wg sync.WaitGroup
	take := func(p *int) {
		if p != nil {
			taken[*p].Add(1)
		}
	}
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() || s.Occupied() {
				take(s.Take())
			}
		}()
	}
	for i := range vals {
		vals[i] = i
		take(s.Put(&vals[i])) // the owner re-queues what it displaced: count it as taken
		if i%7 == 0 {
			take(s.Take())
		}
	}
	done.Store(true)
	wg.Wait()
	take(s.Take())
	for i := range taken {
		if c := taken[i].Load(); c != 1 {
			t.Fatalf("task %d taken %d times", i, c)
		}
	}
}
