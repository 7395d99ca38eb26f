package worker

import (
	"go.uber.org/atomic"
)

// Stats is a snapshot of one worker's counters. Counters are cumulative
// since the worker started; gauges (depths, mean poll time) are the values
// at the last publication.
type Stats struct {
	Polls            uint64 // tasks polled
	StealTasks       uint64 // tasks taken from peers
	StealOps         uint64 // successful steal operations (each takes >= 1 task)
	Parks            uint64 // times the worker blocked waiting for work
	NoopUnparks      uint64 // notified unparks after which the worker found no task and parked again
	LocalSchedules   uint64 // spawns/wakes/yields this worker queued locally (LIFO slot or ring)
	Overflows        uint64 // times the ring was full and half of it moved to the injector
	LIFOPolls        uint64 // polls of a task taken from the LIFO slot
	DeferredYields   uint64 // tasks put in the deferred queue (YieldNow)
	DeferredReleases uint64 // tasks moved from the deferred queue back to the ring
	Donated          uint64 // deferred tasks handed to the injector to even out load with a peer
	Migrations       uint64 // polls of a task whose previous poll ran on another worker
	HandOffs         uint64 // times the worker yielded its Go P to a peer it had unparked and that had not started running
	BusyNanos        uint64 // time spent outside park
	MeanPollNanos    uint64 // exponentially weighted mean duration of one poll
	LocalQueueDepth  uint64 // tasks in the ring plus the LIFO slot
	DeferredDepth    uint64 // tasks in the deferred queue
}

// counters is the owner's plain copy of Stats, bumped on the hot path
// without atomics and published to the padded atomic block at maintenance
// ticks and before parking, so a reader sees values at most one maintenance
// interval old and the hot path pays no locked instruction for metrics.
type counters struct {
	polls, stealTasks, stealOps, parks, noopUnparks uint64
	localSchedules, overflows, lifoPolls            uint64
	deferredYields, deferredReleases, migrations    uint64
	donated, busyNanos, handOffs                    uint64
	meanPollNanos                                   float64
}

// published is the shared, atomically readable copy. Each worker's block is
// padded to a multiple of 128 bytes so that two workers publishing never
// write the same cache line (or adjacent-line prefetch pair).
type published struct {
	polls, stealTasks, stealOps, parks, noopUnparks atomic.Uint64
	localSchedules, overflows, lifoPolls            atomic.Uint64
	deferredYields, deferredReleases, migrations    atomic.Uint64
	donated, busyNanos, meanPollNanos               atomic.Uint64
	localDepth, deferredDepth, handOffs             atomic.Uint64
	_                                               [128 - (17*8)%128]byte
}

func (p *published) store(c *counters, localDepth, deferredDepth int) {
	p.polls.Store(c.polls)
	p.stealTasks.Store(c.stealTasks)
	p.stealOps.Store(c.stealOps)
	p.parks.Store(c.parks)
	p.noopUnparks.Store(c.noopUnparks)
	p.localSchedules.Store(c.localSchedules)
	p.overflows.Store(c.overflows)
	p.lifoPolls.Store(c.lifoPolls)
	p.deferredYields.Store(c.deferredYields)
	p.deferredReleases.Store(c.deferredReleases)
	p.migrations.Store(c.migrations)
	p.donated.Store(c.donated)
	p.busyNanos.Store(c.busyNanos)
	p.meanPollNanos.Store(uint64(c.meanPollNanos))
	p.localDepth.Store(uint64(localDepth))
	p.deferredDepth.Store(uint64(deferredDepth))
	p.handOffs.Store(c.handOffs)
}

func (p *published) load() Stats {
	return Stats{
		Polls:            p.polls.Load(),
		StealTasks:       p.stealTasks.Load(),
		StealOps:         p.stealOps.Load(),
		Parks:            p.parks.Load(),
		NoopUnparks:      p.noopUnparks.Load(),
		LocalSchedules:   p.localSchedules.Load(),
		Overflows:        p.overflows.Load(),
		LIFOPolls:        p.lifoPolls.Load(),
		DeferredYields:   p.deferredYields.Load(),
		DeferredReleases: p.deferredReleases.Load(),
		Migrations:       p.migrations.Load(),
		HandOffs:         p.handOffs.Load(),
		Donated:          p.donated.Load(),
		BusyNanos:        p.busyNanos.Load(),
		MeanPollNanos:    p.meanPollNanos.Load(),
		LocalQueueDepth:  p.localDepth.Load(),
		DeferredDepth:    p.deferredDepth.Load(),
	}
}
