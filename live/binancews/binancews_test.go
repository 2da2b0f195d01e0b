package binancews_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/live"
	"github.com/seamless-data/seamless/live/binancews"
	"github.com/seamless-data/seamless/source/binance/binancetest"
	"github.com/seamless-data/seamless/store/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const iv = 60

var (
	btc = seamless.Series{NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: iv}
	t0  = int64(1_700_000_040) // a minute boundary
)

type fixture struct {
	fs    *binancetest.Stream
	feed  *binancews.Feed
	tier  *live.Tier
	store *memstore.Store
	clk   *clock.Fake

	mu         sync.Mutex
	reconnects []string
}

// newFixture wires fakeStream → Feed → Tier → memstore on a fake clock set inside the
// bar t0+4*iv.
func newFixture(t *testing.T, opts binancews.Options, script ...step) *fixture {
	t.Helper()
	fx := &fixture{fs: binancetest.NewStream(t, script...), store: memstore.New(), clk: clock.NewFake(time.Unix(t0+4*iv+10, 0))}
	opts.BaseURL = fx.fs.URL()
	opts.Clock = fx.clk
	opts.Seed = 7
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = -1
	}
	opts.OnReconnect = func(source string) {
		fx.mu.Lock()
		fx.reconnects = append(fx.reconnects, source)
		fx.mu.Unlock()
	}
	feed, err := binancews.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	fx.feed = feed
	sink, err := seamless.New(seamless.Config{Store: fx.store, Sources: seamless.Sources{}, Clock: fx.clk})
	if err != nil {
		t.Fatal(err)
	}
	tier, err := live.New(live.Options{Feeds: map[string]seamless.LiveFeed{"binance": feed}, Sink: sink,
		Clock: fx.clk, IdleTimeout: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fx.tier = tier
	t.Cleanup(func() {
		tier.Close()
		sink.Close()
		fx.store.Close()
	})
	return fx
}

func (fx *fixture) wait(t *testing.T, ts int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fx.tier.WaitClosed(ctx, btc, ts); err != nil {
		t.Fatalf("WaitClosed(%d): %v (feed %+v, tier %+v)", ts, err, fx.feed.Stats(), fx.tier.Stats())
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// checkStored asserts the stored bars of [t0, end) are exactly ts → barOf(n).
func checkStored(t *testing.T, st seamless.Store, end int64, want map[int64]float64) {
	t.Helper()
	f, err := st.Read(context.Background(), btc, grid.R(t0, end))
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != len(want) {
		t.Fatalf("stored ts %v, want %d bars", f.TS, len(want))
	}
	for i, ts := range f.TS {
		n, ok := want[ts]
		if !ok {
			t.Fatalf("unexpected bar at %d", ts)
		}
		var got [5]float64
		for c := range 5 {
			got[c] = f.Cols[c].F64[i]
		}
		if got != barOf(n) {
			t.Fatalf("bar %d = %v, want %v", ts, got, barOf(n))
		}
	}
}

func TestDisconnectNeitherDuplicatesNorLosesBars(t *testing.T) {
	fx := newFixture(t, binancews.Options{},
		step{Send: btcEvents(kline(t0, 1, false), kline(t0, 2, false), kline(t0, 3, true),
			kline(t0+iv, 4, false), kline(t0+iv, 5, true)), Drop: true},
		// Reconnected: the server replays the last closed kline first.
		step{Send: btcEvents(kline(t0+iv, 5, true), kline(t0+2*iv, 6, false), `{"e":"kline","k":`,
			kline(t0+2*iv, 7, true), kline(t0+3*iv, 8, true), kline(t0+4*iv, 9, false))},
	)
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, t0+3*iv)
	checkStored(t, fx.store, t0+10*iv, map[int64]float64{t0: 3, t0 + iv: 5, t0 + 2*iv: 7, t0 + 3*iv: 8})
	cov, _ := fx.store.Coverage(context.Background(), btc)
	if want := grid.NewSet(grid.R(t0, t0+4*iv)); !cov.Equal(want) {
		t.Fatalf("coverage %v, want %v", cov, want)
	}

	eventually(t, "the forming bar", func() bool { _, ok := fx.tier.Forming(btc); return ok })
	f, _ := fx.tier.Forming(btc)
	if f.TS[0] != t0+4*iv || f.Col("close").F64[0] != barOf(9)[3] {
		t.Fatalf("forming %v close %v", f.TS, f.Col("close").F64)
	}

	fs, ts := fx.feed.Stats(), fx.tier.Stats()
	if fs.Reconnects != 1 || fs.Malformed != 1 || fs.Connects != 2 || ts.Duplicates != 1 || ts.Gaps != 0 {
		t.Fatalf("feed %+v tier %+v", fs, ts)
	}
	fx.mu.Lock()
	if !slices.Equal(fx.reconnects, []string{"binance"}) {
		t.Fatalf("OnReconnect calls %v", fx.reconnects)
	}
	fx.mu.Unlock()
	if paths := fx.fs.Paths(); !slices.Equal(paths, []string{"/stream", "/stream"}) {
		t.Fatalf("paths %v", paths)
	}
	for i, fc := range fx.fs.Accepted() {
		if log := fc.Requests(); !slices.Equal(log, []string{"SUBSCRIBE " + btcStream}) {
			t.Fatalf("connection %d: requests %q", i, log)
		}
	}
	if sl := fx.clk.Sleeps(); len(sl) != 1 || sl[0] < 750*time.Millisecond || sl[0] > 1250*time.Millisecond {
		t.Fatalf("backoff sleeps %v, want one of 1 s ± 25%%", sl)
	}
}

func TestHoleAfterReconnectLeftUncovered(t *testing.T) {
	fx := newFixture(t, binancews.Options{},
		step{Send: btcEvents(kline(t0, 1, true)), Drop: true},
		step{Send: btcEvents(kline(t0+3*iv, 2, false), kline(t0+3*iv, 3, true))},
	)
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, t0+3*iv)
	checkStored(t, fx.store, t0+10*iv, map[int64]float64{t0: 1, t0 + 3*iv: 3})
	cov, _ := fx.store.Coverage(context.Background(), btc)
	if want := grid.NewSet(grid.R(t0, t0+iv), grid.R(t0+3*iv, t0+4*iv)); !cov.Equal(want) {
		t.Fatalf("coverage %v, want %v", cov, want)
	}
	if err := fx.tier.WaitClosed(context.Background(), btc, t0+iv); !errors.Is(err, live.ErrMissed) {
		t.Fatalf("WaitClosed in the hole: %v", err)
	}
	if st := fx.tier.Stats(); st.Gaps != 1 {
		t.Fatalf("tier %+v", st)
	}
}

func TestReconnectBackoffSchedule(t *testing.T) {
	var script []step
	for range 7 {
		script = append(script, step{Refuse: 503})
	}
	script = append(script,
		step{Send: btcEvents(kline(t0, 1, true)), Drop: true}, // healthy: resets the backoff
		step{Refuse: 429},
		step{Send: btcEvents(kline(t0+iv, 2, true))},
	)
	fx := newFixture(t, binancews.Options{MinBackoff: time.Second, MaxBackoff: 16 * time.Second}, script...)
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, t0+iv)
	bases := []time.Duration{1, 2, 4, 8, 16, 16, 16, 1, 2}
	sl := fx.clk.Sleeps()
	if len(sl) != len(bases) {
		t.Fatalf("sleeps %v, want %d", sl, len(bases))
	}
	for i, b := range bases {
		b *= time.Second
		if sl[i] < b*3/4 || sl[i] > b*5/4 {
			t.Fatalf("sleep %d = %v, want %v ± 25%% (all: %v)", i, sl[i], b, sl)
		}
	}
	if fs := fx.feed.Stats(); fs.Dials != 10 || fs.Connects != 2 || fs.Reconnects != 9 {
		t.Fatalf("feed %+v", fs)
	}
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if len(fx.reconnects) != 9 {
		t.Fatalf("OnReconnect called %d times", len(fx.reconnects))
	}
}

func TestMalformedMessagesSkipped(t *testing.T) {
	bad := append(btcEvents( // events of the subscribed stream whose payload is no valid kline of it
		`{"e":"24hrTicker","E":1,"s":"BTCUSDT"}`,
		klineFor("ETHUSDT", "1m", t0*1000, t0*1000+59_999, 1, true), // another symbol
		klineFor("BTCUSDT", "5m", t0*1000, t0*1000+59_999, 1, true), // another interval
		klineFor("BTCUSDT", "1m", t0*1000+1, t0*1000+60_000, 1, true),
		klineFor("BTCUSDT", "1m", t0*1000, t0*1000+60_000, 1, true), // close time inconsistent
		`{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":`+itoa(t0*1000)+`,"T":`+itoa(t0*1000+59_999)+
			`,"s":"BTCUSDT","i":"1m","o":"abc","c":"1","h":"1","l":"1","v":"1","x":true}}`,
		`{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":`+itoa(t0*1000)+`,"T":`+itoa(t0*1000+59_999)+
			`,"s":"BTCUSDT","i":"1m","o":"NaN","c":"1","h":"1","l":"1","v":"1","x":true}}`,
		`{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":`+itoa(t0*1000)+`,"T":`+itoa(t0*1000+59_999)+
			`,"s":"BTCUSDT","i":"1m","o":"1","c":"1","h":"1","l":"1","v":"1"}}`, // no x
		`{"e":"kline","k":`, // the whole message is not JSON
	),
		`not json`,
		`{"result":null,"id":999}`,   // a reply to no request
		kline(t0, 1, true),           // a raw-stream event, not wrapped
		`{"stream":"`+btcStream+`"}`, // no data
	)
	fx := newFixture(t, binancews.Options{},
		step{Send: append(bad, binancetest.Event(btcStream, kline(t0, 10, true)))},
	)
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, t0)
	checkStored(t, fx.store, t0+10*iv, map[int64]float64{t0: 10})
	// Every message but the kline and the reply to the SUBSCRIBE is malformed.
	if fs := fx.feed.Stats(); fs.Malformed != uint64(len(bad)) || fs.Reconnects != 0 || fs.Messages != uint64(len(bad)+2) {
		t.Fatalf("feed %+v, want %d malformed on one connection", fs, len(bad))
	}
}

func TestBinaryMessagesSkipped(t *testing.T) {
	fx := newFixture(t, binancews.Options{},
		step{Send: btcEvents(kline(t0, 1, true)), Binary: true, Drop: true},
		step{Send: btcEvents(kline(t0, 1, true))},
	)
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, t0)
	if fs := fx.feed.Stats(); fs.Malformed != 1 {
		t.Fatalf("feed %+v", fs)
	}
}

func TestSilentConnectionReplaced(t *testing.T) {
	// The first connection stays silent; the following ones deliver t0. Advancing
	// the clock past the read timeout can also expire a dial in progress (both run on
	// the fake clock), so later steps repeat the kline.
	script := []step{{}}
	for range 5 {
		script = append(script, step{Send: btcEvents(kline(t0, 1, true))})
	}
	fx := newFixture(t, binancews.Options{ReadTimeout: 30 * time.Second}, script...)
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bar from a replacement connection", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if fx.tier.WaitClosed(ctx, btc, t0) == nil {
			return true
		}
		if fx.fs.Open() == 1 {
			fx.clk.Advance(31 * time.Second)
		}
		return false
	})
	if fs := fx.feed.Stats(); fs.Reconnects == 0 {
		t.Fatalf("feed %+v: the silent connection was kept", fs)
	}
}

func TestCloseStopsConnections(t *testing.T) {
	// One stream per connection: two connections.
	fx := newFixture(t, binancews.Options{MaxStreamsPerConn: 1})
	eth := seamless.Series{NodeID: "ohlcv:binance:ETH/USDT:5m", Interval: 300}
	for _, s := range []seamless.Series{btc, eth} {
		if err := fx.tier.Subscribe(s); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "two connections of one stream each", func() bool {
		return len(fx.fs.Live()) == 2 && fx.fs.SubscribedCount() == 2
	})
	fx.fs.Publish(t, btcStream, kline(t0, 1, true))
	fx.fs.Publish(t, "ethusdt@kline_5m", klineFor("ETHUSDT", "5m", 1_700_000_100_000, 1_700_000_399_999, 1, true))
	fx.wait(t, t0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fx.tier.WaitClosed(ctx, eth, 1_700_000_100); err != nil {
		t.Fatal(err)
	}
	fx.tier.Close()
	eventually(t, "the server to see both connections closed", func() bool { return fx.fs.Open() == 0 })
	if st := fx.tier.Stats(); st.Active != 0 || st.Unsubscribed != 2 {
		t.Fatalf("tier %+v", st)
	}
	if fs := fx.feed.Stats(); fs.Connects != 2 || fs.Disconnects != 0 {
		t.Fatalf("feed %+v", fs)
	}
	if err := fx.tier.Subscribe(btc); !errors.Is(err, seamless.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

func TestIdleSubscriptionDisconnects(t *testing.T) {
	fx := newFixture(t, binancews.Options{}, step{Send: btcEvents(kline(t0, 1, true))})
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, t0)
	fx.clk.Advance(25 * time.Hour)
	eventually(t, "the idle disconnect", func() bool { return fx.fs.Open() == 0 })
	if st := fx.tier.Stats(); st.IdleStops != 1 || st.Active != 0 {
		t.Fatalf("tier %+v", st)
	}
}

func TestSubscribeRejectsUnstreamableNodes(t *testing.T) {
	feed, err := binancews.New(binancews.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []seamless.Series{
		{NodeID: "ohlcv:binance:btc/usdt:1m", Interval: 60},
		{NodeID: "ohlcv:binance:BTCUSDT:1m", Interval: 60},
		{NodeID: "ohlcv:binance:BTC/USDT:1w", Interval: 604800},
		{NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: 300},
		{NodeID: "trades:binance:BTC/USDT:1m", Interval: 60},
	} {
		if _, err := feed.Subscribe(context.Background(), s); !seamless.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent error", s, err)
		}
	}
}

func TestNewValidatesOptions(t *testing.T) {
	for _, o := range []binancews.Options{
		{BaseURL: "ws://127.0.0.1:9/"},
		{BaseURL: "ws://127.0.0.1:9/news"},
		{MaxStreamsPerConn: -1},
		{MaxStreamsPerConn: 1025},
	} {
		if _, err := binancews.New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	for _, n := range []int{1, 1024} {
		if _, err := binancews.New(binancews.Options{MaxStreamsPerConn: n}); err != nil {
			t.Errorf("MaxStreamsPerConn %d: %v", n, err)
		}
	}
}

// A subscription straight on a Feed, for the tests of connection sharing.
type subscription struct {
	ch     <-chan seamless.LiveUpdate
	cancel context.CancelFunc
}

// newFeed returns a Feed streaming from fs on a fake clock, without read timeout.
func newFeed(t *testing.T, fs *binancetest.Stream, opts binancews.Options) *binancews.Feed {
	t.Helper()
	if opts.BaseURL == "" {
		opts.BaseURL = fs.URL()
	}
	opts.Clock = clock.NewFake(time.Unix(t0+4*iv+10, 0))
	opts.Seed = 7
	opts.ReadTimeout = -1
	feed, err := binancews.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return feed
}

// subscribe subscribes to s until stop or the end of the test.
func subscribe(t *testing.T, feed *binancews.Feed, s seamless.Series) *subscription {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := feed.Subscribe(ctx, s)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	sub := &subscription{ch: ch, cancel: cancel}
	t.Cleanup(sub.stop)
	return sub
}

// stop ends the subscription and waits until the feed closes its channel.
func (s *subscription) stop() {
	s.cancel()
	for range s.ch {
	}
}

// recv returns the next update.
func (s *subscription) recv(t *testing.T) seamless.LiveUpdate {
	t.Helper()
	select {
	case u, ok := <-s.ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return u
	case <-time.After(10 * time.Second):
		t.Fatal("no update for 10 s")
		return seamless.LiveUpdate{}
	}
}

// closeOf is the close price of a one-bar update.
func closeOf(u seamless.LiveUpdate) float64 { return u.Bars.Col("close").F64[0] }

// coin is a 1-minute series of a made-up coin i, its stream and its kline payloads.
func coin(i int) (seamless.Series, string, func(ts int64, n float64, closed bool) string) {
	sym := fmt.Sprintf("C%dUSDT", i)
	return seamless.Series{NodeID: fmt.Sprintf("ohlcv:binance:C%d/USDT:1m", i), Interval: iv},
		strings.ToLower(sym) + "@kline_1m",
		func(ts int64, n float64, closed bool) string {
			return klineFor(sym, "1m", ts*1000, ts*1000+59_999, n, closed)
		}
}

func TestCombinedEndpointAsBaseURL(t *testing.T) {
	fs := binancetest.NewStream(t)
	feed := newFeed(t, fs, binancews.Options{BaseURL: strings.TrimSuffix(fs.URL(), "/ws") + "/stream/"})
	s := subscribe(t, feed, btc)
	eventually(t, "the stream subscribed", func() bool { return fs.SubscribedCount() == 1 })
	fs.Publish(t, btcStream, kline(t0, 1, true))
	if u := s.recv(t); !u.Closed || closeOf(u) != barOf(1)[3] {
		t.Fatalf("update %+v", u)
	}
	if paths := fs.Paths(); !slices.Equal(paths, []string{"/stream"}) {
		t.Fatalf("paths %v", paths)
	}
}

func TestManySeriesShareConnections(t *testing.T) {
	fs := binancetest.NewStream(t)
	feed := newFeed(t, fs, binancews.Options{MaxStreamsPerConn: 200})
	const n = 450
	subs := make([]*subscription, n)
	for i := range n {
		s, _, _ := coin(i)
		subs[i] = subscribe(t, feed, s)
	}
	eventually(t, "every stream subscribed", func() bool { return fs.SubscribedCount() == n })
	var sizes []int
	for _, fc := range fs.Live() {
		sizes = append(sizes, len(fc.Subscribed()))
	}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{50, 200, 200}) {
		t.Fatalf("streams per connection %v", sizes)
	}
	for i := range n {
		_, stream, payload := coin(i)
		if got := fs.Publish(t, stream, payload(t0, float64(i), true)); got != 1 {
			t.Fatalf("%s is on %d connections", stream, got)
		}
	}
	for i, s := range subs {
		if u := s.recv(t); !u.Closed || u.Bars.TS[0] != t0 || closeOf(u) != barOf(float64(i))[3] {
			t.Fatalf("series %d got ts %v close %v", i, u.Bars.TS, closeOf(u))
		}
	}
	if st := feed.Stats(); st.Dials != 3 || st.Connects != 3 || st.Malformed != 0 || st.Dropped != 0 {
		t.Fatalf("feed %+v", st)
	}
	if v := fs.RateViolations(); v != 0 {
		t.Fatalf("%d connections broke the message rate", v)
	}
}

func TestSubscriptionsJoinAndLeaveALiveConnection(t *testing.T) {
	fs := binancetest.NewStream(t)
	feed := newFeed(t, fs, binancews.Options{})
	eth, ethStream, ethKline := coin(0)
	b := subscribe(t, feed, btc)
	eventually(t, "btc subscribed", func() bool { return fs.SubscribedCount() == 1 })
	e := subscribe(t, feed, eth)
	eventually(t, "eth subscribed", func() bool { return fs.SubscribedCount() == 2 })
	conns := fs.Live()
	if len(conns) != 1 || !slices.Equal(conns[0].Subscribed(), []string{btcStream, ethStream}) {
		t.Fatalf("%d connections, first subscribed to %v", len(conns), conns[0].Subscribed())
	}
	fc := conns[0]
	fs.Publish(t, ethStream, ethKline(t0, 2, true))
	if u := e.recv(t); closeOf(u) != barOf(2)[3] {
		t.Fatalf("eth close %v", closeOf(u))
	}

	e.stop()
	eventually(t, "eth unsubscribed", func() bool { return slices.Equal(fc.Subscribed(), []string{btcStream}) })
	want := []string{"SUBSCRIBE " + btcStream, "SUBSCRIBE " + ethStream, "UNSUBSCRIBE " + ethStream}
	if log := fc.Requests(); !slices.Equal(log, want) {
		t.Fatalf("requests %q, want %q", log, want)
	}
	fs.Publish(t, btcStream, kline(t0, 3, true))
	if u := b.recv(t); closeOf(u) != barOf(3)[3] {
		t.Fatalf("btc close %v", closeOf(u))
	}

	b.stop()
	eventually(t, "the connection closed", func() bool { return fs.Open() == 0 })
	if st := feed.Stats(); st.Dials != 1 || st.Disconnects != 0 || st.Malformed != 0 {
		t.Fatalf("feed %+v", st)
	}
}

func TestSameSeriesTwiceFansOut(t *testing.T) {
	fs := binancetest.NewStream(t)
	feed := newFeed(t, fs, binancews.Options{})
	a, b := subscribe(t, feed, btc), subscribe(t, feed, btc)
	eventually(t, "btc subscribed", func() bool { return fs.SubscribedCount() == 1 })
	for n := range 3 {
		fs.Publish(t, btcStream, kline(t0, float64(n), n == 2))
	}
	for n := range 3 {
		ua, ub := a.recv(t), b.recv(t)
		if closeOf(ua) != barOf(float64(n))[3] || closeOf(ub) != closeOf(ua) || ua.Closed != (n == 2) || ub.Closed != ua.Closed {
			t.Fatalf("update %d: %v/%v and %v/%v", n, closeOf(ua), ua.Closed, closeOf(ub), ub.Closed)
		}
		if ua.Bars == ub.Bars {
			t.Fatal("both subscribers got the same frame")
		}
	}
	a.stop() // b still needs the stream
	fs.Publish(t, btcStream, kline(t0+iv, 4, true))
	if u := b.recv(t); closeOf(u) != barOf(4)[3] {
		t.Fatalf("close %v", closeOf(u))
	}
	if log := fs.Live()[0].Requests(); !slices.Equal(log, []string{"SUBSCRIBE " + btcStream}) {
		t.Fatalf("requests %q", log)
	}
	b.stop()
	eventually(t, "the connection closed", func() bool { return fs.Open() == 0 })
}

func TestResubscribeAfterReconnect(t *testing.T) {
	fs := binancetest.NewStream(t)
	feed := newFeed(t, fs, binancews.Options{})
	subs := make([]*subscription, 3)
	var streams []string
	for i := range subs {
		s, stream, _ := coin(i)
		subs[i], streams = subscribe(t, feed, s), append(streams, stream)
	}
	slices.Sort(streams)
	eventually(t, "the streams subscribed", func() bool { return fs.SubscribedCount() == 3 })
	fs.Live()[0].Drop()
	eventually(t, "the streams subscribed again", func() bool {
		c := fs.Accepted()
		return len(c) == 2 && slices.Equal(c[1].Subscribed(), streams)
	})
	// The new connection asks for every stream at once.
	if log := fs.Accepted()[1].Requests(); !slices.Equal(log, []string{"SUBSCRIBE " + strings.Join(streams, ",")}) {
		t.Fatalf("requests %q", log)
	}
	for i, s := range subs {
		_, stream, payload := coin(i)
		fs.Publish(t, stream, payload(t0, float64(i), true))
		if u := s.recv(t); closeOf(u) != barOf(float64(i))[3] {
			t.Fatalf("series %d: close %v", i, closeOf(u))
		}
	}
	if st := feed.Stats(); st.Dials != 2 || st.Disconnects != 1 || st.Reconnects != 1 {
		t.Fatalf("feed %+v", st)
	}
}

func TestSubscribeErrorRetriedOnNextConnection(t *testing.T) {
	fs := binancetest.NewStream(t, step{Fail: true})
	feed := newFeed(t, fs, binancews.Options{})
	s := subscribe(t, feed, btc)
	eventually(t, "the error reply", func() bool { return feed.Stats().RequestErrors == 1 })
	first := fs.Accepted()[0]
	if sub := first.Subscribed(); len(sub) != 0 {
		t.Fatalf("subscribed %v", sub)
	}
	if st := feed.Stats(); st.Disconnects != 0 || st.Malformed != 0 {
		t.Fatalf("feed %+v: an error reply is neither fatal nor malformed", st)
	}
	first.Drop()
	eventually(t, "btc subscribed on a new connection", func() bool { return fs.SubscribedCount() == 1 })
	// The first connection was not asked again.
	if log := first.Requests(); !slices.Equal(log, []string{"SUBSCRIBE " + btcStream}) {
		t.Fatalf("requests %q", log)
	}
	fs.Publish(t, btcStream, kline(t0, 1, true))
	if u := s.recv(t); closeOf(u) != barOf(1)[3] {
		t.Fatalf("close %v", closeOf(u))
	}
	if st := feed.Stats(); st.RequestErrors != 1 || st.Reconnects != 1 {
		t.Fatalf("feed %+v", st)
	}
}

func TestPacingKeepsUnderTheMessageRate(t *testing.T) {
	fs := binancetest.NewStream(t)
	feed := newFeed(t, fs, binancews.Options{MaxStreamsPerConn: 1024})
	b := subscribe(t, feed, btc)
	eventually(t, "btc subscribed", func() bool { return fs.SubscribedCount() == 1 })

	// 300 subscriptions arrive at once on the live connection, then leave at once.
	const n = 300
	subs := make([]*subscription, n)
	var wg sync.WaitGroup
	for i := range n {
		s, _, _ := coin(i)
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			ch, err := feed.Subscribe(ctx, s)
			if err != nil {
				cancel()
				t.Error(err)
				return
			}
			subs[i] = &subscription{ch: ch, cancel: cancel}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, s := range subs {
		t.Cleanup(s.stop)
	}
	eventually(t, "every stream subscribed", func() bool { return fs.SubscribedCount() == n+1 })
	for _, s := range subs {
		wg.Go(s.stop)
	}
	wg.Wait()
	eventually(t, "all but btc unsubscribed", func() bool { return fs.SubscribedCount() == 1 })

	conns := fs.Accepted()
	if len(conns) != 1 || fs.RateViolations() != 0 {
		t.Fatalf("%d connections, %d dropped for their message rate", len(conns), fs.RateViolations())
	}
	// Each stream was asked for once, in batches.
	count := map[string]int{}
	requests := conns[0].Requests()
	for _, r := range requests {
		method, params, _ := strings.Cut(r, " ")
		for p := range strings.SplitSeq(params, ",") {
			count[method+" "+p]++
		}
	}
	if len(requests) >= n || len(count) != 2*n+1 {
		t.Fatalf("%d requests for %d stream changes", len(requests), len(count))
	}
	for r, c := range count {
		if c != 1 {
			t.Fatalf("%s sent %d times", r, c)
		}
	}
	fs.Publish(t, btcStream, kline(t0, 1, true))
	if u := b.recv(t); closeOf(u) != barOf(1)[3] {
		t.Fatalf("close %v", closeOf(u))
	}
	if st := feed.Stats(); st.Dials != 1 || st.Disconnects != 0 {
		t.Fatalf("feed %+v", st)
	}
}

func TestSlowSubscriberDoesNotStallOthers(t *testing.T) {
	fs := binancetest.NewStream(t)
	feed := newFeed(t, fs, binancews.Options{})
	eth, ethStream, ethKline := coin(0)
	slow, fast := subscribe(t, feed, btc), subscribe(t, feed, eth)
	eventually(t, "both streams subscribed", func() bool { return fs.SubscribedCount() == 2 })
	if len(fs.Live()) != 1 {
		t.Fatal("the subscriptions do not share a connection")
	}
	// Nobody reads slow: far more updates than its channel holds, two closed bars among
	// them, then fast's bars on the same connection.
	const forming = 40
	for bar := range int64(2) {
		for n := range forming {
			fs.Publish(t, btcStream, kline(t0+bar*iv, float64(n), false))
		}
		fs.Publish(t, btcStream, kline(t0+bar*iv, 100+float64(bar), true))
	}
	for n := range 3 {
		fs.Publish(t, ethStream, ethKline(t0+int64(n)*iv, float64(n), true))
		if u := fast.recv(t); u.Bars.TS[0] != t0+int64(n)*iv || closeOf(u) != barOf(float64(n))[3] {
			t.Fatalf("fast got ts %v close %v", u.Bars.TS, closeOf(u))
		}
	}
	// slow gets every closed bar, in order, and some of the forming updates.
	var closed []float64
	got := 0
	for len(closed) < 2 {
		u := slow.recv(t)
		got++
		if u.Closed {
			closed = append(closed, closeOf(u))
		} else if u.Bars.TS[0] != t0+int64(len(closed))*iv {
			t.Fatalf("forming update of %d out of order after %v", u.Bars.TS[0], closed)
		}
	}
	if !slices.Equal(closed, []float64{barOf(100)[3], barOf(101)[3]}) || got >= 2*forming+2 {
		t.Fatalf("closed %v among %d updates", closed, got)
	}
	if st := feed.Stats(); st.Dropped != uint64(2*forming+2-got) {
		t.Fatalf("feed %+v, %d updates received", st, got)
	}
}

func TestEventOfAnotherStreamIsMalformed(t *testing.T) {
	fs := binancetest.NewStream(t)
	feed := newFeed(t, fs, binancews.Options{})
	s := subscribe(t, feed, btc)
	eventually(t, "btc subscribed", func() bool { return fs.SubscribedCount() == 1 })
	fc := fs.Live()[0]
	if err := fc.Send(binancetest.Event("ethusdt@kline_1m", klineFor("ETHUSDT", "1m", t0*1000, t0*1000+59_999, 1, true))); err != nil {
		t.Fatal(err)
	}
	fs.Publish(t, btcStream, kline(t0, 2, true))
	if u := s.recv(t); closeOf(u) != barOf(2)[3] {
		t.Fatalf("close %v", closeOf(u))
	}
	if st := feed.Stats(); st.Malformed != 1 || st.Disconnects != 0 {
		t.Fatalf("feed %+v", st)
	}
}
