package seamless_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
)

// recordingSink records archived conformance reports.
type recordingSink struct {
	mu   sync.Mutex
	reps []conformance.Report
}

func (s *recordingSink) Archive(_ context.Context, _ seamless.Series, _ grid.Range, rep conformance.Report) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reps = append(s.reps, rep)
	return nil
}

func (s *recordingSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reps)
}

// TestImportRunsConformance: imported bars go through the pipeline before they are
// stored (SPEC §3): normalised, reported and archived, refused when the policy blocks
// (nothing written) unless partial_ok; bars off the grid or outside the range are bad
// requests.
func TestImportRunsConformance(t *testing.T) {
	sink := &recordingSink{}
	e := newEnv(t, seamless.Config{Reports: sink})
	ctx := context.Background()
	hour := grid.R(day(3), day(3)+3600)
	clean := demo.Bars(node, iv, hour)

	// Shuffled with a duplicate: stored sorted and unique, the later duplicate kept.
	messy := clean.Take([]int{1, 0, 2, 2})
	messy.Col("volume").F64[3] = 12345
	part := grid.R(hour.Start, hour.Start+3*iv)
	if err := e.p.Import(ctx, node, iv, part, messy); err != nil {
		t.Fatal(err)
	}
	got, _ := e.store.Read(ctx, seamless.Series{NodeID: node, Interval: iv}, part)
	if got.Len() != 3 || !got.IsSortedUnique() || got.Col("volume").F64[2] != 12345 {
		t.Fatalf("stored %d bars, sorted+unique %v, last volume %v", got.Len(), got.IsSortedUnique(), got.Col("volume").F64)
	}
	if sink.count() != 1 {
		t.Fatalf("%d reports archived, want 1 (the duplicate)", sink.count())
	}

	// Corrupt data is refused, nothing written; partial_ok stores it.
	bad := clean.Clone()
	bad.Col("open").F64[5] = math.NaN()
	var pe *conformance.PipelineError
	if err := e.p.Import(ctx, node, iv, hour, bad); !errors.As(err, &pe) || seamless.ErrorCode(err) != "conformance_blocked" {
		t.Fatalf("NaN import: %v, want conformance_blocked", err)
	}
	if cov, _ := e.store.Coverage(ctx, seamless.Series{NodeID: node, Interval: iv}); cov.Covers(hour) {
		t.Fatal("a refused import was stored")
	}
	if err := e.p.Import(ctx, node, iv, hour, bad, seamless.ImportPartialOK()); err != nil {
		t.Fatal(err)
	}
	// The strict preset refuses what the default only reports; a caller that archived
	// the report itself is not archived twice.
	before := sink.count()
	if err := e.p.Import(ctx, node, iv, part, messy, seamless.ImportPolicy(conformance.StrictPolicy()), seamless.ImportReported()); !errors.As(err, &pe) {
		t.Fatalf("strict import of a duplicate: %v", err)
	}
	if sink.count() != before {
		t.Fatal("ImportReported archived the report again")
	}

	for name, f := range map[string]*frame.Frame{
		"off the grid":      shiftTS(clean.Clone(), 7),
		"outside the range": shiftTS(clean.Clone(), 3600),
	} {
		var re *seamless.RequestError
		if err := e.p.Import(ctx, node, iv, hour, f); !errors.As(err, &re) {
			t.Errorf("%s: %v, want a RequestError", name, err)
		}
	}
	// No bars: the range is covered as a market gap, with no findings.
	gap := grid.R(day(4), day(4)+3600)
	if err := e.p.Import(ctx, node, iv, gap, nil); err != nil {
		t.Fatal(err)
	}
	if cov, _ := e.store.Coverage(ctx, seamless.Series{NodeID: node, Interval: iv}); !cov.Covers(gap) {
		t.Fatal("an empty import did not cover its range")
	}
}

func shiftTS(f *frame.Frame, by int64) *frame.Frame {
	for i := range f.TS {
		f.TS[i] += by
	}
	return f
}

// TestMetadataJSONHasEverySpecKey: every metadata key SPEC §2 lists is present in the
// JSON document, null when the request did not produce it.
func TestMetadataJSONHasEverySpecKey(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	res, err := e.p.Fetch(context.Background(), req(day(2), day(2)+3600, seamless.AutoBackfill))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"node_id", "interval", "requested_range", "rows", "coverage_bounds", "coverage_ratio",
		"staleness_ms", "sources", "conformance_flags", "conformance_warnings", "conformance_version",
		"dataset_fingerprint", "as_of", "manifest_uri", "downgraded", "downgrade_mode", "downgrade_reason",
		"sla_violation", "sla_phases", "world_id", "execution_domain", "requested_as_of", "backfill"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("metadata JSON lacks %q: %s", k, b)
		}
	}
	if doc["dataset_fingerprint"] != nil || doc["downgrade_mode"] != nil || doc["conformance_version"] != "v2" {
		t.Errorf("unset keys must be null, conformance_version v2: %s", b)
	}
	var back seamless.Metadata
	if err := json.Unmarshal(b, &back); err != nil || back.DowngradeMode != "" || back.Rows != res.Metadata.Rows {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}

// The reference's type names are aliases of Seamless's.
var (
	_ seamless.DataAvailabilityStrategy  = seamless.PartialFill
	_ *seamless.ConformancePipelineError = (*conformance.PipelineError)(nil)
	_ seamless.ConformanceReport         = conformance.Empty()
)

// BenchmarkMetadataJSON: the metadata document every answer carries, through
// json.Marshal (which re-validates a MarshalJSON method's output) and directly, as the
// gateway writes it.
func BenchmarkMetadataJSON(b *testing.B) {
	stale := int64(1200)
	md := seamless.Metadata{NodeID: node, Interval: iv, RequestedRange: [2]int64{0, 60000}, Strategy: seamless.FailFast, Rows: 1000,
		CoverageRatio: 1, StalenessMS: &stale, ConformanceFlags: map[string]int{}, ConformanceWarnings: []string{},
		ConformanceVersion: "v2", SLAPhases: map[string]float64{"storage_wait": 0.1, "total": 0.2}}
	for name, marshal := range map[string]func() ([]byte, error){
		"json.Marshal": func() ([]byte, error) { return json.Marshal(md) },
		"MarshalJSON":  md.MarshalJSON,
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := marshal(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestArchiveRecordsWhenFindingsGoAway: every report with findings is archived, and a
// clean one when the series' last archived report had findings, so the regression
// digest sees findings leave and come back; repeated clean answers write nothing.
func TestArchiveRecordsWhenFindingsGoAway(t *testing.T) {
	sink := &recordingSink{}
	e := newEnv(t, seamless.Config{Reports: sink, CacheBytes: -1})
	ctx := context.Background()
	dirty := grid.R(day(3), day(3)+3600)
	f := demo.Bars(node, iv, dirty)
	f.Col("close").F64[5] = math.NaN()
	if err := e.p.Import(ctx, node, iv, dirty, f, seamless.ImportPartialOK()); err != nil {
		t.Fatal(err)
	}
	clean := grid.R(day(4), day(4)+3600)
	if err := e.p.Import(ctx, node, iv, clean, demo.Bars(node, iv, clean)); err != nil {
		t.Fatal(err)
	}
	base := sink.count() // the import's own report of the NaN
	fetch := func(r grid.Range) {
		t.Helper()
		q := req(r.Start, r.End, seamless.FailFast)
		q.PartialOK = true
		if _, err := e.p.Fetch(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		r    grid.Range
		want int // reports archived so far, after base
	}{
		{dirty, 1}, {dirty, 2}, // findings: every time
		{clean, 3}, {clean, 3}, {clean, 3}, // clean after findings: once
		{dirty, 4}, {clean, 5},
	} {
		fetch(step.r)
		if got := sink.count() - base; got != step.want {
			t.Fatalf("after fetching %v: %d reports archived, want %d", step.r, got, step.want)
		}
	}
}
