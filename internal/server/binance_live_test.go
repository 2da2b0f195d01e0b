package server_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/client"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/live"
	"github.com/seamless-data/seamless/live/binancews"
	"github.com/seamless-data/seamless/source/binance"
	"github.com/seamless-data/seamless/source/binance/binancetest"
	"github.com/seamless-data/seamless/store/memstore"
)

// TestWebsocketKlineServedWithoutREST: a gateway whose Provider backfills Binance over
// REST and runs the live tier on Binance's websocket (both faked on loopback). History
// comes from REST; the kline that closes over the websocket is stored by the live tier
// and served over HTTP with no REST request for its range; a forming kline is served
// only with include_forming, flagged.
func TestWebsocketKlineServedWithoutREST(t *testing.T) {
	const (
		nodeID = "ohlcv:binance:BTC/USDT:1m"
		stream = "btcusdt@kline_1m"
		iv     = 60
	)
	btc := seamless.Series{NodeID: nodeID, Interval: iv}
	bar := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC).Unix() // forming when the test starts
	clk := clock.NewFake(time.Unix(bar+30, 0))

	rest := binancetest.New()
	t.Cleanup(rest.Close)
	ws := binancetest.NewStream(t)
	src, err := binance.New(binance.Options{BaseURL: rest.URL, Clock: clk, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	feed, err := binancews.New(binancews.Options{BaseURL: ws.URL(), Clock: clk, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New()
	tier, err := live.New(live.Options{Feeds: map[string]seamless.LiveFeed{"binance": feed}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	p, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"binance": src}, Clock: clk, Live: tier, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Provider: p, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { // before the fakes' cleanups, which wait for their clients to leave
		hs.Close()
		srv.Close()
		p.Close()
		tier.Close()
		st.Close()
	})
	c, err := client.New(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fetch := func(start, end int64, forming bool) seamless.Result {
		t.Helper()
		res, err := c.Fetch(ctx, seamless.Request{NodeID: nodeID, Interval: iv, Start: start, End: end,
			Strategy: seamless.Seamless, IncludeForming: forming})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Frame.IsSortedUnique() {
			t.Fatalf("ts %v", res.Frame.TS)
		}
		return res
	}
	kline := func(ts int64, b [5]float64, closed bool) string {
		return binancetest.Kline("BTCUSDT", "1m", ts*1000, ts*1000+iv*1000-1, b, closed)
	}
	// Binance pushes the forming kline as soon as a stream is subscribed: it tells the
	// live tier the feed started after the last closed bar, so the first request does
	// not wait for that bar from the websocket but backfills it over REST.
	type outcome struct {
		res seamless.Result
		err error
	}
	first := make(chan outcome, 1)
	go func() {
		res, err := c.Fetch(ctx, seamless.Request{NodeID: nodeID, Interval: iv, Start: bar - 3600, End: bar + iv, Strategy: seamless.Seamless})
		first <- outcome{res, err}
	}()
	poll(t, "the kline stream subscribed", func() bool { return ws.SubscribedCount() == 1 })
	if n := ws.Publish(t, stream, kline(bar, [5]float64{65000, 65010, 64990, 65005, 1.5}, false)); n != 1 {
		t.Fatalf("published on %d connections", n)
	}
	o := <-first
	if o.err != nil {
		t.Fatal(o.err)
	}
	res := o.res
	// The last hour of closed bars, from REST.
	if md := res.Metadata; res.Frame.Len() != 60 || res.Frame.TS[0] != bar-3600 || res.Frame.TS[59] != bar-iv ||
		md.Sources.Live != 0 || md.Sources.Backfill != 60 || md.Forming {
		t.Fatalf("first fetch: %d rows from %v, metadata %+v", res.Frame.Len(), res.Frame.TS, md)
	}
	checkRows(t, res.Frame, 0, binancetest.Bars("BTCUSDT", iv, grid.R(bar-3600, bar)))
	if len(rest.Requests()) == 0 {
		t.Fatal("history was not backfilled over REST")
	}

	// The bar closes over the websocket; the clock moves past its close.
	closed := [5]float64{65000, 65020, 64980, 65012.5, 3.25}
	if n := ws.Publish(t, stream, kline(bar, closed, true)); n != 1 {
		t.Fatalf("published on %d connections", n)
	}
	clk.Advance(31 * time.Second)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tier.WaitClosed(wctx, btc, bar); err != nil {
		t.Fatalf("the closed kline was not stored: %v (feed %+v, tier %+v)", err, feed.Stats(), tier.Stats())
	}
	calls := len(rest.Requests())
	res = fetch(bar-3600, bar+iv, false)
	if md := res.Metadata; res.Frame.Len() != 61 || res.Frame.TS[60] != bar || md.Sources.Live != 1 || md.Sources.Backfill != 0 || md.Forming {
		t.Fatalf("second fetch: %d rows, metadata %+v", res.Frame.Len(), md)
	}
	checkRows(t, res.Frame, 60, [][5]float64{closed})
	checkRows(t, res.Frame, 0, binancetest.Bars("BTCUSDT", iv, grid.R(bar-3600, bar)))
	if n := len(rest.Requests()); n != calls {
		t.Fatalf("%d REST requests while serving the websocket bar: %+v", n-calls, rest.Requests()[calls:])
	}

	// The next bar forms: served only with include_forming, flagged.
	forming := [5]float64{65012.5, 65030, 65011, 65025.25, 0.5}
	ws.Publish(t, stream, kline(bar+iv, forming, false))
	poll(t, "the forming bar", func() bool { f, ok := tier.Forming(btc); return ok && f.TS[0] == bar+iv })
	res = fetch(bar-3600+iv, bar+2*iv, false)
	if md := res.Metadata; res.Frame.Len() != 60 || res.Frame.TS[59] != bar || md.Forming || md.Sources.Live != 1 {
		t.Fatalf("without include_forming: %d rows up to %d, metadata %+v", res.Frame.Len(), res.Frame.TS[res.Frame.Len()-1], md)
	}
	res = fetch(bar-3600+iv, bar+2*iv, true)
	if md := res.Metadata; res.Frame.Len() != 61 || res.Frame.TS[60] != bar+iv || !md.Forming || md.Sources.Live != 2 || md.Rows != 61 {
		t.Fatalf("with include_forming: %d rows, metadata %+v", res.Frame.Len(), md)
	}
	checkRows(t, res.Frame, 59, [][5]float64{closed, forming})

	for _, r := range rest.Requests() {
		if r.Overlaps(bar, bar+2*iv) {
			t.Fatalf("REST asked for %+v, which reaches the websocket bars", r)
		}
	}
	if n := len(rest.Requests()); n != calls {
		t.Fatalf("%d REST requests after the websocket delivered", n-calls)
	}
	if fs := feed.Stats(); fs.Malformed != 0 || fs.Reconnects != 0 {
		t.Fatalf("feed %+v", fs)
	}
}

// checkRows asserts the open, high, low, close and volume of f's rows from i on.
func checkRows(t *testing.T, f *frame.Frame, i int, want [][5]float64) {
	t.Helper()
	for j, w := range want {
		var got [5]float64
		for k := range 5 {
			got[k] = f.Cols[k].F64[i+j]
		}
		if got != w {
			t.Fatalf("row %d (ts %d) = %v, want %v", i+j, f.TS[i+j], got, w)
		}
	}
}

// poll waits for cond, checked every millisecond, for at most 10 s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
