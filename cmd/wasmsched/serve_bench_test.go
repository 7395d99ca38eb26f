package main

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkServeSubmit measures serve's in-memory job path, the baseline
// the JetStream-backed service (issue 10) will be compared with: for a
// trivial job (the embedded spin guest, spin(1)), submit-to-start latency
// — a POST /jobs answered 202 once the job's task is spawned — at p50 and
// p99 from one client, and jobs per second, submitted and completed, from
// eight clients.
func BenchmarkServeSubmit(b *testing.B) {
	const url = "/jobs?guest=spin&export=spin&args=1"
	b.Run("latency", func(b *testing.B) {
		s, hs := testServer(b, serveConfig{maxJobs: 1 << 16, keepJobs: 1 << 16})
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			if code, _, raw := do(b, "POST", hs.URL+url, nil); code != http.StatusAccepted {
				b.Fatalf("POST: %d %s", code, raw)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		s.wg.Wait()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	})
	b.Run("throughput", func(b *testing.B) {
		s, hs := testServer(b, serveConfig{maxJobs: 1 << 16, keepJobs: 1 << 16})
		var left atomic.Int64
		left.Store(int64(b.N))
		var wg sync.WaitGroup
		b.ResetTimer()
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					resp, err := http.Post(hs.URL+url, "", nil)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						b.Errorf("POST: %d", resp.StatusCode)
						return
					}
				}
			}()
		}
		wg.Wait()
		s.wg.Wait() // every job supervised to its end
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	})
}
