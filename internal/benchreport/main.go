// Command benchreport is a development tool, not part of wasmsched's
// user interface: scripts/benchmarks.sh runs it to write BENCHMARKS.md from
// the raw `go test -bench` output of package scheduler (several -count
// runs), benchstat's summary of it, and the yield experiment's JSON (a list
// of experiment.YieldResult, written by TestYieldExperiment in
// scheduler/yieldexp_test.go). It adds the machine, the date, the Go
// version and the exact command, puts Tokio's figures from issue 2 and
// DESIGN.md (experiment.TokioYields) beside ours with the ratios, marks
// each target met or missed, and appends any BENCHMARKS.part.md files
// written by other tooling (the instrumenter's and the wasm sections).
//
// It reads the yield experiment's rows through the type the experiment
// writes, internal/experiment.YieldResult, so the two cannot drift apart,
// and its medians are experiment.Median, the yield experiment's.
//
// BENCHMARKS.md is generated: edit this program or the script, never the file.
//
// Usage:
//
//	go run ./internal/benchreport -bench bench.txt -benchstat benchstat.txt \
//	    -yieldexp yieldexp.json -cmd "scripts/benchmarks.sh" \
//	    -part wasmtask/instrument/BENCHMARKS.part.md -o BENCHMARKS.md
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/wasmsched/wasmsched/internal/experiment"
)

func main() {
	var (
		benchFile  = flag.String("bench", "", "raw `go test -bench` output (required)")
		statFile   = flag.String("benchstat", "", "benchstat output of the same runs (optional, included verbatim)")
		yieldFile  = flag.String("yieldexp", "", "the yield experiment's JSON (optional)")
		yieldLog   = flag.String("yieldlog", "", "the yield experiment's test log (optional, included verbatim)")
		command    = flag.String("cmd", "scripts/benchmarks.sh", "the command that produced the inputs")
		benchCmd   = flag.String("benchcmd", "", "the exact go test -bench command")
		yieldCmd   = flag.String("yieldcmd", "", "the exact command of the yield experiment")
		goVersion  = flag.String("goversion", "", "output of `go version` (default: this program's runtime.Version)")
		commit     = flag.String("commit", "", "the commit measured (git describe --always --dirty)")
		foreign    = flag.String("foreign", "", "cores other processes kept busy, on average, during the benchmarks")
		load       = flag.String("load", "", "load averages seen around the runs (other work on the machine skews the figures)")
		hostPhase  = flag.String("hostphase", "", "the host-phase probe's cache-line round trips around the benchmarks (../shared/tools/hostphase)")
		out        = flag.String("o", "BENCHMARKS.md", "output file")
		partsFlags multiFlag
	)
	flag.Var(&partsFlags, "part", "a BENCHMARKS.part.md file to append (repeatable)")
	flag.Parse()
	if *benchFile == "" {
		fmt.Fprintln(os.Stderr, "benchreport: -bench is required")
		os.Exit(2)
	}
	if err := run(config{
		bench: *benchFile, stat: *statFile, yield: *yieldFile, yieldLog: *yieldLog,
		command: *command, benchCmd: *benchCmd, yieldCmd: *yieldCmd,
		goVersion: *goVersion, commit: *commit, load: *load, foreign: *foreign, hostPhase: *hostPhase, out: *out, parts: partsFlags,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

type config struct {
	bench, stat, yield, yieldLog string
	command, benchCmd, yieldCmd  string
	goVersion, commit, out, load string
	foreign, hostPhase           string
	parts                        []string
	now                          time.Time // zero: time.Now()
}

// inputs are what the report is made from, read by readInputs.
type inputs struct {
	bench  *benchSet
	stat   string // benchstat's output, if given
	yields []experiment.YieldResult
	ylog   string // the yield experiment's log, if given
}

func run(c config) error {
	in, err := readInputs(c)
	if err != nil {
		return err
	}
	var md strings.Builder
	writeReport(&md, c, in)
	return os.WriteFile(c.out, []byte(md.String()), 0o644)
}

// readInputs reads the benchmarks' output, and the optional files that
// are given.
func readInputs(c config) (inputs, error) {
	var in inputs
	f, err := os.Open(c.bench)
	if err != nil {
		return in, err
	}
	defer f.Close()
	if in.bench, err = parseBench(f); err != nil {
		return in, err
	}
	if in.stat, err = readOptional(c.stat); err != nil {
		return in, err
	}
	if c.yield != "" {
		b, err := os.ReadFile(c.yield)
		if err != nil {
			return in, err
		}
		if err := json.Unmarshal(b, &in.yields); err != nil {
			return in, fmt.Errorf("%s: %w", c.yield, err)
		}
	}
	if in.ylog, err = readOptional(c.yieldLog); err != nil {
		return in, err
	}
	return in, nil
}

// readOptional is the content of the file at path, or "" if path is "".
func readOptional(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	return string(b), err
}
