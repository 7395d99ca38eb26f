package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/wasmsched/wasmsched/internal/compare"
)

// compareProgress writes compare's progress to stderr: a live line,
// rewritten in place, when stderr is a terminal; a line per run otherwise,
// so that a log (or `--json > file` with stderr on a terminal) still shows
// where the comparison is; or nothing.
type compareProgress struct {
	w     io.Writer
	live  bool // the in-place line (a terminal)
	plain bool // a line per run
	shown bool // the live line is on screen
}

// newProgress reads --progress: auto (live when tty, else plain), plain or
// off.
func newProgress(mode string, tty bool, w io.Writer) (*compareProgress, error) {
	p := &compareProgress{w: w}
	switch mode {
	case "auto":
		p.live, p.plain = tty, !tty
	case "plain":
		p.plain = true
	case "off":
	default:
		return nil, fmt.Errorf("must be auto, plain or off, got %q", mode)
	}
	return p, nil
}

// report is compare.Config.Progress.
func (p *compareProgress) report(pr compare.Progress) {
	switch {
	case p.live:
		fmt.Fprintf(p.w, "\r\033[K[%d/%d] %s / %s  %.1f of %.1f s", pr.Run, pr.Runs, pr.Scenario, pr.Mode,
			pr.Elapsed.Seconds(), pr.Planned.Seconds())
		p.shown = true
	case p.plain && pr.Start:
		fmt.Fprintf(p.w, "wasmsched compare: [%d/%d] %s / %s (%.1f s)\n", pr.Run, pr.Runs, pr.Scenario, pr.Mode, pr.Planned.Seconds())
	}
}

// done clears the live line, before anything else is written.
func (p *compareProgress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// reportFile is --report's file, opened before the runs so that a path
// that cannot be written fails at once. Nothing is written to it until the
// runs are over: an existing file keeps its content if the comparison
// fails, and a file that did not exist is removed again.
type reportFile struct {
	f       *os.File
	path    string
	created bool
}

func openReport(path string) (*reportFile, error) {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &reportFile{f: f, path: path, created: errors.Is(statErr, fs.ErrNotExist)}, nil
}

// write replaces the file's content with rep's HTML report and closes it.
func (r *reportFile) write(rep *compare.Report) error {
	var b bytes.Buffer
	if err := compare.WriteHTML(&b, rep); err != nil {
		r.abandon()
		return err
	}
	_, err := r.f.Write(b.Bytes()) // at offset 0: opened without O_APPEND
	if st, serr := r.f.Stat(); err == nil && serr == nil && st.Mode().IsRegular() {
		err = r.f.Truncate(int64(b.Len())) // an older, longer report's tail
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// abandon closes the file unwritten (removing it if the run created it).
// A nil reportFile (no --report) is fine.
func (r *reportFile) abandon() {
	if r == nil {
		return
	}
	r.f.Close()
	if r.created {
		os.Remove(r.path)
	}
}
