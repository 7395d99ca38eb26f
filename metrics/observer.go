package metrics

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/atomic"

	"github.com/wasmsched/wasmsched/scheduler"
)

// Observer is the opt-in half of the metrics: a scheduler.Observer that
// records every poll's duration and every task's schedule latency (from
// becoming runnable to the start of its poll) into two histograms, and a
// prometheus.Collector that exports them:
//
//	wasmsched_poll_duration_seconds       histogram
//	wasmsched_schedule_latency_seconds    histogram
//
// Install it when creating the runtime and register it beside the
// Collector:
//
//	obs := metrics.NewObserver()
//	rt, _ := scheduler.New(scheduler.WithObserver(obs))
//	reg.MustRegister(metrics.New(rt, eng), obs)
//
// It is opt-in because the scheduler then reads the clock twice per poll
// and once per wake. The Observe methods run on worker goroutines in the
// hot path, so they do not touch a shared prometheus.Histogram (whose
// atomic adds would bounce one cache line between workers): each worker
// counts into its own padded shard of plain bucket counters (a binary
// search over the bounds and two uncontended atomic adds), and Collect sums
// the shards into constant histograms at scrape time. The histograms are
// runtime-wide (no worker label), to keep the series count at
// buckets x 2.
type Observer struct {
	poll, latency hist
}

// buckets are the histograms' upper bounds, in seconds: 1 µs to 10 s in
// 1-2.5-5 steps (a poll of a guest slice is about a millisecond; a
// schedule latency ranges from microseconds to whole slices). An array, so
// its length sizes histShard at compile time.
var buckets = [...]float64{
	1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
	1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Buckets returns the histograms' upper bounds, in seconds.
func Buckets() []float64 { return append([]float64(nil), buckets[:]...) }

var bucketNanos = func() (out [len(buckets)]int64) {
	for i, b := range buckets {
		out[i] = int64(b * 1e9)
	}
	return out
}()

var (
	dPollDuration = desc("poll_duration_seconds", "Duration of one task poll on any worker (opt-in Observer).")
	dSchedLatency = desc("schedule_latency_seconds", "Time from a task becoming runnable (spawned, woken, or re-queued after a yield) to the start of its poll (opt-in Observer).")
)

// numShards is the histograms' shard count: workers beyond it share
// shards (worker ID modulo 64). 64 covers the worker counts a runtime
// sensibly has, at 64 x ~200 bytes per histogram.
const numShards = 64

// cacheLine is the size of a cache line on x86-64 and arm64.
const cacheLine = 64

// hist is one histogram, sharded by worker.
type hist struct {
	shards [numShards]histShard
}

type histShard struct {
	counts [len(buckets) + 1]atomic.Uint64 // last: above every bound
	sum    atomic.Int64                    // nanoseconds
	_      [cacheLine]byte
}

func (h *hist) observe(worker int, d time.Duration) {
	ns := int64(d)
	i := sort.Search(len(bucketNanos), func(i int) bool { return bucketNanos[i] >= ns })
	s := &h.shards[uint(worker)%numShards]
	s.counts[i].Inc()
	s.sum.Add(ns)
}

func (h *hist) metric(d *prometheus.Desc) prometheus.Metric {
	var counts [len(buckets) + 1]uint64
	var sum int64
	for i := range h.shards {
		s := &h.shards[i]
		for b := range counts {
			counts[b] += s.counts[b].Load()
		}
		sum += s.sum.Load()
	}
	cum := make(map[float64]uint64, len(buckets))
	var total uint64
	for i, b := range buckets {
		total += counts[i]
		cum[b] = total
	}
	total += counts[len(buckets)]
	return prometheus.MustNewConstHistogram(d, total, float64(sum)/1e9, cum)
}

// NewObserver returns an Observer with empty histograms.
func NewObserver() *Observer { return &Observer{} }

var _ scheduler.Observer = (*Observer)(nil)

// ObservePoll implements scheduler.Observer.
func (o *Observer) ObservePoll(worker int, d time.Duration) { o.poll.observe(worker, d) }

// ObserveScheduleLatency implements scheduler.Observer.
func (o *Observer) ObserveScheduleLatency(worker int, d time.Duration) {
	o.latency.observe(worker, d)
}

// Describe implements prometheus.Collector.
func (o *Observer) Describe(ch chan<- *prometheus.Desc) {
	ch <- dPollDuration
	ch <- dSchedLatency
}

// Collect implements prometheus.Collector.
func (o *Observer) Collect(ch chan<- prometheus.Metric) {
	ch <- o.poll.metric(dPollDuration)
	ch <- o.latency.metric(dSchedLatency)
}
