package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// liveServer serves s on 127.0.0.1 with serve's transport (its
// http.Server settings and connection limit), as cmdServe does.
func liveServer(t *testing.T, cfg serveConfig) (*server, string) {
	t.Helper()
	if cfg.workers == 0 {
		cfg.workers = 2
	}
	if cfg.dataDir == "" && cfg.natsURL == "" {
		cfg.dataDir = t.TempDir()
	}
	s, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := s.httpServer()
	done := make(chan struct{})
	go func() { srv.Serve(newLimitListener(ln, s.cfg.maxConns)); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close()
		<-done
		s.close(ctx)
	})
	return s, ln.Addr().String()
}

// rawRequest opens a connection and writes head (request line and
// headers, without the blank line's end when partial).
func rawConn(t *testing.T, addr, head string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// readStatus reads the response's status line, or "" if the server
// closed the connection without one. The deadline is a watchdog, not a
// measurement.
func readStatus(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("reading the response: %v", err)
	}
	return strings.TrimSpace(line)
}

// TestServeSlowBody: a client that stalls in its body is answered 408
// when --body-timeout passes, and its upload slot and reserved bytes are
// free again.
func TestServeSlowBody(t *testing.T) {
	s, addr := liveServer(t, serveConfig{bodyTimeout: 200 * time.Millisecond, maxUploads: 1})
	c := rawConn(t, addr, "POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n\x00asm")
	if st := readStatus(t, c); !strings.Contains(st, "408") {
		t.Fatalf("stalled body: status %q, want 408", st)
	}
	if n := s.uploadBytes.Load(); n != 0 || len(s.uploads) != 0 {
		t.Fatalf("after the stalled upload: %d bytes reserved, %d slots held", n, len(s.uploads))
	}
	spin, _ := os.ReadFile("../../testdata/spin.wasm")
	if code, _, raw := do(t, "POST", "http://"+addr+"/jobs?export=spin&args=10", spin); code != http.StatusAccepted {
		t.Fatalf("upload after the stalled one: %d %s", code, raw)
	}
}

// TestServeSlowHeaders: a client that never finishes its headers is
// disconnected when --header-timeout passes.
func TestServeSlowHeaders(t *testing.T) {
	_, addr := liveServer(t, serveConfig{headerTimeout: 200 * time.Millisecond})
	c := rawConn(t, addr, "POST /jobs HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	st := readStatus(t, c)
	if st != "" && !strings.Contains(st, "408") {
		t.Fatalf("stalled headers: got %q, want the connection closed (or 408)", st)
	}
}

// TestServeUploadCaps: uploads in flight are capped in number and in the
// bytes they may hold; a refused upload gets 503 with Retry-After.
func TestServeUploadCaps(t *testing.T) {
	s, addr := liveServer(t, serveConfig{maxUploads: 2, maxBody: 1 << 20, uploadMemory: 1<<20 + 1000})
	stall := func(length int) net.Conn {
		return rawConn(t, addr, fmt.Sprintf("POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n\x00", length))
	}
	// Each stalled upload is probed only once the server holds it: a
	// probe sent before the server has read the stalled upload's headers
	// would take the bytes or the slot first, and the stalled one would be
	// the upload refused.
	a := stall(1 << 20) // reserves all but 1000 bytes
	waitFor(t, func() bool { return s.uploadBytes.Load() == 1<<20 })
	base := "http://" + addr
	if code, m, _ := do(t, "POST", base+"/jobs", make([]byte, 2000)); code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(m["error"]), "hold") {
		t.Fatalf("an upload over the bytes left: %d %v, want 503 naming the bytes held", code, m)
	}
	b := stall(500) // fits in the bytes left
	waitFor(t, func() bool { return len(s.uploads) == 2 })
	if code, m, _ := do(t, "POST", base+"/jobs", make([]byte, 10)); code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(m["error"]), "2 uploads are in flight") {
		t.Fatalf("a third upload: %d %v, want 503 naming the uploads in flight", code, m)
	}
	a.Close()
	b.Close()
	spin, _ := os.ReadFile("../../testdata/spin.wasm")
	waitFor(t, func() bool {
		code, _, _ := do(t, "POST", base+"/jobs?export=spin&args=10", spin)
		return code == http.StatusAccepted
	})
}

// waitFor polls cond until it holds (a watchdog, not a timing bound).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	waitUntil(t, "a condition", cond)
}

// TestServeConnectionLimit: with --max-conns 2 held by idle clients, a
// third connection is served only after one of them goes.
func TestServeConnectionLimit(t *testing.T) {
	_, addr := liveServer(t, serveConfig{maxConns: 2, headerTimeout: time.Minute})
	a := rawConn(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	rawConn(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	var released atomic.Bool
	got := make(chan string, 1)
	go func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if !released.Load() {
			line = "served while both slots were held: " + line
		}
		got <- strings.TrimSpace(line)
	}()
	time.Sleep(100 * time.Millisecond) // give a wrong implementation the chance to serve it early
	released.Store(true)
	a.Close()
	if line := <-got; line != "HTTP/1.1 200 OK" {
		t.Fatalf("third connection: %q", line)
	}
}

func postOK(t *testing.T, url string, body []byte) string {
	t.Helper()
	code, m, raw := do(t, "POST", url, body)
	if code != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s", url, code, raw)
	}
	return fmt.Sprint(m["id"])
}

// TestServeDeleteEndsCancelled: a DELETE answered 202 always ends the job
// "cancelled", even when the guest was about to finish; one answered 409
// came after the job's end was recorded.
func TestServeDeleteEndsCancelled(t *testing.T) {
	_, hs := testServer(t, serveConfig{maxJobs: 64})
	accepted, conflicts := 0, 0
	for range 60 {
		id := postOK(t, hs.URL+"/jobs?guest=spin&export=spin&args=2000", nil)
		code, _, raw := do(t, "DELETE", hs.URL+"/jobs/"+id, nil)
		got := waitJob(t, hs.URL, id)
		switch code {
		case http.StatusAccepted:
			accepted++
			if got["status"] != "cancelled" {
				t.Fatalf("DELETE answered 202 but the job ended %v", got)
			}
		case http.StatusConflict:
			conflicts++
			if got["status"] != "done" {
				t.Fatalf("DELETE answered 409 but the job ended %v", got)
			}
		default:
			t.Fatalf("DELETE: %d %s", code, raw)
		}
	}
	t.Logf("%d cancelled, %d finished first", accepted, conflicts)
}

// TestServeJobIDs: IDs are 128 random bits, never repeated.
func TestServeJobIDs(t *testing.T) {
	_, hs := testServer(t, serveConfig{maxJobs: 64})
	seen := map[string]bool{}
	re := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for range 50 {
		id := postOK(t, hs.URL+"/jobs?guest=spin&export=spin&args=1", nil)
		if !re.MatchString(id) || seen[id] {
			t.Fatalf("job ID %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
		waitJob(t, hs.URL, id)
	}
}

// TestServeSleepingJob: a guest asleep in WASI holds no worker and ends
// at once when cancelled or timed out.
func TestServeSleepingJob(t *testing.T) {
	_, hs := testServer(t, serveConfig{workers: 1})
	wasi, err := os.ReadFile("../../wasmtask/testdata/wasi.wasm")
	if err != nil {
		t.Fatal(err)
	}
	forever := fmt.Sprint(int64(1<<63 - 1))
	a := postOK(t, hs.URL+"/jobs?export=sleep&args="+forever, wasi)
	b := postOK(t, hs.URL+"/jobs?export=sleep&args="+forever+"&timeout=100ms", wasi)
	// On the one worker, a CPU job runs to its end meanwhile.
	if got := waitJob(t, hs.URL, postOK(t, hs.URL+"/jobs?guest=spin&export=spin&args=100000", nil)); got["status"] != "done" {
		t.Fatalf("CPU job beside sleepers: %v", got)
	}
	if got := waitJob(t, hs.URL, b); got["status"] != "failed" || got["error_kind"] != "timeout" {
		t.Fatalf("timed-out sleeper: %v", got)
	}
	if code, _, raw := do(t, "DELETE", hs.URL+"/jobs/"+a, nil); code != http.StatusAccepted {
		t.Fatalf("DELETE sleeper: %d %s", code, raw)
	}
	if got := waitJob(t, hs.URL, a); got["status"] != "cancelled" {
		t.Fatalf("cancelled sleeper: %v", got)
	}
}
