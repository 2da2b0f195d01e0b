package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/server/wire"
)

// coverage serves GET /v1/coverage.
func (s *Server) coverage(w http.ResponseWriter, r *http.Request) {
	series, err := wire.DecodeSeries(r.URL.Query())
	if err != nil {
		fail(w, err)
		return
	}
	cov, err := s.provider.Coverage(r.Context(), series.NodeID, series.Interval)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.NewCoverage(series.NodeID, series.Interval, cov))
}

// series serves GET /v1/series.
func (s *Server) series(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		fail(w, &seamless.RequestError{Message: "/v1/series takes no parameters"})
		return
	}
	list, err := s.provider.ListSeries(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	if list == nil {
		list = []seamless.SeriesInfo{}
	}
	writeJSON(w, http.StatusOK, wire.SeriesList{Series: list})
}

// startBackfill serves POST /v1/backfill: validate, queue, answer 202 with the job id.
func (s *Server) startBackfill(w http.ResponseWriter, r *http.Request) {
	var body wire.BackfillRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			fail(w, err)
			return
		}
		fail(w, &seamless.RequestError{Field: "body", Message: fmt.Sprintf("want a JSON object {node_id, interval, start, end}: %v", err)})
		return
	}
	if dec.More() {
		fail(w, &seamless.RequestError{Field: "body", Message: "trailing data after the JSON object"})
		return
	}
	req := seamless.BackfillRequest{NodeID: body.NodeID, Interval: body.Interval, Start: int64(body.Start), End: int64(body.End)}
	if err := s.provider.Validate(req.NodeID, req.Interval, grid.R(req.Start, req.End)); err != nil {
		fail(w, err)
		return
	}
	id, err := s.jobs.start(req)
	if errors.Is(err, errTooManyJobs) {
		writeError(w, wire.NewError(wire.CodeTooManyRequests, "%d backfill jobs already queued; retry later", s.cfg.MaxQueuedJobs))
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Location", "/v1/backfill/"+id)
	writeJSON(w, http.StatusAccepted, wire.JobAccepted{JobID: id})
}

// backfillJob serves GET /v1/backfill/{job_id}.
func (s *Server) backfillJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("job_id")
	job, ok := s.jobs.get(id)
	if !ok {
		writeError(w, wire.NewError(wire.CodeNotFound, "no backfill job %q (unknown, or finished more than %s ago)", id, s.cfg.JobRetention))
		return
	}
	writeJSON(w, http.StatusOK, job)
}

// backfillJobs serves GET /v1/backfill: the queued, running and recently finished
// jobs, newest first.
func (s *Server) backfillJobs(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		fail(w, &seamless.RequestError{Message: "/v1/backfill takes no parameters"})
		return
	}
	writeJSON(w, http.StatusOK, wire.JobList{Jobs: s.jobs.list()})
}

// healthz is liveness: the process answers. It also names the API version, which
// clients check before their first request.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, wire.Health{Status: "ok", APIVersion: wire.APIVersion})
}

// readyzTimeout bounds the dependency probes of /readyz.
const readyzTimeout = 2 * time.Second

// readyz is readiness: the store and coordinator answer and the server is not
// shutting down.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeError(w, wire.NewError(wire.CodeUnavailable, "shutting down"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyzTimeout)
	defer cancel()
	if err := s.provider.Ready(ctx); err != nil {
		writeError(w, wire.NewError(wire.CodeUnavailable, "not ready: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
