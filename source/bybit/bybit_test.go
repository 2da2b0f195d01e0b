package bybit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/internal/venuehttp"
)

func TestParsePageRejects(t *testing.T) {
	in := Instrument{Category: "spot", Symbol: "BTCUSDT", Interval: "1", Seconds: 60}
	row := func(ts, o, h, l, c, v string) string {
		return fmt.Sprintf(`[%q,%q,%q,%q,%q,%q,"1"]`, ts, o, h, l, c, v)
	}
	list := func(rows ...string) string {
		s := `{"retCode":0,"retMsg":"OK","result":{"list":[`
		for i, r := range rows {
			if i > 0 {
				s += ","
			}
			s += r
		}
		return s + "]}}"
	}
	for _, tc := range []struct{ name, body, field string }{
		{"NoList", `{"retCode":0,"result":{}}`, "result.list"},
		{"Arity", list(`["660000","1"]`), ""},
		{"Numbers", list(`[660000,1,2,1,1,1,1]`), ""},
		{"BadDecimal", list(row("660000", "1", "2", "1", "NaN", "1")), "closePrice"},
		{"OffGrid", list(row("660500", "1", "2", "1", "1", "1")), "startTime"},
		{"Outside", list(row("1200000", "1", "2", "1", "1", "1")), "startTime"},
		{"Ascending", list(row("660000", "1", "2", "1", "1", "1"), row("720000", "1", "2", "1", "1", "1")), "startTime"},
		{"HighBelowClose", list(row("660000", "1", "2", "1", "3", "1")), "highPrice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePage([]byte(tc.body), in, 600, 1200)
			var se *venuehttp.ShapeError
			if !seamless.IsPermanent(err) || !errors.As(err, &se) || se.Field != tc.field || se.Venue != "bybit" {
				t.Fatalf("%v; want a permanent bybit ShapeError on field %q", err, tc.field)
			}
		})
	}
}

// TestErrors: retCode 10006 is a rate limit retried after the reset time, 10016 a
// transient error, 10001 permanent; HTTP 403 (the IP ban) fails at once, retryable,
// and sends nothing more until the ban ends.
func TestErrors(t *testing.T) {
	var n atomic.Int64
	var answers []func(w http.ResponseWriter)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := min(int(n.Add(1))-1, len(answers)-1)
		answers[i](w)
	}))
	defer up.Close()
	now := time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC)
	code := func(c int, reset time.Time) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			if !reset.IsZero() {
				w.Header().Set("X-Bapi-Limit-Reset-Timestamp", fmt.Sprint(reset.UnixMilli()))
			}
			fmt.Fprintf(w, `{"retCode":%d,"retMsg":"m","result":{"list":[]}}`, c)
		}
	}
	s := seamless.Series{NodeID: "ohlcv:bybit:BTC/USDT:1m", Interval: 60}
	r := grid.R(1709251200, 1709251260)

	clk := clock.NewFake(now)
	src, _ := New(Options{BaseURL: up.URL, Clock: clk, Seed: 1})
	answers = []func(http.ResponseWriter){code(10006, now.Add(3*time.Second)), code(10016, time.Time{}), code(0, time.Time{})}
	if _, err := src.Fetch(context.Background(), s, r); err != nil || n.Load() != 3 || clk.Sleeps()[0] != 3*time.Second {
		t.Fatalf("%v after %d requests, sleeps %v", err, n.Load(), clk.Sleeps())
	}
	n.Store(0)
	answers = []func(http.ResponseWriter){code(10001, time.Time{})}
	if _, err := src.Fetch(context.Background(), s, r); !seamless.IsPermanent(err) || n.Load() != 1 {
		t.Fatalf("10001: %v after %d requests", err, n.Load())
	}
	n.Store(0)
	answers = []func(http.ResponseWriter){func(w http.ResponseWriter) { w.WriteHeader(http.StatusForbidden) }}
	for range 2 {
		if _, err := src.Fetch(context.Background(), s, r); !errors.Is(err, venuehttp.ErrRateLimited) || seamless.IsPermanent(err) {
			t.Fatalf("403: %v; want a retryable rate limit", err)
		}
	}
	if n.Load() != 1 {
		t.Fatalf("%d requests during the ban", n.Load())
	}
}

func TestResolve(t *testing.T) {
	for node, want := range map[string]Instrument{
		"ohlcv:bybit:BTC/USDT:1m":      {Category: "spot", Symbol: "BTCUSDT", Interval: "1", Seconds: 60},
		"ohlcv:bybit:BTC/USDT:USDT:4h": {Category: "linear", Symbol: "BTCUSDT", Interval: "240", Seconds: 14400},
		"ohlcv:bybit:ETH/USDC:USDC:1d": {Category: "linear", Symbol: "ETHPERP", Interval: "D", Seconds: 86400},
		"ohlcv:bybit:BTC/USD:BTC:1h":   {Category: "inverse", Symbol: "BTCUSD", Interval: "60", Seconds: 3600},
	} {
		n, _ := seamless.ParseNodeID(node)
		if got, err := Resolve(seamless.Series{NodeID: node, Interval: n.Interval}); err != nil || got != want {
			t.Errorf("%s: %+v %v", node, got, err)
		}
	}
	for _, node := range []string{"ohlcv:bybit:BTC/USDT:ETH:1m", "ohlcv:bybit:BTC/USDT:1w", "ohlcv:bybit:BTCUSDT:1m"} {
		n, _ := seamless.ParseNodeID(node)
		if _, err := Resolve(seamless.Series{NodeID: node, Interval: n.Interval}); err == nil {
			t.Errorf("%s resolved", node)
		}
	}
}
