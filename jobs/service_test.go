package jobs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// spinForever is an argument for the spin guest that runs far longer than
// any test: such jobs end only by cancel, timeout or shutdown.
const spinForever = "4611686018427387904"

func TestSubmitRunsAndRecords(t *testing.T) {
	ns, _ := startNATS(t, "")
	r := startReplica(t, ns, Config{})
	ctx := context.Background()
	j, err := r.Submit(ctx, Request{Guest: "spin", Export: "spin", Args: []string{"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != Queued || j.Tenant != "default" || !validID(j.ID) {
		t.Fatalf("submit answered %+v", j)
	}
	got := waitStatus(t, r.Service, j.ID, final)
	if got.Status != Done || len(got.Result) != 1 || got.Replica != r.Replica() || got.Deliveries != 1 || got.Stats == nil {
		t.Fatalf("job ended %+v", got)
	}
	list, err := r.List(ctx, "", 10)
	if err != nil || len(list) != 1 || list[0].ID != j.ID {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if _, err := r.Get(ctx, "other", j.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another tenant's get: %v, want ErrNotFound", err)
	}
	if _, err := r.Cancel(ctx, "", j.ID); !errors.Is(err, ErrFinished) {
		t.Fatalf("cancel of a finished job: %v, want ErrFinished", err)
	}
}

func TestSubmitRefusesBadRequests(t *testing.T) {
	ns, _ := startNATS(t, "")
	r := startReplica(t, ns, Config{})
	for _, c := range []struct {
		name string
		req  Request
		want string
	}{
		{"no export", Request{Guest: "spin", Export: "nope"}, `exports no function "nope"`},
		{"arg count", Request{Guest: "spin", Export: "spin"}, "spin takes 1 arguments (i64), got 0"},
		{"arg type", Request{Guest: "spin", Export: "spin", Args: []string{"x"}}, `"x" is not an i64`},
		{"unknown guest", Request{Guest: "nope"}, "nope"},
		{"both", Request{Guest: "spin", Module: []byte{0}}, "not both"},
		{"neither", Request{}, "not both"},
		{"garbage module", Request{Module: []byte("\x00asm garbage")}, "invalid module"},
		{"tenant", Request{Tenant: "a.b", Guest: "spin", Export: "spin", Args: []string{"1"}}, "tenant"},
		{"long tenant", Request{Tenant: strings.Repeat("x", 65), Guest: "spin", Export: "spin", Args: []string{"1"}}, "tenant"},
		{"negative fuel", Request{Guest: "spin", Export: "spin", Args: []string{"1"}, Fuel: -1}, "negative"},
		{"huge argv", Request{Guest: "cguest", Argv: []string{strings.Repeat("a", 300<<10)}}, "bytes (at most"},
	} {
		_, err := r.Submit(context.Background(), c.req)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalid containing %q", c.name, err, c.want)
		}
	}
	if list, _ := r.List(context.Background(), "", 10); len(list) != 0 {
		t.Fatalf("refused submits left records: %+v", list)
	}
	for _, id := range []string{"", "1", "../x", strings.Repeat("a", 33), "wasmsched.>"} {
		if _, err := r.Get(context.Background(), "", id); !errors.Is(err, ErrNotFound) {
			t.Errorf("get %q: %v, want ErrNotFound", id, err)
		}
	}
}

// A job that cannot start waits queued and starts when a slot frees.
func TestQueuedUntilSlotFrees(t *testing.T) {
	ns, _ := startNATS(t, "")
	r := startReplica(t, ns, Config{MaxRunning: 1})
	ctx := context.Background()
	long, err := r.Submit(ctx, Request{Guest: "spin", Export: "spin", Args: []string{spinForever}})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, r.Service, long.ID, func(j Job) bool { return j.Status == Running })
	short, err := r.Submit(ctx, Request{Guest: "spin", Export: "spin", Args: []string{"10"}})
	if err != nil {
		t.Fatal(err)
	}
	// The dispatcher has looked (a submit wakes it) and has no slot: the
	// short job is still queued while the long one runs.
	time.Sleep(3 * dispatchTick)
	if j, _ := r.Get(ctx, "", short.ID); j.Status != Queued {
		t.Fatalf("short job is %s while the only slot is taken, want queued", j.Status)
	}
	if _, err := r.Cancel(ctx, "", long.ID); err != nil {
		t.Fatal(err)
	}
	if j := waitStatus(t, r.Service, long.ID, final); j.Status != Cancelled || j.Error != "cancelled by request" {
		t.Fatalf("long job ended %+v", j)
	}
	if j := waitStatus(t, r.Service, short.ID, final); j.Status != Done {
		t.Fatalf("short job ended %+v", j)
	}
}

func TestCancelQueued(t *testing.T) {
	ns, _ := startNATS(t, "")
	r := startReplica(t, ns, Config{MaxRunning: 1})
	ctx := context.Background()
	long, _ := r.Submit(ctx, Request{Guest: "spin", Export: "spin", Args: []string{spinForever}})
	waitStatus(t, r.Service, long.ID, func(j Job) bool { return j.Status == Running })
	q, err := r.Submit(ctx, Request{Guest: "spin", Export: "spin", Args: []string{"10"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Cancel(ctx, "", q.ID)
	if err != nil || c.Status != Cancelled {
		t.Fatalf("cancel queued: %+v, %v", c, err)
	}
	r.Cancel(ctx, "", long.ID)
	waitStatus(t, r.Service, long.ID, final)
	// The cancelled job's message is pulled and acknowledged unrun.
	deadline := time.Now().Add(60 * time.Second)
	for {
		info, err := r.st.stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages left in the queue", info.State.Msgs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if j, _ := r.Get(ctx, "", q.ID); j.Status != Cancelled || j.Started != nil {
		t.Fatalf("cancelled queued job became %+v", j)
	}
}

// The queue's bounds refuse a submit; nothing queued is dropped.
func TestQueueBound(t *testing.T) {
	ns, _ := startNATS(t, "")
	r := startReplica(t, ns, Config{MaxRunning: 1, MaxQueuedPerTenant: 2, MaxQueued: 3})
	ctx := context.Background()
	spin := func(tenant string) error {
		_, err := r.Submit(ctx, Request{Tenant: tenant, Guest: "spin", Export: "spin", Args: []string{spinForever}})
		return err
	}
	for i := 0; i < 2; i++ {
		if err := spin("a"); err != nil {
			t.Fatal(err)
		}
	}
	if err := spin("a"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third job of tenant a: %v, want ErrQueueFull", err)
	}
	if err := spin("b"); err != nil {
		t.Fatalf("tenant b's first job: %v", err)
	}
	if err := spin("c"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("fourth job in all: %v, want ErrQueueFull", err)
	}
}
