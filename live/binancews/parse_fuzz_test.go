package binancews

import (
	"math"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/source/binance"
)

// FuzzParse: whatever the exchange sends, parse never panics, and what it accepts is
// one bar of the subscribed market, on its grid, with finite non-negative values.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"e":"kline","E":1700000060001,"s":"BTCUSDT","k":{"t":1700000040000,"T":1700000099999,"s":"BTCUSDT","i":"1m","f":1,"L":2,"o":"1.5","c":"2","h":"3","l":"1","v":"10","n":3,"x":true,"q":"1","V":"1","Q":"1","B":"0"}}`,
		`{"e":"kline","s":"BTCUSDT","k":{"t":1700000040000,"T":1700000099999,"s":"BTCUSDT","i":"1m","o":"NaN","c":"-1","h":"1e400","l":"x","v":"","x":false}}`,
		`{"stream":"btcusdt@kline_1m","data":{"e":"kline"}}`,
		`{"result":null,"id":1}`,
		`{"e":"kline","s":"BTCUSDT","k":{"t":-60000,"T":-1,"s":"BTCUSDT","i":"1m","o":"1","c":"1","h":"1","l":"1","v":"1","x":true}}`,
		`[]`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	m, err := binance.ResolveMarket(seamless.Series{NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: 60})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := parse(data, m)
		if err != nil {
			return
		}
		b := u.Bars
		if b.Len() != 1 || b.Validate() != nil || b.TS[0]%60 != 0 {
			t.Fatalf("%s: accepted %d bars, ts %v", data, b.Len(), b.TS)
		}
		for _, c := range b.Cols {
			for _, v := range c.F64 {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					t.Fatalf("%s: accepted value %v in %s", data, v, c.Name)
				}
			}
		}
	})
}
