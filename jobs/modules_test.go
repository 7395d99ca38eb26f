package jobs

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/wasmsched/wasmsched"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// withSection returns b with an empty custom section appended: the same
// code under another hash.
func withSection(b []byte, tag byte) []byte {
	return append(append([]byte(nil), b...), 0x00, 0x03, 0x01, tag, 0x00)
}

func spinBytes(t *testing.T) []byte {
	t.Helper()
	b, err := wasmsched.Guest("spin")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Uploads are kept compiled up to MaxModules: the same upload is reused, a
// new one releases the least recently used module without jobs, and none
// is released while it has a job.
func TestModuleCacheLRU(t *testing.T) {
	eng, err := wasmtask.NewEngine(context.Background(), wasmtask.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	c := newModuleCache(eng, 1)
	ctx := context.Background()
	hold := func(b []byte) (*keptModule, error) {
		return c.hold(ctx, moduleKey(b), func(context.Context) ([]byte, error) { return b, nil })
	}
	a, b := withSection(spinBytes(t), 'a'), withSection(spinBytes(t), 'b')
	ka, err := hold(a)
	if err != nil {
		t.Fatal(err)
	}
	c.release(ka)
	ka2, _ := hold(a)
	if ka2 != ka {
		t.Fatal("the same upload was compiled again")
	}
	if _, err := hold(b); !errors.Is(err, errModulesBusy) {
		t.Fatalf("a second module while the only kept one has a job: %v, want errModulesBusy", err)
	}
	c.release(ka2)
	kb, err := hold(b)
	if err != nil {
		t.Fatal(err)
	}
	if !ka.mod.Closed() || c.kept() != 1 {
		t.Fatalf("the idle module was not released (closed %v, kept %d)", ka.mod.Closed(), c.kept())
	}
	c.release(kb)
}

// While an upload is being compiled, a job of a module already kept and
// an embedded guest's job get their modules.
func TestModuleCompileOutsideLock(t *testing.T) {
	eng, err := wasmtask.NewEngine(context.Background(), wasmtask.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	c := newModuleCache(eng, 4)
	ctx := context.Background()
	keptBytes := withSection(spinBytes(t), 'k')
	k, err := c.hold(ctx, moduleKey(keptBytes), func(context.Context) ([]byte, error) { return keptBytes, nil })
	if err != nil {
		t.Fatal(err)
	}
	c.release(k)
	compiling, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	c.beforeCompile = func() {
		if once.CompareAndSwap(false, true) {
			close(compiling)
			<-release
		}
	}
	big := withSection(spinBytes(t), 'x')
	done := make(chan error, 1)
	go func() {
		km, err := c.hold(ctx, moduleKey(big), func(context.Context) ([]byte, error) { return big, nil })
		if err == nil {
			c.release(km)
		}
		done <- err
	}()
	<-compiling
	// The compile is held: the kept upload and an embedded guest are had.
	k2, err := c.hold(ctx, moduleKey(keptBytes), func(context.Context) ([]byte, error) { return nil, errors.New("not kept") })
	if err != nil || k2 != k {
		t.Fatalf("kept module during another's compile: %v", err)
	}
	c.release(k2)
	if _, err := c.guest(ctx, "spin"); err != nil {
		t.Fatalf("embedded guest during another's compile: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
