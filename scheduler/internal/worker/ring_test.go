package worker

import (
	"sync"
	"sync/atomic"
	"testing"
)

func tasks(n int) []*Task {
	ts := make([]*Task, n)
	for i := range ts {
		ts[i] = &Task{}
	}
	return ts
}

func TestRingFIFOAndWrap(t *testing.T) {
	r := newRing(4)
	ts := tasks(10)
	next := 0
	for round := 0; round < 5; round++ { // wraps the free-running positions
		for i := 0; i < 2; i++ {
			if of := r.pushBack(ts[(2*round+i)%10]); of != nil {
				t.Fatalf("unexpected overflow")
			}
		}
		for i := 0; i < 2; i++ {
			if got := r.pop(); got != ts[next%10] {
				t.Fatalf("round %d: popped %p, want task %d", round, got, next%10)
			}
			next++
		}
	}
	if r.pop() != nil || r.len() != 0 {
		t.Fatal("ring should be empty")
	}
}

func TestRingOverflowMovesHalfPlusNew(t *testing.T) {
	r := newRing(8)
	ts := tasks(9)
	for i := 0; i < 8; i++ {
		if r.pushBack(ts[i]) != nil {
			t.Fatalf("overflow at %d", i)
		}
	}
	batch := r.pushBack(ts[8])
	if len(batch) != 5 {
		t.Fatalf("overflow batch has %d tasks, want 4 (half) + 1 (new)", len(batch))
	}
	for i, want := range []*Task{ts[0], ts[1], ts[2], ts[3], ts[8]} {
		if batch[i] != want {
			t.Fatalf("batch[%d] is not the expected task (oldest half first, new last)", i)
		}
	}
	if r.len() != 4 {
		t.Fatalf("ring keeps %d, want 4", r.len())
	}
	for i := 4; i < 8; i++ {
		if r.pop() != ts[i] {
			t.Fatalf("ring lost order at %d", i)
		}
	}
}

func TestRingStealTakesHalfRoundedUp(t *testing.T) {
	for _, tc := range []struct{ have, limit, want int }{
		{1, 0, 1}, {2, 0, 1}, {7, 0, 4}, {8, 0, 4}, {7, 2, 2}, {5, 1, 1},
	} {
		src, dst := newRing(16), newRing(16)
		ts := tasks(tc.have)
		for _, x := range ts {
			src.pushBack(x)
		}
		got, n := src.stealInto(dst, tc.limit)
		if n != tc.want || got == nil {
			t.Fatalf("have %d limit %d: stole %d, want %d", tc.have, tc.limit, n, tc.want)
		}
		// The oldest tasks are stolen; the last stolen is returned to run.
		if got != ts[tc.want-1] {
			t.Fatalf("have %d: returned task is not the last stolen", tc.have)
		}
		if dst.len() != tc.want-1 || src.len() != tc.have-tc.want {
			t.Fatalf("have %d: dst %d src %d", tc.have, dst.len(), src.len())
		}
		for i := 0; i < tc.want-1; i++ {
			if dst.pop() != ts[i] {
				t.Fatalf("have %d: dst order wrong at %d", tc.have, i)
			}
		}
		for i := tc.want; i < tc.have; i++ {
			if src.pop() != ts[i] {
				t.Fatalf("have %d: src order wrong at %d", tc.have, i)
			}
		}
	}
}

// TestRingConcurrentExactlyOnce: the owner pushes and pops while stealers
// steal; every task comes out exactly once (run under -race).
func TestRingConcurrentExactlyOnce(t *testing.T) {
	total := 200000
	if testing.Short() {
		total = 20000
	}
	const stealers = 3
	src := newRing(64)
	all := tasks(total)
	index := make(map[*Task]int, total)
	for i, x := range all {
		index[x] = i
	}
	seen := make([]atomic.Int32, total)
	var done atomic.Bool
	var wg sync.WaitGroup
	for s := 0; s < stealers; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := newRing(64)
			for {
				t0, _ := src.stealInto(dst, 0)
				if t0 == nil {
					if done.Load() && src.len() == 0 {
						return
					}
					continue
				}
				seen[index[t0]].Add(1)
				for x := dst.pop(); x != nil; x = dst.pop() {
					seen[index[x]].Add(1)
				}
			}
		}()
	}
	var overflowed []*Task
	for i, x := range all {
		if b := src.pushBack(x); b != nil {
			overflowed = append(overflowed, b...)
		}
		if i%3 == 0 {
			if y := src.pop(); y != nil {
				seen[index[y]].Add(1)
			}
		}
	}
	for y := src.pop(); y != nil; y = src.pop() {
		seen[index[y]].Add(1)
	}
	done.Store(true)
	wg.Wait()
	for _, y := range overflowed {
		seen[index[y]].Add(1)
	}
	for i := range seen {
		if c := seen[i].Load(); c != 1 {
			t.Fatalf("task %d seen %d times", i, c)
		}
	}
}
