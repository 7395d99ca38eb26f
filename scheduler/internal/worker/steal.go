package worker

// Stealing (step 7): a searching worker takes half of a peer's ring.

// search is step 7.
func (w *Worker) search() *Task {
	if !w.own.searching {
		if !w.shared.TransitionToSearching() {
			return nil
		}
		w.own.searching = true
	}
	peers := w.shared.Workers()
	start := w.randN(len(peers))
	for i := range peers {
		v := peers[(start+i)%len(peers)]
		if v == w {
			continue
		}
		if t := w.stealFrom(v, 0); t != nil {
			return t
		}
	}
	return w.popInjectorBatch()
}

// stealFrom takes up to limit tasks (0: half, rounded up) from v's ring,
// or v's LIFO task when v's ring is empty.
func (w *Worker) stealFrom(v *Worker, limit int) *Task {
	t, n := v.steal.stealInto(w.own.local, limit)
	if t == nil && v.cfg.LIFOSlot && v.steal.len() == 0 {
		if t = v.lifo.Take(); t != nil {
			n = 1
		}
	}
	if t == nil {
		return nil
	}
	w.own.c[StatStealOps]++
	w.own.c[StatStealTasks] += uint64(n)
	w.resetLIFO()
	// The victim's advertised load shrinks now, not at its next release:
	// a stale figure would invite a second, unbalancing steal. (It may go
	// below zero for a moment; readers take the max with the ring.)
	v.load.Add(-int32(n))
	w.load.Add(int32(n))
	return t
}
