package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmsched/wasmsched"
	"github.com/wasmsched/wasmsched/metrics"
)

func testServer(t testing.TB, cfg serveConfig) (*server, *httptest.Server) {
	t.Helper()
	if cfg.workers == 0 {
		cfg.workers = 2
	}
	if cfg.maxBody == 0 {
		cfg.maxBody = 1 << 20
	}
	if cfg.maxJobs == 0 {
		cfg.maxJobs = 4
	}
	if cfg.jobTimeout == 0 {
		cfg.jobTimeout = 30 * time.Second
	}
	if cfg.dataDir == "" && cfg.natsURL == "" {
		cfg.dataDir = t.TempDir()
	}
	if cfg.maxModules == 0 {
		cfg.maxModules = 16
	}
	s, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.handler())
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.close(ctx)
	})
	return s, hs
}

func do(t testing.TB, method, url string, body []byte) (int, map[string]any, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return send(t, req)
}

// send sends req and returns the status, the answer as JSON (if it is
// an object) and as text.
func send(t testing.TB, req *http.Request) (int, map[string]any, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m, string(b)
}

// waitJob polls a job until its status is final.
func waitJob(t *testing.T, base, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		code, m, raw := do(t, "GET", base+"/jobs/"+id, nil)
		if code != 200 {
			t.Fatalf("GET job %s: %d %s", id, code, raw)
		}
		if m["status"] != "running" && m["status"] != "queued" {
			return m
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("job %s not ended after 30 s", id)
	return nil
}

func TestServeJobs(t *testing.T) {
	_, hs := testServer(t, serveConfig{})
	// An embedded guest's export.
	code, m, raw := do(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=1000", nil)
	if code != http.StatusAccepted || m["id"] == nil {
		t.Fatalf("POST: %d %s", code, raw)
	}
	got := waitJob(t, hs.URL, m["id"].(string))
	if got["status"] != "done" || fmt.Sprint(got["result"]) != fmt.Sprintf("[%d]", spinRef(1000)) /* decimal strings */ {
		t.Fatalf("job: %v", got)
	}
	if st := got["stats"].(map[string]any); st["FuelUsed"] != float64(14*1000+7) {
		t.Errorf("fuel %v, want 14007", st["FuelUsed"])
	}
	// An uploaded WASI command, with its output captured.
	cg, err := os.ReadFile("../../testdata/cguest.wasm")
	if err != nil {
		t.Fatal(err)
	}
	code, m, raw = do(t, "POST", hs.URL+"/jobs", cg)
	if code != http.StatusAccepted {
		t.Fatalf("POST upload: %d %s", code, raw)
	}
	got = waitJob(t, hs.URL, m["id"].(string))
	if got["status"] != "done" || !strings.Contains(got["stdout"].(string), "sieve(1000000) = 78498") {
		t.Fatalf("upload job: %v", got)
	}
	// A trapping guest fails with its kind.
	code, m, _ = do(t, "POST", hs.URL+"/jobs?export=boom", trapWasm)
	if code != http.StatusBadRequest || !strings.Contains(m["error"].(string), "WASI command") {
		t.Fatalf("POST export of a command: %d %v, want 400", code, m)
	}
	code, m, _ = do(t, "POST", hs.URL+"/jobs?export=boom&allow_command_exports=1", trapWasm)
	if code != http.StatusAccepted {
		t.Fatalf("POST trap: %d", code)
	}
	got = waitJob(t, hs.URL, m["id"].(string))
	if got["status"] != "failed" || got["error_kind"] != "trap" || !strings.Contains(got["error"].(string), "unreachable") {
		t.Fatalf("trap job: %v", got)
	}
	// Cancel a guest that would run forever.
	code, m, _ = do(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=4611686018427387904", nil)
	if code != http.StatusAccepted {
		t.Fatalf("POST forever: %d", code)
	}
	id := m["id"].(string)
	waitRunning(t, hs.URL, id)
	if code, _, raw := do(t, "DELETE", hs.URL+"/jobs/"+id, nil); code != http.StatusAccepted {
		t.Fatalf("DELETE: %d %s", code, raw)
	}
	got = waitJob(t, hs.URL, id)
	if got["status"] != "cancelled" || got["stats"] == nil {
		t.Fatalf("cancelled job: %v", got)
	}
	// Timeout.
	code, m, _ = do(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=4611686018427387904&timeout=30ms", nil)
	if code != http.StatusAccepted {
		t.Fatalf("POST timeout: %d", code)
	}
	got = waitJob(t, hs.URL, m["id"].(string))
	if got["status"] != "failed" || got["error_kind"] != "timeout" {
		t.Fatalf("timed-out job: %v", got)
	}
	if code, _, _ := do(t, "GET", hs.URL+"/jobs/999", nil); code != http.StatusNotFound {
		t.Errorf("unknown job: %d", code)
	}
	if code, _, raw := do(t, "GET", hs.URL+"/jobs", nil); code != 200 || strings.Count(raw, `"id"`) != 5 {
		t.Errorf("list: %d %s", code, raw)
	}
}

func TestServeRejects(t *testing.T) {
	_, hs := testServer(t, serveConfig{maxBody: 1024})
	for _, tc := range []struct {
		name, url string
		body      []byte
		code      int
		want      string
	}{
		{"oversized", "/jobs", bytes.Repeat([]byte{0}, 2048), http.StatusRequestEntityTooLarge, "larger than the limit of 1024 bytes"},
		{"invalid", "/jobs", []byte("this is not wasm"), http.StatusBadRequest, "invalid module"},
		{"empty", "/jobs", nil, http.StatusBadRequest, "empty body"},
		{"unknown guest", "/jobs?guest=nope", nil, http.StatusBadRequest, "no embedded guest"},
		{"no export", "/jobs?guest=spin&export=nope", nil, http.StatusBadRequest, `module exports no function "nope" (it exports: fib, spin)`},
		{"no args", "/jobs?guest=spin&export=spin", nil, http.StatusBadRequest, "spin takes 1 arguments (i64), got 0"},
		{"too many args", "/jobs?guest=spin&export=spin&args=1,2", nil, http.StatusBadRequest, "spin takes 1 arguments (i64), got 2"},
		{"bad args", "/jobs?guest=spin&export=spin&args=x", nil, http.StatusBadRequest, `"x" is not an i64`},
		{"i32 out of range", "/jobs?guest=spin&export=fib&args=4294967296", nil, http.StatusBadRequest, "is not an i32"},
		{"args to a command", "/jobs?guest=cguest&args=1", nil, http.StatusBadRequest, "args needs export"},
		{"unresolved import", "/jobs", importsWasm, http.StatusBadRequest, "import function env.f: not provided"},
		{"bad fuel", "/jobs?guest=spin&export=spin&fuel=-1", nil, http.StatusBadRequest, "fuel"},
		{"bad timeout", "/jobs?guest=spin&export=spin&timeout=soon", nil, http.StatusBadRequest, "timeout"},
	} {
		code, m, raw := do(t, "POST", hs.URL+tc.url, tc.body)
		if code != tc.code || m == nil || !strings.Contains(fmt.Sprint(m["error"]), tc.want) {
			t.Errorf("%s: %d %s; want %d and %q", tc.name, code, raw, tc.code, tc.want)
		}
	}
}

// TestServeModuleLimit: a new upload is refused with 507 only while
// every kept module (--max-modules) has a job running; embedded guests
// never count. (Which module is released is pinned in package jobs.)
func TestServeModuleLimit(t *testing.T) {
	_, hs := testServer(t, serveConfig{maxModules: 1})
	withSection := func(b []byte, tag byte) []byte { // the same code, another hash
		return append(append([]byte(nil), b...), 0x00, 0x03, 0x01, tag, 0x00)
	}
	a := trapWasm
	waitJob(t, hs.URL, postOK(t, hs.URL+"/jobs?export=boom&allow_command_exports=1", a))
	waitJob(t, hs.URL, postOK(t, hs.URL+"/jobs?export=boom&allow_command_exports=1", withSection(a, 'b'))) // a released
	spinBytes, err := wasmsched.Guest("spin")
	if err != nil {
		t.Fatal(err)
	}
	long := postOK(t, hs.URL+"/jobs?export=spin&args=4611686018427387904", withSection(spinBytes, 'c'))
	waitRunning(t, hs.URL, long)
	// The record says running a moment before the replica holds the
	// job's module (it claims the job, then compiles or finds the
	// module): an upload in that moment still finds room, and is then
	// refused for its call (boom of a command without
	// allow_command_exports), while the job reloads its module from the
	// store. Once the module is held, the upload is refused for room.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, m, raw := do(t, "POST", hs.URL+"/jobs?export=boom", a)
		if code == http.StatusInsufficientStorage && strings.Contains(fmt.Sprint(m["error"]), "job running") {
			break
		}
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(m["error"]), "AllowCommandExports") || time.Now().After(deadline) {
			t.Fatalf("upload while the kept module runs: %d %s", code, raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _, raw := do(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=1", nil); code != http.StatusAccepted {
		t.Fatalf("embedded guest: %d %s", code, raw)
	}
	if code, _, raw := do(t, "DELETE", hs.URL+"/jobs/"+long, nil); code >= 300 {
		t.Fatalf("cancel: %d %s", code, raw)
	}
	waitJob(t, hs.URL, long)
	waitJob(t, hs.URL, postOK(t, hs.URL+"/jobs?export=boom&allow_command_exports=1", a)) // room again
}

func got(t *testing.T, base, id string) map[string]any {
	t.Helper()
	_, m, _ := do(t, "GET", base+"/jobs/"+id, nil)
	return m
}

// waitRunning polls a job until a replica runs it.
func waitRunning(t *testing.T, base, id string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, m, _ := do(t, "GET", base+"/jobs/"+id, nil); m["status"] == "running" {
			return
		}
	}
	t.Fatalf("job %s not running after 30 s", id)
}

// TestServeJobLimit: a job beyond --max-jobs is accepted queued and
// starts when a slot frees.
func TestServeJobLimit(t *testing.T) {
	_, hs := testServer(t, serveConfig{maxJobs: 1})
	first := postOK(t, hs.URL+"/jobs?guest=spin&export=spin&args=4611686018427387904", nil)
	waitRunning(t, hs.URL, first)
	code, m, raw := do(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=1", nil)
	if code != http.StatusAccepted || m["status"] != "queued" {
		t.Fatalf("second job: %d %s", code, raw)
	}
	second := fmt.Sprint(m["id"])
	if _, m, _ := do(t, "GET", hs.URL+"/jobs/"+second, nil); m["status"] != "queued" {
		t.Fatalf("second job while the only slot is taken: %v", m)
	}
	do(t, "DELETE", hs.URL+"/jobs/"+first, nil)
	if got := waitJob(t, hs.URL, second); got["status"] != "done" {
		t.Fatalf("second job after the first ended: %v", got)
	}
}

// TestServeMetrics: /metrics has every wasmsched family and /healthz is up.
func TestServeMetrics(t *testing.T) {
	_, hs := testServer(t, serveConfig{})
	_, m, _ := do(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=100000", nil)
	waitJob(t, hs.URL, m["id"].(string))
	code, _, body := do(t, "GET", hs.URL+"/metrics", nil)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, f := range metrics.Families() {
		if !strings.Contains(body, "# TYPE "+f+" ") {
			t.Errorf("/metrics lacks %s", f)
		}
	}
	for _, re := range []string{`(?m)^wasmsched_jobs_finished_total\{status="done",tenant="default"\} 1$`,
		`(?m)^wasmsched_jobs_submitted_total\{tenant="default"\} 1$`, `(?m)^wasmsched_job_queue_wait_seconds_count\{tenant="default"\} 1$`} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("/metrics lacks %s:\n%s", re, grep(body, "wasmsched_job"))
		}
	}
	if !regexp.MustCompile(`(?m)^wasmsched_guests_finished_total 1$`).MatchString(body) {
		t.Errorf("guests finished not 1:\n%s", grep(body, "wasmsched_guests"))
	}
	if !regexp.MustCompile(`(?m)^wasmsched_worker_polls_total\{worker="1"\} `).MatchString(body) {
		t.Error("no per-worker series for worker 1")
	}
	if code, _, body := do(t, "GET", hs.URL+"/healthz", nil); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// syncBuffer is a bytes.Buffer safe for the command's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeGracefulShutdown runs the command on 127.0.0.1:0, starts a job
// that would run forever and one that finishes, then cancels the context
// (as SIGTERM does): the command hands the endless job back to the queue
// after --shutdown-timeout and exits 0; restarted on the same data
// directory, it finds the job queued again and runs it.
func TestServeGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--workers", "2", "--shutdown-timeout", "200ms", "--data-dir", dir}, nil, &out, &errOut)
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; {
		if m := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s %s", out.String(), errOut.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	code, m, raw := do(t, "POST", base+"/jobs?guest=spin&export=spin&args=4611686018427387904", nil)
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, raw)
	}
	waitRunning(t, base, fmt.Sprint(m["id"]))
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(out.String(), "0 jobs finished during shutdown, 1 handed back to the queue") {
		t.Errorf("shutdown report: %q", out.String())
	}
	s, hs := testServer(t, serveConfig{dataDir: dir})
	waitRunning(t, hs.URL, fmt.Sprint(m["id"]))
	do(t, "DELETE", hs.URL+"/jobs/"+fmt.Sprint(m["id"]), nil)
	if got := waitJob(t, hs.URL, fmt.Sprint(m["id"])); got["status"] != "cancelled" || got["deliveries"] != float64(2) {
		t.Fatalf("handed-back job: %v, want cancelled at its second delivery", got)
	}
	if s.svc.Replica() != got(t, hs.URL, fmt.Sprint(m["id"]))["replica"] {
		t.Fatal("the handed-back job did not run on the restarted replica")
	}
}

func TestServeBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--max-jobs", "0"}, {"--interrupt", "x"}, {"stray"}, {"--addr", "256.0.0.1:bad"},
		{"--addr", "0.0.0.0:0"}, {"--replicas", "6"}, {"--keep-jobs-for", "1s"}, {"--log-format", "xml"}, {"--ack-wait", "1ms"},
		{"--nats", "nats://127.0.0.1:1", "--data-dir", "/tmp"}, {"--nats-creds", "x"}, {"--auth-token-file", "/nonexistent"},
		{"--replica", "a.b"}, {"--max-queued", "0"}, {"--module-store", "1EiB"}} {
		code, _, errOut := invoke(t, append([]string{"serve"}, args...)...)
		if code == 0 || !strings.Contains(errOut, "wasmsched serve") && !strings.Contains(errOut, "flag") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
}
