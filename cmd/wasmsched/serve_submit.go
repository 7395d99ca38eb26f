package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wasmsched/wasmsched"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// Submitting a job: validate everything before accepting it, then spawn.

func (s *server) postJob(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		httpError(w, http.StatusServiceUnavailable, "shutting down: no new jobs")
		return
	}
	q := r.URL.Query()
	name := q.Get("guest")
	opts := wasmtask.Options{Name: name, Export: q.Get("export"), Interrupt: s.cfg.interrupt, FuelBudget: s.cfg.jobFuel,
		AllowCommandExports: q.Get("allow_command_exports") == "1"}
	if f := q.Get("fuel"); f != "" {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n <= 0 {
			httpError(w, http.StatusBadRequest, "fuel: %q is not a positive integer", f)
			return
		}
		if opts.FuelBudget == 0 || n < opts.FuelBudget {
			opts.FuelBudget = n
		}
	}
	timeout := s.cfg.jobTimeout
	if t := q.Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			httpError(w, http.StatusBadRequest, "timeout: %q is not a positive duration", t)
			return
		}
		timeout = min(d, s.cfg.jobTimeout)
	}
	var wasm []byte
	if name != "" {
		b, err := wasmsched.Guest(name)
		if err != nil {
			httpError(w, http.StatusBadRequest, "%v", err)
			return
		}
		wasm = b
	} else {
		body, code, err := s.readUpload(w, r)
		if err != nil {
			httpError(w, code, "%v", err)
			return
		}
		wasm, opts.Name = body, "upload"
	}
	// Embedded guests stay compiled for good; uploads are kept up to
	// maxModules, least recently used first out.
	var mod *wasmtask.Module
	var kept *keptModule
	var err error
	if s.embedded[sha256.Sum256(wasm)] {
		mod, err = s.eng.Compile(r.Context(), wasm)
	} else if kept, err = s.keepModule(r.Context(), wasm); err == nil {
		mod = kept.mod
	}
	wasm = nil // the upload's bytes are no longer needed
	switch {
	case errors.Is(err, errModulesBusy):
		httpError(w, http.StatusInsufficientStorage, "%d distinct uploaded modules are kept (the limit) and each has a job running; try again later", s.cfg.maxModules)
		return
	case errors.Is(err, wasmtask.ErrInvalidModule):
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	case err != nil:
		httpError(w, http.StatusServiceUnavailable, "compiling the module: %v", err)
		return
	}
	// Validate the call now, so a job that cannot run is never accepted.
	if cause := s.prepareCall(mod, &opts, q); cause != nil {
		s.jobDone(kept)
		httpError(w, http.StatusBadRequest, "%v", cause) // a call that cannot start, or a minimum memory over --guest-memory
		return
	}
	j := s.startJob(mod, kept, opts)
	if j == nil {
		s.jobDone(kept)
		httpError(w, http.StatusTooManyRequests, "%d jobs running (the limit); try again later", s.cfg.maxJobs)
		return
	}
	go s.supervise(j, timeout)
	w.Header().Set("Location", "/jobs/"+j.ID)
	writeJSON(w, http.StatusAccepted, j.snapshot())
}

// prepareCall fills opts from the query (the export's arguments, typed by
// its signature; WASI argv) and checks that the call can start.
func (s *server) prepareCall(mod *wasmtask.Module, opts *wasmtask.Options, q url.Values) error {
	if a := q.Get("args"); a != "" {
		if opts.Export == "" {
			return errors.New("args needs export (WASI commands take arg=...)")
		}
		params, _, ok := mod.ExportSignature(opts.Export)
		if !ok {
			return mod.CheckCall(*opts)
		}
		vals, err := parseTypedArgs(opts.Export, strings.Split(a, ","), params)
		if err != nil {
			return fmt.Errorf("args: %w", err)
		}
		opts.Args = vals
	}
	if opts.Export == "" {
		opts.Argv = append([]string{opts.Name}, q["arg"]...)
	}
	return mod.CheckCall(*opts)
}

// startJob spawns the job unless maxJobs are running (nil then).
func (s *server) startJob(mod *wasmtask.Module, kept *keptModule, opts wasmtask.Options) *job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running >= s.cfg.maxJobs {
		return nil
	}
	s.running++
	j := &job{ID: s.newIDLocked(), Guest: opts.Name, Export: opts.Export, Status: "running", Started: time.Now().UTC(), kept: kept}
	opts.Stdout, opts.Stderr = &j.out, &j.err
	opts.Policy = wasmtask.DeferredYield()
	s.wg.Add(1)
	j.h = wasmtask.Spawn(context.Background(), s.rt, mod, opts)
	s.jobs[j.ID] = j
	s.order = append(s.order, j.ID)
	s.evictLocked()
	return j
}

// newIDLocked returns a job ID that cannot be guessed from others (128
// random bits) and was never used by this process.
func (s *server) newIDLocked() string {
	for {
		var b [16]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if _, taken := s.jobs[id]; !taken {
			return id
		}
	}
}
