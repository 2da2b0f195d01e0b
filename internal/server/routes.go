package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/seamless-data/seamless/internal/server/wire"
)

// routes builds the handler tree: instrumentation outside, then per-route auth and
// deadlines, then the route.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	v1 := func(pattern string, timeout time.Duration, h http.HandlerFunc) {
		var handler http.Handler = withDeadline(timeout, h)
		if len(s.cfg.Tokens) > 0 {
			handler = newAuthenticator(s.cfg.Tokens).require(handler)
		}
		mux.Handle(pattern, handler)
		s.addRoute(pattern)
	}
	v1("GET /v1/bars", s.cfg.BarsTimeout, s.bars)
	v1("GET /v1/coverage", s.cfg.RouteTimeout, s.coverage)
	v1("GET /v1/series", s.cfg.RouteTimeout, s.series)
	v1("POST /v1/backfill", s.cfg.RouteTimeout, s.startBackfill)
	v1("GET /v1/backfill", s.cfg.RouteTimeout, s.backfillJobs)
	v1("GET /v1/backfill/{job_id}", s.cfg.RouteTimeout, s.backfillJob)
	// Long-lived, with auth of its own (a browser's WebSocket cannot send the header).
	mux.Handle("GET /v1/stream", http.HandlerFunc(s.stream))
	s.addRoute("GET /v1/stream")
	for _, m := range s.cfg.Mounts {
		var handler http.Handler = withDeadline(s.cfg.RouteTimeout, m.Handler)
		if len(s.cfg.Tokens) > 0 && !m.Public {
			handler = newAuthenticator(s.cfg.Tokens).require(handler)
		}
		mux.Handle(m.Pattern, handler)
		// A handler mounted under a prefix that lists its own routes is listed by them.
		if lister, ok := m.Handler.(interface{ Routes() []string }); ok {
			for _, r := range lister.Routes() {
				s.addRoute(r)
			}
		} else {
			s.addRoute(m.Pattern)
		}
	}
	for pattern, h := range map[string]http.Handler{
		"GET /healthz": http.HandlerFunc(s.healthz), "GET /readyz": http.HandlerFunc(s.readyz), "GET /metrics": s.metrics.handler(),
	} {
		mux.Handle(pattern, withDeadline(s.cfg.RouteTimeout, h))
		s.addRoute(pattern)
	}
	return s.instrument(mux)
}

func (s *Server) addRoute(pattern string) {
	if !slices.Contains(s.routeList, pattern) {
		s.routeList = append(s.routeList, pattern)
	}
}

// Routes lists every route the server answers, "METHOD /path" as ServeMux patterns
// (mounted handlers that list their routes are expanded), sorted. api/openapi.yaml is
// checked against it.
func (s *Server) Routes() []string { return slices.Sorted(slices.Values(s.routeList)) }

// withDeadline bounds a route: its context ends and its writes fail after d. The
// write deadline is set per route (http.ResponseController) instead of through a
// server-wide WriteTimeout, so each route gets the time its responses need.
func withDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deadline := time.Now().Add(d)
		// Not every ResponseWriter supports deadlines (httptest's recorder does not);
		// the context below still bounds the work.
		_ = http.NewResponseController(w).SetWriteDeadline(deadline)
		ctx, cancel := context.WithDeadline(r.Context(), deadline)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requestInfo is what the instrumentation learns about a request from inner layers.
type requestInfo struct {
	principal string
}

type infoKey struct{}

func infoOf(r *http.Request) *requestInfo {
	info, _ := r.Context().Value(infoKey{}).(*requestInfo)
	return info
}

// instrument counts and times every request by route pattern, logs it, and turns the
// mux's plain-text 404 and 405 answers into JSON error documents.
func (s *Server) instrument(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Done()
		began := time.Now()
		rec := &recorder{ResponseWriter: w}
		info := &requestInfo{}
		// A W3C traceparent header makes the request's spans children of the caller's.
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		r = r.WithContext(context.WithValue(ctx, infoKey{}, info))
		// Handler only looks the route up; ServeHTTP also sets the path values.
		var h http.Handler = mux
		h404, route := mux.Handler(r)
		if len(s.cfg.Tokens) == 0 && !s.hosts.allows(r.Host) {
			route, h = "misdirected", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rejectHost(w, r.Host) })
		} else if route == "" {
			route = "unmatched"
			h = unmatched(h404)
		}
		h.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		elapsed := time.Since(began)
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(elapsed.Seconds())
		s.cfg.Logger.Info("seamless.http.request", "method", r.Method, "route", route, "path", r.URL.Path,
			"status", status, "bytes", rec.bytes, "duration_ms", elapsed.Milliseconds(), "principal", info.principal,
			"remote", r.RemoteAddr)
	})
}

// unmatched answers like the mux's own not-found or method-not-allowed handler h, but
// with a JSON error document.
func unmatched(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status >= 300 && probe.status < 400 {
			h.ServeHTTP(w, r) // the mux's redirect to the canonical path
			return
		}
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			writeError(w, wire.NewError(wire.CodeMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, probe.header.Get("Allow")))
			return
		}
		writeError(w, wire.NewError(wire.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
}

// statusProbe records the status and headers a handler would send, discarding its body.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(status int)      { p.status = status }

// recorder remembers the status and size of a response. Unwrap lets
// http.ResponseController reach the connection beneath it.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// writeJSON sends v as a JSON document with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", wire.MediaJSON)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // an API answer, not HTML: "≥" reads better than "\u003e="
	_ = enc.Encode(v)
}

// writeError sends an error document with the status of its code.
func writeError(w http.ResponseWriter, body wire.ErrorBody) {
	status := wire.Status(body.Code)
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, wire.ErrorDocument{Error: body})
}

// fail sends a library error. A *http.MaxBytesError (a body over the limit) is 413.
func fail(w http.ResponseWriter, err error) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, wire.NewError(wire.CodeTooLarge, "request body over the limit of %d bytes", tooLarge.Limit))
		return
	}
	writeError(w, wire.EncodeError(err))
}

// Principal returns the name of the API token that authenticated the request whose
// context this is ("" without auth), for audit records of mounted handlers.
func Principal(ctx context.Context) string {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return info.principal
	}
	return ""
}
