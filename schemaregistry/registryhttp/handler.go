// Package registryhttp serves a schemaregistry.Registry over HTTP and is its client.
//
// The routes are the Confluent-style subset the reference's client speaks, plus
// Seamless's governance routes:
//
//	POST /subjects/{subject}/versions                       {"schema":"<document as a JSON string>"} → {"id","version",…}
//	GET  /subjects                                          → ["subject", …]
//	GET  /subjects/{subject}/versions                       → [1, 2, …]
//	GET  /subjects/{subject}/versions/{version|latest}      → {"subject","version","id","schema","fingerprint"}
//	GET  /schemas/ids/{id}                                  → {"schema","fingerprint"}
//	POST /compatibility/subjects/{subject}/versions/latest  [?verbose=true] {"schema"} → {"is_compatible","messages"}
//	GET  /config/{subject}                                  → {"compatibilityLevel","compatibility"}
//	PUT  /config/{subject}                                  {"compatibility"} → {"compatibility","record"}
//	GET  /v1/schema/mode/{subject}                          → schemaregistry.Status
//	PUT  /v1/schema/mode/{subject}                          {"mode","force","reason","bundle_fingerprint"|"bundle_dir"} → {"record","status"}
//	POST /v1/schema/promote/{subject}                       {"force","reason","bundle_fingerprint"|"bundle_dir"} → {"record","status"}
//	GET  /v1/schema/audit                                   [?subject&action&actor&since&limit] → {"records"}
//	GET  /v1/schema/audit/verify                            → {"ok","records","error"?}
//
// Subjects are node ids, with ':' and '/': clients escape them as one path segment
// (url.PathEscape; "ohlcv:binance:BTC%2FUSDT:1m"), and the handler reads the segment
// unescaped, so %2F never splits it. An incompatible registration is 409 with
// Confluent's message ("Schema update rejected: incompatible with previous version N")
// and every reason. Errors carry both shapes: Seamless's {"error":{"code","message"}}
// and Confluent's {"error_code","message"}.
package registryhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sr "github.com/seamless-data/seamless/schemaregistry"
)

// Options tune the handler.
type Options struct {
	// Actor names who makes a request, for the audit trail. The default reads
	// schemaregistry.ActorFrom(r.Context()), so an auth middleware that calls
	// schemaregistry.WithActor with the API token's name is all it takes.
	Actor func(r *http.Request) string
	// BundleRoot, when set, lets promotions name a bundle by "bundle_dir", a directory
	// relative to it (it cannot escape it); the server then fingerprints the bundle.
	// Unset, promotions send "bundle_fingerprint" (the CLI computes it).
	BundleRoot string
	// MaxBodyBytes bounds request bodies (default 1 MiB).
	MaxBodyBytes int64
}

type handler struct {
	reg  *sr.Registry
	opts Options
	mux  *http.ServeMux
	// routes are the patterns of mux, in registration order (Routes).
	routes []string
}

// New returns the handler of the routes above over reg.
func New(reg *sr.Registry, opts Options) http.Handler {
	if opts.Actor == nil {
		opts.Actor = func(r *http.Request) string { return sr.ActorFrom(r.Context()) }
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	h := &handler{reg: reg, opts: opts, mux: http.NewServeMux()}
	h.handle("POST /subjects/{subject}/versions", h.register)
	h.handle("GET /subjects", h.subjects)
	h.handle("GET /subjects/{subject}/versions", subjectRead(h.reg.Versions, nil))
	h.handle("GET /subjects/{subject}/versions/{version}", h.version)
	h.handle("GET /schemas/ids/{id}", h.schemaByID)
	h.handle("POST /compatibility/subjects/{subject}/versions/latest", h.compatibility)
	h.handle("GET /config/{subject}", subjectRead(h.reg.Compatibility, func(l sr.Level) any { return ConfigBody{Compatibility: l, CompatibilityLevel: l} }))
	h.handle("PUT /config/{subject}", h.putConfig)
	h.handle("GET /v1/schema/mode/{subject}", subjectRead(h.reg.Status, nil))
	h.handle("PUT /v1/schema/mode/{subject}", h.putMode)
	h.handle("POST /v1/schema/promote/{subject}", h.promote)
	h.handle("GET /v1/schema/audit", h.audit)
	h.handle("GET /v1/schema/audit/verify", h.verify)
	return h
}

func (h *handler) handle(pattern string, f http.HandlerFunc) {
	h.mux.HandleFunc(pattern, f)
	h.routes = append(h.routes, pattern)
}

// Routes lists the handler's route patterns ("METHOD /path"), so that a server
// mounting it under the prefixes of Patterns can list every route it answers.
func (h *handler) Routes() []string { return append([]string(nil), h.routes...) }

// Patterns lists the handler's route patterns, for mounting it on another mux.
var Patterns = []string{
	"/subjects", "/subjects/", "/schemas/ids/", "/compatibility/subjects/", "/config/",
	"/v1/schema/mode/", "/v1/schema/promote/", "/v1/schema/audit", "/v1/schema/audit/",
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
	if _, pattern := h.mux.Handler(r); pattern == "" {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route %s %s", r.Method, r.URL.Path), nil)
		return
	}
	r = r.WithContext(sr.WithActor(r.Context(), h.opts.Actor(r)))
	h.mux.ServeHTTP(w, r)
}

// ErrorBody is the error document of every failed request.
type ErrorBody struct {
	Error struct {
		Code     string   `json:"code"`
		Message  string   `json:"message"`
		Messages []string `json:"messages,omitempty"`
	} `json:"error"`
	// Confluent's shape.
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// status maps an error code to its HTTP status and Confluent error_code.
func status(code string) (int, int) {
	switch code {
	case sr.CodeBadRequest:
		return http.StatusBadRequest, 40001
	case sr.CodeInvalidSchema:
		return http.StatusUnprocessableEntity, 42201
	case sr.CodeSchemaViolation:
		return http.StatusUnprocessableEntity, 42210
	case sr.CodeIncompatible:
		return http.StatusConflict, 409
	case sr.CodePromotionRefused:
		return http.StatusConflict, 40910
	case sr.CodeNotFound:
		return http.StatusNotFound, 40401
	}
	return http.StatusInternalServerError, 50001
}

func writeError(w http.ResponseWriter, httpStatus int, code, msg string, messages []string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message, b.Error.Messages = code, msg, messages
	_, b.ErrorCode = status(code)
	b.Message = msg
	writeJSON(w, httpStatus, b)
}

func fail(w http.ResponseWriter, err error) {
	code := sr.ErrorCode(err)
	st, _ := status(code)
	var messages []string
	var ie *sr.IncompatibleError
	var nf *sr.NotFoundError
	switch {
	case errors.As(err, &ie):
		messages = ie.Reasons
	case errors.As(err, &nf) && nf.Version != 0:
		// Confluent distinguishes a missing version (40402) and schema (40403).
		writeErrorCode(w, st, code, err.Error(), 40402)
		return
	case errors.As(err, &nf) && nf.ID != 0:
		writeErrorCode(w, st, code, err.Error(), 40403)
		return
	}
	writeError(w, st, code, err.Error(), messages)
}

func writeErrorCode(w http.ResponseWriter, httpStatus int, code, msg string, confluent int) {
	var b ErrorBody
	b.Error.Code, b.Error.Message, b.ErrorCode, b.Message = code, msg, confluent, msg
	writeJSON(w, httpStatus, b)
}

func writeJSON(w http.ResponseWriter, httpStatus int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body into v; unknown keys are allowed (Confluent clients send
// schemaType and references).
func decode(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return &sr.RequestError{Message: "reading the body: " + err.Error()}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &sr.RequestError{Message: "body: " + err.Error()}
	}
	return nil
}

func subjectOf(r *http.Request) (string, error) {
	s := r.PathValue("subject")
	return s, sr.CheckSubject(s)
}

// schemaBody is {"schema": …}: the document as a JSON string (Confluent), or inline.
type schemaBody struct {
	Schema json.RawMessage `json:"schema"`
}

func (b schemaBody) parse() (sr.Schema, error) {
	raw := []byte(b.Schema)
	if len(raw) == 0 {
		return sr.Schema{}, &sr.RequestError{Message: `missing "schema"`}
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return sr.Schema{}, &sr.RequestError{Message: "schema: " + err.Error()}
		}
		raw = []byte(s)
	}
	return sr.Parse(raw)
}

func readSchema(r *http.Request) (sr.Schema, error) {
	var b schemaBody
	if err := decode(r, &b); err != nil {
		return sr.Schema{}, err
	}
	return b.parse()
}

// RegisterResponse answers POST /subjects/{subject}/versions.
type RegisterResponse struct {
	ID          int64  `json:"id"`
	Version     int    `json:"version"`
	Subject     string `json:"subject"`
	Fingerprint string `json:"fingerprint"`
	Existing    bool   `json:"existing"`
}

// subjectAndSchema reads the subject of the path and the schema of the body.
func subjectAndSchema(r *http.Request) (string, sr.Schema, error) {
	subject, err := subjectOf(r)
	if err != nil {
		return "", sr.Schema{}, err
	}
	s, err := readSchema(r)
	return subject, s, err
}

func (h *handler) register(w http.ResponseWriter, r *http.Request) {
	subject, s, err := subjectAndSchema(r)
	if err != nil {
		fail(w, err)
		return
	}
	reg, err := h.reg.Register(r.Context(), subject, s)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, RegisterResponse{ID: reg.ID, Version: reg.Version, Subject: reg.Subject, Fingerprint: reg.Fingerprint, Existing: reg.Existing})
}

func (h *handler) subjects(w http.ResponseWriter, r *http.Request) {
	out, err := h.reg.Subjects(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// VersionResponse is one version of a subject.
type VersionResponse struct {
	Subject     string `json:"subject"`
	Version     int    `json:"version"`
	ID          int64  `json:"id"`
	Schema      string `json:"schema"`
	Fingerprint string `json:"fingerprint"`
}

func (h *handler) version(w http.ResponseWriter, r *http.Request) {
	subject, err := subjectOf(r)
	if err != nil {
		fail(w, err)
		return
	}
	v := -1
	if p := r.PathValue("version"); p != "latest" && p != "-1" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			fail(w, &sr.RequestError{Message: fmt.Sprintf("version %q: want a positive integer or latest", p)})
			return
		}
		v = n
	}
	sv, err := h.reg.Version(r.Context(), subject, v)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, VersionResponse{Subject: sv.Subject, Version: sv.Version, ID: sv.ID, Schema: string(sv.Schema.Canonical()), Fingerprint: sv.Schema.Fingerprint()})
}

// SchemaResponse answers GET /schemas/ids/{id}.
type SchemaResponse struct {
	Schema      string `json:"schema"`
	Fingerprint string `json:"fingerprint"`
}

func (h *handler) schemaByID(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		fail(w, &sr.RequestError{Message: fmt.Sprintf("schema id %q: want a positive integer", r.PathValue("id"))})
		return
	}
	s, err := h.reg.SchemaByID(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, SchemaResponse{Schema: string(s.Canonical()), Fingerprint: s.Fingerprint()})
}

// CompatibilityResponse answers the compatibility check.
type CompatibilityResponse struct {
	IsCompatible bool     `json:"is_compatible"`
	Messages     []string `json:"messages,omitempty"`
}

func (h *handler) compatibility(w http.ResponseWriter, r *http.Request) {
	subject, s, err := subjectAndSchema(r)
	if err != nil {
		fail(w, err)
		return
	}
	msgs, err := h.reg.CheckCompatibility(r.Context(), subject, s)
	if err != nil {
		fail(w, err)
		return
	}
	out := CompatibilityResponse{IsCompatible: len(msgs) == 0}
	if v, _ := strconv.ParseBool(r.URL.Query().Get("verbose")); v {
		out.Messages = append([]string{}, msgs...)
	}
	writeJSON(w, http.StatusOK, out)
}

// ConfigBody is the compatibility configuration of a subject.
type ConfigBody struct {
	Compatibility sr.Level `json:"compatibility"`
	// CompatibilityLevel repeats Compatibility, as Confluent's GET answers it.
	CompatibilityLevel sr.Level   `json:"compatibilityLevel,omitempty"`
	Record             *sr.Record `json:"record,omitempty"`
}

func (h *handler) putConfig(w http.ResponseWriter, r *http.Request) {
	subject, err := subjectOf(r)
	if err != nil {
		fail(w, err)
		return
	}
	var body ConfigBody
	if err := decode(r, &body); err != nil {
		fail(w, err)
		return
	}
	if body.Compatibility == "" {
		body.Compatibility = body.CompatibilityLevel
	}
	rec, err := h.reg.SetCompatibility(r.Context(), subject, body.Compatibility)
	if err != nil {
		fail(w, err)
		return
	}
	l, _ := sr.ParseLevel(string(body.Compatibility))
	writeJSON(w, http.StatusOK, ConfigBody{Compatibility: l, Record: rec})
}

// ModeRequest is the body of PUT /v1/schema/mode and POST /v1/schema/promote.
type ModeRequest struct {
	Mode              sr.Mode `json:"mode,omitempty"`
	Force             bool    `json:"force"`
	Reason            string  `json:"reason"`
	BundleFingerprint string  `json:"bundle_fingerprint,omitempty"`
	BundleDir         string  `json:"bundle_dir,omitempty"`
}

// ModeResponse is the audit record of a mode change and the subject's status after it.
type ModeResponse struct {
	Record *sr.Record `json:"record"`
	Status sr.Status  `json:"status"`
}

func (h *handler) putMode(w http.ResponseWriter, r *http.Request) { h.changeMode(w, r, false) }
func (h *handler) promote(w http.ResponseWriter, r *http.Request) { h.changeMode(w, r, true) }

func (h *handler) changeMode(w http.ResponseWriter, r *http.Request, promote bool) {
	subject, err := subjectOf(r)
	if err != nil {
		fail(w, err)
		return
	}
	var body ModeRequest
	if err := decode(r, &body); err != nil {
		fail(w, err)
		return
	}
	if promote {
		body.Mode = sr.Strict
	}
	req := sr.PromoteRequest{Force: body.Force, Reason: body.Reason, Bundle: body.BundleFingerprint}
	if body.BundleDir != "" {
		if req.Bundle, err = h.bundle(body.BundleDir); err != nil {
			fail(w, err)
			return
		}
	}
	rec, err := h.reg.SetMode(r.Context(), subject, body.Mode, req)
	if err != nil {
		fail(w, err)
		return
	}
	st, err := h.reg.Status(r.Context(), subject)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ModeResponse{Record: rec, Status: st})
}

// bundle fingerprints dir under BundleRoot.
func (h *handler) bundle(dir string) (string, error) {
	if h.opts.BundleRoot == "" {
		return "", &sr.RequestError{Message: "bundle_dir is not enabled on this server: send bundle_fingerprint (seamless schema bundle computes it)"}
	}
	if !filepath.IsLocal(dir) {
		return "", &sr.RequestError{Message: fmt.Sprintf("bundle_dir %q must be a relative path inside the server's bundle root", dir)}
	}
	b, err := sr.BundleDir(filepath.Join(h.opts.BundleRoot, dir))
	if err != nil {
		return "", &sr.RequestError{Message: err.Error()}
	}
	return b.Fingerprint, nil
}

// AuditResponse answers GET /v1/schema/audit.
type AuditResponse struct {
	Records []sr.Record `json:"records"`
}

func (h *handler) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aq := sr.AuditQuery{Subject: q.Get("subject"), Action: sr.Action(q.Get("action")), Actor: q.Get("actor")}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			fail(w, &sr.RequestError{Message: fmt.Sprintf("since %q: want RFC 3339", v)})
			return
		}
		aq.Since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fail(w, &sr.RequestError{Message: fmt.Sprintf("limit %q: want a non-negative integer", v)})
			return
		}
		aq.Limit = n
	}
	recs, err := h.reg.Audit(r.Context(), aq)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, AuditResponse{Records: recs})
}

// VerifyResponse answers GET /v1/schema/audit/verify. A broken chain is a 200 with OK
// false, BrokenAt the first bad record and Error why.
type VerifyResponse struct {
	OK       bool   `json:"ok"`
	Records  int    `json:"records"`
	BrokenAt int64  `json:"broken_at,omitempty"`
	Error    string `json:"error,omitempty"`
}

func (h *handler) verify(w http.ResponseWriter, r *http.Request) {
	n, err := h.reg.VerifyAudit(r.Context())
	var ce *sr.ChainError
	switch {
	case errors.As(err, &ce):
		writeJSON(w, http.StatusOK, VerifyResponse{Records: n, BrokenAt: ce.Seq, Error: ce.Reason})
	case err != nil:
		fail(w, err)
	default:
		writeJSON(w, http.StatusOK, VerifyResponse{OK: true, Records: n})
	}
}

// trimSlash is used by the client to join paths.
func trimSlash(s string) string { return strings.TrimRight(s, "/") }

// subjectRead answers a GET route that reads one subject's state: the value read, or
// render's view of it.
func subjectRead[T any](read func(context.Context, string) (T, error), render func(T) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		subject, err := subjectOf(r)
		if err != nil {
			fail(w, err)
			return
		}
		v, err := read(r.Context(), subject)
		if err != nil {
			fail(w, err)
			return
		}
		var out any = v
		if render != nil {
			out = render(v)
		}
		writeJSON(w, http.StatusOK, out)
	}
}
