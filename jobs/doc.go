// Package jobs is wasmsched's job service: guests submitted as jobs, run
// by any number of replicas that share one NATS JetStream, with nothing
// lost and nothing finished twice. cmd/wasmsched's serve wires it to HTTP;
// an embedder can wire it to anything else.
//
// # Where everything lives
//
// The service keeps no queue, log or store of its own. Everything durable
// is in JetStream, created (or updated) by New with the replication the
// operator asks for:
//
//   - The work queue is the stream WASMSCHED_JOBS (work-queue retention).
//     A job is one message on the subject wasmsched.jobs.TENANT carrying
//     its spec (what to run, with what budget). The stream's limits are the
//     queue bounds: MaxQueued messages in all, MaxQueuedPerTenant per
//     subject, both "discard new", so a submit over a bound is refused and
//     nothing already queued is dropped.
//   - Job state and results are the key-value bucket wasmsched_jobs, one
//     key per job ID, with history and a TTL of KeepJobsFor.
//   - Uploaded modules are the object store wasmsched_modules, keyed by
//     the hex SHA-256 of their bytes: uploaded once, fetched and compiled
//     by any replica that runs a job of them, and kept compiled per replica
//     in a bounded LRU.
//
// # Dispatch and fairness
//
// Each tenant has its own durable pull consumer (filter
// wasmsched.jobs.TENANT). A replica's dispatcher pulls only while it has a
// free slot (MaxRunning, and MaxRunningPerTenant per tenant): tenants with
// work in turn, round-robin from the one after the tenant served last,
// each fetching at most an equal share of the free slots (at least one).
// So a tenant with 10,000 queued jobs and a tenant with one take turns:
// the single job waits at most for the jobs already running to free a
// slot. The dispatcher wakes on a slot freed, on a core-NATS notice that
// a job was queued (it names the tenant), and on a tick that lists the
// tenants with messages from the stream itself, which also picks up
// redeliveries and hand-backs; between ticks it serves the tenants it
// was told of or last found with work, which spares a stream listing per
// job. A submit makes its tenant known to its own replica before it
// returns; other replicas learn of it from the notice, or at their next
// tick if the notice is lost (core NATS does not retry).
//
// # Exactly one final state
//
// A job's record moves queued → running → done|failed|cancelled, every
// write a compare-and-set on the key's revision. The final write is
// conditional on the revision of this replica's own "running" write, so
// of two replicas that ran the same job (the first one presumed dead) at
// most one final state lands, and a redelivered message whose job already
// has a final state is acknowledged without running it again. A running
// job keeps its message alive with in-progress acks every AckWait/3; if
// its replica dies, JetStream redelivers the message after AckWait and
// another replica runs the job from the start. A message delivered more
// than MaxDeliveries times is parked: its job ends failed with the reason.
//
// Submit publishes the message before it creates the record, and a
// dispatcher that finds no record creates it from the spec, so a submit
// cut short between the two still runs and can still be queried.
//
// # Cancel and shutdown
//
// Cancel on any replica: a queued job's record is set cancelled (the
// message is then acknowledged unrun when it is pulled); a running job's
// replica is asked, by request on wasmsched.cancel.REPLICA, to abort the
// guest at its next check, and the job ends cancelled. When that replica
// does not answer (it died), the record is set cancelled by
// compare-and-set, which also keeps a late result from overwriting it.
//
// Drain stops pulling, lets running jobs finish until its context ends,
// then aborts the rest and hands them back: their record returns to
// queued and their message is negatively acknowledged, so another
// replica (or this one restarted) runs them. They are not cancelled.
//
// # Tenants
//
// A tenant name is 1 to 64 letters, digits, '-' or '_' (it is a subject
// token and a metric label). Metrics carry at most MaxTenantLabels
// distinct tenants per replica; the rest are counted under "_other".
// At most MaxTenants tenants may have consumers; a submit for a new tenant
// beyond that is refused.
package jobs
