package seamless

import (
	_ "embed"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// OnViolation says what a request does when an SLA budget runs out.
type OnViolation string

// Violation modes of SPEC §4.
const (
	// ViolationFailFast returns *SeamlessSLAExceeded.
	ViolationFailFast OnViolation = "fail_fast"
	// ViolationPartialFill returns what is ready and keeps backfilling in the background.
	ViolationPartialFill OnViolation = "partial_fill"
	// ViolationHold returns the data marked downgrade_mode=hold: do not trade on it.
	ViolationHold OnViolation = "hold"
)

// ParseOnViolation validates an on_violation value.
func ParseOnViolation(s string) (OnViolation, error) {
	switch v := OnViolation(s); v {
	case ViolationFailFast, ViolationPartialFill, ViolationHold:
		return v, nil
	}
	return "", fmt.Errorf("on_violation %q: want fail_fast, partial_fill or hold", s)
}

// UnmarshalText validates the value, so a bad preset fails when it is loaded rather
// than at its first violation (the reference kept it a string and crashed there).
func (v *OnViolation) UnmarshalText(b []byte) error {
	p, err := ParseOnViolation(string(b))
	*v = p
	return err
}

// SLA phases.
const (
	PhaseStorage  = "storage_wait"
	PhaseBackfill = "backfill_wait"
	PhaseLive     = "live_wait"
	PhaseTotal    = "total"
	PhaseSyncGap  = "sync_gap"
)

// SLAPolicy bounds how long a request may wait in each phase and how complete and fresh
// its answer must be. Budgets are milliseconds, enforced as context deadlines and
// cumulative per phase; 0 means no budget.
type SLAPolicy struct {
	MaxWaitStorageMS  int64       `json:"max_wait_storage_ms" yaml:"max_wait_storage_ms"`
	MaxWaitBackfillMS int64       `json:"max_wait_backfill_ms" yaml:"max_wait_backfill_ms"`
	MaxWaitLiveMS     int64       `json:"max_wait_live_ms" yaml:"max_wait_live_ms"`
	TotalDeadlineMS   int64       `json:"total_deadline_ms" yaml:"total_deadline_ms"`
	MaxSyncGapBars    int64       `json:"max_sync_gap_bars" yaml:"max_sync_gap_bars"`
	MinCoverage       float64     `json:"min_coverage" yaml:"min_coverage"`
	MaxLagSeconds     float64     `json:"max_lag_seconds" yaml:"max_lag_seconds"`
	OnViolation       OnViolation `json:"on_violation" yaml:"on_violation"`
}

// MaxBudgetMS is the largest millisecond budget a policy may set (24 h): far past any
// request's life, and small enough that no budget arithmetic can overflow a
// time.Duration (a total_deadline_ms of 2^63-1 would otherwise wrap negative and end
// the request at once).
const MaxBudgetMS = int64(24 * time.Hour / time.Millisecond)

// Validate checks ranges: budgets in [0, MaxBudgetMS], max_sync_gap_bars ≥ 0,
// min_coverage in [0, 1], max_lag ≥ 0, and a known on_violation (empty means
// fail_fast). A budget out of range is a *RequestError naming the field.
func (p SLAPolicy) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max_wait_storage_ms", p.MaxWaitStorageMS}, {"max_wait_backfill_ms", p.MaxWaitBackfillMS},
		{"max_wait_live_ms", p.MaxWaitLiveMS}, {"total_deadline_ms", p.TotalDeadlineMS},
	} {
		if f.v < 0 || f.v > MaxBudgetMS {
			return badRequest(f.name, "must be from 0 to %d ms (24 h), got %d", MaxBudgetMS, f.v)
		}
	}
	if p.MaxSyncGapBars < 0 {
		return badRequest("max_sync_gap_bars", "must be >= 0, got %d", p.MaxSyncGapBars)
	}
	if math.IsNaN(p.MinCoverage) || p.MinCoverage < 0 || p.MinCoverage > 1 {
		return fmt.Errorf("sla: min_coverage must be in [0, 1], got %v", p.MinCoverage)
	}
	if math.IsNaN(p.MaxLagSeconds) || p.MaxLagSeconds < 0 {
		return fmt.Errorf("sla: max_lag_seconds must be >= 0, got %v", p.MaxLagSeconds)
	}
	if p.OnViolation != "" {
		if _, err := ParseOnViolation(string(p.OnViolation)); err != nil {
			return fmt.Errorf("sla: %w", err)
		}
	}
	return nil
}

func (p SLAPolicy) mode() OnViolation {
	if p.OnViolation == "" {
		return ViolationFailFast
	}
	return p.OnViolation
}

//go:embed presets.yaml
var presetsYAML []byte

var slaPresets = mustLoadPresets(presetsYAML)

func mustLoadPresets(b []byte) map[string]SLAPolicy {
	var doc struct {
		SLA map[string]SLAPolicy `yaml:"sla"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		panic("seamless: embedded presets.yaml: " + err.Error())
	}
	for name, p := range doc.SLA {
		if err := p.Validate(); err != nil {
			panic("seamless: embedded preset " + name + ": " + err.Error())
		}
	}
	return doc.SLA
}

// SLAPreset returns a named SLA preset (baseline, tolerant-partial).
func SLAPreset(name string) (SLAPolicy, error) {
	p, ok := slaPresets[name]
	if !ok {
		return SLAPolicy{}, badRequest("sla", "unknown SLA preset %q (want one of %s, or none)", name, strings.Join(SLAPresetNames(), ", "))
	}
	return p, nil
}

// SLAPresetNames lists the SLA presets, sorted.
func SLAPresetNames() []string {
	names := make([]string, 0, len(slaPresets))
	for n := range slaPresets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SLAViolation is the first budget a request exceeded.
type SLAViolation struct {
	Phase     string  `json:"phase"`
	ElapsedMS float64 `json:"elapsed_ms"`
	BudgetMS  int64   `json:"budget_ms"`
	// For the sync_gap phase the budget is in bars, not milliseconds.
	MissingBars int64 `json:"missing_bars,omitempty"`
	BudgetBars  int64 `json:"budget_bars,omitempty"`
}

// SeamlessSLAExceeded is returned when a phase budget runs out under on_violation
// fail_fast (code sla_exceeded).
type SeamlessSLAExceeded struct {
	NodeID string
	SLAViolation
}

func (e *SeamlessSLAExceeded) Error() string {
	if e.Phase == PhaseSyncGap {
		return fmt.Sprintf("SLA phase '%s' exceeded for node %s: missing=%d bars budget=%d bars", e.Phase, e.NodeID, e.MissingBars, e.BudgetBars)
	}
	return fmt.Sprintf("SLA phase '%s' exceeded for node %s: elapsed=%.1fms budget=%dms", e.Phase, e.NodeID, e.ElapsedMS, e.BudgetMS)
}

// Downgrade reasons.
const (
	ReasonSLAViolation   = "sla_violation"
	ReasonCoverageBreach = "coverage_breach"
	ReasonFreshness      = "freshness_breach"
	ReasonAsOfRegression = "as_of_regression"
)

// decision is one downgrade verdict; a request may collect several.
type decision struct {
	mode   OnViolation
	reason string
}

// merge picks the final downgrade: hold outranks partial_fill, and among decisions of
// the winning mode the first recorded gives the reason (violation, then coverage, then
// freshness, as in the reference).
func merge(ds []decision) (decision, bool) {
	if len(ds) == 0 {
		return decision{}, false
	}
	if i := slices.IndexFunc(ds, func(d decision) bool { return d.mode == ViolationHold }); i >= 0 {
		return ds[i], true
	}
	return ds[0], true
}
