package conformance

import (
	"fmt"
	"slices"
)

// ErrorCode is the stable error code of a blocked response (SPEC §2, HTTP 422).
const ErrorCode = "conformance_blocked"

// Policy decides which findings block a response. The zero Policy blocks nothing.
type Policy struct {
	// Name is the preset name, for logs and metadata.
	Name string
	// Block lists the flags that block.
	Block []string
	// All blocks on every flag and on any warning, as the reference does.
	All bool
}

// Preset names.
const (
	DefaultPreset    = "default"
	StrictPreset     = "strict-blocking"
	PermissivePreset = "permissive-dev"
)

// DefaultPolicy blocks on the findings that mean corrupt data and reports the rest.
func DefaultPolicy() Policy {
	return Policy{Name: DefaultPreset, Block: []string{
		MissingColumn, DtypeMismatch, InvalidTimestamp, NonFinite,
		OHLCInconsistent, NegativeVolume, InvalidEnum,
	}}
}

// StrictPolicy (preset strict-blocking) blocks on every flag and warning.
func StrictPolicy() Policy { return Policy{Name: StrictPreset, All: true} }

// PermissivePolicy (preset permissive-dev) blocks on nothing.
func PermissivePolicy() Policy { return Policy{Name: PermissivePreset} }

// PolicyByName returns the preset of that name; "" is the default.
func PolicyByName(name string) (Policy, error) {
	switch name {
	case "", DefaultPreset:
		return DefaultPolicy(), nil
	case StrictPreset:
		return StrictPolicy(), nil
	case PermissivePreset:
		return PermissivePolicy(), nil
	}
	return Policy{}, fmt.Errorf("unknown conformance policy %q (want %s, %s or %s)", name, DefaultPreset, StrictPreset, PermissivePreset)
}

// warningsFinding stands for a report's warnings in the result of Blocking.
const warningsFinding = "warnings"

// Blocking returns the findings of r that block under p, sorted: flag names, plus
// "warnings" when p.All and r has warnings. Nil means the response may be served.
func (p Policy) Blocking(r Report) []string {
	var out []string
	for _, f := range r.Raised() {
		if r.FlagsCounts[f] > 0 && (p.All || slices.Contains(p.Block, f)) {
			out = append(out, f)
		}
	}
	if p.All && len(r.Warnings) > 0 {
		out = append(out, warningsFinding)
	}
	return out
}

// Check returns a *PipelineError carrying r when r has blocking findings, else nil.
func (p Policy) Check(r Report) error {
	b := p.Blocking(r)
	if b == nil {
		return nil
	}
	return &PipelineError{Report: r, Blocking: b}
}

// PipelineError is the ConformancePipelineError: a response blocked by its findings
// (code conformance_blocked). The report stays available to the caller.
type PipelineError struct {
	Report Report
	// Blocking lists the findings that blocked (see Policy.Blocking).
	Blocking []string
}

// Error uses the reference's message, so that tools matching it keep working.
func (e *PipelineError) Error() string {
	return fmt.Sprintf("conformance pipeline blocked response (warnings=%d, flags=%d)", len(e.Report.Warnings), len(e.Report.FlagsCounts))
}

// Code returns ErrorCode.
func (e *PipelineError) Code() string { return ErrorCode }
