package schemaregistry

import (
	"errors"
	"fmt"
	"strings"
)

// Stable error codes. ErrorCode maps an error to one; the HTTP API sends it as
// {"error":{"code"}}.
const (
	CodeBadRequest       = "bad_request"
	CodeInvalidSchema    = "invalid_schema"
	CodeIncompatible     = "incompatible_schema"
	CodeSchemaViolation  = "schema_violation"
	CodePromotionRefused = "promotion_refused"
	CodeNotFound         = "not_found"
	CodeAuditTampered    = "audit_tampered"
	CodeInternal         = "internal"
)

// ErrNotFound matches every *NotFoundError.
var ErrNotFound = errors.New("not found")

// ErrConflict is what a Store's Append returns when the record's sequence number is
// not the next one: another writer appended first. The registry catches up and
// retries.
var ErrConflict = errors.New("schemaregistry: append conflict")

// NotFoundError names what is missing: a subject, one of its versions, or a schema id.
type NotFoundError struct {
	Subject string
	Version int   // 0 unless a version of Subject is missing
	ID      int64 // 0 unless a schema id is missing
}

func (e *NotFoundError) Error() string {
	switch {
	case e.ID != 0:
		return fmt.Sprintf("schema id %d not found", e.ID)
	case e.Version != 0:
		return fmt.Sprintf("subject %q has no version %d", e.Subject, e.Version)
	}
	return fmt.Sprintf("subject %q not found", e.Subject)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Code is "not_found".
func (e *NotFoundError) Code() string { return CodeNotFound }

// RequestError is a malformed argument: an invalid subject name, level, mode or version.
type RequestError struct {
	Message string
}

func (e *RequestError) Error() string { return "bad request: " + e.Message }

// Code is "bad_request".
func (e *RequestError) Code() string { return CodeBadRequest }

// IncompatibleError rejects a registration that breaks the subject's compatibility
// level; Reasons lists every incompatibility found.
type IncompatibleError struct {
	Subject string
	Level   Level
	Latest  int // the subject's latest version
	Reasons []string
}

func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("Schema update rejected: incompatible with previous version %d (subject %q, %s): %s",
		e.Latest, e.Subject, e.Level, strings.Join(e.Reasons, "; "))
}

// Code is "incompatible_schema".
func (e *IncompatibleError) Code() string { return CodeIncompatible }

// ViolationError is a strict subject's rejection of a payload that deviates from its
// approved schema.
type ViolationError struct {
	Result Result
}

func (e *ViolationError) Error() string {
	r := e.Result
	return fmt.Sprintf("schema_violation: payload for subject %q deviates from schema id %d (version %d): %s",
		r.Subject, r.SchemaID, r.Version, strings.Join(r.Violations, "; "))
}

// Code is "schema_violation".
func (e *ViolationError) Code() string { return CodeSchemaViolation }

// PromotionError refuses a promotion (or demotion) the rules do not allow yet.
type PromotionError struct {
	Subject string
	Reason  string
}

func (e *PromotionError) Error() string {
	return fmt.Sprintf("promotion of subject %q refused: %s", e.Subject, e.Reason)
}

// Code is "promotion_refused".
func (e *PromotionError) Code() string { return CodePromotionRefused }

// ChainError is a broken audit chain: the record at Seq was edited, removed or
// inserted.
type ChainError struct {
	Seq    int64
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at record %d: %s", e.Seq, e.Reason)
}

// Code is "audit_tampered".
func (e *ChainError) Code() string { return CodeAuditTampered }

// ErrorCode maps an error to its stable code; errors without one are "internal".
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var c interface{ Code() string }
	if errors.As(err, &c) {
		return c.Code()
	}
	return CodeInternal
}
