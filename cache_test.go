package seamless_test

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
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

// TestCachedAnswersConformLikeStoredOnes: answers built from clean cached chunks skip
// the second conformance pass, so they must be exactly what the full pass gives —
// same bars, same flags and warnings, same refusals — for clean data, market gaps and
// stored bars with findings, over aligned and unaligned ranges.
func TestCachedAnswersConformLikeStoredOnes(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	e := newEnv(t, seamless.Config{CacheBytes: 8 << 20, TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))})
	full, err := seamless.New(seamless.Config{Store: e.store, Sources: seamless.Sources{"demo": e.fetch},
		Clock: e.clock, CacheBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { full.Close() })
	ctx := context.Background()
	if _, err := e.p.Fetch(ctx, req(day(6), day(2), seamless.AutoBackfill)); err != nil {
		t.Fatal(err)
	}
	// A market gap (covered, no bars) and an hour with corrupt bars stored anyway.
	if err := e.p.Import(ctx, node, iv, grid.R(day(5), day(5)+3600), nil); err != nil {
		t.Fatal(err)
	}
	bad := grid.R(day(4), day(4)+3600)
	f := demo.Bars(node, iv, bad)
	f.Col("close").F64[7] = math.NaN()
	f.Col("high").F64[20] = f.Col("low").F64[20] - 1
	if err := e.p.Import(ctx, node, iv, bad, f, seamless.ImportPartialOK()); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		start := day(6) + rng.Int64N(4*1440-10)*iv + rng.Int64N(2)*rng.Int64N(iv)
		end := min(start+(1+rng.Int64N(3000))*iv+rng.Int64N(2)*rng.Int64N(iv), day(2))
		q := req(start, end, seamless.FailFast)
		q.PartialOK = rng.IntN(2) == 0
		want, wantErr := full.Fetch(ctx, q)
		for pass := range 2 { // the second pass is served by the cache
			got, err := e.p.Fetch(ctx, q)
			if seamless.ErrorCode(err) != seamless.ErrorCode(wantErr) {
				t.Fatalf("#%d %v pass %d: error %v, want %v", i, q.Range(), pass, err, wantErr)
			}
			if err != nil {
				continue
			}
			gm, wm := got.Metadata, want.Metadata
			if !reflect.DeepEqual(gm.ConformanceFlags, wm.ConformanceFlags) || !reflect.DeepEqual(gm.ConformanceWarnings, wm.ConformanceWarnings) ||
				gm.Rows != wm.Rows || gm.CoverageRatio != wm.CoverageRatio {
				t.Fatalf("#%d %v pass %d: metadata %+v, want %+v", i, q.Range(), pass, gm, wm)
			}
			if !framesEqual(got.Frame, want.Frame) {
				t.Fatalf("#%d %v pass %d: bars differ from the uncached answer", i, q.Range(), pass)
			}
			got.Release()
		}
	}
	// The shortcut was taken (and not always: the gap and the corrupt hour need the
	// full pass).
	used := map[bool]int{}
	for _, sp := range exp.GetSpans() {
		if sp.Name != "seamless.conformance" {
			continue
		}
		for _, a := range sp.Attributes {
			if a.Key == "prechecked" {
				used[a.Value.AsBool()]++
			}
		}
	}
	if used[true] == 0 || used[false] == 0 {
		t.Fatalf("conformance passes skipped / run: %d / %d, want some of each", used[true], used[false])
	}
}

// framesEqual compares frames value by value, NaN equal to NaN.
func framesEqual(a, b *frame.Frame) bool {
	if a.Len() != b.Len() || len(a.Cols) != len(b.Cols) || !slices.Equal(a.TS, b.TS) {
		return false
	}
	for k := range a.Cols {
		x, y := a.Cols[k].F64, b.Cols[k].F64
		for i := range x {
			if x[i] != y[i] && !(math.IsNaN(x[i]) && math.IsNaN(y[i])) {
				return false
			}
		}
	}
	return true
}
