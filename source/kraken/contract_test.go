package kraken_test

import (
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/source/kraken"
	"github.com/seamless-data/seamless/source/kraken/krakentest"
	"github.com/seamless-data/seamless/source/sourcetest"
)

// TestContract runs the Fetcher contract suite against krakentest's fake, which
// serves only the newest 720 bars as Kraken does.
func TestContract(t *testing.T) {
	sourcetest.Run(t, sourcetest.Harness{
		Source: "kraken", Symbol: "BTC/USD", UnknownSymbol: "NOPE/USD", Window: kraken.Window,
		Start: func(t *testing.T, up sourcetest.Upstream) seamless.Fetcher {
			srv := krakentest.New()
			t.Cleanup(srv.Close)
			srv.Stall = up.Stall
			srv.Now = clock.NewFake(up.Now).Now
			p, err := kraken.Resolve(up.Series)
			if err != nil {
				t.Fatal(err)
			}
			rows := make([]krakentest.Row, up.Bars.Len())
			for i, ts := range up.Bars.TS {
				rows[i].TS = ts
				for c := range rows[i].Bar {
					rows[i].Bar[c] = up.Bars.Cols[c].F64[i]
				}
			}
			srv.SetOHLC(p.Name, "XXBTZUSD", p.Minutes, rows)
			src, err := kraken.New(kraken.Options{BaseURL: up.Front(t, srv.URL), HTTPClient: srv.Client(), Clock: clock.NewFake(up.Now), Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
	})
}
