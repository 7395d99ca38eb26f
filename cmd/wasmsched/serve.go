package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
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
	"github.com/wasmsched/wasmsched/wasmtask/instrument"
)

const serveUsage = `usage: wasmsched serve [flags]

A small job service that embeds the executor, built to take modules and
requests from untrusted clients.

  POST   /jobs                     body: a .wasm module (at most --max-body bytes), or
  POST   /jobs?guest=NAME          no body: an embedded guest (spin, cguest, goguest)
         query: export=FN&args=1,2 call an export (args typed by its signature; default: WASI _start)
                arg=A&arg=B        WASI argv[1:]     fuel=N  fuel budget (at most --job-fuel)
                timeout=5s         job deadline (at most --job-timeout)
         -> 202 {"id": ..., "status": "running"}
            400 invalid module (naming what: decode error, limit, unresolved import
                module.function) or a call that cannot run (no such export, wrong
                argument count or type)
            413 module over --max-body; 429 when --max-jobs are running;
            503 when --max-uploads uploads or --upload-memory bytes are in flight;
            507 when --max-modules distinct uploads are kept and each has a job running
                (otherwise the least recently used upload is released to make room)
  GET    /jobs/{id}                status, result or error, guest stdout/stderr (first 64 KiB), counters
  DELETE /jobs/{id}                cancel a running job: 202, and it ends "cancelled"
  GET    /jobs                     recent jobs
  GET    /metrics                  Prometheus metrics (wasmsched_* families, Go runtime)
  GET    /healthz                  200 "ok", 503 while shutting down

Limits (flags below): each job runs at most --job-timeout and --job-fuel;
each guest's linear memory is capped by --guest-memory and all of them
together by --memory-budget (a memory.grow beyond either fails inside the
guest; a module whose minimum does not fit is refused), its tables by
--max-table; modules are decoded within the WebAssembly JS API's limits
(functions, locals, segments...); a client has
--header-timeout to send its headers and --body-timeout to send its body;
at most --max-conns connections are served at once. Job IDs are random.

On SIGINT/SIGTERM it stops accepting jobs, lets running jobs finish for
--shutdown-timeout, then cancels the rest and exits.

flags:
`

type serveConfig struct {
	workers         int
	maxBody         int64
	maxJobs         int
	jobTimeout      time.Duration
	jobFuel         int64
	shutdownTimeout time.Duration
	interrupt       wasmtask.Interrupt
	keepJobs        int
	maxModules      int
	guestMemory     int64
	memoryBudget    int64
	headerTimeout   time.Duration
	bodyTimeout     time.Duration
	maxUploads      int
	uploadMemory    int64
	maxConns        int
	maxTable        uint32
}

// Defaults of serve's limits. Each is a flag; these are what an operator
// gets without thinking about it: no tenant holds a slot for long, no
// guest or upload takes the machine's memory.
const (
	defaultJobTimeout   = 10 * time.Second
	defaultJobFuel      = 100_000_000_000 // about 8 s of one core running guest code here (~12.5 Gfuel/s, BENCHMARKS.md)
	defaultGuestMemory  = 256 << 20
	defaultMemoryBudget = 1 << 30 // 4 guests at the per-guest cap; the default --max-jobs is 8
	defaultMaxBody      = 16 << 20
	defaultMaxUploads   = 4
	defaultUploadMemory = 64 << 20 // 4 uploads of --max-body
	defaultMaxConns     = 128
	// defaultMaxTable bounds a table's elements (8 bytes of host memory
	// each, outside the memory budget): large C and Go programs use a few
	// thousand.
	defaultMaxTable = 100_000
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveUsage); fs.PrintDefaults() }
	addr := fs.String("addr", "127.0.0.1:9090", "listen address (loopback by default; the API has no authentication)")
	var cfg serveConfig
	fs.IntVar(&cfg.workers, "workers", 0, "runtime workers (0: GOMAXPROCS)")
	fs.Int64Var(&cfg.maxBody, "max-body", defaultMaxBody, "largest accepted module upload, bytes")
	fs.IntVar(&cfg.maxJobs, "max-jobs", 8, "jobs running at once; more are refused with 429")
	fs.DurationVar(&cfg.jobTimeout, "job-timeout", defaultJobTimeout, "longest a job may run (a request's timeout= may only lower it)")
	fs.Int64Var(&cfg.jobFuel, "job-fuel", defaultJobFuel, "most fuel a job may consume (a request's fuel= may only lower it; 0: unlimited)")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long running jobs may finish before they are cancelled")
	fs.IntVar(&cfg.keepJobs, "keep-jobs", 1000, "finished jobs kept for GET /jobs/{id}")
	fs.IntVar(&cfg.maxModules, "max-modules", 64, "distinct uploaded modules kept compiled; beyond it the least recently used one without running jobs is released")
	guestMemory := fs.String("guest-memory", "256MiB", "cap on each guest's linear memory")
	memoryBudget := fs.String("memory-budget", "1GiB", "cap on the linear memory of all running guests together")
	fs.DurationVar(&cfg.headerTimeout, "header-timeout", 5*time.Second, "time a client has to send a request's headers")
	fs.DurationVar(&cfg.bodyTimeout, "body-timeout", 20*time.Second, "time a client has to send an upload's body")
	fs.IntVar(&cfg.maxUploads, "max-uploads", defaultMaxUploads, "module uploads read at once; more are refused with 503")
	upMem := fs.String("upload-memory", "64MiB", "bytes that uploads in flight may hold; more are refused with 503")
	fs.IntVar(&cfg.maxConns, "max-conns", defaultMaxConns, "connections served at once; more wait to be accepted")
	maxTable := fs.Uint("max-table", defaultMaxTable, "most elements a guest's table may have, declared or grown")
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
	var err error
	for _, f := range []struct {
		name, val string
		dst       *int64
		max       int64
	}{{"--guest-memory", *guestMemory, &cfg.guestMemory, 4 << 30}, {"--memory-budget", *memoryBudget, &cfg.memoryBudget, 1 << 50},
		{"--upload-memory", *upMem, &cfg.uploadMemory, 1 << 50}} {
		if *f.dst, err = parseSize(f.val, f.max); err != nil {
			return usageErr("%s: %v", f.name, err)
		}
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
	case cfg.jobFuel < 0:
		return usageErr("--job-fuel must not be negative")
	case cfg.keepJobs < 1:
		return usageErr("--keep-jobs must be at least 1")
	case cfg.maxModules < 1:
		return usageErr("--max-modules must be at least 1")
	case cfg.headerTimeout <= 0 || cfg.bodyTimeout <= 0:
		return usageErr("--header-timeout and --body-timeout must be positive")
	case cfg.maxUploads < 1 || cfg.maxConns < 1:
		return usageErr("--max-uploads and --max-conns must be at least 1")
	case cfg.uploadMemory < cfg.maxBody:
		return usageErr("--upload-memory must hold at least one upload of --max-body bytes")
	}
	if *maxTable < 1 || *maxTable > 10_000_000 {
		return usageErr("--max-table must be from 1 to 10000000")
	}
	cfg.maxTable = uint32(*maxTable)
	if cfg.interrupt, err = parseInterrupt(*interrupt, false); err != nil {
		return usageErr("--interrupt: %v", err)
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
	srv := s.httpServer()
	fmt.Fprintf(stdout, "wasmsched serve: listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(newLimitListener(ln, cfg.maxConns)) }()
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

// httpServer is the HTTP server with serve's transport limits: a client
// gets --header-timeout for its headers (the body's deadline is set per
// upload), idle keep-alive connections are closed, headers are bounded.
func (s *server) httpServer() *http.Server {
	return &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: s.cfg.headerTimeout,
		IdleTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// limitListener serves at most n connections at once: Accept waits for a
// slot, so excess clients wait in the kernel's backlog instead of each
// holding a goroutine and buffers.
type limitListener struct {
	net.Listener
	slots  chan struct{}
	done   chan struct{}
	closed sync.Once
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

// Close stops Accept, also one waiting for a slot.
func (l *limitListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
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
	wg      sync.WaitGroup // job supervisors

	// Uploads being read: at most maxUploads, holding at most
	// uploadMemory bytes (each reserves its Content-Length, or --max-body
	// when it gives none, before its body is read).
	uploads     chan struct{}
	uploadBytes atomic.Int64

	// Uploaded modules stay compiled for reuse, at most maxModules of
	// them; the least recently used one with no unfinished job is closed
	// to make room. modMu covers keeping and counting, never compiling:
	// compiles run outside it (the engine runs one per distinct module
	// and bounds how many run at once), so a large upload does not hold
	// back another tenant's request for a module already compiled.
	modMu    sync.Mutex
	modules  map[[32]byte]*keptModule
	modTick  uint64
	embedded map[[32]byte]bool // the embedded guests: compiled for good, never closed

	beforeCompile func() // tests: called before an upload's compile
}

// keptModule is an uploaded module the server keeps compiled.
type keptModule struct {
	sum     [32]byte
	mod     *wasmtask.Module
	jobs    int    // jobs of the module not yet finished
	lastUse uint64 // modTick at its last job
}

// withDefaults fills zero fields with serve's defaults (the flags always
// set them; tests set only what they test).
func (c serveConfig) withDefaults() serveConfig {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.maxBody, defaultMaxBody)
	def(&c.guestMemory, defaultGuestMemory)
	def(&c.memoryBudget, defaultMemoryBudget)
	def(&c.uploadMemory, max(defaultUploadMemory, c.maxBody))
	if c.maxJobs == 0 {
		c.maxJobs = 8
	}
	if c.jobTimeout == 0 {
		c.jobTimeout = defaultJobTimeout
	}
	if c.keepJobs == 0 {
		c.keepJobs = 1000
	}
	if c.maxModules == 0 {
		c.maxModules = 64
	}
	if c.headerTimeout == 0 {
		c.headerTimeout = 5 * time.Second
	}
	if c.bodyTimeout == 0 {
		c.bodyTimeout = 20 * time.Second
	}
	if c.maxUploads == 0 {
		c.maxUploads = defaultMaxUploads
	}
	if c.maxConns == 0 {
		c.maxConns = defaultMaxConns
	}
	if c.maxTable == 0 {
		c.maxTable = defaultMaxTable
	}
	return c
}

func newServer(cfg serveConfig) (*server, error) {
	cfg = cfg.withDefaults()
	obs := metrics.NewObserver() // poll-duration and schedule-latency histograms
	opts := []scheduler.Option{scheduler.WithObserver(obs)}
	if cfg.workers > 0 {
		opts = append(opts, scheduler.WithWorkers(cfg.workers))
	}
	rt, err := scheduler.New(opts...)
	if err != nil {
		return nil, err
	}
	eng, err := wasmtask.NewEngine(context.Background(), wasmtask.EngineConfig{
		GuestMemoryLimit: cfg.guestMemory,
		MemoryBudget:     cfg.memoryBudget,
		Limits:           wasmtask.Limits{Module: instrument.Limits{TableInitial: cfg.maxTable, TableMaximum: cfg.maxTable}},
	})
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
		uploads: make(chan struct{}, max(cfg.maxUploads, 1)),
		modules: map[[32]byte]*keptModule{}, embedded: embedded}, nil
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
		for _, j := range live {
			j.cancel("cancelled: server shutting down", "cancelled", "")
		}
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
	stopWhy  atomic.Pointer[stopReason]
	out, err limitedBuffer
}

// stopReason is why a job was stopped and what it ends as, whatever the
// guest did meanwhile: a DELETE that was accepted ends the job
// "cancelled", even if the guest finished before it could be stopped.
type stopReason struct{ why, status, kind string }

// cancel stops the job: the guest is aborted at its next check, or at
// once if it is suspended (asleep, yielded, waiting). The first reason
// wins, and only before the job's end is recorded (both under j.mu), so
// a cancel that reports true is what the job ends as.
func (j *job) cancel(why, status, kind string) bool {
	j.mu.Lock()
	won := j.Finished == nil && j.stopWhy.CompareAndSwap(nil, &stopReason{why, status, kind})
	j.mu.Unlock()
	if won {
		j.h.Abort()
	}
	return won
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
	name := q.Get("guest")
	opts := wasmtask.Options{Name: name, Export: q.Get("export"), Interrupt: s.cfg.interrupt, FuelBudget: s.cfg.jobFuel}
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

// readUpload reads a module upload within serve's limits: an upload slot,
// bytes reserved against --upload-memory before reading, --max-body, and
// --body-timeout for the whole body. It returns the body, or the HTTP
// status and the reason it was refused.
func (s *server) readUpload(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	// Until the body is read, an answer closes the connection: the
	// server must not drain a body it refused (a slow client would hold
	// the connection again).
	w.Header().Set("Connection", "close")
	if r.ContentLength > s.cfg.maxBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("module of %d bytes is larger than the limit of %d bytes", r.ContentLength, s.cfg.maxBody)
	}
	select {
	case s.uploads <- struct{}{}:
		defer func() { <-s.uploads }()
	default:
		w.Header().Set("Retry-After", "1")
		return nil, http.StatusServiceUnavailable, fmt.Errorf("%d uploads are in flight (the limit); try again later", s.cfg.maxUploads)
	}
	reserve := s.cfg.maxBody
	if r.ContentLength >= 0 {
		reserve = r.ContentLength
	}
	if s.uploadBytes.Add(reserve) > s.cfg.uploadMemory {
		s.uploadBytes.Add(-reserve)
		w.Header().Set("Retry-After", "1")
		return nil, http.StatusServiceUnavailable, fmt.Errorf("uploads in flight hold %d bytes (the limit); try again later", s.cfg.uploadMemory)
	}
	defer s.uploadBytes.Add(-reserve)
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(s.cfg.bodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, min(reserve, s.cfg.maxBody)))
	if err == nil {
		rc.SetReadDeadline(time.Time{})
		w.Header().Del("Connection") // read whole: the connection may be kept
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) && r.ContentLength >= 0 && r.ContentLength < s.cfg.maxBody:
		return nil, http.StatusBadRequest, fmt.Errorf("body longer than its Content-Length of %d bytes", r.ContentLength)
	case errors.As(err, &mbe):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("module larger than the limit of %d bytes", s.cfg.maxBody)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, http.StatusRequestTimeout, fmt.Errorf("body not received within %v", s.cfg.bodyTimeout)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %v", err)
	case len(body) == 0:
		return nil, http.StatusBadRequest, errors.New("empty body: POST a .wasm module, or name an embedded guest with ?guest=spin|cguest|goguest")
	}
	return body, 0, nil
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
	j.h = wasmtask.Spawn(s.rt, mod, opts)
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

// supervise waits for a job, enforcing its timeout, and records the outcome.
func (s *server) supervise(j *job, timeout time.Duration) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	_, _ = j.h.Wait(ctx)
	cancel()
	if !j.h.IsFinished() {
		j.cancel("job timed out after "+timeout.String(), "failed", "timeout")
	}
	res, err := j.h.Wait(context.Background())
	// The guest has ended: its module may be released from now on (before
	// the status says so, so a client that saw the job end can rely on it).
	s.jobDone(j.kept)
	now := time.Now().UTC()
	j.mu.Lock()
	j.Finished = &now
	j.Seconds = now.Sub(j.Started).Seconds()
	var ge *wasmtask.Error
	if errors.As(err, &ge) {
		st := ge.Stats
		j.Stats = &st
	}
	switch why := j.stopWhy.Load(); {
	case why != nil:
		// Stopped by a DELETE, a timeout or the shutdown: it ends as that
		// said, whatever the guest did since.
		j.Status, j.Error, j.Kind = why.status, why.why, why.kind
		if err == nil {
			st := res.Stats
			j.Stats = &st
		}
	case err == nil:
		j.Status = "done"
		for _, v := range res.Values {
			j.Result = append(j.Result, strconv.FormatUint(v, 10))
		}
		st := res.Stats
		j.Stats = &st
	default:
		j.Status, j.Error = "failed", err.Error()
		j.Kind, _ = wasmtask.FailureKind(err)
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
	if !j.cancel("cancelled by request", "cancelled", "") {
		httpError(w, http.StatusConflict, "job %s already finished or being stopped", j.ID)
		return
	}
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
