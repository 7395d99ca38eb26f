// Command wasmsched compares scheduling modes for preemptible Wasm guests,
// runs one guest as a task, and serves a small job service that embeds
// the executor.
//
//	wasmsched compare [flags]            run the mode comparison (defaults: embedded spin guest, 3 scenarios, 3 modes)
//	wasmsched run [flags] FILE.wasm [-- args]   run one WASI guest (or --export NAME) as a task
//	wasmsched serve [--addr 127.0.0.1:8470]     durable job service on NATS JetStream: POST /jobs, GET /jobs/{id}, /metrics
//	wasmsched submit [flags] FILE.wasm [-- argv]  submit a job to a job service (or --guest NAME; --wait for its end)
//	wasmsched status [flags] ID                 a job's status, result, timing and output
//	wasmsched cancel [flags] ID                 cancel a queued or running job
//	wasmsched version                           module version, VCS revision, Go version
//
// Run `wasmsched COMMAND -h` for a command's flags. Exit status of compare
// and serve: 0 success, 1 a run failed (compare: also when interrupted; the
// runs that finished are written), 2 bad usage. `run` passes a WASI
// guest's own exit code through (1-122; 123 for 123 and above) and uses
// 124-134 for its own outcomes, so the two never collide: 124 timed out,
// 125 usage error, 126 invalid module, 127 internal error, 130
// interrupted, 134 the guest failed (trap, fuel, memory).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `usage: wasmsched <command> [flags]

commands:
  compare   run guests under each scheduling mode and compare latency, fairness, migrations
  run       run one Wasm guest as a task: wasmsched run [flags] FILE.wasm [-- args]
  serve     serve a durable job API on NATS JetStream, with Prometheus metrics (default 127.0.0.1:8470)
  submit    submit a job to a job service: wasmsched submit [flags] FILE.wasm|--guest NAME [-- argv]
  status    print a job's status, result and output: wasmsched status [flags] ID
  cancel    cancel a queued or running job: wasmsched cancel [flags] ID
  version   print the module version, VCS revision and Go version of this build

Run 'wasmsched <command> -h' for the command's flags.
`

// run is the whole command: it parses args, runs a subcommand and returns
// the process's exit status. Cancelling ctx (SIGINT, SIGTERM) stops it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "compare":
		return cmdCompare(ctx, args[1:], stdout, stderr)
	case "run":
		return cmdRun(ctx, args[1:], stdin, stdout, stderr)
	case "serve":
		return cmdServe(ctx, args[1:], stdout, stderr)
	case "submit":
		return cmdSubmit(ctx, args[1:], stdout, stderr)
	case "status":
		return cmdStatus(ctx, args[1:], stdout, stderr)
	case "cancel":
		return cmdCancel(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		return cmdVersion(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "wasmsched: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
