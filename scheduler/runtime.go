package scheduler

import (
	"context"
	"sync"
	stdatomic "sync/atomic"
	"time"

	"go.uber.org/atomic"

	"github.com/wasmsched/wasmsched/scheduler/internal/worker"
)

// Runtime is a work-stealing M:N executor: Config.Workers goroutines, each
// running worker.Worker's loop over its own queues, sharing an injector, an
// idle set and a timer driver.
type Runtime struct {
	cfg      Config
	workers  []*worker.Worker
	contexts []*Context
	shared   *shared

	inj    injector
	idle   idleSet
	timers timerDriver
	owned  ownedTasks
	nextID atomic.Uint64

	// attention is, per worker, the attention word the running task
	// registered (Context.SetAttention), if any.
	attention []attentionSlot

	remoteSchedules atomic.Uint64
	shuttingDown    atomic.Bool
	shutdownOnce    sync.Once
	exited          sync.WaitGroup
	start           time.Time
}

// New starts a runtime. Options apply in order over DefaultConfig().
func New(opts ...Option) (*Runtime, error) {
	cfg := DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rt := &Runtime{cfg: cfg, start: time.Now()}
	rt.shared = &shared{rt}
	rt.idle.init(cfg.Workers)
	rt.owned.init(cfg.Workers)
	rt.timers.rt = rt
	rt.timers.driver = -1
	rt.timers.next.Store(maxWhen)
	rt.workers = make([]*worker.Worker, cfg.Workers)
	rt.contexts = make([]*Context, cfg.Workers)
	rt.attention = make([]attentionSlot, cfg.Workers)
	for i := range rt.workers {
		rt.workers[i] = worker.New(worker.Config{
			ID:                  i,
			LocalQueueCapacity:  cfg.LocalQueueCapacity,
			LIFOSlot:            cfg.LIFOSlot,
			MaxLIFOPollsPerTick: cfg.MaxLIFOPollsPerTick,
			EventInterval:       uint32(cfg.EventInterval),
			GlobalQueueInterval: uint32(cfg.GlobalQueueInterval),
			Seed:                cfg.Seed,
			StallTimeout:        cfg.StallTimeout,
			BeforePark:          cfg.BeforePark,
			AfterUnpark:         cfg.AfterUnpark,
		}, rt.shared)
		rt.contexts[i] = &Context{rt: rt, w: rt.workers[i]}
	}
	rt.exited.Add(len(rt.workers))
	for _, w := range rt.workers {
		go func() {
			defer rt.exited.Done()
			w.Run()
		}()
	}
	return rt, nil
}

// Config returns the runtime's configuration.
func (rt *Runtime) Config() Config { return rt.cfg }

// DefaultYield is Config().DefaultYield, without copying the Config.
func (rt *Runtime) DefaultYield() YieldPath { return rt.cfg.DefaultYield }

// Now is the runtime's monotonic clock: time since the runtime started.
func (rt *Runtime) Now() time.Duration { return time.Since(rt.start) }

func (rt *Runtime) nanotime() int64 { return int64(time.Since(rt.start)) }

// scheduleRemote queues a task from outside the runtime's workers. If the
// runtime is shutting down the task is cancelled instead.
func (rt *Runtime) scheduleRemote(h *header) {
	if !rt.inj.push(&h.wt) {
		h.wt.Runner().CancelTask()
		return
	}
	rt.remoteSchedules.Inc()
	rt.notifyAttention()
	if id := rt.idle.wakeOne(true); id >= 0 {
		rt.workers[id].Unpark()
	}
}

// attentionSlot holds one worker's registered attention word, on a cache
// line of its own: the slots are read at every remote schedule and written
// only when a task registers or its poll ends.
type attentionSlot struct {
	cell stdatomic.Pointer[uint64]
	_    [cacheLine - 8]byte
}

// notifyAttention sets every registered attention word: something the
// running tasks may want to give way to has arrived.
func (rt *Runtime) notifyAttention() {
	for i := range rt.attention {
		if c := rt.attention[i].cell.Load(); c != nil {
			stdatomic.StoreUint64(c, 1)
		}
	}
}

// Shutdown stops the runtime: new spawns complete at once with
// ErrShutdown, workers finish their current poll and exit, and every task
// left — queued, idle or sleeping — is cancelled with ErrShutdown (a
// stackful task's coroutine is unwound). It returns when no goroutine of
// the runtime remains, or with ctx's error if a poll does not return in
// time (Go cannot interrupt a running poll). Calling it again waits again.
func (rt *Runtime) Shutdown(ctx context.Context) error {
	rt.shutdownOnce.Do(func() {
		rt.owned.close()
		rt.shuttingDown.Store(true)
		for _, t := range rt.inj.close() {
			t.Runner().CancelTask()
		}
		for _, w := range rt.workers {
			w.Unpark()
		}
	})
	done := make(chan struct{})
	go func() {
		rt.exited.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Workers are gone: tasks still alive wait for a wake-up that will
	// never come (or are being cancelled by a late waker). Cancel them.
	rt.timers.drain()
	for _, t := range rt.inj.close() {
		t.Runner().CancelTask()
	}
	for {
		alive := rt.owned.snapshot()
		if len(alive) == 0 {
			return nil
		}
		for _, h := range alive {
			h.wt.Runner().CancelTask()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(50 * time.Microsecond) // a concurrent canceller is finishing
	}
}

// shared implements worker.Shared for one runtime.
type shared struct{ rt *Runtime }

func (s *shared) Workers() []*worker.Worker                { return s.rt.workers }
func (s *shared) InjectorLen() int                         { return s.rt.inj.len() }
func (s *shared) PopInjector(dst []*worker.Task) int       { return s.rt.inj.pop(dst) }
func (s *shared) TransitionToSearching() bool              { return s.rt.idle.toSearching() }
func (s *shared) TransitionFromSearching() bool            { return s.rt.idle.fromSearching() }
func (s *shared) TransitionFromParked(id int) bool         { return s.rt.idle.fromParked(id) }
func (s *shared) ShuttingDown() bool                       { return s.rt.shuttingDown.Load() }
func (s *shared) AfterPark(id int)                         { s.rt.timers.afterPark(id) }
func (s *shared) ParkTimeout(id int) (time.Duration, bool) { return s.rt.timers.parkTimeout(id) }

func (s *shared) TransitionToParked(id int, searching bool) bool {
	return s.rt.idle.toParked(id, searching)
}

func (s *shared) PushInjector(batch []*worker.Task) {
	if !s.rt.inj.push(batch...) {
		for _, t := range batch {
			t.Runner().CancelTask()
		}
	}
}

func (s *shared) NotifyParked() *worker.Worker {
	if id := s.rt.idle.wakeOne(true); id >= 0 {
		v := s.rt.workers[id]
		v.Unpark()
		return v
	}
	return nil
}

func (s *shared) TimersDue() bool { return s.rt.timers.due() }

func (s *shared) PollTimers(w *worker.Worker) {
	cx := s.rt.contexts[w.ID()]
	s.rt.timers.poll(w, &cx.timers)
}
