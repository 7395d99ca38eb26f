package deferq

import (
	"math/rand/v2"
	"testing"
)

// TestModel drives the queue with random operations, including pushes from
// inside Drain callbacks, and compares every result with a plain slice.
func TestModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var q Queue[int]
	var model []*int
	vals := make([]int, 100000)
	next := 0
	newVal := func() *int { v := &vals[next]; *v = next; next++; return v }
	for step := 0; step < 20000; step++ {
		switch op := r.IntN(10); {
		case op < 4:
			v := newVal()
			q.Push(v)
			model = append(model, v)
		case op < 6:
			got := q.PopFront()
			var want *int
			if len(model) > 0 {
				want, model = model[0], model[1:]
			}
			if got != want {
				t.Fatalf("step %d: PopFront = %v, want %v", step, got, want)
			}
		case op < 7:
			got := q.PopBack()
			var want *int
			if len(model) > 0 {
				want, model = model[len(model)-1], model[:len(model)-1]
			}
			if got != want {
				t.Fatalf("step %d: PopBack mismatch", step)
			}
		default:
			want := model
			model = nil
			var got []*int
			reentrant := r.IntN(3) == 0
			n := q.Drain(func(v *int) {
				got = append(got, v)
				if reentrant && r.IntN(2) == 0 {
					w := newVal()
					q.Push(w) // waits for the next Drain
					model = append(model, w)
				}
			})
			if n != len(want) || len(got) != len(want) {
				t.Fatalf("step %d: drained %d/%d, want %d", step, n, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("step %d: drain order differs at %d", step, i)
				}
			}
		}
		if q.Len() != len(model) {
			t.Fatalf("step %d: Len %d, want %d", step, q.Len(), len(model))
		}
	}
}

// TestOneAtATimeDoesNotAllocate: a worker that defers and releases one task
// at a time reuses the queue's first slot; before the queue rewound on
// empty, each PopFront walked the window along the array and Push
// reallocated it every cap pushes.
func TestOneAtATimeDoesNotAllocate(t *testing.T) {
	var q Queue[int]
	v := new(int)
	q.Push(v)
	q.PopFront()
	allocs := testing.AllocsPerRun(10000, func() {
		q.Push(v)
		if q.PopFront() != v {
			t.Fatal("PopFront lost the task")
		}
		q.Push(v)
		if q.PopBack() != v {
			t.Fatal("PopBack lost the task")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per push/pop cycle, want 0", allocs)
	}
}
