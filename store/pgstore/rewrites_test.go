package pgstore_test

import (
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/storetest"
)

// TestRewriteCount: only writes of bars into covered ranges count; coverage and count
// come back together; an unknown series has neither.
func TestRewriteCount(t *testing.T) {
	t.Parallel()
	s := openStore(t, freshSchema(t), testOptions)
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC/USD:1m", Interval: 60}
	check := func(step string, wantCov grid.Set, want uint64) {
		t.Helper()
		cov, n, err := s.CoverageRewrites(ctx, ser)
		if err != nil {
			t.Fatal(err)
		}
		if n != want || cov.String() != wantCov.String() {
			t.Fatalf("%s: coverage %v, %d rewrites; want %v, %d", step, cov, n, wantCov, want)
		}
		if plain, err := s.Coverage(ctx, ser); err != nil || plain.String() != cov.String() {
			t.Fatalf("%s: Coverage %v (%v) differs from CoverageRewrites %v", step, plain, err, cov)
		}
	}
	check("unknown series", grid.Set{}, 0)
	mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(0, 100*60), Frame: storetest.OHLCV(0, 60, 100)})
	check("first write", grid.NewSet(grid.R(0, 100*60)), 0)
	mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(200*60, 300*60), Frame: storetest.OHLCV(200*60, 60, 100)})
	mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(100*60, 120*60), Frame: storetest.OHLCV(100*60, 60, 20)}) // adjacent
	check("disjoint and adjacent writes", grid.NewSet(grid.R(0, 120*60), grid.R(200*60, 300*60)), 0)
	mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(90*60, 130*60), Frame: &frame.Frame{}})
	check("a write of no bars over covered bars", grid.NewSet(grid.R(0, 130*60), grid.R(200*60, 300*60)), 0)
	mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(50*60, 60*60), Frame: storetest.OHLCV(50*60, 60, 10)})
	check("bars into a covered range", grid.NewSet(grid.R(0, 130*60), grid.R(200*60, 300*60)), 1)
	mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(125*60, 210*60), Frame: storetest.OHLCV(125*60, 60, 85)})
	check("bars over a covered edge", grid.NewSet(grid.R(0, 300*60)), 2)
}

// TestCacheTierAcrossProcesses: two providers (two processes of a cluster) with their own
// cache tiers share one database; bars one of them imports over covered history are
// what the other serves next, not its cached copy.
func TestCacheTierAcrossProcesses(t *testing.T) {
	t.Parallel()
	dsn := freshSchema(t)
	const node = "ohlcv:demo:BTC-USD:1m"
	now := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	src, err := demo.New(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	provider := func() *seamless.Provider {
		p, err := seamless.New(seamless.Config{Store: openStore(t, dsn, testOptions), Sources: seamless.Sources{"demo": src},
			Clock: clock.NewFake(now), CacheBytes: 16 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	a, b := provider(), provider()
	day := grid.R(now.Add(-48*time.Hour).Unix(), now.Add(-24*time.Hour).Unix())
	req := seamless.Request{NodeID: node, Interval: 60, Start: day.Start, End: day.End, Strategy: seamless.AutoBackfill}
	if _, err := a.Fetch(ctx, req); err != nil {
		t.Fatal(err)
	}
	req.Strategy = seamless.FailFast
	for range 2 { // the second answer comes from a's cache
		res, err := a.Fetch(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Metadata.Sources.Cache == 0 {
			continue
		}
		hour := grid.R(day.Start+3600, day.Start+7200)
		other := demo.Bars("ohlcv:demo:OTHER:1m", 60, hour)
		if err := b.Import(ctx, node, 60, hour, other); err != nil {
			t.Fatal(err)
		}
		res, err = a.Fetch(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		i := res.Frame.SearchTS(hour.Start)
		if got, want := res.Frame.Col("close").F64[i], other.Col("close").F64[0]; got != want {
			t.Fatalf("after another process's import, close at %d is %v (cached), want %v", hour.Start, got, want)
		}
		if res.Frame.Len() != 1440 {
			t.Fatalf("%d rows", res.Frame.Len())
		}
		return
	}
	t.Fatal("the cache tier never served the covered day")
}
