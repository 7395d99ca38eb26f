package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched"
	"github.com/wasmsched/wasmsched/jobs"
	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// BenchmarkServeSubmit measures what the durable queue costs per job, for
// a trivial job (the embedded spin guest, spin(1)): submit-to-start
// latency at p50 and p99 from one client submitting one job at a time
// (from the client sending POST /jobs to the job's task being spawned, as
// the job's record says), and jobs per second submitted and completed
// from eight clients. The baseline, measured in the same
// run, is serve's former in-memory path: the POST handler spawns the
// task itself. Against it: JetStream embedded (the default), and one and
// two replicas sharing a NATS server reached over TCP on 127.0.0.1.
func BenchmarkServeSubmit(b *testing.B) {
	for _, setup := range []struct {
		name string
		up   func(b *testing.B) []string // the replicas' base URLs
	}{
		{"in-memory", inMemoryServe},
		{"jetstream-embedded", func(b *testing.B) []string {
			_, hs := testServer(b, serveConfig{maxJobs: 64})
			return []string{hs.URL}
		}},
		{"jetstream-external-1", func(b *testing.B) []string { return externalReplicas(b, 1) }},
		{"jetstream-external-2", func(b *testing.B) []string { return externalReplicas(b, 2) }},
	} {
		b.Run(setup.name+"/latency", func(b *testing.B) {
			// One job at a time, each waited to its end: the latency is
			// the path's own, not a queue of earlier jobs.
			urls := setup.up(b)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				id := postBench(b, urls[0])
				lat = append(lat, benchStarted(b, urls[0], id).Sub(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
		b.Run(setup.name+"/throughput", func(b *testing.B) {
			urls := setup.up(b)
			var left atomic.Int64
			left.Store(int64(b.N))
			var mu sync.Mutex
			var ids []string
			var wg sync.WaitGroup
			b.ResetTimer()
			for c := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for left.Add(-1) >= 0 {
						id := postBench(b, urls[c%len(urls)])
						mu.Lock()
						ids = append(ids, id)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			for _, id := range ids { // every job to its end
				benchEnded(b, urls[0], id)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}

const benchJobURL = "/jobs?guest=spin&export=spin&args=1"

func postBench(b *testing.B, base string) string {
	resp, err := http.Post(base+benchJobURL, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var j struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || resp.StatusCode != http.StatusAccepted {
		b.Fatalf("POST: %d %v", resp.StatusCode, err)
	}
	return j.ID
}

// benchEnded polls job id until done, returning its record.
func benchEnded(b *testing.B, base, id string) jobs.Job {
	for {
		resp, err := http.Get(base + "/jobs/" + id)
		if err != nil {
			b.Fatal(err)
		}
		var j jobs.Job
		err = json.NewDecoder(resp.Body).Decode(&j)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		if j.Status == jobs.Done {
			return j
		}
		if j.Status.Final() {
			b.Fatalf("job %s ended %+v", id, j)
		}
		time.Sleep(time.Millisecond)
	}
}

func benchStarted(b *testing.B, base, id string) time.Time {
	j := benchEnded(b, base, id)
	return *j.Started
}

// inMemoryServe is the baseline: serve's former in-memory path, where
// the POST handler spawns the job's task and keeps the record in a map.
func inMemoryServe(b *testing.B) []string {
	rt, err := scheduler.New(scheduler.WithWorkers(2))
	if err != nil {
		b.Fatal(err)
	}
	eng, err := wasmtask.NewEngine(context.Background(), wasmtask.EngineConfig{})
	if err != nil {
		b.Fatal(err)
	}
	spin, _ := wasmsched.Guest("spin")
	mod, err := eng.Compile(context.Background(), spin)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	recs := map[string]*jobs.Job{}
	var n atomic.Int64
	var wg sync.WaitGroup
	mux := http.NewServeMux()
	mux.HandleFunc("POST /jobs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		params, _, _ := mod.ExportSignature(q.Get("export"))
		args, err := wasmtask.ParseArgs(q.Get("export"), []string{q.Get("args")}, params)
		if err != nil {
			httpError(w, http.StatusBadRequest, "%v", err)
			return
		}
		now := time.Now()
		j := &jobs.Job{ID: fmt.Sprint(n.Add(1)), Status: jobs.Running, Started: &now}
		h := wasmtask.Spawn(context.Background(), rt, mod, wasmtask.Options{Export: q.Get("export"), Args: args, Policy: wasmtask.DeferredYield()})
		mu.Lock()
		recs[j.ID] = j
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.Wait(context.Background())
			mu.Lock()
			j.Status = jobs.Done
			if err != nil {
				j.Status = jobs.Failed
			}
			mu.Unlock()
		}()
		writeJSON(w, http.StatusAccepted, j)
	})
	mux.HandleFunc("GET /jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		c := *recs[r.PathValue("id")]
		mu.Unlock()
		writeJSON(w, http.StatusOK, c)
	})
	hs := httptest.NewServer(mux)
	b.Cleanup(func() {
		hs.Close()
		wg.Wait()
		rt.Shutdown(context.Background())
		eng.Close(context.Background())
	})
	return []string{hs.URL}
}

// externalReplicas starts a NATS server listening on 127.0.0.1 and n
// serve replicas connected to it over TCP.
func externalReplicas(b *testing.B, n int) []string {
	ns, err := jobs.StartEmbeddedNATS(b.TempDir(), "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ns.Shutdown)
	var urls []string
	for range n {
		_, hs := testServer(b, serveConfig{maxJobs: 64, natsURL: ns.ClientURL()})
		urls = append(urls, hs.URL)
	}
	return urls
}
