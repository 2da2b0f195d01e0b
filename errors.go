package seamless

import (
	"context"
	"errors"
	"fmt"

	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/grid"
)

// Error codes: the stable strings of SPEC §2, carried in JSON errors and CLI output.
const (
	CodeBadRequest     = "bad_request"
	CodeUnknownSource  = "unknown_source"
	CodeNotCovered     = "not_covered"
	CodeUpstreamFailed = "upstream_failed"
	CodeSLAExceeded    = "sla_exceeded"
	CodeDomainPolicy   = "domain_policy"
	// CodeConformanceBlocked is conformance.ErrorCode.
	CodeConformanceBlocked = conformance.ErrorCode
	CodeInternal           = "internal"
	CodeCanceled           = "canceled"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNotCovered: a fail_fast request found missing ranges and partial_ok was off.
	ErrNotCovered = errors.New("range not covered")
	// ErrUnknownSource: no fetcher routes the node id.
	ErrUnknownSource = errors.New("unknown source")
	// ErrLeaseHeld: another worker holds the lease.
	ErrLeaseHeld = errors.New("lease held elsewhere")
	// ErrLeaseLost: the lease expired or was taken over before it was renewed or ended.
	ErrLeaseLost = errors.New("lease lost")
	// ErrClosed: the provider or store was closed.
	ErrClosed = errors.New("closed")
)

// RequestError reports a malformed request (code bad_request). Field names the request
// field at fault.
type RequestError struct {
	Field   string
	Message string
}

func (e *RequestError) Error() string {
	if e.Field == "" {
		return "bad request: " + e.Message
	}
	return fmt.Sprintf("bad request: %s: %s", e.Field, e.Message)
}

func badRequest(field, format string, args ...any) error {
	return &RequestError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// SourceError reports a node id no fetcher serves (code unknown_source).
type SourceError struct {
	NodeID string
	Source string
}

func (e *SourceError) Error() string {
	return fmt.Sprintf("unknown source %q for node %s", e.Source, e.NodeID)
}

// Unwrap makes errors.Is(err, ErrUnknownSource) true.
func (e *SourceError) Unwrap() error { return ErrUnknownSource }

// NotCoveredError lists what a fail_fast request lacked (code not_covered).
type NotCoveredError struct {
	Series  Series
	Missing grid.Set
}

func (e *NotCoveredError) Error() string {
	return fmt.Sprintf("%s: range not covered, missing %v (use strategy auto_backfill or seamless to backfill, or partial_ok)", e.Series, e.Missing)
}

// Unwrap makes errors.Is(err, ErrNotCovered) true.
func (e *NotCoveredError) Unwrap() error { return ErrNotCovered }

// UpstreamError reports a backfill chunk that failed after all retries (code
// upstream_failed).
type UpstreamError struct {
	Series   Series
	Chunk    grid.Range
	Attempts int
	Err      error
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("%s: backfill of %v failed after %d attempt(s): %v", e.Series, e.Chunk, e.Attempts, e.Err)
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// WriteError reports a store write that breaks the Store contract; nothing was written.
type WriteError struct {
	Series Series
	Range  grid.Range
	Reason string
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("store write %s %v rejected: %s", e.Series, e.Range, e.Reason)
}

// permanentError marks a fetch error that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (e.g. the upstream rejected the request as
// malformed). The backfill tier gives up on the chunk at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// ErrorCode maps an error to its stable code of SPEC §2.
func ErrorCode(err error) string {
	var re *RequestError
	var ue *UpstreamError
	var se *SeamlessSLAExceeded
	var de *SeamlessDomainPolicyError
	var ce *conformance.PipelineError
	var coded interface{ Code() string }
	switch {
	case err == nil:
		return ""
	case errors.As(err, &re):
		return CodeBadRequest
	case errors.Is(err, ErrUnknownSource):
		return CodeUnknownSource
	case errors.Is(err, ErrNotCovered):
		return CodeNotCovered
	case errors.As(err, &se):
		return CodeSLAExceeded
	case errors.As(err, &de):
		return CodeDomainPolicy
	case errors.As(err, &ce):
		return CodeConformanceBlocked
	case errors.As(err, &ue):
		return CodeUpstreamFailed
	case errors.As(err, &coded):
		// Extension errors (e.g. the schema registry's schema_violation) name their code.
		return coded.Code()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrClosed):
		return CodeCanceled
	}
	return CodeInternal
}

// The reference's names for the conformance pipeline's error and report (SPEC §3), so
// code ported from it reads the same.
type (
	ConformancePipelineError = conformance.PipelineError
	ConformanceReport        = conformance.Report
)
