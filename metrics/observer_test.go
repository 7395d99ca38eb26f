package metrics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wasmsched/wasmsched/scheduler"
)

// TestObserverBuckets: observations from several workers land in the
// right buckets, cumulatively, with the exact sum.
func TestObserverBuckets(t *testing.T) {
	o := NewObserver()
	o.ObservePoll(0, 700*time.Nanosecond)            // <= 1e-6
	o.ObservePoll(1, time.Microsecond)               // <= 1e-6 (bounds are inclusive)
	o.ObservePoll(70, 3*time.Millisecond)            // <= 5e-3; worker 70 shares a shard with 6
	o.ObservePoll(2, 20*time.Second)                 // above every bound: +Inf only
	o.ObserveScheduleLatency(0, 40*time.Microsecond) // <= 5e-5
	want := `
# HELP wasmsched_poll_duration_seconds Duration of one task poll on any worker (opt-in Observer).
# TYPE wasmsched_poll_duration_seconds histogram
wasmsched_poll_duration_seconds_bucket{le="1e-06"} 2
wasmsched_poll_duration_seconds_bucket{le="2.5e-06"} 2
wasmsched_poll_duration_seconds_bucket{le="5e-06"} 2
wasmsched_poll_duration_seconds_bucket{le="1e-05"} 2
wasmsched_poll_duration_seconds_bucket{le="2.5e-05"} 2
wasmsched_poll_duration_seconds_bucket{le="5e-05"} 2
wasmsched_poll_duration_seconds_bucket{le="0.0001"} 2
wasmsched_poll_duration_seconds_bucket{le="0.00025"} 2
wasmsched_poll_duration_seconds_bucket{le="0.0005"} 2
wasmsched_poll_duration_seconds_bucket{le="0.001"} 2
wasmsched_poll_duration_seconds_bucket{le="0.0025"} 2
wasmsched_poll_duration_seconds_bucket{le="0.005"} 3
wasmsched_poll_duration_seconds_bucket{le="0.01"} 3
wasmsched_poll_duration_seconds_bucket{le="0.025"} 3
wasmsched_poll_duration_seconds_bucket{le="0.05"} 3
wasmsched_poll_duration_seconds_bucket{le="0.1"} 3
wasmsched_poll_duration_seconds_bucket{le="0.25"} 3
wasmsched_poll_duration_seconds_bucket{le="0.5"} 3
wasmsched_poll_duration_seconds_bucket{le="1"} 3
wasmsched_poll_duration_seconds_bucket{le="2.5"} 3
wasmsched_poll_duration_seconds_bucket{le="5"} 3
wasmsched_poll_duration_seconds_bucket{le="10"} 3
wasmsched_poll_duration_seconds_bucket{le="+Inf"} 4
wasmsched_poll_duration_seconds_sum 20.0030017
wasmsched_poll_duration_seconds_count 4
`
	if err := testutil.CollectAndCompare(o, strings.NewReader(want), "wasmsched_poll_duration_seconds"); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(o); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// TestObserverOnRuntime: on one worker, N tasks that complete in one poll
// each give exactly N poll observations and N schedule latencies.
func TestObserverOnRuntime(t *testing.T) {
	o := NewObserver()
	rt, err := scheduler.New(scheduler.WithWorkers(1), scheduler.WithObserver(o))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	const n = 50
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		h := scheduler.Spawn(rt, scheduler.PollFunc[int](func(*scheduler.Context) (int, bool) { return 1, true }))
		if _, err := h.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(o)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		// The observation is made after the poll returns, so the last
		// task's may still be on its way: wait for it.
		got := mf.GetMetric()[0].GetHistogram().GetSampleCount()
		for deadline := time.Now().Add(5 * time.Second); got < n && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
			mfs2, _ := reg.Gather()
			for _, m2 := range mfs2 {
				if m2.GetName() == mf.GetName() {
					got = m2.GetMetric()[0].GetHistogram().GetSampleCount()
				}
			}
		}
		if got != n {
			t.Errorf("%s: %d observations, want %d", mf.GetName(), got, n)
		}
	}
	if len(mfs) != 2 {
		t.Fatalf("%d families, want 2", len(mfs))
	}
}
