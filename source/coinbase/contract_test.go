package coinbase_test

import (
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/source/coinbase"
	"github.com/seamless-data/seamless/source/coinbase/coinbasetest"
	"github.com/seamless-data/seamless/source/sourcetest"
)

// TestContract runs the Fetcher contract suite against coinbasetest's fake, which
// holds exactly the suite's candles and lists only their product.
func TestContract(t *testing.T) {
	sourcetest.Run(t, sourcetest.Harness{
		Source: "coinbase", Symbol: "BTC/USD", UnknownSymbol: "NOPE/USD", PageLimit: coinbase.PageLimit,
		Start: func(t *testing.T, up sourcetest.Upstream) seamless.Fetcher {
			srv := coinbasetest.New()
			t.Cleanup(srv.Close)
			srv.Stall = up.Stall
			p, err := coinbase.Resolve(up.Series)
			if err != nil {
				t.Fatal(err)
			}
			rows := make([]coinbasetest.Row, up.Bars.Len())
			for i, ts := range up.Bars.TS {
				rows[i].TS = ts
				for c := range rows[i].Bar {
					rows[i].Bar[c] = up.Bars.Cols[c].F64[i]
				}
			}
			srv.SetCandles(p.ID, p.Granularity, rows)
			src, err := coinbase.New(coinbase.Options{BaseURL: up.Front(t, srv.URL), HTTPClient: srv.Client(), Clock: clock.NewFake(up.Now), Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
	})
}
