package wasmtask

// Pool: instances of one module handed out so that calls run concurrently.

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
)

// PoolConfig bounds a Pool.
type PoolConfig struct {
	// Max is the most instances the pool holds, busy and idle together,
	// and so the most calls that run at once (default GOMAXPROCS).
	Max int
	// IdleTimeout closes an instance that has been idle this long
	// (default one minute; negative: never).
	IdleTimeout time.Duration
}

// DefaultPoolIdleTimeout is PoolConfig.IdleTimeout's default.
const DefaultPoolIdleTimeout = time.Minute

// PoolStats are a pool's counters.
type PoolStats struct {
	Busy, Idle int   // instances in a call, and waiting for one
	Created    int64 // instances made (NewInstance succeeded)
	Reclaimed  int64 // idle instances closed after IdleTimeout
	Discarded  int64 // instances closed because a call poisoned them
}

// errPoolClosed is the cause of the ErrUsage error of a call on a closed
// Pool.
var errPoolClosed = errors.New("pool closed")

// Pool runs calls of one module on a set of Instances: a call takes an
// idle instance (the most recently used, whose memory is warm) or, if
// none is idle and fewer than Max exist, makes one; otherwise it waits for
// one, or for its context's end. So up to Max calls run at once, each on
// its own instance: an instance serves one call at a time. An instance
// that a call poisons is closed, and a fresh one is made when needed;
// idle instances are closed after IdleTimeout.
//
// State persists on each instance, but which instance serves a call is
// the pool's choice: keep in a guest only what any instance may hold (a
// cache, a warmed-up runtime), or use an Instance directly.
type Pool struct {
	m    *Module
	s    scheduler.Spawner
	opts Options
	cfg  PoolConfig
	// slots holds one token per instance in a call or being made, Max at
	// most: taking a token is the right to use or make an instance.
	slots chan struct{}

	mu     sync.Mutex
	idle   []pooledInstance // a stack: the most recently used last
	busy   int
	closed bool
	sweep  *time.Timer // armed while instances are idle
	stats  PoolStats
}

type pooledInstance struct {
	inst     *Instance
	idleFrom time.Time
}

// NewPool makes a pool of instances of m whose calls run as tasks spawned
// on s; opts configures every instance and call as in NewInstance. No
// instance is made before the first call; a problem NewInstance would
// report at once (Export or Args set, a command without
// AllowCommandExports) is reported here.
func NewPool(s scheduler.Spawner, m *Module, opts Options, cfg PoolConfig) (*Pool, error) {
	if opts.Export != "" || len(opts.Args) > 0 {
		return nil, &Error{Kind: ErrUsage, Cause: errors.New("Options.Export and Args are given to each call, not to NewPool"), Guest: opts.Name}
	}
	if m.kind == KindCommand && !opts.AllowCommandExports {
		return nil, &Error{Kind: ErrUsage, Cause: ErrCommandExport, Guest: opts.Name}
	}
	if cfg.Max <= 0 {
		cfg.Max = runtime.GOMAXPROCS(0)
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultPoolIdleTimeout
	}
	return &Pool{m: m, s: s, opts: opts, cfg: cfg, slots: make(chan struct{}, cfg.Max)}, nil
}

// Call calls export on one of the pool's instances (see Instance.Call).
// Waiting for an instance counts against ctx like the call itself.
func (p *Pool) Call(ctx context.Context, export string, args ...uint64) (Result, error) {
	var res Result
	err := p.with(ctx, func(inst *Instance) error {
		var err error
		res, err = inst.Call(ctx, export, args...)
		return err
	})
	return res, err
}

// CallBytes is Instance.CallBytes on one of the pool's instances.
func (p *Pool) CallBytes(ctx context.Context, alloc, export string, in []byte) ([]byte, Result, error) {
	var out []byte
	var res Result
	err := p.with(ctx, func(inst *Instance) error {
		var err error
		out, res, err = inst.CallBytes(ctx, alloc, export, in)
		return err
	})
	return out, res, err
}

// with runs fn on an instance taken from the pool, and gives it back.
func (p *Pool) with(ctx context.Context, fn func(*Instance) error) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return &Error{Kind: scheduler.ErrAborted, Cause: context.Cause(ctx), Guest: p.opts.Name}
	}
	inst, err := p.take(ctx)
	if err != nil {
		<-p.slots
		return err
	}
	err = fn(inst)
	p.give(inst)
	<-p.slots
	return err
}

// take pops the most recently used idle instance, or makes one; the
// caller holds a slot.
func (p *Pool) take(ctx context.Context) (*Instance, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, &Error{Kind: ErrUsage, Cause: errPoolClosed, Guest: p.opts.Name}
	}
	p.busy++
	if n := len(p.idle); n > 0 {
		inst := p.idle[n-1].inst
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return inst, nil
	}
	p.mu.Unlock()
	inst, err := NewInstance(ctx, p.s, p.m, p.opts)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.busy--
		return nil, err
	}
	p.stats.Created++
	return inst, nil
}

// give returns inst to the pool after a call: idle again, or closed if
// the call poisoned it or the pool is closed.
func (p *Pool) give(inst *Instance) {
	p.mu.Lock()
	p.busy--
	keep := !p.closed && inst.Poisoned() == nil
	if keep {
		p.idle = append(p.idle, pooledInstance{inst: inst, idleFrom: time.Now()})
		p.armSweepLocked()
	} else if inst.Poisoned() != nil {
		p.stats.Discarded++
	}
	p.mu.Unlock()
	if !keep {
		inst.Close(context.Background()) // no call runs on it: returns at once
	}
}

// armSweepLocked makes sure a sweep will close instances idle past
// IdleTimeout; p.mu is held.
func (p *Pool) armSweepLocked() {
	if p.cfg.IdleTimeout < 0 || p.sweep != nil || len(p.idle) == 0 {
		return
	}
	wait := time.Until(p.idle[0].idleFrom.Add(p.cfg.IdleTimeout))
	p.sweep = time.AfterFunc(max(wait, 0), p.reclaim)
}

// reclaim closes the instances idle past IdleTimeout (the oldest are at
// the bottom of the stack) and re-arms for the rest.
func (p *Pool) reclaim() {
	p.mu.Lock()
	p.sweep = nil
	cutoff := time.Now().Add(-p.cfg.IdleTimeout)
	n := 0
	for n < len(p.idle) && !p.idle[n].idleFrom.After(cutoff) {
		n++
	}
	old := make([]pooledInstance, n)
	copy(old, p.idle[:n])
	p.idle = append(p.idle[:0], p.idle[n:]...)
	if !p.closed {
		p.armSweepLocked()
	}
	p.mu.Unlock()
	for _, pi := range old {
		pi.inst.Close(context.Background())
	}
	p.mu.Lock()
	p.stats.Reclaimed += int64(n) // once closed: their memory is back in the budget
	p.mu.Unlock()
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Busy, s.Idle = p.busy, len(p.idle)
	return s
}

// Close closes the idle instances and refuses new calls (ErrUsage); it
// waits for the calls in progress, whose instances are then closed, or
// for ctx's end. Close is idempotent.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, pi := range idle {
		pi.inst.Close(context.Background())
	}
	// Holding every slot means no call is in progress.
	taken := 0
	defer func() {
		for range taken {
			<-p.slots
		}
	}()
	for range cap(p.slots) {
		select {
		case p.slots <- struct{}{}:
			taken++
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
