package compare

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmsched/wasmsched"
	"github.com/wasmsched/wasmsched/internal/experiment"
	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// The service scenario's requests (see the package doc). They are
// constants: Config has no knob that fits, and the timer probe and the
// external waker run at the same fixed period.
const (
	// ServiceRequestPeriod is how often a request is due.
	ServiceRequestPeriod = time.Millisecond
	// ServiceRequestWork is how long a request's spin call takes on an
	// idle runtime: its iteration count is calibrated to it.
	ServiceRequestWork = 50 * time.Microsecond
)

// The calibration: calls long beside a spawn's overhead (spin of
// calibrationIterations is milliseconds) and short beside a run; the
// fastest of several, the one least disturbed by other processes.
const (
	calibrationIterations = 2_000_000
	calibrationCalls      = 5
	requestTimingCalls    = 20
)

// ServiceSetup is the service scenario's calibrated request, the same for
// every mode.
type ServiceSetup struct {
	RequestPeriod     string `json:"request_period"`
	RequestIterations int64  `json:"request_iterations"` // spin's argument
	RequestFuel       int64  `json:"request_fuel"`       // 14n+7: exact
	// RequestCallUS is the fastest of plain request calls on an idle
	// runtime of one worker, from the spawn to the result.
	RequestCallUS float64 `json:"request_call_us"`
	// SpinFuelPerSecond is the fuel rate of a plain spin call: batch fuel
	// divided by it is guest-seconds of spin work.
	SpinFuelPerSecond float64 `json:"spin_fuel_per_second"`
}

// ServiceResult is one mode's run of the service scenario.
type ServiceResult struct {
	// Submitted are the requests due while the window was open (late
	// ones submitted after it closed included), Completed those of them
	// that returned the right value (the run waits for each of them
	// before it stops the batch guests, and a request that fails fails
	// the run, so the two are equal in a report).
	Submitted int `json:"requests_submitted"`
	Completed int `json:"requests_completed"`
	// Latency is from the moment each request was due to the moment the
	// goroutine waiting for it had its result; SubmitLag from the moment
	// it was due to its spawn (the submitter's own lateness, included in
	// Latency).
	Latency   experiment.Latency `json:"request_latency"`
	SubmitLag experiment.Latency `json:"request_submit_lag"`
	// The requests' yields by path: the mode's policy is theirs too.
	YieldsImmediate int64 `json:"request_yields_immediate"`
	YieldsDeferred  int64 `json:"request_yields_deferred"`
	// BatchGuestSecondsPerSec is the batch guests' fuel per second of the
	// window divided by ServiceSetup.SpinFuelPerSecond: how many workers'
	// worth of spin work the batch got done.
	BatchGuestSecondsPerSec float64 `json:"batch_guest_seconds_per_second"`
}

// service is the scenario's request guest, compiled, and its calibration.
type service struct {
	mod   *wasmtask.Module // the embedded spin guest
	setup ServiceSetup
	want  uint64 // spin's value for the request's iterations
}

// spinValue is what the spin guest's spin(n) returns (testdata/spin.wat):
// an LCG step plus the counter, n times, from 1.
func spinValue(n int64) uint64 {
	acc := uint64(1)
	for k := uint64(n); k > 0; k-- {
		acc = acc*6364136223846793005 + k
	}
	return acc
}

// spinFuel is the exact fuel of spin(n) (testdata/spin.wat, 14 per
// iteration plus 7).
func spinFuel(n int64) int64 { return 14*n + 7 }

// newService compiles the embedded spin guest and calibrates the request
// on a runtime of one worker of its own: the iterations a plain call does
// in ServiceRequestWork, from the fastest of calibrationCalls calls of
// calibrationIterations.
func newService(ctx context.Context, eng *wasmtask.Engine) (*service, error) {
	b, err := wasmsched.Guest("spin")
	if err != nil {
		return nil, err
	}
	mod, err := eng.Compile(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("the embedded spin guest: %w", err)
	}
	rt, err := scheduler.New(scheduler.WithWorkers(1))
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rt.Shutdown(sctx)
	}()
	long, err := fastestCall(ctx, rt, mod, calibrationIterations, calibrationCalls)
	if err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	n := max(1, int64(math.Round(calibrationIterations*float64(ServiceRequestWork)/float64(long))))
	short, err := fastestCall(ctx, rt, mod, n, requestTimingCalls)
	if err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	return &service{mod: mod, want: spinValue(n), setup: ServiceSetup{
		RequestPeriod: ServiceRequestPeriod.String(), RequestIterations: n, RequestFuel: spinFuel(n),
		RequestCallUS:     float64(short) / float64(time.Microsecond),
		SpinFuelPerSecond: float64(spinFuel(calibrationIterations)) / long.Seconds(),
	}}, nil
}

// fastestCall is the shortest of k plain calls of spin(n) on rt, each
// from its spawn to its result, checking every result.
func fastestCall(ctx context.Context, rt *scheduler.Runtime, mod *wasmtask.Module, n int64, k int) (time.Duration, error) {
	keepRunning := func(wasmtask.GuestInfo) wasmtask.Action { return wasmtask.Continue(0) }
	best, want := time.Duration(math.MaxInt64), spinValue(n)
	for range k {
		t0 := time.Now()
		res, err := wasmtask.Spawn(ctx, rt, mod, wasmtask.Options{Name: "calibration", Export: "spin", Args: []uint64{uint64(n)}, Policy: keepRunning}).Wait(ctx)
		d := time.Since(t0)
		if err != nil {
			return 0, err
		}
		if err := checkSpin(res, n, want); err != nil {
			return 0, err
		}
		best = min(best, d)
	}
	return best, nil
}

// checkSpin checks a spin(n) call's result: its value and its exact fuel.
func checkSpin(res wasmtask.Result, n int64, want uint64) error {
	if len(res.Values) != 1 || res.Values[0] != want {
		return fmt.Errorf("spin(%d) returned %v, want [%d]", n, res.Values, want)
	}
	if res.Stats.FuelUsed != spinFuel(n) {
		return fmt.Errorf("spin(%d) used %d fuel, want %d", n, res.Stats.FuelUsed, spinFuel(n))
	}
	return nil
}

// requests are one run's requests: the submitter goroutine, a goroutine
// per request waiting for its result (as a service's handler would), and
// what they measured, read after all is closed.
type requests struct {
	svc   *service
	start time.Time // request k is due at start + k periods
	// The window as measure marks it, in time since start (math.MaxInt64
	// until marked): a request counts if it was due in [open, close).
	open, close atomic.Int64
	done        chan struct{} // the submitter has returned
	all         chan struct{} // ... and every request's goroutine too
	wg          sync.WaitGroup

	mu       sync.Mutex
	subs     []submission // request k is subs[k]
	firstErr error
}

// submission is one request's figures, all from its due time.
type submission struct {
	due, lag, latency   time.Duration // lag: to its spawn; latency: to its result
	done                bool
	immediate, deferred int64 // its yields by path
}

// startRequests starts the submitter: from now until the window closes
// (or the run stops), a request is due every ServiceRequestPeriod.
func (r *run) startRequests() {
	q := &requests{svc: r.svc, start: time.Now(), done: make(chan struct{}), all: make(chan struct{})}
	q.open.Store(math.MaxInt64)
	q.close.Store(math.MaxInt64)
	r.reqs = q
	go q.submit(r)
	go func() {
		<-q.done
		q.wg.Wait() // every Add is the submitter's, before done
		close(q.all)
	}()
}

// mark sets the window's opening or closing (at) to t.
func (q *requests) mark(at *atomic.Int64, t time.Time) { at.Store(int64(t.Sub(q.start))) }

// submit spawns request k at start + k periods, or at once if that moment
// has passed: a late submitter catches up in a burst, each request keeping
// its own due time. It returns at the first request due after the window.
func (q *requests) submit(r *run) {
	defer close(q.done)
	// The thread sleeps in a system call (preciseSleep): locked to it,
	// the submitter wakes on it rather than queueing for another.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for k := 0; ; k++ {
		due := time.Duration(k) * ServiceRequestPeriod
		if int64(due) >= q.close.Load() || r.w.Stopped() {
			return
		}
		if d := time.Until(q.start.Add(due)); d > 0 {
			preciseSleep(d)
			if int64(due) >= q.close.Load() || r.w.Stopped() {
				return
			}
		}
		lag := time.Since(q.start.Add(due))
		h := wasmtask.Spawn(r.ctx, r.rt, q.svc.mod, r.requestOptions(k))
		q.mu.Lock()
		q.subs = append(q.subs, submission{due: due, lag: lag})
		q.mu.Unlock()
		q.wg.Add(1)
		go q.await(h, k)
	}
}

// requestOptions are request k's options: spin of the calibrated
// iterations, interrupted like the batch guests and yielding through the
// mode's path at each deadline. Unlike the batch guests' policy it never
// traps: every request runs to its end.
func (r *run) requestOptions(k int) wasmtask.Options {
	path := r.mode.Path
	return wasmtask.Options{
		Name: fmt.Sprintf("request-%d", k), Export: "spin", Args: []uint64{uint64(r.svc.setup.RequestIterations)},
		Interrupt: r.cfg.Interrupt, FuelSlice: r.cfg.FuelSlice,
		Policy: func(wasmtask.GuestInfo) wasmtask.Action { return wasmtask.Yield(0, path) },
	}
}

// await waits for request k's result and records it.
func (q *requests) await(h *scheduler.JoinHandle[wasmtask.Result], k int) {
	defer q.wg.Done()
	res, err := h.Wait(context.Background())
	end := time.Since(q.start)
	if err == nil {
		err = checkSpin(res, q.svc.setup.RequestIterations, q.svc.want)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err != nil {
		if q.firstErr == nil {
			q.firstErr = fmt.Errorf("request %d: %w", k, err)
		}
		return
	}
	s := &q.subs[k]
	s.done, s.latency = true, end-s.due
	s.immediate, s.deferred = res.Stats.Immediate, res.Stats.Deferred
}

// drain waits, once the window has closed, for the submitter to stop and
// for every request to complete (the batch guests still running, so the
// last requests are served under the same load as the others).
func (q *requests) drain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	select {
	case <-q.all:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("requests did not complete: %w", ctx.Err())
	}
}

// result summarises the requests due in the window, after drain, with the
// batch guests' fuel per second of the window. A request that failed or
// returned a wrong value fails the run.
func (q *requests) result(batchFuelPerSec float64) (*ServiceResult, error) {
	if q.firstErr != nil {
		return nil, fmt.Errorf("request failed: %w", q.firstErr)
	}
	res := &ServiceResult{BatchGuestSecondsPerSec: batchFuelPerSec / q.svc.setup.SpinFuelPerSecond}
	var lat, lag []time.Duration
	open, end := q.open.Load(), q.close.Load()
	for _, s := range q.subs {
		if int64(s.due) < open || int64(s.due) >= end {
			continue
		}
		res.Submitted++
		lag = append(lag, s.lag)
		if s.done {
			res.Completed++
			lat = append(lat, s.latency)
			res.YieldsImmediate += s.immediate
			res.YieldsDeferred += s.deferred
		}
	}
	if res.Completed != res.Submitted {
		return nil, errors.New("requests: fewer completed than submitted after the drain")
	}
	res.Latency, res.SubmitLag = experiment.Summarise(lat), experiment.Summarise(lag)
	return res, nil
}
