package jobs

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// One tenant's backlog does not delay another tenant's single job by more
// than the jobs already running: with one slot, once the single job is
// queued, at most one more bulk job starts before it (the one whose pull
// was under way when it was queued).
func TestTenantFairness(t *testing.T) {
	backlog := 300
	if testing.Short() {
		backlog = 50
	}
	ns, _ := startNATS(t, "")
	ctx := context.Background()
	r := startReplica(t, ns, Config{MaxRunning: 1})
	var bulk []string
	for i := 0; i < backlog; i++ {
		j, err := r.Submit(ctx, Request{Tenant: "bulk", Guest: "spin", Export: "spin", Args: []string{strconv.Itoa(100_000)}})
		if err != nil {
			t.Fatal(err)
		}
		bulk = append(bulk, j.ID)
	}
	single, err := r.Submit(ctx, Request{Tenant: "single", Guest: "spin", Export: "spin", Args: []string{"10"}})
	if err != nil {
		t.Fatal(err)
	}
	queued := time.Now().UTC()
	s := waitStatus(t, r.Service, single.ID, final)
	between, before := 0, 0
	for _, id := range bulk {
		j, err := r.Get(ctx, "", id)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case j.Started == nil || j.Started.After(*s.Started):
		case j.Started.After(queued):
			between++
		default:
			before++
		}
	}
	if between > 1 {
		t.Fatalf("%d bulk jobs started after the single tenant's job was queued and before it started; want at most 1", between)
	}
	if before == backlog {
		t.Fatal("the whole backlog ran before the single job was queued: the test proved nothing")
	}
	t.Logf("bulk jobs started before the single job was queued: %d of %d; after it was queued and before it started: %d", before, backlog, between)
	for _, id := range bulk {
		r.Cancel(ctx, "", id)
	}
}
