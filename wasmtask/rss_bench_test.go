package wasmtask

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
)

// BenchmarkSuspendedGuestsRSS suspends N guests at once (spin.wasm: no
// linear memory; SleepPolicy(time.Hour) at their first fuel deadline, as in
// BenchmarkSuspendedGuestMemory), reports what they cost, then aborts them
// all and checks that every one ended, aborted. Per guest:
//
//   - RSS-B/guest: growth of the resident set (/proc/self/status VmRSS)
//     after a GC, as the process stands: it includes the heap's free pages
//     that the runtime has not returned to the OS yet
//     (free-unreleased-B/guest, within GOGC's slack);
//   - RSS-released-B/guest: the same after debug.FreeOSMemory;
//   - heap+stack-B/guest (heap-B/guest, stack-B/guest): growth of the Go
//     heap's spans in use and of goroutine stacks, as
//     BenchmarkSuspendedGuestMemory measures;
//   - ended-heap+stack-B/guest: what is left once every guest has ended;
//   - ns/spawn+suspend, ns/abort+end: how long it took;
//
// and the totals RSS-MiB and peak-RSS-MiB (VmHWM).
//
// N is WASMSCHED_RSS_GUESTS (default 100,000). The 1,000,000 is run
// by hand, on a machine with room for it (~17 GiB):
//
//	WASMSCHED_RSS_GUESTS=1000000 go test -run '^$' -bench SuspendedGuestsRSS -benchtime 1x ./wasmtask/
//
// WASMSCHED_RSS_HEAPPROFILE=file writes a heap profile while the guests
// are suspended, and file.ended once they have all ended (each after a
// GC), for `go tool pprof -sample_index=inuse_space` (with
// -test.memprofilerate=1 for exact sizes).
func BenchmarkSuspendedGuestsRSS(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads the resident set from /proc/self/status: Linux only")
	}
	n := 100_000
	if s := os.Getenv("WASMSCHED_RSS_GUESTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("WASMSCHED_RSS_GUESTS=%q: want a positive number of guests", s)
		}
		n = v
	}
	for range b.N {
		suspendGuestsRSS(b, n)
	}
}

func suspendGuestsRSS(b *testing.B, n int) {
	e := newEnv(b, "spin.wasm", EngineConfig{}, scheduler.WithWorkers(2))
	hs := make([]*scheduler.JoinHandle[Result], 0, n)
	before := readMemory(b, true)
	start := time.Now()
	for range n {
		hs = append(hs, Spawn(context.Background(), e.rt, e.mod, Options{Export: "spin", Args: []uint64{1 << 62},
			Interrupt: InterruptFuel, FuelSlice: 1000, Policy: SleepPolicy(time.Hour)}))
	}
	// Every guest suspends at its first deadline, after ~1000 fuel.
	deadline := start.Add(guestTimeout + time.Duration(n)*100*time.Microsecond)
	for e.eng.Stats().Suspended < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%d guests suspended after %v, want %d", e.eng.Stats().Suspended, time.Since(start), n)
		}
		time.Sleep(time.Millisecond)
	}
	spawned := time.Since(start)
	after := readMemory(b, false)   // as the process stands
	released := readMemory(b, true) // with the runtime's free pages returned
	if path := os.Getenv("WASMSCHED_RSS_HEAPPROFILE"); path != "" {
		writeHeapProfile(b, path)
	}
	per := func(a, b int64) float64 { return float64(a-b) / float64(n) }
	b.ReportMetric(per(after.rss, before.rss), "RSS-B/guest")
	b.ReportMetric(per(released.rss, before.rss), "RSS-released-B/guest")
	b.ReportMetric(per(after.heap+after.stack, before.heap+before.stack), "heap+stack-B/guest")
	b.ReportMetric(per(after.heap, before.heap), "heap-B/guest")
	b.ReportMetric(per(after.stack, before.stack), "stack-B/guest")
	b.ReportMetric(per(after.idle, before.idle), "free-unreleased-B/guest")
	b.ReportMetric(float64(after.rss)/(1<<20), "RSS-MiB")
	b.ReportMetric(float64(after.peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(spawned.Nanoseconds())/float64(n), "ns/spawn+suspend")

	start = time.Now()
	for _, h := range hs {
		h.Abort()
	}
	aborted := 0
	for i, h := range hs {
		_, err := waitGuest(b, h)
		switch {
		case errors.Is(err, scheduler.ErrAborted):
			aborted++
		case err == nil:
			b.Errorf("guest %d returned instead of being aborted", i)
		default:
			b.Errorf("guest %d: %v, want aborted", i, err)
		}
		hs[i] = nil
	}
	if aborted != n {
		b.Fatalf("%d of %d guests ended aborted", aborted, n)
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(n), "ns/abort+end")
	ended := readMemory(b, false)
	if path := os.Getenv("WASMSCHED_RSS_HEAPPROFILE"); path != "" {
		writeHeapProfile(b, path+".ended")
	}
	b.ReportMetric(per(ended.heap+ended.stack, before.heap+before.stack), "ended-heap+stack-B/guest")
	if s := e.eng.Stats(); s.Suspended != 0 || s.Started != int64(n) || s.Finished != int64(n) {
		b.Fatalf("after every guest ended: %d suspended, %d started, %d finished", s.Suspended, s.Started, s.Finished)
	}
}

type memoryReading struct {
	rss, peak         int64 // VmRSS, VmHWM
	heap, stack, idle int64 // HeapInuse, StackInuse, HeapIdle − HeapReleased
}

// readMemory collects garbage (and, if release, returns every free page to
// the OS) and reads the Go heap and stacks in use and the process's
// resident set.
func readMemory(b *testing.B, release bool) memoryReading {
	if release {
		debug.FreeOSMemory()
	} else {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	r := memoryReading{heap: int64(m.HeapInuse), stack: int64(m.StackInuse), idle: int64(m.HeapIdle - m.HeapReleased)}
	for line := range strings.Lines(string(status)) {
		name, value, _ := strings.Cut(line, ":")
		var field *int64
		switch name {
		case "VmRSS":
			field = &r.rss
		case "VmHWM":
			field = &r.peak
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			b.Fatalf("/proc/self/status: %q: %v", line, err)
		}
		*field = kb << 10
	}
	if r.rss == 0 || r.peak == 0 {
		b.Fatalf("/proc/self/status has no VmRSS or VmHWM:\n%s", status)
	}
	return r
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}
