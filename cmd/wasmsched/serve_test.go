package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/wasmsched/wasmsched/wasmtask"
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
	if cfg.keepJobs == 0 {
		cfg.keepJobs = 100
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

// waitJob polls a job until it leaves "running".
func waitJob(t *testing.T, base, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		code, m, raw := do(t, "GET", base+"/jobs/"+id, nil)
		if code != 200 {
			t.Fatalf("GET job %s: %d %s", id, code, raw)
		}
		if m["status"] != "running" {
			return m
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("job %s still running after 30 s", id)
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

// TestServeModuleLimit: uploads are kept compiled up to --max-modules; a
// new one releases the least recently used module without running jobs,
// and is refused only while every kept module has a job running. Embedded
// guests never count.
func TestServeModuleLimit(t *testing.T) {
	srv, hs := testServer(t, serveConfig{maxModules: 1})
	withSection := func(b []byte, tag byte) []byte { // the same code, another hash
		return append(append([]byte(nil), b...), 0x00, 0x03, 0x01, tag, 0x00)
	}
	post := func(body []byte, query string) string {
		t.Helper()
		code, m, raw := do(t, "POST", hs.URL+"/jobs?"+query, body)
		if code != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", query, code, raw)
		}
		return fmt.Sprint(m["id"])
	}
	kept := func() *wasmtask.Module {
		srv.modMu.Lock()
		defer srv.modMu.Unlock()
		if len(srv.modules) != 1 {
			t.Fatalf("%d modules kept, want 1", len(srv.modules))
		}
		for _, km := range srv.modules {
			return km.mod
		}
		return nil
	}

	a, b := trapWasm, withSection(trapWasm, 'b')
	waitJob(t, hs.URL, post(a, "export=boom&allow_command_exports=1"))
	modA := kept()
	waitJob(t, hs.URL, post(a, "export=boom&allow_command_exports=1")) // the same module: reused
	if kept() != modA {
		t.Fatal("the same upload was compiled again")
	}
	waitJob(t, hs.URL, post(b, "export=boom&allow_command_exports=1")) // a second one: a is released
	if kept() == modA {
		t.Fatal("the least recently used module was not released")
	}
	if _, err := wasmtask.Spawn(context.Background(), srv.rt, modA, wasmtask.Options{Export: "boom", AllowCommandExports: true}).Wait(context.Background()); !errors.Is(err, wasmtask.ErrInstantiate) {
		t.Fatalf("a guest of the released module: %v, want ErrInstantiate (module closed)", err)
	}

	// A module with a job running cannot be released: another upload is
	// refused until the job ends.
	spinBytes, err := wasmsched.Guest("spin")
	if err != nil {
		t.Fatal(err)
	}
	long := post(withSection(spinBytes, 'c'), "export=spin&args=4611686018427387904")
	code, m, raw := do(t, "POST", hs.URL+"/jobs?export=boom", a)
	if code != http.StatusInsufficientStorage || !strings.Contains(fmt.Sprint(m["error"]), "job running") {
		t.Fatalf("upload while the kept module runs: %d %s", code, raw)
	}
	if code, _, raw := do(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=1", nil); code != http.StatusAccepted {
		t.Fatalf("embedded guest: %d %s", code, raw)
	}
	if code, _, raw := do(t, "DELETE", hs.URL+"/jobs/"+long, nil); code >= 300 {
		t.Fatalf("cancel: %d %s", code, raw)
	}
	waitJob(t, hs.URL, long)
	waitJob(t, hs.URL, post(a, "export=boom&allow_command_exports=1")) // room again
}

func TestServeJobLimit(t *testing.T) {
	_, hs := testServer(t, serveConfig{maxJobs: 1})
	code, m, _ := do(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=4611686018427387904", nil)
	if code != http.StatusAccepted {
		t.Fatalf("first job: %d", code)
	}
	code, m2, raw := do(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=1", nil)
	if code != http.StatusTooManyRequests || !strings.Contains(fmt.Sprint(m2["error"]), "1 jobs running") {
		t.Fatalf("second job: %d %s", code, raw)
	}
	do(t, "DELETE", hs.URL+"/jobs/"+m["id"].(string), nil)
	waitJob(t, hs.URL, m["id"].(string))
	if code, _, raw := do(t, "POST", hs.URL+"/jobs?guest=spin&export=spin&args=1", nil); code != http.StatusAccepted {
		t.Fatalf("after the first finished: %d %s", code, raw)
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
// (as SIGTERM does): the command cancels the endless job after
// --shutdown-timeout and exits 0.
func TestServeGracefulShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--workers", "2", "--shutdown-timeout", "200ms"}, nil, &out, &errOut)
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
	_ = m
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(out.String(), "0 jobs finished during shutdown, 1 cancelled") {
		t.Errorf("shutdown report: %q", out.String())
	}
}

func TestServeBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--max-jobs", "0"}, {"--interrupt", "x"}, {"stray"}, {"--addr", "256.0.0.1:bad"}} {
		code, _, errOut := invoke(t, append([]string{"serve"}, args...)...)
		if code == 0 || !strings.Contains(errOut, "wasmsched serve") && !strings.Contains(errOut, "flag") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
}
