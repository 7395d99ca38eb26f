package instrument

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// runWASI runs a WASI command (its _start) and returns its stdout. If m is
// not nil the runtime provides the check import bound to m.
func runWASI(t *testing.T, wasm []byte, m *meter, args ...string) (string, int64) {
	t.Helper()
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfigCompiler()
	var r wazero.Runtime
	if m != nil {
		r = newMeteredRuntime(t, ctx, cfg, m)
	} else {
		r = wazero.NewRuntimeWithConfig(ctx, cfg)
	}
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	var stdout, stderr bytes.Buffer
	mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().
		WithStdout(&stdout).WithStderr(&stderr).WithArgs(append([]string{"guest"}, args...)...).WithName("guest"))
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, stderr.String())
	}
	var fuel int64
	if m != nil {
		fuel = m.consumed(mod)
	}
	return stdout.String(), fuel
}

func testRealGuest(t *testing.T, name string, args ...string) {
	plainWasm := readTestdata(t, name)
	res, err := Instrument(plainWasm, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %+v", name, res.Report)
	want, _ := runWASI(t, plainWasm, nil, args...)
	if want == "" {
		t.Fatal("plain guest printed nothing")
	}
	var fuels []int64
	for _, refill := range []int64{1 << 62, 100_000, 997} {
		if testing.Short() && refill == 997 {
			continue
		}
		m := &meter{refill: refill}
		got, fuel := runWASI(t, res.Wasm, m, args...)
		if got != want {
			t.Fatalf("refill %d: instrumented output differs:\n got %q\nwant %q", refill, got, want)
		}
		if m.checks == 0 || fuel <= 0 {
			t.Fatalf("refill %d: checks %d fuel %d", refill, m.checks, fuel)
		}
		t.Logf("refill %d: fuel %d, %d checks", refill, fuel, m.checks)
		fuels = append(fuels, fuel)
	}
	// A deterministic program consumes the same fuel whatever the slice.
	for _, f := range fuels[1:] {
		if f != fuels[0] {
			t.Fatalf("fuel depends on slice size: %v", fuels)
		}
	}
}

func TestRealGuestC(t *testing.T)  { testRealGuest(t, "cguest.wasm") }
func TestRealGuestGo(t *testing.T) { testRealGuest(t, "goguest.wasm") }
