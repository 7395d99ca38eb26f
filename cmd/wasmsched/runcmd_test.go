package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestRunExport(t *testing.T) {
	code, out, errOut := invoke(t, "run", "--workers", "2", "../../testdata/spin.wasm", "--export", "spin", "--", "1000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := fmt.Sprintf("spin(1000) = %d\n", spinRef(1000)); out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	// Summary: exact fuel (14n+7), one line.
	if !strings.Contains(errOut, "spin.wasm: ok in ") || !strings.Contains(errOut, "fuel 14007,") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("summary %q", errOut)
	}
}

func TestRunWASICommand(t *testing.T) {
	// An embedded guest by name; its output passes through, then the summary.
	code, out, errOut := invoke(t, "run", "--interrupt", "fuel", "--mode", "immediate", "cguest")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "sieve(1000000) = 78498\n") {
		t.Errorf("guest output %q", out)
	}
	for _, w := range []string{"cguest: ok in", "yields", "migrations"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("summary %q lacks %q", errOut, w)
		}
	}
}

func TestRunTrap(t *testing.T) {
	path := writeTemp(t, "trap.wasm", trapWasm)
	for _, args := range [][]string{{path}, {"--export", "boom", path}} {
		code, _, errOut := invoke(t, append([]string{"run"}, args...)...)
		if code != exitFailure {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		if !strings.Contains(errOut, "trap.wasm trapped: ") || !strings.Contains(errOut, "unreachable") {
			t.Errorf("%v: stderr %q", args, errOut)
		}
	}
}

func TestRunOutOfFuel(t *testing.T) {
	code, _, errOut := invoke(t, "run", "--fuel", "100000", "--interrupt", "fuel", "../../testdata/spin.wasm", "--export", "spin", "--", "1000000")
	if code != exitFailure || !strings.Contains(errOut, "out of fuel (budget 100000)") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestRunTimeout(t *testing.T) {
	code, _, errOut := invoke(t, "run", "--timeout", "50ms", "../../testdata/spin.wasm", "--export", "spin", "--", "4611686018427387904")
	if code != exitFailure || !strings.Contains(errOut, "timed out after 50ms") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if strings.Contains(errOut, "fuel 0,") {
		t.Errorf("summary lost the guest's counters: %q", errOut)
	}
}

func TestRunBadInput(t *testing.T) {
	bad := writeTemp(t, "bad.wasm", []byte("\x00asm but not really"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{bad}, "invalid module"},
		{[]string{}, "missing FILE.wasm"},
		{[]string{"/nonexistent.wasm"}, "no such file"},
		{[]string{"--mode", "sideways", "x.wasm"}, "--mode must be"},
		{[]string{"--interrupt", "never", "x.wasm"}, "--interrupt must be"},
		{[]string{"--memory-limit", "lots", "x.wasm"}, "not a positive size"},
		{[]string{"--export", "spin", "../../testdata/spin.wasm", "--", "ten"}, "not an integer"},
		{[]string{"--export", "nope", "../../testdata/spin.wasm"}, `no exported function "nope"`},
	} {
		code, _, errOut := invoke(t, append([]string{"run"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestParsePages(t *testing.T) {
	for in, want := range map[string]uint32{"64KiB": 1, "65537": 2, "1MiB": 16, "4GiB": 65536, "2M": 32} {
		if got, err := parsePages(in); err != nil || got != want {
			t.Errorf("parsePages(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "5GiB", "1TB", ""} {
		if _, err := parsePages(in); err == nil {
			t.Errorf("parsePages(%q): no error", in)
		}
	}
}
