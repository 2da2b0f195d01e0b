package wire

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
)

// benchBars is n one-minute OHLCV bars with random-walk prices, like real ones in the
// digits they need.
func benchBars(n int) seamless.Result {
	rng := rand.New(rand.NewPCG(1, 1))
	f := frame.New(frame.OHLCV, n)
	p := 40000.0
	for i := range n {
		f.TS = append(f.TS, 1704067200+int64(i)*60)
		o := p
		p += rng.NormFloat64() * 10
		f.Cols[0].F64 = append(f.Cols[0].F64, o)
		f.Cols[1].F64 = append(f.Cols[1].F64, max(o, p)+rng.Float64())
		f.Cols[2].F64 = append(f.Cols[2].F64, min(o, p)-rng.Float64())
		f.Cols[3].F64 = append(f.Cols[3].F64, p)
		f.Cols[4].F64 = append(f.Cols[4].F64, rng.Float64()*100)
	}
	md := seamless.Metadata{NodeID: "ohlcv:bench:BTC/USDT:1m", Interval: 60, Rows: n}
	return seamless.Result{Frame: f, Metadata: md}
}

// BenchmarkWriteBarsJSON encodes the JSON bars document of 1,000,000 bars to a
// discarding writer: the server's JSON encoding cost without the network. B/op is the
// memory one answer takes.
//
//	go test ./internal/server/wire -run '^$' -bench WriteBarsJSON -benchtime 5x -count 3
func BenchmarkWriteBarsJSON(b *testing.B) {
	res := benchBars(1_000_000)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := WriteBars(io.Discard, res); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.Frame.Len())*float64(b.N)/b.Elapsed().Seconds(), "bars/s")
}

// BenchmarkReadBarsJSON decodes the JSON bars document of 1,000,000 bars from memory:
// the Go client's JSON decoding cost without the network.
//
//	go test ./internal/server/wire -run '^$' -bench ReadBarsJSON -benchtime 5x -count 3
func BenchmarkReadBarsJSON(b *testing.B) {
	res := benchBars(1_000_000)
	var doc bytes.Buffer
	if err := WriteBars(&doc, res); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(doc.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		got, err := ReadBars(bytes.NewReader(doc.Bytes()))
		if err != nil || got.Frame.Len() != res.Frame.Len() {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.Frame.Len())*float64(b.N)/b.Elapsed().Seconds(), "bars/s")
}
