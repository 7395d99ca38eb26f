package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wasmsched/wasmsched/jobs"
	"github.com/wasmsched/wasmsched/wasmtask"
)

const serveUsage = `usage: wasmsched serve [flags]

A durable, multi-tenant job service on NATS JetStream, built to take
modules and requests from untrusted clients. With no flags it starts an
embedded NATS server storing in --data-dir; with --nats URL it joins an
existing NATS (any number of replicas share the work).

  POST   /jobs                     body: a .wasm module (at most --max-body bytes), or
  POST   /jobs?guest=NAME          no body: an embedded guest (spin, cguest, goguest)
         query: export=FN&args=1,2 call an export (args typed by its signature; default: WASI _start)
                arg=A&arg=B        WASI argv[1:]     fuel=N  fuel budget (at most --job-fuel)
                timeout=5s         job deadline (at most --job-timeout)
                allow_command_exports=1  let export=FN call a function of a WASI
                                   command (a module exporting _start); refused otherwise
         header: X-Wasmsched-Tenant: NAME (no auth; with auth the token names the tenant)
         -> 202 {"id": ..., "status": "queued"}: it runs when a replica has a free slot
            400 invalid module (naming what: decode error, limit, unresolved import
                module.function), a call that cannot run (no such export, wrong
                argument count or type), or a bad tenant name
            401 missing or unknown bearer token (with --auth-token-file)
            413 module over --max-body; 429 the queue (or the tenant's share) is full;
            503 when --max-uploads uploads or --upload-memory bytes are in flight,
                while shutting down, or when NATS does not answer;
            507 no room to keep or store the module
  GET    /jobs/{id}                status (queued, running, done, failed, cancelled),
                                   result or error, guest stdout/stderr (first 64 KiB), counters
  DELETE /jobs/{id}                cancel a queued or running job, on whichever replica:
                                   202, and it ends "cancelled"; 409 if it already ended
  GET    /jobs                     the 100 most recent jobs (the tenant's, with auth)
  GET    /metrics                  Prometheus metrics (wasmsched_* families, Go runtime)
  GET    /healthz                  200 "ok"; 503 while shutting down or without NATS
  GET    /debug/pprof/             with --pprof only

Durable (in JetStream, across restarts and replicas): queued jobs, job
records with results and output (for --keep-jobs-for), uploaded modules.
Not durable: a running guest's progress (a job whose replica dies runs
again from the start elsewhere, after --ack-wait).

Limits (flags below): each job runs at most --job-timeout and --job-fuel;
each guest's linear memory is capped by --guest-memory and all of them
together by --memory-budget (a memory.grow beyond either fails inside the
guest; a module whose minimum does not fit is refused), its tables by
--max-table; modules are decoded within the WebAssembly JS API's limits
(functions, locals, segments...); a client has
--header-timeout to send its headers and --body-timeout to send its body;
at most --max-conns connections are served at once. Job IDs are unique
across replicas and restarts: time-ordered, with 80 random bits.

On SIGINT/SIGTERM it stops taking jobs, lets running jobs finish for
--shutdown-timeout, then hands the rest back to the queue (another
replica, or this one restarted, runs them) and exits. A second signal
exits at once.

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
	maxModules      int
	guestMemory     int64
	memoryBudget    int64
	headerTimeout   time.Duration
	bodyTimeout     time.Duration
	maxUploads      int
	uploadMemory    int64
	maxConns        int
	maxTable        uint32

	dataDir             string // embedded NATS's store ("" with natsURL)
	natsURL             string // an existing NATS: no embedded server
	natsCreds           string // credentials file for natsURL
	replicas            int
	replica             string
	keepJobsFor         time.Duration
	maxQueued           int64
	maxQueuedPerTenant  int64
	maxRunningPerTenant int
	maxTenants          int
	moduleStore         int64
	ackWait             time.Duration
	maxDeliveries       int
	tokens              map[string]string // bearer token -> tenant; nil: no auth
	pprof               bool
	logger              *slog.Logger
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

// defaultServeAddr is serve's listen address: loopback, and not
// Prometheus's 9090.
const defaultServeAddr = "127.0.0.1:8470"

// serveFlags are the flags whose values need parsing after fs.Parse.
type serveFlags struct {
	addr, guestMemory, memoryBudget, uploadMemory, moduleStore string
	interrupt, logFormat, authFile                             string
	maxTable                                                   uint
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveUsage); fs.PrintDefaults() }
	var cfg serveConfig
	f := defineServeFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wasmsched serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if err := f.finish(&cfg, stderr); err != nil {
		fmt.Fprintf(stderr, "wasmsched serve: %v\n", err)
		return exitUsage
	}
	return serveUntilDone(ctx, cfg, f.addr, stdout, stderr)
}

func defineServeFlags(fs *flag.FlagSet, cfg *serveConfig) *serveFlags {
	f := &serveFlags{}
	fs.StringVar(&f.addr, "addr", defaultServeAddr, "listen address; one that is not loopback needs --auth-token-file")
	fs.IntVar(&cfg.workers, "workers", 0, "runtime workers (0: GOMAXPROCS)")
	fs.Int64Var(&cfg.maxBody, "max-body", defaultMaxBody, "largest accepted module upload, bytes")
	fs.IntVar(&cfg.maxJobs, "max-jobs", 8, "jobs this replica runs at once; more wait queued")
	fs.IntVar(&cfg.maxRunningPerTenant, "max-running-per-tenant", 0, "jobs of one tenant this replica runs at once (0: --max-jobs)")
	fs.Int64Var(&cfg.maxQueued, "max-queued", 100_000, "jobs queued or running in all (shared by replicas); more are refused with 429")
	fs.Int64Var(&cfg.maxQueuedPerTenant, "max-queued-per-tenant", 0, "jobs of one tenant queued or running (0: --max-queued)")
	fs.IntVar(&cfg.maxTenants, "max-tenants", 1000, "tenants with a queue; a new one beyond is refused with 429")
	fs.DurationVar(&cfg.jobTimeout, "job-timeout", defaultJobTimeout, "longest a job may run (a request's timeout= may only lower it)")
	fs.Int64Var(&cfg.jobFuel, "job-fuel", defaultJobFuel, "most fuel a job may consume (a request's fuel= may only lower it; 0: unlimited)")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long running jobs may finish before they are handed back to the queue")
	fs.DurationVar(&cfg.keepJobsFor, "keep-jobs-for", 24*time.Hour, "how long job records (and queued jobs) are kept")
	fs.IntVar(&cfg.maxModules, "max-modules", 64, "distinct uploaded modules kept compiled on this replica; beyond it the least recently used one without running jobs is released")
	fs.StringVar(&f.moduleStore, "module-store", "1GiB", "bytes of uploaded modules stored in NATS; a new module beyond is refused with 507")
	fs.StringVar(&f.guestMemory, "guest-memory", "256MiB", "cap on each guest's linear memory")
	fs.StringVar(&f.memoryBudget, "memory-budget", "1GiB", "cap on the linear memory of all running guests together")
	fs.DurationVar(&cfg.headerTimeout, "header-timeout", 5*time.Second, "time a client has to send a request's headers")
	fs.DurationVar(&cfg.bodyTimeout, "body-timeout", 20*time.Second, "time a client has to send an upload's body")
	fs.IntVar(&cfg.maxUploads, "max-uploads", defaultMaxUploads, "module uploads read at once; more are refused with 503")
	fs.StringVar(&f.uploadMemory, "upload-memory", "64MiB", "bytes that uploads in flight may hold; more are refused with 503")
	fs.IntVar(&cfg.maxConns, "max-conns", defaultMaxConns, "connections served at once; more wait to be accepted")
	fs.UintVar(&f.maxTable, "max-table", defaultMaxTable, "most elements a guest's table may have, declared or grown")
	fs.StringVar(&f.interrupt, "interrupt", "epoch", "guest interrupt: epoch or fuel")
	fs.StringVar(&cfg.dataDir, "data-dir", "", "embedded NATS's storage (default: $XDG_DATA_HOME/wasmsched, or ~/.local/share/wasmsched; created if missing)")
	fs.StringVar(&cfg.natsURL, "nats", "", "URL(s) of an existing NATS with JetStream (comma-separated); no embedded server is started")
	fs.StringVar(&cfg.natsCreds, "nats-creds", "", "credentials file (JWT and NKey) for --nats; or put user:password in the URL")
	fs.IntVar(&cfg.replicas, "replicas", 1, "JetStream replication of the queue, records and modules it creates (1 to 5)")
	fs.StringVar(&cfg.replica, "replica", "", "this replica's name, unique among live replicas (default: host-pid-random)")
	fs.DurationVar(&cfg.ackWait, "ack-wait", 30*time.Second, "a job whose replica died runs again elsewhere after this")
	fs.IntVar(&cfg.maxDeliveries, "max-deliveries", 5, "a job delivered more often (its replicas kept dying) ends failed")
	fs.StringVar(&f.authFile, "auth-token-file", "", "bearer tokens, one per line: TENANT TOKEN (a bare TOKEN is tenant \"default\")")
	fs.BoolVar(&cfg.pprof, "pprof", false, "serve /debug/pprof/ (behind the auth, if any)")
	fs.StringVar(&f.logFormat, "log-format", "text", "job log lines on stderr: text or json")
	return f
}

// finish parses and checks what the flags gave.
func (f *serveFlags) finish(cfg *serveConfig, stderr io.Writer) error {
	var err error
	for _, v := range []struct {
		name, val string
		dst       *int64
		max       int64
	}{{"--guest-memory", f.guestMemory, &cfg.guestMemory, 4 << 30}, {"--memory-budget", f.memoryBudget, &cfg.memoryBudget, 1 << 50},
		{"--upload-memory", f.uploadMemory, &cfg.uploadMemory, 1 << 50}, {"--module-store", f.moduleStore, &cfg.moduleStore, 1 << 50}} {
		if *v.dst, err = parseSize(v.val, v.max); err != nil {
			return fmt.Errorf("%s: %v", v.name, err)
		}
	}
	switch {
	case cfg.workers < 0:
		return errors.New("--workers must not be negative")
	case cfg.maxBody < 8:
		return errors.New("--max-body must be at least 8 bytes")
	case cfg.maxJobs < 1 || cfg.maxRunningPerTenant < 0:
		return errors.New("--max-jobs must be at least 1 and --max-running-per-tenant not negative")
	case cfg.maxQueued < 1 || cfg.maxQueuedPerTenant < 0 || cfg.maxTenants < 1:
		return errors.New("--max-queued and --max-tenants must be at least 1, --max-queued-per-tenant not negative")
	case cfg.jobTimeout <= 0 || cfg.shutdownTimeout < 0:
		return errors.New("--job-timeout must be positive and --shutdown-timeout not negative")
	case cfg.jobFuel < 0:
		return errors.New("--job-fuel must not be negative")
	case cfg.keepJobsFor < time.Minute:
		return errors.New("--keep-jobs-for must be at least 1m")
	case cfg.maxModules < 1 || cfg.moduleStore < 1:
		return errors.New("--max-modules and --module-store must be at least 1")
	case cfg.headerTimeout <= 0 || cfg.bodyTimeout <= 0:
		return errors.New("--header-timeout and --body-timeout must be positive")
	case cfg.maxUploads < 1 || cfg.maxConns < 1:
		return errors.New("--max-uploads and --max-conns must be at least 1")
	case cfg.uploadMemory < cfg.maxBody:
		return errors.New("--upload-memory must hold at least one upload of --max-body bytes")
	case f.maxTable < 1 || f.maxTable > 10_000_000:
		return errors.New("--max-table must be from 1 to 10000000")
	case cfg.replicas < 1 || cfg.replicas > 5:
		return errors.New("--replicas must be from 1 to 5 (JetStream's limit)")
	case cfg.ackWait < 100*time.Millisecond || cfg.maxDeliveries < 1:
		return errors.New("--ack-wait must be at least 100ms and --max-deliveries at least 1")
	case cfg.natsURL != "" && cfg.dataDir != "":
		return errors.New("--data-dir is the embedded server's; with --nats the data lives in that NATS")
	case cfg.natsURL == "" && cfg.natsCreds != "":
		return errors.New("--nats-creds needs --nats")
	case cfg.replica != "" && !jobs.ValidTenant(cfg.replica):
		return errors.New("--replica: 1 to 64 letters, digits, '-' or '_'")
	}
	cfg.maxTable = uint32(f.maxTable)
	if cfg.interrupt, err = parseInterrupt(f.interrupt, false); err != nil {
		return fmt.Errorf("--interrupt: %v", err)
	}
	switch f.logFormat {
	case "text":
		cfg.logger = slog.New(slog.NewTextHandler(stderr, nil))
	case "json":
		cfg.logger = slog.New(slog.NewJSONHandler(stderr, nil))
	default:
		return fmt.Errorf("--log-format: %q is not text or json", f.logFormat)
	}
	if f.authFile != "" {
		if cfg.tokens, err = readTokens(f.authFile); err != nil {
			return fmt.Errorf("--auth-token-file: %v", err)
		}
	} else if !loopback(f.addr) {
		return fmt.Errorf("--addr %s is not loopback: it needs --auth-token-file (the API would be open to the network)", f.addr)
	}
	if cfg.natsURL == "" && cfg.dataDir == "" {
		if cfg.dataDir, err = defaultDataDir(); err != nil {
			return fmt.Errorf("--data-dir: %v", err)
		}
	}
	return nil
}

// serveUntilDone serves on addr until ctx is done (SIGINT, SIGTERM), then
// shuts down: no new jobs, running jobs get --shutdown-timeout, the rest
// are handed back to the queue. A second signal exits at once.
func serveUntilDone(ctx context.Context, cfg serveConfig, addr string, stdout, stderr io.Writer) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "wasmsched serve: %v\n", err)
		return exitFailure
	}
	s, err := newServer(cfg)
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "wasmsched serve: %v\n", err)
		return exitFailure
	}
	srv := s.httpServer()
	fmt.Fprintf(stdout, "wasmsched serve: replica %s, jobs in %s\n", s.svc.Replica(), s.where)
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
	// A second SIGINT/SIGTERM during the shutdown exits at once: the
	// jobs still running are redelivered after --ack-wait.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	stopped := make(chan struct{})
	defer func() { signal.Stop(again); close(stopped) }()
	go func() {
		select {
		case <-again:
			fmt.Fprintln(stderr, "wasmsched serve: second signal: exiting now")
			os.Exit(exitFailure)
		case <-stopped:
		}
	}()
	fmt.Fprintf(stdout, "wasmsched serve: shutting down (running jobs get %v)\n", cfg.shutdownTimeout)
	s.draining.Store(true)
	dctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	finished, handedBack := s.close(dctx)
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	srv.Shutdown(hctx)
	<-errc
	fmt.Fprintf(stdout, "wasmsched serve: stopped (%d jobs finished during shutdown, %d handed back to the queue)\n", finished, handedBack)
	return exitOK
}
