package seamless_test

import (
	"context"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
)

// limitedFetcher serves only the last six hours, as a HistoryLimiter.
type limitedFetcher struct{ *countingFetcher }

func (limitedFetcher) Oldest(_ seamless.Series, now time.Time) int64 { return now.Unix() - 6*3600 }

// TestHistoryLimiterLeavesOlderBarsAGap: the backfill tier asks a HistoryLimiter for
// nothing older than it serves, and leaves that part uncovered (a gap), not recorded
// as covered-but-empty.
func TestHistoryLimiterLeavesOlderBarsAGap(t *testing.T) {
	f := limitedFetcher{&countingFetcher{}}
	e := newEnv(t, seamless.Config{Sources: seamless.Sources{"demo": f}})
	ctx := context.Background()
	oldest := t0.Unix() - 6*3600
	res, err := e.p.Fetch(ctx, seamless.Request{NodeID: node, Interval: iv, Start: day(1), End: day(0), Strategy: seamless.AutoBackfill, PartialOK: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Calls() {
		if c.Start < oldest {
			t.Fatalf("the source was asked for %v, older than the %d it serves", c, oldest)
		}
	}
	cov, _ := e.p.Coverage(ctx, node, iv)
	if want := grid.R(oldest, t0.Unix()); cov.Bounds() != want {
		t.Fatalf("coverage %v, want %v: the part before the source's history must stay uncovered", cov, want)
	}
	if res.Frame.Len() != 6*60 || res.Metadata.CoverageRatio >= 1 {
		t.Fatalf("%d bars, coverage_ratio %v", res.Frame.Len(), res.Metadata.CoverageRatio)
	}
}
