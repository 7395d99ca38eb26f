package main

import (
	"context"
	"crypto/sha256"
	"errors"

	"github.com/wasmsched/wasmsched/wasmtask"
)

// Uploaded modules kept compiled, up to --max-modules, least recently
// used first out. Compiles run outside modMu.

// keptModule is an uploaded module the server keeps compiled.
type keptModule struct {
	sum     [32]byte
	mod     *wasmtask.Module
	jobs    int    // jobs of the module not yet finished
	lastUse uint64 // modTick at its last job
}

// keepModule compiles an uploaded module, or finds it kept, and counts one
// job of it. When a new module would exceed maxModules it closes the least
// recently used kept module that has no unfinished job (its code goes at
// once), or refuses with errModulesBusy if every kept module has one.
func (s *server) keepModule(ctx context.Context, wasm []byte) (*keptModule, error) {
	sum := sha256.Sum256(wasm)
	if km := s.countKept(sum); km != nil {
		return km, nil
	}
	if !s.roomFor() {
		return nil, errModulesBusy
	}
	for {
		if s.beforeCompile != nil {
			s.beforeCompile()
		}
		mod, err := s.eng.Compile(ctx, wasm) // outside modMu
		if err != nil {
			return nil, err
		}
		s.modMu.Lock()
		s.modTick++
		if km, ok := s.modules[sum]; ok { // kept by a concurrent upload meanwhile
			km.jobs++
			km.lastUse = s.modTick
			s.modMu.Unlock()
			return km, nil
		}
		if mod.Closed() {
			// Kept and released by others since the engine returned it: a
			// new Compile compiles it anew.
			s.modMu.Unlock()
			continue
		}
		var victim *keptModule
		if len(s.modules) >= s.cfg.maxModules {
			if victim = s.lruIdleLocked(); victim == nil {
				s.modMu.Unlock()
				return nil, errModulesBusy
			}
			delete(s.modules, victim.sum)
		}
		km := &keptModule{sum: sum, mod: mod, jobs: 1, lastUse: s.modTick}
		s.modules[sum] = km
		s.modMu.Unlock()
		if victim != nil {
			victim.mod.Close(ctx)
		}
		return km, nil
	}
}

// countKept counts a job of the kept module sum, if it is kept.
func (s *server) countKept(sum [32]byte) *keptModule {
	s.modMu.Lock()
	defer s.modMu.Unlock()
	km, ok := s.modules[sum]
	if !ok {
		return nil
	}
	s.modTick++
	km.jobs++
	km.lastUse = s.modTick
	return km
}

// roomFor reports whether a new module could be kept now: there is room,
// or an idle module to release. It is checked again after the compile;
// checking first spares compiling a module that would be refused.
func (s *server) roomFor() bool {
	s.modMu.Lock()
	defer s.modMu.Unlock()
	return len(s.modules) < s.cfg.maxModules || s.lruIdleLocked() != nil
}

func (s *server) lruIdleLocked() *keptModule {
	var victim *keptModule
	for _, km := range s.modules {
		if km.jobs == 0 && (victim == nil || km.lastUse < victim.lastUse) {
			victim = km
		}
	}
	return victim
}

// errModulesBusy: maxModules modules are kept and each has a job running.
var errModulesBusy = errors.New("modules busy")

// jobDone counts a job of km out (nil: an embedded guest's job).
func (s *server) jobDone(km *keptModule) {
	if km == nil {
		return
	}
	s.modMu.Lock()
	km.jobs--
	s.modMu.Unlock()
}
