package jobs

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"regexp"
	"time"

	"github.com/wasmsched/wasmsched/wasmtask"
)

// Status is where a job is in its life.
type Status string

const (
	Queued    Status = "queued"    // waiting for a slot on some replica
	Running   Status = "running"   // a replica runs it
	Done      Status = "done"      // the guest returned
	Failed    Status = "failed"    // trap, fuel, memory, timeout, an unusable module, or redelivered too often
	Cancelled Status = "cancelled" // by Cancel
)

// Final reports whether s is an end state, written once.
func (s Status) Final() bool { return s == Done || s == Failed || s == Cancelled }

// Job is a job's record, as stored in the key-value bucket and returned
// by the API. Exported fields are its JSON.
type Job struct {
	ID         string               `json:"id"`
	Tenant     string               `json:"tenant"`
	Guest      string               `json:"guest"` // an embedded guest's name, or "upload"
	Module     string               `json:"module,omitempty"`
	Export     string               `json:"export,omitempty"`
	Status     Status               `json:"status"`
	Result     []string             `json:"result,omitempty"` // decimal: uint64 does not fit a JSON number exactly
	Error      string               `json:"error,omitempty"`
	Kind       string               `json:"error_kind,omitempty"`
	Stdout     string               `json:"stdout,omitempty"`
	Stderr     string               `json:"stderr,omitempty"`
	Stats      *wasmtask.GuestStats `json:"stats,omitempty"` // at the run's end; zero if cancelled before the guest ran; absent while queued or running, or if the module could not be had
	Submitted  time.Time            `json:"submitted"`
	Started    *time.Time           `json:"started,omitempty"`
	Finished   *time.Time           `json:"finished,omitempty"`
	Seconds    float64              `json:"seconds"` // run time of the last run (so far, while running)
	Deliveries int                  `json:"deliveries,omitempty"`
	Replica    string               `json:"replica,omitempty"` // the replica running or that ran it
}

// Request is a job to submit.
type Request struct {
	Tenant              string        // "" is "default"
	Guest               string        // an embedded guest (wasmsched.Guest); or
	Module              []byte        // a module's bytes
	Export              string        // "" runs WASI _start
	Args                []string      // the export's arguments as text, typed by its signature
	Argv                []string      // WASI argv[1:] (commands only)
	Fuel                int64         // 0: Config.JobFuel; more is lowered to it
	Timeout             time.Duration // 0: Config.JobTimeout; more is lowered to it
	AllowCommandExports bool          // see wasmtask.Options.AllowCommandExports
}

// spec is a queued job's message: everything a replica needs to run it.
type spec struct {
	ID                  string        `json:"id"`
	Tenant              string        `json:"tenant"`
	Guest               string        `json:"guest"`
	Module              string        `json:"module,omitempty"` // hex SHA-256 of an upload in the object store
	Export              string        `json:"export,omitempty"`
	Args                []uint64      `json:"args,omitempty"`
	Argv                []string      `json:"argv,omitempty"`
	Fuel                int64         `json:"fuel,omitempty"`
	Timeout             time.Duration `json:"timeout"`
	AllowCommandExports bool          `json:"allow_command_exports,omitempty"`
	Submitted           time.Time     `json:"submitted"`
}

// queuedRecord is the record of a job whose spec is sp, before any run.
func (sp *spec) queuedRecord() Job {
	return Job{ID: sp.ID, Tenant: sp.Tenant, Guest: sp.Guest, Module: sp.Module, Export: sp.Export,
		Status: Queued, Submitted: sp.Submitted}
}

// Errors of the service, for errors.Is; each is wrapped with the detail.
var (
	ErrInvalid     = errors.New("invalid request")                     // a bad module, call, tenant or argument: the client's to fix
	ErrQueueFull   = errors.New("queue full")                          // the queue (or the tenant's share) is at its bound
	ErrNoRoom      = errors.New("no room for the module")              // modules kept or stored are at their bounds
	ErrNotFound    = errors.New("no such job")                         // unknown ID (or expired, or another tenant's)
	ErrFinished    = errors.New("job already finished")                // Cancel of a job with a final state
	ErrDraining    = errors.New("replica shutting down")               // Submit during Drain: another replica takes it
	ErrUnavailable = errors.New("job store unavailable")               // NATS did not answer as expected
	errModulesBusy = errors.New("every kept module has a job running") // -> ErrNoRoom
)

var tenantRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidTenant reports whether name can be a tenant: 1 to 64 letters,
// digits, '-' or '_' (it becomes a subject token and a metric label).
func ValidTenant(name string) bool { return tenantRE.MatchString(name) }

var idRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// validID reports whether id has the form newID gives; anything else is
// not looked up (it would be a key or subject of the client's making).
func validID(id string) bool { return idRE.MatchString(id) }

// newID returns a job ID unique across replicas and restarts: 48 bits of
// milliseconds since the epoch, then 80 random bits, in hex. IDs sort by
// submit time (to the millisecond) and cannot be guessed from others.
func newID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}
