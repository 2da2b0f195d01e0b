package artifact_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/seamless-data/seamless/artifact"
	"github.com/seamless-data/seamless/artifact/artifacttest"
	"github.com/seamless-data/seamless/grid"
)

const benchBars = 1_000_000

func benchArtifact() artifact.Artifact {
	const start, iv = 1_700_000_040, 60
	return artifact.Artifact{NodeID: "ohlcv:bench:BTC/USDT:1m", Interval: iv, Range: grid.R(start, start+benchBars*iv), Frame: artifacttest.OHLCV(start, iv, benchBars)}
}

// BenchmarkDirPublish1MBars measures publishing 1,000,000 OHLCV bars into an empty
// DirRegistrar: fingerprint, Parquet encoding, two fsynced files and the rename.
func BenchmarkDirPublish1MBars(b *testing.B) {
	a := benchArtifact()
	root := b.TempDir()
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		r := artifact.NewDirRegistrar(filepath.Join(root, fmt.Sprint(i)), nil)
		if _, err := r.Publish(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchBars)*float64(b.N)/b.Elapsed().Seconds(), "bars/s")
}

// BenchmarkDirGet1MBars measures reading those bars back: Parquet decoding and the
// fingerprint check that Get always makes.
func BenchmarkDirGet1MBars(b *testing.B) {
	a := benchArtifact()
	r := artifact.NewDirRegistrar(b.TempDir(), nil)
	ctx := context.Background()
	m, err := r.Publish(ctx, a)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, f, err := r.Get(ctx, a.NodeID, m.DatasetFingerprint); err != nil || f.Len() != benchBars {
			b.Fatalf("Get: %v", err)
		}
	}
	b.ReportMetric(float64(benchBars)*float64(b.N)/b.Elapsed().Seconds(), "bars/s")
}
