package jobs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of what the service creates in JetStream.
const (
	streamName     = "WASMSCHED_JOBS"
	subjectPrefix  = "wasmsched.jobs."
	jobsBucket     = "wasmsched_jobs"
	modulesBucket  = "wasmsched_modules"
	queuedSubject  = "wasmsched.queued"  // core NATS: a job was queued (wakes dispatchers)
	cancelSubject  = "wasmsched.cancel." // core NATS request, + replica: abort a job it runs
	consumerPrefix = "tenant_"
)

// EmbeddedNATS is a NATS server with JetStream running in this process,
// storing in a directory. With no listen address it accepts in-process
// connections only.
type EmbeddedNATS struct {
	srv *server.Server
}

// StartEmbeddedNATS starts a NATS server with JetStream storing under dir.
// listen is "" (in-process connections only) or host:port (port 0: any).
func StartEmbeddedNATS(dir, listen string) (*EmbeddedNATS, error) {
	opts := &server.Options{JetStream: true, StoreDir: dir, ServerName: "wasmsched", NoSigs: true, NoLog: true,
		DontListen: listen == ""}
	if listen != "" {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address: %w", err)
		}
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("nats listen port: %w", err)
		}
		opts.Host = host
		if opts.Port == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: not ready after 30s")
	}
	return &EmbeddedNATS{srv: srv}, nil
}

// Connect opens a client connection: in-process, or over TCP when the
// server listens and inProcess is false.
func (e *EmbeddedNATS) Connect(opts ...nats.Option) (*nats.Conn, error) {
	if !e.srv.Running() {
		return nil, errors.New("embedded nats: stopped")
	}
	return nats.Connect(e.srv.ClientURL(), append(opts, nats.InProcessServer(e.srv))...)
}

// ClientURL is where other processes connect (only when it listens).
func (e *EmbeddedNATS) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has stopped (its store is
// then flushed and closed).
func (e *EmbeddedNATS) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// store is the service's JetStream handles.
type store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	kv     jetstream.KeyValue
	objs   jetstream.ObjectStore
}

// setup creates (or updates to cfg) the stream, bucket and object store.
// Every replica calls it; the last one's config wins, so replicas should
// share their queue flags.
func setup(ctx context.Context, nc *nats.Conn, cfg *Config) (*store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	st := &store{js: js}
	st.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:                 streamName,
		Description:          "wasmsched jobs waiting for or being run by a replica",
		Subjects:             []string{subjectPrefix + ">"},
		Retention:            jetstream.WorkQueuePolicy,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxMsgs:              cfg.MaxQueued,
		MaxMsgsPerSubject:    cfg.MaxQueuedPerTenant,
		MaxAge:               cfg.KeepJobsFor,
		MaxMsgSize:           1 << 20,
		Duplicates:           time.Minute,
		Replicas:             cfg.Replicas,
		Storage:              jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", streamName, err)
	}
	st.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      jobsBucket,
		Description: "wasmsched job records: status, result, output",
		History:     8,
		TTL:         cfg.KeepJobsFor,
		Replicas:    cfg.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", jobsBucket, err)
	}
	st.objs, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      modulesBucket,
		Description: "wasmsched uploaded modules by SHA-256",
		MaxBytes:    cfg.ModuleStoreBytes,
		Replicas:    cfg.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", modulesBucket, err)
	}
	return st, nil
}

// consumerConfig is tenant's pull consumer: explicit acks, redelivery after
// AckWait, deliveries bounded by the service itself (so it can record why).
func consumerConfig(tenant string, cfg *Config) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       consumerPrefix + tenant,
		FilterSubject: subjectPrefix + tenant,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: -1,
		Replicas:      cfg.Replicas,
	}
}

// queueFull reports whether a publish was refused by the stream's bounds.
func queueFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "maximum messages")
}
