package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wasmsched/wasmsched"
	"github.com/wasmsched/wasmsched/jobs"
)

// buildServe builds ./cmd/wasmsched once per test binary run, into
// builtServeDir (removed by TestMain).
var buildServe = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "wasmsched-bin-")
	if err != nil {
		return "", err
	}
	builtServeDir.Store(&dir)
	bin := filepath.Join(dir, "wasmsched")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

var builtServeDir atomic.Pointer[string]

func removeBuiltServe() {
	if d := builtServeDir.Load(); d != nil {
		os.RemoveAll(*d)
	}
}

// multiProcess skips under -short; else it builds the binary and starts
// a NATS server listening on 127.0.0.1 in this process, returning the
// binary and the server's URL.
func multiProcess(t *testing.T) (bin, natsURL string) {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process: builds the binary and starts serve processes")
	}
	bin, err := buildServe()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := jobs.StartEmbeddedNATS(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return bin, ns.ClientURL()
}

// replicaProc is a serve replica running as a child process.
type replicaProc struct {
	name string
	cmd  *exec.Cmd
	base string
	out  *syncBuffer // stdout and stderr
	done chan struct{}
	code int
}

// startReplicaProc starts `wasmsched serve` as a child connected to natsURL;
// it is killed and reaped at the end of the test whatever happens.
func startReplicaProc(t *testing.T, bin, natsURL, name string, extra ...string) *replicaProc {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--nats", natsURL, "--replica", name,
		"--workers", "1", "--max-jobs", "4", "--ack-wait", "2s", "--job-timeout", "10m", "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &replicaProc{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait() // the exit code says how it ended
		p.code = cmd.ProcessState.ExitCode()
		pw.Close()
		close(p.done)
	}()
	listening := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`listening on (http://\S+)`)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.out.Write([]byte(sc.Text() + "\n"))
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				listening <- m[1]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	select {
	case p.base = <-listening:
	case <-p.done:
		t.Fatalf("replica %s exited %d before listening:\n%s", name, p.code, p.out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("replica %s not listening after 60s:\n%s", name, p.out.String())
	}
	return p
}

func (p *replicaProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit (a liveness guard, not a measure).
func (p *replicaProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(60 * time.Second):
		t.Fatalf("replica %s did not exit:\n%s", p.name, p.out.String())
		return -1
	}
}

// finalWrites counts, per job, the writes of a final state to the jobs
// bucket, from a watch started before the first submit.
type finalWrites struct {
	mu     sync.Mutex
	finals map[string]int
	status map[string]jobs.Status
}

func watchFinals(t *testing.T, natsURL string) *finalWrites {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "wasmsched_jobs")
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.WatchAll(context.Background(), jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop() })
	fw := &finalWrites{finals: map[string]int{}, status: map[string]jobs.Status{}}
	go func() {
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var j jobs.Job
			if json.Unmarshal(e.Value(), &j) != nil {
				continue
			}
			fw.mu.Lock()
			if j.Status.Final() {
				fw.finals[e.Key()]++
			}
			fw.status[e.Key()] = j.Status
			fw.mu.Unlock()
		}
	}()
	return fw
}

// TestReplicasKillAndRestart: three serve processes share one NATS. 500
// jobs of mixed length are submitted through all three; one replica is
// killed with SIGKILL while it runs jobs and restarted, another gets
// SIGTERM mid-run. Every job ends exactly once in a final state (its final
// state written once), no job is lost, IDs are unique, and a cancel sent
// to a replica that does not run the job stops it.
func TestReplicasKillAndRestart(t *testing.T) {
	bin, url := multiProcess(t)
	reps := []*replicaProc{
		startReplicaProc(t, bin, url, "r0"),
		startReplicaProc(t, bin, url, "r1"),
		startReplicaProc(t, bin, url, "r2", "--shutdown-timeout", "100ms"),
	}
	fw := watchFinals(t, url)
	upload := withTag(mustGuest(t, "spin"), 'm') // an upload: fetched from the object store by whichever replica runs it

	const n = 500
	ids := make([]string, 0, n)
	seen := map[string]bool{}
	submit := func(i int) {
		rep := reps[i%len(reps)]
		if rep.exited() { // killed, not yet restarted
			rep = reps[0]
		}
		// Mixed lengths: spin(N) runs ~1 ns per iteration here.
		arg := []string{"100000", "5000000", "100000", "20000000", "100000", "300000000"}[i%6]
		var id string
		if i%10 == 0 {
			id = postOK(t, rep.base+"/jobs?export=spin&args="+arg, upload)
		} else {
			id = postOK(t, rep.base+"/jobs?guest=spin&export=spin&args="+arg, nil)
		}
		if seen[id] {
			t.Fatalf("job ID %s given twice", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	for i := 0; i < n/2; i++ {
		submit(i)
	}
	// SIGKILL r1 once it runs jobs; restart it under the same name.
	waitUntil(t, "r1 running jobs", func() bool { return runningOn(t, reps[0].base, ids, "r1") > 0 })
	reps[1].cmd.Process.Signal(syscall.SIGKILL)
	reps[1].wait(t)
	for i := n / 2; i < 3*n/4; i++ {
		submit(i)
	}
	reps[1] = startReplicaProc(t, bin, url, "r1")
	// SIGTERM r2 while it runs jobs: they are handed back, not cancelled.
	waitUntil(t, "r2 running jobs", func() bool { return runningOn(t, reps[0].base, ids, "r2") > 0 })
	reps[2].cmd.Process.Signal(syscall.SIGTERM)
	if code := reps[2].wait(t); code != 0 {
		t.Fatalf("r2 exit %d after SIGTERM:\n%s", code, reps[2].out.String())
	}
	r2out := reps[2].out.String()
	reps = reps[:2]
	for i := 3 * n / 4; i < n; i++ {
		submit(i)
	}
	// A cancel sent to the replica that does not run the job stops it.
	forever := postOK(t, reps[0].base+"/jobs?guest=spin&export=spin&args=4611686018427387904", nil)
	var runner string
	waitUntil(t, "the endless job to run", func() bool {
		runner = fmt.Sprint(got(t, reps[0].base, forever)["replica"])
		return got(t, reps[0].base, forever)["status"] == "running"
	})
	other := reps[0]
	if runner == "r0" {
		other = reps[1]
	}
	if code, _, raw := do(t, "DELETE", other.base+"/jobs/"+forever, nil); code != http.StatusAccepted {
		t.Fatalf("DELETE on %s of a job on %s: %d %s", other.name, runner, code, raw)
	}
	ids = append(ids, forever)

	// Every job ends, each with exactly one final write.
	statuses := map[string]int{}
	redelivered := 0
	for _, id := range ids {
		j := waitJobLong(t, reps[0].base, id)
		statuses[fmt.Sprint(j["status"])]++
		if d, _ := j["deliveries"].(float64); d > 1 {
			redelivered++
		}
	}
	if j := got(t, reps[0].base, forever); j["status"] != "cancelled" {
		t.Fatalf("the endless job cancelled through %s: %v", other.name, j)
	}
	if statuses["done"] != n {
		t.Errorf("statuses %v: want all %d mixed jobs done", statuses, n)
	}
	waitUntil(t, "the watch to see every final write", func() bool {
		fw.mu.Lock()
		defer fw.mu.Unlock()
		return len(fw.finals) >= len(ids)
	})
	time.Sleep(500 * time.Millisecond) // a late duplicate would land now
	fw.mu.Lock()
	for _, id := range ids {
		if fw.finals[id] != 1 {
			t.Errorf("job %s: %d final writes, want 1", id, fw.finals[id])
		}
	}
	if len(fw.finals) != len(ids) {
		t.Errorf("%d jobs had final writes, %d were submitted", len(fw.finals), len(ids))
	}
	fw.mu.Unlock()
	if redelivered == 0 {
		t.Error("no job was redelivered: the kill and the SIGTERM hit no running job, the test proved nothing")
	}
	shutdown := regexp.MustCompile(`stopped \(.*\)`).FindString(r2out)
	if shutdown == "" {
		t.Errorf("r2 did not report its shutdown:\n%s", r2out)
	}
	t.Logf("%d jobs + 1 cancelled: statuses %v, %d redelivered; r2 after SIGTERM: %s", n, statuses, redelivered, shutdown)
}

func mustGuest(t *testing.T, name string) []byte {
	t.Helper()
	b, err := wasmsched.Guest(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withTag appends an empty custom section: the same code, another hash.
func withTag(b []byte, tag byte) []byte {
	return append(append([]byte(nil), b...), 0x00, 0x03, 0x01, tag, 0x00)
}

// runningOn counts the jobs among ids that replica runs now.
func runningOn(t *testing.T, base string, ids []string, replica string) int {
	n := 0
	for _, id := range ids {
		if j := got(t, base, id); j["status"] == "running" && j["replica"] == replica {
			n++
		}
	}
	return n
}

// waitUntil polls cond (a liveness guard of two minutes, not a measure).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up after 2 minutes", what)
		}
	}
}

// waitJobLong polls a job until its status is final (redeliveries wait
// for --ack-wait, so this allows more than waitJob).
func waitJobLong(t *testing.T, base, id string) map[string]any {
	t.Helper()
	var j map[string]any
	waitUntil(t, "job "+id+" to end", func() bool {
		j = got(t, base, id)
		s := fmt.Sprint(j["status"])
		return s == "done" || s == "failed" || s == "cancelled"
	})
	return j
}

// A second SIGTERM during the shutdown exits at once (exit 1), without
// waiting out --shutdown-timeout for a job that would never end.
func TestServeSecondSignalExits(t *testing.T) {
	bin, url := multiProcess(t)
	p := startReplicaProc(t, bin, url, "s0", "--shutdown-timeout", "1h")
	id := postOK(t, p.base+"/jobs?guest=spin&export=spin&args=4611686018427387904", nil)
	waitUntil(t, "the job to run", func() bool { return got(t, p.base, id)["status"] == "running" })
	p.cmd.Process.Signal(syscall.SIGTERM)
	waitUntil(t, "the shutdown to begin", func() bool { return strings.Contains(p.out.String(), "shutting down") })
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != exitFailure || !strings.Contains(p.out.String(), "second signal") {
		t.Fatalf("after a second SIGTERM: exit %d\n%s", code, p.out.String())
	}
}
