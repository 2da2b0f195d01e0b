package fingerprint

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/seamless-data/seamless/frame"
)

// ohlcvBars returns n one-minute OHLCV bars of a seeded random walk, prices in cents and
// volumes with four decimals, as a feed delivers them.
func ohlcvBars(n int) *frame.Frame {
	r := rand.New(rand.NewPCG(7, 11))
	f := frame.New(frame.OHLCV, n)
	price := 42000.0
	cents := func(x float64) float64 { return math.Round(x*100) / 100 }
	for i := range n {
		open := price
		price = cents(price * (1 + r.NormFloat64()*1e-3))
		f.TS = append(f.TS, 1_700_000_040+int64(i)*60)
		f.Cols[0].F64 = append(f.Cols[0].F64, open)
		f.Cols[1].F64 = append(f.Cols[1].F64, cents(max(open, price)*(1+r.Float64()*5e-4)))
		f.Cols[2].F64 = append(f.Cols[2].F64, cents(min(open, price)*(1-r.Float64()*5e-4)))
		f.Cols[3].F64 = append(f.Cols[3].F64, price)
		f.Cols[4].F64 = append(f.Cols[4].F64, math.Round(r.ExpFloat64()*1e5)/1e4)
	}
	return f
}

func BenchmarkDataset1MBars(b *testing.B) {
	const n = 1_000_000
	f := ohlcvBars(n)
	meta := Meta{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60, CoverageBounds: &[2]int64{f.TS[0], f.TS[n-1] + 60}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		Dataset(f, meta)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "bars/s")
}
