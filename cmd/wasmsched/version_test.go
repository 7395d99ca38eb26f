package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	code, out, errOut := invoke(t, "version")
	if code != 0 || !strings.HasPrefix(out, "wasmsched ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := invoke(t, "version", "extra"); code != exitUsage || !strings.Contains(errOut, "takes no arguments") {
		t.Fatalf("version extra: exit %d, %q", code, errOut)
	}
}

// TestVersionRevision builds the command with VCS stamping and checks that
// it reports the checkout's revision.
func TestVersionRevision(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout (%v): no revision to compare with", err)
	}
	bin := filepath.Join(t.TempDir(), "wasmsched")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "revision " + strings.TrimSpace(string(head)); !strings.Contains(string(out), want) {
		t.Fatalf("version printed %q, want %q", out, want)
	}
}
