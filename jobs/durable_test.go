package jobs

import (
	"context"
	"testing"
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
