package conformance

import (
	"testing"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// cleanOHLCV returns n consistent one-minute bars from t0, as a covered fetch serves
// them.
func cleanOHLCV(n int) *frame.Frame {
	f := frame.New(frame.OHLCV, n)
	for i := range n {
		p := 100 + float64(i%1000)/10
		f.TS = append(f.TS, t0+int64(i)*60)
		f.Cols[0].F64 = append(f.Cols[0].F64, p)
		f.Cols[1].F64 = append(f.Cols[1].F64, p+1)
		f.Cols[2].F64 = append(f.Cols[2].F64, p-1)
		f.Cols[3].F64 = append(f.Cols[3].F64, p+0.5)
		f.Cols[4].F64 = append(f.Cols[4].F64, 10)
	}
	return f
}

// BenchmarkPipelineCleanOHLCV runs the pipeline over 1,000,000 clean one-minute bars
// with a schema and a range: the fast path a covered fetch takes on every response.
func BenchmarkPipelineCleanOHLCV(b *testing.B) {
	const n = 1_000_000
	f := cleanOHLCV(n)
	opts := Options{Interval: 60, Schema: frame.OHLCV, Range: grid.R(t0, t0+n*60)}
	b.ReportAllocs()
	for b.Loop() {
		out, rep, err := Run(Input{Frame: f}, opts)
		if err != nil || out != f || !rep.Clean() {
			b.Fatalf("clean input: %v %v", rep, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "bars/s")
}

// BenchmarkPipelineDirtyOHLCV is the slow path for comparison: the same bars in
// milliseconds, reversed, with every 100th bar duplicated.
func BenchmarkPipelineDirtyOHLCV(b *testing.B) {
	const n = 1_000_000
	src := cleanOHLCV(n)
	idx := make([]int, 0, n+n/100)
	for i := n - 1; i >= 0; i-- {
		idx = append(idx, i)
		if i%100 == 0 {
			idx = append(idx, i)
		}
	}
	f := src.Take(idx)
	for i := range f.TS {
		f.TS[i] *= 1000
	}
	opts := Options{Interval: 60, Schema: frame.OHLCV, Range: grid.R(t0, t0+n*60)}
	b.ReportAllocs()
	for b.Loop() {
		out, _, err := Run(Input{Frame: f}, opts)
		if err != nil || out.Len() != n {
			b.Fatalf("%d rows, %v", out.Len(), err)
		}
	}
	b.ReportMetric(float64(len(idx))*float64(b.N)/b.Elapsed().Seconds(), "bars/s")
}
