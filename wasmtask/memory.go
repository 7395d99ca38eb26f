package wasmtask

import (
	"fmt"

	"github.com/tetratelabs/wazero/experimental"
	"go.uber.org/atomic"
)

// Linear memory: admitted against two bounds, allocated lazily, given back
// at once.
//
// Every guest's linear memory is made by the guest's own allocator
// (wazero's experimental.MemoryAllocator hook), never by wazero's default
// of a Go byte slice:
//
//   - Two bounds: the guest's limit (Options.MemoryLimitPages, else
//     EngineConfig.GuestMemoryLimit) and the engine's MemoryBudget, shared
//     by all running guests. A memory.grow that would pass either fails the
//     way Wasm says (it returns -1) before anything is allocated; a module
//     whose minimum memory would pass either is refused before it is
//     instantiated, with ErrMemoryLimit.
//   - Lazy: where the platform has mmap, the memory's whole range (up to
//     the guest's limit) is reserved as inaccessible address space and each
//     grow only makes the new pages accessible. The kernel supplies zeroed
//     pages when they are first touched, so memory.grow is O(1) whatever
//     its size (a Go slice would be allocated, zeroed and copied, in one
//     uninterruptible step), and the address never moves.
//   - Given back: when the guest's instance closes, its mapping is unmapped
//     and its bytes leave the budget at once; the process does not wait
//     for Go's garbage collector and scavenger to return them to the OS.
//
// Consequence for host functions: a slice obtained from api.Memory is
// valid until the guest ends, not after (the pages are unmapped). Keep
// copies, not views, beyond a host call.

// memBudget is the engine's shared budget of committed linear-memory bytes.
type memBudget struct {
	limit    int64 // 0: no shared budget
	used     atomic.Int64
	peak     atomic.Int64
	refusals atomic.Int64 // grows and instantiations refused (limit or budget)
}

// take adds n bytes to the budget, or reports false (adding nothing) if the
// budget would be exceeded.
func (b *memBudget) take(n int64) bool {
	for {
		u := b.used.Load()
		if b.limit > 0 && u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			for p := b.peak.Load(); u+n > p && !b.peak.CompareAndSwap(p, u+n); p = b.peak.Load() {
			}
			return true
		}
	}
}

func (b *memBudget) give(n int64) { b.used.Sub(n) }

// memoryRefusal is the cause of an ErrMemoryLimit failure: what was
// refused and by which bound.
type memoryRefusal struct {
	what      string // "memory.grow to N pages", "minimum memory of N pages"
	byBudget  bool
	limit     int64 // bytes
	requested int64 // bytes
	inUse     int64 // the budget's use when refused (byBudget)
}

func (r *memoryRefusal) Error() string {
	if r.byBudget {
		return fmt.Sprintf("%s refused: the engine's memory budget of %s has %s in use", r.what, byteSize(r.limit), byteSize(r.inUse))
	}
	return fmt.Sprintf("%s refused: over the guest's memory limit of %s", r.what, byteSize(r.limit))
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

const pageSize = 65536

// guestMemory is one guest's allocator and its linear memory. Its methods
// run on the guest's task (instantiation and memory.grow happen in guest
// code), except Free, which may run where the instance is closed.
type guestMemory struct {
	budget  *memBudget
	limit   int64 // the guest's bound in bytes
	prepaid int64 // bytes of the minimum already taken from the budget
	region  region
	used    int64 // committed bytes, all taken from the budget
	peak    int64
	refusal *memoryRefusal // the last refusal, for classifying the guest's end
	count   int            // memories allocated (wazero supports one)
	freed   bool
}

// admit takes a module's minimum memory from the bounds before it is
// instantiated; on refusal nothing is taken.
func (gm *guestMemory) admit(minPages uint32) *memoryRefusal {
	n := int64(minPages) * pageSize
	if n > gm.limit {
		gm.refuse(&memoryRefusal{what: fmt.Sprintf("minimum memory of %d pages", minPages), limit: gm.limit, requested: n})
		return gm.refusal
	}
	if !gm.budget.take(n) {
		gm.refuse(&memoryRefusal{what: fmt.Sprintf("minimum memory of %d pages", minPages), byBudget: true,
			limit: gm.budget.limit, requested: n, inUse: gm.budget.used.Load()})
		return gm.refusal
	}
	gm.prepaid = n
	return nil
}

func (gm *guestMemory) refuse(r *memoryRefusal) {
	gm.refusal = r
	gm.budget.refusals.Inc()
}

// Allocate implements experimental.MemoryAllocator: wazero calls it once
// per memory while instantiating, with the memory's declared maximum.
func (gm *guestMemory) Allocate(_, max uint64) experimental.LinearMemory {
	gm.count++
	reserve := min(int64(max), gm.limit)
	if gm.count > 1 {
		reserve = 0 // a second memory (not supported by wazero) gets no room
	}
	r, err := reserveRegion(reserve)
	if err != nil {
		// Address space exhausted: the memory can hold nothing, so the
		// minimum cannot be committed and instantiation fails.
		gm.refuse(&memoryRefusal{what: "address space for the memory", limit: gm.limit, requested: reserve})
		r = region{}
	}
	gm.region = r
	return gm
}

// Reallocate implements experimental.LinearMemory: wazero calls it for the
// minimum at instantiation and for every memory.grow. It returns nil (the
// grow fails, memory.grow returns -1) when a bound would be passed.
func (gm *guestMemory) Reallocate(size uint64) []byte {
	n := int64(size)
	if n <= gm.used {
		return gm.region.view(n)
	}
	what := func() string { return fmt.Sprintf("memory.grow to %d pages", n/pageSize) }
	if n > gm.limit || n > gm.region.size() {
		gm.refuse(&memoryRefusal{what: what(), limit: gm.limit, requested: n})
		return nil
	}
	delta := n - gm.used
	fromPrepaid := min(delta, gm.prepaid)
	if !gm.budget.take(delta - fromPrepaid) {
		gm.refuse(&memoryRefusal{what: what(), byBudget: true, limit: gm.budget.limit, requested: n, inUse: gm.budget.used.Load()})
		return nil
	}
	if err := gm.region.commit(gm.used, n); err != nil {
		gm.budget.give(delta - fromPrepaid)
		gm.refuse(&memoryRefusal{what: what() + " (" + err.Error() + ")", limit: gm.limit, requested: n})
		return nil
	}
	gm.prepaid -= fromPrepaid
	gm.used = n
	gm.peak = max(gm.peak, n)
	return gm.region.view(n)
}

// Free implements experimental.LinearMemory: the instance is closing.
func (gm *guestMemory) Free() {
	if gm.freed {
		return
	}
	gm.freed = true
	gm.region.release()
	gm.budget.give(gm.used + gm.prepaid)
	gm.used, gm.prepaid = 0, 0
}

// release gives back what admit took if the memory was never allocated
// (instantiation failed before it, or the module has no memory).
func (gm *guestMemory) release() {
	if gm.count == 0 && !gm.freed {
		gm.freed = true
		gm.budget.give(gm.prepaid)
		gm.prepaid = 0
	}
}
