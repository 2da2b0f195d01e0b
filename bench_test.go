package seamless_test

import (
	"context"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/pebblestore"
)

const benchBars = 1_000_000

// benchRange is 1,000,000 one-minute bars ending well in the past.
var benchRange = grid.R(day(800), day(800)+benchBars*iv)

func openBench(b *testing.B) (*seamless.Provider, *pebblestore.Store) {
	b.Helper()
	st, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	src, _ := demo.New(demo.Options{})
	p, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"demo": src}})
	if err != nil {
		b.Fatal(err)
	}
	return p, st
}

func reportBars(b *testing.B, bars int) {
	b.ReportMetric(float64(bars)*float64(b.N)/b.Elapsed().Seconds(), "bars/s")
}

// BenchmarkFetchCovered: a covered Fetch of 1M bars from the embedded store, warm,
// in-process, through the whole provider path (validation, coverage, read, metadata).
func BenchmarkFetchCovered(b *testing.B) {
	p, st := openBench(b)
	defer st.Close()
	defer p.Close()
	ctx := context.Background()
	req := seamless.Request{NodeID: node, Interval: iv, Start: benchRange.Start, End: benchRange.End}
	if _, err := p.Fetch(ctx, req); err != nil { // backfill, then warm the cache
		b.Fatal(err)
	}
	req.Strategy = seamless.FailFast
	if _, err := p.Fetch(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := p.Fetch(ctx, req)
		if err != nil || res.Frame.Len() != benchBars {
			b.Fatalf("%v, %d rows", err, res.Frame.Len())
		}
	}
	reportBars(b, benchBars)
}

// BenchmarkBackfillDemo: backfill end to end (plan, chunk, lease, fetch from the demo
// source with no latency, durable write) of 1M bars into an empty embedded store.
func BenchmarkBackfillDemo(b *testing.B) {
	ctx := context.Background()
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		p, st := openBench(b)
		b.StartTimer()
		t := time.Now()
		sum, err := p.Backfill(ctx, seamless.BackfillRequest{NodeID: node, Interval: iv, Start: benchRange.Start, End: benchRange.End})
		total += time.Since(t)
		if err != nil || sum.Bars < benchBars {
			b.Fatalf("%v, %d bars", err, sum.Bars)
		}
		b.StopTimer()
		p.Close()
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(benchBars)*float64(b.N)/total.Seconds(), "bars/s")
}

// BenchmarkFetchCovered1000SLA compares a covered 1,000-bar fetch without an SLA and
// under the baseline preset: the difference is the SLA bookkeeping (phase deadlines,
// timers, verdicts).
func BenchmarkFetchCovered1000SLA(b *testing.B) {
	p, st := openBench(b)
	defer st.Close()
	defer p.Close()
	ctx := context.Background()
	start := benchRange.Start
	req := seamless.Request{NodeID: node, Interval: iv, Start: start, End: start + 1000*iv}
	if _, err := p.Fetch(ctx, req); err != nil {
		b.Fatal(err)
	}
	baseline, _ := seamless.SLAPreset("baseline")
	baseline.MaxLagSeconds = 0 // historical data is not judged on freshness
	for _, tc := range []struct {
		name string
		sla  *seamless.SLAPolicy
	}{{"none", nil}, {"baseline", &baseline}} {
		b.Run(tc.name, func(b *testing.B) {
			r := req
			r.Strategy, r.SLA = seamless.FailFast, tc.sla
			for b.Loop() {
				res, err := p.Fetch(ctx, r)
				if err != nil || res.Frame.Len() != 1000 || res.Metadata.Downgraded {
					b.Fatalf("%v, %d rows, %+v", err, res.Frame.Len(), res.Metadata)
				}
				res.Release() // as the gateway does once an answer is written
			}
			reportBars(b, 1000)
		})
	}
}

// BenchmarkImport1MBars: Provider.Import of 1M bars into an empty embedded store, the
// write path an import, a backfill chunk and a live bar share (conformance normalisation,
// durable write, coverage, cache invalidation, ingest notification).
func BenchmarkImport1MBars(b *testing.B) {
	ctx := context.Background()
	src, _ := demo.New(demo.Options{})
	f, err := src.Fetch(ctx, seamless.Series{NodeID: node, Interval: iv}, benchRange)
	if err != nil || f.Len() != benchBars {
		b.Fatalf("%v, %d bars", err, f.Len())
	}
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		p, st := openBench(b)
		b.StartTimer()
		t := time.Now()
		err := p.Import(ctx, node, iv, benchRange, f)
		total += time.Since(t)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		p.Close()
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(benchBars)*float64(b.N)/total.Seconds(), "bars/s")
}
