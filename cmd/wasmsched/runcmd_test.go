package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmsched/wasmsched/wasmtask"
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
	for _, args := range [][]string{{path}, {"--export", "boom", "--allow-command-exports", path}} {
		code, _, errOut := invoke(t, append([]string{"run"}, args...)...)
		if code != runExitGuestFailed {
			t.Errorf("%v: exit %d, want %d", args, code, runExitGuestFailed)
		}
		if !strings.Contains(errOut, "trap.wasm trapped: ") || !strings.Contains(errOut, "unreachable") {
			t.Errorf("%v: stderr %q", args, errOut)
		}
	}
	// An export of a WASI command is a usage error unless allowed, and the
	// message names the flag.
	code, _, errOut := invoke(t, "run", "--export", "boom", path)
	if code != runExitUsage || !strings.Contains(errOut, "--allow-command-exports") {
		t.Errorf("export of a command without the flag: exit %d, %q", code, errOut)
	}
}

func TestRunOutOfFuel(t *testing.T) {
	code, _, errOut := invoke(t, "run", "--fuel", "100000", "--interrupt", "fuel", "../../testdata/spin.wasm", "--export", "spin", "--", "1000000")
	if code != runExitGuestFailed || !strings.Contains(errOut, "out of fuel (budget 100000)") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestRunTimeout(t *testing.T) {
	code, _, errOut := invoke(t, "run", "--timeout", "50ms", "../../testdata/spin.wasm", "--export", "spin", "--", "4611686018427387904")
	if code != runExitTimeout || !strings.Contains(errOut, "timed out after 50ms") {
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
		code int
		want string
	}{
		{[]string{bad}, runExitInvalid, "invalid module"},
		{[]string{writeTemp(t, "imports.wasm", importsWasm)}, runExitInvalid, "import function env.f: not provided"},
		{[]string{}, runExitUsage, "missing FILE.wasm"},
		{[]string{"/nonexistent.wasm"}, runExitUsage, "no such file"},
		{[]string{"--mode", "sideways", "x.wasm"}, runExitUsage, "--mode must be"},
		{[]string{"--interrupt", "never", "x.wasm"}, runExitUsage, "--interrupt: must be"},
		{[]string{"--memory-limit", "lots", "x.wasm"}, runExitUsage, "not a positive size"},
		{[]string{"--poll-interval", "0", "x.wasm"}, runExitUsage, "--poll-interval must be positive"},
		{[]string{"--poll-interval", "-1", "x.wasm"}, runExitUsage, "--poll-interval must be positive"},
		{[]string{"--poll-interval", "1e9", "x.wasm"}, runExitUsage, `invalid value "1e9" for flag -poll-interval`},
		{[]string{"--poll-interval", "18446744073709551616", "x.wasm"}, runExitUsage, "invalid value"},
		{[]string{"--no-such-flag", "x.wasm"}, runExitUsage, "flag provided but not defined"},
		{[]string{"--export", "spin", "../../testdata/spin.wasm", "--", "ten"}, runExitUsage, `"ten" is not an i64`},
		{[]string{"--export", "spin", "../../testdata/spin.wasm"}, runExitUsage, "spin takes 1 arguments (i64), got 0"},
		{[]string{"--export", "spin", "../../testdata/spin.wasm", "--", "1", "2"}, runExitUsage, "got 2"},
		{[]string{"--export", "fib", "../../testdata/spin.wasm", "--", "4294967296"}, runExitUsage, "not an i32"},
		{[]string{"--export", "nope", "../../testdata/spin.wasm"}, runExitUsage, `no function "nope" (it exports: fib, spin)`},
	} {
		code, _, errOut := invoke(t, append([]string{"run"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

// importsWasm imports env.f, which no engine provides.
var importsWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
	0x02, 0x09, 0x01, 0x03, 'e', 'n', 'v', 0x01, 'f', 0x00, 0x00, // import env.f
}

// exitWasm is a WASI command whose _start calls proc_exit(code).
func exitWasm(code int32) []byte {
	var leb []byte // signed LEB128 of code
	for v := code; ; {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			leb = append(leb, b)
			break
		}
		leb = append(leb, b|0x80)
	}
	body := append(append([]byte{0x00, 0x41}, leb...), 0x10, 0x00, 0x0b) // no locals; i32.const code; call 0; end
	imp := append([]byte{0x01, 0x16}, "wasi_snapshot_preview1"...)
	imp = append(append(imp, 0x09), "proc_exit"...)
	imp = append(imp, 0x00, 0x00)
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x08, 0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00} // types: (i32) -> (), () -> ()
	out = append(append(out, 0x02, byte(len(imp))), imp...)
	out = append(out, 0x03, 0x02, 0x01, 0x01)                                           // func 1: type 1
	out = append(out, 0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x01) // export _start
	code1 := append([]byte{byte(len(body))}, body...)
	return append(append(out, 0x0a, byte(len(code1)+1), 0x01), code1...)
}

// TestRunExitCodes: a guest's WASI exit code passes through; codes from
// 123 up become 123, so that run's own codes (124 and above) never mean
// a guest's.
func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct{ guest, want int }{{0, 0}, {1, 1}, {2, 2}, {122, 122}, {123, 123}, {125, 123}, {200, 123}} {
		code, _, errOut := invoke(t, "run", writeTemp(t, "exit.wasm", exitWasm(int32(tc.guest))))
		if code != tc.want {
			t.Errorf("guest exit %d: run exit %d, want %d (%s)", tc.guest, code, tc.want, errOut)
		}
		if tc.guest != 0 && !strings.Contains(errOut, fmt.Sprintf("exited with code %d", tc.guest)) {
			t.Errorf("guest exit %d: stderr %q does not give the code", tc.guest, errOut)
		}
	}
}

// TestRunMemoryLimit: run caps a guest's memory by default; a Go guest that
// runs out says so and exits with the guest-failure code, not its own 2.
func TestRunMemoryLimit(t *testing.T) {
	code, _, errOut := invoke(t, "run", "--memory-limit", "3MiB", "goguest")
	if code != runExitGuestFailed || !strings.Contains(errOut, "goguest hit the memory limit (3MiB)") {
		t.Fatalf("exit %d, stderr %.300q", code, errOut)
	}
	code, _, errOut = invoke(t, "run", "--export", "sieve", "--allow-command-exports", "cguest", "--", "1000")
	if code != 0 || !strings.Contains(errOut, "memory peak") {
		t.Fatalf("default limit: exit %d, %q", code, errOut)
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

// TestRunStubImports: a guest importing a harness's bench.start/bench.end
// is an invalid module without --stub-imports, and runs with it, one
// warning per stub.
func TestRunStubImports(t *testing.T) {
	guest := filepath.Join("..", "..", "testdata", "benchguest.wasm")
	code, _, errOut := invoke(t, "run", guest)
	if code != runExitInvalid || !strings.Contains(errOut, "bench.start") {
		t.Fatalf("without --stub-imports: exit %d, %q", code, errOut)
	}
	code, out, errOut := invoke(t, "run", "--stub-imports", guest)
	if code != 0 || out != "benchmark body ran\n" {
		t.Fatalf("with --stub-imports: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, name := range []string{"bench.start", "bench.end"} {
		if n := strings.Count(errOut, "warning: import "+name+" () -> () stubbed"); n != 1 {
			t.Errorf("%d warnings for %s in %q", n, name, errOut)
		}
	}
}

// TestRunEnvDir: --env and --dir reach the guest (testdata/wasienv.wat
// exits with 10 × its environment variables + fd_prestat_get(3)'s errno);
// bad values are usage errors.
func TestRunEnvDir(t *testing.T) {
	guest := filepath.Join("..", "..", "testdata", "wasienv.wasm")
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 8},
		{[]string{"--env", "A=1", "--env", "B=x=y"}, 28},
		{[]string{"--dir", dir}, 0},
		{[]string{"--dir", dir + ":/data:ro", "--env", "A="}, 10},
	} {
		code, _, errOut := invoke(t, append(append([]string{"run"}, tc.args...), guest)...)
		if code != tc.want {
			t.Errorf("%v: exit %d, want %d (%q)", tc.args, code, tc.want, errOut)
		}
	}
	for _, bad := range [][]string{{"--env", "novalue"}, {"--env", "=v"}, {"--dir", filepath.Join(dir, "absent")}, {"--dir", ":x"}} {
		if code, _, _ := invoke(t, append(append([]string{"run"}, bad...), guest)...); code != runExitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, runExitUsage)
		}
	}
}

// TestRunSightglass runs real benchmark programs of Wasmtime's sightglass
// suite, which import the harness's bench.start/bench.end, with
// --stub-imports (and --dir for those that read an input file), and
// compares their stdout with the suite's expected output. It skips when
// the corpus (../shared/corpus/sightglass, never committed) is absent.
func TestRunSightglass(t *testing.T) {
	root := os.Getenv("WASMSCHED_SIGHTGLASS")
	if root == "" {
		root = filepath.Join("..", "..", "..", "shared", "corpus", "sightglass")
	}
	if _, err := os.Stat(root); err != nil {
		t.Skipf("sightglass corpus absent (%s): real-guest run skipped", root)
	}
	for _, name := range []string{"noop/benchmark", "bz2/benchmark", "shootout/shootout-base64", "shootout/shootout-ctype"} {
		t.Run(name, func(t *testing.T) {
			dir, err := filepath.Abs(filepath.Join(root, filepath.Dir(name)))
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Base(name)
			want, err := os.ReadFile(filepath.Join(dir, base+".stdout.expected"))
			if err != nil {
				t.Skipf("%s not in the corpus: %v", name, err)
			}
			code, out, errOut := invoke(t, "run", "--stub-imports", "--dir", dir+":.", filepath.Join(dir, base+".wasm"))
			if code != 0 || out != string(want) {
				t.Fatalf("exit %d, stdout %q (want %q), stderr %.400q", code, out, want, errOut)
			}
			if !strings.Contains(errOut, "warning: import bench.start () -> () stubbed") {
				t.Errorf("no stub warning: %.400q", errOut)
			}
		})
	}
}

// TestRunReactorExport: run initializes a reactor before calling --export
// (Go's runtime refuses exports before _initialize).
func TestRunReactorExport(t *testing.T) {
	for _, guest := range []string{"goreactor.wasm", "creactor.wasm"} {
		code, out, errOut := invoke(t, "run", "--stub-imports", "--export", "spin", filepath.Join("..", "..", "testdata", guest), "--", "1000")
		if code != 0 || !strings.HasPrefix(out, "spin(1000) = ") {
			t.Errorf("%s: exit %d, stdout %q, stderr %.300q", guest, code, out, errOut)
		}
	}
}

// TestRunPollInterval: --poll-interval is the engine's; its default is the
// engine's default.
func TestRunPollInterval(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int64
	}{
		{[]string{"--poll-interval", "12345", "x.wasm"}, 12345},
		{[]string{"x.wasm"}, wasmtask.DefaultPollInterval},
	} {
		rc, code := parseRun(tc.args, io.Discard)
		if rc == nil {
			t.Fatalf("%v: exit %d", tc.args, code)
		}
		if got := rc.engineConfig(io.Discard).PollInterval; got != tc.want {
			t.Errorf("%v: engine poll interval %d, want %d", tc.args, got, tc.want)
		}
	}
}
