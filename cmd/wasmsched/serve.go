package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/wasmsched/wasmsched/wasmtask"
)

const serveUsage = `usage: wasmsched serve [flags]

A small job service that embeds the executor, built to take modules and
requests from untrusted clients.

  POST   /jobs                     body: a .wasm module (at most --max-body bytes), or
  POST   /jobs?guest=NAME          no body: an embedded guest (spin, cguest, goguest)
         query: export=FN&args=1,2 call an export (args typed by its signature; default: WASI _start)
                arg=A&arg=B        WASI argv[1:]     fuel=N  fuel budget (at most --job-fuel)
                timeout=5s         job deadline (at most --job-timeout)
                allow_command_exports=1  let export=FN call a function of a WASI
                                   command (a module exporting _start); refused otherwise
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
	return serveUntilDone(ctx, cfg, *addr, stdout, stderr)
}

// serveUntilDone serves on addr until ctx is done (SIGINT, SIGTERM), then
// shuts down: no new jobs, running jobs get --shutdown-timeout, the rest
// are cancelled.
func serveUntilDone(ctx context.Context, cfg serveConfig, addr string, stdout, stderr io.Writer) int {
	s, err := newServer(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "wasmsched serve: %v\n", err)
		return exitFailure
	}
	ln, err := net.Listen("tcp", addr)
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
