package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wasmsched/wasmsched"
	"github.com/wasmsched/wasmsched/metrics"
	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

const serveUsage = `usage: wasmsched serve [flags]

A small job service that embeds the executor.

  POST   /jobs                     body: a .wasm module (at most --max-body bytes), or
  POST   /jobs?guest=NAME          no body: an embedded guest (spin, cguest, goguest)
         query: export=FN&args=1,2 call an export with integer args (default: WASI _start)
                arg=A&arg=B        WASI argv[1:]     fuel=N  fuel budget
                timeout=5s         job deadline (at most --job-timeout)
         -> 202 {"id": ..., "status": "running"}; 429 when --max-jobs are running;
            507 when --max-modules distinct uploads are kept and each has a job running
            (otherwise the least recently used upload is released to make room)
  GET    /jobs/{id}                status, result or error, guest stdout/stderr (first 64 KiB), counters
  DELETE /jobs/{id}                cancel a running job
  GET    /jobs                     recent jobs
  GET    /metrics                  Prometheus metrics (wasmsched_* families, Go runtime)
  GET    /healthz                  200 "ok", 503 while shutting down

On SIGINT/SIGTERM it stops accepting jobs, lets running jobs finish for
--shutdown-timeout, then cancels the rest and exits.

flags:
`

type serveConfig struct {
	workers         int
	maxBody         int64
	maxJobs         int
	jobTimeout      time.Duration
	shutdownTimeout time.Duration
	interrupt       wasmtask.Interrupt
	keepJobs        int
	maxModules      int
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveUsage); fs.PrintDefaults() }
	addr := fs.String("addr", "127.0.0.1:9090", "listen address (loopback by default; the API has no authentication)")
	var cfg serveConfig
	fs.IntVar(&cfg.workers, "workers", 0, "runtime workers (0: GOMAXPROCS)")
	fs.Int64Var(&cfg.maxBody, "max-body", 16<<20, "largest accepted module upload, bytes")
	fs.IntVar(&cfg.maxJobs, "max-jobs", 8, "jobs running at once; more are refused with 429")
	fs.DurationVar(&cfg.jobTimeout, "job-timeout", time.Minute, "longest a job may run")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long running jobs may finish before they are cancelled")
	fs.IntVar(&cfg.keepJobs, "keep-jobs", 1000, "finished jobs kept for GET /jobs/{id}")
	fs.IntVar(&cfg.maxModules, "max-modules", 64, "distinct uploaded modules kept compiled; beyond it the least recently used one without running jobs is released")
	interrupt := fs.String("interrupt", "epoch", "guest interrupt: epoch or fuel")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "wasmsched serve: "+format+"\n", a...)
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case cfg.workers < 0:
		return usageErr("--workers must not be negative")
	case cfg.maxBody < 8:
		return usageErr("--max-body must be at least 8 bytes")
	case cfg.maxJobs < 1:
		return usageErr("--max-jobs must be at least 1")
	case cfg.jobTimeout <= 0 || cfg.shutdownTimeout < 0:
		return usageErr("--job-timeout must be positive and --shutdown-timeout not negative")
	case cfg.keepJobs < 1:
		return usageErr("--keep-jobs must be at least 1")
	case cfg.maxModules < 1:
		return usageErr("--max-modules must be at least 1")
	}
	switch *interrupt {
	case "epoch":
	case "fuel":
		cfg.interrupt = wasmtask.InterruptFuel
	default:
		return usageErr("--interrupt must be epoch or fuel, got %q", *interrupt)
	}
	s, err := newServer(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "wasmsched serve: %v\n", err)
		return exitFailure
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		s.close(context.Background())
		fmt.Fprintf(stderr, "wasmsched serve: %v\n", err)
		return exitFailure
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "wasmsched serve: listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.close(context.Background())
		fmt.Fprintf(stderr, "wasmsched serve: %v\n", err)
		return exitFailure
	case <-ctx.Done():
	}
	fmt.Fprintf(stdout, "wasmsched serve: shutting down (running jobs get %v)\n", cfg.shutdownTimeout)
	s.draining.Store(true)
	dctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	finished, cancelled := s.close(dctx)
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	srv.Shutdown(hctx)
	<-errc
	fmt.Fprintf(stdout, "wasmsched serve: stopped (%d jobs finished during shutdown, %d cancelled)\n", finished, cancelled)
	return exitOK
}

// server is the job service: a runtime, an engine, the jobs.
type server struct {
	cfg      serveConfig
	rt       *scheduler.Runtime
	eng      *wasmtask.Engine
	reg      *prometheus.Registry
	draining atomic.Bool

	mu      sync.Mutex
	jobs    map[string]*job
	order   []string // job IDs, oldest first, for eviction
	running int
	nextID  uint64
	wg      sync.WaitGroup // job supervisors

	// Uploaded modules stay compiled for reuse, at most maxModules of
	// them; the least recently used one with no unfinished job is closed
	// to make room. modMu covers compiling, keeping and counting, so a
	// module is never closed between its Compile and its job's count.
	modMu    sync.Mutex
	modules  map[[32]byte]*keptModule
	modTick  uint64
	embedded map[[32]byte]bool // the embedded guests: compiled for good, never closed
}

// keptModule is an uploaded module the server keeps compiled.
type keptModule struct {
	sum     [32]byte
	mod     *wasmtask.Module
	jobs    int    // jobs of the module not yet finished
	lastUse uint64 // modTick at its last job
}

func newServer(cfg serveConfig) (*server, error) {
	obs := metrics.NewObserver() // poll-duration and schedule-latency histograms
	opts := []scheduler.Option{scheduler.WithObserver(obs)}
	if cfg.workers > 0 {
		opts = append(opts, scheduler.WithWorkers(cfg.workers))
	}
	rt, err := scheduler.New(opts...)
	if err != nil {
		return nil, err
	}
	eng, err := wasmtask.NewEngine(context.Background(), wasmtask.EngineConfig{})
	if err != nil {
		rt.Shutdown(context.Background())
		return nil, err
	}
	reg := prometheus.NewRegistry()
	if _, err := metrics.Register(reg, rt, eng); err != nil {
		rt.Shutdown(context.Background())
		eng.Close(context.Background())
		return nil, err
	}
	reg.MustRegister(obs, collectors.NewGoCollector())
	embedded := map[[32]byte]bool{}
	for _, g := range wasmsched.EmbeddedGuests() {
		if b, err := wasmsched.Guest(g.Name); err == nil {
			embedded[sha256.Sum256(b)] = true
		}
	}
	return &server{cfg: cfg, rt: rt, eng: eng, reg: reg, jobs: map[string]*job{},
		modules: map[[32]byte]*keptModule{}, embedded: embedded}, nil
}

// keepModule compiles an uploaded module, or finds it kept, and counts one
// job of it. When a new module would exceed maxModules it closes the least
// recently used kept module that has no unfinished job (its code goes at
// once), or refuses with errModulesBusy if every kept module has one.
func (s *server) keepModule(ctx context.Context, wasm []byte) (*keptModule, error) {
	sum := sha256.Sum256(wasm)
	s.modMu.Lock()
	defer s.modMu.Unlock()
	s.modTick++
	if km, ok := s.modules[sum]; ok {
		km.jobs++
		km.lastUse = s.modTick
		return km, nil
	}
	var victim *keptModule
	if len(s.modules) >= s.cfg.maxModules {
		for _, km := range s.modules {
			if km.jobs == 0 && (victim == nil || km.lastUse < victim.lastUse) {
				victim = km
			}
		}
		if victim == nil {
			return nil, errModulesBusy
		}
	}
	mod, err := s.eng.Compile(ctx, wasm)
	if err != nil {
		return nil, err
	}
	if victim != nil {
		delete(s.modules, victim.sum)
		victim.mod.Close(ctx)
	}
	km := &keptModule{sum: sum, mod: mod, jobs: 1, lastUse: s.modTick}
	s.modules[sum] = km
	return km, nil
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

// close lets running jobs finish until ctx is done, cancels the rest, and
// stops the runtime and engine. It reports how many jobs finished and how
// many were cancelled.
func (s *server) close(ctx context.Context) (finished, cancelled int) {
	s.draining.Store(true)
	s.mu.Lock()
	var live []*job
	for _, j := range s.jobs {
		if !j.h.IsFinished() {
			live = append(live, j)
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		var cw sync.WaitGroup
		for _, j := range live {
			cw.Go(func() { j.stopAndWait("cancelled: server shutting down", "cancelled", "", 2*time.Second) })
		}
		cw.Wait()
		<-done
	}
	for _, j := range live {
		j.mu.Lock()
		if j.Status == "cancelled" {
			cancelled++
		} else {
			finished++
		}
		j.mu.Unlock()
	}
	sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
	defer c()
	s.rt.Shutdown(sctx)
	s.eng.Close(context.Background())
	return finished, cancelled
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /jobs", s.postJob)
	mux.HandleFunc("GET /jobs", s.listJobs)
	mux.HandleFunc("GET /jobs/{id}", s.getJob)
	mux.HandleFunc("DELETE /jobs/{id}", s.deleteJob)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	return mux
}

// job is one guest run. Exported fields are its JSON.
type job struct {
	ID       string               `json:"id"`
	Guest    string               `json:"guest"`
	Export   string               `json:"export,omitempty"`
	Status   string               `json:"status"`           // running, done, failed, cancelled
	Result   []string             `json:"result,omitempty"` // decimal: uint64 does not fit a JSON number exactly
	Error    string               `json:"error,omitempty"`
	Kind     string               `json:"error_kind,omitempty"`
	Stdout   string               `json:"stdout"`
	Stderr   string               `json:"stderr"`
	Stats    *wasmtask.GuestStats `json:"stats,omitempty"`
	Started  time.Time            `json:"started"`
	Finished *time.Time           `json:"finished,omitempty"`
	Seconds  float64              `json:"seconds"`

	mu       sync.Mutex
	kept     *keptModule // the uploaded module it runs (nil: an embedded guest)
	h        *scheduler.JoinHandle[wasmtask.Result]
	stop     atomic.Bool
	stopWhy  atomic.Pointer[stopReason]
	out, err limitedBuffer
}

type stopReason struct{ why, status, kind string }

// cancel asks the guest to stop at its next deadline (its policy traps,
// keeping its counters); the first reason wins.
func (j *job) cancel(why, status, kind string) {
	j.stopWhy.CompareAndSwap(nil, &stopReason{why, status, kind})
	j.stop.Store(true)
}

// stopAndWait cancels j and waits for it; a guest that reaches no deadline
// within grace is aborted.
func (j *job) stopAndWait(why, status, kind string, grace time.Duration) (wasmtask.Result, error) {
	j.cancel(why, status, kind)
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	res, err := j.h.Wait(ctx)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		j.h.Abort()
		res, err = j.h.Wait(context.Background())
	}
	return res, err
}

func (j *job) snapshot() *job {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := &job{ID: j.ID, Guest: j.Guest, Export: j.Export, Status: j.Status, Result: j.Result, Error: j.Error,
		Kind: j.Kind, Stats: j.Stats, Started: j.Started, Finished: j.Finished, Seconds: j.Seconds}
	if c.Finished == nil {
		c.Seconds = time.Since(j.Started).Seconds()
	}
	c.Stdout, c.Stderr = j.out.String(), j.err.String()
	return c
}

// limitedBuffer keeps the first limit bytes written to it; safe for
// concurrent use.
type limitedBuffer struct {
	mu        sync.Mutex
	b         bytes.Buffer
	truncated bool
}

const outputLimit = 64 << 10

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	room := outputLimit - l.b.Len()
	if room < len(p) {
		l.truncated = true
		if room > 0 {
			l.b.Write(p[:room])
		}
		return len(p), nil
	}
	l.b.Write(p)
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.truncated {
		return l.b.String() + "\n[output truncated at 64 KiB]"
	}
	return l.b.String()
}

func httpError(w http.ResponseWriter, code int, format string, a ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, a...)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (s *server) postJob(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		httpError(w, http.StatusServiceUnavailable, "shutting down: no new jobs")
		return
	}
	q := r.URL.Query()
	var wasm []byte
	name := q.Get("guest")
	if name != "" {
		b, err := wasmsched.Guest(name)
		if err != nil {
			httpError(w, http.StatusBadRequest, "%v", err)
			return
		}
		wasm = b
	} else {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.maxBody))
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			httpError(w, http.StatusRequestEntityTooLarge, "module larger than the limit of %d bytes", s.cfg.maxBody)
			return
		case err != nil:
			httpError(w, http.StatusBadRequest, "reading the body: %v", err)
			return
		case len(body) == 0:
			httpError(w, http.StatusBadRequest, "empty body: POST a .wasm module, or name an embedded guest with ?guest=spin|cguest|goguest")
			return
		}
		wasm, name = body, "upload"
	}
	opts := wasmtask.Options{Name: name, Export: q.Get("export"), Interrupt: s.cfg.interrupt}
	if a := q.Get("args"); a != "" {
		if opts.Export == "" {
			httpError(w, http.StatusBadRequest, "args needs export (WASI commands take arg=...)")
			return
		}
		vals, err := parseArgs(strings.Split(a, ","))
		if err != nil {
			httpError(w, http.StatusBadRequest, "args: %v", err)
			return
		}
		opts.Args = vals
	}
	opts.Argv = append([]string{name}, q["arg"]...)
	if f := q.Get("fuel"); f != "" {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 0 {
			httpError(w, http.StatusBadRequest, "fuel: %q is not a non-negative integer", f)
			return
		}
		opts.FuelBudget = n
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
	switch {
	case errors.Is(err, errModulesBusy):
		httpError(w, http.StatusInsufficientStorage, "%d distinct uploaded modules are kept (the limit) and each has a job running; try again later", s.cfg.maxModules)
		return
	case err != nil:
		httpError(w, http.StatusBadRequest, "invalid module: %v", err)
		return
	}
	if err := mod.CheckCall(opts); err != nil {
		s.jobDone(kept)
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}

	s.mu.Lock()
	if s.running >= s.cfg.maxJobs {
		s.mu.Unlock()
		s.jobDone(kept)
		httpError(w, http.StatusTooManyRequests, "%d jobs running (the limit); try again later", s.cfg.maxJobs)
		return
	}
	s.running++
	s.nextID++
	j := &job{ID: strconv.FormatUint(s.nextID, 10), Guest: name, Export: opts.Export, Status: "running", Started: time.Now().UTC(), kept: kept}
	opts.Stdout, opts.Stderr = &j.out, &j.err
	opts.Policy = func(wasmtask.GuestInfo) wasmtask.Action {
		if j.stop.Load() {
			return wasmtask.Trap(errors.New(j.stopWhy.Load().why))
		}
		return wasmtask.Yield(0, scheduler.PathDeferred)
	}
	s.wg.Add(1)
	j.h = wasmtask.Spawn(s.rt, mod, opts)
	s.jobs[j.ID] = j
	s.order = append(s.order, j.ID)
	s.evictLocked()
	s.mu.Unlock()
	go s.supervise(j, timeout)
	w.Header().Set("Location", "/jobs/"+j.ID)
	writeJSON(w, http.StatusAccepted, j.snapshot())
}

// supervise waits for a job, enforcing its timeout, and records the outcome.
func (s *server) supervise(j *job, timeout time.Duration) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	res, err := j.h.Wait(ctx)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		res, err = j.stopAndWait("job timed out after "+timeout.String(), "failed", "timeout", 2*time.Second)
	}
	// The guest has ended: its module may be released from now on (before
	// the status says so, so a client that saw the job end can rely on it).
	s.jobDone(j.kept)
	now := time.Now().UTC()
	j.mu.Lock()
	j.Finished = &now
	j.Seconds = now.Sub(j.Started).Seconds()
	var ge *wasmtask.Error
	switch {
	case err == nil:
		j.Status = "done"
		for _, v := range res.Values {
			j.Result = append(j.Result, strconv.FormatUint(v, 10))
		}
		st := res.Stats
		j.Stats = &st
	case j.stop.Load():
		why := j.stopWhy.Load()
		j.Status, j.Error, j.Kind = why.status, why.why, why.kind
		if errors.As(err, &ge) {
			st := ge.Stats
			j.Stats = &st
		}
	default:
		j.Status, j.Error = "failed", err.Error()
		if errors.As(err, &ge) {
			st := ge.Stats
			j.Stats = &st
			j.Kind, _ = wasmtask.FailureKind(err)
		}
	}
	j.mu.Unlock()
	s.mu.Lock()
	s.running--
	s.mu.Unlock()
}

// evictLocked drops the oldest finished jobs beyond keepJobs.
func (s *server) evictLocked() {
	for len(s.order) > s.cfg.keepJobs {
		evicted := false
		for i, id := range s.order {
			if j := s.jobs[id]; j.h.IsFinished() {
				delete(s.jobs, id)
				s.order = append(s.order[:i], s.order[i+1:]...)
				evicted = true
				break
			}
		}
		if !evicted {
			return
		}
	}
}

func (s *server) lookup(w http.ResponseWriter, r *http.Request) *job {
	s.mu.Lock()
	j := s.jobs[r.PathValue("id")]
	s.mu.Unlock()
	if j == nil {
		httpError(w, http.StatusNotFound, "no job %q", r.PathValue("id"))
	}
	return j
}

func (s *server) getJob(w http.ResponseWriter, r *http.Request) {
	if j := s.lookup(w, r); j != nil {
		writeJSON(w, http.StatusOK, j.snapshot())
	}
}

func (s *server) deleteJob(w http.ResponseWriter, r *http.Request) {
	j := s.lookup(w, r)
	if j == nil {
		return
	}
	if j.h.IsFinished() {
		httpError(w, http.StatusConflict, "job %s already finished", j.ID)
		return
	}
	j.cancel("cancelled by request", "cancelled", "")
	writeJSON(w, http.StatusAccepted, j.snapshot())
}

func (s *server) listJobs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var out []*job
	for i := len(s.order) - 1; i >= 0 && len(out) < 100; i-- {
		out = append(out, s.jobs[s.order[i]])
	}
	s.mu.Unlock()
	for i, j := range out {
		c := j.snapshot()
		c.Stdout, c.Stderr = "", ""
		out[i] = c
	}
	writeJSON(w, http.StatusOK, out)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
