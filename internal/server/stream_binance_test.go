package server_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/client"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/live"
	"github.com/seamless-data/seamless/live/binancews"
	"github.com/seamless-data/seamless/source/binance"
	"github.com/seamless-data/seamless/source/binance/binancetest"
	"github.com/seamless-data/seamless/store/memstore"
)

// TestStreamBinanceEndToEnd: a subscription through the gateway to a Binance series,
// both of Binance's APIs faked on loopback in their wire formats: the history comes
// from REST klines, the bar that closes afterwards from the kline websocket (no REST
// call for it), each once; a kline the websocket skips is repaired from REST before
// the next one is delivered.
func TestStreamBinanceEndToEnd(t *testing.T) {
	const (
		nodeID = "ohlcv:binance:BTC/USDT:1m"
		topic  = "btcusdt@kline_1m"
	)
	bar := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC).Unix() // forming when the test starts
	clk := clock.NewFake(time.Unix(bar+30, 0))
	rest := binancetest.New()
	t.Cleanup(rest.Close)
	ws := binancetest.NewStream(t)
	src, err := binance.New(binance.Options{BaseURL: rest.URL, Clock: clk, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// No read timeout: the fake clock jumps minutes, and the skipped kline below is
	// the hole under test, not a reconnect.
	feed, err := binancews.New(binancews.Options{BaseURL: ws.URL(), Clock: clk, Seed: 1, ReadTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New()
	tier, err := live.New(live.Options{Feeds: map[string]seamless.LiveFeed{"binance": feed}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	p, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"binance": src}, Clock: clk, Live: tier, Seed: 1,
		Subscriptions: seamless.SubscribeOptions{LiveGrace: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Provider: p, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { // before the fakes' cleanups, which wait for their clients to leave
		srv.Close()
		hs.Close()
		tier.Close()
		p.Close()
		st.Close()
	})
	c, err := client.New(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	kline := func(ts int64, b [5]float64, closed bool) string {
		return binancetest.Kline("BTCUSDT", "1m", ts*1000, ts*1000+iv*1000-1, b, closed)
	}
	start := bar - 3600
	evs, stop := subscribe(t, nil, c, seamless.SubscribeRequest{NodeID: nodeID, Start: start})
	defer stop()
	// The subscription keeps the kline stream subscribed; its first push (the forming
	// kline) tells the live tier the feed began after the newest closed bar.
	poll(t, "the kline stream subscribed", func() bool { return ws.SubscribedCount() == 1 })
	ws.Publish(t, topic, kline(bar, [5]float64{65000, 65010, 64990, 65005, 1.5}, false))

	var got []int64
	var history [][5]float64
	for {
		s := evs.next(t)
		if s.ev.Type == seamless.EventError {
			t.Fatal(s.ev.Err)
		}
		if s.ev.Type == seamless.EventBars {
			got = append(got, s.ev.Frame.TS...)
			history = append(history, rows(s.ev)...)
		}
		if s.ev.Type == seamless.EventCaughtUp {
			break
		}
	}
	wantGrid(t, got, start, bar)
	if want := binancetest.Bars("BTCUSDT", iv, grid.R(start, bar)); !equalRows(history, want) {
		t.Fatal("history differs from the REST klines")
	}
	calls := len(rest.Requests())

	// The bar closes over the websocket: delivered from the live tier, no REST call.
	closed := [5]float64{65000, 65020, 64980, 65012.5, 3.25}
	if n := ws.Publish(t, topic, kline(bar, closed, true)); n != 1 {
		t.Fatalf("published on %d connections", n)
	}
	clk.Advance(31 * time.Second)
	s := nextBars(t, evs)
	if s.ev.Origin != string(seamless.OriginLive) || len(s.ev.Frame.TS) != 1 || s.ev.Frame.TS[0] != bar || !equalRows(rows(s.ev), [][5]float64{closed}) {
		t.Fatalf("live bar: %+v", s.ev)
	}
	if n := len(rest.Requests()); n != calls {
		t.Fatalf("%d REST requests for the websocket's bar", n-calls)
	}

	// The websocket skips the next kline (a reconnect lost it) and delivers the one
	// after: the skipped bar comes from REST first, then the live one.
	clk.Advance(2 * time.Minute)
	third := [5]float64{65030, 65040, 65020, 65035, 2}
	if n := ws.Publish(t, topic, kline(bar+2*iv, third, true)); n != 1 {
		t.Fatalf("published on %d connections", n)
	}
	var after []int64
	var gap bool
	for len(after) < 2 {
		s := evs.next(t)
		switch s.ev.Type {
		case seamless.EventGap:
			gap = s.ev.Range == grid.R(bar+iv, bar+2*iv)
		case seamless.EventBars:
			after = append(after, s.ev.Frame.TS...)
			if s.ev.Frame.TS[0] == bar+2*iv && !equalRows(rows(s.ev), [][5]float64{third}) {
				t.Fatalf("live bar after the hole: %+v", rows(s.ev))
			}
		}
	}
	if !gap || len(after) != 2 || after[0] != bar+iv || after[1] != bar+2*iv {
		t.Fatalf("after the skipped kline: gap %v, bars %v", gap, after)
	}
}

// nextBars returns the next bars event.
func nextBars(t *testing.T, evs *events) streamed {
	t.Helper()
	for {
		if s := evs.next(t); s.ev.Type == seamless.EventBars {
			return s
		} else if s.ev.Type == seamless.EventError || s.ev.Type == seamless.EventEnd {
			t.Fatalf("%+v", s.ev)
		}
	}
}

// rows are a bars event's open, high, low, close and volume.
func rows(ev seamless.StreamEvent) [][5]float64 {
	out := make([][5]float64, ev.Frame.Len())
	for i := range out {
		for k := range 5 {
			out[i][k] = ev.Frame.Cols[k].F64[i]
		}
	}
	return out
}

func equalRows(a, b [][5]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
