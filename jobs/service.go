package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wasmsched/wasmsched/scheduler"
	"github.com/wasmsched/wasmsched/wasmtask"
)

// Config configures a Service. Runtime and Engine are required; every
// other zero field takes the default written beside it.
type Config struct {
	Runtime *scheduler.Runtime // runs the guests
	Engine  *wasmtask.Engine   // compiles them

	Replica string // this replica's name, unique among live replicas (default: host-pid-random)

	MaxRunning          int   // jobs this replica runs at once (8)
	MaxRunningPerTenant int   // jobs of one tenant this replica runs at once (MaxRunning)
	MaxQueued           int64 // jobs queued or running, all tenants (100,000)
	MaxQueuedPerTenant  int64 // of one tenant (MaxQueued)
	MaxTenants          int   // tenants with a consumer (1,000)
	MaxTenantLabels     int   // distinct tenant labels in this replica's metrics (64)

	JobTimeout  time.Duration      // longest run; a request may only lower it (10s)
	JobFuel     int64              // most fuel per run; a request may only lower it (0: unlimited)
	Interrupt   wasmtask.Interrupt // guest interrupt (epoch)
	KeepJobsFor time.Duration      // records (and queued messages) expire after this (24h)

	MaxModules       int   // uploads kept compiled on this replica (64)
	ModuleStoreBytes int64 // the object store's bound on uploads (1 GiB)

	AckWait       time.Duration // a dead replica's jobs are redelivered after this (30s)
	MaxDeliveries int           // a job delivered more often ends failed (5)
	Replicas      int           // JetStream replication of the stream, bucket and object store (1)

	Logger     *slog.Logger          // one line per job transition (slog.Default())
	Registerer prometheus.Registerer // job metrics (none when nil)
}

func (c Config) withDefaults() Config {
	orInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	orI64 := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	orDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	orInt(&c.MaxRunning, 8)
	orInt(&c.MaxRunningPerTenant, c.MaxRunning)
	orI64(&c.MaxQueued, 100_000)
	orI64(&c.MaxQueuedPerTenant, c.MaxQueued)
	orInt(&c.MaxTenants, 1000)
	orInt(&c.MaxTenantLabels, 64)
	orDur(&c.JobTimeout, 10*time.Second)
	orDur(&c.KeepJobsFor, 24*time.Hour)
	orInt(&c.MaxModules, 64)
	orI64(&c.ModuleStoreBytes, 1<<30)
	orDur(&c.AckWait, 30*time.Second)
	orInt(&c.MaxDeliveries, 5)
	orInt(&c.Replicas, 1)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Replica == "" {
		host, _ := os.Hostname()
		var b [3]byte
		rand.Read(b[:])
		c.Replica = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	c.Replica = replicaSafe.ReplaceAllString(c.Replica, "_")
	return c
}

// A replica's name is a subject token.
var replicaSafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// maxSpecBytes bounds a job's message (its arguments and argv): the
// stream refuses messages over 1 MiB, and a job is not a data transfer.
const maxSpecBytes = 256 << 10

// dispatchTick is how often an idle dispatcher looks for work nobody
// announced: redeliveries after AckWait, and jobs handed back.
const dispatchTick = 250 * time.Millisecond

// Service is one replica of the job service.
type Service struct {
	cfg  Config
	nc   *nats.Conn
	st   *store
	log  *slog.Logger
	met  *jobMetrics
	mods *moduleCache

	mu        sync.Mutex
	runs      map[string]*run // jobs this replica holds, by ID
	perTenant map[string]int  // runs by tenant
	consumers map[string]jetstream.Consumer
	active    map[string]bool // tenants that may have messages (announced, or found with work)
	lastTen   string          // the tenant served last, for round-robin
	draining  bool

	wake chan struct{}  // dispatcher: look for work (capacity 1)
	stop chan struct{}  // dispatcher: stop pulling
	done chan struct{}  // closed when the dispatcher has stopped
	wg   sync.WaitGroup // runs
	// submits in flight: Drain waits for them, so that nothing is
	// published on the connection once Drain has returned (the caller
	// then closes it).
	submits sync.WaitGroup
	subs    []*nats.Subscription
	drain   sync.Once
}

// New sets up JetStream (the stream, bucket and object store, created
// or updated) and starts pulling jobs. nc stays the caller's to close,
// after Drain.
func New(ctx context.Context, nc *nats.Conn, cfg Config) (*Service, error) {
	if cfg.Runtime == nil || cfg.Engine == nil {
		return nil, errors.New("jobs: Config.Runtime and Config.Engine are required")
	}
	cfg = cfg.withDefaults()
	st, err := setup(ctx, nc, &cfg)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	s := &Service{cfg: cfg, nc: nc, st: st, log: cfg.Logger.With("replica", cfg.Replica),
		mods: newModuleCache(cfg.Engine, cfg.MaxModules),
		runs: map[string]*run{}, perTenant: map[string]int{}, consumers: map[string]jetstream.Consumer{},
		active: map[string]bool{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if s.met, err = newJobMetrics(cfg.Registerer, cfg.MaxTenantLabels, s); err != nil {
		return nil, fmt.Errorf("jobs: metrics: %w", err)
	}
	notify, err := nc.Subscribe(queuedSubject, func(m *nats.Msg) {
		if t := string(m.Data); ValidTenant(t) {
			s.mu.Lock()
			s.active[t] = true
			s.mu.Unlock()
		}
		s.poke()
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	cancel, err := nc.Subscribe(cancelSubject+cfg.Replica, s.answerCancel)
	if err != nil {
		notify.Unsubscribe()
		return nil, fmt.Errorf("jobs: %w", err)
	}
	s.subs = []*nats.Subscription{notify, cancel}
	go s.dispatch()
	return s, nil
}

// Replica is this replica's name.
func (s *Service) Replica() string { return s.cfg.Replica }

// Ready reports whether the replica can take work: not draining, and
// connected to NATS.
func (s *Service) Ready() bool {
	s.mu.Lock()
	d := s.draining
	s.mu.Unlock()
	return !d && s.nc.IsConnected()
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Submit validates req (module, export, arguments, budgets), stores the
// module if it is an upload, and queues the job. The job's record is
// returned queued. Errors wrap ErrInvalid, ErrQueueFull, ErrNoRoom,
// ErrDraining or ErrUnavailable.
func (s *Service) Submit(ctx context.Context, req Request) (Job, error) {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return Job{}, ErrDraining
	}
	s.submits.Add(1) // under mu: Drain waits for every submit it did not refuse
	s.mu.Unlock()
	defer s.submits.Done()
	sp, err := s.specOf(ctx, req)
	if err != nil {
		return Job{}, err
	}
	if err := s.ensureConsumer(ctx, sp.Tenant, true); err != nil {
		return Job{}, err
	}
	body, _ := json.Marshal(sp)
	if len(body) > maxSpecBytes {
		return Job{}, fmt.Errorf("%w: the job's arguments take %d bytes (at most %d)", ErrInvalid, len(body), maxSpecBytes)
	}
	if _, err := s.st.js.Publish(ctx, subjectPrefix+sp.Tenant, body, jetstream.WithMsgID(sp.ID)); err != nil {
		if queueFull(err) {
			return Job{}, fmt.Errorf("%w: %v (tenant %s)", ErrQueueFull, err, sp.Tenant)
		}
		return Job{}, fmt.Errorf("%w: queueing: %v", ErrUnavailable, err)
	}
	// Announce first: a dispatcher pulling the job meanwhile creates the
	// record itself if it finds none, and the create below then finds
	// the job already past queued, which is fine. This replica's own
	// dispatcher learns of the tenant before Submit returns; the others
	// as soon as the announcement reaches them (or at their next tick).
	s.mu.Lock()
	s.active[sp.Tenant] = true
	s.mu.Unlock()
	s.poke()
	s.nc.Publish(queuedSubject, []byte(sp.Tenant))
	rec := sp.queuedRecord()
	v, _ := json.Marshal(rec)
	if _, err := s.st.kv.Create(ctx, sp.ID, v); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		s.log.Warn("job record not created at submit; the dispatcher creates it", "id", sp.ID, "err", err)
	}
	s.met.submitted(sp.Tenant)
	s.log.Info("job queued", "id", sp.ID, "tenant", sp.Tenant, "guest", sp.Guest, "export", sp.Export)
	return rec, nil
}

// specOf checks req and turns it into a spec: the module compiles (and is
// stored), the call can start, the budgets are within the service's.
func (s *Service) specOf(ctx context.Context, req Request) (*spec, error) {
	if req.Tenant == "" {
		req.Tenant = "default"
	}
	if !ValidTenant(req.Tenant) {
		return nil, fmt.Errorf("%w: tenant %q: 1 to 64 letters, digits, '-' or '_'", ErrInvalid, req.Tenant)
	}
	if (req.Guest == "") == (req.Module == nil) {
		return nil, fmt.Errorf("%w: give a module or an embedded guest's name, not both", ErrInvalid)
	}
	if req.Fuel < 0 || req.Timeout < 0 {
		return nil, fmt.Errorf("%w: fuel and timeout must not be negative", ErrInvalid)
	}
	now := time.Now().UTC()
	sp := &spec{ID: newID(now), Tenant: req.Tenant, Guest: req.Guest, Export: req.Export, Argv: req.Argv,
		Fuel: s.cfg.JobFuel, Timeout: s.cfg.JobTimeout, AllowCommandExports: req.AllowCommandExports, Submitted: now}
	if req.Fuel > 0 && (sp.Fuel == 0 || req.Fuel < sp.Fuel) {
		sp.Fuel = req.Fuel
	}
	if req.Timeout > 0 {
		sp.Timeout = min(req.Timeout, s.cfg.JobTimeout)
	}
	var mod *wasmtask.Module
	var km *keptModule
	var err error
	if req.Guest != "" {
		mod, err = s.mods.guest(ctx, req.Guest)
	} else {
		sp.Guest, sp.Module = "upload", moduleKey(req.Module)
		if km, err = s.mods.hold(ctx, sp.Module, func(context.Context) ([]byte, error) { return req.Module, nil }); err == nil {
			defer s.mods.release(km)
			mod = km.mod
		}
	}
	switch {
	case errors.Is(err, errModulesBusy):
		return nil, fmt.Errorf("%w: %d uploaded modules are kept (the limit) and each has a job running; try again later", ErrNoRoom, s.cfg.MaxModules)
	case errors.Is(err, wasmtask.ErrInvalidModule):
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	case err != nil:
		return nil, fmt.Errorf("compiling the module: %w", err)
	}
	if err := s.prepareCall(mod, sp, req.Args); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if sp.Module != "" {
		if err := storeModule(ctx, s.st.objs, sp.Module, req.Module); err != nil {
			return nil, err
		}
	}
	return sp, nil
}

// prepareCall types the export's arguments and checks that the call can
// start (export, arguments, minimum memory), so a job that cannot run is
// never queued.
func (s *Service) prepareCall(mod *wasmtask.Module, sp *spec, args []string) error {
	opts := s.options(sp)
	if len(args) > 0 {
		if sp.Export == "" {
			return errors.New("args needs export (WASI commands take argv)")
		}
		params, _, ok := mod.ExportSignature(sp.Export)
		if !ok {
			return mod.CheckCall(opts)
		}
		vals, err := wasmtask.ParseArgs(sp.Export, args, params)
		if err != nil {
			return fmt.Errorf("args: %w", err)
		}
		sp.Args, opts.Args = vals, vals
	} else if sp.Export != "" && len(sp.Argv) > 0 {
		return errors.New("argv is for WASI commands; an export takes args")
	}
	return mod.CheckCall(opts)
}

// options are the wasmtask options of a run of sp (without its output).
func (s *Service) options(sp *spec) wasmtask.Options {
	o := wasmtask.Options{Name: sp.Guest, Export: sp.Export, Args: sp.Args, Interrupt: s.cfg.Interrupt,
		FuelBudget: sp.Fuel, AllowCommandExports: sp.AllowCommandExports, Policy: wasmtask.DeferredYield()}
	if sp.Export == "" {
		o.Argv = append([]string{sp.Guest}, sp.Argv...)
	}
	return o
}

// ensureConsumer makes tenant's pull consumer exist. A new tenant beyond
// MaxTenants is refused when forSubmit (the dispatcher serves tenants that
// already have messages, whatever their number).
func (s *Service) ensureConsumer(ctx context.Context, tenant string, forSubmit bool) error {
	s.mu.Lock()
	_, ok := s.consumers[tenant]
	s.mu.Unlock()
	if ok {
		return nil
	}
	if c, err := s.st.stream.Consumer(ctx, consumerPrefix+tenant); err == nil {
		s.mu.Lock()
		s.consumers[tenant] = c
		s.mu.Unlock()
		return nil
	}
	if forSubmit {
		info, err := s.st.stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if info.State.Consumers >= s.cfg.MaxTenants {
			return fmt.Errorf("%w: %d tenants have queues (the limit)", ErrQueueFull, s.cfg.MaxTenants)
		}
	}
	c, err := s.st.stream.CreateOrUpdateConsumer(ctx, consumerConfig(tenant, &s.cfg))
	if err != nil {
		return fmt.Errorf("%w: consumer for tenant %s: %v", ErrUnavailable, tenant, err)
	}
	s.mu.Lock()
	s.consumers[tenant] = c
	s.mu.Unlock()
	return nil
}

// Get returns job id's record. tenant "" reads any tenant's job; another
// tenant's job is ErrNotFound.
func (s *Service) Get(ctx context.Context, tenant, id string) (Job, error) {
	j, _, err := s.record(ctx, id)
	if err == nil && tenant != "" && j.Tenant != tenant {
		return Job{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err == nil && j.Status == Running && j.Started != nil {
		j.Seconds = time.Since(*j.Started).Seconds() // so far
	}
	return j, err
}

// record reads a job's record and its revision.
func (s *Service) record(ctx context.Context, id string) (Job, uint64, error) {
	if !validID(id) {
		return Job{}, 0, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	e, err := s.st.kv.Get(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return Job{}, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	case err != nil:
		return Job{}, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var j Job
	if err := json.Unmarshal(e.Value(), &j); err != nil {
		return Job{}, 0, fmt.Errorf("%w: record %s: %v", ErrUnavailable, id, err)
	}
	return j, e.Revision(), nil
}

// List returns up to n jobs, newest first (IDs sort by submit time),
// without their output. tenant "" lists every tenant's.
func (s *Service) List(ctx context.Context, tenant string, n int) ([]Job, error) {
	lister, err := s.st.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return []Job{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := []Job{}
	for i := len(keys) - 1; i >= 0 && len(out) < n; i-- {
		j, _, err := s.record(ctx, keys[i])
		if err != nil || (tenant != "" && j.Tenant != tenant) {
			continue // expired or deleted meanwhile, or another tenant's
		}
		j.Stdout, j.Stderr = "", ""
		out = append(out, j)
	}
	return out, nil
}

// Cancel stops job id wherever it is: a queued job ends cancelled at once;
// a running one is aborted at its next check by the replica running it,
// and ends cancelled. Errors wrap ErrNotFound, ErrFinished, ErrUnavailable.
func (s *Service) Cancel(ctx context.Context, tenant, id string) (Job, error) {
	for attempt := 0; attempt < 20; attempt++ {
		j, rev, err := s.record(ctx, id)
		if err == nil && tenant != "" && j.Tenant != tenant {
			err = fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		if err != nil {
			return Job{}, err
		}
		switch {
		case j.Status.Final():
			return j, fmt.Errorf("%w: %s is %s", ErrFinished, id, j.Status)
		case j.Status == Running && j.Replica != "":
			answer, err := s.nc.RequestWithContext(ctx, cancelSubject+j.Replica, []byte(id))
			if err == nil && string(answer.Data) == "cancelled" {
				s.log.Info("job cancel sent", "id", id, "tenant", j.Tenant, "to", j.Replica)
				return j, nil
			}
			if err == nil && string(answer.Data) == "ending" {
				time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond) // its final state is being written
				continue
			}
			if ctx.Err() != nil {
				return Job{}, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
			}
			// The replica is gone (no responders) or does not hold the job:
			// the record is stale, and setting it final keeps any late
			// result from landing.
		}
		j.finish(Cancelled, "cancelled by request", "", time.Now().UTC())
		v, _ := json.Marshal(j)
		if _, err := s.st.kv.Update(ctx, id, v, rev); err == nil {
			s.met.finished(j.Tenant, Cancelled)
			s.log.Info("job cancelled", "id", id, "tenant", j.Tenant, "was", "queued or orphaned")
			return j, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongRevision(err) {
			return Job{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		// Its record moved meanwhile (started, finished): look again.
	}
	return Job{}, fmt.Errorf("%w: job %s kept changing state", ErrUnavailable, id)
}

// finish sets j's final state.
func (j *Job) finish(st Status, why, kind string, now time.Time) {
	j.Status, j.Error, j.Kind, j.Finished = st, why, kind, &now
	if j.Started != nil {
		j.Seconds = now.Sub(*j.Started).Seconds()
	}
}

// isWrongRevision reports a compare-and-set that lost.
func isWrongRevision(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// answerCancel answers another replica's Cancel of a job this one runs.
func (s *Service) answerCancel(m *nats.Msg) {
	s.mu.Lock()
	r := s.runs[string(m.Data)]
	s.mu.Unlock()
	answer := "unknown"
	if r != nil {
		answer = "ending"
		if r.stop(stopReason{why: "cancelled by request", status: Cancelled}) {
			answer = "cancelled"
		}
	}
	m.Respond([]byte(answer))
}

// Drain stops this replica pulling jobs and taking submits, and lets its
// running jobs finish until ctx is done; then it aborts the rest and hands
// them back to the queue (not cancelled: another replica runs them). It
// returns once submits in flight have ended too, so the connection can be
// closed. It reports how many jobs ended here and how many were handed
// back. Later calls return 0, 0.
func (s *Service) Drain(ctx context.Context) (finished, handedBack int) {
	first := false
	s.drain.Do(func() { first = true })
	if !first {
		return 0, 0
	}
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	held := make([]*run, 0, len(s.runs))
	for _, r := range s.runs {
		held = append(held, r)
	}
	s.mu.Unlock()
	all := make(chan struct{})
	go func() { s.wg.Wait(); close(all) }()
	select {
	case <-all:
	case <-ctx.Done():
		for _, r := range held {
			r.stop(stopReason{why: "handed back: replica shutting down", status: Queued})
		}
		<-all
	}
	for _, r := range held {
		if r.handedBack {
			handedBack++
		} else {
			finished++
		}
	}
	s.submits.Wait()
	for _, sub := range s.subs {
		sub.Unsubscribe()
	}
	s.log.Info("replica drained", "finished", finished, "handed_back", handedBack)
	return finished, handedBack
}
