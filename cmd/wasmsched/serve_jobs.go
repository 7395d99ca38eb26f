package main

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wasmsched/wasmsched/jobs"
	"github.com/wasmsched/wasmsched/metrics"
	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
	"github.com/wasmsched/wasmsched/wasmtask/instrument"
)

// serve wires package jobs to HTTP: the transport limits, tenants and
// auth, and the answers' status codes live here; queueing, running and
// recording jobs live in jobs.

// server is one replica: a runtime, an engine, a jobs.Service on NATS.
type server struct {
	cfg      serveConfig
	rt       *scheduler.Runtime
	eng      *wasmtask.Engine
	reg      *prometheus.Registry
	svc      *jobs.Service
	nc       *nats.Conn
	ns       *jobs.EmbeddedNATS // nil with --nats
	unlock   func()             // releases the data directory
	where    string             // where the jobs live, for the start line
	log      *slog.Logger
	draining atomic.Bool

	// Uploads being read: at most maxUploads, holding at most
	// uploadMemory bytes (each reserves its Content-Length, or --max-body
	// when it gives none, before its body is read).
	uploads     chan struct{}
	uploadBytes atomic.Int64
}

// tenantHeader names the tenant of a request when auth is off.
const tenantHeader = "X-Wasmsched-Tenant"

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
	if c.logger == nil {
		c.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

func newServer(cfg serveConfig) (_ *server, err error) {
	cfg = cfg.withDefaults()
	s := &server{cfg: cfg, log: cfg.logger, uploads: make(chan struct{}, max(cfg.maxUploads, 1))}
	defer func() {
		if err != nil { // whatever was started is stopped
			s.close(context.Background())
		}
	}()
	if err := s.connect(); err != nil {
		return nil, err
	}
	obs := metrics.NewObserver() // poll-duration and schedule-latency histograms
	opts := []scheduler.Option{scheduler.WithObserver(obs)}
	if cfg.workers > 0 {
		opts = append(opts, scheduler.WithWorkers(cfg.workers))
	}
	if s.rt, err = scheduler.New(opts...); err != nil {
		return nil, err
	}
	if s.eng, err = wasmtask.NewEngine(context.Background(), wasmtask.EngineConfig{
		GuestMemoryLimit: cfg.guestMemory,
		MemoryBudget:     cfg.memoryBudget,
		Limits:           wasmtask.Limits{Module: instrument.Limits{TableInitial: cfg.maxTable, TableMaximum: cfg.maxTable}},
	}); err != nil {
		return nil, err
	}
	s.reg = prometheus.NewRegistry()
	if _, err := metrics.Register(s.reg, s.rt, s.eng); err != nil {
		return nil, err
	}
	s.reg.MustRegister(obs, collectors.NewGoCollector())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.svc, err = jobs.New(ctx, s.nc, jobs.Config{Runtime: s.rt, Engine: s.eng, Replica: cfg.replica,
		MaxRunning: cfg.maxJobs, MaxRunningPerTenant: cfg.maxRunningPerTenant, MaxQueued: cfg.maxQueued,
		MaxQueuedPerTenant: cfg.maxQueuedPerTenant, MaxTenants: cfg.maxTenants, JobTimeout: cfg.jobTimeout,
		JobFuel: cfg.jobFuel, Interrupt: cfg.interrupt, KeepJobsFor: cfg.keepJobsFor, MaxModules: cfg.maxModules,
		ModuleStoreBytes: cfg.moduleStore, AckWait: cfg.ackWait, MaxDeliveries: cfg.maxDeliveries,
		Replicas: cfg.replicas, Logger: cfg.logger, Registerer: s.reg})
	return s, err
}

// connect starts the embedded NATS on the data directory (locked against
// a second serve) or connects to --nats.
func (s *server) connect() error {
	opts := []nats.Option{nats.Name("wasmsched serve"), nats.MaxReconnects(-1)}
	if s.cfg.natsURL != "" {
		if s.cfg.natsCreds != "" {
			opts = append(opts, nats.UserCredentials(s.cfg.natsCreds))
		}
		nc, err := nats.Connect(s.cfg.natsURL, opts...)
		if err != nil {
			return fmt.Errorf("connecting to --nats %s: %w", s.cfg.natsURL, err)
		}
		s.nc, s.where = nc, "NATS at "+nc.ConnectedUrlRedacted()
		return nil
	}
	if err := os.MkdirAll(s.cfg.dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	unlock, err := lockDir(s.cfg.dataDir)
	if err != nil {
		return err
	}
	s.unlock = unlock
	if s.ns, err = jobs.StartEmbeddedNATS(filepath.Join(s.cfg.dataDir, "jetstream"), ""); err != nil {
		return err
	}
	if s.nc, err = s.ns.Connect(opts...); err != nil {
		return err
	}
	s.where = "embedded NATS storing in " + s.cfg.dataDir
	return nil
}

// close lets running jobs finish until ctx is done, hands the rest back,
// and stops everything the server started. It reports how many jobs ended
// here and how many were handed back.
func (s *server) close(ctx context.Context) (finished, handedBack int) {
	s.draining.Store(true)
	if s.svc != nil {
		finished, handedBack = s.svc.Drain(ctx)
	}
	if s.nc != nil {
		s.nc.Close() // after Drain: nothing of the service still uses it
	}
	if s.ns != nil {
		s.ns.Shutdown()
	}
	if s.unlock != nil {
		s.unlock()
	}
	sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
	defer c()
	if s.rt != nil {
		s.rt.Shutdown(sctx)
	}
	if s.eng != nil {
		s.eng.Close(context.Background())
	}
	return finished, handedBack
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /jobs", s.authed(s.postJob))
	mux.HandleFunc("GET /jobs", s.authed(s.listJobs))
	mux.HandleFunc("GET /jobs/{id}", s.authed(s.getJob))
	mux.HandleFunc("DELETE /jobs/{id}", s.authed(s.deleteJob))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case s.draining.Load():
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
		case !s.svc.Ready():
			http.Error(w, "not connected to NATS", http.StatusServiceUnavailable)
		default:
			io.WriteString(w, "ok\n")
		}
	})
	if s.cfg.pprof {
		pp := http.NewServeMux()
		pp.HandleFunc("/debug/pprof/", pprof.Index)
		pp.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		pp.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pp.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		pp.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pprof/", s.authed(func(w http.ResponseWriter, r *http.Request, _ string) { pp.ServeHTTP(w, r) }))
	}
	return mux
}

// authed resolves the request's tenant and passes it on: with auth, the
// bearer token's tenant (401 without a known token); without, the
// tenant header or "default". scope is "" without auth: tenants are then
// labels, not a boundary, and any job may be read or cancelled.
func (s *server) authed(h func(w http.ResponseWriter, r *http.Request, tenant string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.tokens == nil {
			tenant := r.Header.Get(tenantHeader)
			if tenant == "" {
				tenant = "default"
			}
			if !jobs.ValidTenant(tenant) {
				httpError(w, http.StatusBadRequest, "%s: 1 to 64 letters, digits, '-' or '_'", tenantHeader)
				return
			}
			h(w, r.WithContext(context.WithValue(r.Context(), scopeKey{}, "")), tenant)
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		tenant := ""
		for t, ten := range s.cfg.tokens {
			// Compare every token in constant time: which one matched, or
			// how far, is not told by the answer's timing.
			if ok && subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
				tenant = ten
			}
		}
		if tenant == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wasmsched"`)
			httpError(w, http.StatusUnauthorized, "missing or unknown bearer token")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), scopeKey{}, tenant)), tenant)
	}
}

type scopeKey struct{}

// scope is the tenant whose jobs r may see ("" without auth: all).
func scope(r *http.Request) string {
	s, _ := r.Context().Value(scopeKey{}).(string)
	return s
}

// statusOf maps the service's errors to HTTP statuses.
func statusOf(err error) int {
	switch {
	case errors.Is(err, jobs.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, jobs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, jobs.ErrFinished):
		return http.StatusConflict
	case errors.Is(err, jobs.ErrQueueFull):
		return http.StatusTooManyRequests
	case errors.Is(err, jobs.ErrNoRoom):
		return http.StatusInsufficientStorage
	default: // ErrDraining, ErrUnavailable, a compile that could not run
		return http.StatusServiceUnavailable
	}
}

func (s *server) getJob(w http.ResponseWriter, r *http.Request, _ string) {
	j, err := s.svc.Get(r.Context(), scope(r), r.PathValue("id"))
	if err != nil {
		httpError(w, statusOf(err), "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *server) deleteJob(w http.ResponseWriter, r *http.Request, _ string) {
	j, err := s.svc.Cancel(r.Context(), scope(r), r.PathValue("id"))
	if err != nil {
		httpError(w, statusOf(err), "%v", err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

func (s *server) listJobs(w http.ResponseWriter, r *http.Request, _ string) {
	list, err := s.svc.List(r.Context(), scope(r), 100)
	if err != nil {
		httpError(w, statusOf(err), "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// readTokens reads --auth-token-file: one "TENANT TOKEN" or "TOKEN" per
// line; blank lines and # comments are skipped.
func readTokens(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseTokens(io.LimitReader(f, 16<<20))
}

// parseTokens parses the token file's text (see readTokens).
func parseTokens(r io.Reader) (map[string]string, error) {
	tokens := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		tenant, token := "default", line
		if fs := strings.Fields(line); len(fs) == 2 {
			tenant, token = fs[0], fs[1]
		} else if len(fs) != 1 {
			return nil, fmt.Errorf("line %d: want TENANT TOKEN or TOKEN", n)
		}
		if !jobs.ValidTenant(tenant) {
			return nil, fmt.Errorf("line %d: tenant %q: 1 to 64 letters, digits, '-' or '_'", n, tenant)
		}
		if len(token) < 16 {
			return nil, fmt.Errorf("line %d: a token of %d characters is guessable; use at least 16", n, len(token))
		}
		tokens[token] = tenant
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(tokens) == 0 {
		return nil, errors.New("no tokens")
	}
	return tokens, nil
}

// loopback reports whether addr listens on a loopback address only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// defaultDataDir is $XDG_DATA_HOME/wasmsched, or ~/.local/share/wasmsched.
func defaultDataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "wasmsched"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "share", "wasmsched"), nil
}
