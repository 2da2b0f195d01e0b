package seamless

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// Strategy is the DataAvailabilityStrategy of a request (string values as in the
// reference).
type Strategy string

// DataAvailabilityStrategy is the reference's name for Strategy.
type DataAvailabilityStrategy = Strategy

// Strategies of SPEC §2.
const (
	// Seamless (the default) serves covered parts from storage and backfills the rest
	// synchronously.
	Seamless Strategy = "seamless"
	// FailFast serves only what is stored; missing data is ErrNotCovered unless PartialOK.
	FailFast Strategy = "fail_fast"
	// AutoBackfill backfills every missing chunk synchronously, then serves.
	AutoBackfill Strategy = "auto_backfill"
	// PartialFill serves what is stored now and backfills the rest in the background.
	PartialFill Strategy = "partial_fill"
)

// ParseStrategy validates a strategy name; "" means Seamless.
func ParseStrategy(s string) (Strategy, error) {
	switch st := Strategy(s); st {
	case "":
		return Seamless, nil
	case Seamless, FailFast, AutoBackfill, PartialFill:
		return st, nil
	}
	return "", badRequest("strategy", "unknown strategy %q (want seamless, fail_fast, auto_backfill or partial_fill)", s)
}

// Request asks for the bars of one node and interval in [Start, End).
type Request struct {
	NodeID   string
	Interval int64
	// Start and End are epoch seconds; the request means the grid points inside them.
	Start, End int64
	// Strategy defaults to Seamless.
	Strategy Strategy
	// PartialOK returns what is available instead of an error when data is missing.
	PartialOK bool
	// SLA bounds the request's phases (nil: no budgets).
	SLA *SLAPolicy
	// MinCoverage and MaxLagSeconds, when > 0, override the SLA policy's values.
	MinCoverage   float64
	MaxLagSeconds float64
	// WorldID and ExecutionDomain place the request in a world and domain (SPEC §5).
	WorldID         string
	ExecutionDomain string
	// Conformance names the conformance preset deciding which findings block:
	// "" or "default", "strict-blocking", "permissive-dev".
	Conformance string
	// IncludeForming appends the bar still forming (from the live tier) when the
	// request reaches it; metadata.forming says whether it did. Forming bars are never
	// stored.
	IncludeForming bool
	// Fingerprint asks for dataset_fingerprint in the metadata (always computed for
	// backtest and dryrun, whose responses are published as artifacts).
	Fingerprint bool
	// AsOf is the instant the caller's view of the data is fixed at (zero: now).
	// backtest and dryrun require it; live and shadow require it never to go back.
	AsOf time.Time
}

// Range is the request's [Start, End).
func (r Request) Range() grid.Range { return grid.R(r.Start, r.End) }

func (r Request) String() string {
	return fmt.Sprintf("%s@%ds %v", r.NodeID, r.Interval, r.Range())
}

// Result is a Fetch answer: bars sorted and unique by ts, on the grid, inside the
// requested range, with metadata.
type Result struct {
	Frame    *frame.Frame
	Metadata Metadata

	release *releaser // the pooled memory of Frame, if any
}

// Release hands the memory of r.Frame back to the provider for reuse by later
// fetches. It is optional (without it the memory is garbage collected) and is meant
// for servers that write a frame out and drop it: neither r.Frame nor anything
// sharing its memory (its slices, Arrow records made from it) may be used after it.
// Calls after the first, on r or its copies, do nothing; results not made by a
// Provider have nothing to release.
func (r Result) Release() { r.release.do() }

// releaser returns a pooled frame to its pool once.
type releaser struct {
	done  atomic.Bool
	pool  *frame.Pool
	frame *frame.Frame
}

func (r *releaser) do() {
	if r != nil && r.done.CompareAndSwap(false, true) {
		r.pool.Put(r.frame)
	}
}

// Metadata describes a Result (SPEC §2). JSON names are the contract shared by the
// library, the CLI and the HTTP API. Every key SPEC §2 lists is always present in the
// JSON (see MarshalJSON): a value a stage did not produce (no fingerprint asked for, no
// downgrade, no as_of) is null.
type Metadata struct {
	NodeID         string    `json:"node_id"`
	Interval       int64     `json:"interval"`
	RequestedRange [2]int64  `json:"requested_range"`
	Strategy       Strategy  `json:"strategy"`
	Rows           int       `json:"rows"`
	CoverageBounds *[2]int64 `json:"coverage_bounds"`
	// CoverageRatio is covered closed grid bars of the request over all its closed grid
	// bars (1 when the request holds none). Covered market gaps count as present.
	CoverageRatio float64      `json:"coverage_ratio"`
	StalenessMS   *int64       `json:"staleness_ms"`
	Sources       TierCounts   `json:"sources"`
	Backfill      BackfillInfo `json:"backfill"`

	// ConformanceFlags and ConformanceWarnings are null when the pipeline did not run
	// (an empty response).
	ConformanceFlags    map[string]int `json:"conformance_flags"`
	ConformanceWarnings []string       `json:"conformance_warnings"`
	ConformanceVersion  string         `json:"conformance_version,omitempty"`
	DatasetFingerprint  string         `json:"dataset_fingerprint,omitempty"`
	// SchemaID and SchemaVersion name the registry schema the response was validated
	// against (absent when the node has none).
	SchemaID      int64  `json:"schema_id,omitempty"`
	SchemaVersion int    `json:"schema_version,omitempty"`
	ManifestURI   string `json:"manifest_uri,omitempty"`

	// Forming is true when the last bar is still forming (include_forming).
	Forming bool `json:"forming,omitempty"`

	Downgraded      bool          `json:"downgraded"`
	DowngradeMode   OnViolation   `json:"downgrade_mode,omitempty"`
	DowngradeReason string        `json:"downgrade_reason,omitempty"`
	SLAViolation    *SLAViolation `json:"sla_violation"`
	// SLAPhases holds each phase's elapsed milliseconds.
	SLAPhases map[string]float64 `json:"sla_phases,omitempty"`

	WorldID         string `json:"world_id,omitempty"`
	ExecutionDomain Domain `json:"execution_domain,omitempty"`
	// RequestedAsOf is the request's as_of; AsOf the instant the data is fixed at
	// (bars closed by then), both RFC 3339.
	RequestedAsOf string `json:"requested_as_of,omitempty"`
	AsOf          string `json:"as_of,omitempty"`
}

// MarshalJSON writes the metadata with every SPEC §2 key present: the optional
// strings a request did not produce are null rather than missing, so that consumers
// see one shape. (The struct is encoded once; the absent keys are appended.)
func (m Metadata) MarshalJSON() ([]byte, error) {
	type plain Metadata // without this method
	b, err := json.Marshal(plain(m))
	if err != nil || len(b) < 2 || b[len(b)-1] != '}' {
		return b, err
	}
	b = b[:len(b)-1]
	for _, f := range [...]struct {
		key   string
		value string
	}{
		{"conformance_version", m.ConformanceVersion}, {"dataset_fingerprint", m.DatasetFingerprint},
		{"manifest_uri", m.ManifestURI}, {"downgrade_mode", string(m.DowngradeMode)},
		{"downgrade_reason", m.DowngradeReason}, {"world_id", m.WorldID},
		{"execution_domain", string(m.ExecutionDomain)}, {"requested_as_of", m.RequestedAsOf}, {"as_of", m.AsOf},
	} {
		if f.value == "" {
			b = append(append(append(b, `,"`...), f.key...), `":null`...)
		}
	}
	if len(m.SLAPhases) == 0 {
		b = append(b, `,"sla_phases":{}`...)
	}
	return append(b, '}'), nil
}

// TierCounts counts the bars served from each tier.
type TierCounts struct {
	Cache    int `json:"cache"`
	Storage  int `json:"storage"`
	Backfill int `json:"backfill"`
	Live     int `json:"live"`
}

// BackfillInfo describes the backfill work a request did or scheduled.
type BackfillInfo struct {
	// Chunks is the number of aligned chunks this request fetched from upstream.
	Chunks int `json:"chunks"`
	// Waited is the number of chunks another worker was fetching, which this request
	// waited for and then read from storage.
	Waited int `json:"waited"`
	// FetchedBars is the number of bars fetched from upstream by this request.
	FetchedBars int `json:"fetched_bars"`
	// Failed lists chunks that failed after retries (returned only with partial_ok).
	Failed []grid.Range `json:"failed,omitempty"`
	// Scheduled lists the chunks handed to background backfill (partial_fill).
	Scheduled []grid.Range `json:"scheduled"`
}

// BackfillConfig tunes the backfill tier. Zero fields take the reference's defaults
// (see DefaultBackfillConfig).
type BackfillConfig struct {
	WindowBars            int64
	MaxConcurrentRequests int
	MaxAttempts           int
	RetryBackoff          time.Duration
	JitterRatio           float64
	SingleFlightTTL       time.Duration
	DistributedLeaseTTL   time.Duration
	// AttemptTimeout bounds one upstream call: past it the call is cancelled and
	// counts as a failed attempt (retried up to MaxAttempts), so a hung upstream cannot
	// keep its chunk's lease renewed forever. Not in the reference.
	AttemptTimeout time.Duration
	// SettleWindow is how long after closing a bar may still be missing upstream
	// because the source has not published it yet: bars of the last SettleWindow that
	// a fetch did not return are not recorded as covered (a market gap), so a later
	// request asks for them again. Not in the reference, which recorded them as empty
	// for good.
	SettleWindow time.Duration
}

// DefaultBackfillConfig returns the reference's BackfillConfig defaults.
func DefaultBackfillConfig() BackfillConfig {
	return BackfillConfig{
		WindowBars:            900,
		MaxConcurrentRequests: 8,
		MaxAttempts:           6,
		RetryBackoff:          500 * time.Millisecond,
		JitterRatio:           0.25,
		SingleFlightTTL:       60 * time.Second,
		DistributedLeaseTTL:   120 * time.Second,
		AttemptTimeout:        2 * time.Minute,
		SettleWindow:          5 * time.Minute,
	}
}

func (c BackfillConfig) withDefaults() BackfillConfig {
	d := DefaultBackfillConfig()
	if c.WindowBars <= 0 {
		c.WindowBars = d.WindowBars
	}
	if c.MaxConcurrentRequests <= 0 {
		c.MaxConcurrentRequests = d.MaxConcurrentRequests
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = d.RetryBackoff
	}
	if c.JitterRatio <= 0 {
		c.JitterRatio = d.JitterRatio
	}
	if c.SingleFlightTTL <= 0 {
		c.SingleFlightTTL = d.SingleFlightTTL
	}
	if c.DistributedLeaseTTL <= 0 {
		c.DistributedLeaseTTL = d.DistributedLeaseTTL
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = d.AttemptTimeout
	}
	if c.SettleWindow <= 0 {
		c.SettleWindow = d.SettleWindow
	}
	return c
}
