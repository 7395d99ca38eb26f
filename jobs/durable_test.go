package jobs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A restart on the same data directory keeps every job, with its ID and
// result; a new submit gets a new ID.
func TestRestartKeepsJobs(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ns, err := StartEmbeddedNATS(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	r := startReplica(t, ns, Config{})
	want := map[string]Job{}
	for _, n := range []string{"10", "20", "30"} {
		j, err := r.Submit(ctx, Request{Guest: "spin", Export: "spin", Args: []string{n}})
		if err != nil {
			t.Fatal(err)
		}
		want[j.ID] = waitStatus(t, r.Service, j.ID, final)
	}
	r.close(0)
	ns.Shutdown()

	ns2, _ := startNATS(t, dir)
	r2 := startReplica(t, ns2, Config{})
	for id, w := range want {
		got, err := r2.Get(ctx, "", id)
		if err != nil {
			t.Fatalf("after restart, job %s: %v", id, err)
		}
		if got.Status != Done || len(got.Result) != 1 || got.Result[0] != w.Result[0] {
			t.Fatalf("after restart, job %s is %+v, was %+v", id, got, w)
		}
	}
	j, err := r2.Submit(ctx, Request{Guest: "spin", Export: "spin", Args: []string{"1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, dup := want[j.ID]; dup {
		t.Fatalf("new job reused ID %s", j.ID)
	}
	waitStatus(t, r2.Service, j.ID, final)
}

// Drain hands running jobs back (queued again, not cancelled); another
// replica runs them to their end.
func TestDrainHandsBack(t *testing.T) {
	ns, _ := startNATS(t, "")
	ctx := context.Background()
	a := startReplica(t, ns, Config{MaxRunning: 2, Replica: "a"})
	var ids []string
	for i := 0; i < 2; i++ {
		j, err := a.Submit(ctx, Request{Guest: "spin", Export: "spin", Args: []string{"300000000"}, Tenant: "t"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	for _, id := range ids {
		waitStatus(t, a.Service, id, func(j Job) bool { return j.Status == Running })
	}
	finished, handedBack := a.close(0)
	if finished != 0 || handedBack != 2 {
		t.Fatalf("drain: %d finished, %d handed back; want 0, 2", finished, handedBack)
	}
	b := startReplica(t, ns, Config{MaxRunning: 2, Replica: "b"})
	for _, id := range ids {
		j := waitStatus(t, b.Service, id, final)
		if j.Status != Done || j.Replica != "b" || j.Deliveries != 2 {
			t.Fatalf("handed-back job ended %+v; want done on b at its second delivery", j)
		}
	}
}

// A job whose replicas keep stopping before it ends is parked: past
// MaxDeliveries it ends failed, with the reason, and is not run again.
func TestRedeliveryBound(t *testing.T) {
	ns, _ := startNATS(t, "")
	ctx := context.Background()
	a := startReplica(t, ns, Config{MaxDeliveries: 1, Replica: "a"})
	j, err := a.Submit(ctx, Request{Guest: "spin", Export: "spin", Args: []string{spinForever}})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, a.Service, j.ID, func(j Job) bool { return j.Status == Running })
	a.close(0) // hands it back: its second delivery is over the bound
	b := startReplica(t, ns, Config{MaxDeliveries: 1, Replica: "b"})
	got := waitStatus(t, b.Service, j.ID, final)
	if got.Status != Failed || got.Kind != "redelivered" || got.Deliveries != 2 || !strings.Contains(got.Error, "delivered 2 times") {
		t.Fatalf("job over its delivery bound ended %+v", got)
	}
}

// Garbage on the queue's subjects (a message that is not a job spec, or
// names another tenant, or an ID of the sender's making) is dropped with
// a log line; the dispatcher goes on and real jobs run.
func TestGarbageMessages(t *testing.T) {
	ns, _ := startNATS(t, "")
	ctx := context.Background()
	r := startReplica(t, ns, Config{})
	if err := r.ensureConsumer(ctx, "x", true); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"", "{", "null", `{"id":"../../etc","tenant":"x"}`, `{"id":"0123456789abcdef0123456789abcdef","tenant":"y"}`,
		strings.Repeat("[", 100000)} {
		if _, err := r.st.js.Publish(ctx, subjectPrefix+"x", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	r.poke()
	j, err := r.Submit(ctx, Request{Tenant: "x", Guest: "spin", Export: "spin", Args: []string{"10"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitStatus(t, r.Service, j.ID, final); got.Status != Done {
		t.Fatalf("job after garbage: %+v", got)
	}
	waitFor(t, func() bool {
		info, err := r.st.stream.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
}

// waitFor polls cond (a liveness guard, not a timing assertion).
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached after 60s")
		}
	}
}

// Drain returns only after the submits it did not refuse have ended, so
// the caller may close the connection (a publish on a closing connection
// leaks a goroutine in nats.go); later submits are refused.
func TestDrainWaitsForSubmits(t *testing.T) {
	ns, _ := startNATS(t, "")
	r := startReplica(t, ns, Config{})
	ctx := context.Background()
	compiling, release := make(chan struct{}), make(chan struct{})
	r.mods.beforeCompile = func() { close(compiling); <-release }
	submitted := make(chan error, 1)
	go func() {
		_, err := r.Submit(ctx, Request{Module: withSection(spinBytes(t), 'd'), Export: "spin", Args: []string{"1"}})
		submitted <- err
	}()
	<-compiling
	drained := make(chan struct{})
	go func() {
		r.Drain(ctx)
		close(drained)
	}()
	waitFor(t, func() bool { return !r.Ready() }) // Drain has begun
	if _, err := r.Submit(ctx, Request{Guest: "spin", Export: "spin", Args: []string{"1"}}); !errors.Is(err, ErrDraining) {
		t.Fatalf("submit during Drain: %v, want ErrDraining", err)
	}
	close(release)
	<-drained
	// Drain has returned: the submit in flight has done all its work,
	// down to its record (the last thing it writes).
	if list, err := r.List(ctx, "", 10); err != nil || len(list) != 1 {
		t.Fatalf("when Drain returned, records: %+v, %v; want the submit's one", list, err)
	}
	if err := <-submitted; err != nil {
		t.Fatalf("the submit in flight when Drain began: %v", err)
	}
}
