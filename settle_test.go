package seamless_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
)

// laggingFetcher publishes a bar only lag after it closes, as a source that is slow to
// publish does.
type laggingFetcher struct {
	clock *clock.Fake
	lag   time.Duration
	calls atomic.Int32
}

func (l *laggingFetcher) Fetch(_ context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
	l.calls.Add(1)
	published := l.clock.Now().Add(-l.lag).Unix() // bars closed by then are out
	f := demo.Bars(s.NodeID, s.Interval, r)
	return f.Slice(0, f.SearchTS(published-s.Interval+1)), nil
}

// TestRecentBarsNotYetPublishedAreFetchedAgain: bars a lagging source has not published
// yet are not recorded as covered (a market gap for good); once the source catches up,
// the next request fetches and serves them.
func TestRecentBarsNotYetPublishedAreFetchedAgain(t *testing.T) {
	fc := clock.NewFake(t0)
	src := &laggingFetcher{clock: fc, lag: 3 * time.Minute}
	st := memstore.New()
	p, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"demo": src}, Clock: fc, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx := context.Background()
	r := req(t0.Add(-30*time.Minute).Unix(), t0.Unix(), seamless.AutoBackfill)
	res, err := p.Fetch(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Frame.Len() != 27 || res.Metadata.CoverageRatio == 1 {
		t.Fatalf("lagging source: %d rows, coverage %v; want 27 rows and the last 3 bars uncovered", res.Frame.Len(), res.Metadata.CoverageRatio)
	}
	cov, _ := st.Coverage(ctx, seamless.Series{NodeID: node, Interval: iv})
	if cov.Covers(grid.R(t0.Add(-3*time.Minute).Unix(), t0.Unix())) {
		t.Fatalf("coverage %v claims the unpublished bars", cov)
	}
	// The source catches up (time moves on, still inside the settle window of those
	// bars): the same request fetches the tail and serves every bar.
	fc.Advance(3 * time.Minute)
	calls := src.calls.Load()
	res, err = p.Fetch(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Frame.Len() != 30 || res.Metadata.CoverageRatio != 1 || src.calls.Load() == calls {
		t.Fatalf("after the source caught up: %d rows, coverage %v, %d new calls", res.Frame.Len(), res.Metadata.CoverageRatio, src.calls.Load()-calls)
	}
	// Old history the source has nothing for is still a market gap, fetched once.
	old := req(t0.Add(-48*time.Hour).Unix(), t0.Add(-47*time.Hour).Unix(), seamless.AutoBackfill)
	src.lag = 100 * time.Hour // publishes nothing in that range
	if _, err := p.Fetch(ctx, old); err != nil {
		t.Fatal(err)
	}
	calls = src.calls.Load()
	if res, err := p.Fetch(ctx, old); err != nil || res.Frame.Len() != 0 || src.calls.Load() != calls {
		t.Fatalf("an old empty range was fetched again: %v, %d rows, %d calls", err, res.Frame.Len(), src.calls.Load()-calls)
	}
}

// TestUnpublishedTailFetchedOnceByConcurrentRequests: requests that waited on a fetch
// which left the unpublished tail uncovered do not each fetch that tail again.
func TestUnpublishedTailFetchedOnceByConcurrentRequests(t *testing.T) {
	fc := clock.NewFake(t0)
	src := &laggingFetcher{clock: fc, lag: 3 * time.Minute}
	p, err := seamless.New(seamless.Config{Store: memstore.New(), Sources: seamless.Sources{"demo": src}, Clock: fc, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	r := req(t0.Add(-30*time.Minute).Unix(), t0.Unix(), seamless.AutoBackfill)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if res, err := p.Fetch(context.Background(), r); err != nil || res.Frame.Len() != 27 {
				t.Errorf("%v, %d rows", err, res.Frame.Len())
			}
		})
	}
	wg.Wait()
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("%d upstream calls for one chunk, want 1", n)
	}
	// A moment later the tail is asked for again, once.
	fc.Advance(15 * time.Second)
	for range 4 {
		if _, err := p.Fetch(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("%d upstream calls after the retry interval, want 2", n)
	}
}
