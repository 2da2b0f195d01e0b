package bybit_test

import (
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/source/bybit"
	"github.com/seamless-data/seamless/source/bybit/bybittest"
	"github.com/seamless-data/seamless/source/sourcetest"
)

// TestContract runs the Fetcher contract suite against bybittest's fake, for spot,
// a linear and an inverse perpetual.
func TestContract(t *testing.T) {
	for _, tc := range []struct{ symbol, unknown string }{
		{"BTC/USDT", "NOPE/USDT"}, {"BTC/USDT:USDT", "NOPE/USDT:USDT"}, {"BTC/USD:BTC", "NOPE/USD:NOPE"},
	} {
		t.Run(tc.symbol, func(t *testing.T) {
			sourcetest.Run(t, sourcetest.Harness{
				Source: "bybit", Symbol: tc.symbol, UnknownSymbol: tc.unknown, PageLimit: bybit.PageLimit,
				Start: func(t *testing.T, up sourcetest.Upstream) seamless.Fetcher {
					srv := bybittest.New()
					t.Cleanup(srv.Close)
					srv.Stall = up.Stall
					in, err := bybit.Resolve(up.Series)
					if err != nil {
						t.Fatal(err)
					}
					rows := make([]bybittest.Row, up.Bars.Len())
					for i, ts := range up.Bars.TS {
						rows[i].TS = ts
						for c := range rows[i].Bar {
							rows[i].Bar[c] = up.Bars.Cols[c].F64[i]
						}
					}
					srv.SetKlines(in.Category, in.Symbol, in.Interval, rows)
					src, err := bybit.New(bybit.Options{BaseURL: up.Front(t, srv.URL), HTTPClient: srv.Client(), Clock: clock.NewFake(up.Now), Seed: 1})
					if err != nil {
						t.Fatal(err)
					}
					return src
				},
			})
		})
	}
}
