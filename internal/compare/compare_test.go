package compare

import (
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wasmsched/wasmsched/wasmtask"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func spinWasm(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/spin.wasm")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestModeByName(t *testing.T) {
	for name, want := range map[string]string{"immediate": "immediate-lifo", "nolifo": "immediate-nolifo", "yield_now": "deferred", " Deferred ": "deferred"} {
		if m, err := ModeByName(name); err != nil || m.Name != want {
			t.Errorf("ModeByName(%q) = %v, %v; want %s", name, m.Name, err, want)
		}
	}
	if _, err := ModeByName("sideways"); err == nil {
		t.Error("unknown mode accepted")
	}
}

func TestValidate(t *testing.T) {
	c := Config{Wasm: []byte{0}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Workers != 2 || c.GOMAXPROCS != 3 || len(c.Modes) != 3 || len(c.Scenarios) != 3 || c.guestsFor("saturated") != 4 || c.guestsFor("light") != 1 {
		t.Errorf("defaults: %+v", c)
	}
	if c.PollInterval != wasmtask.DefaultPollInterval {
		t.Errorf("default poll interval %d, want %d", c.PollInterval, wasmtask.DefaultPollInterval)
	}
	bad := Config{Workers: -1, Duration: time.Millisecond, Scenarios: []string{"x"}, PollInterval: -1}
	err := bad.Validate()
	for _, want := range []string{"workers", "duration", `unknown scenario "x"`, "no guest module", "poll interval must be 1..1000000000000 fuel, got -1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to mention %q", err, want)
		}
	}
	if _, err := Run(context.Background(), bad); !errors.Is(err, ErrInput) {
		t.Errorf("Run with a bad config: %v, want ErrInput", err)
	}
}

// TestOneWorkerFuelMode: on one worker nothing can migrate or be stolen,
// and in fuel mode every guest yields at every slice, so the counts are
// exact properties: no migrations, no steals, yields in proportion to
// fuel, and the guests' fuel adds up to the throughput.
func TestOneWorkerFuelMode(t *testing.T) {
	const slice = 2_000_000
	rep, err := Run(context.Background(), Config{
		Wasm: spinWasm(t), Export: "spin", Args: []uint64{1 << 62}, Workers: 1,
		Scenarios: []string{"saturated"}, Modes: Modes[1:], Interrupt: wasmtask.InterruptFuel, FuelSlice: slice,
		Duration: 150 * time.Millisecond, Warmup: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rep.Scenarios[0].Modes {
		if m.GuestMigrations != 0 || m.StealsPerSec != 0 {
			t.Errorf("%s: %d migrations, %v steals/s on one worker", m.Mode, m.GuestMigrations, m.StealsPerSec)
		}
		var sum int64
		for _, f := range m.GuestFuel {
			sum += f
			// Each guest's window fuel is the difference of two readings
			// taken at slice ends; a slice ends at the first loop header
			// past it, so each overshoots by less than one iteration of
			// spin's loop (14 fuel).
			k := f / slice
			if r := f - k*slice; r > 14*k {
				t.Errorf("%s: guest fuel %d is not whole slices of %d (remainder %d)", m.Mode, f, slice, r)
			}
		}
		if sum == 0 || math.Abs(m.FuelPerSecond-float64(sum)/m.WindowSeconds) > 1 {
			t.Errorf("%s: throughput %v vs fuel %d over %v s", m.Mode, m.FuelPerSecond, sum, m.WindowSeconds)
		}
		// One yield per slice, in the window.
		if want := float64(sum) / slice; math.Abs(float64(m.GuestYields)-want) > float64(len(m.GuestFuel))+1 {
			t.Errorf("%s: %d yields for %d fuel (%v slices)", m.Mode, m.GuestYields, sum, want)
		}
	}
}

// TestPollIntervalReachesTheEngine: Config.PollInterval is the engine's.
// With a poll every fuel, spin (14 fuel an iteration, about a nanosecond)
// calls the host at every iteration, tens of nanoseconds each, so its
// throughput falls far below the same run's at the default interval; the
// report says which interval ran.
func TestPollIntervalReachesTheEngine(t *testing.T) {
	run := func(poll int64) *Report {
		rep, err := Run(context.Background(), Config{
			Wasm: spinWasm(t), Export: "spin", Args: []uint64{1 << 62}, Workers: 1,
			Scenarios: []string{"saturated"}, Modes: Modes[2:], PollInterval: poll,
			Duration: 100 * time.Millisecond, Warmup: 20 * time.Millisecond, NoProbe: true, NoExternal: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	every, dflt := run(1), run(0)
	if every.PollInterval != 1 || dflt.PollInterval != wasmtask.DefaultPollInterval {
		t.Errorf("reported poll intervals %d and %d, want 1 and %d", every.PollInterval, dflt.PollInterval, wasmtask.DefaultPollInterval)
	}
	fe, fd := every.Scenarios[0].Modes[0].FuelPerSecond, dflt.Scenarios[0].Modes[0].FuelPerSecond
	if fe <= 0 || fd < 5*fe {
		t.Errorf("fuel/s polling every fuel %.3g, at the default interval %.3g: want the default at least 5x faster", fe, fd)
	}
}

// TestReturningGuestIsRestarted: a guest export that returns (spin of a
// small n) is started again, and its fuel keeps counting.
func TestReturningGuestIsRestarted(t *testing.T) {
	rep, err := Run(context.Background(), Config{
		Wasm: spinWasm(t), Export: "spin", Args: []uint64{200_000}, Workers: 2,
		Scenarios: []string{"light"}, Modes: Modes[2:], Duration: 100 * time.Millisecond, Warmup: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Scenarios[0].Modes[0]
	if m.Restarts < 10 || m.FuelPerSecond <= 0 {
		t.Fatalf("restarts %d, throughput %v", m.Restarts, m.FuelPerSecond)
	}
}

// TestUnevenPlacement: three quarters of the guests start on one worker.
func TestUnevenPlacement(t *testing.T) {
	rep, err := Run(context.Background(), Config{
		Wasm: spinWasm(t), Export: "spin", Args: []uint64{1 << 62}, Workers: 2, Guests: 8,
		Scenarios: []string{"uneven"}, Modes: Modes[2:], Duration: 50 * time.Millisecond, Warmup: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Scenarios[0].Modes[0].Placement
	if p != "guests spawned per worker: [6 2]" && p != "guests spawned per worker: [2 6]" {
		t.Fatalf("placement %q, want 6 and 2", p)
	}
}

func TestTrappingGuestIsReported(t *testing.T) {
	_, err := Run(context.Background(), Config{
		Wasm: trapWasm, Export: "boom", Workers: 1,
		Scenarios: []string{"light"}, Modes: Modes[2:], Duration: 50 * time.Millisecond, Warmup: 10 * time.Millisecond,
	})
	if err == nil || !strings.Contains(err.Error(), "guest failed") || !errors.Is(err, wasmtask.ErrTrap) {
		t.Fatalf("err = %v, want a guest failure", err)
	}
}

// trapWasm exports boom: `unreachable`.
var trapWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
	0x03, 0x02, 0x01, 0x00,
	0x07, 0x08, 0x01, 0x04, 'b', 'o', 'o', 'm', 0x00, 0x00,
	0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b,
}

// TestRunCancelledKeepsFinishedRuns: cancelling Run during its second run
// returns the first run's results, and says what is missing.
func TestRunCancelledKeepsFinishedRuns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var starts []int
	rep, err := Run(ctx, Config{
		Wasm: spinWasm(t), Export: "spin", Args: []uint64{1 << 62}, Workers: 2,
		Scenarios: []string{"light"}, Duration: 60 * time.Millisecond, Warmup: 10 * time.Millisecond,
		Progress: func(p Progress) {
			if p.Start {
				starts = append(starts, p.Run)
				if p.Run == 2 {
					cancel()
				}
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if rep == nil || len(rep.Scenarios) != 1 || len(rep.Scenarios[0].Modes) != 1 || rep.Scenarios[0].Modes[0].Mode != "immediate-lifo" {
		t.Fatalf("report of a cancelled run: %+v", rep)
	}
	if in := rep.Incomplete; in == nil || in.Finished != 1 || in.Planned != 3 || in.During != "light/immediate-nolifo" {
		t.Errorf("Incomplete = %+v", rep.Incomplete)
	}
	if len(starts) != 2 {
		t.Errorf("runs started: %v", starts)
	}
	if m := rep.Scenarios[0].Modes[0]; m.FuelPerSecond <= 0 || m.Probe.N == 0 {
		t.Errorf("the finished run lacks its figures: %+v", m)
	}
	var tbl strings.Builder
	if err := WriteTable(&tbl, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tbl.String(), "incomplete: 1 of 3 runs finished") {
		t.Errorf("table does not say it is incomplete:\n%s", tbl.String())
	}
}
