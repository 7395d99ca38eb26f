package experiment

import (
	"context"
	"sync"
	"time"

	"github.com/wasmsched/wasmsched/scheduler"
)

// TimerProbe sleeps Period in a loop until the window stops and records,
// while the window is open, how late each sleep ended (actual − period).
type TimerProbe struct {
	period time.Duration
	late   []time.Duration // written by the probe's task or goroutine only
	h      *scheduler.JoinHandle[struct{}]
	done   chan struct{}
}

// StartTimerProbe spawns the probe as a stackful task on rt: each sleep is
// co.Sleep, so it measures the runtime's timer driver and how soon a
// worker polls the woken task.
func StartTimerProbe(rt *scheduler.Runtime, w *Window, period time.Duration) *TimerProbe {
	p := &TimerProbe{period: period}
	p.h = scheduler.SpawnFunc(rt, func(co *scheduler.Co) (struct{}, error) {
		p.loop(w, co.Sleep)
		return struct{}{}, nil
	})
	return p
}

// StartGoroutineProbe runs the probe as a plain goroutine calling
// time.Sleep: the reference for what Go's own timers give on the machine.
func StartGoroutineProbe(w *Window, period time.Duration) *TimerProbe {
	p := &TimerProbe{period: period, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.loop(w, time.Sleep)
	}()
	return p
}

func (p *TimerProbe) loop(w *Window, sleep func(time.Duration)) {
	for !w.Stopped() {
		t0 := time.Now()
		sleep(p.period)
		if late := time.Since(t0) - p.period; w.Measuring() {
			p.late = append(p.late, late)
		}
	}
}

// Wait waits for the probe to end (after Window.Stop, within one period).
func (p *TimerProbe) Wait(ctx context.Context) error {
	if p.h != nil {
		_, err := p.h.Wait(ctx)
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Late is how late each sleep in the window ended; read it after Wait.
func (p *TimerProbe) Late() []time.Duration { return p.late }

// ExternalWaker is a goroutine outside the runtime that wakes a parked
// task every period through scheduler.Waker.Wake, as a network poller or
// a channel from the rest of a service would. The task records, at each
// poll while the window is open, the delay from every send it has not
// seen yet to the poll.
type ExternalWaker struct {
	t    *extTask
	h    *scheduler.JoinHandle[struct{}]
	done chan struct{}
}

// StartExternalWaker spawns the woken task on rt, waits for its first
// poll (which hands over its waker) and starts the sending goroutine.
func StartExternalWaker(rt *scheduler.Runtime, w *Window, period time.Duration) *ExternalWaker {
	e := &ExternalWaker{t: &extTask{w: w, wakerCh: make(chan scheduler.Waker, 1)}, done: make(chan struct{})}
	e.h = scheduler.Spawn[struct{}](rt, e.t)
	waker := <-e.t.wakerCh
	go func() {
		defer close(e.done)
		for !w.Stopped() {
			time.Sleep(period)
			e.t.mu.Lock()
			e.t.sent = append(e.t.sent, time.Now())
			e.t.mu.Unlock()
			waker.Wake()
		}
		waker.Wake() // let the task see the stop
	}()
	return e
}

// Wait waits for the sending goroutine (it ends within one period of
// Window.Stop) and then for the task.
func (e *ExternalWaker) Wait(ctx context.Context) error {
	select {
	case <-e.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err := e.h.Wait(ctx)
	return err
}

// Delays are the send → poll delays in the window; read them after Wait.
func (e *ExternalWaker) Delays() []time.Duration { return e.t.delays }

// extTask is the task the external goroutine wakes.
type extTask struct {
	w       *Window
	wakerCh chan scheduler.Waker
	mu      sync.Mutex
	sent    []time.Time // sends not yet seen by a poll
	delays  []time.Duration
	started bool
}

func (e *extTask) Poll(cx *scheduler.Context) (struct{}, bool) {
	now := time.Now()
	if !e.started {
		e.started = true
		e.wakerCh <- cx.Waker()
	}
	e.mu.Lock()
	if e.w.Measuring() {
		for _, s := range e.sent {
			e.delays = append(e.delays, now.Sub(s))
		}
	}
	e.sent = e.sent[:0]
	e.mu.Unlock()
	return struct{}{}, e.w.Stopped()
}
