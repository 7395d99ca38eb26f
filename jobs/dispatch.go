package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// dispatch pulls jobs while there are free slots, until Drain. A tick
// lists the tenants with messages from the stream itself (catching
// redeliveries and hand-backs nobody announced); between ticks, the
// tenants announced by submits and those whose last fetch found work are
// enough, which spares a round trip per job.
func (s *Service) dispatch() {
	defer close(s.done)
	tick := time.NewTicker(dispatchTick)
	defer tick.Stop()
	full := true
	for {
		s.fill(full)
		select {
		case <-s.stop:
			return
		case <-s.wake:
			full = false
		case <-tick.C:
			full = true
		}
	}
}

// fill takes jobs tenant by tenant in turn, round-robin from the tenant
// after the one served last, until the slots are full or no tenant has a
// job this replica can take. A round gives each tenant an equal share of
// the free slots (at least one), so one tenant's backlog never takes
// slots another tenant's queued job could have.
func (s *Service) fill(full bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for s.freeSlots() > 0 {
		tenants, err := s.tenantsToServe(ctx, full)
		if err != nil {
			s.log.Warn("listing queued tenants", "err", err)
			return
		}
		share := max(1, s.freeSlots()/max(1, len(tenants)))
		took := false
		for _, t := range tenants {
			select {
			case <-s.stop:
				return
			default:
			}
			n := min(share, s.freeSlots(), s.tenantRoom(t))
			if n <= 0 {
				continue
			}
			msgs := s.fetch(ctx, t, n)
			if len(msgs) == 0 {
				s.mu.Lock()
				delete(s.active, t) // nothing to take now: back on the next tick or announcement
				s.mu.Unlock()
			}
			for _, msg := range msgs {
				took = true
				s.start(t, msg)
			}
		}
		if !took {
			return
		}
		full = false
	}
}

// tenantsToServe lists the tenants that may have messages, rotated to
// start after the tenant served last: from the stream (full, or when none
// is known), else the ones known active.
func (s *Service) tenantsToServe(ctx context.Context, full bool) ([]string, error) {
	s.mu.Lock()
	known := len(s.active)
	s.mu.Unlock()
	if full || known == 0 {
		listed, err := s.queuedTenants(ctx)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		for _, t := range listed {
			s.active[t] = true
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tenants := make([]string, 0, len(s.active))
	for t := range s.active {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	i, _ := slices.BinarySearch(tenants, s.lastTen)
	if i < len(tenants) && tenants[i] == s.lastTen {
		i++
	}
	return append(tenants[i:], tenants[:i]...), nil
}

// queuedTenants lists the tenants with messages in the stream (queued or
// held by some replica), and updates the queue-depth gauges.
func (s *Service) queuedTenants(ctx context.Context) ([]string, error) {
	info, err := s.st.stream.Info(ctx, jetstream.WithSubjectFilter(subjectPrefix+">"))
	if err != nil {
		return nil, err
	}
	tenants := make([]string, 0, len(info.State.Subjects))
	depths := make(map[string]uint64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		t := strings.TrimPrefix(subj, subjectPrefix)
		tenants = append(tenants, t)
		depths[t] = n
	}
	s.met.queueDepths(depths)
	return tenants, nil
}

func (s *Service) freeSlots() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.MaxRunning - len(s.runs)
}

// tenantRoom is how many more of t's jobs this replica may run.
func (s *Service) tenantRoom(t string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.MaxRunningPerTenant - s.perTenant[t]
}

// fetch pulls up to n of tenant's messages that are available now (none
// when all are held by replicas, or there are none).
func (s *Service) fetch(ctx context.Context, tenant string, n int) []jetstream.Msg {
	if err := s.ensureConsumer(ctx, tenant, false); err != nil {
		s.log.Warn("consumer", "tenant", tenant, "err", err)
		return nil
	}
	s.mu.Lock()
	c := s.consumers[tenant]
	s.mu.Unlock()
	batch, err := c.FetchNoWait(n)
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.mu.Lock()
			delete(s.consumers, tenant) // deleted by an operator: made again next time
			s.mu.Unlock()
		}
		return nil
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	return msgs
}

// run is a job this replica holds, from its pull to its ack.
type run struct {
	id, tenant string
	msg        jetstream.Msg

	mu         sync.Mutex
	h          *scheduler.JoinHandle[wasmtask.Result] // set once spawned
	why        *stopReason                            // why it was stopped, first reason wins
	ending     bool                                   // its end is being recorded: no stop is taken
	handedBack bool

	out, errOut limitedBuffer
}

// stopReason is why a run was stopped and the status it ends with
// (Queued: handed back).
type stopReason struct {
	why, kind string
	status    Status
}

// stop aborts the run (at the guest's next check, or at once when it is
// suspended) unless it is ending or already stopped. A stop that reports
// true is what the job ends as: the reason and the end are decided under
// one lock.
func (r *run) stop(why stopReason) bool {
	r.mu.Lock()
	if r.ending || r.why != nil {
		r.mu.Unlock()
		return false
	}
	r.why = &why
	h := r.h
	r.mu.Unlock()
	if h != nil {
		h.Abort()
	}
	return true
}

// start takes a slot for msg and runs it on its own goroutine.
func (s *Service) start(tenant string, msg jetstream.Msg) {
	var sp spec
	if err := json.Unmarshal(msg.Data(), &sp); err != nil || !validID(sp.ID) || sp.Tenant != tenant {
		s.log.Error("unreadable job message dropped", "tenant", tenant, "err", err)
		msg.TermWithReason("unreadable job spec")
		return
	}
	// The spec came through NATS, not through Submit: hold it to this
	// replica's budgets whatever it asks.
	if sp.Timeout <= 0 || sp.Timeout > s.cfg.JobTimeout {
		sp.Timeout = s.cfg.JobTimeout
	}
	if s.cfg.JobFuel > 0 && (sp.Fuel <= 0 || sp.Fuel > s.cfg.JobFuel) {
		sp.Fuel = s.cfg.JobFuel
	}
	r := &run{id: sp.ID, tenant: tenant, msg: msg}
	s.mu.Lock()
	if s.runs[sp.ID] != nil {
		// Redelivered while this replica still holds it (in-progress acks
		// late): the run in hand goes on.
		s.mu.Unlock()
		return
	}
	s.runs[sp.ID] = r
	s.perTenant[tenant]++
	s.lastTen = tenant
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.execute(r, &sp)
		s.mu.Lock()
		delete(s.runs, sp.ID)
		s.perTenant[tenant]--
		if s.perTenant[tenant] == 0 {
			delete(s.perTenant, tenant)
		}
		s.mu.Unlock()
		s.poke()
	}()
}

// execute claims the job (record to running), runs it, records its end
// once and acknowledges its message.
func (s *Service) execute(r *run, sp *spec) {
	ctx := context.Background()
	deliveries := 1
	if meta, err := r.msg.Metadata(); err == nil {
		deliveries = int(meta.NumDelivered)
	}
	if deliveries > 1 {
		s.met.redelivered(sp.Tenant)
	}
	j, rev, err := s.claim(ctx, sp, deliveries)
	switch {
	case errors.Is(err, errAlreadyFinal):
		r.msg.DoubleAck(ctx)
		return
	case err != nil:
		s.log.Warn("job not claimed; it is redelivered", "id", sp.ID, "err", err)
		r.msg.NakWithDelay(time.Second)
		return
	}
	if deliveries > s.cfg.MaxDeliveries {
		j.finish(Failed, fmt.Sprintf("delivered %d times (the limit is %d): each replica that took it stopped before it ended", deliveries, s.cfg.MaxDeliveries), "redelivered", time.Now().UTC())
		s.finalize(ctx, r, &j, rev)
		return
	}
	s.met.started(sp.Tenant, j.Started.Sub(sp.Submitted))
	s.log.Info("job started", "id", sp.ID, "tenant", sp.Tenant, "delivery", deliveries)
	res, runErr, ok := s.runGuest(ctx, r, sp)
	if !ok { // the module could not be had; runErr says why
		j.finish(Failed, runErr.Error(), "module", time.Now().UTC())
		s.finalize(ctx, r, &j, rev)
		return
	}
	s.outcome(r, &j, res, runErr)
	s.finalize(ctx, r, &j, rev)
}

var errAlreadyFinal = errors.New("job already has a final state")

// claim moves the job's record to running on this replica, creating it
// from the spec when the submit did not get to. It returns the record and
// the revision of the running write.
func (s *Service) claim(ctx context.Context, sp *spec, deliveries int) (Job, uint64, error) {
	for attempt := 0; attempt < 10; attempt++ {
		j, rev, err := s.record(ctx, sp.ID)
		if errors.Is(err, ErrNotFound) {
			v, _ := json.Marshal(sp.queuedRecord())
			if _, err := s.st.kv.Create(ctx, sp.ID, v); err != nil && !isWrongRevision(err) {
				return Job{}, 0, err
			}
			continue
		}
		if err != nil {
			return Job{}, 0, err
		}
		if j.Status.Final() {
			return j, rev, errAlreadyFinal
		}
		now := time.Now().UTC()
		j.Status, j.Started, j.Replica, j.Deliveries = Running, &now, s.cfg.Replica, deliveries
		v, _ := json.Marshal(j)
		nrev, err := s.st.kv.Update(ctx, sp.ID, v, rev)
		if err == nil {
			return j, nrev, nil
		}
		if !isWrongRevision(err) {
			return Job{}, 0, err
		}
	}
	return Job{}, 0, errors.New("record kept changing")
}

// runGuest compiles (or finds) the module and runs the guest to its end,
// enforcing the timeout and keeping the message alive meanwhile. ok is
// false when the module could not be had (err says why).
func (s *Service) runGuest(ctx context.Context, r *run, sp *spec) (res wasmtask.Result, err error, ok bool) {
	var mod *wasmtask.Module
	var km *keptModule
	if sp.Module == "" {
		mod, err = s.mods.guest(ctx, sp.Guest)
	} else {
		km, err = s.mods.hold(ctx, sp.Module, func(ctx context.Context) ([]byte, error) {
			return s.st.objs.GetBytes(ctx, sp.Module)
		})
		if km != nil {
			defer s.mods.release(km)
			mod = km.mod
		}
	}
	if err != nil {
		return res, fmt.Errorf("module %s unavailable: %w", sp.Module, err), false
	}
	opts := s.options(sp)
	opts.Stdout, opts.Stderr = &r.out, &r.errOut
	r.mu.Lock()
	if r.why == nil {
		r.h = wasmtask.Spawn(context.Background(), s.cfg.Runtime, mod, opts)
	}
	h := r.h
	r.mu.Unlock()
	if h == nil { // stopped before it started: a cancelled guest that never ran
		return res, &wasmtask.Error{Kind: scheduler.ErrAborted, Cause: errors.New("stopped before it started"), Guest: opts.Name}, true
	}
	// Wait in steps: the message is kept alive between them, and the
	// timeout is enforced at the first step past it.
	every := max(s.cfg.AckWait/3, 10*time.Millisecond)
	deadline := time.Now().Add(sp.Timeout)
	for !h.IsFinished() {
		step := every
		if left := time.Until(deadline); left > 0 && left < step {
			step = left
		}
		wctx, cancel := context.WithTimeout(context.Background(), step)
		h.Wait(wctx)
		cancel()
		if h.IsFinished() {
			break
		}
		r.msg.InProgress()
		if !time.Now().Before(deadline) {
			r.stop(stopReason{why: "job timed out after " + sp.Timeout.String(), status: Failed, kind: "timeout"})
		}
	}
	res, err = h.Wait(context.Background())
	return res, err, true
}

// outcome sets j's final state from the run: a stop's reason wins over
// what the guest did meanwhile.
func (s *Service) outcome(r *run, j *Job, res wasmtask.Result, err error) {
	now := time.Now().UTC()
	r.mu.Lock()
	r.ending = true
	why := r.why
	r.mu.Unlock()
	var ge *wasmtask.Error
	if errors.As(err, &ge) {
		st := ge.Stats
		j.Stats = &st
	} else if err == nil {
		st := res.Stats
		j.Stats = &st
	}
	j.Stdout, j.Stderr = r.out.String(), r.errOut.String()
	switch {
	case why != nil:
		j.finish(why.status, why.why, why.kind, now)
		if why.status == Queued {
			r.handedBack = true
		}
	case err == nil:
		j.finish(Done, "", "", now)
		for _, v := range res.Values {
			j.Result = append(j.Result, strconv.FormatUint(v, 10))
		}
	default:
		kind, _ := wasmtask.FailureKind(err)
		j.finish(Failed, err.Error(), kind, now)
	}
}

// finalize writes j's end (compare-and-set on the running revision) and
// acknowledges the message; a handed-back job's record returns to queued
// and its message is redelivered at once.
func (s *Service) finalize(ctx context.Context, r *run, j *Job, runningRev uint64) {
	if r.handedBack {
		j.Status, j.Error, j.Kind, j.Finished, j.Started, j.Replica, j.Stdout, j.Stderr, j.Stats, j.Seconds =
			Queued, "", "", nil, nil, "", "", "", nil, 0
	}
	v, _ := json.Marshal(j)
	_, err := s.st.kv.Update(ctx, j.ID, v, runningRev)
	switch {
	case err == nil && r.handedBack:
		r.msg.Nak()
		s.met.handedBack(j.Tenant)
		s.log.Info("job handed back", "id", j.ID, "tenant", j.Tenant)
		return
	case err == nil:
		s.met.finished(j.Tenant, j.Status)
		s.met.ran(j.Tenant, j.Seconds)
		s.log.Info("job "+string(j.Status), "id", j.ID, "tenant", j.Tenant, "seconds", j.Seconds, "error", j.Error, "error_kind", j.Kind)
	case isWrongRevision(err):
		// Another writer moved the record since this run began (a Cancel
		// that found this replica silent, or another replica that took
		// the job over): its state stands, this run's result is dropped.
		s.log.Warn("job's record changed elsewhere while it ran here; this run's end is not recorded", "id", j.ID, "tenant", j.Tenant)
	default:
		// Not recorded and not acknowledged: the job is redelivered and
		// runs again elsewhere.
		s.log.Error("job end not recorded; it will be redelivered", "id", j.ID, "err", err)
		return
	}
	if r.handedBack {
		r.msg.Nak()
		return
	}
	r.msg.DoubleAck(ctx)
}
