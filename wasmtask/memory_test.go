package wasmtask

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmsched/wasmsched/scheduler"
)

const page = 65536

func memEnv(t *testing.T, ecfg EngineConfig, opts ...scheduler.Option) *env {
	t.Helper()
	e := newEnv(t, "", ecfg, opts...)
	var err error
	if e.mod, err = e.eng.Compile(context.Background(), localGuest(t, "memory.wasm")); err != nil {
		t.Fatal(err)
	}
	return e
}

func wantMemoryLimit(t *testing.T, err error, says string) {
	t.Helper()
	if !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), says) {
		t.Fatalf("err = %v, want ErrMemoryLimit saying %q", err, says)
	}
}

// TestMemoryGuestLimit: memory.grow past the guest's limit returns -1; a
// guest that then traps is reported as ErrMemoryLimit; the memory is back
// in the engine's accounts when it ends.
func TestMemoryGuestLimit(t *testing.T) {
	e := memEnv(t, EngineConfig{}, scheduler.WithWorkers(1))
	r, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "grow_until_refused", MemoryLimitPages: 16}))
	if err != nil || uint32(r.Values[0]) != 16 || r.Stats.MemoryPeak != 16*page {
		t.Fatalf("grow until refused at 16 pages: %v %v peak %d", r.Values, err, r.Stats.MemoryPeak)
	}
	_, err = waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "grow_touch", Args: []uint64{100}, MemoryLimitPages: 16}))
	wantMemoryLimit(t, err, "over the guest's memory limit of 1 MiB")
	// The engine's default limit applies when Options sets none.
	e2 := memEnv(t, EngineConfig{GuestMemoryLimit: 8 * page}, scheduler.WithWorkers(1))
	r, err = waitGuest(t, Spawn(context.Background(), e2.rt, e2.mod, Options{Export: "grow_until_refused"}))
	if err != nil || uint32(r.Values[0]) != 8 {
		t.Fatalf("engine default limit of 8 pages: %v %v", r.Values, err)
	}
	for _, x := range []*env{e, e2} {
		if s := x.eng.Stats(); s.MemoryInUse != 0 || s.MemoryRefusals == 0 {
			t.Fatalf("after the guests: %d bytes in use, %d refusals", s.MemoryInUse, s.MemoryRefusals)
		}
	}
}

// TestMemoryBudgetShared: the engine's budget bounds the memory of all
// running guests together. A guest holding 20 of 32 pages (asleep) leaves
// 12 to the next one, which is refused beyond them; when the first ends,
// its pages are free again.
func TestMemoryBudgetShared(t *testing.T) {
	e := memEnv(t, EngineConfig{MemoryBudget: 32 * page}, scheduler.WithWorkers(2))
	holder := Spawn(context.Background(), e.rt, e.mod, Options{Export: "grow_sleep", Args: []uint64{19, 1<<63 - 1}})
	waitSuspended(t, e, 1)
	if s := e.eng.Stats(); s.MemoryInUse != 20*page || s.MemoryBudget != 32*page {
		t.Fatalf("holder asleep: %d bytes in use of %d", s.MemoryInUse, s.MemoryBudget)
	}
	r, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "grow_until_refused"}))
	if err != nil || uint32(r.Values[0]) != 12 {
		t.Fatalf("second guest: %v %v, want 12 pages", r.Values, err)
	}
	_, err = waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "grow_touch", Args: []uint64{20}}))
	wantMemoryLimit(t, err, "the engine's memory budget of 2 MiB has")
	holder.Abort()
	if _, err := waitGuest(t, holder); !errors.Is(err, scheduler.ErrAborted) {
		t.Fatalf("holder: %v", err)
	}
	if s := e.eng.Stats(); s.MemoryInUse != 0 || s.MemoryPeak != 32*page {
		t.Fatalf("after all guests: %d bytes in use, peak %d", s.MemoryInUse, s.MemoryPeak)
	}
	r, err = waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "grow_until_refused"}))
	if err != nil || uint32(r.Values[0]) != 32 {
		t.Fatalf("alone again: %v %v, want all 32 pages", r.Values, err)
	}
}

// TestMemoryAdmission: a module whose minimum memory passes the guest's
// limit or the free budget fails before it is instantiated (no memory
// ever allocated).
func TestMemoryAdmission(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		ecfg EngineConfig
		says string
	}{
		{"budget", EngineConfig{MemoryBudget: 50 * page}, "minimum memory of 100 pages refused: the engine's memory budget"},
		{"limit", EngineConfig{GuestMemoryLimit: 50 * page}, "minimum memory of 100 pages refused: over the guest's memory limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "", tc.ecfg, scheduler.WithWorkers(1))
			m, err := e.eng.Compile(ctx, localGuest(t, "bigmem.wasm"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = waitGuest(t, Spawn(context.Background(), e.rt, m, Options{Export: "f"}))
			wantMemoryLimit(t, err, tc.says)
			var ge *Error
			if errors.As(err, &ge); ge.Stats.MemoryPeak != 0 || e.eng.Stats().MemoryPeak != 0 {
				t.Fatalf("memory was allocated: guest peak %d, engine peak %d", ge.Stats.MemoryPeak, e.eng.Stats().MemoryPeak)
			}
		})
	}
}

// TestMemoryGrowIsLazy: one memory.grow to 4 GiB costs no allocation: the
// pages are reserved and read as zeros when touched. (With Go slices it
// allocated and zeroed 4 GiB in one uninterruptible step.)
func TestMemoryGrowIsLazy(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("lazy growth needs mmap; the fallback allocates the memory")
	}
	e := memEnv(t, EngineConfig{}, scheduler.WithWorkers(1))
	before := rss(t)
	r, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Export: "grow", Args: []uint64{65535}}))
	if err != nil || uint32(r.Values[0]) != 1 || r.Stats.MemoryPeak != 65536*page {
		t.Fatalf("grow to 4 GiB: %v %v peak %d", r.Values, err, r.Stats.MemoryPeak)
	}
	if after := rss(t); after > before+64<<20 {
		t.Fatalf("RSS grew by %d MiB for an untouched 4 GiB memory", (after-before)>>20)
	}
}

// TestMemoryReturnedToOS: memory the guests touched goes back to the OS
// when they end, not when Go's scavenger gets to it.
func TestMemoryReturnedToOS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads RSS from /proc")
	}
	e := memEnv(t, EngineConfig{}, scheduler.WithWorkers(2))
	before := rss(t)
	var hs []*scheduler.JoinHandle[Result]
	for range 4 {
		hs = append(hs, Spawn(context.Background(), e.rt, e.mod, Options{Export: "grow_touch", Args: []uint64{1023}}))
	}
	for _, h := range hs {
		if r, err := waitGuest(t, h); err != nil || uint32(r.Values[0]) != 1024 {
			t.Fatalf("grow_touch: %v %v", r.Values, err)
		}
	}
	if peak := e.eng.Stats().MemoryPeak; peak < 64<<20 {
		t.Fatalf("engine peak %d MiB, want at least one guest's 64 MiB", peak>>20)
	}
	if after := rss(t); after > before+32<<20 {
		t.Fatalf("RSS %d MiB after the guests ended, %d MiB before: their 4 x 64 MiB were not given back", after>>20, before>>20)
	}
}

// rss is the process's resident set size in bytes (Linux).
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n * int64(os.Getpagesize())
}

// TestGoGuestOutOfMemory: a Go guest whose memory.grow is refused dies
// with the Go runtime's "cannot allocate memory" (exit code 2): reported as
// ErrMemoryLimit, not as an exit code.
func TestGoGuestOutOfMemory(t *testing.T) {
	e := newEnv(t, "goguest.wasm", EngineConfig{}, scheduler.WithWorkers(1))
	var stderr strings.Builder
	_, err := waitGuest(t, Spawn(context.Background(), e.rt, e.mod, Options{Argv: []string{"goguest", "1"}, MemoryLimitPages: 48, Stderr: &stderr}))
	wantMemoryLimit(t, err, "over the guest's memory limit of 3 MiB")
	if !errors.Is(err, ErrMemoryLimit) || errors.Is(err, ErrExit) {
		t.Fatalf("kind: %v", err)
	}
	if !strings.Contains(stderr.String(), "fatal error: runtime: cannot allocate memory") {
		t.Fatalf("the guest's stderr does not say it could not allocate: %.200q", stderr.String())
	}
}
