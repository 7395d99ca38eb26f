package worker

// Deferred balancing (step 6): when a worker has deferred tasks it is not
// idle, so it steals only to even out load, pushes surplus to a lighter
// peer, and applies the stall rule.

// peerProgress is one worker's view of a peer's progress (see stalled).
type peerProgress struct {
	seen     bool   // value and lastLook are set
	value    uint32 // the peer's progress at the last look
	lastLook int64  // nanotime of this worker's last look at the peer
	silent   int64  // observed time without progress, each gap capped
}

// releaseDeferred moves every deferred task to the back of the ring. The
// tasks become stealable, so a parked peer is notified: without it, a peer
// that parked while this worker held every task would never come back.
func (w *Worker) releaseDeferred() {
	if n := w.own.deferred.Drain(w.pushBack); n > 0 {
		w.own.c[StatDeferredReleases] += uint64(n)
		w.notifyParked()
	}
}

// stealBalanced is step 6: steal only from a peer whose load exceeds this
// worker's deferred load by two or more, and only enough to even them out.
func (w *Worker) stealBalanced(deferred int) *Task {
	peers := w.shared.Workers()
	if len(peers) < 2 {
		return nil
	}
	start := w.randN(len(peers))
	now := int64(-1) // read the clock only if a peer has runnable work
	for i := range peers {
		v := peers[(start+i)%len(peers)]
		if v == w {
			continue
		}
		if v.Runnable() == 0 {
			continue // nothing to steal, whatever its load says
		}
		if now < 0 {
			now = w.nanotime()
		}
		if w.stalled(v, now) {
			if t := w.stealFrom(v, 0); t != nil {
				return t
			}
			continue
		}
		load := v.loadEstimate()
		if load-deferred < 2 {
			continue
		}
		if t := w.stealFrom(v, (load-deferred)/2); t != nil {
			return t
		}
	}
	return nil
}

// stalled reports whether v has published no progress (maintenance,
// deferred release, parking) for Config.StallTimeout of this worker's
// observation. A time threshold, not a tick count: a healthy peer can look
// idle for a few milliseconds (its polls may be much longer than ours, or
// the OS may have descheduled its thread), while a poll that never returns
// stalls it for good.
//
// Observed time is the sum of the gaps between this worker's looks at v,
// each counted for at most StallTimeout/4 (see the package doc): a long gap
// means this worker did not run either — a process-wide pause, or a long
// poll of its own — so it is not evidence against v.
func (w *Worker) stalled(v *Worker, now int64) bool {
	if w.own.peerSeen == nil {
		w.own.peerSeen = make([]peerProgress, len(w.shared.Workers()))
	}
	seen := &w.own.peerSeen[v.id]
	if p := v.progress.Load(); p != seen.value || !seen.seen {
		*seen = peerProgress{seen: true, value: p, lastLook: now}
		return false
	}
	seen.silent += min(now-seen.lastLook, w.stallGapCredit())
	seen.lastLook = now
	return seen.silent > int64(w.cfg.StallTimeout)
}

// stallGapCredit is the most one gap between two looks at a peer adds to
// its observed silence (at least 1 ns, so any StallTimeout is reached).
func (w *Worker) stallGapCredit() int64 { return max(int64(w.cfg.StallTimeout/4), 1) }

// surplus is the push half of deferred balancing. Pulling alone is not
// enough: identical spinners phase-lock, and a lighter peer may always look
// at this worker's ring at the moment it is empty. So at each release the
// busier worker compares its n yielding tasks with the lightest peer's load
// and, when the gap is two or more, returns that peer and half the gap.
func (w *Worker) surplus(n int) (*Worker, int) {
	if n < 2 {
		return nil, 0
	}
	var lightest *Worker
	least := n
	for _, v := range w.shared.Workers() {
		if v == w {
			continue
		}
		if l := v.loadEstimate(); l < least {
			lightest, least = v, l
		}
	}
	if lightest == nil || n-least < 2 {
		return nil, 0
	}
	return lightest, (n - least) / 2
}

// loadEstimate is what peers think this worker is busy with: the larger of
// its runnable tasks (plus the one it runs, if it has any queued) and its
// advertised load.
func (w *Worker) loadEstimate() int {
	l := w.Runnable()
	if l > 0 {
		l++
	}
	return max(l, int(w.load.Load()), 0)
}

// donate moves the k most recently deferred tasks into v's inbox, counts
// them in v's load at once (so no one gives or steals twice for one gap),
// and unparks v. The unpark token is buffered: if v is about to park it
// returns at once and finds the inbox; if v is running, the token only
// costs it one extra loop later.
func (w *Worker) donate(v *Worker, k int) {
	v.inboxMu.Lock()
	for i := 0; i < k; i++ {
		v.inbox = append(v.inbox, w.own.deferred.PopBack())
	}
	v.inboxLen.Store(int32(len(v.inbox)))
	v.inboxMu.Unlock()
	v.load.Add(int32(k))
	w.own.c[StatDonated] += uint64(k)
	v.Unpark()
}

// takeInbox returns one donated task and queues the rest in the ring.
func (w *Worker) takeInbox() *Task {
	if w.inboxLen.Load() == 0 {
		return nil
	}
	w.inboxMu.Lock()
	batch := w.inbox
	w.inbox = nil
	w.inboxLen.Store(0)
	w.inboxMu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	for _, t := range batch[1:] {
		w.pushBack(t)
	}
	w.resetLIFO()
	return batch[0]
}
