package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/wasmsched/wasmsched"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// moduleCache keeps uploaded modules compiled on this replica, at most max
// of them; the least recently used one with no job in hand is closed to
// make room. mu covers keeping and counting, never compiling: compiles run
// outside it (the engine runs one per distinct module and bounds how many
// run at once), so a large upload does not hold back a job whose module
// is already compiled. Embedded guests are compiled once and never closed.
type moduleCache struct {
	eng *wasmtask.Engine
	max int

	mu       sync.Mutex
	modules  map[string]*keptModule // by hex SHA-256
	tick     uint64
	embedded map[string]*wasmtask.Module // by guest name

	beforeCompile func() // tests: called before an upload's compile
}

// keptModule is an uploaded module kept compiled.
type keptModule struct {
	sum     string
	mod     *wasmtask.Module
	jobs    int    // jobs holding it (submitting or running)
	lastUse uint64 // tick at its last use
}

func newModuleCache(eng *wasmtask.Engine, max int) *moduleCache {
	return &moduleCache{eng: eng, max: max, modules: map[string]*keptModule{}, embedded: map[string]*wasmtask.Module{}}
}

// guest returns the embedded guest name, compiled.
func (c *moduleCache) guest(ctx context.Context, name string) (*wasmtask.Module, error) {
	c.mu.Lock()
	m := c.embedded[name]
	c.mu.Unlock()
	if m != nil {
		return m, nil
	}
	b, err := wasmsched.Guest(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if m, err = c.eng.Compile(ctx, b); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.embedded[name] = m
	c.mu.Unlock()
	return m, nil
}

// hold returns the module whose hex SHA-256 is sum, compiled, counting one
// job of it until release. load gives its bytes when it is not kept.
func (c *moduleCache) hold(ctx context.Context, sum string, load func(context.Context) ([]byte, error)) (*keptModule, error) {
	if km := c.countKept(sum); km != nil {
		return km, nil
	}
	if !c.roomFor() {
		return nil, errModulesBusy
	}
	wasm, err := load(ctx)
	if err != nil {
		return nil, err
	}
	for {
		if c.beforeCompile != nil {
			c.beforeCompile()
		}
		mod, err := c.eng.Compile(ctx, wasm) // outside mu
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.tick++
		if km, ok := c.modules[sum]; ok { // kept by a concurrent job meanwhile
			km.jobs++
			km.lastUse = c.tick
			c.mu.Unlock()
			return km, nil
		}
		if mod.Closed() {
			// Kept and released by others since the engine returned it:
			// a new Compile compiles it anew.
			c.mu.Unlock()
			continue
		}
		var victim *keptModule
		if len(c.modules) >= c.max {
			if victim = c.lruIdleLocked(); victim == nil {
				c.mu.Unlock()
				return nil, errModulesBusy
			}
			delete(c.modules, victim.sum)
		}
		km := &keptModule{sum: sum, mod: mod, jobs: 1, lastUse: c.tick}
		c.modules[sum] = km
		c.mu.Unlock()
		if victim != nil {
			victim.mod.Close(ctx)
		}
		return km, nil
	}
}

func (c *moduleCache) countKept(sum string) *keptModule {
	c.mu.Lock()
	defer c.mu.Unlock()
	km, ok := c.modules[sum]
	if !ok {
		return nil
	}
	c.tick++
	km.jobs++
	km.lastUse = c.tick
	return km
}

// roomFor reports whether a new module could be kept now. It is checked
// again after the compile; checking first spares compiling a module that
// would be refused.
func (c *moduleCache) roomFor() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.modules) < c.max || c.lruIdleLocked() != nil
}

func (c *moduleCache) lruIdleLocked() *keptModule {
	var victim *keptModule
	for _, km := range c.modules {
		if km.jobs == 0 && (victim == nil || km.lastUse < victim.lastUse) {
			victim = km
		}
	}
	return victim
}

// release counts a job of km out (nil: an embedded guest's job).
func (c *moduleCache) release(km *keptModule) {
	if km == nil {
		return
	}
	c.mu.Lock()
	km.jobs--
	c.mu.Unlock()
}

// kept reports how many uploaded modules are kept compiled.
func (c *moduleCache) kept() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.modules)
}

// moduleKey is the object store's name of an upload.
func moduleKey(wasm []byte) string {
	s := sha256.Sum256(wasm)
	return hex.EncodeToString(s[:])
}

// storeModule puts an upload into the object store unless it is there.
// Once per distinct module, also because each Put can leave one nats.go
// goroutine parked for good (an upstream race; see the tests' TestMain).
func storeModule(ctx context.Context, objs jetstream.ObjectStore, sum string, wasm []byte) error {
	if _, err := objs.GetInfo(ctx, sum); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("%w: module store: %v", ErrUnavailable, err)
	}
	if _, err := objs.PutBytes(ctx, sum, wasm); err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == 10077 {
			return fmt.Errorf("%w: the module store is full (--module-store bytes)", ErrNoRoom)
		}
		return fmt.Errorf("%w: storing the module: %v", ErrUnavailable, err)
	}
	return nil
}
