package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/wasmsched/wasmsched/internal/compare"
)

func cmdCompare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cc, code := parseCompare(args, stderr)
	if cc == nil {
		return code
	}
	return cc.execute(ctx, stdout, stderr)
}

// execute checks the flags, runs the comparison and writes its results:
// compare's whole life after its flags.
func (cc *compareCmd) execute(ctx context.Context, stdout, stderr io.Writer) int {
	cfg, err := cc.config()
	if err != nil {
		return compareFail(stderr, err)
	}
	prog, err := newProgress(cc.progress, isTerminal(stderr), stderr)
	if err != nil {
		return compareFail(stderr, compareUsageErr("--progress: %v", err))
	}
	cfg.Progress = prog.report

	// The report's file is opened now, so that a path that cannot be
	// written fails before the runs, not after them.
	var out *reportFile
	if cc.report != "" {
		if out, err = openReport(cc.report); err != nil {
			return compareFail(stderr, compareUsageErr("--report: %v", err))
		}
	}

	rep, err := compare.Run(ctx, cfg)
	prog.done()
	interrupted := err != nil && ctx.Err() != nil && rep != nil
	if err != nil && !interrupted {
		out.abandon()
		if errors.Is(err, compare.ErrInput) {
			return compareFail(stderr, compareUsageErr("%v", strings.TrimPrefix(err.Error(), compare.ErrInput.Error()+": ")))
		}
		return compareFail(stderr, err)
	}
	// Complete, or interrupted (Ctrl-C): write what finished.
	code := exitOK
	if interrupted {
		code = exitFailure
		fmt.Fprintf(stderr, "wasmsched compare: interrupted after %d of %d runs; writing the runs that finished\n",
			rep.Incomplete.Finished, rep.Incomplete.Planned)
	}
	if err := cc.write(rep, out, stdout); err != nil {
		return compareFail(stderr, err)
	}
	return code
}

// write writes rep to stdout, as tables or JSON, then to the report's
// file if there is one (which it abandons if stdout fails).
func (cc *compareCmd) write(rep *compare.Report, out *reportFile, stdout io.Writer) error {
	if cc.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			out.abandon()
			return err
		}
	} else if err := compare.WriteTable(stdout, rep); err != nil {
		out.abandon()
		return err
	}
	if out == nil {
		return nil
	}
	if err := out.write(rep); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	if !cc.json {
		fmt.Fprintf(stdout, "\nreport: %s\n", cc.report)
	}
	return nil
}

// compareFail writes err after "wasmsched compare: " and returns its exit
// status: a *compareError's code, else exitFailure.
func compareFail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "wasmsched compare: %v\n", err)
	var ce *compareError
	if errors.As(err, &ce) {
		return ce.code
	}
	return exitFailure
}
