package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"strconv"
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

// The job service: submit, supervise, inspect, cancel.

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
