package okx_test

import (
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/source/okx"
	"github.com/seamless-data/seamless/source/okx/okxtest"
	"github.com/seamless-data/seamless/source/sourcetest"
)

// TestContract runs the Fetcher contract suite against okxtest's fake, for a spot
// instrument and a linear perpetual.
func TestContract(t *testing.T) {
	for _, tc := range []struct{ symbol, unknown string }{{"BTC/USDT", "NOPE/USDT"}, {"BTC/USDT:USDT", "NOPE/USDT:USDT"}} {
		t.Run(tc.symbol, func(t *testing.T) {
			sourcetest.Run(t, sourcetest.Harness{
				Source: "okx", Symbol: tc.symbol, UnknownSymbol: tc.unknown, PageLimit: okx.CandlesLimit,
				Start: func(t *testing.T, up sourcetest.Upstream) seamless.Fetcher {
					srv := okxtest.New()
					t.Cleanup(srv.Close)
					srv.Stall = up.Stall
					srv.Now = clock.NewFake(up.Now).Now
					in, err := okx.Resolve(up.Series)
					if err != nil {
						t.Fatal(err)
					}
					rows := make([]okxtest.Row, up.Bars.Len())
					for i, ts := range up.Bars.TS {
						rows[i].TS = ts
						for c := range rows[i].Bar {
							rows[i].Bar[c] = up.Bars.Cols[c].F64[i]
						}
					}
					srv.SetCandles(in.ID, in.Bar, rows)
					src, err := okx.New(okx.Options{BaseURL: up.Front(t, srv.URL), HTTPClient: srv.Client(), Clock: clock.NewFake(up.Now), Seed: 1})
					if err != nil {
						t.Fatal(err)
					}
					return src
				},
			})
		})
	}
}
