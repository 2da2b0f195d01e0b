package seamless_test

import (
	"context"
	"sync"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
)

// TestCacheTierServesWhatStorageHolds: answers through the cache equal the stored
// bars for aligned, unaligned, multi-chunk and partly covered requests; results never
// alias the cache; an import rewriting covered bars invalidates them.
func TestCacheTierServesWhatStorageHolds(t *testing.T) {
	e := newEnv(t, seamless.Config{CacheBytes: 1 << 20})
	ctx := context.Background()
	if _, err := e.p.Fetch(ctx, req(day(6), day(2), seamless.AutoBackfill)); err != nil {
		t.Fatal(err)
	}
	for _, r := range []grid.Range{
		grid.R(day(5), day(4)), grid.R(day(5)+7, day(3)-13), grid.R(day(6), day(2)),
		grid.R(day(3), day(1)), // the last part is not covered: partial_ok
	} {
		for pass := range 2 { // the first pass fills the cache, the second hits it
			q := req(r.Start, r.End, seamless.FailFast)
			q.PartialOK = true
			res, err := e.p.Fetch(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := e.store.Read(ctx, seamless.Series{NodeID: node, Interval: iv}, r.Align(iv))
			if res.Frame.Len() != want.Len() {
				t.Fatalf("%v pass %d: %d rows, storage has %d", r, pass, res.Frame.Len(), want.Len())
			}
			for i := range want.TS {
				if res.Frame.TS[i] != want.TS[i] || res.Frame.Col("close").F64[i] != want.Col("close").F64[i] {
					t.Fatalf("%v pass %d: row %d differs", r, pass, i)
				}
			}
			src := res.Metadata.Sources
			if pass == 1 && src.Cache == 0 {
				t.Fatalf("%v: second pass not served from the cache: %+v", r, src)
			}
			if src.Cache+src.Storage != res.Frame.Len() {
				t.Fatalf("%v: tiers %+v do not add up to %d rows", r, src, res.Frame.Len())
			}
			res.Frame.Col("close").F64[0] = -1 // must not reach the cache
		}
	}
	// Rewrite a covered hour with other values: the cache must not serve the old ones.
	hour := grid.R(day(5), day(5)+3600)
	f := demo.Bars("ohlcv:demo:OTHER:1m", iv, hour)
	if err := e.p.Import(ctx, node, iv, hour, f); err != nil {
		t.Fatal(err)
	}
	res, err := e.p.Fetch(ctx, req(hour.Start, hour.End, seamless.FailFast))
	if err != nil {
		t.Fatal(err)
	}
	if res.Frame.Col("close").F64[0] != f.Col("close").F64[0] {
		t.Fatal("cache served bars an import had replaced")
	}
}

// TestReleasedResultsAreReused: a released answer's memory serves later answers, which
// still hold exactly the stored bars (old contents never leak into them), under
// concurrent fetches; releasing twice, or a copy, is harmless.
func TestReleasedResultsAreReused(t *testing.T) {
	e := newEnv(t, seamless.Config{CacheBytes: 1 << 20})
	ctx := context.Background()
	if _, err := e.p.Fetch(ctx, req(day(6), day(2), seamless.AutoBackfill)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				// Unaligned ranges of varying length over several cache chunks.
				start := day(6) + int64((g*977+i*131)%3000)*iv
				r := grid.R(start, start+int64(300+(i*37)%1500)*iv)
				res, err := e.p.Fetch(ctx, req(r.Start, r.End, seamless.FailFast))
				if err != nil {
					t.Error(err)
					return
				}
				want, _ := e.store.Read(ctx, seamless.Series{NodeID: node, Interval: iv}, r)
				if res.Frame.Len() != want.Len() {
					t.Errorf("%v: %d rows, storage has %d", r, res.Frame.Len(), want.Len())
					return
				}
				for k := range want.TS {
					if res.Frame.TS[k] != want.TS[k] || res.Frame.Col("close").F64[k] != want.Col("close").F64[k] ||
						res.Frame.Col("volume").F64[k] != want.Col("volume").F64[k] {
						t.Errorf("%v: row %d differs from storage", r, k)
						return
					}
				}
				cp := res
				res.Release()
				res.Release()
				cp.Release()
			}
		})
	}
	wg.Wait()
	seamless.Result{}.Release() // nothing to release
}
