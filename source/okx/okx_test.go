package okx

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
	"github.com/seamless-data/seamless/source/okx/okxtest"
)

func TestParsePageRejects(t *testing.T) {
	in := Instrument{ID: "BTC-USDT", Bar: "1m", Seconds: 60}
	row := func(ts, o, h, l, c, v, confirm string) string {
		return fmt.Sprintf(`[%q,%q,%q,%q,%q,%q,"1","1",%q]`, ts, o, h, l, c, v, confirm)
	}
	for _, tc := range []struct{ name, data, field string }{
		{"NoData", `{"code":"0"}`, "data"},
		{"Arity", `{"code":"0","data":[["660000","1"]]}`, ""},
		{"NumberNotString", `{"code":"0","data":[[660000,"1","2","1","1","1","1","1","1"]]}`, "ts"},
		{"BadDecimal", `{"code":"0","data":[` + row("660000", "1", "2", "x", "1", "1", "1") + `]}`, "l"},
		{"Exponent", `{"code":"0","data":[` + row("660000", "1", "2e0", "1", "1", "1", "1") + `]}`, "h"},
		{"OffGrid", `{"code":"0","data":[` + row("660001", "1", "2", "1", "1", "1", "1") + `]}`, "ts"},
		{"Ascending", `{"code":"0","data":[` + row("660000", "1", "2", "1", "1", "1", "1") + "," + row("720000", "1", "2", "1", "1", "1", "1") + `]}`, "ts"},
		{"Duplicate", `{"code":"0","data":[` + row("660000", "1", "2", "1", "1", "1", "1") + "," + row("660000", "1", "2", "1", "1", "1", "1") + `]}`, "ts"},
		{"LowAboveClose", `{"code":"0","data":[` + row("660000", "1.5", "2", "1.2", "1", "1", "1") + `]}`, "l"},
		{"Confirm", `{"code":"0","data":[` + row("660000", "1", "2", "1", "1", "1", "yes") + `]}`, "confirm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePage([]byte(tc.data), in, 600, 1200)
			var se *venuehttp.ShapeError
			if !seamless.IsPermanent(err) || !errors.As(err, &se) || se.Field != tc.field || se.Venue != "okx" {
				t.Fatalf("%v; want a permanent okx ShapeError on field %q", err, tc.field)
			}
		})
	}
	// The forming bar (confirm "0") is dropped; the rest come back oldest first.
	rows, err := parsePage([]byte(`{"code":"0","data":[`+row("720000", "1", "2", "1", "1", "1", "0")+","+row("660000", "1", "2", "0.5", "1.5", "3", "1")+`]}`), in, 600, 1200)
	if err != nil || len(rows) != 1 || rows[0].ts != 660 || rows[0].ohlcv != [5]float64{1, 2, 0.5, 1.5, 3} {
		t.Fatalf("%+v %v", rows, err)
	}
}

// TestRoutes: windows within the newest 1,440 bars go to /candles, older ones to
// /history-candles, as ccxt chooses.
func TestRoutes(t *testing.T) {
	srv := okxtest.New()
	defer srv.Close()
	now := time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC)
	srv.Now = func() time.Time { return now }
	srv.SetCandles("BTC-USDT", "1m", []okxtest.Row{{TS: now.Unix() - 3*86400, Bar: [5]float64{1, 1, 1, 1, 1}}})
	src, err := New(Options{BaseURL: srv.URL, Clock: clock.NewFake(now), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := seamless.Series{NodeID: "ohlcv:okx:BTC/USDT:1m", Interval: 60}
	end := now.Unix()
	if _, err := src.Fetch(context.Background(), s, grid.R(end-600*60, end)); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Fetch(context.Background(), s, grid.R(end-3*86400, end-3*86400+100*60)); err != nil {
		t.Fatal(err)
	}
	p := srv.Paths()
	if len(p) != 3 || p[0] != "/api/v5/market/candles" || p[1] != "/api/v5/market/candles" || p[2] != "/api/v5/market/history-candles" {
		t.Fatalf("paths %v", p)
	}
}

// TestBodyCodes: errors OKX reports in a 200 body are classified like HTTP ones.
func TestBodyCodes(t *testing.T) {
	var n atomic.Int64
	codes := []string{"50011", "50013", "0"}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := min(int(n.Add(1))-1, len(codes)-1)
		fmt.Fprintf(w, `{"code":%q,"msg":"m","data":[]}`, codes[i])
	}))
	defer up.Close()
	clk := clock.NewFake(time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC))
	src, _ := New(Options{BaseURL: up.URL, Clock: clk, Seed: 1})
	s := seamless.Series{NodeID: "ohlcv:okx:BTC/USDT:1m", Interval: 60}
	if _, err := src.Fetch(context.Background(), s, grid.R(1709251200, 1709251260)); err != nil || n.Load() != 3 || src.Stats().RateLimited != 1 {
		t.Fatalf("%v after %d requests, %+v", err, n.Load(), src.Stats())
	}
	codes = []string{"51001"}
	n.Store(0)
	_, err := src.Fetch(context.Background(), s, grid.R(1709251200, 1709251260))
	var ae *venuehttp.APIError
	if !seamless.IsPermanent(err) || !errors.As(err, &ae) || ae.Code != "51001" || n.Load() != 1 {
		t.Fatalf("%v after %d requests: want a permanent 51001 at once", err, n.Load())
	}
}

func TestResolve(t *testing.T) {
	for node, want := range map[string]Instrument{
		"ohlcv:okx:BTC/USDT:1m":      {ID: "BTC-USDT", Bar: "1m", Seconds: 60},
		"ohlcv:okx:BTC/USDT:USDT:4h": {ID: "BTC-USDT-SWAP", Bar: "4H", Seconds: 14400, Swap: true},
		"ohlcv:okx:BTC/USD:BTC:1d":   {ID: "BTC-USD-SWAP", Bar: "1Dutc", Seconds: 86400, Swap: true},
	} {
		n, _ := seamless.ParseNodeID(node)
		if got, err := Resolve(seamless.Series{NodeID: node, Interval: n.Interval}); err != nil || got != want {
			t.Errorf("%s: %+v %v", node, got, err)
		}
	}
	for _, node := range []string{"ohlcv:okx:BTC/USDT:ETH:1m", "ohlcv:okx:BTC/USDT:1w", "ohlcv:okx:BTC-USDT:1m"} {
		n, _ := seamless.ParseNodeID(node)
		if _, err := Resolve(seamless.Series{NodeID: node, Interval: n.Interval}); err == nil {
			t.Errorf("%s resolved", node)
		}
	}
}
