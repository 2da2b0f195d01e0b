package schemaregistry

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/seamless-data/seamless/frame"
)

// Result is the outcome of one validation.
type Result struct {
	Subject  string `json:"subject"`
	SchemaID int64  `json:"schema_id"`
	Version  int    `json:"schema_version"`
	Mode     Mode   `json:"mode"`
	// Violations lists each deviation from the approved schema; empty when the payload
	// conforms.
	Violations []string `json:"violations"`
}

// OK reports whether the payload conformed.
func (r Result) OK() bool { return len(r.Violations) == 0 }

// maxEnumSamples bounds the offending values quoted per column.
const maxEnumSamples = 3

// Validate checks a payload against the subject's approved schema (its latest version):
// every required column present, every column of its declared type, no column the
// schema lacks, and string values inside their enumerations. A failure is counted
// (Options.OnValidationFailure, and the statistics that gate promotion); in canary
// mode Validate then returns the Result with a nil error, in strict mode the Result
// with a *ViolationError (code schema_violation). A subject without versions is a
// *NotFoundError.
func (r *Registry) Validate(ctx context.Context, subjectName string, f *frame.Frame) (Result, error) {
	return r.validate(ctx, subjectName, f.Schema(), f)
}

// ValidateSchema is Validate for the observed columns alone, without values (so
// enumerations are not checked).
func (r *Registry) ValidateSchema(ctx context.Context, subjectName string, observed frame.Schema) (Result, error) {
	return r.validate(ctx, subjectName, observed, nil)
}

func (r *Registry) validate(ctx context.Context, subjectName string, observed frame.Schema, f *frame.Frame) (Result, error) {
	a, err := r.approved(ctx, subjectName)
	if err != nil {
		return Result{}, err
	}
	res := Result{Subject: subjectName, SchemaID: a.id, Version: a.version, Mode: a.mode, Violations: Violations(a.schema, observed, f)}
	r.count(ctx, subjectName, a.mode, !res.OK())
	if !res.OK() && a.mode == Strict {
		return res, &ViolationError{Result: res}
	}
	return res, nil
}

// Violations lists how observed columns (and, when f is non-nil, its string values)
// deviate from s. It is the check Validate applies.
func Violations(s Schema, observed frame.Schema, f *frame.Frame) []string {
	out := []string{}
	for _, fd := range s.Fields {
		if fd.Name == "ts" { // frames always carry ts, as int64 epoch seconds
			continue
		}
		i := observed.Index(fd.Name)
		if i < 0 {
			if !fd.Optional {
				out = append(out, fmt.Sprintf("missing required column %q (%s)", fd.Name, fd.Dtype))
			}
			continue
		}
		if got := observed.Fields[i].Type; got != fd.Dtype.frameType() {
			out = append(out, fmt.Sprintf("column %q is %v, the schema says %s", fd.Name, got, fd.Dtype))
			continue
		}
		if fd.Enum == nil || f == nil {
			continue
		}
		col := f.Col(fd.Name)
		if col == nil {
			continue
		}
		var bad int
		var samples []string
		for _, v := range col.Str {
			if v == "" { // a missing value, as the conformance pipeline treats it
				continue
			}
			if _, ok := slices.BinarySearch(fd.Enum, v); !ok {
				bad++
				if len(samples) < maxEnumSamples && !slices.Contains(samples, v) {
					samples = append(samples, v)
				}
			}
		}
		if bad > 0 {
			out = append(out, fmt.Sprintf("column %q has %d value(s) outside the enumeration %v, e.g. %q", fd.Name, bad, fd.Enum, samples))
		}
	}
	for _, fd := range observed.Fields {
		if _, ok := s.Field(fd.Name); !ok {
			out = append(out, fmt.Sprintf("unexpected column %q (%v): not in the schema", fd.Name, fd.Type))
		}
	}
	return out
}

// approvedSchema is what Validate checks against.
type approvedSchema struct {
	id      int64
	version int
	schema  Schema
	mode    Mode
}

// approved returns the subject's latest version and mode, catching up with the log at
// most every RefreshInterval. A store error while catching up is logged and the
// known state used: validation must not fail because the store is briefly away.
func (r *Registry) approved(ctx context.Context, subjectName string) (approvedSchema, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.opts.Clock.Now().Sub(r.lastRefresh) >= r.opts.RefreshInterval {
		if err := r.catchUp(ctx); err != nil {
			r.opts.Logger.Warn("schemaregistry.refresh_failed", "subject", subjectName, "error", err)
		}
	}
	sub := r.st.subjects[subjectName]
	if sub == nil || len(sub.versions) == 0 {
		return approvedSchema{}, &NotFoundError{Subject: subjectName}
	}
	id := sub.versions[len(sub.versions)-1]
	return approvedSchema{id: id, version: len(sub.versions), schema: r.st.schemas[id-1], mode: sub.mode}, nil
}

// then returns the delta of d followed by n.
func (d StatsDelta) then(n StatsDelta) StatsDelta {
	out := StatsDelta{
		Validations:    d.Validations + n.Validations,
		Failures:       d.Failures + n.Failures,
		LastFailure:    d.LastFailure,
		CleanAfter:     d.CleanAfter + n.Validations,
		LastValidation: d.LastValidation,
	}
	if n.Failures > 0 {
		out.LastFailure, out.CleanAfter = n.LastFailure, n.CleanAfter
	}
	if n.LastValidation.After(out.LastValidation) {
		out.LastValidation = n.LastValidation
	}
	return out
}

// count records one validation and flushes the subject's statistics when they are due.
func (r *Registry) count(ctx context.Context, subjectName string, mode Mode, failed bool) {
	if failed && r.opts.OnValidationFailure != nil {
		r.opts.OnValidationFailure(subjectName, mode)
	}
	now := r.now()
	one := StatsDelta{Validations: 1, CleanAfter: 1, LastValidation: now}
	if failed {
		one = StatsDelta{Validations: 1, Failures: 1, LastFailure: now, LastValidation: now}
	}
	r.statsMu.Lock()
	p := r.pending[subjectName]
	if p == nil {
		p = &pendingStats{}
		r.pending[subjectName] = p
	}
	p.d = p.d.then(one)
	if now.Sub(p.lastFlush) < r.opts.FlushInterval {
		r.statsMu.Unlock()
		return
	}
	d := p.d
	p.d, p.lastFlush = StatsDelta{}, now
	r.statsMu.Unlock()
	if err := r.store.AddStats(ctx, subjectName, d); err != nil {
		r.opts.Logger.Warn("schemaregistry.stats_flush_failed", "subject", subjectName, "error", err)
		r.requeue(subjectName, d)
	}
}

// requeue puts back a delta whose flush failed, before what arrived since.
func (r *Registry) requeue(subjectName string, d StatsDelta) {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	p := r.pending[subjectName]
	p.d = d.then(p.d)
}

// flush writes the pending statistics of one subject ("" for all).
func (r *Registry) flush(ctx context.Context, subjectName string) error {
	r.statsMu.Lock()
	now := r.now()
	deltas := map[string]StatsDelta{}
	for name, p := range r.pending {
		if (subjectName == "" || name == subjectName) && !p.d.empty() {
			deltas[name] = p.d
			p.d, p.lastFlush = StatsDelta{}, now
		}
	}
	r.statsMu.Unlock()
	var firstErr error
	for name, d := range deltas {
		if err := r.store.AddStats(ctx, name, d); err != nil {
			r.requeue(name, d)
			if firstErr == nil {
				firstErr = fmt.Errorf("schemaregistry: flushing statistics of %q: %w", name, err)
			}
		}
	}
	return firstErr
}

// Status is a subject's mode and canary evidence.
type Status struct {
	Subject       string    `json:"subject"`
	Mode          Mode      `json:"mode"`
	Since         time.Time `json:"since"`
	SchemaID      int64     `json:"schema_id"`
	Version       int       `json:"schema_version"`
	Compatibility Level     `json:"compatibility"`
	Stats         Stats     `json:"stats"`
	// CleanSeconds is how long the subject has run without a validation failure since
	// it entered its mode (or since the last failure, if later).
	CleanSeconds  int64 `json:"clean_seconds"`
	WindowSeconds int64 `json:"window_seconds"`
	// Eligible reports whether Promote would succeed without force now; EligibleAt is
	// the earliest time it can, traffic permitting.
	Eligible   bool      `json:"eligible"`
	EligibleAt time.Time `json:"eligible_at"`
	// Blocker says why a canary subject is not eligible; empty when it is.
	Blocker string `json:"blocker,omitempty"`
}

// Status returns the subject's mode and its canary evidence.
func (r *Registry) Status(ctx context.Context, subjectName string) (Status, error) {
	if err := r.flush(ctx, subjectName); err != nil {
		return Status{}, err
	}
	var out Status
	err := r.read(ctx, func(st *state) error {
		var err error
		out, err = r.status(ctx, st, subjectName, r.now())
		return err
	})
	return out, err
}

// status computes Status from the state. r.mu must be held.
func (r *Registry) status(ctx context.Context, st *state, subjectName string, now time.Time) (Status, error) {
	sub := st.subjects[subjectName]
	if sub == nil || len(sub.versions) == 0 {
		return Status{}, &NotFoundError{Subject: subjectName}
	}
	stats, err := r.store.Stats(ctx, subjectName)
	if err != nil {
		return Status{}, fmt.Errorf("schemaregistry: statistics of %q: %w", subjectName, err)
	}
	start := sub.modeSince
	if stats.LastFailure.After(start) {
		start = stats.LastFailure
	}
	out := Status{
		Subject: subjectName, Mode: sub.mode, Since: sub.modeSince,
		SchemaID: sub.versions[len(sub.versions)-1], Version: len(sub.versions),
		Compatibility: st.level(subjectName, r.opts.DefaultCompatibility),
		Stats:         stats, CleanSeconds: int64(now.Sub(start) / time.Second),
		WindowSeconds: int64(r.opts.CanaryWindow / time.Second),
		EligibleAt:    start.Add(r.opts.CanaryWindow),
	}
	switch {
	case sub.mode != Canary:
		out.Blocker = fmt.Sprintf("the subject is %s, not canary", sub.mode)
	case now.Before(out.EligibleAt):
		why := "entered canary"
		if start.Equal(stats.LastFailure) {
			why = "last validation failure"
		}
		out.Blocker = fmt.Sprintf("clean for %s since the %s at %s; the canary window is %s (eligible at %s)",
			now.Sub(start).Truncate(time.Second), why, start.Format(time.RFC3339), r.opts.CanaryWindow, out.EligibleAt.Format(time.RFC3339))
	case stats.CleanValidations < r.opts.MinCanaryValidations:
		out.Blocker = fmt.Sprintf("%d clean validation(s) since the last failure, need %d: no traffic to judge the canary by",
			stats.CleanValidations, r.opts.MinCanaryValidations)
	default:
		out.Eligible = true
	}
	return out, nil
}

// PromoteRequest asks for a mode change.
type PromoteRequest struct {
	// Force promotes inside the canary window (or without traffic); it needs a Reason.
	Force  bool   `json:"force"`
	Reason string `json:"reason"`
	// Bundle is the fingerprint of the schema bundle being promoted (BundleDir computes
	// it), recorded in the audit trail.
	Bundle string `json:"bundle_fingerprint,omitempty"`
}

// checkBundle accepts an absent bundle fingerprint or one of the form BundleDir
// computes ("sha256:" and 64 lower-case hex digits), so that the audit trail never
// records a hand-typed fingerprint that identifies nothing.
func (req PromoteRequest) checkBundle() error {
	b := req.Bundle
	if b == "" {
		return nil
	}
	hexDigits, ok := strings.CutPrefix(b, "sha256:")
	if !ok || len(hexDigits) != 64 || strings.Trim(hexDigits, "0123456789abcdef") != "" {
		return &RequestError{Message: fmt.Sprintf("bundle fingerprint %q: want sha256: and 64 lower-case hex digits, as `seamless schema bundle` prints", b)}
	}
	return nil
}

// Promote moves a subject from canary to strict: allowed once it has run clean for
// Options.CanaryWindow with at least Options.MinCanaryValidations clean validations
// (Status says when), or at once when forced with a reason. Refusals are
// *PromotionError. The audit record carries the actor, the reason, whether it was
// forced, the bundle fingerprint and how long the canary had run clean.
func (r *Registry) Promote(ctx context.Context, subjectName string, req PromoteRequest) (*Record, error) {
	if err := req.checkBundle(); err != nil {
		return nil, err
	}
	if req.Force && req.Reason == "" {
		return nil, &RequestError{Message: "a forced promotion needs a reason"}
	}
	if err := r.flush(ctx, subjectName); err != nil {
		return nil, err
	}
	return r.mutate(ctx, func(st *state, now time.Time) (*Record, error) {
		s, err := r.status(ctx, st, subjectName, now)
		if err != nil {
			return nil, err
		}
		if s.Mode == Strict {
			return nil, &PromotionError{Subject: subjectName, Reason: "the subject is already strict"}
		}
		if !s.Eligible && !req.Force {
			return nil, &PromotionError{Subject: subjectName, Reason: s.Blocker + "; force it with a reason to promote anyway"}
		}
		return &Record{Action: ActionPromote, Subject: subjectName, Mode: Strict, Forced: !s.Eligible, Reason: req.Reason,
			Bundle: req.Bundle, CleanSeconds: s.CleanSeconds}, nil
	})
}

// Demote moves a subject from strict back to canary. It always needs a reason: it
// lowers the subject's protection. The canary window then starts again.
func (r *Registry) Demote(ctx context.Context, subjectName string, req PromoteRequest) (*Record, error) {
	if err := req.checkBundle(); err != nil {
		return nil, err
	}
	if req.Reason == "" {
		return nil, &RequestError{Message: "a demotion needs a reason"}
	}
	return r.mutate(ctx, func(st *state, _ time.Time) (*Record, error) {
		sub := st.subjects[subjectName]
		if sub == nil || len(sub.versions) == 0 {
			return nil, &NotFoundError{Subject: subjectName}
		}
		if sub.mode == Canary {
			return nil, &PromotionError{Subject: subjectName, Reason: "the subject is already canary"}
		}
		return &Record{Action: ActionDemote, Subject: subjectName, Mode: Canary, Forced: req.Force, Reason: req.Reason, Bundle: req.Bundle}, nil
	})
}

// SetMode is Promote for Strict and Demote for Canary.
func (r *Registry) SetMode(ctx context.Context, subjectName string, mode Mode, req PromoteRequest) (*Record, error) {
	mode, err := ParseMode(string(mode))
	if err != nil {
		return nil, err
	}
	if mode == Strict {
		return r.Promote(ctx, subjectName, req)
	}
	return r.Demote(ctx, subjectName, req)
}
