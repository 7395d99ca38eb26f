package scheduler

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/wasmsched/wasmsched/scheduler/internal/worker"
)

// YieldPath says how a task that yields re-enters the scheduler.
type YieldPath uint8

const (
	// PathDefault is resolved to Config.DefaultYield.
	PathDefault YieldPath = iota
	// PathImmediate is the self-wake: the LIFO slot if enabled, else the
	// back of the ring, and a parked peer is notified so it can steal.
	PathImmediate
	// PathDeferred is Tokio's yield_now: this worker's deferred queue,
	// released after the work that was ready and a timer poll.
	PathDeferred
)

func (p YieldPath) String() string {
	switch p {
	case PathDefault:
		return "default"
	case PathImmediate:
		return "immediate"
	case PathDeferred:
		return "deferred"
	}
	return fmt.Sprintf("YieldPath(%d)", uint8(p))
}

// Config is a runtime's configuration. Start from DefaultConfig.
type Config struct {
	// Workers is the number of worker goroutines (default GOMAXPROCS).
	Workers int
	// LIFOSlot enables each worker's LIFO slot (default true).
	LIFOSlot bool
	// LocalQueueCapacity is the ring size per worker: a power of two, at
	// least 4 (default DefaultLocalQueueCapacity).
	LocalQueueCapacity int
	// MaxLIFOPollsPerTick bounds LIFO polls in a row (default
	// DefaultMaxLIFOPollsPerTick).
	MaxLIFOPollsPerTick int
	// EventInterval is how many ticks pass between maintenance: timer
	// poll, deferred release, stats publication, shutdown check (default
	// DefaultEventInterval).
	EventInterval int
	// GlobalQueueInterval is how many ticks pass between injector-first
	// picks. The default, TunedGlobalQueueInterval (0), tunes it from the
	// mean poll time, as Tokio does since 1.29: about 100 µs of polls
	// between two looks at the injector, within [2, 127] ticks. A positive
	// value fixes it (DefaultGlobalQueueInterval is Tokio's fixed value
	// before 1.29).
	GlobalQueueInterval int
	// Seed seeds each worker's steal-victim order (0 is a valid seed).
	Seed uint64
	// DefaultYield is the path of an unqualified yield (PathDefault);
	// default PathDeferred.
	DefaultYield YieldPath
	// StallTimeout: a worker that publishes no progress for this long is
	// taken to be stuck in a poll that does not return (a guest that never
	// yields, blocking code), and peers steal its queued tasks regardless
	// of the deferred balance rule (default DefaultStallTimeout). Only time the
	// observing peer itself ran counts, so a pause of the whole process
	// does not make workers look stuck (see package worker).
	StallTimeout time.Duration
	// Observer, if set, receives every poll's duration and every task's
	// schedule latency (runnable to polled). Opt-in because it costs two
	// clock reads per poll and one per wake.
	Observer Observer
	// BeforePark and AfterUnpark, if set, run on the worker's goroutine
	// with its ID just before it blocks and just after it resumes.
	BeforePark  func(worker int)
	AfterUnpark func(worker int)
}

// Defaults of Config. The first four are Tokio's multi-thread scheduler's,
// which this executor follows (Tokio 1.24, the version the project's
// measurements compare with):
const (
	// DefaultLocalQueueCapacity is Tokio's LOCAL_QUEUE_CAPACITY
	// (tokio/src/runtime/scheduler/multi_thread/queue.rs).
	DefaultLocalQueueCapacity = 256
	// DefaultMaxLIFOPollsPerTick is Tokio's MAX_LIFO_POLLS_PER_TICK
	// (tokio/src/runtime/scheduler/multi_thread/worker.rs).
	DefaultMaxLIFOPollsPerTick = 3
	// DefaultEventInterval is Tokio's event_interval, as
	// Builder::new_multi_thread sets it (tokio/src/runtime/builder.rs).
	DefaultEventInterval = 61
	// DefaultGlobalQueueInterval is Tokio's global_queue_interval before
	// 1.29, as Builder::new_multi_thread set it
	// (tokio/src/runtime/builder.rs): the fixed interval, for
	// WithGlobalQueueInterval. It is no longer the default.
	DefaultGlobalQueueInterval = 31
	// TunedGlobalQueueInterval, as Config.GlobalQueueInterval (and the
	// default), tunes the interval from the mean poll time, as Tokio 1.29
	// and later do: a fixed 31 ticks of 50 µs polls kept an external wake
	// waiting ~1.5 ms on the immediate path (RATIONALE.md).
	TunedGlobalQueueInterval = 0
	// DefaultStallTimeout is this project's own: see worker's
	// DefaultStallTimeout for why.
	DefaultStallTimeout = worker.DefaultStallTimeout
)

// DefaultConfig returns the defaults listed on Config's fields.
func DefaultConfig() Config {
	return Config{
		Workers:             runtime.GOMAXPROCS(0),
		LIFOSlot:            true,
		LocalQueueCapacity:  DefaultLocalQueueCapacity,
		MaxLIFOPollsPerTick: DefaultMaxLIFOPollsPerTick,
		EventInterval:       DefaultEventInterval,
		GlobalQueueInterval: TunedGlobalQueueInterval,
		DefaultYield:        PathDeferred,
		StallTimeout:        DefaultStallTimeout,
	}
}

// Observer receives timings from the workers. Its methods run on worker
// goroutines in the hot path: keep them cheap and non-blocking (a
// Prometheus histogram's Observe is fine).
type Observer interface {
	// ObservePoll reports how long one poll took on worker.
	ObservePoll(worker int, d time.Duration)
	// ObserveScheduleLatency reports the time from a task becoming
	// runnable (spawned, woken, or re-queued after a yield) to the start
	// of its poll on worker.
	ObserveScheduleLatency(worker int, d time.Duration)
}

// WithObserver sets Config.Observer.
func WithObserver(o Observer) Option { return func(c *Config) { c.Observer = o } }

// Option changes a Config.
type Option func(*Config)

// WithConfig replaces the whole configuration (later options still apply).
func WithConfig(c Config) Option { return func(cfg *Config) { *cfg = c } }

// WithWorkers sets Config.Workers.
func WithWorkers(n int) Option { return func(c *Config) { c.Workers = n } }

// WithLIFOSlot sets Config.LIFOSlot.
func WithLIFOSlot(on bool) Option { return func(c *Config) { c.LIFOSlot = on } }

// WithLocalQueueCapacity sets Config.LocalQueueCapacity.
func WithLocalQueueCapacity(n int) Option { return func(c *Config) { c.LocalQueueCapacity = n } }

// WithMaxLIFOPollsPerTick sets Config.MaxLIFOPollsPerTick.
func WithMaxLIFOPollsPerTick(n int) Option { return func(c *Config) { c.MaxLIFOPollsPerTick = n } }

// WithEventInterval sets Config.EventInterval.
func WithEventInterval(n int) Option { return func(c *Config) { c.EventInterval = n } }

// WithGlobalQueueInterval sets Config.GlobalQueueInterval.
func WithGlobalQueueInterval(n int) Option { return func(c *Config) { c.GlobalQueueInterval = n } }

// WithSeed sets Config.Seed.
func WithSeed(s uint64) Option { return func(c *Config) { c.Seed = s } }

// WithStallTimeout sets Config.StallTimeout.
func WithStallTimeout(d time.Duration) Option { return func(c *Config) { c.StallTimeout = d } }

// WithDefaultYield sets Config.DefaultYield.
func WithDefaultYield(p YieldPath) Option { return func(c *Config) { c.DefaultYield = p } }

// WithParkHooks sets Config.BeforePark and Config.AfterUnpark.
func WithParkHooks(beforePark, afterUnpark func(worker int)) Option {
	return func(c *Config) { c.BeforePark, c.AfterUnpark = beforePark, afterUnpark }
}

// ErrInvalidConfig is wrapped by every configuration error New returns.
var ErrInvalidConfig = errors.New("scheduler: invalid config")

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Workers < 1:
		return bad("Workers = %d, want >= 1", c.Workers)
	case c.Workers > 1<<16:
		return bad("Workers = %d, want <= 65536", c.Workers)
	case c.LocalQueueCapacity < 4 || c.LocalQueueCapacity > 1<<24 || c.LocalQueueCapacity&(c.LocalQueueCapacity-1) != 0:
		return bad("LocalQueueCapacity = %d, want a power of two in [4, 2^24]", c.LocalQueueCapacity)
	case c.MaxLIFOPollsPerTick < 1:
		return bad("MaxLIFOPollsPerTick = %d, want >= 1", c.MaxLIFOPollsPerTick)
	case c.EventInterval < 1 || int64(c.EventInterval) > math.MaxUint32:
		return bad("EventInterval = %d, want in [1, 2^32-1]", c.EventInterval)
	case c.GlobalQueueInterval < 0 || int64(c.GlobalQueueInterval) > math.MaxUint32:
		return bad("GlobalQueueInterval = %d, want in [1, 2^32-1], or TunedGlobalQueueInterval (0)", c.GlobalQueueInterval)
	case c.StallTimeout <= 0:
		return bad("StallTimeout = %v, want > 0", c.StallTimeout)
	case c.DefaultYield != PathImmediate && c.DefaultYield != PathDeferred:
		return bad("DefaultYield = %v, want PathImmediate or PathDeferred", c.DefaultYield)
	}
	return nil
}
