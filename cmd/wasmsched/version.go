package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version describes this build: the module version (a tagged release, or
// "(devel)" for a build from a checkout), the VCS revision and time the Go
// toolchain stamped in (with -buildvcs, the default for `go build` in a
// git checkout), whether the tree had uncommitted changes, and the Go
// version and platform.
func version() string {
	v, rev, when, dirty := "(unknown)", "", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	out := "wasmsched " + v
	if rev != "" {
		out += " revision " + rev
		if when != "" {
			out += " (" + when + ")"
		}
		if dirty {
			out += " with uncommitted changes"
		}
	} else {
		out += " (no VCS information: built with -buildvcs=false or outside a checkout)"
	}
	return fmt.Sprintf("%s, %s %s/%s", out, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "wasmsched version: takes no arguments, got %q\n", args[0])
		return exitUsage
	}
	fmt.Fprintln(stdout, version())
	return exitOK
}
