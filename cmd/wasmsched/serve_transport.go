package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// serve's transport: what a slow or greedy client meets before a job
// exists (connection cap, deadlines, upload caps), and JSON answers.

// httpServer is the HTTP server with serve's transport limits: a client
// gets --header-timeout for its headers (the body's deadline is set per
// upload), idle keep-alive connections are closed, headers are bounded.
func (s *server) httpServer() *http.Server {
	return &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: s.cfg.headerTimeout,
		IdleTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// limitListener serves at most n connections at once: Accept waits for a
// slot, so excess clients wait in the kernel's backlog instead of each
// holding a goroutine and buffers.
type limitListener struct {
	net.Listener
	slots  chan struct{}
	done   chan struct{}
	closed sync.Once
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

// Close stops Accept, also one waiting for a slot.
func (l *limitListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// readUpload reads a module upload within serve's limits: an upload slot,
// bytes reserved against --upload-memory before reading, --max-body, and
// --body-timeout for the whole body. It returns the body, or the HTTP
// status and the reason it was refused.
func (s *server) readUpload(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	// Until the body is read, an answer closes the connection: the
	// server must not drain a body it refused (a slow client would hold
	// the connection again).
	w.Header().Set("Connection", "close")
	if r.ContentLength > s.cfg.maxBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("module of %d bytes is larger than the limit of %d bytes", r.ContentLength, s.cfg.maxBody)
	}
	select {
	case s.uploads <- struct{}{}:
		defer func() { <-s.uploads }()
	default:
		w.Header().Set("Retry-After", "1")
		return nil, http.StatusServiceUnavailable, fmt.Errorf("%d uploads are in flight (the limit); try again later", s.cfg.maxUploads)
	}
	reserve := s.cfg.maxBody
	if r.ContentLength >= 0 {
		reserve = r.ContentLength
	}
	if s.uploadBytes.Add(reserve) > s.cfg.uploadMemory {
		s.uploadBytes.Add(-reserve)
		w.Header().Set("Retry-After", "1")
		return nil, http.StatusServiceUnavailable, fmt.Errorf("uploads in flight hold %d bytes (the limit); try again later", s.cfg.uploadMemory)
	}
	defer s.uploadBytes.Add(-reserve)
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(s.cfg.bodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, min(reserve, s.cfg.maxBody)))
	if err == nil {
		rc.SetReadDeadline(time.Time{})
		w.Header().Del("Connection") // read whole: the connection may be kept
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) && r.ContentLength >= 0 && r.ContentLength < s.cfg.maxBody:
		return nil, http.StatusBadRequest, fmt.Errorf("body longer than its Content-Length of %d bytes", r.ContentLength)
	case errors.As(err, &mbe):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("module larger than the limit of %d bytes", s.cfg.maxBody)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, http.StatusRequestTimeout, fmt.Errorf("body not received within %v", s.cfg.bodyTimeout)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %v", err)
	case len(body) == 0:
		return nil, http.StatusBadRequest, errors.New("empty body: POST a .wasm module, or name an embedded guest with ?guest=spin|cguest|goguest")
	}
	return body, 0, nil
}

func httpError(w http.ResponseWriter, code int, format string, a ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, a...)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
