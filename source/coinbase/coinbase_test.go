package coinbase

import (
	"errors"
	"strings"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/source/internal/venuehttp"
)

// TestParsePageRejects: every way a page can break Coinbase's documented shape is a
// permanent ShapeError naming the field, never a silently stored row.
func TestParsePageRejects(t *testing.T) {
	const from, to, iv = 600, 1200, 60
	for _, tc := range []struct {
		name, body, field string
	}{
		{"NotArray", `{"message":"x"}`, ""},
		{"Arity", `[[660,1,2,1.5,1.5]]`, ""},
		{"StringPrice", `[[660,"1",2,1.5,1.5,3]]`, "low"},
		{"TimeNotInteger", `[[660.5,1,2,1.5,1.5,3]]`, "time"},
		{"OffGrid", `[[661,1,2,1.5,1.5,3]]`, "time"},
		{"OutsideWindow", `[[1200,1,2,1.5,1.5,3]]`, "time"},
		{"Ascending", `[[660,1,2,1.5,1.5,3],[720,1,2,1.5,1.5,3]]`, "time"},
		{"Duplicate", `[[660,1,2,1.5,1.5,3],[660,1,2,1.5,1.5,3]]`, "time"},
		{"HighBelowOpen", `[[660,1,2,2.5,1.5,3]]`, "high"},
		{"NegativeVolume", `[[660,1,2,1.5,1.5,-3]]`, "volume"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePage([]byte(tc.body), from, to, iv)
			var se *venuehttp.ShapeError
			if !seamless.IsPermanent(err) || !errors.As(err, &se) || se.Field != tc.field || se.Venue != "coinbase" {
				t.Fatalf("%v; want a permanent coinbase ShapeError on field %q", err, tc.field)
			}
		})
	}
	rows, err := parsePage([]byte(`[[720,1,2,1.5,1.75,3],[660,0.5,2,1,1.5,1e-3]]`), from, to, iv)
	if err != nil || len(rows) != 2 || rows[0].ts != 660 || rows[0].ohlcv != [5]float64{1, 2, 0.5, 1.5, 0.001} {
		t.Fatalf("%+v %v", rows, err)
	}
}

func TestResolve(t *testing.T) {
	p, err := Resolve(seamless.Series{NodeID: "ohlcv:coinbase:ETH/USD:6h", Interval: 21600})
	if err != nil || p != (Product{ID: "ETH-USD", Granularity: 21600}) {
		t.Fatalf("%+v %v", p, err)
	}
	for node, want := range map[string]string{
		"ohlcv:coinbase:BTC/USD:4h":      "not a Coinbase granularity",
		"ohlcv:coinbase:BTC/USD:USD:1m":  "spot products only",
		"ohlcv:coinbase:btc-usd:1m":      "want BASE/QUOTE",
		"trades:coinbase:BTC/USD:1m":     "only ohlcv",
		"ohlcv:coinbase:BTC/USD:1m:junk": "timeframe",
	} {
		iv, _ := seamless.ParseTimeframe(node[strings.LastIndexByte(node, ':')+1:])
		if _, err := Resolve(seamless.Series{NodeID: node, Interval: iv}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", node, err, want)
		}
	}
}
