package wasmtask

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wasmsched/wasmsched/scheduler"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var guestTimeout = 60 * time.Second

func readGuest(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readTestdata reads a guest of this package's testdata/.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type env struct {
	rt  *scheduler.Runtime
	eng *Engine
	mod *Module
}

func newEnv(t testing.TB, guest string, ecfg EngineConfig, opts ...scheduler.Option) *env {
	t.Helper()
	ctx := context.Background()
	rt, err := scheduler.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := NewEngine(ctx, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := rt.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := eng.Close(ctx); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	e := &env{rt: rt, eng: eng}
	if guest != "" {
		e.mod, err = eng.Compile(ctx, readGuest(t, guest))
		if err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func waitGuest(t testing.TB, h *scheduler.JoinHandle[Result]) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guestTimeout)
	defer cancel()
	r, err := h.Wait(ctx)
	if err == context.DeadlineExceeded {
		t.Fatal("guest did not finish")
	}
	return r, err
}

// spinRef computes spin(n) in Go, the same recurrence as testdata/spin.wat.
func spinRef(n uint64) uint64 {
	acc := uint64(1)
	for ; n != 0; n-- {
		acc = acc*6364136223846793005 + n
	}
	return acc
}
