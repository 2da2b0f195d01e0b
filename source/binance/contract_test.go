package binance_test

import (
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/source/binance"
	"github.com/seamless-data/seamless/source/binance/binancetest"
	"github.com/seamless-data/seamless/source/sourcetest"
)

// TestContract runs the Fetcher contract suite against binancetest's fake REST API,
// which holds exactly the suite's bars and lists only their symbol.
func TestContract(t *testing.T) {
	t.Run("Spot", func(t *testing.T) {
		runContract(t, "binance", "BTC/USDT", "NOPE/USDT", binance.ResolveMarket, binance.New)
	})
	t.Run("Futures", func(t *testing.T) {
		runContract(t, "binance-futures", "BTC/USDT:USDT", "NOPE/USDT:USDT", binance.ResolveFuturesMarket, binance.NewFutures)
	})
}

func runContract(t *testing.T, source, symbol, unknown string, resolve func(seamless.Series) (binance.Market, error),
	newSource func(binance.Options) (*binance.Source, error)) {
	sourcetest.Run(t, sourcetest.Harness{
		Source: source, Symbol: symbol, UnknownSymbol: unknown, PageLimit: 1000,
		Start: func(t *testing.T, up sourcetest.Upstream) seamless.Fetcher {
			srv := binancetest.New()
			t.Cleanup(srv.Close)
			srv.Stall = up.Stall
			m, err := resolve(up.Series)
			if err != nil {
				t.Fatal(err)
			}
			rows := make([]binancetest.Row, up.Bars.Len())
			for i, ts := range up.Bars.TS {
				rows[i].OpenMS = ts * 1000
				for c := range rows[i].Bar {
					rows[i].Bar[c] = up.Bars.Cols[c].F64[i]
				}
			}
			srv.SetKlines(m.Symbol, m.Interval, rows)
			// The fake clock decides which klines have closed; its sleeps (the weight
			// limiter) return at once.
			src, err := newSource(binance.Options{BaseURL: up.Front(t, srv.URL), HTTPClient: srv.Client(), Clock: clock.NewFake(up.Now), Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
	})
}
