package binancews_test

import (
	"fmt"

	"github.com/seamless-data/seamless/source/binance/binancetest"
)

// step scripts one handshake of the fake combined-stream endpoint.
type step = binancetest.Step

const btcStream = "btcusdt@kline_1m"

// btcEvents wraps payloads of the BTCUSDT 1m stream.
func btcEvents(data ...string) []string {
	evs := make([]string, len(data))
	for i, d := range data {
		evs[i] = binancetest.Event(btcStream, d)
	}
	return evs
}

// kline renders a kline event of BTCUSDT 1m opening at ts (s) in Binance's format,
// every field present. Prices derive from n (see barOf).
func kline(ts int64, n float64, closed bool) string {
	return klineFor("BTCUSDT", "1m", ts*1000, ts*1000+59_999, n, closed)
}

func klineFor(symbol, tf string, openMS, closeMS int64, n float64, closed bool) string {
	return binancetest.Kline(symbol, tf, openMS, closeMS, barOf(n), closed)
}

// barOf is what kline(ts, n, …) decodes to: open, high, low, close, volume.
func barOf(n float64) [5]float64 { return [5]float64{n + 99, n + 102, n + 98, n + 100, n / 10} }

func itoa(v int64) string { return fmt.Sprint(v) }
