package scheduler

import "sync"

// ownedTasks tracks every task that has been spawned and has not completed,
// so that Shutdown can cancel tasks that sit in no queue (waiting for a
// wake-up). It is sharded by task ID to keep spawns on different workers
// off one lock; each shard is an intrusive doubly linked list, so insert and
// remove allocate nothing.
type ownedTasks struct {
	shards []ownedShard
	mask   uint64
}

type ownedShard struct {
	mu      sync.Mutex
	head    *header
	closed  bool
	count   int64
	spawned uint64
	_       [cacheLine]byte // keep shards off each other's cache lines
}

// cacheLine is the size of a cache line on the machines Go targets most
// (x86-64, arm64): padding by it keeps independently written data apart.
const cacheLine = 64

// ownedShardsPerWorker sizes the list as Tokio sizes its OwnedTasks
// (tokio/src/runtime/task/list.rs: the worker count rounded up to a power
// of two, times four): enough shards that spawns on different workers
// rarely meet on one lock, few enough that Shutdown's walk is short.
const ownedShardsPerWorker = 4

func (o *ownedTasks) init(workers int) {
	n := 1
	for n < ownedShardsPerWorker*workers {
		n *= 2
	}
	o.shards = make([]ownedShard, n)
	o.mask = uint64(n - 1)
}

func (o *ownedTasks) shard(h *header) *ownedShard { return &o.shards[uint64(h.id)&o.mask] }

// insert adds h; false once the runtime is shutting down.
func (o *ownedTasks) insert(h *header) bool {
	s := o.shard(h)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	h.next = s.head
	if s.head != nil {
		s.head.prev = h
	}
	s.head = h
	s.count++
	s.spawned++
	s.mu.Unlock()
	return true
}

func (o *ownedTasks) remove(h *header) {
	s := o.shard(h)
	s.mu.Lock()
	if h.prev != nil {
		h.prev.next = h.next
	} else if s.head == h {
		s.head = h.next
	}
	if h.next != nil {
		h.next.prev = h.prev
	}
	h.prev, h.next = nil, nil
	s.count--
	s.mu.Unlock()
}

func (o *ownedTasks) close() {
	for i := range o.shards {
		s := &o.shards[i]
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
	}
}

// snapshot returns the tasks alive now.
func (o *ownedTasks) snapshot() []*header {
	var out []*header
	for i := range o.shards {
		s := &o.shards[i]
		s.mu.Lock()
		for h := s.head; h != nil; h = h.next {
			out = append(out, h)
		}
		s.mu.Unlock()
	}
	return out
}

func (o *ownedTasks) counts() (alive int64, spawned uint64) {
	for i := range o.shards {
		s := &o.shards[i]
		s.mu.Lock()
		alive += s.count
		spawned += s.spawned
		s.mu.Unlock()
	}
	return alive, spawned
}
