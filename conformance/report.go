package conformance

import (
	"maps"
	"math"
	"slices"
)

// Flag names: the stable contract of SPEC §3 (see the package documentation for what
// each counts).
const (
	MissingColumn        = "missing_column"
	DtypeCast            = "dtype_cast"
	DtypeMismatch        = "dtype_mismatch"
	InvalidEnum          = "invalid_enum"
	NonFinite            = "non_finite"
	TSCast               = "ts_cast"
	TSTimezoneNormalized = "ts_timezone_normalized"
	InvalidTimestamp     = "invalid_timestamp"
	OutOfRangeTS         = "out_of_range_ts"
	MisalignedTS         = "misaligned_ts"
	UnsortedTS           = "unsorted_ts"
	DuplicateTS          = "duplicate_ts"
	Gap                  = "gap"
	KnownGap             = "known_gap"
	OHLCInconsistent     = "ohlc_inconsistent"
	NegativeVolume       = "negative_volume"
	NonPositivePrice     = "non_positive_price"
	NonPositiveSize      = "non_positive_size"
	CrossedQuote         = "crossed_quote"
	WideSpread           = "wide_spread"
)

// Flags lists every flag name in pipeline order.
func Flags() []string { return slices.Clone(flagNames[:]) }

// flag indexes the per-run counters; its order is flagNames'.
type flag uint8

const (
	fMissingColumn flag = iota
	fDtypeCast
	fDtypeMismatch
	fInvalidEnum
	fNonFinite
	fTSCast
	fTSTimezoneNormalized
	fInvalidTimestamp
	fOutOfRangeTS
	fMisalignedTS
	fUnsortedTS
	fDuplicateTS
	fGap
	fKnownGap
	fOHLCInconsistent
	fNegativeVolume
	fNonPositivePrice
	fNonPositiveSize
	fCrossedQuote
	fWideSpread
	numFlags
)

var flagNames = [numFlags]string{
	MissingColumn, DtypeCast, DtypeMismatch, InvalidEnum, NonFinite,
	TSCast, TSTimezoneNormalized, InvalidTimestamp, OutOfRangeTS, MisalignedTS,
	UnsortedTS, DuplicateTS, Gap, KnownGap,
	OHLCInconsistent, NegativeVolume, NonPositivePrice, NonPositiveSize, CrossedQuote, WideSpread,
}

// MaxSamples is the number of offending ts a Report keeps per flag.
const MaxSamples = 5

// Report is a ConformanceReport: human-readable warnings, a count per raised flag and a
// few offending ts per flag. A flag that was not raised is absent (never 0).
type Report struct {
	Warnings    []string           `json:"warnings"`
	FlagsCounts map[string]int     `json:"flags_counts"`
	Samples     map[string][]int64 `json:"samples"`
}

// Empty returns a report with no findings whose fields are non-nil, so that it
// serialises as {"warnings":[],"flags_counts":{},"samples":{}}.
func Empty() Report {
	return Report{Warnings: []string{}, FlagsCounts: map[string]int{}, Samples: map[string][]int64{}}
}

// Clean reports whether r has neither warnings nor flags.
func (r Report) Clean() bool { return len(r.Warnings) == 0 && len(r.FlagsCounts) == 0 }

// Raised returns the names of the flags in r, sorted.
func (r Report) Raised() []string { return slices.Sorted(maps.Keys(r.FlagsCounts)) }

// Merge combines reports, e.g. those of the chunks of one response: warnings are
// concatenated, counts added (saturating) and samples united, keeping the first
// MaxSamples distinct ts per flag in argument order. The arguments are not modified.
func Merge(rs ...Report) Report {
	out := Empty()
	for _, r := range rs {
		out.Warnings = append(out.Warnings, r.Warnings...)
		for f, n := range r.FlagsCounts {
			if n > 0 {
				out.FlagsCounts[f] = addSat(out.FlagsCounts[f], n)
			}
		}
		for _, f := range slices.Sorted(maps.Keys(r.Samples)) {
			for _, ts := range r.Samples[f] {
				s := out.Samples[f]
				if len(s) < MaxSamples && !slices.Contains(s, ts) {
					out.Samples[f] = append(s, ts)
				}
			}
		}
	}
	return out
}

// addSat adds two non-negative counts, saturating at math.MaxInt.
func addSat(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

// counter accumulates one flag during a run.
type counter struct {
	n       int
	samples []int64
}

// collector gathers a run's findings in fixed slots, cheaper than map updates in the
// per-row loops, and renders them as a Report at the end.
type collector struct {
	c        [numFlags]counter
	warnings []string
}

// hit records one offending row (or value) with its ts.
func (c *collector) hit(f flag, ts int64) { c.add(f, 1, ts) }

// add records n findings of f, sampling ts.
func (c *collector) add(f flag, n int, ts int64) {
	c.c[f].n = addSat(c.c[f].n, n)
	c.sample(f, ts)
}

// sample records ts for f without counting (the count is kept elsewhere).
func (c *collector) sample(f flag, ts int64) {
	if k := &c.c[f]; len(k.samples) < MaxSamples {
		k.samples = append(k.samples, ts)
	}
}

// count records n findings of f without a sample (column-level flags).
func (c *collector) count(f flag, n int) { c.c[f].n = addSat(c.c[f].n, n) }

func (c *collector) warn(msg string) { c.warnings = append(c.warnings, msg) }

func (c *collector) report() Report {
	r := Empty()
	r.Warnings = append(r.Warnings, c.warnings...)
	for f := range numFlags {
		k := c.c[f]
		if k.n == 0 {
			continue
		}
		r.FlagsCounts[flagNames[f]] = k.n
		if len(k.samples) > 0 {
			r.Samples[flagNames[f]] = k.samples
		}
	}
	return r
}
