package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/grid"
)

// Codes the HTTP layer adds to the library's (seamless.Code*).
const (
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeNotAcceptable    = "not_acceptable"
	CodeTooLarge         = "request_too_large"
	CodeTooManyRequests  = "too_many_requests"
	CodeUnavailable      = "unavailable"
	// CodeMisdirected: a server without auth refused the request's Host header.
	CodeMisdirected = "misdirected_host"
)

// statusOf is the HTTP status of each error code (SPEC §2). conformance_blocked, which
// the library does not produce yet, is listed so its status is right the day it does.
var statusOf = map[string]int{
	seamless.CodeBadRequest:     http.StatusBadRequest,
	seamless.CodeUnknownSource:  http.StatusNotFound,
	seamless.CodeNotCovered:     http.StatusNotFound,
	"conformance_blocked":       http.StatusUnprocessableEntity,
	"schema_violation":          http.StatusUnprocessableEntity,
	seamless.CodeSLAExceeded:    http.StatusGatewayTimeout,
	seamless.CodeDomainPolicy:   http.StatusConflict,
	seamless.CodeUpstreamFailed: http.StatusBadGateway,
	// A cancelled request is one the server gave up on (shutting down, or its own
	// deadline); the client may retry, so 503 rather than nginx's 499, which no HTTP
	// client knows.
	seamless.CodeCanceled: http.StatusServiceUnavailable,
	seamless.CodeInternal: http.StatusInternalServerError,
	CodeUnauthorized:      http.StatusUnauthorized,
	CodeNotFound:          http.StatusNotFound,
	CodeMethodNotAllowed:  http.StatusMethodNotAllowed,
	CodeNotAcceptable:     http.StatusNotAcceptable,
	CodeTooLarge:          http.StatusRequestEntityTooLarge,
	CodeTooManyRequests:   http.StatusTooManyRequests,
	CodeUnavailable:       http.StatusServiceUnavailable,
	CodeMisdirected:       http.StatusMisdirectedRequest,
}

// Status returns the HTTP status of an error code (500 for codes it does not know).
func Status(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the object inside an error response {"error":{…}}. Code and Message are
// always set; the other fields carry the typed error's details so that the client can
// rebuild the library's error value.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field and Reason: *seamless.RequestError; Reason and Domain:
	// *seamless.SeamlessDomainPolicyError.
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason,omitempty"`
	Domain string `json:"domain,omitempty"`
	// Series of *seamless.NotCoveredError, *seamless.UpstreamError and
	// *seamless.SourceError (node id only).
	NodeID   string `json:"node_id,omitempty"`
	Interval int64  `json:"interval,omitempty"`
	// Source: *seamless.SourceError.
	Source string `json:"source,omitempty"`
	// Missing: *seamless.NotCoveredError.
	Missing []grid.Range `json:"missing,omitempty"`
	// Chunk, Attempts and Cause: *seamless.UpstreamError.
	Chunk    *grid.Range `json:"chunk,omitempty"`
	Attempts int         `json:"attempts,omitempty"`
	Cause    string      `json:"cause,omitempty"`
	// SLAViolation: *seamless.SeamlessSLAExceeded, whose phase, elapsed_ms and
	// budget_ms are also given at the top level.
	SLAViolation *seamless.SLAViolation `json:"sla_violation,omitempty"`
	Phase        string                 `json:"phase,omitempty"`
	ElapsedMS    float64                `json:"elapsed_ms,omitempty"`
	BudgetMS     int64                  `json:"budget_ms,omitempty"`
	// Report and Blocking: *conformance.PipelineError.
	Report   *conformance.Report `json:"report,omitempty"`
	Blocking []string            `json:"blocking,omitempty"`
}

// ErrorDocument is an error response: {"error":{…}}.
type ErrorDocument struct {
	Error ErrorBody `json:"error"`
}

// NewError returns the body of an HTTP-level error (a code of this package).
func NewError(code, format string, args ...any) ErrorBody {
	return ErrorBody{Code: code, Message: fmt.Sprintf(format, args...)}
}

// EncodeError describes a library error: its code (seamless.ErrorCode) and the details
// of its type.
func EncodeError(err error) ErrorBody {
	b := ErrorBody{Code: seamless.ErrorCode(err), Message: err.Error()}
	var (
		re *seamless.RequestError
		se *seamless.SourceError
		nc *seamless.NotCoveredError
		ue *seamless.UpstreamError
		sx *seamless.SeamlessSLAExceeded
		dp *seamless.SeamlessDomainPolicyError
		ce *conformance.PipelineError
	)
	switch {
	case errors.As(err, &re):
		b.Field, b.Reason = re.Field, re.Message
	case errors.As(err, &se):
		b.NodeID, b.Source = se.NodeID, se.Source
	case errors.As(err, &nc):
		b.NodeID, b.Interval, b.Missing = nc.Series.NodeID, nc.Series.Interval, nc.Missing.Ranges()
	case errors.As(err, &ue):
		b.NodeID, b.Interval, b.Chunk, b.Attempts = ue.Series.NodeID, ue.Series.Interval, &ue.Chunk, ue.Attempts
		if ue.Err != nil {
			b.Cause = ue.Err.Error()
		}
	case errors.As(err, &sx):
		b.NodeID, b.SLAViolation = sx.NodeID, &sx.SLAViolation
		b.Phase, b.ElapsedMS, b.BudgetMS = sx.Phase, sx.ElapsedMS, sx.BudgetMS
	case errors.As(err, &ce):
		b.Report, b.Blocking = &ce.Report, ce.Blocking
	case errors.As(err, &dp):
		b.NodeID, b.Domain, b.Reason = dp.NodeID, string(dp.Domain), dp.Reason
	}
	return b
}

// LibraryErr rebuilds the library's typed error from a body: *seamless.RequestError,
// *seamless.SourceError, *seamless.NotCoveredError, *seamless.UpstreamError,
// *seamless.SeamlessSLAExceeded or *seamless.SeamlessDomainPolicyError, matched
// with errors.As and errors.Is exactly as the library's own. It returns nil for codes
// that have no library type (unauthorized, too_many_requests, not_found, internal, …).
func (b ErrorBody) LibraryErr() error {
	s := seamless.Series{NodeID: b.NodeID, Interval: b.Interval}
	switch b.Code {
	case seamless.CodeConformanceBlocked:
		if b.Report != nil {
			return &conformance.PipelineError{Report: *b.Report, Blocking: b.Blocking}
		}
	case seamless.CodeBadRequest:
		if b.Reason == "" {
			return &seamless.RequestError{Field: b.Field, Message: b.Message}
		}
		return &seamless.RequestError{Field: b.Field, Message: b.Reason}
	case seamless.CodeUnknownSource:
		return &seamless.SourceError{NodeID: b.NodeID, Source: b.Source}
	case seamless.CodeNotCovered:
		return &seamless.NotCoveredError{Series: s, Missing: grid.NewSet(b.Missing...)}
	case seamless.CodeUpstreamFailed:
		ue := &seamless.UpstreamError{Series: s, Attempts: b.Attempts, Err: errors.New(b.Cause)}
		if b.Chunk != nil {
			ue.Chunk = *b.Chunk
		}
		return ue
	case seamless.CodeSLAExceeded:
		sx := &seamless.SeamlessSLAExceeded{NodeID: b.NodeID}
		if b.SLAViolation != nil {
			sx.SLAViolation = *b.SLAViolation
		}
		return sx
	case seamless.CodeDomainPolicy:
		return &seamless.SeamlessDomainPolicyError{Domain: seamless.Domain(b.Domain), NodeID: b.NodeID, Reason: b.Reason}
	}
	return nil
}

// ReadError decodes the error response of status from body. A body that is not an
// error document (a proxy's HTML page, say) still gives a body whose code follows the
// status.
func ReadError(status int, body io.Reader) ErrorBody {
	raw, _ := io.ReadAll(io.LimitReader(body, 1<<20))
	var doc ErrorDocument
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Error.Code == "" {
		return ErrorBody{Code: codeOfStatus(status), Message: http.StatusText(status)}
	}
	return doc.Error
}

func codeOfStatus(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusTooManyRequests:
		return CodeTooManyRequests
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	}
	return seamless.CodeInternal
}
