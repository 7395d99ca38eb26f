package main

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wasmsched/wasmsched/jobs"
)

// Submitting a job: parse the query, read the upload within its limits,
// and hand both to the service, which validates everything before
// queueing.

func (s *server) postJob(w http.ResponseWriter, r *http.Request, tenant string) {
	if s.draining.Load() {
		httpError(w, http.StatusServiceUnavailable, "shutting down: no new jobs")
		return
	}
	q := r.URL.Query()
	req := jobs.Request{Tenant: tenant, Guest: q.Get("guest"), Export: q.Get("export"), Argv: q["arg"],
		AllowCommandExports: q.Get("allow_command_exports") == "1"}
	if a := q.Get("args"); a != "" {
		req.Args = strings.Split(a, ",")
	}
	if f := q.Get("fuel"); f != "" {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n <= 0 {
			httpError(w, http.StatusBadRequest, "fuel: %q is not a positive integer", f)
			return
		}
		req.Fuel = n
	}
	if t := q.Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			httpError(w, http.StatusBadRequest, "timeout: %q is not a positive duration", t)
			return
		}
		req.Timeout = d
	}
	if req.Guest == "" {
		body, code, err := s.readUpload(w, r)
		if err != nil {
			httpError(w, code, "%v", err)
			return
		}
		req.Module = body
	}
	j, err := s.svc.Submit(r.Context(), req)
	if err != nil {
		httpError(w, statusOf(err), "%v", err)
		return
	}
	w.Header().Set("Location", "/jobs/"+j.ID)
	writeJSON(w, http.StatusAccepted, j)
}
