package instrument

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// repoRoot returns the module root (two levels above this package).
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func readTestdata(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// meter is a host check that refills the fuel global with a fixed slice and
// keeps the exact account: consumed = added - current. On a module
// instrumented with PollSkipping it also lets the guest refill itself skip
// times between checks, and counts those refills into added.
type meter struct {
	refill int64
	skip   int64 // refills the guest may do on its own after each check
	added  int64 // sum over host writes of (new value - old value), plus the guest's own refills
	checks int
	global api.MutableGlobal

	armed      int64 // the skip global's value as the last check left it
	skipsTaken int64 // refills the guest did on its own
}

func (m *meter) check(_ context.Context, mod api.Module) {
	g := mod.ExportedGlobal(DefaultFuelExport).(api.MutableGlobal)
	m.global = g
	cur := int64(g.Get())
	m.checks++
	if sg, ok := mod.ExportedGlobal(SkipExport).(api.MutableGlobal); ok {
		taken := m.armed - int64(sg.Get())
		m.skipsTaken += taken
		m.added += taken * m.refill
		sg.Set(uint64(m.skip))
		m.armed = m.skip
		mod.ExportedGlobal(RefillExport).(api.MutableGlobal).Set(uint64(m.refill))
	}
	m.added += m.refill - cur
	g.Set(uint64(m.refill))
}

// consumed returns the fuel consumed by mod so far.
func (m *meter) consumed(mod api.Module) int64 {
	g := mod.ExportedGlobal(DefaultFuelExport)
	pending := int64(0)
	if sg := mod.ExportedGlobal(SkipExport); sg != nil {
		pending = (m.armed - int64(sg.Get())) * m.refill
	}
	return m.added + pending - int64(g.Get())
}

func unlimited() *meter { return &meter{refill: math.MaxInt64} }

// newMeteredRuntime returns a runtime with the wasmsched.check host function
// bound to m.
func newMeteredRuntime(t testing.TB, ctx context.Context, cfg wazero.RuntimeConfig, m *meter) wazero.Runtime {
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	_, err := r.NewHostModuleBuilder(DefaultImportModule).
		NewFunctionBuilder().WithFunc(m.check).Export(DefaultImportName).
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustInstrument(t testing.TB, wasm []byte, cfg Config) []byte {
	t.Helper()
	res, err := Instrument(wasm, cfg)
	if err != nil {
		t.Fatalf("Instrument: %v", err)
	}
	return res.Wasm
}
