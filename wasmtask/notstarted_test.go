package wasmtask

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
)

// checkNotStarted asserts err is a guest's *Error for a cancellation
// (kind) before the guest ran: named name, with zero stats.
func checkNotStarted(t *testing.T, what string, err error, kind error, name string) {
	t.Helper()
	var ge *Error
	if !errors.As(err, &ge) || !errors.Is(err, kind) || ge.Guest != name || ge.Stats != (GuestStats{}) {
		t.Fatalf("%s: %T %v (%+v); want an *Error of kind %v for guest %q with zero stats", what, err, err, ge, kind, name)
	}
	if _, class := FailureKind(err); class != ClassCancelled {
		t.Fatalf("%s: class %v, want ClassCancelled", what, class)
	}
}

// TestGuestCancelledBeforeStart: a guest whose task is cancelled before its
// first poll (aborted while queued, with or without a context; spawned on
// a runtime that has shut down) fails with an *Error like any cancelled
// guest, with zero stats, not with the scheduler's bare reason.
func TestGuestCancelledBeforeStart(t *testing.T) {
	e := guestsEnv(t, nil, scheduler.WithWorkers(1))
	release := make(chan struct{})
	blocker := scheduler.Spawn(e.rt, scheduler.PollFunc[struct{}](func(*scheduler.Context) (struct{}, bool) { <-release; return struct{}{}, true }))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	plain := Spawn(context.Background(), e.rt, e.mod, Options{Name: "plain", Export: "mark_spin", Args: []uint64{10}})
	withCtx := Spawn(ctx, e.rt, e.mod, Options{Name: "with-ctx", Export: "mark_spin", Args: []uint64{10}})
	plain.Abort()
	withCtx.Abort()
	close(release)
	if _, err := blocker.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := waitGuest(t, plain)
	checkNotStarted(t, "aborted while queued", err, scheduler.ErrAborted, "plain")
	_, err = waitGuest(t, withCtx)
	checkNotStarted(t, "aborted while queued, with a context", err, scheduler.ErrAborted, "with-ctx")

	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	if err := e.rt.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	_, err = waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Name: "late", Export: "mark_spin", Args: []uint64{10}}))
	checkNotStarted(t, "spawned after shutdown", err, scheduler.ErrShutdown, "late")
}

// TestNewInstanceOnShutDownRuntime: NewInstance on a runtime that has shut
// down, or shuts down with the instance's task still queued, returns an
// *Error of kind ErrShutdown. It used to wait for ever for a task that
// would never run.
func TestNewInstanceOnShutDownRuntime(t *testing.T) {
	newInstance := func(rt *scheduler.Runtime, mod *Module) <-chan error {
		done := make(chan error, 1)
		go func() {
			inst, err := NewInstance(context.Background(), rt, mod, Options{Name: "inst"})
			if err == nil {
				inst.Close(context.Background())
			}
			done <- err
		}()
		return done
	}
	result := func(what string, done <-chan error) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: NewInstance did not return in 30 s", what)
			return nil
		}
	}
	shutdown := func(rt *scheduler.Runtime) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}

	e := guestsEnv(t, nil, scheduler.WithWorkers(1))
	shutdown(e.rt)
	checkNotStarted(t, "after shutdown", result("after shutdown", newInstance(e.rt, e.mod)), scheduler.ErrShutdown, "inst")

	// Queued behind a task that holds the only worker while the runtime
	// shuts down. Whether the worker takes the instance's task before it
	// sees the shutdown is a race; either way NewInstance returns.
	e2 := guestsEnv(t, nil, scheduler.WithWorkers(1))
	release := make(chan struct{})
	scheduler.Spawn(e2.rt, scheduler.PollFunc[struct{}](func(*scheduler.Context) (struct{}, bool) { <-release; return struct{}{}, true }))
	done := newInstance(e2.rt, e2.mod)
	for e2.rt.Stats().Alive < 2 {
		time.Sleep(time.Millisecond)
	}
	go func() { time.Sleep(10 * time.Millisecond); close(release) }()
	shutdown(e2.rt)
	if err := result("queued at shutdown", done); err != nil {
		checkNotStarted(t, "queued at shutdown", err, scheduler.ErrShutdown, "inst")
	}
}
