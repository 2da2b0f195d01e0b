// Package leaseapi serves a seamless.Coordinator over HTTP in the reference's lease wire
// protocol, so its Python clients work unchanged, and provides Client, a
// seamless.Coordinator that talks to such a server (thin workers use a remote
// coordinator with SEAMLESS_COORDINATOR_URL=http://…).
//
// Routes (JSON bodies; tokens are decimal strings on output, strings or numbers on
// input):
//
//	POST /v1/leases/claim     {"key","lease_ms"}          → 200 {"lease":{"key","token","lease_until_ms"},"completion_ratio"}
//	                                                         409 {"error":{"code":"lease_held",…}} when held
//	POST /v1/leases/renew     {"key","token","lease_ms"}  → 200 {"lease":{…}}; 409 lease_lost
//	POST /v1/leases/complete  {"key","token"[,"completion_ratio"]} → 200 {"ok":true,"completion_ratio":r (default 1)}; 409 lease_lost
//	POST /v1/leases/fail      {"key","token","reason"}    → 200 {"ok":true,"completion_ratio":0}; 409 lease_lost
//	GET  /v1/leases                                        → 200 {"leases":[{"key","holder","token","lease_until_ms","progress"}]}
//	GET  /v1/leases/wait?key=K&timeout_ms=N                → 200 {"free":true|false} (long poll)
//	POST /v1/leases/release   {"key"}                     → 200 {"ok":true} (operator: free a stuck lease)
//	GET  /healthz                                          → 200 {"status":"ok"}
//
// completion_ratio on claim is the ratio the key last ended with (the one complete
// sent, 1 by default; 0 after fail), absent for a key never ended. The handler
// remembers it for the last MaxRemembered keys ended through it.
//
// lease_ms is optional (0 or absent: the default DistributedLeaseTTL); a negative one,
// or one over MaxLeaseMS, is 400 naming the field. Bodies over MaxBody are 413
// too_large, unknown routes 404 not_found and wrong methods 405 method_not_allowed,
// all as JSON documents.
//
// Errors are JSON documents {"error":{"code","message"}}. Client reads a 409 (or 404)
// as held elsewhere or lost only when it carries such a document with code lease_held
// (or held) or lease_lost; any other answer — notably a bare 404 page from a server
// that is not a lease API — is an error wrapping ErrNotLeaseAPI, never
// seamless.ErrLeaseHeld (see Client.do).
package leaseapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/seamless-data/seamless"
)

// MaxBody bounds request bodies.
const MaxBody = 64 << 10

// MaxLeaseMS is the longest lease_ms a claim or renew may ask for (24 h): longer is a
// bad request rather than a lease that outlives every worker, and no millisecond
// count the API accepts can overflow a time.Duration.
const MaxLeaseMS = int64(24 * time.Hour / time.Millisecond)

// Token is a fencing token on the wire: written as a decimal string, read from a
// string or a number.
type Token uint64

// MarshalJSON writes the token as a string.
func (t Token) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatUint(uint64(t), 10) + `"`), nil
}

// UnmarshalJSON reads a string or a number.
func (t *Token) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("token %s: want a decimal integer", b)
	}
	*t = Token(v)
	return nil
}

// WireLease is a lease on the wire.
type WireLease struct {
	Key          string `json:"key"`
	Token        Token  `json:"token"`
	LeaseUntilMS int64  `json:"lease_until_ms"`
}

type claimReq struct {
	Key     string `json:"key"`
	LeaseMS int64  `json:"lease_ms"`
	Token   Token  `json:"token"`
	Reason  string `json:"reason"`
	// CompletionRatio is how much of the chunk a complete did (the reference's
	// optional field; 1 when absent).
	CompletionRatio *float64 `json:"completion_ratio"`
}

// MaxRemembered bounds the keys whose last completion ratio a Handler remembers, so a
// long-running coordinator's memory does not grow with every chunk it ever served.
const MaxRemembered = 1 << 16

type claimResp struct {
	Lease           WireLease `json:"lease"`
	CompletionRatio *float64  `json:"completion_ratio,omitempty"`
}

// LeaseView is one held lease as GET /v1/leases lists it.
type LeaseView struct {
	Key          string  `json:"key"`
	Holder       string  `json:"holder"`
	Token        Token   `json:"token"`
	LeaseUntilMS int64   `json:"lease_until_ms"`
	Progress     float64 `json:"progress"`
}

// Handler serves c.
type Handler struct {
	c   seamless.Coordinator
	mux *http.ServeMux
	// routes are the patterns of mux, in registration order (Routes).
	routes []string

	mu    sync.Mutex
	ended map[string]float64 // last completion ratio per key, at most MaxRemembered
	order []string           // keys of ended, oldest first (a ring once full)
	next  int                // where the next key goes in order once it is full
}

// NewHandler returns the lease API over c.
func NewHandler(c seamless.Coordinator) *Handler {
	h := &Handler{c: c, mux: http.NewServeMux(), ended: map[string]float64{}}
	h.handle("POST /v1/leases/claim", h.claim)
	h.handle("POST /v1/leases/renew", h.renew)
	h.handle("POST /v1/leases/complete", h.complete)
	h.handle("POST /v1/leases/fail", h.fail)
	h.handle("GET /v1/leases", h.list)
	h.handle("GET /v1/leases/wait", h.wait)
	h.handle("POST /v1/leases/release", h.release)
	h.handle("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return h
}

func (h *Handler) handle(pattern string, f http.HandlerFunc) {
	h.mux.HandleFunc(pattern, f)
	h.routes = append(h.routes, pattern)
}

// Routes lists the handler's route patterns ("METHOD /path"), so that a server
// mounting it under a prefix can list every route it answers (api/openapi.yaml is
// checked against that list).
func (h *Handler) Routes() []string { return append([]string(nil), h.routes...) }

// ServeHTTP answers r, with JSON error documents where the mux would answer a plain
// text 404 or 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern == "" {
		probe := &statusProbe{header: http.Header{}}
		h.mux.ServeHTTP(probe, r)
		switch {
		case probe.status >= 300 && probe.status < 400:
			h.mux.ServeHTTP(w, r) // the mux's redirect to the canonical path
		case probe.status == http.StatusMethodNotAllowed:
			w.Header().Set("Allow", probe.header.Get("Allow"))
			writeErr(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, probe.header.Get("Allow")))
		default:
			writeErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
		}
		return
	}
	h.mux.ServeHTTP(w, r)
}

// statusProbe records the status and headers a handler would send, discarding its body.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(status int)      { p.status = status }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (h *Handler) decode(w http.ResponseWriter, r *http.Request, needToken bool) (claimReq, bool) {
	var req claimReq
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeErr(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body over the limit of %d bytes", tooLarge.Limit))
			return req, false
		}
		writeErr(w, http.StatusBadRequest, "bad_request", "body: "+err.Error())
		return req, false
	}
	if req.LeaseMS < 0 || req.LeaseMS > MaxLeaseMS {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "bad_request", "field": "lease_ms",
			"message": fmt.Sprintf("lease_ms: want 0 (the default) to %d, got %d", MaxLeaseMS, req.LeaseMS)}})
		return req, false
	}
	if req.Key == "" {
		writeErr(w, http.StatusBadRequest, "bad_request", "key is required")
		return req, false
	}
	if needToken && req.Token == 0 {
		writeErr(w, http.StatusBadRequest, "bad_request", "token is required")
		return req, false
	}
	if c := req.CompletionRatio; c != nil && !(*c >= 0 && *c <= 1) {
		writeErr(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("completion_ratio %v: want a number from 0 to 1", *c))
		return req, false
	}
	return req, true
}

// coordErr maps coordinator errors to statuses: held and lost are 409 (the reference's
// "held elsewhere"), anything else means the coordinator itself failed (503).
func coordErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, seamless.ErrLeaseHeld):
		writeErr(w, http.StatusConflict, "lease_held", err.Error())
	case errors.Is(err, seamless.ErrLeaseLost):
		writeErr(w, http.StatusConflict, "lease_lost", err.Error())
	default:
		writeErr(w, http.StatusServiceUnavailable, "coordinator_unavailable", err.Error())
	}
}

// ttl is the lease a claim or renew asks for; decode has bounded ms.
func ttl(ms int64) time.Duration {
	if ms == 0 {
		return seamless.DefaultBackfillConfig().DistributedLeaseTTL
	}
	return time.Duration(ms) * time.Millisecond
}

func (h *Handler) claim(w http.ResponseWriter, r *http.Request) {
	req, ok := h.decode(w, r, false)
	if !ok {
		return
	}
	l, err := h.c.Claim(r.Context(), req.Key, ttl(req.LeaseMS))
	if err != nil {
		coordErr(w, err)
		return
	}
	resp := claimResp{Lease: WireLease{Key: l.Key, Token: Token(l.Token), LeaseUntilMS: l.LeaseUntilMS}}
	h.mu.Lock()
	if ratio, ok := h.ended[req.Key]; ok {
		resp.CompletionRatio = &ratio
	}
	h.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func (h *Handler) renew(w http.ResponseWriter, r *http.Request) {
	req, ok := h.decode(w, r, true)
	if !ok {
		return
	}
	l, err := h.c.Renew(r.Context(), seamless.Lease{Key: req.Key, Token: uint64(req.Token)}, ttl(req.LeaseMS))
	if err != nil {
		coordErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, claimResp{Lease: WireLease{Key: l.Key, Token: Token(l.Token), LeaseUntilMS: l.LeaseUntilMS}})
}

// end ends a lease with do and remembers the key's completion ratio: ratio, or for a
// complete the one the request sends.
func (h *Handler) end(w http.ResponseWriter, r *http.Request, ratio float64, complete bool, do func(context.Context, seamless.Lease, string) error) {
	req, ok := h.decode(w, r, true)
	if !ok {
		return
	}
	if err := do(r.Context(), seamless.Lease{Key: req.Key, Token: uint64(req.Token)}, req.Reason); err != nil {
		coordErr(w, err)
		return
	}
	if complete && req.CompletionRatio != nil {
		ratio = *req.CompletionRatio
	}
	h.remember(req.Key, ratio)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "completion_ratio": ratio})
}

// remember records key's last completion ratio, forgetting the oldest key once
// MaxRemembered are known.
func (h *Handler) remember(key string, ratio float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.ended[key]; !ok {
		if len(h.order) < MaxRemembered {
			h.order = append(h.order, key)
		} else {
			delete(h.ended, h.order[h.next])
			h.order[h.next] = key
			h.next = (h.next + 1) % MaxRemembered
		}
	}
	h.ended[key] = ratio
}

func (h *Handler) complete(w http.ResponseWriter, r *http.Request) {
	h.end(w, r, 1, true, func(ctx context.Context, l seamless.Lease, _ string) error { return h.c.Complete(ctx, l) })
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request) {
	h.end(w, r, 0, false, func(ctx context.Context, l seamless.Lease, reason string) error {
		if reason == "" {
			reason = "unspecified"
		}
		return h.c.Fail(ctx, l, reason)
	})
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	infos, err := h.c.Inspect(r.Context())
	if err != nil {
		coordErr(w, err)
		return
	}
	out := make([]LeaseView, 0, len(infos))
	for _, i := range infos {
		out = append(out, LeaseView{Key: i.Key, Holder: i.Holder, Token: Token(i.Token), LeaseUntilMS: i.LeaseUntilMS})
	}
	writeJSON(w, http.StatusOK, map[string]any{"leases": out})
}

// maxWait bounds one long poll; clients poll again.
const maxWait = 30 * time.Second

func (h *Handler) wait(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	if key == "" {
		writeErr(w, http.StatusBadRequest, "bad_request", "key is required")
		return
	}
	d := maxWait
	if v := r.URL.Query().Get("timeout_ms"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			writeErr(w, http.StatusBadRequest, "bad_request", "timeout_ms: want a positive integer")
			return
		}
		d = min(time.Duration(ms)*time.Millisecond, maxWait)
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	defer cancel()
	err := h.c.Wait(ctx, key)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]bool{"free": true})
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		writeJSON(w, http.StatusOK, map[string]bool{"free": false})
	default:
		coordErr(w, err)
	}
}

// Releaser is implemented by coordinators that can free a lease whatever its holder.
type Releaser interface {
	Release(ctx context.Context, key string) error
}

func (h *Handler) release(w http.ResponseWriter, r *http.Request) {
	req, ok := h.decode(w, r, false)
	if !ok {
		return
	}
	rel, ok := h.c.(Releaser)
	if !ok {
		writeErr(w, http.StatusNotImplemented, "not_supported", "this coordinator cannot release leases")
		return
	}
	if err := rel.Release(r.Context(), req.Key); err != nil {
		writeErr(w, http.StatusConflict, "not_held", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}
