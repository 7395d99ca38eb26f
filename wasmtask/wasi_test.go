package wasmtask

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
)

func wasiEnv(t *testing.T, ecfg EngineConfig, opts ...scheduler.Option) *env {
	t.Helper()
	e := newEnv(t, "", ecfg, opts...)
	var err error
	if e.mod, err = e.eng.Compile(context.Background(), localGuest(t, "wasi.wasm")); err != nil {
		t.Fatal(err)
	}
	return e
}

// waitSuspended waits (yielding, no wall-clock bound) until the engine
// counts n guests suspended.
func waitSuspended(t *testing.T, e *env, n int64) {
	t.Helper()
	deadline := time.Now().Add(guestTimeout)
	for e.eng.Stats().Suspended < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d guests suspended, want %d", e.eng.Stats().Suspended, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWASISleepDoesNotHoldWorker: on a runtime of one worker, a guest
// sleeping "forever" in poll_oneoff does not hold the worker: a runnable
// guest spawned after it completes while it still sleeps, and Abort ends
// the sleeper at once as aborted, not done.
func TestWASISleepDoesNotHoldWorker(t *testing.T) {
	e := wasiEnv(t, EngineConfig{}, scheduler.WithWorkers(1))
	sleeper := Spawn(context.Background(), e.rt, e.mod, Options{Name: "sleeper", Export: "sleep", Args: []uint64{1<<63 - 1}})
	waitSuspended(t, e, 1)
	spin := newEnvModule(t, e, "spin.wasm")
	r, err := waitGuest(t, Spawn(context.Background(), e.rt, spin, Options{Export: "spin", Args: []uint64{100_000}}))
	if err != nil || r.Values[0] != spinRef(100_000) {
		t.Fatalf("runnable guest behind a sleeper: %v %v", r.Values, err)
	}
	if sleeper.IsFinished() {
		t.Fatal("the sleeper woke from an endless sleep")
	}
	sleeper.Abort()
	_, err = waitGuest(t, sleeper)
	if !errors.Is(err, scheduler.ErrAborted) {
		t.Fatalf("aborted sleeper: %v, want ErrAborted", err)
	}
	var ge *Error
	if !errors.As(err, &ge) || ge.Stats.Sleeps != 1 {
		t.Fatalf("aborted sleeper's stats: %+v", err)
	}
	if s := e.eng.Stats(); s.Suspended != 0 || s.Running != 0 {
		t.Fatalf("after the abort: %d suspended, %d running", s.Suspended, s.Running)
	}
}

func newEnvModule(t *testing.T, e *env, guest string) *Module {
	t.Helper()
	m, err := e.eng.Compile(context.Background(), readGuest(t, guest))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWASISleepSleeps: a short sleep returns success after at least its
// duration (runtime timers never fire early), counted as a suspension.
func TestWASISleepSleeps(t *testing.T) {
	e := wasiEnv(t, EngineConfig{}, scheduler.WithWorkers(2))
	const d = 2 * time.Millisecond
	r, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "sleep", Args: []uint64{uint64(d)}}))
	if err != nil || uint32(r.Values[0]) != 0 {
		t.Fatalf("sleep: %v errno %v", err, r.Values)
	}
	if r.Stats.Sleeps != 1 || r.Stats.Suspended < d {
		t.Fatalf("stats after a %v sleep: %+v", d, r.Stats)
	}
	// A zero sleep does not suspend: the guest's only suspensions are its
	// epoch yields (on a busy machine its run may outlast an epoch).
	r, err = waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "sleep", Args: []uint64{0}}))
	if err != nil || r.Stats.Sleeps != 0 || r.Stats.Polls != 1+r.Stats.Yields() {
		t.Fatalf("zero sleep: %v %+v", err, r.Stats)
	}
}

// TestShutdownEndsSleepers: Shutdown ends guests asleep forever at once,
// with ErrShutdown.
func TestShutdownEndsSleepers(t *testing.T) {
	e := wasiEnv(t, EngineConfig{}, scheduler.WithWorkers(2))
	var hs []*scheduler.JoinHandle[Result]
	for range 20 {
		hs = append(hs, Spawn(context.Background(), e.rt, e.mod, Options{Export: "sleep", Args: []uint64{1<<63 - 1}}))
	}
	waitSuspended(t, e, 20)
	ctx, cancel := context.WithTimeout(context.Background(), guestTimeout)
	defer cancel()
	if err := e.rt.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with sleepers: %v", err)
	}
	for _, h := range hs {
		if _, err := h.Wait(ctx); !errors.Is(err, scheduler.ErrShutdown) {
			t.Fatalf("sleeper at shutdown: %v, want ErrShutdown", err)
		}
	}
}

// TestSchedYieldFollowsPolicy: sched_yield consults the policy with
// ReasonSchedYield and does what it says.
func TestSchedYieldFollowsPolicy(t *testing.T) {
	e := wasiEnv(t, EngineConfig{}, scheduler.WithWorkers(2))
	var asked atomic.Int64
	counting := func(act Action) Policy {
		return func(info GuestInfo) Action {
			if info.Reason == ReasonSchedYield {
				asked.Add(1)
				return act
			}
			return Continue(0)
		}
	}
	r, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "yields", Args: []uint64{50}, Policy: counting(Yield(0, scheduler.PathDeferred))}))
	if err != nil || uint32(r.Values[0]) != 0 {
		t.Fatalf("yields: %v %v", r.Values, err)
	}
	if asked.Load() != 50 || r.Stats.SchedYields != 50 || r.Stats.Deferred != 50 || r.Stats.Polls != 51 {
		t.Fatalf("deferred: policy asked %d times, stats %+v", asked.Load(), r.Stats)
	}
	asked.Store(0)
	r, err = waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "yields", Args: []uint64{50}, Policy: counting(Continue(0))}))
	if err != nil || asked.Load() != 50 || r.Stats.Polls != 1 {
		t.Fatalf("continue: %v, asked %d, stats %+v", err, asked.Load(), r.Stats)
	}
	_, err = waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "yields", Args: []uint64{50}, Policy: counting(Trap(errors.New("no yielding")))}))
	if !errors.Is(err, ErrPolicyTrap) {
		t.Fatalf("trap: %v, want ErrPolicyTrap", err)
	}
}

// TestStdinSuspends: a guest reading a stdin that has no data yet is
// suspended, not blocking its worker: on one worker, a runnable guest
// completes first; the reader then gets every byte.
func TestStdinSuspends(t *testing.T) {
	e := wasiEnv(t, EngineConfig{}, scheduler.WithWorkers(1))
	pr, pw := io.Pipe()
	reader := Spawn(context.Background(), e.rt, e.mod, Options{Export: "read_all", Stdin: pr})
	waitSuspended(t, e, 1)
	spin := newEnvModule(t, e, "spin.wasm")
	if _, err := waitGuest(t, Spawn(context.Background(), e.rt, spin, Options{Export: "spin", Args: []uint64{1000}})); err != nil {
		t.Fatal(err)
	}
	if reader.IsFinished() {
		t.Fatal("the reader finished before stdin had data")
	}
	msg := strings.Repeat("x", 10_000)
	go func() {
		io.WriteString(pw, msg)
		pw.Close()
	}()
	r, err := waitGuest(t, reader)
	if err != nil || r.Values[0] != uint64(len(msg)) {
		t.Fatalf("read_all: %v %v, want %d bytes", r.Values, err, len(msg))
	}
	if r.Stats.StdinWaits == 0 {
		t.Fatalf("no stdin wait counted: %+v", r.Stats)
	}
	// In-memory readers are read directly.
	r, err = waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "read_all", Stdin: strings.NewReader(msg)}))
	if err != nil || r.Values[0] != uint64(len(msg)) || r.Stats.StdinWaits != 0 {
		t.Fatalf("in-memory stdin: %v %v %+v", r.Values, err, r.Stats)
	}
}

// TestStdinAbort: a guest waiting for stdin ends aborted at once; the
// helper's Read ends when the reader does.
func TestStdinAbort(t *testing.T) {
	e := wasiEnv(t, EngineConfig{}, scheduler.WithWorkers(1))
	pr, pw := io.Pipe()
	defer pw.Close()
	h := Spawn(context.Background(), e.rt, e.mod, Options{Export: "read_all", Stdin: pr})
	waitSuspended(t, e, 1)
	h.Abort()
	if _, err := waitGuest(t, h); !errors.Is(err, scheduler.ErrAborted) {
		t.Fatalf("aborted reader: %v", err)
	}
}

// TestPollStdin: poll_oneoff on stdin and a clock answers with the clock
// alone when stdin stays empty, and with stdin alone as soon as data is
// there (not after the clock's timeout, as wazero's did).
func TestPollStdin(t *testing.T) {
	e := wasiEnv(t, EngineConfig{}, scheduler.WithWorkers(1))
	pr, pw := io.Pipe()
	defer pw.Close()
	r, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "poll_stdin", Args: []uint64{uint64(time.Millisecond)}, Stdin: pr}))
	if err != nil || uint32(r.Values[0]) != 10 {
		t.Fatalf("poll with empty stdin: %v events, %v", r.Values, err)
	}
	pr2, pw2 := io.Pipe()
	go func() { io.WriteString(pw2, "x"); pw2.Close() }()
	r, err = waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "poll_stdin", Args: []uint64{uint64(time.Hour)}, Stdin: pr2}))
	if err != nil || uint32(r.Values[0]) != 11 {
		t.Fatalf("poll with data on stdin: %v events, %v", r.Values, err)
	}
}

// FuzzParseSubscriptions: poll_oneoff's subscriptions come from guest
// memory; any bytes decode without a panic into either an errno of the
// documented set or one subscription per 48 bytes, each with a known
// event type and a bounded timeout.
func FuzzParseSubscriptions(f *testing.F) {
	clock := make([]byte, 48)
	binary.LittleEndian.PutUint64(clock[24:], 1<<63-1)
	fd := make([]byte, 48)
	fd[8] = eventFdRead
	abs := append([]byte(nil), clock...)
	abs[40] = 1
	f.Add(clock)
	f.Add(append(append([]byte(nil), clock...), fd...))
	f.Add(abs)
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 100))
	f.Fuzz(func(t *testing.T, b []byte) {
		subs, errno := parseSubscriptions(b)
		switch errno {
		case errnoSuccess:
			if len(subs) != len(b)/48 {
				t.Fatalf("%d subscriptions from %d bytes", len(subs), len(b))
			}
			for _, s := range subs {
				if s.kind > eventFdWrite || s.timeout < 0 || s.timeout > maxSleep || s.fd < 0 {
					t.Fatalf("bad subscription %+v", s)
				}
			}
		case errnoInval, errnoNotsup, errnoBadf:
			if subs != nil {
				t.Fatal("subscriptions with an error")
			}
		default:
			t.Fatalf("errno %d", errno)
		}
	})
}

// TestPollOneoffGarbage: poll_oneoff with garbage arguments answers with an
// errno, never a panic: no subscriptions, buffers past the memory's end,
// counts whose sizes wrap around 32 bits, unknown event types.
func TestPollOneoffGarbage(t *testing.T) {
	e := wasiEnv(t, EngineConfig{}, scheduler.WithWorkers(1))
	for _, tc := range []struct {
		in, out, n, nevents uint32
		want                uint32
	}{
		{0, 256, 0, 512, errnoInval},
		{0xfffffff0, 256, 1, 512, errnoFault},
		{0, 0xfffffff0, 1, 512, errnoFault},
		{0, 256, 1, 0xfffffffe, errnoFault},
		{0, 0, 1 << 28, 512, errnoFault}, // 48 and 32 bytes each: 0 in 32 bits
		{0, 256, 0x5555556, 512, errnoFault},
		{600, 256, 1, 512, errnoInval}, // event type 0xff, written by poll_raw
	} {
		r, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "poll_raw", Args: []uint64{uint64(tc.in), uint64(tc.out), uint64(tc.n), uint64(tc.nevents)}}))
		if err != nil || uint32(r.Values[0]) != tc.want {
			t.Errorf("poll_oneoff(%#x, %#x, %#x, %#x) = %v %v, want errno %d", tc.in, tc.out, tc.n, tc.nevents, r.Values, err, tc.want)
		}
	}
}
