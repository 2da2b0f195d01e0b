package export_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/fingerprint"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/export"
	"github.com/seamless-data/seamless/source/demo"
)

// generated serves demo bars for any range, with the timer stopped while it makes
// them: the benchmark measures the export (fingerprint and file metadata, Parquet
// encoding with zstd, the files) and not where the bars come from.
type generated struct{ b *testing.B }

func (g generated) Fetch(_ context.Context, req seamless.Request) (seamless.Result, error) {
	g.b.StopTimer()
	defer g.b.StartTimer()
	f := demo.Bars(req.NodeID, req.Interval, grid.R(req.Start, req.End))
	bounds := &[2]int64{f.TS[0], f.TS[len(f.TS)-1] + req.Interval}
	return seamless.Result{Frame: f, Metadata: seamless.Metadata{
		NodeID: req.NodeID, Interval: req.Interval, RequestedRange: [2]int64{req.Start, req.End}, Rows: f.Len(),
		CoverageBounds: bounds, CoverageRatio: 1,
		DatasetFingerprint: fingerprint.Dataset(f, fingerprint.Meta{NodeID: req.NodeID, Interval: req.Interval, CoverageBounds: bounds}),
	}}, nil
}

func (g generated) Coverage(_ context.Context, _ string, _ int64) (grid.Set, error) {
	return grid.NewSet(grid.R(0, 1<<40)), nil
}

// BenchmarkExport10MBars exports 10,000,000 one-minute bars (6,945 daily files):
// bars/s and bytes of Parquet per bar. The fingerprint the provider would compute
// is computed by the source, untimed. Run with -benchtime=1x; it writes ~300 MB.
func BenchmarkExport10MBars(b *testing.B) {
	const bars, iv = 10_000_000, 60
	start := int64(1_704_067_200)
	req := seamless.Request{NodeID: "ohlcv:demo:BTC/USD:1m", Interval: iv, Start: start, End: start + bars*iv}
	var sum export.Summary
	for i := 0; b.Loop(); i++ {
		var err error
		sum, err = export.Run(context.Background(), generated{b}, export.Options{Request: req, Dir: filepath.Join(b.TempDir(), "ds")})
		if err != nil || sum.Bars != bars {
			b.Fatalf("%+v %v", sum, err)
		}
	}
	b.ReportMetric(float64(bars)*float64(b.N)/b.Elapsed().Seconds(), "bars/s")
	b.ReportMetric(float64(sum.Bytes)/float64(sum.Bars), "bytes/bar")
}
