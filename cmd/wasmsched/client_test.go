package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startTestServe runs `wasmsched serve` in-process on a free loopback port
// and returns its base URL; the test's cleanup stops it and waits for it
// to return. Every serve flag of the client tests is here.
func startTestServe(t *testing.T, extra ...string) string {
	t.Helper()
	// --job-timeout: a long job ends only when its test cancels it or
	// sets its own timeout; --shutdown-timeout 0s: a job still running at
	// cleanup is cancelled at once instead of holding the test.
	args := append([]string{"--addr", "127.0.0.1:0", "--workers", "2", "--job-timeout", "10m", "--shutdown-timeout", "0s",
		"--data-dir", t.TempDir()}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr bytes.Buffer // written by serve, read once it returned
	done := make(chan int, 1)
	go func() {
		code := cmdServe(ctx, args, pw, &stderr)
		pw.Close()
		done <- code
	}()
	br := bufio.NewReader(pr)
	base := ""
	for base == "" {
		line, err := br.ReadString('\n')
		if err != nil {
			cancel()
			code := <-done
			t.Fatalf("serve %q exited %d before listening: %s", args, code, stderr.String())
		}
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "wasmsched serve: listening on "); ok {
			base = rest
		}
	}
	drained := make(chan struct{})
	go func() { io.Copy(io.Discard, br); close(drained) }() // serve's later lines must not block it
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
		<-drained
	})
	return base
}

// deadServerURL is the URL of a loopback port that nothing listens on (it was
// listened on and closed).
func deadServerURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// submittedID is the first line of out, which submit keeps for the ID.
func submittedID(t *testing.T, out string) string {
	t.Helper()
	id, _, _ := strings.Cut(out, "\n")
	if _, err := parseJobID(id); err != nil {
		t.Fatalf("first line %q is not a job ID: %v", id, err)
	}
	return id
}

// clientStatusJSON is `wasmsched status --json ID`, decoded.
func clientStatusJSON(t *testing.T, base, id string) map[string]any {
	t.Helper()
	code, out, errOut := invoke(t, "status", "--server", base, "--json", id)
	if code != exitOK {
		t.Fatalf("status --json %s: exit %d: %s", id, code, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("status --json output does not parse: %v\n%s", err, out)
	}
	return m
}

// awaitJobEnd polls a job's status until it is final. It has no deadline
// of its own: the job's end is what the test waits for (go test -timeout
// bounds a hang).
func awaitJobEnd(t *testing.T, base, id string) map[string]any {
	t.Helper()
	for {
		if m := clientStatusJSON(t, base, id); statusIsFinal(fmt.Sprint(m["status"])) {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClientSubmitGuestWaitAndStatus(t *testing.T) {
	base := startTestServe(t)
	code, out, errOut := invoke(t, "submit", "--server", base, "--guest", "spin", "--export", "spin", "--args", "1000", "--wait")
	if code != exitOK {
		t.Fatalf("submit --wait: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	id := submittedID(t, out)
	want := fmt.Sprint(spinRef(1000))
	for _, w := range []string{"id         " + id + "\n", "status     done\n", "guest      spin/spin\n", "result     " + want + "\n", "ran for "} {
		if !strings.Contains(out, w) {
			t.Errorf("submit --wait output lacks %q:\n%s", w, out)
		}
	}
	// status of the finished job, human then JSON.
	code, out, errOut = invoke(t, "status", "--server", base, id)
	if code != exitOK || !strings.HasPrefix(out, "id         "+id+"\nstatus     done\n") || !strings.Contains(out, "result     "+want+"\n") {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
	if m := clientStatusJSON(t, base, id); m["id"] != id || m["status"] != "done" || fmt.Sprint(m["result"]) != "["+want+"]" {
		t.Errorf("status --json: %v", m)
	}
	// Without --wait: the ID alone, and the job runs on.
	code, out, errOut = invoke(t, "submit", "--server", base, "--guest", "spin", "--export", "spin", "--args", "10")
	if code != exitOK || strings.Count(out, "\n") != 1 {
		t.Fatalf("submit: exit %d, stdout %q, stderr %q; want one line", code, out, errOut)
	}
	if m := awaitJobEnd(t, base, submittedID(t, out)); m["status"] != "done" {
		t.Errorf("job without --wait: %v", m)
	}
	// --json --wait prints the ended job's JSON only.
	code, out, _ = invoke(t, "submit", "--server", base, "--guest", "spin", "--export", "spin", "--args", "3", "--wait", "--json")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); code != exitOK || err != nil || m["status"] != "done" {
		t.Errorf("submit --wait --json: exit %d, %v: %s", code, err, out)
	}
}

func TestClientSubmitFile(t *testing.T) {
	base := startTestServe(t)
	// A WASI command uploaded, its stdout shown indented.
	code, out, errOut := invoke(t, "submit", "--server", base, "--wait", "../../testdata/cguest.wasm")
	if code != exitOK || !strings.Contains(out, "status     done\n") || !strings.Contains(out, "stdout:\n    ") ||
		!strings.Contains(out, "    sieve(1000000) = 78498") {
		t.Errorf("submit FILE --wait: exit %d\n%s%s", code, out, errOut)
	}
	// An export of a command that traps: the job fails, exit 1, with its kind.
	trap := writeTemp(t, "trap.wasm", trapWasm)
	code, out, errOut = invoke(t, "submit", "--server", base, "--export", "boom", "--allow-command-exports", "--wait", trap)
	if code != exitFailure || !strings.Contains(out, "status     failed\n") || !strings.Contains(out, "(trap)\n") {
		t.Errorf("submit trapping FILE --wait: exit %d\n%s%s", code, out, errOut)
	}
	// Refused by the server: its code and message on stderr.
	code, out, errOut = invoke(t, "submit", "--server", base, "--export", "boom", trap)
	if code != exitFailure || out != "" || !strings.HasPrefix(errOut, "wasmsched submit: 400 Bad Request: ") || !strings.Contains(errOut, "WASI command") {
		t.Errorf("submit refused: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestClientSubmitTooLarge: an upload over the server's --max-body is
// refused with 413, reported with the server's message.
func TestClientSubmitTooLarge(t *testing.T) {
	base := startTestServe(t, "--max-body", "1024")
	code, out, errOut := invoke(t, "submit", "--server", base, "../../testdata/cguest.wasm")
	if code != exitFailure || out != "" || !strings.HasPrefix(errOut, "wasmsched submit: 413 Request Entity Too Large: ") ||
		!strings.Contains(errOut, "limit of 1024 bytes") {
		t.Errorf("submit over --max-body: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestClientSubmitWaitOutlastsTimeout: --timeout bounds each request, not
// the wait: a job the server keeps for its 500ms job timeout is waited
// for through a client --timeout of 200ms.
func TestClientSubmitWaitOutlastsTimeout(t *testing.T) {
	base := startTestServe(t)
	code, out, errOut := invoke(t, "submit", "--server", base, "--timeout", "200ms", "--job-timeout", "500ms",
		"--guest", "spin", "--export", "spin", "--args", "4611686018427387904", "--wait")
	if code != exitFailure || !strings.Contains(out, "status     failed\n") || !strings.Contains(out, "(timeout)\n") {
		t.Errorf("submit --wait past --timeout: exit %d\n%s%s", code, out, errOut)
	}
}

func TestClientCancel(t *testing.T) {
	base := startTestServe(t)
	code, out, errOut := invoke(t, "submit", "--server", base, "--guest", "spin", "--export", "spin", "--args", "10000000000000")
	if code != exitOK {
		t.Fatalf("submit: exit %d: %s", code, errOut)
	}
	id := submittedID(t, out)
	code, out, errOut = invoke(t, "cancel", "--server", base, id)
	if code != exitOK || !strings.HasPrefix(out, "cancel accepted for job "+id+": ") {
		t.Fatalf("cancel: exit %d\n%s%s", code, out, errOut)
	}
	if m := awaitJobEnd(t, base, id); m["status"] != "cancelled" {
		t.Errorf("cancelled job: %v", m)
	}
	code, out, errOut = invoke(t, "status", "--server", base, id)
	if code != exitOK || !strings.Contains(out, "status     cancelled\n") {
		t.Errorf("status of the cancelled job: exit %d\n%s%s", code, out, errOut)
	}
	// Finished: 409.
	code, _, errOut = invoke(t, "cancel", "--server", base, id)
	if code != exitFailure || !strings.HasPrefix(errOut, "wasmsched cancel: 409 Conflict: ") || !strings.Contains(errOut, "already finished") {
		t.Errorf("cancel of a finished job: exit %d, %q", code, errOut)
	}
	// Unknown: 404, for status and cancel alike.
	for _, cmd := range []string{"status", "cancel"} {
		code, _, errOut = invoke(t, cmd, "--server", base, "0123abc")
		if code != exitFailure || !strings.HasPrefix(errOut, "wasmsched "+cmd+": 404 Not Found: ") || !strings.Contains(errOut, "0123abc") {
			t.Errorf("%s of an unknown job: exit %d, %q", cmd, code, errOut)
		}
	}
}

// lineSignal is a writer that closes first once a whole line was written.
type lineSignal struct {
	mu    sync.Mutex
	b     bytes.Buffer
	first chan struct{}
	once  sync.Once
}

func (w *lineSignal) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if bytes.IndexByte(w.b.Bytes(), '\n') >= 0 {
		w.once.Do(func() { close(w.first) })
	}
	return len(p), nil
}

func (w *lineSignal) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestClientSubmitWaitInterrupted: Ctrl-C stops the wait, not the job.
func TestClientSubmitWaitInterrupted(t *testing.T) {
	base := startTestServe(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &lineSignal{first: make(chan struct{})}
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- cmdSubmit(ctx, []string{"--server", base, "--guest", "spin", "--export", "spin", "--args", "10000000000000", "--wait"}, stdout, &stderr)
	}()
	select {
	case <-stdout.first: // the ID: the job was accepted, the wait began
	case code := <-done:
		t.Fatalf("submit --wait ended before printing the ID: exit %d: %s", code, stderr.String())
	}
	cancel()
	code := <-done
	id := submittedID(t, stdout.String())
	if code != exitFailure || !strings.Contains(stderr.String(), "job "+id+" is still on the server") {
		t.Errorf("interrupted wait: exit %d, stderr %q", code, stderr.String())
	}
	if m := clientStatusJSON(t, base, id); m["status"] != "running" && m["status"] != "queued" {
		t.Errorf("the job after the interrupted wait: %v, want it still running", m)
	}
	if code, _, errOut := invoke(t, "cancel", "--server", base, id); code != exitOK {
		t.Errorf("cancel: exit %d: %s", code, errOut)
	}
}

// usageCase is a command line that must be refused as bad usage (exit 2)
// with a message holding want (naming the flag or argument at fault).
type usageCase struct {
	args []string
	env  string // $WASMSCHED_SERVER
	want string
}

func checkUsageErrors(t *testing.T, cases []usageCase) {
	t.Helper()
	srv := deadServerURL(t) // a usage error must come before any request: exit 2, not 1
	for i, tc := range cases {
		name := strings.Join(tc.args, " ")
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			t.Setenv("WASMSCHED_SERVER", tc.env)
			args := tc.args
			if tc.env == "" && !strings.Contains(name, "--server") {
				args = append([]string{args[0], "--server", srv}, args[1:]...)
			}
			code, out, errOut := invoke(t, args...)
			if code != exitUsage || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("%.200q: exit %d, stdout %q, stderr %q; want exit 2 naming %q", name, code, out, errOut, tc.want)
			}
		})
	}
}

func TestClientSubmitUsageErrors(t *testing.T) {
	dir := t.TempDir()
	mod := writeTemp(t, "m.wasm", trapWasm)
	empty := writeTemp(t, "empty.wasm", nil)
	huge := filepath.Join(dir, "huge.wasm")
	if f, err := os.Create(huge); err != nil {
		t.Fatal(err)
	} else if err := f.Truncate(maxModuleFile + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	} else {
		f.Close()
	}
	emptyTok := writeTemp(t, "empty.tok", []byte(" \n"))
	spaceTok := writeTemp(t, "space.tok", []byte("a b\n"))
	guest := func(args ...string) []string { return append([]string{"submit", "--guest", "spin"}, args...) }
	checkUsageErrors(t, []usageCase{
		{args: guest("--bogus"), want: "-bogus"},
		{args: []string{"submit"}, want: "missing FILE.wasm or --guest"},
		{args: []string{"submit", filepath.Join(dir, "nope.wasm")}, want: "FILE: open"},
		{args: []string{"submit", dir}, want: "FILE: " + dir + " is not a regular file"},
		{args: []string{"submit", empty}, want: "FILE: " + empty + " is empty"},
		{args: []string{"submit", huge}, want: "over the limit of 1 GiB"},
		{args: []string{"submit", mod, "--guest", "spin"}, want: "both FILE"},
		{args: []string{"submit", mod, mod}, want: "unexpected argument"},
		{args: []string{"submit", "--guest", ""}, want: "--guest"},
		{args: []string{"submit", "--guest", "../spin"}, want: "--guest"},
		{args: guest("--fuel", "-1"), want: "--fuel"},
		{args: guest("--fuel", "0"), want: "--fuel"},
		{args: guest("--fuel", "1e99"), want: "--fuel"},
		{args: guest("--fuel", "99999999999999999999"), want: "--fuel"},
		{args: guest("--fuel", "lots"), want: "--fuel"},
		{args: guest("--job-timeout", "-1s"), want: "--job-timeout"},
		{args: guest("--job-timeout", "0s"), want: "--job-timeout"},
		{args: guest("--job-timeout", "1e99s"), want: "-job-timeout"},
		{args: guest("--timeout", "0s"), want: "--timeout"},
		{args: guest("--timeout", "soon"), want: "-timeout"},
		{args: guest("--args", "1"), want: "--args: needs --export"},
		{args: guest("--export", "spin", "--args", ""), want: "--args"},
		{args: guest("--export", "spin", "--args", "1,,2"), want: "--args"},
		{args: guest("--export", "spin", "--args", "1\x1b"), want: "--args"},
		{args: guest("--export", ""), want: "--export"},
		{args: guest("--export", "a\x1bb"), want: "--export"},
		{args: guest("--export", "spin", "--", "x"), want: "argv after --"},
		{args: guest("--", "a\x00b"), want: "argv[1]"},
		{args: guest("--", strings.Repeat("a", maxSubmitQuery)), want: "over the limit of 32 KiB"},
		{args: guest("--tenant", "a b"), want: "--tenant"},
		{args: guest("--tenant", ""), want: "--tenant"},
		{args: guest("--tenant", strings.Repeat("a", 65)), want: "--tenant"},
		{args: guest("--token-file", filepath.Join(dir, "nope.tok")), want: "--token-file"},
		{args: guest("--token-file", emptyTok), want: "--token-file"},
		{args: guest("--token-file", spaceTok), want: "--token-file"},
	})
}

func TestClientStatusUsageErrors(t *testing.T) {
	checkUsageErrors(t, []usageCase{
		{args: []string{"status", "--server", "ftp://h", "x"}, want: "--server"},
		{args: []string{"status", "--server", "http://", "x"}, want: "--server"},
		{args: []string{"status", "--server", "h:80", "x"}, want: "--server"},
		{args: []string{"status", "--server", "http://h:99999", "x"}, want: "--server"},
		{args: []string{"status", "--server", "http://h/?q=1", "x"}, want: "--server"},
		{args: []string{"status", "--server", "http://u:p@h", "x"}, want: "--server"},
		{args: []string{"status", "--server", "http://h\x7f", "x"}, want: "--server"},
		{args: []string{"status", "x"}, env: "ftp://h", want: "$WASMSCHED_SERVER"},
		{args: []string{"status"}, want: "missing the job ID"},
		{args: []string{"status", "a/b"}, want: "job ID"},
		{args: []string{"status", "a?b"}, want: "job ID"},
		{args: []string{"status", ".."}, want: "job ID"},
		{args: []string{"status", strings.Repeat("a", maxJobIDLen+1)}, want: "longer than 128"},
		{args: []string{"status", "a", "b"}, want: "unexpected argument"},
		{args: []string{"status", "--json=maybe", "a"}, want: "-json"},
		{args: []string{"cancel", "x/../y"}, want: "job ID"},
		{args: []string{"cancel", "%2e%2e"}, want: "job ID"},
		{args: []string{"cancel", "--timeout", "-1s", "x"}, want: "--timeout"},
	})
}

func TestClientUnreachable(t *testing.T) {
	srv := deadServerURL(t)
	for _, args := range [][]string{{"status", "x"}, {"cancel", "x"}, {"submit", "--guest", "spin", "--wait"}} {
		code, out, errOut := invoke(t, append([]string{args[0], "--server", srv}, args[1:]...)...)
		want := "wasmsched " + args[0] + ": cannot reach the server at " + srv + ": "
		if code != exitFailure || out != "" || !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, "refused") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and %q", args[0], code, out, errOut, want)
		}
	}
}

// hungServer is a server that accepts requests and never answers them
// until the test ends: a stand-in for a peer hung on the network.
func hungServer(t *testing.T) string {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before Close, which waits for the handlers
	return srv.URL
}

func TestClientTimeout(t *testing.T) {
	srv := hungServer(t)
	for _, args := range [][]string{{"status", "x"}, {"submit", "--guest", "spin", "--wait"}} {
		code, _, errOut := invoke(t, append([]string{args[0], "--server", srv, "--timeout", "200ms"}, args[1:]...)...)
		want := "wasmsched " + args[0] + ": no answer from " + srv + " within --timeout 200ms\n"
		if code != exitFailure || errOut != want {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 and %q", args[0], code, errOut, want)
		}
	}
}

// TestClientAnswerCap: an answer of 100 MiB, announced or not, is read up
// to the client's cap and refused; the server sees its writes fail long
// before it has written it all.
func TestClientAnswerCap(t *testing.T) {
	const size = 100 << 20
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/sized") {
			w.Header().Set("Content-Length", fmt.Sprint(size))
		}
		chunk := bytes.Repeat([]byte("a"), 1<<20)
		io.WriteString(w, `{"id":"`)
		for n := 0; n < size/len(chunk); n++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			written.Add(int64(len(chunk)))
		}
	}))
	for _, id := range []string{"sized", "chunked"} {
		written.Store(0)
		code, out, errOut := invoke(t, "status", "--server", srv.URL, id)
		if code != exitFailure || out != "" || !strings.Contains(errOut, "over the client's limit of 8 MiB") {
			t.Errorf("%s: exit %d, stdout %.100q, stderr %.200q", id, code, out, errOut)
		}
		srv.CloseClientConnections()
	}
	srv.Close() // waits for the handlers
	if n := written.Load(); n >= size {
		t.Errorf("the server wrote its whole answer (%d bytes): the client read it all", n)
	}
}

// TestClientHeaders: the token and the tenant reach the server, each only
// when given; --server wins over $WASMSCHED_SERVER, which wins over the
// default. The server records what it got: serve does not check tokens.
func TestClientHeaders(t *testing.T) {
	type seen struct{ auth, tenant, path string }
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.Header.Get("Authorization"), strings.Join(r.Header.Values("X-Wasmsched-Tenant"), ","), r.URL.Path})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id": "j1", "status": "done"}`)
	}))
	defer srv.Close()
	tok := writeTemp(t, "tok", []byte("\n  s3cr3t.T0k-en \n"))
	t.Setenv("WASMSCHED_TOKEN", "")
	t.Setenv("WASMSCHED_SERVER", deadServerURL(t))
	for _, tc := range []struct {
		args []string
		env  string // $WASMSCHED_TOKEN
		want seen
	}{
		{[]string{"status", "--server", srv.URL, "j1"}, "", seen{"", "", "/jobs/j1"}},
		{[]string{"status", "--server", srv.URL + "/prefix/", "--token-file", tok, "--tenant", "acme", "j1"}, "other", seen{"Bearer s3cr3t.T0k-en", "acme", "/prefix/jobs/j1"}},
		{[]string{"cancel", "--server", srv.URL, "j1"}, "envtok", seen{"Bearer envtok", "", "/jobs/j1"}},
	} {
		t.Setenv("WASMSCHED_TOKEN", tc.env)
		mu.Lock()
		got = nil
		mu.Unlock()
		if code, _, errOut := invoke(t, tc.args...); code != exitOK {
			t.Fatalf("%q: exit %d: %s", tc.args, code, errOut)
		}
		mu.Lock()
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%q: the server got %+v, want %+v", tc.args, got, tc.want)
		}
		mu.Unlock()
	}
	t.Setenv("WASMSCHED_SERVER", srv.URL)
	if code, _, errOut := invoke(t, "status", "j1"); code != exitOK {
		t.Errorf("status with $WASMSCHED_SERVER: exit %d: %s", code, errOut)
	}
}

// TestClientHostileAnswers: what a server answers is checked before it is
// used (its job ID goes into the next URL) and escaped before it is
// printed; --json passes fields the client does not know through.
func TestClientHostileAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"id": "../metrics", "status": "running"}`)
			return
		}
		io.WriteString(w, `{"id": "j1", "status": "failed\u001b[2J", "error": "boom\u009b31m", "error_kind": "trap",
			"result": [1, "2", {"x": 3}], "seconds": "soon", "stdout": "a\u001b]0;pwned\u0007\nb\n", "future": {"k": [1, 2]}}`)
	}))
	defer srv.Close()
	code, out, errOut := invoke(t, "submit", "--server", srv.URL, "--guest", "spin", "--wait")
	if code != exitFailure || out != "" || !strings.Contains(errOut, "invalid job ID") {
		t.Errorf("submit given a bad ID: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = invoke(t, "status", "--server", srv.URL, "j1")
	if code != exitOK || strings.ContainsAny(out, "\x1b\x07\u009b") {
		t.Errorf("status: exit %d, control characters printed raw: %q %s", code, out, errOut)
	}
	for _, w := range []string{`status     failed\x1b[2J`, `error      boom\u009b31m (trap)`, `result     1, 2, {"x": 3}`, "stdout:\n    a\\x1b]0;pwned\\a\n    b\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("status output lacks %q:\n%s", w, out)
		}
	}
	code, out, _ = invoke(t, "status", "--server", srv.URL, "--json", "j1")
	if code != exitOK || !strings.Contains(out, `"future": {`) || !strings.Contains(out, `"k": [`) {
		t.Errorf("status --json dropped or did not indent a field: exit %d\n%s", code, out)
	}
}

func FuzzClientJobID(f *testing.F) {
	for _, s := range []string{"", "0123abcdef", "..", ".", "a/b", "a?b", "a#b", "%2e", "a b", "a\x00", "é", strings.Repeat("a", 128), strings.Repeat("a", 129), "A-Z_0.9~"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseJobID(s)
		if err != nil {
			return
		}
		// An accepted ID is one path segment that means the same escaped
		// or not: it cannot reach another endpoint.
		if id != s || id == "" || len(id) > maxJobIDLen || id == "." || id == ".." || strings.ContainsAny(id, "/?#%") {
			t.Fatalf("parseJobID(%q) accepted %q", s, id)
		}
		if e := (&url.URL{Path: "/jobs/" + id}).EscapedPath(); e != "/jobs/"+id {
			t.Fatalf("ID %q is escaped in a path: %q", id, e)
		}
	})
}

// FuzzClientJobAnswer: any answer is decoded and printed without a panic
// and without a raw control character other than newline and tab.
func FuzzClientJobAnswer(f *testing.F) {
	for _, s := range []string{`{}`, `null`, `[]`, `{"id": 1}`, `{"status": "done", "result": ["1"], "seconds": 1e308}`,
		`{"status": "running", "seconds": -1, "started": "2000-01-01T00:00:00Z", "submitted": "2000-01-01T00:00:01Z"}`,
		`{"stdout": "\u001b[2J\r\n", "error": "\ud800", "deliveries": 1e99, "finished": "x"}`, "{\"guest\": \"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := decodeClientJob(b)
		if err != nil {
			return
		}
		var out bytes.Buffer
		printClientJob(&out, j)
		for _, r := range out.String() {
			if r != '\n' && r != '\t' && (r < 0x20 || r == 0x7f || 0x80 <= r && r < 0xa0) {
				t.Fatalf("raw control character %U printed for %q:\n%q", r, b, out.String())
			}
		}
	})
}

// TestClientStatusBlock pins status's human block for a job with every
// field, and for a queued and a running one.
func TestClientStatusBlock(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"id": "j1", "tenant": "acme", "guest": "upload", "export": "f", "status": "failed", "error": "boom",
		   "error_kind": "trap", "result": [], "stdout": "out 1\nout 2\n", "stderr": "err\tx", "stats": {"FuelUsed": 1},
		   "submitted": "2030-01-02T03:04:05Z", "started": "2030-01-02T03:04:05.25Z", "finished": "2030-01-02T03:04:07.5Z",
		   "seconds": 2.25, "deliveries": 2, "replica": "r1"}`,
			"id         j1\nstatus     failed\ntenant     acme\nguest      upload/f\nerror      boom (trap)\n" +
				"timing     queued for 250ms, ran for 2.25s\nreplica    r1\ndeliveries 2\n" +
				"stdout:\n    out 1\n    out 2\nstderr:\n    err\tx\n"},
		{`{"id": "j2", "status": "queued", "guest": "spin", "submitted": "2030-01-02T03:04:05Z"}`,
			"id         j2\nstatus     queued\nguest      spin\ntiming     queued since 2030-01-02T03:04:05Z\n"},
		{`{"id": "j3", "status": "running", "guest": "spin", "started": "2030-01-02T03:04:05Z", "seconds": 0}`,
			"id         j3\nstatus     running\nguest      spin\ntiming     running since 2030-01-02T03:04:05Z\n"},
		{`{"id": "j4", "status": "running", "seconds": 0.0123456}`,
			"id         j4\nstatus     running\ntiming     running for 12.346ms\n"},
	} {
		j, err := decodeClientJob([]byte(tc.json))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		printClientJob(&out, j)
		if out.String() != tc.want {
			t.Errorf("block of %s:\n%s\nwant:\n%s", tc.json, out.String(), tc.want)
		}
	}
}

// Against a serve with --auth-token-file: without a token the client
// reports the 401; with --token-file (or WASMSCHED_TOKEN) it submits, and
// the job belongs to the token's tenant.
func TestClientAuthAgainstServe(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("carol cccccccccccccccccccc\n"), 0o600)
	mine := filepath.Join(dir, "mine")
	os.WriteFile(mine, []byte("cccccccccccccccccccc\n"), 0o600)
	base := startTestServe(t, "--auth-token-file", tokens)
	code, _, errOut := invoke(t, "submit", "--server", base, "--guest", "spin", "--export", "spin", "--args", "1")
	if code != exitFailure || !strings.Contains(errOut, "401") {
		t.Fatalf("submit without a token: exit %d, %q; want 1 and the 401", code, errOut)
	}
	code, out, errOut := invoke(t, "submit", "--server", base, "--token-file", mine, "--json", "--guest", "spin", "--export", "spin", "--args", "1", "--wait")
	if code != exitOK || !strings.Contains(out, `"tenant": "carol"`) {
		t.Fatalf("submit with the token: exit %d\n%s\n%s", code, out, errOut)
	}
}
