package kraken

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/internal/venuehttp"
)

func TestParseRejects(t *testing.T) {
	row := func(ts, o, h, l, c, v string) string {
		return fmt.Sprintf(`[%s,%q,%q,%q,%q,"1",%q,3]`, ts, o, h, l, c, v)
	}
	body := func(rows ...string) string {
		return `{"error":[],"result":{"XXBTZUSD":[` + strings.Join(rows, ",") + `],"last":0}}`
	}
	for _, tc := range []struct{ name, body, field string }{
		{"NoRows", `{"error":[],"result":{"last":0}}`, "result"},
		{"TwoPairs", `{"error":[],"result":{"A":[],"B":[]}}`, "result"},
		{"Arity", body(`[660,"1"]`), ""},
		{"TimeString", body(row(`"660"`, "1", "2", "1", "1", "1")), "time"},
		{"PriceNumber", body(`[660,1,"2","1","1","1","1",3]`), "open"},
		{"BadDecimal", body(row("660", "1", "2", "1", "1", "-")), "volume"},
		{"BeforeSince", body(row("540", "1", "2", "1", "1", "1")), "time"},
		{"OffGrid", body(row("661", "1", "2", "1", "1", "1")), "time"},
		{"Descending", body(row("720", "1", "2", "1", "1", "1"), row("660", "1", "2", "1", "1", "1")), "time"},
		{"LowAboveOpen", body(row("660", "1", "2", "1.5", "1.6", "1")), "low"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := parseInto(frame.New(frame.OHLCV, 0), []byte(tc.body), 599, 60, grid.R(600, 1200))
			var se *venuehttp.ShapeError
			if !seamless.IsPermanent(err) || !errors.As(err, &se) || se.Field != tc.field || se.Venue != "kraken" {
				t.Fatalf("%v; want a permanent kraken ShapeError on field %q", err, tc.field)
			}
		})
	}
}

func TestErrorArray(t *testing.T) {
	var n atomic.Int64
	answers := []string{`{"error":["EAPI:Rate limit exceeded"]}`, `{"error":["EService:Busy"]}`, `{"error":[],"result":{"XXBTZUSD":[],"last":0}}`}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, answers[min(int(n.Add(1))-1, len(answers)-1)])
	}))
	defer up.Close()
	now := time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC)
	src, _ := New(Options{BaseURL: up.URL, Clock: clock.NewFake(now), Seed: 1})
	s := seamless.Series{NodeID: "ohlcv:kraken:BTC/USD:1m", Interval: 60}
	r := grid.R(now.Unix()-3600, now.Unix())
	if _, err := src.Fetch(context.Background(), s, r); err != nil || n.Load() != 3 || src.Stats().RateLimited != 1 {
		t.Fatalf("%v after %d requests, %+v", err, n.Load(), src.Stats())
	}
	answers, _ = []string{`{"error":["EQuery:Unknown asset pair"]}`}, n.Swap(0)
	_, err := src.Fetch(context.Background(), s, r)
	var ae *venuehttp.APIError
	if !seamless.IsPermanent(err) || !errors.As(err, &ae) || ae.Code != "EQuery:Unknown asset pair" || n.Load() != 1 {
		t.Fatalf("%v after %d requests", err, n.Load())
	}
	// Before the window: refused without a request.
	n.Store(0)
	_, err = src.Fetch(context.Background(), s, grid.R(now.Unix()-86400, now.Unix()))
	var we *WindowError
	if !seamless.IsPermanent(err) || !errors.As(err, &we) || n.Load() != 0 || !strings.Contains(err.Error(), "newest 720 bars") {
		t.Fatalf("%v after %d requests", err, n.Load())
	}
}

func TestResolve(t *testing.T) {
	for node, want := range map[string]Pair{
		"ohlcv:kraken:BTC/USD:1m":  {Name: "XBTUSD", Minutes: 1},
		"ohlcv:kraken:ETH/BTC:4h":  {Name: "ETHXBT", Minutes: 240},
		"ohlcv:kraken:DOGE/EUR:1d": {Name: "XDGEUR", Minutes: 1440},
	} {
		n, _ := seamless.ParseNodeID(node)
		if got, err := Resolve(seamless.Series{NodeID: node, Interval: n.Interval}); err != nil || got != want {
			t.Errorf("%s: %+v %v", node, got, err)
		}
	}
	for _, node := range []string{"ohlcv:kraken:BTC/USD:USD:1m", "ohlcv:kraken:BTC/USD:1w", "ohlcv:kraken:BTC/USD:3m"} {
		n, _ := seamless.ParseNodeID(node)
		if _, err := Resolve(seamless.Series{NodeID: node, Interval: n.Interval}); err == nil {
			t.Errorf("%s resolved", node)
		}
	}
}
